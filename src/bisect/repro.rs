//! `repro`'s model: the rows (each environment × each cell of the `--matrix` cross product),
//! their outcome per step over `k` runs, and the table and JSON forms. Every value shown is
//! redacted when secret and every message is scrubbed; runs nothing itself.

use super::env::{Axis, LoadedEnv, apply_axis};
use super::flow::Runs;
use crate::import::EnvSpec;
use crate::redact::Redactor;
use crate::report::table::{Col, Txt, fit, put_table};
use comfy_table::Color;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// One row to run: an environment with one matrix cell applied.
#[derive(Debug, Clone)]
pub struct Row {
    /// Index into the environments.
    pub env: usize,
    /// Printable axis values of the cell (`header:Accept-Language=de-DE`).
    pub cell: Vec<String>,
    /// Per axis, the printable value (`None`: the item is removed).
    pub values: Vec<Option<String>>,
    pub spec: EnvSpec,
}

/// How many rows (environments × matrix cells) `repro` runs at most unless `--max-cells`
/// raises it: each row is `k` runs of the whole flow, and the rows are built in memory first.
pub const DEFAULT_MAX_CELLS: u64 = 1_000;

/// The number of rows `rows` would build (environments × the product of the axes' value
/// counts), computed without building anything; `None` when it does not fit in a `u64`.
#[must_use]
pub fn row_count(envs: usize, axes: &[Axis]) -> Option<u64> {
    axes.iter().try_fold(u64::try_from(envs).ok()?, |n, a| {
        n.checked_mul(u64::try_from(a.values.len()).ok()?)
    })
}

/// Refuses a cross product above `max` rows, naming the count and the cap, before any row
/// is built (9 axes of 10 values are a billion rows: gigabytes before the first request).
pub fn check_row_count(envs: usize, axes: &[Axis], max: u64) -> Result<u64, String> {
    let per_env = row_count(1, axes);
    let describe = |n: Option<u64>| {
        n.map_or_else(
            || "more than 18446744073709551615".to_string(),
            |n| n.to_string(),
        )
    };
    match row_count(envs, axes) {
        Some(n) if n <= max => Ok(n),
        total => Err(format!(
            "--matrix makes {} rows ({envs} environment{} × {} cells of {} ax{}), above the cap of {max}; \
             narrow the axes, or raise the cap with --max-cells N",
            describe(total),
            if envs == 1 { "" } else { "s" },
            describe(per_env),
            axes.len(),
            if axes.len() == 1 { "is" } else { "es" },
        )),
    }
}

/// Every environment × every cell of the axes' cross product, environments outermost.
/// Callers bound the size first with `check_row_count`.
#[must_use]
pub fn rows(envs: &[LoadedEnv], axes: &[Axis]) -> Vec<Row> {
    let mut cells: Vec<Vec<(usize, usize)>> = vec![Vec::new()];
    for (a, axis) in axes.iter().enumerate() {
        let mut next = Vec::with_capacity(cells.len() * axis.values.len());
        for c in &cells {
            for v in 0..axis.values.len() {
                let mut c2 = c.clone();
                c2.push((a, v));
                next.push(c2);
            }
        }
        cells = next;
    }
    let mut out = Vec::new();
    for (e, env) in envs.iter().enumerate() {
        for cell in &cells {
            let mut spec = env.spec.clone();
            let mut labels = Vec::new();
            let mut values = Vec::new();
            for (a, v) in cell {
                let axis = &axes[*a];
                let value = &axis.values[*v];
                apply_axis(&mut spec, axis, value);
                labels.push(axis.label(value));
                values.push(
                    value
                        .as_ref()
                        .map(|v| crate::import::env::display_value(axis.kind, &axis.name, v)),
                );
            }
            out.push(Row {
                env: e,
                cell: labels,
                values,
                spec,
            });
        }
    }
    out
}

