//! The statistics of sonde, in one place. For `compare`: a seeded bootstrap of quantiles drawn
//! straight from HDR histogram bucket counts, an error-rate bootstrap, and the between-interval
//! "design effect" that turns a run's request count into an effective sample size. For
//! `breakdown`'s per-iteration samples: exact-rank Mann–Whitney U with tie correction and a
//! normal approximation (with continuity correction) for the two-sided p-value, medians,
//! quantiles and the significance mark. Pure maths: no I/O, no formatting beyond the mark,
//! deterministic for a given input (fixed seed).
//!
//! Quantile bootstrap without materialising samples: the k-th smallest of n draws from an
//! empirical distribution F is F⁻¹(U₍ₖ₎) where U₍ₖ₎ ~ Beta(k, n − k + 1) is the k-th order
//! statistic of n uniforms. So one bootstrap replicate of the q-quantile is one Beta draw plus
//! one lookup in the cumulative bucket counts, exact for every n (ties included: equal values
//! share a bucket), and O(log buckets) however many requests the run made.

use crate::aggregate::Hist;

/// Seed of every comparison: the same two files always give the same verdict.
pub const SEED: u64 = 0x5eed_50de;
/// Bootstrap replicates per quantile.
pub const REPLICATES: usize = 1000;

/// A histogram flattened to (value µs, cumulative count), for quantile lookups.
#[derive(Debug, Clone, Default)]
pub struct Cdf {
    points: Vec<(u64, u64)>,
    n: u64,
}

impl Cdf {
    #[must_use]
    pub fn of(h: &Hist) -> Cdf {
        let mut n = 0u64;
        let points = h
            .buckets()
            .into_iter()
            .map(|(v, c)| {
                n += c;
                (v, n)
            })
            .collect();
        Cdf { points, n }
    }

    #[must_use]
    pub fn count(&self) -> u64 {
        self.n
    }

    /// The value with rank ⌈u·n⌉ (1-based, clamped to [1, n]), in µs; 0 when empty.
    #[must_use]
    pub fn at(&self, u: f64) -> u64 {
        if self.n == 0 {
            return 0;
        }
        let rank = ((u * self.n as f64).ceil() as u64).clamp(1, self.n);
        let i = self.points.partition_point(|(_, cum)| *cum < rank);
        self.points
            .get(i)
            .or(self.points.last())
            .map_or(0, |(v, _)| *v)
    }
}

/// Deterministic sampler (fastrand's wyrand with a fixed seed).
pub struct Sampler {
    rng: fastrand::Rng,
}

impl Default for Sampler {
    fn default() -> Self {
        Sampler {
            rng: fastrand::Rng::with_seed(SEED),
        }
    }
}

impl Sampler {
    fn uniform_open(&mut self) -> f64 {
        // (0, 1]: never 0, so ln() is finite.
        1.0 - self.rng.f64()
    }

    pub fn normal(&mut self) -> f64 {
        // Box–Muller.
        let u1 = self.uniform_open();
        let u2 = self.rng.f64();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }

    /// Gamma(shape, 1), Marsaglia–Tsang; shapes below 1 use the boost Gamma(a+1)·U^(1/a).
    pub fn gamma(&mut self, shape: f64) -> f64 {
        if shape < 1.0 {
            let g = self.gamma(shape + 1.0);
            return g * self.uniform_open().powf(1.0 / shape);
        }
        let d = shape - 1.0 / 3.0;
        let c = 1.0 / (9.0 * d).sqrt();
        // Acceptance is above 95 % for every shape >= 1; the bound only guards the loop.
        for _ in 0..1000 {
            let x = self.normal();
            let v = 1.0 + c * x;
            if v <= 0.0 {
                continue;
            }
            let v = v * v * v;
            let u = self.uniform_open();
            if u.ln() < 0.5 * x * x + d - d * v + d * v.ln() {
                return d * v;
            }
        }
        shape
    }

