//! Good scenarios become the expected `Plan`: every section, the load models and their hard
//! caps, CLI overrides (and the errors they can cause), env selection, data files, `${VAR}`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use sonde::gate::{Cmp, Stat};
use sonde::plan::{
    BodySpec, CaptureSource, Expectation, FlagTransport, HttpOptions, JsonCheck, LoadModel, Plan,
    StepNode, TargetSpec, ValueCheck,
};
use sonde::scenario::{ErrorKind, Overrides, ScenarioError, load, load_str_with_env};
use std::path::Path;
use std::time::Duration;

fn env(name: &str) -> Option<String> {
    match name {
        "API" => Some("https://api.example.test".into()),
        "USER_ID" => Some("42".into()),
        _ => None,
    }
}

fn plan_with(src: &str, o: &Overrides) -> Result<Plan, ScenarioError> {
    load_str_with_env(src, Path::new("mem/scenario.yaml"), o, &env)
}

fn plan(src: &str) -> Plan {
    plan_with(src, &Overrides::default()).unwrap_or_else(|e| panic!("{e}"))
}

fn err(src: &str, o: &Overrides) -> String {
    match plan_with(src, o) {
        Ok(_) => panic!("expected an error"),
        Err(e) => e.to_string(),
    }
}

const FULL: &str = r#"
name: full
target: ${API}
env:
  whale:
    vars: { user_id: "{{whale_id}}", country: NO, id: "${USER_ID}" }
    headers: { X-Tenant: blue }
    cookies: { session: "{{whale_token}}" }
    query: { lang: en }
    flags: { new_kyc_form: on, old_nav: off }
  typical:
    vars: { user_id: "7", country: FR, id: "8" }
    flags: [new_kyc_form, dark]
flags: { cookie: ff }
data:
  rows:
    - { amount: 100 }
    - { amount: 250 }
load: { rate: 12000/m, max_vus: 40, duration: 2m }
http:
  timeouts: { connect: 2s, request: 5s }
  max_redirects: 3
  body_capture_limit: 64KiB
setup:
  - name: identities
    request: { url: /demo/identities }
    capture:
      whale_id: "$[?@.name == 'whale'].user_id"
      whale_token: { json: "$[?@.name == 'whale'].token" }
steps:
  - name: profile
    request:
      url: /users/{{user_id}}/profile
      query: { tag: [a, b] }
    expect:
      status: [200, 304]
      headers:
        Content-Type: { matches: "^application/json" }
        ETag: { exists: true }
        X-Mode: fast
      json:
        "$.user.id": 7
        "$.name": { matches: "^w" }
        "$.recent": { exists: true }
      body_contains: "{{country}}"
      max_duration: 800ms
    capture:
      first: "$.recent[0].startup_id"
      etag: { header: ETag }
      sid: { cookie: session }
      word: { regex: "id=(\\d+)" }
    timeout: 3s
    follow_redirects: false
  - think: 500ms..2s
  - parallel:
      - name: invest
        request:
          method: post
          url: /investments
          headers: { Idempotency-Key: "{{uuid}}" }
          body: { json: { startup_id: "{{first}}", amount_cents: "{{amount}}", note: "vu {{vu}}" } }
      - name: form
        request:
          method: PUT
          url: https://other.example.test/f
          body: { form: { a: "{{iteration}}" } }
  - name: raw
    request:
      method: POST
      url: /raw
      body: { raw: "<x>{{timestamp_ms}}</x>", content_type: application/xml }
  - name: settled
    request: { url: "/investments/{{first}}" }
    poll: { every: 100ms, timeout: 10s, since: profile }
    expect: { json: { "$.status": completed } }
thresholds:
  profile: ["p(95) < 300ms", { threshold: "p(99) < 1s", abort_on_fail: true, delay: 10s }]
  profile.wait: "avg < 100ms"
  "profile.server_timing.db{env:typical}": ["p(99) <= 50ms"]
  http: ["error_rate < 1%"]
  iterations: ["dropped == 0"]
  settled: ["p(95) < 5s"]
"#;

