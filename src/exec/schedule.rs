//! Load-model arithmetic with no I/O: the open model's arrival times (constant or ramping
//! rate), the closed model's VU target over time, and how work splits across load threads.

use crate::plan::Stage;
use std::time::Duration;

/// `total` split over `parts` as evenly as possible, the remainder going to the lowest parts.
#[must_use]
pub fn share(total: u64, parts: u64, index: u64) -> u64 {
    if parts == 0 {
        return 0;
    }
    total / parts + u64::from(index < total % parts)
}

/// A piecewise-linear value over time: starts at `start`, then moves linearly to each stage's
/// target over its duration. After the last stage it holds the last target.
#[derive(Debug, Clone)]
pub struct Ramp {
    /// (segment start s, segment end s, value at start, value at end)
    segs: Vec<(f64, f64, f64, f64)>,
    start: f64,
}

impl Ramp {
    #[must_use]
    pub fn new(start: f64, stages: &[Stage]) -> Ramp {
        let mut segs = Vec::with_capacity(stages.len());
        let mut t = 0.0;
        let mut v = start;
        for s in stages {
            let d = s.duration.as_secs_f64();
            segs.push((t, t + d, v, s.target));
            t += d;
            v = s.target;
        }
        Ramp { segs, start }
    }

    #[must_use]
    pub fn total(&self) -> Duration {
        Duration::from_secs_f64(self.segs.last().map_or(0.0, |s| s.1))
    }

    /// The value at `t` seconds.
    #[must_use]
    pub fn at(&self, t: f64) -> f64 {
        for &(t0, t1, v0, v1) in &self.segs {
            if t < t1 {
                let f = if t1 > t0 { (t - t0) / (t1 - t0) } else { 1.0 };
                return v0 + (v1 - v0) * f.clamp(0.0, 1.0);
            }
        }
        self.segs.last().map_or(self.start, |s| s.3)
    }
}

/// Arrival times of an open model: arrival `k` (from 0) happens when the integral of the rate
/// reaches `k`. Works for a constant rate (no stages) and linear ramps between stages.
#[derive(Debug, Clone)]
pub struct Arrivals {
    constant: Option<f64>,
    ramp: Ramp,
    /// Cumulative arrivals at each segment's end.
    cum: Vec<f64>,
}

impl Arrivals {
    #[must_use]
    pub fn constant(rate: f64) -> Arrivals {
        Arrivals {
            constant: Some(rate),
            ramp: Ramp::new(rate, &[]),
            cum: Vec::new(),
        }
    }

    #[must_use]
    pub fn ramping(start_rate: f64, stages: &[Stage]) -> Arrivals {
        let ramp = Ramp::new(start_rate, stages);
        let mut cum = Vec::with_capacity(ramp.segs.len());
        let mut acc = 0.0;
        for &(t0, t1, r0, r1) in &ramp.segs {
            acc += f64::midpoint(r0, r1) * (t1 - t0);
            cum.push(acc);
        }
        Arrivals {
            constant: None,
            ramp,
            cum,
        }
    }

    /// Seconds from the start at which arrival `k` is due; `None` if it never comes.
    #[must_use]
    pub fn time_of(&self, k: u64) -> Option<f64> {
        let a = k as f64;
        if let Some(r) = self.constant {
            return (r > 0.0).then(|| a / r);
        }
        let mut before = 0.0;
        for (i, &(t0, t1, r0, r1)) in self.ramp.segs.iter().enumerate() {
            let end = self.cum[i];
            if a < end {
                let need = a - before;
                let d = t1 - t0;
                let slope = if d > 0.0 { (r1 - r0) / d } else { 0.0 };
                let dt = if slope.abs() < 1e-12 {
                    if r0 <= 0.0 {
                        return None;
                    }
                    need / r0
                } else {
                    // slope/2 * dt^2 + r0 * dt - need = 0
                    let disc = (r0 * r0 + 2.0 * slope * need).max(0.0);
                    (-r0 + disc.sqrt()) / slope
                };
                return Some(t0 + dt.clamp(0.0, d));
            }
            before = end;
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn st(secs: u64, target: f64) -> Stage {
        Stage {
            duration: Duration::from_secs(secs),
            target,
        }
    }

    #[test]
    fn shares_add_up() {
        for total in [0u64, 1, 7, 100, 1001] {
            for parts in 1..=9u64 {
                let sum: u64 = (0..parts).map(|i| share(total, parts, i)).sum();
                assert_eq!(sum, total);
                assert!(share(total, parts, 0) >= share(total, parts, parts - 1));
            }
        }
    }

    #[test]
    fn constant_arrivals() {
        let a = Arrivals::constant(200.0);
        assert_eq!(a.time_of(0), Some(0.0));
        assert!((a.time_of(200).unwrap_or(0.0) - 1.0).abs() < 1e-9);
        assert_eq!(Arrivals::constant(0.0).time_of(1), None);
    }

    #[test]
    fn ramping_arrivals_follow_the_integral() {
        // 0 -> 100/s over 10 s: 500 arrivals; then 100/s for 10 s: 1000 more.
        let a = Arrivals::ramping(0.0, &[st(10, 100.0), st(10, 100.0)]);
        let t = a.time_of(125).unwrap_or(0.0); // 5 t^2 = 125 -> t = 5
        assert!((t - 5.0).abs() < 1e-6, "{t}");
        let t = a.time_of(1000).unwrap_or(0.0); // 500 + 100 * 5
        assert!((t - 15.0).abs() < 1e-6, "{t}");
        assert_eq!(a.time_of(1500), None);
        // Count arrivals: must be exactly the integral.
        let n = (0..10_000).take_while(|k| a.time_of(*k).is_some()).count();
        assert_eq!(n, 1500);
    }

    #[test]
    fn ramp_values() {
        let r = Ramp::new(1.0, &[st(10, 11.0), st(5, 0.0)]);
        assert!((r.at(0.0) - 1.0).abs() < 1e-9);
        assert!((r.at(5.0) - 6.0).abs() < 1e-9);
        assert!((r.at(12.5) - 5.5).abs() < 1e-9);
        assert!((r.at(100.0)).abs() < 1e-9);
        assert_eq!(r.total(), Duration::from_secs(15));
    }
}
