//! Units, parsed and formatted in one place: durations (`1h30m`, `500ms`), rates (`200/s`,
//! `12000/m`) and byte sizes (`1MiB`) as scenario files and the command line write them, and
//! milliseconds and sizes as tables, messages and reports print them. Pure functions, no
//! positions; a leaf every other module may use.

use std::fmt::Write as _;
use std::time::Duration;

/// Parses a duration: one or more `<number><unit>` parts, units `ms`, `s`, `m`, `h`
/// (also `us`), e.g. `30s`, `2m`, `1h30m`, `500ms`, `1.5s`. A bare `0` is zero.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    if t.is_empty() {
        return Err("empty duration".into());
    }
    if t == "0" {
        return Ok(Duration::ZERO);
    }
    let mut rest = t;
    let mut nanos: f64 = 0.0;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (num, after) = rest.split_at(num_len);
        if num.is_empty() {
            return Err(format!(
                "`{t}` is not a duration (expected e.g. 30s, 500ms, 1h30m)"
            ));
        }
        let n: f64 = num
            .parse()
            .map_err(|_| format!("`{num}` is not a number in duration `{t}`"))?;
        let unit_len = after
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(after.len());
        let (unit, next) = after.split_at(unit_len);
        let scale = match unit {
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            "us" | "µs" => 1e3,
            "" => {
                return Err(format!(
                    "`{t}` needs a unit (ms, s, m or h), e.g. `{t}s` or `{t}ms`"
                ));
            }
            other => {
                return Err(format!(
                    "unknown unit `{other}` in duration `{t}` (use ms, s, m or h)"
                ));
            }
        };
        nanos += n * scale;
        rest = next;
    }
    // 10 years: far beyond any limit the loader allows, and safely inside u64 nanoseconds.
    if !nanos.is_finite() || nanos > 3.2e17 {
        return Err(format!("duration `{t}` is too long"));
    }
    Ok(Duration::from_nanos(nanos.round() as u64))
}

/// Parses a rate into iterations per second: `200/s`, `12000/m`, `5/h`, or a bare number
/// (per second). Zero is allowed here (ramp stages may go to 0); the loader checks limits.
pub fn parse_rate(s: &str) -> Result<f64, String> {
    let t = s.trim();
    let (num, per) = match t.split_once('/') {
        Some((n, u)) => {
            let per = match u.trim() {
                "s" | "sec" | "second" => 1.0,
                "m" | "min" | "minute" => 60.0,
                "h" | "hour" => 3600.0,
                other => {
                    return Err(format!("unknown rate unit `/{other}` (use /s, /m or /h)"));
                }
            };
            (n.trim(), per)
        }
        None => (t, 1.0),
    };
    let n: f64 = num
        .parse()
        .map_err(|_| format!("`{t}` is not a rate (expected e.g. 200/s or 12000/m)"))?;
    if !n.is_finite() || n < 0.0 {
        return Err(format!(
            "`{t}` is not a rate (expected e.g. 200/s or 12000/m)"
        ));
    }
    Ok(n / per)
}

/// Parses a byte size: a bare number of bytes, or with `B`, `KB`/`KiB`, `MB`/`MiB`, `GB`/`GiB`.
pub fn parse_bytes(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num
        .parse()
        .map_err(|_| format!("`{t}` is not a size (expected e.g. 65536, 64KiB or 1MiB)"))?;
    let scale = match unit.trim() {
        "" | "B" => 1.0,
        "KB" | "kB" => 1e3,
        "KiB" => 1024.0,
        "MB" => 1e6,
        "MiB" => 1024.0 * 1024.0,
        "GB" => 1e9,
        "GiB" => 1024.0 * 1024.0 * 1024.0,
        other => {
            return Err(format!(
                "unknown size unit `{other}` (use B, KiB, MiB or GiB)"
            ));
        }
    };
    let v = n * scale;
    if !v.is_finite() || v > 1e15 {
        return Err(format!("size `{t}` is too large"));
    }
    Ok(v.round() as u64)
}

