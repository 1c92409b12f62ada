//! What a new user meets in the first hour (issue 18), end to end against the embedded demo
//! API and small real servers: a poll step's settle time kept apart from request latency, with
//! counts that match their percentiles; optional captures, `if:` and what a failed step does to
//! the rest of an iteration; matcher names and numeric matchers; `-v`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::support;
use serde_json::Value;
use std::path::Path;
use std::process::Output;

fn sonde(args: &[&str]) -> Output {
    support::sonde()
        .args(args)
        .env_remove("TARGET")
        .env("NO_COLOR", "1")
        .output()
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn schema_errors(v: &Value) -> Result<(), String> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/result-schema.json");
    let schema: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut schemas = boon::Schemas::new();
    let mut compiler = boon::Compiler::new();
    compiler
        .add_resource("file:///result-schema.json", schema)
        .unwrap();
    let idx = compiler
        .compile("file:///result-schema.json", &mut schemas)
        .unwrap();
    schemas.validate(v, idx).map_err(|e| format!("{e:#}"))
}

fn count(v: &Value, key: &str) -> u64 {
    v.get(key).and_then(|s| s["count"].as_u64()).unwrap_or(0)
}

fn step<'a>(run: &'a Value, name: &str) -> &'a Value {
    run["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("no step {name}"))
}

fn invest() -> String {
    concat!(env!("CARGO_MANIFEST_DIR"), "/scenarios/invest.yaml").to_string()
}

