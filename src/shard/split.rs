//! A shard's deterministic share of a plan, so that N shards together do what one run would:
//! closed VUs (and ramp targets) split as evenly as possible with the remainder to the lowest
//! shards (`exec::schedule::share`); shared iterations split the same way over the shards that
//! have VUs; open rates and ramp targets divided by N, `max_vus` split like VUs; data row `i` goes
//! to shard `i mod N`. Thresholds are taken out of the shard's plan: a shard measures, the merge
//! gates. Pure arithmetic, no I/O.

use super::{ShardError, ShardSpec};
use crate::exec::schedule::share;
use crate::plan::{LoadModel, Plan, Stage, TargetSpec};
use std::fmt::Write as _;

/// The most VUs the closed model reaches (its start or any ramp target).
fn closed_peak(vus: u32, stages: &[Stage]) -> u64 {
    stages
        .iter()
        .map(|s| round_count(s.target))
        .fold(u64::from(vus), u64::max)
}

fn round_count(x: f64) -> u64 {
    if x.is_finite() && x > 0.0 {
        x.round() as u64
    } else {
        0
    }
}

fn share32(total: u32, n: u32, k: u32) -> u32 {
    // share(total, ..) <= total, so it fits back into u32.
    u32::try_from(share(u64::from(total), u64::from(n), u64::from(k))).unwrap_or(total)
}

/// Shard `spec.index`'s share of `plan` (see the module doc). `ShardSpec::WHOLE` returns the
/// plan unchanged except for its thresholds, which stay with the caller for the merge.
#[must_use]
pub fn split(plan: &Plan, spec: ShardSpec) -> Plan {
    let (n, k) = (spec.count.max(1), spec.index);
    let load = match &plan.load {
        LoadModel::Closed {
            vus,
            duration,
            iterations,
            stages,
        } => {
            // Shared iterations go only to shards that get VUs, or they would never run.
            let with_vus = closed_peak(*vus, stages).min(u64::from(n));
            LoadModel::Closed {
                vus: share32(*vus, n, k),
                duration: *duration,
                iterations: iterations.map(|it| {
                    if u64::from(k) < with_vus {
                        share(it, with_vus, u64::from(k))
                    } else {
                        0
                    }
                }),
                stages: stages
                    .iter()
                    .map(|s| Stage {
                        duration: s.duration,
                        target: share(round_count(s.target), u64::from(n), u64::from(k)) as f64,
                    })
                    .collect(),
            }
        }
        LoadModel::Open {
            rate,
            max_vus,
            duration,
            stages,
        } => LoadModel::Open {
            rate: rate / f64::from(n),
            max_vus: share32(*max_vus, n, k),
            duration: *duration,
            stages: stages
                .iter()
                .map(|s| Stage {
                    duration: s.duration,
                    target: s.target / f64::from(n),
                })
                .collect(),
        },
    };
    // Field by field rather than `clone()`, so the data rows are copied once, not twice.
    Plan {
        name: plan.name.clone(),
        source: plan.source.clone(),
        target: plan.target.clone(),
        env_name: plan.env_name.clone(),
        envs: plan.envs.clone(),
        env: plan.env.clone(),
        flags: plan.flags.clone(),
        data: plan
            .data
            .iter()
            .skip(k as usize)
            .step_by(n as usize)
            .cloned()
            .collect(),
        load,
        setup: plan.setup.clone(),
        steps: plan.steps.clone(),
        thresholds: Vec::new(),
        http: plan.http.clone(),
        max_duration: plan.max_duration,
        graceful_stop: plan.graceful_stop,
    }
}

