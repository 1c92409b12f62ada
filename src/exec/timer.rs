//! A sleep with nanosecond resolution for the open model's arrivals: on Linux a timerfd
//! registered in the load thread's own epoll, so an arrival starts on time without a second
//! thread, a cross-thread wake-up or a spin. tokio's timer rounds to whole milliseconds, which
//! would add up to a millisecond of the tool's own lateness to every latency measured from the
//! intended start. Elsewhere `new` returns `None` and the caller uses the pacer thread.

use std::time::{Duration, Instant};

/// How long before an arrival to wake up, learned from how late wake-ups are: twice a moving
/// estimate of the lateness plus 10 us, within 20-300 us. A fixed lead either misses on a
/// machine that wakes late or burns CPU polling on one that wakes on time (measured on this
/// project's VM at 500/s: a 40 us lead started iterations a median 58 us late, 150 us brought
/// that to 14 us at the price of 150 us of polling per arrival).
pub struct Lead {
    /// Moving estimate of the wake-up lateness, in nanoseconds.
    late_ns: f64,
}

impl Default for Lead {
    fn default() -> Self {
        Lead { late_ns: 50_000.0 }
    }
}

impl Lead {
    const MIN: Duration = Duration::from_micros(20);
    const MAX: Duration = Duration::from_micros(300);

    pub fn get(&self) -> Duration {
        Duration::from_nanos((2.0 * self.late_ns) as u64 + 10_000).clamp(Self::MIN, Self::MAX)
    }

    /// Record how long after its target a wake-up came.
    pub fn woke(&mut self, late: Duration) {
        let ns = (late.as_nanos() as f64).min(Self::MAX.as_nanos() as f64);
        self.late_ns += (ns - self.late_ns) / 8.0;
    }
}

#[cfg(target_os = "linux")]
pub struct PreciseTimer {
    fd: tokio::io::unix::AsyncFd<std::os::fd::OwnedFd>,
}

#[cfg(target_os = "linux")]
impl PreciseTimer {
    /// Must be called inside the runtime that will poll it.
    pub fn new() -> Option<PreciseTimer> {
        use rustix::time::{TimerfdClockId, TimerfdFlags, timerfd_create};
        let fd = timerfd_create(
            TimerfdClockId::Monotonic,
            TimerfdFlags::NONBLOCK | TimerfdFlags::CLOEXEC,
        )
        .ok()?;
        // tokio deprecated its safe constructors (and made the replacements `unsafe`) because an
        // arbitrary `AsRawFd` may close or swap its descriptor while registered. An `OwnedFd`
        // owns one descriptor for its whole life, which is exactly what tokio requires; this
        // crate forbids `unsafe`, so the safe, sound-for-this-type constructor stays.
        #[allow(deprecated)]
        let fd = tokio::io::unix::AsyncFd::with_interest(fd, tokio::io::Interest::READABLE).ok()?;
        Some(PreciseTimer { fd })
    }

    /// Resolves at `due` (at once if it has passed). On an error from the system it falls back
    /// to tokio's millisecond timer rather than returning early.
    pub async fn sleep_until(&self, due: Instant) {
        use rustix::time::{Itimerspec, TimerfdTimerFlags, Timespec, timerfd_settime};
        let now = Instant::now();
        if due <= now {
            return;
        }
        let left = due - now;
        let tv_nsec = i64::from(left.subsec_nanos());
        let Ok(tv_sec) = i64::try_from(left.as_secs()) else {
            tokio::time::sleep_until(due.into()).await;
            return;
        };
        let zero = Timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        let spec = Itimerspec {
            it_interval: zero,
            // A zero value would disarm the timer; `left` is at least 1 ns here.
            it_value: Timespec {
                tv_sec,
                tv_nsec: tv_nsec.max(1),
            },
        };
        if timerfd_settime(self.fd.get_ref(), TimerfdTimerFlags::empty(), &spec).is_err() {
            tokio::time::sleep_until(due.into()).await;
            return;
        }
        loop {
            let Ok(mut guard) = self.fd.readable().await else {
                tokio::time::sleep_until(due.into()).await;
                return;
            };
            let mut expirations = [0u8; 8];
            let res = rustix::io::read(self.fd.get_ref(), &mut expirations);
            // Read or not, the descriptor has nothing more to say until it is armed again.
            guard.clear_ready();
            // Fired (or an error that a retry cannot fix): the arrival is due. `AGAIN`: a
            // spurious wake-up, wait again.
            if !matches!(res, Err(rustix::io::Errno::AGAIN)) {
                return;
            }
        }
    }
}

#[cfg(not(target_os = "linux"))]
pub struct PreciseTimer;

#[cfg(not(target_os = "linux"))]
impl PreciseTimer {
    pub fn new() -> Option<PreciseTimer> {
        None
    }

    pub async fn sleep_until(&self, due: Instant) {
        tokio::time::sleep_until(due.into()).await;
    }
}

#[cfg(test)]
mod lead_tests {
    use super::*;

    #[test]
    fn lead_follows_the_observed_lateness_within_bounds() {
        let mut lead = Lead::default();
        assert_eq!(lead.get(), Duration::from_micros(110));
        for _ in 0..100 {
            lead.woke(Duration::from_micros(5));
        }
        assert_eq!(lead.get(), Duration::from_micros(20));
        for _ in 0..100 {
            lead.woke(Duration::from_micros(80));
        }
        let l = lead.get();
        assert!(
            l > Duration::from_micros(160) && l <= Duration::from_micros(170),
            "{l:?}"
        );
        for _ in 0..100 {
            lead.woke(Duration::from_millis(5));
        }
        assert_eq!(lead.get(), Duration::from_micros(300));
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[tokio::test(flavor = "current_thread")]
    async fn wakes_after_the_due_instant_and_well_within_a_millisecond_of_it() {
        let timer = PreciseTimer::new().expect("timerfd");
        let mut late = Vec::new();
        for _ in 0..20 {
            let due = Instant::now() + Duration::from_micros(300);
            timer.sleep_until(due).await;
            let now = Instant::now();
            assert!(now >= due, "woke early");
            late.push(now - due);
        }
        late.sort();
        // The median, to stay robust on a loaded machine; tokio's timer would be ~0.5-1 ms.
        assert!(late[10] < Duration::from_micros(500), "{late:?}");
        // A due instant in the past returns at once.
        timer
            .sleep_until(Instant::now() - Duration::from_millis(1))
            .await;
    }
}