#[test]
fn a_full_scenario_becomes_the_expected_plan() {
    let p = plan(FULL);
    assert_eq!(p.name, "full");
    assert_eq!(p.source.as_deref(), Some(Path::new("mem/scenario.yaml")));
    assert_eq!(
        p.target,
        TargetSpec::Url("https://api.example.test".parse().unwrap())
    );
    assert_eq!(p.env_name.as_deref(), Some("whale"));
    let whale = &p.envs["whale"];
    assert_eq!(
        whale.vars["country"].source(),
        "NO",
        "YAML 1.1 booleans stay text"
    );
    assert_eq!(whale.vars["id"].source(), "42");
    assert_eq!(whale.vars["user_id"].sole_var(), Some("whale_id"));
    assert_eq!(whale.headers[0].0, "X-Tenant");
    assert_eq!(whale.cookies[0].1.source(), "{{whale_token}}");
    assert_eq!(whale.query[0].0, "lang");
    assert!(whale.flags["new_kyc_form"] && !whale.flags["old_nav"]);
    assert!(p.envs["typical"].flags["dark"]);
    assert_eq!(p.env.vars.len(), 3);
    assert_eq!(
        p.flags,
        FlagTransport::Cookie {
            name: "ff".into(),
            separator: "|".into()
        }
    );
    assert_eq!(p.data.len(), 2);
    assert_eq!(p.data[1]["amount"], "250");
    assert_eq!(
        p.load,
        LoadModel::Open {
            rate: 200.0,
            max_vus: 40,
            duration: Duration::from_secs(120),
            stages: vec![]
        }
    );
    assert_eq!(p.max_duration, Duration::from_secs(150));
    assert_eq!(p.http.connect_timeout, Duration::from_secs(2));
    assert_eq!(p.http.request_timeout, Duration::from_secs(5));
    assert_eq!(
        (p.http.max_redirects, p.http.body_capture_limit),
        (3, 65536)
    );

    assert_eq!(p.setup.len(), 1);
    let names: Vec<&str> = p.request_steps().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["profile", "invest", "form", "raw", "settled"]);
    let StepNode::Request(profile) = &p.steps[0] else {
        panic!()
    };
    assert_eq!(profile.method, http::Method::GET);
    assert_eq!(profile.url.source(), "/users/{{user_id}}/profile");
    assert_eq!(profile.query.len(), 2, "a list repeats the parameter");
    assert_eq!(profile.timeout, Some(Duration::from_secs(3)));
    assert!(!profile.follow_redirects);
    assert!(profile.line > 0);
    assert!(matches!(&profile.expect[0], Expectation::Status(s) if s == &[200, 304]));
    assert!(
        matches!(&profile.expect[1], Expectation::Header { name, check: ValueCheck::Matches(_) } if name == "Content-Type")
    );
    assert!(matches!(
        &profile.expect[2],
        Expectation::Header {
            check: ValueCheck::Exists,
            ..
        }
    ));
    assert!(
        matches!(&profile.expect[3], Expectation::Header { check: ValueCheck::Equals(t), .. } if t.source() == "fast")
    );
    assert!(
        matches!(&profile.expect[4], Expectation::Json { check: JsonCheck::Equals(v), .. } if v == &serde_json::json!(7))
    );
    assert!(matches!(
        &profile.expect[5],
        Expectation::Json {
            check: JsonCheck::Matches(_),
            ..
        }
    ));
    assert!(
        matches!(&profile.expect[6], Expectation::Json { check: JsonCheck::Exists, path_src, .. } if path_src == "$.recent")
    );
    assert!(matches!(&profile.expect[7], Expectation::BodyContains(_)));
    assert!(
        matches!(&profile.expect[8], Expectation::MaxDuration(d) if *d == Duration::from_millis(800))
    );
    let sources: Vec<&CaptureSource> = profile.capture.iter().map(|c| &c.source).collect();
    assert!(matches!(sources[0], CaptureSource::Json { .. }));
    assert!(matches!(sources[1], CaptureSource::Header(h) if h == "ETag"));
    assert!(matches!(sources[2], CaptureSource::Cookie(c) if c == "session"));
    assert!(matches!(sources[3], CaptureSource::Regex(r) if r.captures_len() == 2));
    assert!(
        matches!(p.steps[1], StepNode::Think { min, max } if min == Duration::from_millis(500) && max == Duration::from_secs(2))
    );
    let StepNode::Parallel(group) = &p.steps[2] else {
        panic!()
    };
    assert_eq!(group[0].method, http::Method::POST);
    let Some(BodySpec::Json(body)) = &group[0].body else {
        panic!()
    };
    assert_eq!(body["amount_cents"], "{{amount}}");
    assert!(matches!(&group[1].body, Some(BodySpec::Form(f)) if f[0].0 == "a"));
    let StepNode::Request(raw) = &p.steps[3] else {
        panic!()
    };
    assert!(
        matches!(&raw.body, Some(BodySpec::Raw { content_type: Some(ct), .. }) if ct == "application/xml")
    );
    let settled = p.request_steps().last().unwrap();
    let poll = settled.poll.as_ref().unwrap();
    assert_eq!(
        (poll.interval, poll.timeout),
        (Duration::from_millis(100), Duration::from_secs(10))
    );
    assert_eq!(poll.since.as_deref(), Some("profile"));

    assert_eq!(p.thresholds.len(), 7);
    let t = &p.thresholds[1];
    assert!(t.abort_on_fail);
    assert_eq!(t.delay, Some(Duration::from_secs(10)));
    assert_eq!(
        (t.stat, t.op, t.value),
        (Stat::Percentile(99.0), Cmp::Lt, 1000.0)
    );
    assert_eq!(p.thresholds[2].metric.phase.as_deref(), Some("wait"));
    assert_eq!(p.thresholds[3].metric.server_timing.as_deref(), Some("db"));
    assert_eq!(p.thresholds[3].metric.tags["env"], "typical");
    assert_eq!(p.thresholds[4].value, 0.01);
}

