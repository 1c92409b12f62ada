//! Whether two saved runs can be compared at all: same scenario, target kind, load model,
//! latency origin and environment (else `CompareError::NotComparable` with the reason), and the
//! notes worth stating about differences that keep them comparable. No statistics here.

use super::compare::CompareError;
use crate::aggregate::Summary;
use crate::aggregate::summary::TargetKind;
use std::fmt::Write as _;

/// Refuses runs of different scenarios, load models or target kinds; returns notes on
/// differences that keep them comparable.
pub fn check_comparable(b: &Summary, c: &Summary) -> Result<Vec<String>, CompareError> {
    let no = |m: String| Err(CompareError::NotComparable(m));
    for (which, s) in [("baseline", b), ("candidate", c)] {
        if !s.schema.starts_with("sonde.run/v1") {
            return no(format!(
                "the {which} has schema `{}`, expected `sonde.run/v1`",
                s.schema
            ));
        }
    }
    if b.scenario != c.scenario {
        return no(format!(
            "different scenarios: `{}` (baseline) vs `{}` (candidate)",
            b.scenario, c.scenario
        ));
    }
    if b.target.kind != c.target.kind {
        return no(format!(
            "different target kinds: {} (baseline) vs {} (candidate)",
            b.target.kind, c.target.kind
        ));
    }
    let (lb, lc) = (&b.load, &c.load);
    if lb.model != lc.model
        || lb.vus != lc.vus
        || lb.rate_per_s != lc.rate_per_s
        || lb.max_vus != lc.max_vus
        || lb.stages != lc.stages
    {
        return no(format!(
            "different load models: {} (baseline) vs {} (candidate)",
            describe_load(lb),
            describe_load(lc)
        ));
    }
    if b.latency_measured_from != c.latency_measured_from {
        return no(format!(
            "latency measured from {} (baseline) vs {} (candidate)",
            b.latency_measured_from, c.latency_measured_from
        ));
    }
    if b.env != c.env {
        return no(format!(
            "different environments: {} (baseline) vs {} (candidate)",
            b.env.as_deref().unwrap_or("none"),
            c.env.as_deref().unwrap_or("none")
        ));
    }
    let mut notes = Vec::new();
    if b.target.kind == TargetKind::Url && b.target.url != c.target.url {
        notes.push(format!(
            "targets differ: {} (baseline) vs {} (candidate)",
            b.target.url, c.target.url
        ));
    }
    if b.target.demo_faults != c.target.demo_faults {
        notes.push(format!(
            "demo faults differ: [{}] (baseline) vs [{}] (candidate)",
            b.target.demo_faults.join(", "),
            c.target.demo_faults.join(", ")
        ));
    }
    for (which, s) in [("baseline", b), ("candidate", c)] {
        if s.interrupted {
            notes.push(format!("the {which} run was interrupted (partial results)"));
        }
    }
    if b.duration_s > 0.0 && c.duration_s > 0.0 {
        let r = c.duration_s / b.duration_s;
        if !(0.5..=2.0).contains(&r) {
            notes.push(format!(
                "durations differ: {:.1}s (baseline) vs {:.1}s (candidate)",
                b.duration_s, c.duration_s
            ));
        }
    }
    Ok(notes)
}

fn describe_load(l: &crate::aggregate::summary::LoadInfo) -> String {
    let mut s = l.model.to_string();
    if let Some(v) = l.vus {
        let _ = write!(s, " {v} VUs");
    }
    if let Some(r) = l.rate_per_s {
        let _ = write!(s, " {r}/s");
    }
    if let Some(m) = l.max_vus {
        let _ = write!(s, " max {m} VUs");
    }
    if !l.stages.is_empty() {
        let _ = write!(s, " {} stages", l.stages.len());
    }
    s
}
