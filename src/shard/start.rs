//! `--start-at`: the common wall-clock start every shard waits for, so their load overlaps.
//! Parses RFC 3339 (`2026-12-01T10:00:00Z`, `…+02:00`) or a delay from now (`+30s`), refuses a
//! time already past by more than `LATE_TOLERANCE` (a late start is an error, never silent),
//! and waits with one line on stderr. Knows nothing of plans or HTTP.

use std::time::{Duration, SystemTime};

/// How late a shard may start before the start time counts as missed.
pub const LATE_TOLERANCE: Duration = Duration::from_secs(5);
/// A start further ahead than this is almost certainly a typo (wrong day or year).
pub const MAX_AHEAD: Duration = Duration::from_secs(24 * 3600);

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum StartError {
    #[error(
        "--start-at `{0}`: expected an RFC 3339 time with a zone (2026-12-01T10:00:00Z, \
         2026-12-01T11:00:00+01:00) or a delay from now (+30s)"
    )]
    Syntax(String),
    #[error("--start-at `{text}`: {reason}")]
    Invalid { text: String, reason: String },
    #[error(
        "--start-at {at} passed {late:.1} s ago (more than {} s): this shard would not overlap \
         the others; pick a later start time for every shard",
        LATE_TOLERANCE.as_secs()
    )]
    Late { at: String, late: f64 },
    #[error("--start-at {at} is more than 24 h ahead ({ahead:.0} s); check the date")]
    TooFar { at: String, ahead: f64 },
}

/// A resolved start time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartAt {
    pub at: SystemTime,
}

fn invalid(text: &str, reason: impl Into<String>) -> StartError {
    StartError::Invalid {
        text: text.into(),
        reason: reason.into(),
    }
}