/// Whether some shard of `count` would have work it cannot do: an open-model shard with a rate
/// but no VU (every arrival dropped), or a shard with load but no data row (its requests could
/// not fill their variables). Every shard runs the same check, so all refuse alike.
pub fn check(plan: &Plan, count: u32) -> Result<(), ShardError> {
    let n = u64::from(count.max(1));
    // How many of the lowest shards get load at all.
    let loaded = match &plan.load {
        LoadModel::Closed { vus, stages, .. } => closed_peak(*vus, stages).min(n),
        LoadModel::Open {
            rate,
            max_vus,
            stages,
            ..
        } => {
            let any_rate = *rate > 0.0 || stages.iter().any(|s| s.target > 0.0);
            if any_rate && u64::from(*max_vus) < n {
                return Err(ShardError::Plan(format!(
                    "max_vus {max_vus} cannot be split over {n} shards: shard {max_vus} and above \
                     would get no virtual user and drop every arrival (raise max_vus to at least \
                     {n} or use fewer shards)"
                )));
            }
            if any_rate { n } else { 0 }
        }
    };
    let rows = plan.data.len() as u64;
    if rows > 0 && rows < loaded {
        return Err(ShardError::Plan(format!(
            "the data has {rows} row(s) but {loaded} shards get load: row i goes to shard i mod \
             {n}, so shard {rows} and above would have none (use at most {rows} shards or add rows)"
        )));
    }
    Ok(())
}

fn load_line(load: &LoadModel) -> String {
    let fmt_stages = |s: &[Stage], unit: &str| {
        s.iter()
            .map(|s| format!("{}s→{}{unit}", s.duration.as_secs_f64(), trim(s.target)))
            .collect::<Vec<_>>()
            .join(", ")
    };
    match load {
        LoadModel::Closed {
            vus,
            duration,
            iterations,
            stages,
        } => {
            let mut s = format!("closed, {vus} VUs");
            if let Some(d) = duration {
                let _ = write!(s, " for {}s", d.as_secs_f64());
            }
            if let Some(i) = iterations {
                let _ = write!(s, ", {i} iterations");
            }
            if !stages.is_empty() {
                let _ = write!(s, ", stages [{}]", fmt_stages(stages, " VUs"));
            }
            s
        }
        LoadModel::Open {
            rate,
            max_vus,
            duration,
            stages: st,
        } => {
            let mut s = format!(
                "open, {}/s, max_vus {max_vus}, for {}s",
                trim(*rate),
                duration.as_secs_f64()
            );
            if !st.is_empty() {
                let _ = write!(s, ", stages [{}]", fmt_stages(st, "/s"));
            }
            s
        }
    }
}

