//! Delta debugging (Zeller & Hildebrandt's ddmin) over a list of differences: finds a
//! 1-minimal subset that still fails, so interactions (two or three differences that fail only
//! together) are found, not just single culprits. Generic over an async probe; no HTTP here.

use std::collections::HashMap;

/// What one probe (a subset of differences applied on top of the good environment) did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Every run passed.
    Pass,
    /// Every run failed.
    Fail,
    /// Some runs passed and some failed: counts as a failure (the bug showed), marked flaky.
    Flaky,
}

impl Outcome {
    #[must_use]
    pub fn failed(self) -> bool {
        !matches!(self, Outcome::Pass)
    }
}

/// The result of a minimisation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Minimal {
    /// Indices into the differences, sorted.
    pub culprits: Vec<usize>,
    /// Distinct probes run (cached repeats not counted).
    pub probes: usize,
    /// Probes whose runs disagreed.
    pub flaky_probes: usize,
    /// The probe budget ran out: `culprits` still fails but may not be minimal.
    pub exhausted: bool,
}

/// The worst-case number of probes ddmin needs for `n` differences (n² + 3n, Zeller 2002).
#[must_use]
pub fn probe_bound(n: usize) -> usize {
    n * n + 3 * n
}

fn split(c: &[usize], n: usize) -> Vec<Vec<usize>> {
    let mut out = Vec::with_capacity(n);
    let mut start = 0;
    for i in 0..n {
        let len = (c.len() - start) / (n - i);
        out.push(c[start..start + len].to_vec());
        start += len;
    }
    out
}

/// Minimises `all` (which must fail; the empty set must pass) with at most `max_probes` probes.
pub async fn ddmin<F>(all: Vec<usize>, max_probes: usize, mut probe: F) -> Minimal
where
    F: AsyncFnMut(&[usize]) -> Outcome,
{
    let mut cache: HashMap<Vec<usize>, Outcome> = HashMap::new();
    let mut probes = 0usize;
    let mut flaky = 0usize;
    let mut exhausted = false;
    let mut c = all;
    c.sort_unstable();
    let mut n = 2usize;

    // Runs (or recalls) one probe; None when the budget is spent.
    macro_rules! test {
        ($set:expr) => {{
            let mut key: Vec<usize> = $set.clone();
            key.sort_unstable();
            if let Some(o) = cache.get(&key) {
                Some(*o)
            } else if probes >= max_probes {
                exhausted = true;
                None
            } else {
                probes += 1;
                let o = probe(&key).await;
                if o == Outcome::Flaky {
                    flaky += 1;
                }
                cache.insert(key, o);
                Some(o)
            }
        }};
    }

    'outer: while c.len() >= 2 {
        let parts = split(&c, n.min(c.len()));
        for p in &parts {
            match test!(p) {
                None => break 'outer,
                Some(o) if o.failed() => {
                    c = p.clone();
                    n = 2;
                    continue 'outer;
                }
                Some(_) => {}
            }
        }
        if parts.len() > 2 {
            for p in &parts {
                let complement: Vec<usize> = c.iter().copied().filter(|x| !p.contains(x)).collect();
                match test!(complement) {
                    None => break 'outer,
                    Some(o) if o.failed() => {
                        c = complement;
                        n = (n - 1).max(2);
                        continue 'outer;
                    }
                    Some(_) => {}
                }
            }
        }
        if n >= c.len() {
            break;
        }
        n = (n * 2).min(c.len());
    }
    Minimal {
        culprits: c,
        probes,
        flaky_probes: flaky,
        exhausted,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(n: usize, rule: impl Fn(&[usize]) -> bool) -> Minimal {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(ddmin((0..n).collect(), 10_000, async |s: &[usize]| {
            if rule(s) {
                Outcome::Fail
            } else {
                Outcome::Pass
            }
        }))
    }

    #[test]
    fn single_culprit() {
        let m = run(30, |s| s.contains(&17));
        assert_eq!(m.culprits, vec![17]);
        assert!(m.probes <= probe_bound(30));
        assert!(
            m.probes <= 20,
            "a single culprit takes about 2·log2(n) probes, took {}",
            m.probes
        );
    }

    #[test]
    fn two_and_three_way_interactions() {
        let m = run(30, |s| s.contains(&3) && s.contains(&28));
        assert_eq!(m.culprits, vec![3, 28]);
        assert!(m.probes <= probe_bound(30));
        let m = run(30, |s| s.contains(&0) && s.contains(&14) && s.contains(&29));
        assert_eq!(m.culprits, vec![0, 14, 29]);
        assert!(m.probes <= probe_bound(30));
    }

    #[test]
    fn budget_is_respected() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let m = rt.block_on(ddmin((0..30).collect(), 3, async |s: &[usize]| {
            if s.contains(&5) && s.contains(&25) {
                Outcome::Fail
            } else {
                Outcome::Pass
            }
        }));
        assert!(m.exhausted);
        assert_eq!(m.probes, 3);
        assert!(m.culprits.contains(&5) && m.culprits.contains(&25));
    }

    #[test]
    fn flaky_probes_are_counted_as_failures() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let m = rt.block_on(ddmin((0..8).collect(), 100, async |s: &[usize]| {
            if s.contains(&6) {
                Outcome::Flaky
            } else {
                Outcome::Pass
            }
        }));
        assert_eq!(m.culprits, vec![6]);
        assert!(m.flaky_probes > 0);
    }
}