#[test]
fn a_poll_keeps_its_settle_time_apart_from_request_latency() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run.json");
    let o = sonde(&[
        "run",
        &invest(),
        "--vus",
        "2",
        "--iterations",
        "6",
        "--out",
        out.to_str().unwrap(),
    ]);
    let stdout = text(&o.stdout);
    assert_eq!(o.status.code(), Some(0), "{stdout}\n{}", text(&o.stderr));
    let run: Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    schema_errors(&run).unwrap();

    let settled = step(&run, "settled");
    // Every attempt is one request; its latency is one sample, successful or failed.
    let requests = settled["requests"].as_u64().unwrap();
    assert_eq!(
        requests,
        count(settled, "latency") + count(settled, "failed_latency")
    );
    // The demo's payment worker takes 50 ms and the poll waits 100 ms: at least two attempts
    // for some of the six polls, and exactly six settle samples.
    assert!(requests > 6, "{settled}");
    assert_eq!(count(settled, "settle"), 6, "{settled}");
    assert!(settled.get("unsettled").is_none(), "{settled}");
    let settle_p50 = settled["settle"]["p50_ms"].as_f64().unwrap();
    let request_p50 = settled["latency"]["p50_ms"].as_f64().unwrap();
    assert!(
        settle_p50 >= 50.0 && request_p50 < settle_p50,
        "settle p50 {settle_p50} ms, request p50 {request_p50} ms"
    );

    // `http` is every request and nothing else: no waiting, counts that match.
    let http = &run["http"];
    let all: u64 = run["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["requests"].as_u64().unwrap())
        .sum();
    assert_eq!(http["requests"].as_u64().unwrap(), all);
    assert_eq!(
        http["requests"].as_u64().unwrap(),
        count(http, "latency") + count(http, "failed_latency")
    );
    assert!(http.get("settle").is_none(), "{http}");
    assert!(http["latency"]["p50_ms"].as_f64().unwrap() < settle_p50);

    // Both are shown, each labelled, and the file's `settled.settle` threshold was gated.
    assert!(stdout.contains("│ settled.settle"), "{stdout}");
    assert!(
        stdout.contains("settled.settle, pushed.settle, pushed_ws.settle: settle times"),
        "{stdout}"
    );
    let gated: Vec<&str> = run["thresholds"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["threshold"].as_str())
        .collect();
    assert!(gated.contains(&"settled.settle: p(95) < 5s"), "{gated:?}");

    // `compare` compares the settle time as a part of the step.
    let cmp = dir.path().join("cmp.json");
    let o = sonde(&[
        "compare",
        out.to_str().unwrap(),
        "--baseline",
        out.to_str().unwrap(),
        "--out",
        cmp.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let cmp = std::fs::read_to_string(&cmp).unwrap();
    assert!(cmp.contains("\"settled.settle\""), "{cmp}");

    // A baseline from before the split: the poll step's latency was its settle time and it
    // had no `settle`. Its latency is shown, not gated, and the comparison says why.
    let mut old = run.clone();
    let steps = old["steps"].as_array_mut().unwrap();
    let settled = steps.iter_mut().find(|s| s["name"] == "settled").unwrap();
    settled["latency"] = settled["settle"].clone();
    settled.as_object_mut().unwrap().remove("settle");
    settled.as_object_mut().unwrap().remove("unsettled");
    let old_path = dir.path().join("old.json");
    std::fs::write(&old_path, serde_json::to_vec(&old).unwrap()).unwrap();
    let o = sonde(&[
        "compare",
        out.to_str().unwrap(),
        "--baseline",
        old_path.to_str().unwrap(),
    ]);
    let said = format!("{}{}", text(&o.stdout), text(&o.stderr));
    assert_eq!(o.status.code(), Some(0), "{said}");
    assert!(said.contains("predates settle time"), "{said}");

    // The flat script summary carries it too, counted in polls.
    let o = sonde(&[
        "run",
        &invest(),
        "--vus",
        "1",
        "--iterations",
        "2",
        "--format",
        "json",
    ]);
    let flat: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(flat["settle"][0]["name"], "settled.settle", "{flat}");
    assert_eq!(flat["settle"][0]["requests"], 2, "{flat}");
}

#[test]
fn settle_thresholds_gate_the_settle_time_and_only_exist_on_poll_steps() {
    // A settle-time limit no poll can meet fails the run; the same limit on `settled` (its
    // requests) passes: the two are different numbers.
    let o = sonde(&[
        "run",
        &invest(),
        "--vus",
        "1",
        "--iterations",
        "2",
        "--threshold",
        "settled.settle: p(95) < 20ms",
        "--threshold",
        "settled: p(95) < 20s",
    ]);
    let stdout = text(&o.stdout);
    assert_eq!(o.status.code(), Some(1), "{stdout}\n{}", text(&o.stderr));
    assert!(
        stdout.contains("FAIL   ┆ settled.settle: p(95) < 20ms"),
        "{stdout}"
    );
    assert!(stdout.contains("pass   ┆ settled: p(95) < 20s"), "{stdout}");

    for (key, says) in [
        ("invest.settle: p(95) < 1s", "`invest` does not poll"),
        ("http.settle: p(95) < 1s", "`http` does not poll"),
        ("settled.setle: p(95) < 1s", "did you mean `settle`"),
    ] {
        let o = sonde(&["run", &invest(), "--dry-run", "--threshold", key]);
        let err = text(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{key}: {err}");
        assert!(err.contains(says), "{key}: {err}");
    }
    assert!(Path::new(&invest()).exists());
}

/// A filter that returns no startups, the platform's classic edge case: with an optional
/// capture and `if:`, every iteration passes and nothing counts as an error.
const EMPTY_FILTER: &str = r#"name: empty-filter
data:
  rows:
    - { industry: fintech, stage: seed }
    - { industry: no-such-industry, stage: seed }
steps:
  - name: search
    request:
      url: /startups
      query: { industry: "{{industry}}", stage: "{{stage}}" }
    expect: { status: 200 }
    capture:
      first: { json: "$.items[0].id", default: null }
  - name: startup
    if: { set: first }
    request: { url: "/startups/{{first}}" }
    expect: { status: 200, json: { "$.industry": fintech } }
  - name: nothing-found
    if: { empty: first }
    request: { url: /startups, query: { stage: "{{stage}}", per_page: 1 } }
    expect: { status: 200 }
  - name: uses-first
    request: { url: "/startups/{{first}}" }
thresholds:
  http: ["error_rate == 0"]
  iterations: ["count == 4"]
"#;

fn write(dir: &Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p.to_str().unwrap().to_string()
}

fn run_json(scenario: &str, dir: &Path, extra: &[&str]) -> (Output, Value) {
    let out = dir.join("run.json");
    let mut args = vec!["run", scenario, "--out", out.to_str().unwrap()];
    args.extend_from_slice(extra);
    let o = sonde(&args);
    let run = serde_json::from_slice(&std::fs::read(&out).unwrap())
        .unwrap_or_else(|e| panic!("{e}: {}", text(&o.stderr)));
    (o, run)
}

#[test]
fn an_empty_filter_result_passes_with_a_default_capture_and_if() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "empty.yaml", EMPTY_FILTER);
    let (o, run) = run_json(&file, dir.path(), &["--vus", "1", "--iterations", "4"]);
    let stdout = text(&o.stdout);
    assert_eq!(o.status.code(), Some(0), "{stdout}\n{}", text(&o.stderr));
    schema_errors(&run).unwrap();
    assert_eq!(run["iterations"]["failed"], 0, "{stdout}");
    assert_eq!(run["http"]["errors"], 0, "{stdout}");
    // Two iterations found a fintech startup, two found none.
    assert_eq!(step(&run, "search")["requests"], 4);
    assert_eq!(step(&run, "startup")["requests"], 2);
    assert_eq!(step(&run, "startup")["not_run"], 2);
    assert_eq!(step(&run, "nothing-found")["requests"], 2);
    // A step that uses the null variable in its URL is not sent as `/startups/`.
    let uses = step(&run, "uses-first");
    assert_eq!(uses["requests"], 2, "{uses}");
    assert_eq!(uses["not_run"], 2, "{uses}");
    let why = uses["not_run_reasons"].to_string();
    assert!(why.contains("needs `first`, which has no value"), "{why}");
    assert!(
        stdout.contains("note      startup: not run 2 time(s)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("`if: { set: first }` did not hold"),
        "{stdout}"
    );

    // Without the default the same run fails, once per empty result: the capture is the one
    // error, and the steps that need `first` are not run (no "undefined variable" errors).
    let strict = EMPTY_FILTER.replace(", default: null", "");
    let file = write(dir.path(), "strict.yaml", &strict);
    let (o, run) = run_json(&file, dir.path(), &["--vus", "1", "--iterations", "4"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stdout));
    assert_eq!(run["http"]["errors"], 2, "{}", run["http"]);
    let search = step(&run, "search");
    assert_eq!(search["error_classes"]["capture"], 2, "{search}");
    assert_eq!(run["iterations"]["failed"], 2);
    for name in ["startup", "nothing-found", "uses-first"] {
        let s = step(&run, name);
        assert_eq!(s["errors"], 0, "{s}");
        assert!(
            s.get("error_classes")
                .unwrap()
                .as_object()
                .unwrap()
                .is_empty()
        );
    }
    assert_eq!(step(&run, "uses-first")["not_run"], 2);
}

#[test]
fn after_a_4xx_later_steps_are_not_run_or_run_on_its_outcome() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "fail.yaml",
        r#"name: after-a-4xx
steps:
  - name: missing
    request: { url: /startups/999999 }
    capture: { id: "$.id" }
  - name: detail
    request: { url: "/startups/{{id}}" }
  - name: fallback
    if: { failed: missing }
    request: { url: /startups, query: { per_page: 1 } }
  - name: on-success
    if: { passed: missing }
    request: { url: /startups }
  - name: unrelated
    request: { url: /startups, query: { per_page: 2 } }
"#,
    );
    let (o, run) = run_json(&file, dir.path(), &["--vus", "1", "--iterations", "3"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stdout));
    assert_eq!(
        run["http"]["errors"], 3,
        "one error per iteration: {}",
        run["http"]
    );
    assert_eq!(step(&run, "missing")["error_classes"]["status_4xx"], 3);
    // The message says why, from the problem+json body's `detail`.
    let why = step(&run, "missing")["error_messages"].to_string();
    assert!(why.contains("status 404 ("), "{why}");
    assert_eq!(step(&run, "detail")["not_run"], 3);
    assert_eq!(step(&run, "detail")["errors"], 0);
    assert_eq!(step(&run, "fallback")["requests"], 3);
    assert_eq!(step(&run, "on-success")["not_run"], 3);
    assert_eq!(step(&run, "unrelated")["requests"], 3);
}