fn with_load(load: &str) -> String {
    format!("load: {load}\nsteps:\n  - name: home\n    request: {{ url: / }}\n")
}

#[test]
fn load_models_and_their_hard_caps() {
    let closed = |vus, duration, iterations, stages: usize| (vus, duration, iterations, stages);
    /// vus, duration (s), iterations, number of stages.
    type Closed = (u32, Option<u64>, Option<u64>, usize);
    let cases: Vec<(&str, Closed, u64)> = vec![
        (
            "{vus: 20, duration: 30s}",
            closed(20, Some(30), None, 0),
            60,
        ),
        ("{vus: 3, iterations: 9}", closed(3, None, Some(9), 0), 600),
        ("{duration: 1h30m}", closed(1, Some(5400), None, 0), 5430),
        (
            "{stages: [{duration: 30s, target: 50}, {duration: 1m, target: 0}]}",
            closed(1, None, None, 2),
            120,
        ),
    ];
    for (load, (vus, d, it, st), cap) in cases {
        let p = plan(&with_load(load));
        match &p.load {
            LoadModel::Closed {
                vus: v,
                duration,
                iterations,
                stages,
            } => {
                assert_eq!(*v, vus, "{load}");
                assert_eq!(duration.map(|d| d.as_secs()), d, "{load}");
                assert_eq!(*iterations, it, "{load}");
                assert_eq!(stages.len(), st, "{load}");
            }
            other => panic!("{load}: {other:?}"),
        }
        assert_eq!(p.max_duration, Duration::from_secs(cap), "{load}");
    }
    let p = plan(&with_load(
        r#"{vus: "${NOPE:-7}", duration: "${NOPE:-2s}"}"#,
    ));
    assert!(
        matches!(p.load, LoadModel::Closed { vus: 7, duration: Some(d), .. } if d == Duration::from_secs(2))
    );
    let p = plan("steps:\n  - name: home\n    request: { url: / }\n");
    assert!(matches!(
        p.load,
        LoadModel::Closed {
            vus: 1,
            iterations: Some(1),
            ..
        }
    ));
    assert!(matches!(p.target, TargetSpec::EmbeddedDemo { ref faults } if faults.is_empty()));
    assert_eq!(p.env_name, None);
    let p = plan(&with_load(
        "{rate: 10/s, max_vus: 5, stages: [{duration: 1m, target: 100/s}, {duration: 30s, target: 0}]}",
    ));
    match p.load {
        LoadModel::Open {
            rate,
            duration,
            stages,
            ..
        } => {
            assert_eq!(rate, 10.0);
            assert_eq!(duration, Duration::from_secs(90));
            assert_eq!(stages[0].target, 100.0);
            assert_eq!(stages[1].target, 0.0);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(p.max_duration, Duration::from_secs(120));
}

#[test]
fn load_limits_are_enforced() {
    let cases = [
        (
            "{vus: 100001, duration: 1s}",
            "`vus` must be between 1 and 100000, found 100001",
        ),
        ("{vus: 1, duration: 25h}", "`duration` must be at most 24h"),
        (
            "{rate: 2000000/s, max_vus: 1, duration: 1s}",
            "`rate` must be above 0 and at most 1000000/s",
        ),
        (
            "{rate: 0/s, max_vus: 1, duration: 1s}",
            "`rate` must be above 0 and at most 1000000/s",
        ),
        (
            "{rate: 1/s, max_vus: 1, iterations: 3}",
            "`iterations` applies to closed models",
        ),
        ("{rate: 1/s, max_vus: 1}", "an open model needs a duration"),
        (
            "{vus: 2}",
            "`load` needs `duration`, `iterations` or `stages`",
        ),
        (
            "{vus: 2, duration: 1s, iterations: 3}",
            "`iterations` conflicts with another run length",
        ),
        ("{max_vus: 2, duration: 1s}", "`max_vus` goes with `rate`"),
        ("{vus: 1, stages: []}", "`stages` needs at least one stage"),
        (
            "{vus: 1, stages: [{duration: 20h, target: 1}, {duration: 5h, target: 1}]}",
            "`stages` last longer than 24h in total",
        ),
        ("{vus: 1, duration: 1s, vu: 3}", "unknown key `vu` in load"),
    ];
    for (load, msg) in cases {
        let e = err(&with_load(load), &Overrides::default());
        assert!(e.starts_with(&format!("error: {msg}\n")), "{load}:\n{e}");
    }
}

#[test]
fn cli_overrides_switch_models_and_say_what_is_missing() {
    let closed = with_load("{vus: 20, stages: [{duration: 30s, target: 50}]}");
    let o = Overrides {
        rate: Some(50.0),
        duration: Some(Duration::from_secs(60)),
        ..Overrides::default()
    };
    assert_eq!(
        err(&closed, &o),
        "error: `--rate` needs `max_vus`\n --> mem/scenario.yaml\n  = help: `--rate` makes the model open: add `--max-vus N` (or `max_vus` under `load`)"
    );
    let o = Overrides {
        max_vus: Some(10),
        ..o
    };
    let p = plan_with(&closed, &o).unwrap();
    assert_eq!(
        p.load,
        LoadModel::Open {
            rate: 50.0,
            max_vus: 10,
            duration: Duration::from_secs(60),
            stages: vec![]
        }
    );
    let open = with_load("{rate: 100/s, max_vus: 50, duration: 2m}");
    let o = Overrides {
        vus: Some(4),
        ..Overrides::default()
    };
    let p = plan_with(&open, &o).unwrap();
    assert!(
        matches!(p.load, LoadModel::Closed { vus: 4, duration: Some(d), .. } if d == Duration::from_secs(120))
    );
    let o = Overrides {
        iterations: Some(7),
        ..Overrides::default()
    };
    assert!(err(&open, &o).starts_with("error: `--iterations` applies to closed models\n"));
    let o = Overrides {
        duration: Some(Duration::ZERO),
        ..Overrides::default()
    };
    assert!(err(&open, &o).starts_with("error: `--duration` must be greater than 0\n"));
    let o = Overrides {
        vus: Some(1),
        rate: Some(1.0),
        ..Overrides::default()
    };
    assert!(err(&open, &o).starts_with("error: `--vus` and `--rate` together\n"));
    let o = Overrides {
        rate: Some(5.0),
        ..Overrides::default()
    };
    let p = plan_with(&open, &o).unwrap();
    assert!(matches!(
        p.load,
        LoadModel::Open {
            rate: 5.0,
            max_vus: 50,
            ..
        }
    ));
}

#[test]
fn target_env_threshold_and_http_overrides() {
    let o = Overrides {
        target: Some("http://127.0.0.1:9/".parse().unwrap()),
        env: Some("typical".into()),
        thresholds: vec!["profile{env:whale}: p(90) < 2s".into()],
        http: Some(HttpOptions {
            insecure: true,
            request_timeout: Duration::from_secs(9),
            ..HttpOptions::default()
        }),
        ..Overrides::default()
    };
    let p = plan_with(FULL, &o).unwrap();
    assert_eq!(
        p.target,
        TargetSpec::Url("http://127.0.0.1:9/".parse().unwrap())
    );
    assert_eq!(p.env_name.as_deref(), Some("typical"));
    assert_eq!(p.env.vars["country"].source(), "FR");
    let last = p.thresholds.last().unwrap();
    assert_eq!(last.source, "profile{env:whale}: p(90) < 2s");
    assert_eq!(last.value, 2000.0);
    assert!(p.http.insecure);
    assert_eq!(p.http.request_timeout, Duration::from_secs(9), "CLI wins");
    assert_eq!(p.http.connect_timeout, Duration::from_secs(2), "file kept");

    let o = Overrides {
        env: Some("whal".into()),
        ..Overrides::default()
    };
    assert_eq!(
        err(FULL, &o),
        "error: unknown env `whal` (from `--env`)\n --> mem/scenario.yaml\n  = help: did you mean `whale`?"
    );
    let o = Overrides {
        thresholds: vec!["profile: p95 < 300ms".into()],
        ..Overrides::default()
    };
    assert_eq!(
        err(FULL, &o),
        "error: unknown statistic `p95`\n --> --threshold:1:10\n  |\n1 | profile: p95 < 300ms\n  |          ^^^\n  = help: write percentiles as `p(95)`"
    );
    let o = Overrides {
        thresholds: vec!["profil.wait: p(95) < 1s".into()],
        ..Overrides::default()
    };
    assert!(err(FULL, &o).contains("unknown step `profil` in threshold\n --> --threshold:1:1\n"));
    let unset = "target: ${NOT_SET}\nsteps:\n  - name: a\n    request: { url: / }\n";
    let o = Overrides {
        target: Some("http://127.0.0.1:9/".parse().unwrap()),
        ..Overrides::default()
    };
    assert!(
        plan_with(unset, &o).is_ok(),
        "--target replaces an unset ${{NOT_SET}}"
    );
    let o = Overrides {
        target: Some("ftp://example.test/".parse().unwrap()),
        ..Overrides::default()
    };
    assert!(err(FULL, &o).starts_with("error: invalid `--target` `ftp://example.test/`"));
}

#[test]
fn variables_follow_the_scoping_rules() {
    // Data columns and built-ins are usable in steps; captures only after their step.
    let ok = "data: { rows: [{ sku: a1 }] }\nsteps:\n  - name: a\n    request: { url: \"/p/{{sku}}?v={{vu}}&i={{iteration}}&u={{uuid}}&t={{timestamp_ms}}\" }\n    capture: { x: $.x }\n  - name: b\n    request: { url: \"/q/{{x}}\" }\n";
    plan(ok);
    let later = "steps:\n  - name: a\n    request: { url: \"/q/{{x}}\" }\n  - name: b\n    request: { url: / }\n    capture: { x: $.x }\n";
    assert!(
        err(later, &Overrides::default())
            .contains("= help: `x` is captured by step `b`, which runs after this one")
    );
    // An env var that depends on a setup capture cannot be used by setup itself.
    let setup = "setup:\n  - name: ids\n    request: { url: / }\n    capture: { tok: $.t }\n  - name: me\n    request: { url: \"/me/{{token}}\" }\nenv:\n  a: { vars: { token: \"{{tok}}\" } }\nsteps:\n  - name: home\n    request: { url: \"/{{token}}\" }\n";
    assert!(
        err(setup, &Overrides::default())
            .contains("= help: `token` depends on a setup capture, so setup steps cannot use it")
    );
    let builtin = "steps:\n  - name: a\n    request: { url: / }\n    capture: { uuid: $.id }\n";
    assert!(
        err(builtin, &Overrides::default()).starts_with("error: `uuid` is a built-in variable\n")
    );
    let templated =
        "steps:\n  - name: a\n    request: { url: / }\n    expect: { json: { $.id: \"{{x}}\" } }\n";
    assert!(
        err(templated, &Overrides::default())
            .starts_with("error: `{{...}}` is not expanded in `expect.json` values\n")
    );
}

#[test]
fn data_files_are_read_relative_to_the_scenario() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("data")).unwrap();
    std::fs::write(
        dir.path().join("data/users.csv"),
        "user,amount\nada,100\nbob,250\n",
    )
    .unwrap();
    let scenario = dir.path().join("s.yaml");
    std::fs::write(
        &scenario,
        "data: { file: data/users.csv }\nsteps:\n  - name: a\n    request: { url: \"/u/{{user}}/{{amount}}\" }\n",
    )
    .unwrap();
    let p = load(&scenario, &Overrides::default()).unwrap();
    assert_eq!(p.data.len(), 2);
    assert_eq!(p.data[0]["user"], "ada");
    assert_eq!(p.data[1]["amount"], "250");

    std::fs::write(
        &scenario,
        "data: { file: missing.csv }\nsteps:\n  - name: a\n    request: { url: / }\n",
    )
    .unwrap();
    let e = load(&scenario, &Overrides::default()).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Invalid);
    assert!(
        e.message()
            .starts_with("cannot read data file `missing.csv`"),
        "{e}"
    );
    assert_eq!((e.line(), e.col()), (1, 15));

    let e = load(&dir.path().join("nope.yaml"), &Overrides::default()).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Io);
    assert_eq!(e.line(), 0);
}