#[derive(Debug, Clone, Serialize)]
pub struct StepDoc {
    pub step: String,
    /// Runs in which the step sent a request.
    pub ran: usize,
    pub failed: usize,
    /// Final status → runs.
    pub statuses: BTreeMap<u16, usize>,
    pub p50_ms: Option<f64>,
    pub first_failure: Option<String>,
    pub flaky: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct RowDoc {
    pub env: String,
    /// The matrix cell, one `kind:name=value` per axis (values redacted when secret).
    pub cell: Vec<String>,
    /// Per axis, the value (`null`: the item removed).
    #[serde(skip)]
    pub values: Vec<Option<String>>,
    pub runs: usize,
    pub failed: usize,
    /// `pass`, `fail` or `flaky`.
    pub verdict: &'static str,
    /// `step: message` of the first failure.
    pub first_failure: Option<String>,
    pub steps: Vec<StepDoc>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ReproDoc {
    pub schema: &'static str,
    pub scenario: Option<String>,
    pub target: String,
    pub k: usize,
    pub steps: Vec<String>,
    /// The `--matrix` axes (`kind:name`), in the order of each row's `cell`.
    pub matrix: Vec<String>,
    pub rows: Vec<RowDoc>,
    pub notes: Vec<String>,
}

impl ReproDoc {
    /// Some row failed at least once.
    #[must_use]
    pub fn any_failed(&self) -> bool {
        self.rows.iter().any(|r| r.failed > 0)
    }
}

/// The document of one row's runs.
#[must_use]
pub fn row_doc(label: &str, row: &Row, runs: &Runs, steps: &[String], red: &Redactor) -> RowDoc {
    let failed = runs.failed();
    let verdict = match runs.outcome() {
        super::ddmin::Outcome::Pass => "pass",
        super::ddmin::Outcome::Fail => "fail",
        super::ddmin::Outcome::Flaky => "flaky",
    };
    let step_docs = steps
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let mut statuses = BTreeMap::new();
            let mut ran = 0;
            let mut failed = 0;
            let mut first = None;
            for r in &runs.runs {
                let Some(s) = r.steps.get(i) else { continue };
                if s.ran {
                    ran += 1;
                }
                if let Some(st) = s.status {
                    *statuses.entry(st).or_insert(0) += 1;
                }
                if let Some(f) = &s.failure {
                    failed += 1;
                    first.get_or_insert_with(|| red.scrub(f).into_owned());
                }
            }
            // Every run of the step, passing or failing: repro shows how long the step took
            // under this environment, whatever its outcome.
            let lat = runs.rec.steps.get(i).map(|s| {
                let mut all = s.latency.clone();
                all.merge(&s.failed_latency);
                all
            });
            StepDoc {
                step: name.clone(),
                ran,
                failed,
                statuses,
                p50_ms: lat
                    .as_ref()
                    .filter(|h| !h.is_empty())
                    .map(|h| (h.quantile_ms(0.5) * 100.0).round() / 100.0),
                first_failure: first,
                flaky: failed > 0 && failed < ran,
            }
        })
        .collect();
    RowDoc {
        env: label.to_string(),
        cell: row.cell.clone(),
        values: row.values.clone(),
        runs: runs.runs.len(),
        failed,
        verdict,
        first_failure: runs
            .first_failure()
            .and_then(|(i, m)| steps.get(i).map(|s| format!("{s}: {}", red.scrub(&m)))),
        steps: step_docs,
    }
}

fn step_cell(s: &StepDoc) -> String {
    if s.ran == 0 {
        return "not run".into();
    }
    let codes = if s.statuses.is_empty() {
        "no response".to_string()
    } else {
        s.statuses
            .keys()
            .map(u16::to_string)
            .collect::<Vec<_>>()
            .join("/")
    };
    let p50 = s.p50_ms.map(|p| format!(" {p:.1}ms")).unwrap_or_default();
    if s.flaky {
        format!("flaky {codes} ({}/{} failed)", s.failed, s.ran)
    } else if s.failed > 0 {
        format!("FAIL {codes}{p50}")
    } else {
        format!("{codes}{p50}")
    }
}

