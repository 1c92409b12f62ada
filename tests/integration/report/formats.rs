//! Report formats from a fixed, hand-built summary: snapshots of table, markdown and JUnit (with
//! thresholds and a baseline comparison), the JUnit XML read back by an XML parser, markdown
//! escaping, format selection by extension, and `$GITHUB_STEP_SUMMARY`-free rendering.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::support::summary::{fixed_summary, sampled_run, threshold};
use quick_xml::events::Event;
use sonde::aggregate::Summary;
use sonde::gate::{Cmp, CompareOptions, Comparison, Stat, compare, evaluate};
use sonde::report::junit::JunitReport;
use sonde::report::md::MarkdownReport;
use sonde::report::table::TableReport;
use sonde::report::{Format, Report as _};
use std::collections::BTreeMap;
use std::path::Path;

fn with_thresholds() -> Summary {
    let mut s = fixed_summary();
    let mut on_db = threshold("profile", Stat::Percentile(99.0), Cmp::Lt, 40.0);
    on_db.metric.server_timing = Some("db".into());
    let mut ts = vec![
        threshold("profile", Stat::Percentile(95.0), Cmp::Lt, 300.0),
        threshold("http", Stat::ErrorRate, Cmp::Lt, 0.01),
        on_db,
        threshold("checkout", Stat::Avg, Cmp::Lt, 10.0),
    ];
    ts[0].source = "profile: p(95) < 300ms".into();
    ts[1].source = "http: error_rate < 1%".into();
    ts[2].source = "profile.server_timing.db: p(99) < 40ms".into();
    ts[3].source = "checkout: avg < 10ms".into();
    s.thresholds = evaluate(&ts, &s);
    s
}

fn regression() -> (Summary, Comparison) {
    let base = sampled_run(1, 3000, 0);
    let cand = sampled_run(2, 3000, 15_000);
    let c = compare(&base, &cand, &CompareOptions::default()).unwrap();
    (cand, c)
}

#[test]
fn table_snapshot() {
    let s = with_thresholds();
    insta::assert_snapshot!(
        "table",
        TableReport {
            width: Some(150),
            color: false
        }
        .render_full(&s, None)
    );
    let (cand, c) = regression();
    insta::assert_snapshot!(
        "table_compared",
        TableReport {
            width: Some(150),
            color: false
        }
        .render_full(&cand, Some(&c))
    );
}

#[test]
fn run_table_fits_80_and_120_columns_without_splitting_a_number() {
    use unicode_width::UnicodeWidthStr;
    let s = with_thresholds();
    for w in [80u16, 120] {
        let text = TableReport {
            width: Some(w),
            color: false,
        }
        .render_full(&s, None);
        for line in text.lines().filter(|l| l.starts_with('│')) {
            assert!(line.width() <= usize::from(w), "{line}");
        }
        // Every number of the step rows is whole: a row never continues on the next line.
        for line in text
            .lines()
            .filter(|l| l.starts_with("│ profile ") || l.starts_with("│ total "))
        {
            assert!(!line.contains("┆  ┆"), "{line}");
        }
        insta::assert_snapshot!(format!("run_table_{w}_columns"), text);
    }
    // Full width (piped, files): every column.
    let full = TableReport::plain().render_full(&s, None);
    assert!(
        full.contains("mean ms") && !full.contains("not shown at this width"),
        "{full}"
    );
    // Colour only when asked for: FAIL and errors in red.
    let coloured = TableReport {
        width: None,
        color: true,
    }
    .render_full(&s, None);
    assert!(coloured.contains("\x1b["), "{coloured}");
    assert!(!full.contains('\x1b'));
}

#[test]
fn markdown_snapshot() {
    let s = with_thresholds();
    insta::assert_snapshot!("md", MarkdownReport.render_string(&s, None));
    let (cand, c) = regression();
    insta::assert_snapshot!("md_compared", MarkdownReport.render_string(&cand, Some(&c)));
}