/// `±HH:MM` at the end of an RFC 3339 time, as seconds east of UTC.
fn offset(s: &str) -> Option<(usize, i64)> {
    let b = s.as_bytes();
    if b.len() < 6 {
        return None;
    }
    let tail = &b[b.len() - 6..];
    let sign = match tail[0] {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let digit = |i: usize| (tail[i] as char).to_digit(10).map(i64::from);
    if tail[3] != b':' {
        return None;
    }
    let (h1, h2, m1, m2) = (digit(1)?, digit(2)?, digit(4)?, digit(5)?);
    Some((
        b.len() - 6,
        sign * ((h1 * 10 + h2) * 3600 + (m1 * 10 + m2) * 60),
    ))
}

fn parse_absolute(text: &str) -> Result<SystemTime, StartError> {
    let t = text.trim();
    let (base, east) = if let Some(b) = t.strip_suffix(['Z', 'z']) {
        (b, 0)
    } else if let Some((cut, east)) = offset(t).filter(|(cut, _)| *cut >= 19) {
        (&t[..cut], east)
    } else {
        return Err(StartError::Syntax(text.into()));
    };
    if east.abs() >= 24 * 3600 {
        return Err(invalid(text, "the UTC offset must be below 24 h"));
    }
    let utc = humantime::parse_rfc3339_weak(base).map_err(|e| invalid(text, e.to_string()))?;
    let shift = Duration::from_secs(east.unsigned_abs());
    // Local time = UTC + offset, so UTC = local - offset.
    let at = if east >= 0 {
        utc.checked_sub(shift)
    } else {
        utc.checked_add(shift)
    };
    at.ok_or_else(|| invalid(text, "out of range"))
}

impl StartAt {
    /// Parses `text` relative to `now` and refuses a start already missed or absurdly far.
    pub fn parse(text: &str, now: SystemTime) -> Result<StartAt, StartError> {
        let t = text.trim();
        let at = if let Some(rel) = t.strip_prefix('+') {
            let d = crate::scenario::parse_duration(rel).map_err(|e| invalid(text, e))?;
            now.checked_add(d)
                .ok_or_else(|| invalid(text, "out of range"))?
        } else {
            parse_absolute(t)?
        };
        let s = StartAt { at };
        s.check(now)?;
        Ok(s)
    }

    /// RFC 3339 in UTC with milliseconds, as recorded in the result.
    #[must_use]
    pub fn rfc3339(&self) -> String {
        humantime::format_rfc3339_millis(self.at).to_string()
    }

    /// Refuses a start time missed by more than `LATE_TOLERANCE` or more than a day ahead.
    pub fn check(&self, now: SystemTime) -> Result<(), StartError> {
        match self.at.duration_since(now) {
            Ok(ahead) if ahead > MAX_AHEAD => Err(StartError::TooFar {
                at: self.rfc3339(),
                ahead: ahead.as_secs_f64(),
            }),
            Ok(_) => Ok(()),
            Err(e) if e.duration() > LATE_TOLERANCE => Err(StartError::Late {
                at: self.rfc3339(),
                late: e.duration().as_secs_f64(),
            }),
            Err(_) => Ok(()),
        }
    }

    /// Waits until the start time, saying so in one line on stderr (`who` names the shard), and
    /// returns the wall clock at which the wait ended: the clock this process started on.
    pub async fn wait(&self, who: &str) -> Result<SystemTime, StartError> {
        let now = SystemTime::now();
        self.check(now)?;
        match self.at.duration_since(now) {
            Ok(left) => {
                eprintln!(
                    "{who}: waiting {:.1} s for the common start at {}",
                    left.as_secs_f64(),
                    self.rfc3339()
                );
                tokio::time::sleep(left).await;
                // The sleep runs on the monotonic clock; never start before the wall clock
                // agrees (it can be slewed while we wait).
                while let Ok(rest) = self.at.duration_since(SystemTime::now()) {
                    tokio::time::sleep(rest.max(std::time::Duration::from_millis(1))).await;
                }
            }
            Err(e) => eprintln!(
                "{who}: the common start {} passed {:.2} s ago (within {} s): starting now",
                self.rfc3339(),
                e.duration().as_secs_f64(),
                LATE_TOLERANCE.as_secs()
            ),
        }
        Ok(SystemTime::now())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    fn at(s: &str) -> SystemTime {
        humantime::parse_rfc3339(s).unwrap()
    }

    #[test]
    fn parses_absolute_and_relative_times() {
        let now = at("2026-12-01T09:59:00Z");
        let s = StartAt::parse("2026-12-01T10:00:00Z", now).unwrap();
        assert_eq!(s.at, at("2026-12-01T10:00:00Z"));
        assert_eq!(s.rfc3339(), "2026-12-01T10:00:00.000Z");
        let s = StartAt::parse("2026-12-01T11:00:00.250+01:00", now).unwrap();
        assert_eq!(s.at, at("2026-12-01T10:00:00.250Z"));
        let s = StartAt::parse("2026-12-01T05:30:00-04:30", now).unwrap();
        assert_eq!(s.at, at("2026-12-01T10:00:00Z"));
        let s = StartAt::parse("+30s", now).unwrap();
        assert_eq!(s.at, at("2026-12-01T09:59:30Z"));
        let s = StartAt::parse("+1m", now).unwrap();
        assert_eq!(s.at, at("2026-12-01T10:00:00Z"));
    }

    #[test]
    fn refuses_bad_missed_and_far_times() {
        let now = at("2026-12-01T10:00:00Z");
        for bad in [
            "tomorrow",
            "2026-12-01T10:00:00",
            "2026-12-01",
            "10:00:00Z",
            "",
        ] {
            assert!(StartAt::parse(bad, now).is_err(), "{bad}");
        }
        assert!(matches!(
            StartAt::parse("+soon", now),
            Err(StartError::Invalid { .. })
        ));
        // Within the tolerance: accepted (starts at once).
        assert!(StartAt::parse("2026-12-01T09:59:56Z", now).is_ok());
        let e = StartAt::parse("2026-12-01T09:59:50Z", now).unwrap_err();
        assert!(matches!(e, StartError::Late { .. }));
        assert!(e.to_string().contains("passed 10.0 s ago"), "{e}");
        let e = StartAt::parse("2027-12-01T10:00:00Z", now).unwrap_err();
        assert!(matches!(e, StartError::TooFar { .. }), "{e}");
    }

    #[tokio::test]
    async fn waits_until_the_start() {
        let s = StartAt::parse("+200ms", SystemTime::now()).unwrap();
        let began = std::time::Instant::now();
        let clock = s.wait("test").await.unwrap();
        assert!(began.elapsed() >= Duration::from_millis(150));
        assert!(clock >= s.at);
        // Already missed by more than the tolerance at wait time: an error, not a late start.
        let missed = StartAt {
            at: SystemTime::now() - Duration::from_secs(30),
        };
        assert!(matches!(
            missed.wait("test").await,
            Err(StartError::Late { .. })
        ));
    }
}
