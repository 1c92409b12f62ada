//! docs/result-schema.json (draft 2020-12) describes the run result exactly: every JSON output
//! (the `--out run.json` report, with and without thresholds, an empty run) validates against it,
//! and results that break the contract do not.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::support::summary::{fixed_summary, threshold};
use sonde::aggregate::summary::{LatencyOrigin, LoadModel, TargetKind};
use sonde::aggregate::{Recorder, Summary, Waterfall, WaterfallRequest};
use sonde::gate::{Cmp, Stat, evaluate};
use sonde::report::Format;

fn validator() -> (boon::Schemas, boon::SchemaIndex) {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/result-schema.json");
    let schema: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut schemas = boon::Schemas::new();
    let mut compiler = boon::Compiler::new();
    compiler
        .add_resource("file:///result-schema.json", schema)
        .unwrap();
    let idx = compiler
        .compile("file:///result-schema.json", &mut schemas)
        .unwrap();
    (schemas, idx)
}

fn json_of(s: &Summary) -> serde_json::Value {
    let bytes = Format::Json.reporter().render(s).unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

fn check(v: &serde_json::Value) -> Result<(), String> {
    let (schemas, idx) = validator();
    schemas.validate(v, idx).map_err(|e| format!("{e:#}"))
}

#[test]
fn every_json_output_validates() {
    let mut s = fixed_summary();
    check(&json_of(&s)).unwrap();
    s.thresholds = evaluate(
        &[
            threshold("profile", Stat::Percentile(95.0), Cmp::Lt, 300.0),
            threshold("nope", Stat::Avg, Cmp::Lt, 1.0),
            threshold("http", Stat::ErrorRate, Cmp::Le, 0.01),
        ],
        &s,
    );
    s.load.stages = vec![(10.0, 5.0), (20.0, 0.0)];
    s.target.demo_faults = vec!["slow-profile".into()];
    s.notes.push("embedded demo seeded in 0.20s".into());
    s.waterfalls = vec![waterfall()];
    let v = json_of(&s);
    check(&v).unwrap();
    // What the JSON report wrote reads back to the same summary.
    let back: Summary = serde_json::from_value(v).unwrap();
    assert_eq!(back, s);
    // An open-model run with nothing measured.
    let mut empty = Summary::measured(&[], &Recorder::new(0), 0.0);
    empty.load.model = LoadModel::Open;
    empty.target.kind = TargetKind::EmbeddedDemo;
    empty.latency_measured_from = LatencyOrigin::IntendedStart;
    check(&json_of(&empty)).unwrap();
}

#[test]
fn results_that_break_the_contract_are_rejected() {
    let good = json_of(&fixed_summary());
    let broken = |f: &dyn Fn(&mut serde_json::Value)| {
        let mut v = good.clone();
        f(&mut v);
        check(&v).is_err()
    };
    assert!(broken(&|v| v["schema"] = "sonde.run/v2".into()));
    assert!(broken(&|v| {
        v.as_object_mut().unwrap().remove("steps");
    }));
    assert!(broken(&|v| v["steps"][0]["requests"] = (-1).into()));
    assert!(broken(
        &|v| v["steps"][0]["latency"]["hist"] = "not base64!".into()
    ));
    assert!(broken(
        &|v| v["steps"][0]["phases"]["warp"] = v["http"]["latency"].clone()
    ));
    assert!(broken(&|v| v["load"]["model"] = "sideways".into()));
    assert!(broken(&|v| v["unexpected"] = true.into()));
    assert!(broken(
        &|v| v["thresholds"] = serde_json::json!([{"threshold": "x"}])
    ));
    assert!(!broken(&|v| {
        v.as_object_mut().unwrap().remove("notes");
    }));
    // A breakdown's waterfall: valid as built, broken by an unknown mode or a missing phase.
    assert!(!broken(&|v| v["waterfalls"] = json_of_waterfall()));
    assert!(broken(&|v| {
        v["waterfalls"] = json_of_waterfall();
        v["waterfalls"][0]["connection"] = "sometimes".into();
    }));
    assert!(broken(&|v| {
        v["waterfalls"] = json_of_waterfall();
        v["waterfalls"][0]["requests"][0]
            .as_object_mut()
            .unwrap()
            .remove("wait_ms");
    }));
}

/// A hand-built waterfall: a sequential request, then a parallel pair (one failed).
fn waterfall() -> Waterfall {
    let req = |step: &str, offset_ms: f64, wait_ms: f64, critical: bool| WaterfallRequest {
        step: step.into(),
        offset_ms,
        send_ms: 0.1,
        wait_ms,
        receive_ms: 0.4,
        total_ms: 0.5 + wait_ms,
        reused: true,
        status: Some(200),
        critical,
        ..WaterfallRequest::default()
    };
    let mut failed = req("startup", 30.5, 3.0, false);
    failed.status = None;
    failed.error = Some("connection reset".into());
    Waterfall {
        connection: "reuse".into(),
        iterations: 20,
        total_ms: 60.0,
        requests: vec![
            req("profile", 0.0, 30.0, true),
            req("total", 30.5, 25.0, true),
            failed,
        ],
    }
}

fn json_of_waterfall() -> serde_json::Value {
    serde_json::json!([waterfall()])
}