    pub fn beta(&mut self, a: f64, b: f64) -> f64 {
        let x = self.gamma(a);
        let y = self.gamma(b);
        if x + y > 0.0 { x / (x + y) } else { 0.5 }
    }

    /// One bootstrap replicate of the q-quantile of `cdf`, as if it held `n_eff` samples.
    pub fn quantile(&mut self, cdf: &Cdf, q: f64, n_eff: f64) -> u64 {
        let n = n_eff.max(1.0);
        let k = (q * n).ceil().clamp(1.0, n);
        let u = self.beta(k, n - k + 1.0);
        cdf.at(u)
    }
}

/// Mean and standard deviation.
#[must_use]
pub fn mean_sd(xs: &[f64]) -> (f64, f64) {
    if xs.is_empty() {
        return (0.0, 0.0);
    }
    let n = xs.len() as f64;
    let m = xs.iter().sum::<f64>() / n;
    if xs.len() < 2 {
        return (m, 0.0);
    }
    let v = xs.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / (n - 1.0);
    (m, v.sqrt())
}

/// Standard deviation of ln(q-quantile) over bootstrap replicates at sample size `n_eff`.
pub fn log_quantile_sd(s: &mut Sampler, cdf: &Cdf, q: f64, n_eff: f64) -> f64 {
    let xs: Vec<f64> = (0..REPLICATES)
        .map(|_| (s.quantile(cdf, q, n_eff).max(1) as f64).ln())
        .collect();
    mean_sd(&xs).1
}

/// Inverse of the standard normal CDF (Acklam's rational approximation, |error| < 1.2e-9).
#[must_use]
pub fn normal_quantile(p: f64) -> f64 {
    const A: [f64; 6] = [
        -3.969_683_028_665_376e1,
        2.209_460_984_245_205e2,
        -2.759_285_104_469_687e2,
        1.383_577_518_672_69e2,
        -3.066_479_806_614_716e1,
        2.506_628_277_459_239,
    ];
    const B: [f64; 5] = [
        -5.447_609_879_822_406e1,
        1.615_858_368_580_409e2,
        -1.556_989_798_598_866e2,
        6.680_131_188_771_972e1,
        -1.328_068_155_288_572e1,
    ];
    const C: [f64; 6] = [
        -7.784_894_002_430_293e-3,
        -3.223_964_580_411_365e-1,
        -2.400_758_277_161_838,
        -2.549_732_539_343_734,
        4.374_664_141_464_968,
        2.938_163_982_698_783,
    ];
    const D: [f64; 4] = [
        7.784_695_709_041_462e-3,
        3.224_671_290_700_398e-1,
        2.445_134_137_142_996,
        3.754_408_661_907_416,
    ];
    let p = p.clamp(1e-300, 1.0 - 1e-16);
    let tail = |q: f64| {
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    };
    if p < 0.02425 {
        tail((-2.0 * p.ln()).sqrt())
    } else if p > 1.0 - 0.02425 {
        -tail((-2.0 * (1.0 - p).ln()).sqrt())
    } else {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    }
}

/// Design effect of a run: how much more its median wanders between intervals than independent
/// requests would. `intervals` are (requests, p50 ms) per interval; `sd1` is the bootstrap sd
/// of ln(p50) for ONE request (sd at n requests × √n). Returns a factor ≥ 1 (1 when fewer than
/// five intervals carry ten requests or more, i.e. too little to estimate).
#[must_use]
pub fn design_effect(intervals: &[(u64, f64)], sd1: f64) -> f64 {
    let used: Vec<(u64, f64)> = intervals
        .iter()
        .copied()
        .filter(|(n, p50)| *n >= 10 && *p50 > 0.0)
        .collect();
    if used.len() < 5 || sd1 <= 0.0 {
        return 1.0;
    }
    let logs: Vec<f64> = used.iter().map(|(_, p)| p.ln()).collect();
    let observed = mean_sd(&logs).1.powi(2);
    let expected = used.iter().map(|(n, _)| sd1 * sd1 / *n as f64).sum::<f64>() / used.len() as f64;
    if expected <= 0.0 {
        return 1.0;
    }
    (observed / expected).max(1.0)
}

