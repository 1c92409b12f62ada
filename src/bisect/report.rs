//! `bisect`'s report: one document (the JSON form, `sonde.bisect/v1`) built from a
//! [`Bisection`], and its text form. Names always show; values show only when not secret
//! (unless `--include-sensitive`); free text is scrubbed. Runs nothing.

use super::search::{Bisection, Finding, Found, confidence};
use crate::import::Difference;
use crate::import::env::display_value;
use crate::redact::Redactor;
use crate::report::table::{Col, Txt, fit, put_table};
use serde::Serialize;
use std::fmt::Write as _;

#[derive(Debug, Clone, Serialize)]
pub struct ItemDoc {
    pub kind: String,
    pub name: String,
    /// `null` when absent on that side; `‹redacted›` when secret.
    pub good: Option<String>,
    pub bad: Option<String>,
    pub secret: bool,
}

impl ItemDoc {
    #[must_use]
    pub fn new(d: &Difference, include_sensitive: bool) -> ItemDoc {
        let show = |v: &Option<String>| {
            v.as_ref().map(|v| {
                if include_sensitive {
                    v.clone()
                } else {
                    display_value(d.kind, &d.name, v)
                }
            })
        };
        ItemDoc {
            kind: d.kind.as_str().to_string(),
            name: d.name.clone(),
            good: show(&d.good),
            bad: show(&d.bad),
            secret: d.is_secret(),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct SideDoc {
    pub runs: usize,
    pub failed: usize,
    /// `step: message` of the first failure.
    pub first_failure: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PremiseDoc {
    pub good: SideDoc,
    pub bad: SideDoc,
}

#[derive(Debug, Clone, Serialize)]
pub struct BisectDoc {
    pub schema: &'static str,
    /// `culprit_found`, `not_reproducible`, `good_fails` or `unreachable`.
    pub outcome: &'static str,
    pub message: String,
    pub scenario: Option<String>,
    pub target: String,
    pub good: String,
    pub bad: String,
    pub k: usize,
    pub differences: usize,
    /// Identity items kept from the bad side (`--vary-identity` varies them instead).
    pub identity_kept: Vec<ItemDoc>,
    pub premise: PremiseDoc,
    pub culprits: Vec<ItemDoc>,
    /// The culprit is the bad side's identity (good plus it already fails).
    pub identity_culprit: bool,
    /// Differences ddmin varied.
    pub varied: usize,
    pub probes: usize,
    /// ddmin's worst case for `varied` differences (n² + 3n).
    pub probe_bound: usize,
    pub max_probes: usize,
    pub exhausted: bool,
    /// Every request sent: setup, premise, probes and the final witness run.
    pub requests: u64,
    pub flaky: bool,
    pub flaky_probes: usize,
    /// `high`, `medium` or `low`.
    pub confidence: &'static str,
    pub confidence_note: String,
    /// A curl command sending the failing request (secrets as `$SONDE_…` placeholders).
    pub curl: Option<String>,
    /// Variables the curl command and the repro line read; export them before running.
    pub placeholders: Vec<String>,
    /// When the curl points at the embedded demo (gone once bisect exits): how to start a demo
    /// and rerun against it with `--target`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reproduce_note: Option<String>,
    /// A `sonde repro` line toggling each culprit between its good and bad value.
    pub repro: Option<String>,
    pub notes: Vec<String>,
}

/// What the document needs besides the bisection.
#[derive(Debug, Clone, Default)]
pub struct Context {
    pub scenario: Option<String>,
    pub target: String,
    pub good: String,
    pub bad: String,
    pub k: usize,
    pub max_probes: usize,
    pub requests: u64,
    pub steps: Vec<String>,
    pub include_sensitive: bool,
    pub curl: Option<String>,
    pub placeholders: Vec<String>,
    pub reproduce_note: Option<String>,
    pub repro: Option<String>,
    pub notes: Vec<String>,
}

fn side(
    runs: usize,
    failed: usize,
    f: Option<&(usize, String)>,
    cx: &Context,
    red: &Redactor,
) -> SideDoc {
    SideDoc {
        runs,
        failed,
        first_failure: f.map(|(i, m)| {
            let step = cx.steps.get(*i).map_or("?", String::as_str);
            format!("{step}: {}", red.scrub(m))
        }),
    }
}

/// The bisection as a document (`--format json`, and what the table renders).
// Long on purpose: most of it is the document's field list, filled once; the found case is
// `found`.
#[must_use]
pub fn document(b: &Bisection, cx: &Context, red: &Redactor) -> BisectDoc {
    let p = &b.premise;
    let premise = PremiseDoc {
        good: side(p.good_runs, p.good_failed, p.good_failure.as_ref(), cx, red),
        bad: side(p.bad_runs, p.bad_failed, p.bad_failure.as_ref(), cx, red),
    };
    let mut doc = BisectDoc {
        schema: "sonde.bisect/v1",
        outcome: "culprit_found",
        message: String::new(),
        scenario: cx.scenario.clone(),
        target: cx.target.clone(),
        good: cx.good.clone(),
        bad: cx.bad.clone(),
        k: cx.k,
        differences: b.differences.len(),
        identity_kept: b
            .identity
            .iter()
            .map(|d| ItemDoc::new(d, cx.include_sensitive))
            .collect(),
        premise,
        culprits: Vec::new(),
        identity_culprit: false,
        varied: 0,
        probes: 0,
        probe_bound: 0,
        max_probes: cx.max_probes,
        exhausted: false,
        requests: cx.requests,
        flaky: false,
        flaky_probes: 0,
        confidence: "none",
        confidence_note: String::new(),
        curl: None,
        placeholders: Vec::new(),
        reproduce_note: None,
        repro: None,
        notes: cx.notes.clone(),
    };
    let tried = format!(
        "bad ran {} time(s), good {} time(s)",
        p.bad_runs, p.good_runs
    );
    match &b.verdict {
        Finding::Identical => {
            doc.outcome = "identical";
            doc.message =
                "the good and the bad environment are identical: nothing to bisect".into();
        }
        Finding::Unreachable { message } => {
            doc.outcome = "unreachable";
            doc.message = format!(
                "{} could not be reached: every request failed ({})",
                cx.target,
                red.scrub(message)
            );
        }
        Finding::NotReproducible => {
            doc.outcome = "not_reproducible";
            doc.message = format!(
                "not reproducible here: the bad environment passed all {} runs against {} ({} differences from the good one; tried the bad environment as given{}). Is it the same target, and does the failure need state this flow does not create?",
                p.bad_runs,
                cx.target,
                b.differences.len(),
                if cx.scenario.is_some() {
                    " on the scenario's steps"
                } else {
                    ", its own request"
                }
            );
        }
        Finding::GoodFails => {
            doc.outcome = "good_fails";
            doc.message = format!(
                "the good environment fails too ({} of {} runs; {}): there is no good/bad difference to narrow down; {tried}",
                p.good_failed,
                p.good_runs,
                doc.premise
                    .good
                    .first_failure
                    .clone()
                    .unwrap_or_else(|| "no message".into())
            );
        }
        Finding::Found(f) => found(&mut doc, f, cx),
    }
    doc
}

/// The document's culprit fields and message for a found culprit set.
fn found(doc: &mut BisectDoc, f: &Found, cx: &Context) {
    let (level, note) = confidence(f, cx.k);
    doc.culprits = f
        .culprits
        .iter()
        .map(|d| ItemDoc::new(d, cx.include_sensitive))
        .collect();
    doc.identity_culprit = f.identity_culprit;
    doc.varied = f.varied;
    doc.probes = f.probes;
    doc.probe_bound = f.bound;
    doc.exhausted = f.exhausted;
    doc.flaky = f.flaky_fail_rate.is_some();
    doc.flaky_probes = f.flaky_probes;
    doc.confidence = level;
    doc.confidence_note = note;
    doc.curl.clone_from(&cx.curl);
    doc.placeholders.clone_from(&cx.placeholders);
    doc.reproduce_note.clone_from(&cx.reproduce_note);
    doc.repro.clone_from(&cx.repro);
    let names: Vec<String> = f
        .culprits
        .iter()
        .map(|d| format!("{}:{}", d.kind, d.name))
        .collect();
    doc.message = match (f.identity_culprit, f.culprits.len()) {
        (true, _) => format!(
            "the failure follows the bad side's identity ({}): the good environment with it already fails; rerun with --vary-identity to narrow further",
            names.join(", ")
        ),
        (false, 1) => format!("culprit: {}", names.join("")),
        (false, n) => format!(
            "culprit: {} differences that fail only together: {}",
            n,
            names.join(" + ")
        ),
    };
}

fn value_cell(v: Option<&String>) -> String {
    match v {
        None => "(absent)".into(),
        Some(v) => v.clone(),
    }
}

/// The culprit part of the text form: the table, the probes, the confidence and how to
/// reproduce.
fn render_culprits(o: &mut String, doc: &BisectDoc, width: Option<u16>) {
    let line = |o: &mut String, k: &str, v: &str| {
        let _ = writeln!(o, "{k:<12} {v}");
    };
    let rows = doc
        .culprits
        .iter()
        .map(|c| {
            vec![
                Txt::from(c.kind.clone()),
                Txt::from(c.name.clone()),
                Txt::from(value_cell(c.good.as_ref())),
                Txt::from(value_cell(c.bad.as_ref())),
            ]
        })
        .collect();
    let cols = [
        Col::name("kind"),
        Col::name("name"),
        Col::text("good"),
        Col::text("bad"),
    ];
    put_table(o, &fit(&cols, rows, width, false));
    let per_probe = doc.k;
    line(
        o,
        "probes",
        &format!(
            "{} (ddmin bound {} for {} differences; budget {}), {} each · {} requests in all",
            doc.probes,
            doc.probe_bound,
            doc.varied,
            doc.max_probes,
            if per_probe == 1 {
                "1 run".to_string()
            } else {
                format!("{per_probe} runs")
            },
            doc.requests
        ),
    );
    line(
        o,
        "confidence",
        &format!("{}: {}", doc.confidence, doc.confidence_note),
    );
    if let Some(c) = &doc.curl {
        line(o, "reproduce", c);
    }
    if let Some(n) = &doc.reproduce_note {
        line(o, "note", n);
    }
    if let Some(r) = &doc.repro {
        line(o, "toggle", r);
    }
    if !doc.placeholders.is_empty() {
        line(
            o,
            "secrets",
            &format!(
                "export {} first (placeholders; --include-sensitive writes the values)",
                doc.placeholders.join(", ")
            ),
        );
    }
}

/// The text form; `width` is the terminal's (`None` when piped: full width).
#[must_use]
pub fn render(doc: &BisectDoc, width: Option<u16>) -> String {
    let mut o = String::new();
    let line = |o: &mut String, k: &str, v: &str| {
        let _ = writeln!(o, "{k:<12} {v}");
    };
    line(
        &mut o,
        "bisect",
        doc.scenario
            .as_deref()
            .unwrap_or("(the request of the environment file)"),
    );
    line(&mut o, "target", &doc.target);
    line(&mut o, "good", &doc.good);
    line(&mut o, "bad", &doc.bad);
    let mut diffs = format!("{}", doc.differences);
    if !doc.identity_kept.is_empty() {
        let names: Vec<String> = doc
            .identity_kept
            .iter()
            .map(|i| format!("{}:{}", i.kind, i.name))
            .collect();
        let _ = write!(
            diffs,
            " ({} identity kept from the bad side: {}; --vary-identity varies them)",
            names.len(),
            names.join(", ")
        );
    }
    line(&mut o, "differences", &diffs);
    let p = &doc.premise;
    let mut premise = format!("bad failed {}/{}", p.bad.failed, p.bad.runs);
    if let Some(f) = &p.bad.first_failure {
        let _ = write!(premise, " ({f})");
    }
    if p.good.runs > 0 {
        let _ = write!(
            premise,
            " · good passed {}/{}",
            p.good.runs - p.good.failed,
            p.good.runs
        );
    }
    line(&mut o, "premise", &premise);
    for n in &doc.notes {
        line(&mut o, "note", n);
    }
    o.push('\n');
    line(&mut o, "result", &doc.message);
    if doc.outcome != "culprit_found" {
        return o;
    }
    render_culprits(&mut o, doc, width);
    o
}