/// Renders a duration the way the docs write them (`1h30m`, `500ms`, `2.5s`), for messages.
#[must_use]
pub fn fmt_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms == 0 && !d.is_zero() {
        return format!("{}us", d.as_micros());
    }
    if !ms.is_multiple_of(1000) {
        return if ms < 1000 {
            format!("{ms}ms")
        } else {
            format!("{}s", d.as_secs_f64())
        };
    }
    let secs = d.as_secs();
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    let mut out = String::new();
    if h > 0 {
        let _ = write!(out, "{h}h");
    }
    if m > 0 {
        let _ = write!(out, "{m}m");
    }
    if s > 0 || out.is_empty() {
        let _ = write!(out, "{s}s");
    }
    out
}

/// The one millisecond formatter of every table: 3 significant digits, at most 2 decimals
/// (`312`, `45.6`, `1.23`).
#[must_use]
pub fn ms(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// Milliseconds with their unit, switching to seconds from one second on (`1.23 s`, `45 ms`,
/// `4.5 ms`): the breakdown's prose.
#[must_use]
pub fn human_ms(v: f64) -> String {
    if v.abs() >= 1000.0 {
        format!("{:.2} s", v / 1000.0)
    } else if v.abs() >= 10.0 {
        format!("{v:.0} ms")
    } else {
        format!("{v:.1} ms")
    }
}

/// A duration as milliseconds with one decimal and no space (`312.4ms`): failed expectations.
#[must_use]
pub fn fmt_ms(d: Duration) -> String {
    fmt_ms_f64(d.as_secs_f64() * 1000.0)
}

/// Milliseconds as `fmt_ms` writes them (`312.4ms`), from a number of milliseconds.
#[must_use]
pub fn fmt_ms_f64(v: f64) -> String {
    format!("{v:.1}ms")
}

/// `2.0 MiB (2097152 bytes)`; a size too large to count is said so.
#[must_use]
pub fn fmt_size(n: u64) -> String {
    if n == u64::MAX {
        return "more than 16 EiB".into();
    }
    let mib = n as f64 / f64::from(1u32 << 20);
    if mib >= 1024.0 {
        format!("{:.1} GiB ({n} bytes)", mib / 1024.0)
    } else {
        format!("{mib:.1} MiB ({n} bytes)")
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
        assert!(parse_duration("30").unwrap_err().contains("needs a unit"));
        assert!(
            parse_duration("3d")
                .unwrap_err()
                .contains("unknown unit `d`")
        );
        assert!(parse_duration("").is_err());
        assert!(parse_duration("s").is_err());
        assert!(parse_duration("1..2s").is_err());
        assert!(parse_duration("99999999999999999h").is_err());
    }

    #[test]
    fn rates() {
        assert_eq!(parse_rate("200/s"), Ok(200.0));
        assert_eq!(parse_rate("12000/m"), Ok(200.0));
        assert_eq!(parse_rate("7200/h"), Ok(2.0));
        assert_eq!(parse_rate("50"), Ok(50.0));
        assert_eq!(parse_rate("0/s"), Ok(0.0));
        assert!(parse_rate("-1/s").is_err());
        assert!(parse_rate("10/d").is_err());
        assert!(parse_rate("fast").is_err());
        assert!(parse_rate("inf/s").is_err());
    }

    #[test]
    fn sizes_and_formatting() {
        assert_eq!(parse_bytes("1MiB"), Ok(1024 * 1024));
        assert_eq!(parse_bytes("65536"), Ok(65536));
        assert_eq!(parse_bytes("2 KB"), Ok(2000));
        assert!(parse_bytes("1TB").is_err());
        assert_eq!(fmt_duration(Duration::from_secs(5400)), "1h30m");
        assert_eq!(fmt_duration(Duration::from_millis(500)), "500ms");
        assert_eq!(fmt_duration(Duration::from_millis(2500)), "2.5s");
        assert_eq!(fmt_duration(Duration::from_secs(24 * 3600)), "24h");
        assert_eq!(fmt_size(2 << 20), "2.0 MiB (2097152 bytes)");
        assert_eq!(fmt_size(u64::MAX), "more than 16 EiB");
    }

    #[test]
    fn milliseconds() {
        assert_eq!(ms(312.4), "312");
        assert_eq!(ms(45.66), "45.7");
        assert_eq!(ms(1.234), "1.23");
        assert_eq!(human_ms(1234.0), "1.23 s");
        assert_eq!(human_ms(45.4), "45 ms");
        assert_eq!(human_ms(4.54), "4.5 ms");
        assert_eq!(fmt_ms(Duration::from_micros(312_440)), "312.4ms");
    }
}