// Per-iteration samples (`breakdown`).

/// Result of a Mann–Whitney U test of `a` against `b`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MannWhitney {
    pub u: f64,
    /// Two-sided p-value.
    pub p: f64,
    /// Probability that a random value of `a` exceeds one of `b` (ties count half):
    /// 0.5 means no shift; near 1, `a` is larger.
    pub effect: f64,
}

/// Mann–Whitney U test; `None` when either side is empty.
#[must_use]
pub fn mann_whitney(a: &[f64], b: &[f64]) -> Option<MannWhitney> {
    let (n1, n2) = (a.len(), b.len());
    if n1 == 0 || n2 == 0 {
        return None;
    }
    let mut all: Vec<(f64, bool)> = a
        .iter()
        .map(|v| (*v, true))
        .chain(b.iter().map(|v| (*v, false)))
        .collect();
    all.sort_by(|x, y| x.0.total_cmp(&y.0));
    let n = all.len();
    let mut rank_sum_a = 0.0;
    let mut tie_term = 0.0;
    let mut i = 0;
    while i < n {
        let mut j = i;
        while j + 1 < n && all[j + 1].0 == all[i].0 {
            j += 1;
        }
        let count = (j - i + 1) as f64;
        let avg_rank = (i + j) as f64 / 2.0 + 1.0;
        for item in &all[i..=j] {
            if item.1 {
                rank_sum_a += avg_rank;
            }
        }
        tie_term += count * count * count - count;
        i = j + 1;
    }
    let (n1f, n2f) = (n1 as f64, n2 as f64);
    let u_a = rank_sum_a - n1f * (n1f + 1.0) / 2.0;
    let mu = n1f * n2f / 2.0;
    let nf = n as f64;
    let var = n1f * n2f / 12.0 * ((nf + 1.0) - tie_term / (nf * (nf - 1.0)).max(1.0));
    let p = if var <= 0.0 {
        1.0
    } else {
        let z = ((u_a - mu).abs() - 0.5).max(0.0) / var.sqrt();
        (2.0 * normal_sf(z)).min(1.0)
    };
    Some(MannWhitney {
        u: u_a,
        p,
        effect: u_a / (n1f * n2f),
    })
}

/// Survival function of the standard normal, 1 - Φ(z), for z >= 0 (Abramowitz–Stegun 7.1.26
/// erfc approximation; absolute error < 1.5e-7, plenty for a significance mark).
fn normal_sf(z: f64) -> f64 {
    let x = z / std::f64::consts::SQRT_2;
    let t = 1.0 / (1.0 + 0.327_591_1 * x);
    let poly = t
        * (0.254_829_592
            + t * (-0.284_496_736
                + t * (1.421_413_741 + t * (-1.453_152_027 + t * 1.061_405_429))));
    0.5 * poly * (-x * x).exp()
}

/// Median of a sample (mean of the two middle values for an even count); 0 when empty.
#[must_use]
pub fn median(v: &[f64]) -> f64 {
    quantile(v, 0.5)
}

/// Linear-interpolated quantile (type 7, as R and `NumPy` default); 0 when empty.
pub fn quantile(v: &[f64], q: f64) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let pos = q.clamp(0.0, 1.0) * (s.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    s[lo] + (s[hi] - s[lo]) * (pos - lo as f64)
}

