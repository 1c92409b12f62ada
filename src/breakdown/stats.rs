//! Statistics for per-iteration samples: exact-rank Mann–Whitney U with tie correction and a
//! normal approximation (with continuity correction) for the two-sided p-value, and medians.
//! Pure functions; no I/O.

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
pub fn median(v: &[f64]) -> f64 {
    quantile(v, 0.5)
}

/// Linear-interpolated quantile (type 7, as R and NumPy default); 0 when empty.
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
    use super::*;

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