#[test]
fn if_is_checked_before_anything_is_sent() {
    let dir = tempfile::tempdir().unwrap();
    let base = "name: bad\nsteps:\n  - name: search\n    request: { url: /startups }\n    capture: { first: \"$.items[0].id\" }\n  - name: next\n    request: { url: /startups }\n";
    for (cond, says) in [
        ("{ passed: serch }", "did you mean `search`?"),
        ("{ passed: next }", "`if` names no earlier step: `next`"),
        ("{ set: frist }", "undefined variable `frist`"),
        ("{ sett: first }", "did you mean `set`?"),
        ("{ set: first, empty: first }", "`if` takes one of"),
        ("{ var: first }", "`if` takes one of"),
    ] {
        let file = write(dir.path(), "bad.yaml", &format!("{base}    if: {cond}\n"));
        let o = sonde(&["validate", &file]);
        let err = text(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{cond}: {err}");
        assert!(err.contains(says), "{cond}: {err}");
        assert!(err.contains("bad.yaml:8:"), "{cond}: {err}");
    }
    let file = write(
        dir.path(),
        "bad.yaml",
        "name: bad\nsteps:\n  - name: s\n    request: { url: /startups }\n    capture: { a: { json: \"$.x\", defualt: 1 } }\n",
    );
    let err = text(&sonde(&["validate", &file]).stderr);
    assert!(err.contains("did you mean `default`?"), "{err}");
}

#[test]
fn matcher_typos_are_refused_with_a_suggestion() {
    let dir = tempfile::tempdir().unwrap();
    for (check, line_col, says) in [
        (
            r#"json: { "$.id": { exist: true } }"#,
            "m.yaml:6:25",
            "unknown matcher `exist`",
        ),
        (
            r#"json: { "$.id": { exist: true } }"#,
            "",
            "did you mean `exists`?",
        ),
        (
            r#"json: { "$.items": { count: 1, lenght: 2 } }"#,
            "m.yaml:6:38",
            "did you mean `length`?",
        ),
        (
            r#"json: { "$.n": { gt: many } }"#,
            "m.yaml:6:28",
            "`gt` needs a number, not `many`",
        ),
        (
            r#"json: { "$.n": { count: -1 } }"#,
            "m.yaml:6:31",
            "`count`",
        ),
        (
            r#"headers: { Content-Length: { gte: 1 } }"#,
            "m.yaml:6:36",
            "did you mean `gt`?",
        ),
    ] {
        let file = write(
            dir.path(),
            "m.yaml",
            &format!(
                "name: m\nsteps:\n  - name: s\n    request: {{ url: /startups }}\n    expect:\n      {check}\n"
            ),
        );
        let o = sonde(&["validate", &file]);
        let err = text(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{check}: {err}");
        assert!(err.contains(says), "{check}: {err}");
        assert!(err.contains(line_col), "{check}: {err}");
    }
    // An object with a key that is no near miss is still a value compared as written.
    let file = write(
        dir.path(),
        "m.yaml",
        "name: m\nsteps:\n  - name: s\n    request: { url: /startups }\n    expect: { json: { \"$.owner\": { name: whale } } }\n",
    );
    assert_eq!(sonde(&["validate", &file]).status.code(), Some(0));
}

#[test]
fn numeric_and_count_matchers_pass_and_fail_with_short_redacted_messages() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "m.yaml",
        r#"name: matchers
steps:
  - name: passing
    request: { url: /startups, query: { stage: seed, per_page: 10 } }
    expect:
      headers: { Content-Length: { gt: 10 } }
      json:
        "$.items": { length: 10, count: 1 }
        "$.items[*]": { count: { ge: 10 } }
        "$.items[0].funding_goal_cents": { gt: 0, le: 1e15 }
  - name: count-fails
    request: { url: /startups, query: { stage: seed, per_page: 3 } }
    expect: { json: { "$.items[*]": { count: { gt: 3 } } } }
  - name: number-fails
    request: { url: /startups, query: { per_page: 1 } }
    expect: { json: { "$.items[0].name": { gt: 0 } } }
  - name: length-fails
    request: { url: /startups, query: { per_page: 2 } }
    expect: { json: { "$.items": { length: { lt: 2 } } } }
  - name: secret
    request: { url: /demo/identities }
    expect: { json: { "$[0].token": { lt: 0 } } }
"#,
    );
    let (o, run) = run_json(&file, dir.path(), &["--vus", "1", "--iterations", "1"]);
    let stdout = text(&o.stdout);
    assert_eq!(o.status.code(), Some(1), "{stdout}");
    assert_eq!(step(&run, "passing")["errors"], 0, "{stdout}");
    let msg = |name: &str| step(&run, name)["error_messages"].to_string();
    assert!(
        msg("count-fails").contains("expected $.items[*] count > 3, got 3"),
        "{}",
        msg("count-fails")
    );
    assert!(
        msg("number-fails").contains("expected $.items[0].name > 0 (a number), got"),
        "{}",
        msg("number-fails")
    );
    assert!(
        msg("length-fails").contains("expected $.items length < 2, got 2"),
        "{}",
        msg("length-fails")
    );
    // A token quoted by a failure message is redacted, in the result and on the terminal.
    assert!(msg("secret").contains("‹redacted›"), "{}", msg("secret"));
    // Demo tokens are `sd_` and 40 hex digits.
    let json = run.to_string();
    for shown in [&stdout, &json] {
        assert!(!shown.contains("sd_"), "a token leaked: {shown}");
    }
}

