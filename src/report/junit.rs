//! JUnit XML (`quick-junit`), the format every CI system reads: a suite of thresholds (one test
//! case each, the measured value in the failure message), a suite of expectations (one case
//! per step, every distinct failure listed in its failure element), and with a baseline a suite
//! of comparisons (one case per step). Test names are stable across runs, passing or failing,
//! so CI can follow a case's history; counts and failure texts go in the failure. Every suite
//! carries the run's `interrupted` and `insecure` as properties. The output validates against
//! Jenkins' `JUnit` schema (no `skipped` on `<testsuites>`).

use super::{Report, ReportError};
use crate::aggregate::Summary;
use crate::aggregate::summary::StepSummary;
use crate::gate::{Comparison, Outcome, Verdict};
use quick_junit::{NonSuccessKind, Property, TestCase, TestCaseStatus, TestSuite};
use std::fmt::Write as _;
use std::time::Duration;

pub struct JunitReport;

fn failure(message: String, ty: &str) -> TestCaseStatus {
    let mut st = TestCaseStatus::non_success(NonSuccessKind::Failure);
    st.set_message(message).set_type(ty);
    st
}

/// What a reader of the test results must know about the whole run.
fn run_properties(suite: &mut TestSuite, s: &Summary) {
    suite.add_property(Property::new("interrupted", s.interrupted.to_string()));
    suite.add_property(Property::new("insecure", s.insecure.to_string()));
}

/// `quick-junit` always writes `skipped` on `<testsuites>`, which Jenkins' JUnit schema refuses
/// (it allows it on `<testsuite>` only): drop that one attribute.
fn without_root_skipped(xml: &str) -> String {
    let Some(open) = xml.find("<testsuites") else {
        return xml.to_string();
    };
    let end = open + xml[open..].find('>').unwrap_or(0);
    let tag = &xml[open..end];
    let Some(at) = tag.find(" skipped=\"") else {
        return xml.to_string();
    };
    let value_end = tag[at + 10..]
        .find('"')
        .map_or(tag.len(), |q| at + 10 + q + 1);
    format!("{}{}{}", &xml[..open + at], &tag[value_end..], &xml[end..])
}

fn case(name: String, classname: &str, status: TestCaseStatus) -> TestCase {
    let mut c = TestCase::new(name, status);
    c.set_classname(classname);
    c
}

impl JunitReport {
    #[must_use]
    pub fn build(&self, s: &Summary, comparison: Option<&Comparison>) -> quick_junit::Report {
        let mut report = quick_junit::Report::new(format!("sonde {}", s.scenario));
        let time = Duration::from_secs_f64(s.duration_s.max(0.0));
        if !s.thresholds.is_empty() {
            report.add_test_suite(thresholds_suite(s, time));
        }
        report.add_test_suite(expectations_suite(s, time));
        if let Some(c) = comparison {
            report.add_test_suite(baseline_suite(s, c));
        }
        report
    }
}

/// One case per threshold.
fn thresholds_suite(s: &Summary, time: Duration) -> TestSuite {
    let class = format!("sonde.{}.thresholds", s.scenario);
    let mut suite = TestSuite::new(format!("{} thresholds", s.scenario));
    suite.set_time(time);
    run_properties(&mut suite, s);
    for t in &s.thresholds {
        let status = match t.outcome {
            Outcome::Pass => TestCaseStatus::success(),
            Outcome::Fail => failure(t.message.clone(), "threshold"),
            Outcome::NoData => failure(t.message.clone(), "no_data"),
        };
        suite.add_test_case(case(t.threshold.clone(), &class, status));
    }
    suite
}

/// One case per step: its expectations held on every request, or how they failed.
fn expectations_suite(s: &Summary, time: Duration) -> TestSuite {
    let class = format!("sonde.{}.expectations", s.scenario);
    let mut suite = TestSuite::new(format!("{} expectations", s.scenario));
    suite.set_time(time);
    run_properties(&mut suite, s);
    for st in &s.steps {
        let name = format!("{}: expectations", st.name);
        let status = if st.errors == 0 {
            TestCaseStatus::success()
        } else {
            expectation_failure(st)
        };
        suite.add_test_case(case(name, &class, status));
    }
    suite
}

/// A step's failed expectations: every distinct failure, most frequent first; messages when
/// recorded, else error classes.
fn expectation_failure(st: &StepSummary) -> TestCaseStatus {
    let failures = if st.error_messages.is_empty() {
        &st.error_classes
    } else {
        &st.error_messages
    };
    let mut listed: Vec<(&String, &u64)> = failures.iter().collect();
    listed.sort_by(|a, b| b.1.cmp(a.1).then_with(|| a.0.cmp(b.0)));
    let mut msg = format!("{} of {} requests failed", st.errors, st.requests);
    if let Some((what, _)) = listed.first() {
        let _ = write!(msg, ": {what}");
        if listed.len() > 1 {
            let _ = write!(msg, " (and {} other failures)", listed.len() - 1);
        }
    }
    let mut status = failure(msg, "expectation");
    let lines: Vec<String> = listed
        .iter()
        .map(|(what, n)| format!("{n} × {what}"))
        .collect();
    status.set_description(lines.join("\n"));
    status
}

/// One case per gating comparison row: regressed or not, with its statistics.
fn baseline_suite(s: &Summary, c: &Comparison) -> TestSuite {
    let class = format!("sonde.{}.baseline", s.scenario);
    let mut suite = TestSuite::new(format!("{} compared with the baseline", s.scenario));
    run_properties(&mut suite, s);
    for r in c.gating_rows() {
        let detail: Vec<String> = r
            .quantiles
            .iter()
            .map(|q| format!("{} {}", q.stat, super::table::quantile_text(q)))
            .collect();
        let status = if r.verdict == Verdict::Regressed {
            let why = r.why.clone().unwrap_or_else(|| r.key.clone());
            failure(
                format!("regressed: {why} ({})", detail.join(", ")),
                "regression",
            )
        } else {
            TestCaseStatus::success()
        };
        let mut tc = case(format!("{} vs baseline", r.key), &class, status);
        tc.set_system_out(format!("{}: {}", r.verdict.label(), detail.join(", ")));
        suite.add_test_case(tc);
    }
    suite
}

impl Report for JunitReport {
    fn render_with(
        &self,
        summary: &Summary,
        comparison: Option<&Comparison>,
    ) -> Result<Vec<u8>, ReportError> {
        let mut out = Vec::new();
        self.build(summary, comparison)
            .serialize(&mut out)
            .map_err(|e| ReportError::Serialize(e.to_string()))?;
        let xml = String::from_utf8(out).map_err(|e| ReportError::Serialize(e.to_string()))?;
        Ok(without_root_skipped(&xml).into_bytes())
    }
}