/// A number without trailing zeros, at most 6 decimals.
fn trim(x: f64) -> String {
    let s = format!("{x:.6}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// What `--dry-run` prints: the (shard's) share next to the whole plan, and what runs.
#[must_use]
pub fn describe(whole: &Plan, spec: Option<ShardSpec>, hash: &str) -> String {
    let part = split(whole, spec.unwrap_or(ShardSpec::WHOLE));
    let mut s = String::new();
    let _ = match spec {
        Some(sp) => writeln!(s, "shard {sp} of `{}` (plan hash {hash})", whole.name),
        None => writeln!(s, "plan `{}` (plan hash {hash})", whole.name),
    };
    let target = match &whole.target {
        TargetSpec::Url(u) => u.to_string(),
        TargetSpec::EmbeddedDemo { faults } if faults.is_empty() => "embedded demo".to_string(),
        TargetSpec::EmbeddedDemo { faults } => {
            format!("embedded demo, faults {}", faults.join(", "))
        }
    };
    let _ = writeln!(s, "  target:  {target}");
    let _ = writeln!(s, "  load:    {}", load_line(&part.load));
    if spec.is_some_and(|sp| sp.count > 1) {
        let _ = writeln!(s, "  whole:   {}", load_line(&whole.load));
    }
    if !whole.data.is_empty() {
        let _ = match spec {
            Some(sp) if sp.count > 1 => writeln!(
                s,
                "  data:    {} of {} rows (row i where i mod {} = {})",
                part.data.len(),
                whole.data.len(),
                sp.count,
                sp.index
            ),
            _ => writeln!(s, "  data:    {} rows", whole.data.len()),
        };
    }
    let setup = crate::plan::flatten(&whole.setup).count();
    let _ = writeln!(
        s,
        "  steps:   {} request steps{}",
        whole.request_steps().count(),
        if setup > 0 {
            format!(" (+{setup} setup, run once by this process)")
        } else {
            String::new()
        }
    );
    if !whole.thresholds.is_empty() {
        let _ = writeln!(
            s,
            "  gates:   {} thresholds{}",
            whole.thresholds.len(),
            if spec.is_some() {
                ", evaluated by `sonde merge` on the merged result"
            } else {
                ""
            }
        );
    }
    let _ = writeln!(s, "  cap:     {}s", whole.max_duration.as_secs_f64());
    if let LoadModel::Closed { vus: 0, stages, .. } = &part.load
        && stages.iter().all(|st| st.target < 0.5)
    {
        let _ = writeln!(
            s,
            "  note:    this shard gets no virtual user and sends nothing"
        );
    }
    s
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use std::time::Duration;

    fn plan(load: LoadModel, rows: usize) -> Plan {
        let mut p = crate::plan::single::plan(
            &crate::plan::single::SingleRequest {
                method: "GET".into(),
                url: "http://127.0.0.1:9/x".into(),
                headers: Vec::new(),
                cookies: Vec::new(),
                body: None,
            },
            load,
            crate::plan::HttpOptions::default(),
        )
        .unwrap();
        p.data = (0..rows)
            .map(|i| [("row".to_string(), i.to_string())].into_iter().collect())
            .collect();
        p
    }

    #[test]
    fn closed_iterations_only_go_to_shards_with_vus() {
        let p = plan(
            LoadModel::Closed {
                vus: 2,
                duration: None,
                iterations: Some(7),
                stages: Vec::new(),
            },
            0,
        );
        let parts: Vec<_> = (0..3)
            .map(|k| split(&p, ShardSpec { index: k, count: 3 }).load)
            .collect();
        let got: Vec<(u32, Option<u64>)> = parts
            .iter()
            .map(|l| match l {
                LoadModel::Closed {
                    vus, iterations, ..
                } => (*vus, *iterations),
                LoadModel::Open { .. } => panic!("model changed"),
            })
            .collect();
        assert_eq!(got, vec![(1, Some(4)), (1, Some(3)), (0, Some(0))]);
    }

    #[test]
    fn refuses_shards_that_could_not_do_their_part() {
        let open = plan(
            LoadModel::Open {
                rate: 10.0,
                max_vus: 2,
                duration: Duration::from_secs(1),
                stages: Vec::new(),
            },
            0,
        );
        assert!(check(&open, 2).is_ok());
        let e = check(&open, 3).unwrap_err().to_string();
        assert!(e.contains("max_vus 2 cannot be split over 3 shards"), "{e}");
        let closed = plan(
            LoadModel::Closed {
                vus: 4,
                duration: Some(Duration::from_secs(1)),
                iterations: None,
                stages: Vec::new(),
            },
            2,
        );
        assert!(check(&closed, 2).is_ok());
        let e = check(&closed, 3).unwrap_err().to_string();
        assert!(
            e.contains("the data has 2 row(s) but 3 shards get load"),
            "{e}"
        );
        // Three shards but only two with VUs: two rows are enough.
        let few_vus = plan(
            LoadModel::Closed {
                vus: 2,
                duration: Some(Duration::from_secs(1)),
                iterations: None,
                stages: Vec::new(),
            },
            2,
        );
        assert!(check(&few_vus, 3).is_ok());
    }

    #[test]
    fn describes_the_share_and_the_whole() {
        let p = plan(
            LoadModel::Open {
                rate: 100.0,
                max_vus: 10,
                duration: Duration::from_secs(30),
                stages: Vec::new(),
            },
            5,
        );
        let d = describe(&p, Some(ShardSpec { index: 1, count: 3 }), "abc");
        assert!(d.starts_with("shard 1/3 of `"), "{d}");
        assert!(
            d.contains("load:    open, 33.333333/s, max_vus 3, for 30s"),
            "{d}"
        );
        assert!(
            d.contains("whole:   open, 100/s, max_vus 10, for 30s"),
            "{d}"
        );
        assert!(
            d.contains("data:    2 of 5 rows (row i where i mod 3 = 1)"),
            "{d}"
        );
    }
}