/// The table: one row per environment (× cell), one column per step. `width` is the
/// terminal's (`None` when piped: full width); cells wrap between words only, never inside a
/// status, a latency or a value. `color` marks failures red.
#[must_use]
pub fn render(doc: &ReproDoc, width: Option<u16>, color: bool) -> String {
    let mut out = String::new();
    let _ = write!(
        out,
        "repro     {}\ntarget    {}\nruns      {} per environment; cells: status, p50 latency\n",
        doc.scenario
            .as_deref()
            .unwrap_or("(the request of the environment file)"),
        doc.target,
        doc.k
    );
    for n in &doc.notes {
        let _ = writeln!(out, "note      {n}");
    }
    // Axes with one value are the same on every row: said once above the table.
    let varying: Vec<usize> = (0..doc.matrix.len())
        .filter(|a| {
            let first = doc.rows.first().and_then(|r| r.values.get(*a));
            doc.rows.iter().any(|r| r.values.get(*a) != first)
        })
        .collect();
    if let Some(r) = doc.rows.first() {
        for a in (0..doc.matrix.len()).filter(|a| !varying.contains(a)) {
            if let Some(c) = r.cell.get(a) {
                let _ = writeln!(out, "fixed     {c}");
            }
        }
    }
    let axis_names: Vec<String> = varying
        .iter()
        .map(|a| {
            let m = &doc.matrix[*a];
            m.split_once(':').map_or(m.clone(), |(_, n)| n.to_string())
        })
        .collect();
    let mut cols = vec![Col::name("env")];
    cols.extend(axis_names.iter().map(|n| Col::text(n)));
    cols.push(Col::name("result"));
    cols.extend(doc.steps.iter().map(|n| Col::text(n)));
    let red = |text: String| {
        let c = text.starts_with("FAIL") || text.starts_with("flaky");
        Txt(text, c.then_some(Color::Red))
    };
    let mut rows: Vec<Vec<Txt>> = Vec::new();
    let mut failures = Vec::new();
    for r in &doc.rows {
        let verdict = match r.verdict {
            "pass" => format!("pass {}/{}", r.runs - r.failed, r.runs),
            "fail" => format!("FAIL {}/{}", r.failed, r.runs),
            _ => format!("flaky: {}/{} failed", r.failed, r.runs),
        };
        let mut cells = vec![Txt::from(r.env.clone())];
        for a in &varying {
            cells.push(Txt::from(match r.values.get(*a) {
                Some(Some(v)) => v.clone(),
                _ => "(absent)".to_string(),
            }));
        }
        cells.push(red(verdict));
        cells.extend(r.steps.iter().map(|s| red(step_cell(s))));
        rows.push(cells);
        if let Some(f) = &r.first_failure {
            let mut label = r.env.clone();
            for a in &varying {
                if let Some(c) = r.cell.get(*a) {
                    label.push_str(" · ");
                    label.push_str(c);
                }
            }
            failures.push(format!("  {label}: {f}"));
        }
    }
    put_table(&mut out, &fit(&cols, rows, width, color));
    if !failures.is_empty() {
        out.push_str("first failure per environment\n");
        for f in failures {
            out.push_str(&f);
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    fn axis(name: &str, n: usize) -> Axis {
        let values: Vec<String> = (0..n).map(|i| i.to_string()).collect();
        Axis::parse(&format!("header:{name}={}", values.join(","))).unwrap()
    }

    #[test]
    fn the_cross_product_is_counted_without_building_it() {
        let nine: Vec<Axis> = (0..9).map(|i| axis(&format!("x{i}"), 10)).collect();
        assert_eq!(row_count(2, &nine), Some(2_000_000_000));
        let e = check_row_count(2, &nine, DEFAULT_MAX_CELLS).unwrap_err();
        assert!(e.contains("2000000000 rows"), "{e}");
        assert!(e.contains("1000000000 cells of 9 axes"), "{e}");
        assert!(
            e.contains("cap of 1000") && e.contains("--max-cells"),
            "{e}"
        );
        // Twenty axes of ten values overflow a u64: still a clear refusal, no panic.
        let twenty: Vec<Axis> = (0..20).map(|i| axis(&format!("y{i}"), 10)).collect();
        assert_eq!(row_count(1, &twenty), None);
        let e = check_row_count(1, &twenty, u64::MAX).unwrap_err();
        assert!(e.contains("more than 18446744073709551615 rows"), "{e}");
        assert_eq!(check_row_count(3, &[axis("a", 2)], 6), Ok(6));
        assert_eq!(check_row_count(1, &[], 1), Ok(1));
    }
}