#[test]
fn junit_snapshot() {
    let s = with_thresholds();
    let (_, c) = regression();
    let xml = String::from_utf8(JunitReport.render_with(&s, Some(&c)).unwrap()).unwrap();
    insta::assert_snapshot!("junit", xml);
}

/// testsuite name -> (declared tests, declared failures, [(case name, failure message)]).
type Suites = BTreeMap<String, (usize, usize, Vec<(String, Option<String>)>)>;

fn parse_junit(xml: &str) -> Suites {
    let mut reader = quick_xml::Reader::from_str(xml);
    let mut suites = Suites::new();
    let mut current = String::new();
    let attr = |e: &quick_xml::events::BytesStart<'_>, name: &str| -> Option<String> {
        e.attributes()
            .map(|a| a.unwrap())
            .find(|a| a.key.as_ref() == name.as_bytes())
            .map(|a| {
                a.normalized_value(quick_xml::XmlVersion::Implicit1_0)
                    .unwrap()
                    .into_owned()
            })
    };
    let mut root = false;
    for _ in 0..100_000 {
        match reader.read_event().unwrap() {
            Event::Eof => break,
            Event::Start(e) | Event::Empty(e) => match e.name().as_ref() {
                b"testsuites" => root = true,
                b"testsuite" => {
                    current = attr(&e, "name").unwrap();
                    let n = |k| attr(&e, k).unwrap().parse::<usize>().unwrap();
                    suites.insert(current.clone(), (n("tests"), n("failures"), Vec::new()));
                }
                b"testcase" => {
                    let name = attr(&e, "name").unwrap();
                    assert!(attr(&e, "classname").unwrap().starts_with("sonde."));
                    suites.get_mut(&current).unwrap().2.push((name, None));
                }
                b"failure" => {
                    let case = suites.get_mut(&current).unwrap().2.last_mut().unwrap();
                    case.1 = Some(attr(&e, "message").unwrap());
                }
                _ => {}
            },
            _ => {}
        }
    }
    assert!(root, "no <testsuites> root");
    suites
}

#[test]
fn junit_reads_back_with_one_case_per_threshold_and_failure() {
    let s = with_thresholds();
    let (_, c) = regression();
    let xml = String::from_utf8(JunitReport.render_with(&s, Some(&c)).unwrap()).unwrap();
    let suites = parse_junit(&xml);
    let (tests, failures, cases) = &suites["profile-load thresholds"];
    assert_eq!((*tests, *failures), (4, 2));
    assert_eq!(cases[1], ("http: error_rate < 1%".to_string(), None));
    assert_eq!(cases[0], ("profile: p(95) < 300ms".to_string(), None));
    let db = cases[2].1.as_deref().unwrap();
    assert!(
        db.starts_with("p(99) 49.") && db.ends_with("limit < 40.0 ms"),
        "{db}"
    );
    assert!(
        cases[3]
            .1
            .as_deref()
            .unwrap()
            .contains("no step named `checkout`")
    );
    let (tests, failures, cases) = &suites["profile-load expectations"];
    assert_eq!((*tests, *failures), (2, 1));
    assert_eq!(cases[0].0, "profile: expectations");
    assert_eq!(
        cases[0].1.as_deref(),
        Some("10 of 1000 requests failed: expected status 200, got 500")
    );
    assert_eq!(cases[1], ("total: expectations".into(), None));
    let (tests, failures, cases) = &suites["profile-load compared with the baseline"];
    assert_eq!((*tests, *failures), (2, 1));
    let msg = cases[0].1.as_deref().unwrap();
    assert!(
        msg.starts_with("regressed: profile: p") && msg.contains("db +"),
        "{msg}"
    );
    assert_eq!(cases[1].1, None);
}

