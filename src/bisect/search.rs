//! The bisection itself: diff the good and the bad environment, keep identity items from the
//! bad side, confirm the premise (bad fails, good passes), then ddmin over the remaining
//! differences, each probe run `k` times. Produces a [`Finding`]; prints nothing but one
//! progress line per probe through the caller's callback (counts only, never values).

use super::ddmin::{self, Outcome, probe_bound};
use super::flow::{Flow, Runs};
use crate::import::{Difference, EnvSpec, apply_bad, diff};

#[derive(Debug, Clone)]
pub struct Options {
    pub k: usize,
    pub max_probes: usize,
    /// Let ddmin vary `session`-like credentials too instead of keeping the bad side's.
    pub vary_identity: bool,
}

/// How the premise runs went.
#[derive(Debug, Clone, Default)]
pub struct Premise {
    pub good_runs: usize,
    pub good_failed: usize,
    pub bad_runs: usize,
    pub bad_failed: usize,
    /// `(step index, message)` of the bad environment's first failure.
    pub bad_failure: Option<(usize, String)>,
    pub good_failure: Option<(usize, String)>,
}

/// A minimal failing set of differences.
#[derive(Debug, Clone)]
pub struct Found {
    pub culprits: Vec<Difference>,
    /// The culprit is the bad side's identity itself (good + bad identity already fails).
    pub identity_culprit: bool,
    /// Differences ddmin varied.
    pub varied: usize,
    pub probes: usize,
    pub bound: usize,
    pub exhausted: bool,
    pub flaky_probes: usize,
    /// Across flaky probes: runs that failed / runs (the failure rate of a flaky culprit).
    pub flaky_fail_rate: Option<f64>,
    /// The environment every probe starts from: good plus the kept identity items.
    pub base: EnvSpec,
    /// `base` with the culprits applied: the minimal failing environment.
    pub failing: EnvSpec,
}

/// What a bisection found (the exit code follows from it in `cli::bisect`).
#[derive(Debug, Clone)]
pub enum Finding {
    /// Good and bad hold the same items: nothing to bisect, nothing was sent.
    Identical,
    /// The target never answered (every request of both premise checks failed to connect).
    Unreachable {
        message: String,
    },
    /// The bad environment passed every run.
    NotReproducible,
    /// The good environment failed too.
    GoodFails,
    Found(Box<Found>),
}

/// Everything a report needs.
#[derive(Debug, Clone)]
pub struct Bisection {
    pub differences: Vec<Difference>,
    /// Identity differences kept from the bad side (empty with `--vary-identity`).
    pub identity: Vec<Difference>,
    pub premise: Premise,
    pub verdict: Finding,
}

/// Progress of one probe, for a live line on stderr.
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    pub probe: usize,
    pub applied: usize,
    pub of: usize,
    pub outcome: Outcome,
}

/// The premise: the bad environment fails here and the good one passes. Returns the bad
/// side's runs when it holds; otherwise `out.verdict` says why not.
async fn premise(
    flow: &Flow,
    good: &EnvSpec,
    bad: &EnvSpec,
    k: usize,
    out: &mut Bisection,
) -> Option<super::flow::Runs> {
    flow.label_runs("bad");
    let bad_runs = flow.run(bad, k).await;
    let p = &mut out.premise;
    p.bad_runs = k;
    p.bad_failed = bad_runs.failed();
    p.bad_failure = bad_runs.first_failure();
    if bad_runs.outcome() == Outcome::Pass {
        out.verdict = Finding::NotReproducible;
        return None;
    }
    flow.label_runs("good");
    let good_runs = flow.run(good, k).await;
    p.good_runs = k;
    p.good_failed = good_runs.failed();
    p.good_failure = good_runs.first_failure();
    if bad_runs.unreachable() && good_runs.unreachable() {
        let message = bad_runs
            .first_failure()
            .map_or_else(|| "no response".into(), |(_, m)| m);
        out.verdict = Finding::Unreachable { message };
        return None;
    }
    if good_runs.outcome() != Outcome::Pass {
        out.verdict = Finding::GoodFails;
        return None;
    }

    Some(bad_runs)
}

/// Probe 0: the good environment with the bad side's identity. When that already fails,
/// the identity is the culprit.
async fn identity_probe(
    flow: &Flow,
    base: &EnvSpec,
    identity: &[Difference],
    of: usize,
    k: usize,
    flaky: &mut FlakyTally,
    progress: &mut impl FnMut(Progress),
) -> Option<Found> {
    flow.label_runs("good + every difference");
    let runs = flow.run(base, k).await;
    progress(Progress {
        probe: 0,
        applied: 0,
        of,
        outcome: runs.outcome(),
    });
    if !runs.outcome().failed() {
        return None;
    }
    flaky.add(&runs);
    Some(Found {
        culprits: identity.to_vec(),
        identity_culprit: true,
        varied: 0,
        probes: 1,
        bound: 1,
        exhausted: false,
        flaky_probes: usize::from(runs.outcome() == Outcome::Flaky),
        flaky_fail_rate: flaky.rate(),
        failing: base.clone(),
        base: base.clone(),
    })
}