/// The significance mark printed next to a difference.
#[must_use]
pub fn mark(p: f64) -> &'static str {
    if p < 0.001 {
        "***"
    } else if p < 0.01 {
        "**"
    } else if p < 0.05 {
        "*"
    } else {
        ""
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn cdf_lookup_follows_ranks() {
        let mut h = Hist::default();
        for v in [10u64, 10, 20, 30] {
            h.record_us(v);
        }
        let c = Cdf::of(&h);
        assert_eq!(c.count(), 4);
        assert_eq!(c.at(0.0), 10);
        assert_eq!(c.at(0.5), 10);
        assert_eq!(c.at(0.51), 20);
        assert_eq!(c.at(1.0), 30);
        assert_eq!(Cdf::default().at(0.5), 0);
    }

    #[test]
    fn beta_and_normal_have_the_right_moments() {
        let mut s = Sampler::default();
        let xs: Vec<f64> = (0..20_000).map(|_| s.beta(3.0, 7.0)).collect();
        let (m, sd) = mean_sd(&xs);
        // Beta(3,7): mean 0.3, sd sqrt(21/1100) = 0.138.
        assert!((m - 0.3).abs() < 0.01, "{m}");
        assert!((sd - 0.138).abs() < 0.01, "{sd}");
        let zs: Vec<f64> = (0..20_000).map(|_| s.normal()).collect();
        let (m, sd) = mean_sd(&zs);
        assert!(m.abs() < 0.03 && (sd - 1.0).abs() < 0.03, "{m} {sd}");
        let g: Vec<f64> = (0..20_000).map(|_| s.gamma(0.5)).collect();
        assert!((mean_sd(&g).0 - 0.5).abs() < 0.03);
    }

    #[test]
    fn normal_quantile_matches_tables() {
        assert!((normal_quantile(0.975) - 1.959_964).abs() < 1e-5);
        assert!((normal_quantile(0.995) - 2.575_829).abs() < 1e-5);
        assert!((normal_quantile(0.5)).abs() < 1e-9);
        assert!((normal_quantile(0.0005) + 3.290_527).abs() < 1e-5);
    }

    #[test]
    fn design_effect_is_one_for_steady_runs_and_grows_with_drift() {
        let steady: Vec<(u64, f64)> = (0..10).map(|_| (100, 5.0)).collect();
        assert_eq!(design_effect(&steady, 1.0), 1.0);
        let drifting: Vec<(u64, f64)> = (0..10).map(|i| (100, 5.0 + i as f64)).collect();
        assert!(design_effect(&drifting, 0.5) > 10.0);
        assert_eq!(design_effect(&drifting[..3], 0.5), 1.0);
    }

    #[test]
    fn separated_samples_are_significant() {
        let a: Vec<f64> = (0..10).map(|i| 2000.0 + f64::from(i)).collect();
        let b: Vec<f64> = (0..10).map(|i| 20.0 + f64::from(i)).collect();
        let r = mann_whitney(&a, &b).unwrap();
        assert_eq!(r.u, 100.0);
        assert!(r.p < 0.001, "{}", r.p);
        assert_eq!(r.effect, 1.0);
    }

    #[test]
    fn identical_samples_are_not() {
        let a = vec![5.0; 12];
        let r = mann_whitney(&a, &a).unwrap();
        assert!(r.p > 0.9, "{}", r.p);
        let a: Vec<f64> = (0..20).map(f64::from).collect();
        let b: Vec<f64> = (0..20).map(|i| f64::from(i) + 0.5).collect();
        assert!(mann_whitney(&a, &b).unwrap().p > 0.5);
        assert!(mann_whitney(&[], &a).is_none());
    }

    #[test]
    fn known_value() {
        // Ranks of `a` are 1, 2, 3, 8: U = 14 - 10 = 4; two-sided normal-approx p ≈ 0.18.
        let a = [1.0, 2.0, 3.0, 8.0];
        let b = [4.0, 5.0, 6.0, 7.0, 9.0];
        let r = mann_whitney(&a, &b).unwrap();
        assert_eq!(r.u, 4.0);
        assert!(r.p > 0.1 && r.p < 0.3, "{}", r.p);
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        assert_eq!(quantile(&[1.0, 2.0, 3.0, 4.0, 5.0], 0.9), 4.6);
    }
}