#[test]
fn markdown_escapes_what_the_run_controls() {
    let mut s = fixed_summary();
    s.steps[0].name = "a|b <img src=x onerror=alert(1)>".into();
    s.steps[0]
        .error_messages
        .insert("body contains `<script>alert(1)</script>`".into(), 1);
    let md = MarkdownReport.render_string(&s, None);
    assert!(!md.contains("<img") && !md.contains("<script>"), "{md}");
    assert!(
        md.contains("a\\|b &lt;img src=x onerror=alert(1)&gt;"),
        "{md}"
    );
    // Every table row still has its 10 cells.
    let row = md.lines().find(|l| l.starts_with("| a\\|b")).unwrap();
    assert_eq!(row.matches(" | ").count(), 9, "{row}");
}

#[test]
fn formats_are_picked_by_extension_and_name() {
    for (p, f) in [
        ("run.json", Format::Json),
        ("r.md", Format::Markdown),
        ("report.junit.xml", Format::Junit),
        ("junit.xml", Format::Junit),
        ("r.html", Format::Html),
        ("r.txt", Format::Table),
    ] {
        assert_eq!(Format::for_path(Path::new(p)).unwrap(), f, "{p}");
    }
    let e = Format::for_path(Path::new("r.pdf"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("unknown report format `pdf`"), "{e}");
    assert_eq!(Format::by_name("junit"), Some(Format::Junit));
    assert_eq!(Format::by_name("nope"), None);
}

#[test]
fn write_outputs_checks_every_extension_before_writing_and_json_holds_the_comparison() {
    let dir = tempfile::tempdir().unwrap();
    let s = fixed_summary();
    let (_, c) = regression();
    let good = dir.path().join("a.md");
    let bad = dir.path().join("b.pdf");
    assert!(sonde::report::write_outputs_with(&s, Some(&c), &[good.clone(), bad]).is_err());
    assert!(
        !good.exists(),
        "nothing is written when one output is invalid"
    );
    let outs: Vec<_> = ["r.md", "r.xml", "r.html", "r.json", "r.txt"]
        .iter()
        .map(|n| dir.path().join(n))
        .collect();
    sonde::report::write_outputs_with(&s, Some(&c), &outs).unwrap();
    for o in &outs {
        assert!(std::fs::metadata(o).unwrap().len() > 200, "{}", o.display());
    }
    let j: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("r.json")).unwrap()).unwrap();
    assert_eq!(j["schema"], "sonde.compare/v1");
    assert_eq!(j["verdict"], "regressed");
}

/// Case names of every suite, in order.
fn case_names(xml: &str) -> Vec<String> {
    parse_junit(xml)
        .into_values()
        .flat_map(|(_, _, cases)| cases.into_iter().map(|(n, _)| n))
        .collect()
}

#[test]
fn junit_names_are_stable_and_the_run_is_described_for_jenkins() {
    let failing = with_thresholds();
    let mut passing = failing.clone();
    for st in &mut passing.steps {
        st.errors = 0;
        st.error_classes.clear();
        st.error_messages.clear();
    }
    let xml = |s: &sonde::aggregate::Summary| {
        String::from_utf8(JunitReport.render_with(s, None).unwrap()).unwrap()
    };
    // A case keeps its name whether it passes or fails; the failure text is in the failure.
    assert_eq!(case_names(&xml(&passing)), case_names(&xml(&failing)));
    let failing_xml = xml(&failing);
    assert!(
        failing_xml.contains("10 × expected status 200, got 500</failure>"),
        "{failing_xml}"
    );

    let mut run = failing.clone();
    run.interrupted = true;
    run.insecure = true;
    let out = xml(&run);
    // Jenkins' schema allows `skipped` on <testsuite>, not on <testsuites>.
    let root = out
        .split("<testsuites")
        .nth(1)
        .unwrap()
        .split('>')
        .next()
        .unwrap();
    assert!(!root.contains("skipped"), "{root}");
    assert!(
        root.contains("tests=") && root.contains("failures="),
        "{root}"
    );
    for suite in out.split("<testsuite ").skip(1) {
        assert!(
            suite.contains("<property name=\"interrupted\" value=\"true\"/>")
                && suite.contains("<property name=\"insecure\" value=\"true\"/>"),
            "{suite}"
        );
    }
    assert_eq!(out.matches("<properties>").count(), 2, "{out}");
}
