//! JUnit XML (quick-junit), the format every CI system reads: a suite of thresholds (one test
//! case each, the measured value in the failure message), a suite of expectations (one passing
//! case per clean step, one failing case per distinct failure), and with a baseline a suite of
//! comparisons (one case per step). Test names are stable across runs; counts go in messages.

use super::{Report, ReportError};
use crate::aggregate::Summary;
use crate::gate::{Comparison, Outcome, Verdict};
use quick_junit::{NonSuccessKind, TestCase, TestCaseStatus, TestSuite};
use std::time::Duration;

pub struct JunitReport;

fn failure(message: String, ty: &str) -> TestCaseStatus {
    let mut st = TestCaseStatus::non_success(NonSuccessKind::Failure);
    st.set_message(message).set_type(ty);
    st
}

fn case(name: String, classname: &str, status: TestCaseStatus) -> TestCase {
    let mut c = TestCase::new(name, status);
    c.set_classname(classname);
    c
}

impl JunitReport {
    pub fn build(&self, s: &Summary, comparison: Option<&Comparison>) -> quick_junit::Report {
        let mut report = quick_junit::Report::new(format!("sonde {}", s.scenario));
        let time = Duration::from_secs_f64(s.duration_s.max(0.0));

        if !s.thresholds.is_empty() {
            let class = format!("sonde.{}.thresholds", s.scenario);
            let mut suite = TestSuite::new(format!("{} thresholds", s.scenario));
            suite.set_time(time);
            for t in &s.thresholds {
                let status = match t.outcome {
                    Outcome::Pass => TestCaseStatus::success(),
                    Outcome::Fail => failure(t.message.clone(), "threshold"),
                    Outcome::NoData => failure(t.message.clone(), "no_data"),
                };
                suite.add_test_case(case(t.threshold.clone(), &class, status));
            }
            report.add_test_suite(suite);
        }

        let class = format!("sonde.{}.expectations", s.scenario);
        let mut suite = TestSuite::new(format!("{} expectations", s.scenario));
        suite.set_time(time);
        for st in &s.steps {
            if st.errors == 0 {
                suite.add_test_case(case(
                    format!("{}: every response met its expectations", st.name),
                    &class,
                    TestCaseStatus::success(),
                ));
                continue;
            }
            // One case per distinct failure; messages when recorded, else error classes.
            let failures = if st.error_messages.is_empty() {
                &st.error_classes
            } else {
                &st.error_messages
            };
            for (what, n) in failures {
                let msg = format!("{n} of {} requests: {what}", st.requests);
                suite.add_test_case(case(
                    format!("{}: {what}", st.name),
                    &class,
                    failure(msg, "expectation"),
                ));
            }
        }
        report.add_test_suite(suite);

        if let Some(c) = comparison {
            let class = format!("sonde.{}.baseline", s.scenario);
            let mut suite = TestSuite::new(format!("{} compared with the baseline", s.scenario));
            for r in c.gating_rows() {
                let detail: Vec<String> = r
                    .quantiles
                    .iter()
                    .map(|q| format!("{} {}", q.stat, q.describe()))
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
            report.add_test_suite(suite);
        }
        report
    }
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
        Ok(out)
    }
}