/// Bisects `good` against `bad` on `flow`.
pub async fn bisect(
    flow: &Flow,
    good: &EnvSpec,
    bad: &EnvSpec,
    opts: &Options,
    mut progress: impl FnMut(Progress),
) -> Bisection {
    let k = opts.k.max(1);
    let differences = diff(good, bad);
    let mut out = Bisection {
        differences: differences.clone(),
        identity: Vec::new(),
        premise: Premise::default(),
        verdict: Finding::Identical,
    };
    if differences.is_empty() {
        return out;
    }
    let (identity, varying) = split_identity(&differences, opts);
    out.identity = identity.clone();

    let Some(bad_runs) = premise(flow, good, bad, k, &mut out).await else {
        return out;
    };

    let base = apply_bad(good, &identity.iter().collect::<Vec<_>>());
    let mut flaky = FlakyTally::default();
    flaky.add(&bad_runs);
    if !identity.is_empty()
        && let Some(found) = identity_probe(
            flow,
            &base,
            &identity,
            varying.len(),
            k,
            &mut flaky,
            &mut progress,
        )
        .await
    {
        out.verdict = Finding::Found(Box::new(found));
        return out;
    }

    let found = narrow(flow, base, &varying, k, opts, flaky, &mut progress).await;
    out.verdict = Finding::Found(Box::new(found));
    out
}

/// The differences held fixed on the bad side (the identity, unless `vary_identity`) and
/// those to vary; when only identity differs, the identity is all there is to vary.
fn split_identity(
    differences: &[Difference],
    opts: &Options,
) -> (Vec<Difference>, Vec<Difference>) {
    let (mut identity, mut varying): (Vec<Difference>, Vec<Difference>) = differences
        .iter()
        .cloned()
        .partition(|d| !opts.vary_identity && d.is_identity());
    if varying.is_empty() {
        varying = std::mem::take(&mut identity);
    }
    (identity, varying)
}

/// Delta-debugs `varying` applied on `base` down to a minimal failing set of differences.
async fn narrow(
    flow: &Flow,
    base: EnvSpec,
    varying: &[Difference],
    k: usize,
    opts: &Options,
    mut flaky: FlakyTally,
    progress: &mut impl FnMut(Progress),
) -> Found {
    let n = varying.len();
    let minimal = ddmin::ddmin(
        (0..n).collect(),
        opts.max_probes,
        async |subset: &[usize]| {
            let diffs: Vec<&Difference> = subset.iter().filter_map(|i| varying.get(*i)).collect();
            flow.label_runs(format!(
                "probe: {} difference(s) from the bad side",
                diffs.len()
            ));
            let runs = flow.run(&apply_bad(&base, &diffs), k).await;
            let outcome = runs.outcome();
            if outcome == Outcome::Flaky {
                flaky.add(&runs);
            }
            flaky.probes += 1;
            progress(Progress {
                probe: flaky.probes,
                applied: subset.len(),
                of: n,
                outcome,
            });
            outcome
        },
    )
    .await;
    let culprits: Vec<Difference> = minimal
        .culprits
        .iter()
        .filter_map(|i| varying.get(*i).cloned())
        .collect();
    let failing = apply_bad(&base, &culprits.iter().collect::<Vec<_>>());
    Found {
        culprits,
        identity_culprit: false,
        varied: n,
        probes: minimal.probes,
        bound: probe_bound(n),
        exhausted: minimal.exhausted,
        flaky_probes: minimal.flaky_probes,
        flaky_fail_rate: flaky.rate(),
        base,
        failing,
    }
}

/// Failure counts over the runs of flaky probes (and a flaky bad premise).
#[derive(Default)]
struct FlakyTally {
    runs: usize,
    failed: usize,
    probes: usize,
}

impl FlakyTally {
    fn add(&mut self, r: &Runs) {
        if r.outcome() == Outcome::Flaky {
            self.runs += r.runs.len();
            self.failed += r.failed();
        }
    }

    fn rate(&self) -> Option<f64> {
        (self.runs > 0).then(|| self.failed as f64 / self.runs as f64)
    }
}

/// How far to trust a result, in words, with the chance that a probe which passed all `k`
/// runs hid a failure (`(1 - fail rate)^k` when runs disagreed somewhere).
#[must_use]
pub fn confidence(found: &Found, k: usize) -> (&'static str, String) {
    if found.exhausted {
        return (
            "low",
            format!(
                "the probe budget ran out after {} probes: the set fails but may not be minimal (raise --max-probes)",
                found.probes
            ),
        );
    }
    match found.flaky_fail_rate {
        Some(rate) => {
            let miss = (1.0 - rate).powi(k as i32);
            let level = if miss <= 0.05 { "medium" } else { "low" };
            (
                level,
                format!(
                    "flaky: runs of the same probe disagreed ({} flaky probe{}, the failure showed in {:.0}% of their runs); a probe that passed {k} times in a row could still hide it with probability {:.1}% (raise -n to lower it)",
                    found.flaky_probes,
                    if found.flaky_probes == 1 { "" } else { "s" },
                    rate * 100.0,
                    miss * 100.0
                ),
            )
        }
        None => (
            "high",
            if k == 1 {
                "one run per probe (-n 1): flakiness could not be seen; raise -n to check"
                    .to_string()
            } else {
                format!("every probe gave the same outcome in all {k} of its runs")
            },
        ),
    }
}