#[test]
fn verbose_shows_the_exchange_with_secrets_redacted() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "v.yaml",
        r#"name: verbose
setup:
  - name: identities
    request: { url: /demo/identities }
    capture: { token: "$[?@.name == 'typical'].token" }
steps:
  - name: identities-again
    request:
      url: /demo/identities
      query: { api_key: canary-query-5f2d9c71e3 }
      headers: { X-Api-Key: canary-header-8b1e4a6f0d, Authorization: "Bearer {{token}}" }
  - name: missing
    request:
      url: /startups/999999
      headers: { Authorization: "Bearer {{token}}" }
"#,
    );
    let o = sonde(&[
        "run",
        &file,
        "--vus",
        "1",
        "--iterations",
        "4",
        "-v",
        "--verbose-limit",
        "2",
    ]);
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    // The first two exchanges in full: request line, headers, status, response body.
    assert!(err.contains("* #1 step `identities-again`"), "{err}");
    assert!(err.contains("> GET http://127.0.0.1:"), "{err}");
    assert!(err.contains("< HTTP/1.1 200 OK"), "{err}");
    assert!(err.contains("< HTTP/1.1 404 Not Found"), "{err}");
    assert!(err.contains("* FAILED: "), "{err}");
    assert!(err.contains("from now on failed ones only"), "{err}");
    // Then failures only, up to the limit: exchanges #4 and #6 (the 404s), not #3 or #5.
    assert!(err.contains("* #4 step `missing`"), "{err}");
    assert!(err.contains("* #6 step `missing`"), "{err}");
    assert!(!err.contains("* #3 "), "{err}");
    assert!(!err.contains("* #5 "), "{err}");
    assert!(!err.contains("* #8 "), "{err}");
    assert!(err.contains("2 failed exchanges shown"), "{err}");
    // No secret, request side or response side (demo tokens are `sd_...`).
    for canary in ["canary-query-5f2d9c71e3", "canary-header-8b1e4a6f0d", "sd_"] {
        assert!(!err.contains(canary), "{canary} leaked:\n{err}");
    }
    assert!(err.contains("‹redacted›"), "{err}");

    // Without -v, nothing of the exchange is printed.
    let o = sonde(&["run", &file, "--vus", "1", "--iterations", "1"]);
    assert!(!text(&o.stderr).contains("* #1"), "{}", text(&o.stderr));

    // Every command that sends a flow takes -v.
    for cmd in ["run", "breakdown", "repro", "bisect"] {
        let help = text(&sonde(&[cmd, "--help"]).stdout);
        assert!(help.contains("-v, --verbose"), "{cmd}: {help}");
        assert!(help.contains("--verbose-limit"), "{cmd}: {help}");
    }
    let o = sonde(&["breakdown", &file, "-n", "1", "-v"]);
    let err = text(&o.stderr);
    assert!(err.contains("* #1 step `identities-again`"), "{err}");
    assert!(!err.contains("canary-header-8b1e4a6f0d"), "{err}");

    // repro runs several environments: each exchange says which.
    let o = sonde(&[
        "repro",
        &file,
        "--env",
        "header:Accept-Language=de-DE",
        "--env",
        "header:Accept-Language=en-US",
        "-n",
        "1",
        "-v",
        "--verbose-limit",
        "20",
    ]);
    let err = text(&o.stderr);
    assert!(err.contains("· env header:Accept-Language=de-DE"), "{err}");
    assert!(err.contains("· env header:Accept-Language=en-US"), "{err}");
    for canary in ["canary-query-5f2d9c71e3", "canary-header-8b1e4a6f0d", "sd_"] {
        assert!(!err.contains(canary), "{canary} leaked:\n{err}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redirect_chain_is_one_request_so_counts_match_percentiles() {
    let server = support::spawn(|req: hyper::Request<hyper::body::Incoming>| async move {
        match req.uri().path() {
            "/start" => support::redirect_to("/middle".into()),
            "/middle" => support::redirect_to("/end".into()),
            _ => support::response(200, support::full("done")),
        }
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "r.yaml",
        "name: redirects\nsteps:\n  - name: hop\n    request: { url: /start }\n",
    );
    let target = server.url("/").to_string();
    let dir_path = dir.path().to_path_buf();
    let (o, run) = tokio::task::spawn_blocking(move || {
        run_json(
            &file,
            &dir_path,
            &["--target", &target, "--vus", "1", "--iterations", "3"],
        )
    })
    .await
    .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let hop = step(&run, "hop");
    assert_eq!(hop["requests"], 3, "{hop}");
    assert_eq!(hop["redirects"], 6, "{hop}");
    assert_eq!(count(hop, "latency"), 3, "{hop}");
    // Every hop's phases are still measured.
    assert_eq!(hop["phases"]["total"]["count"], 9, "{hop}");
}
