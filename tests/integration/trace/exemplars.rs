//! From a slow percentile to the request behind it, against the real demo (`sonde demo --fault
//! slow-profile`, its own process on 127.0.0.1): the slowest exemplar sonde reports is the
//! whale's profile; the trace id it printed is the one the demo logged for that very request
//! (and answered in `traceresponse`); that request's `Server-Timing` shows the slow `db`. No
//! secret (the bearer token) reaches the exemplars or any output.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

struct Demo {
    child: Child,
    url: String,
    log: Arc<Mutex<Vec<String>>>,
}

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn demo(faults: &[&str]) -> Demo {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sonde"));
    cmd.args(["demo", "--listen", "127.0.0.1:0", "--seed", "7"]);
    for f in faults {
        cmd.args(["--fault", f]);
    }
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let log: Arc<Mutex<Vec<String>>> = Arc::default();
    let stderr = child.stderr.take().unwrap();
    let l2 = log.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            l2.lock().unwrap().push(line);
        }
    });
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    let url = loop {
        let line = rx
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .expect("the demo prints its URL");
        if let Some(u) = line
            .split_whitespace()
            .find(|w| w.starts_with("http://127.0.0.1:"))
        {
            break u.trim_end_matches('/').to_string();
        }
    };
    Demo { child, url, log }
}

const SCENARIO: &str = r#"name: whale-vs-typical
setup:
  - name: identities
    request: { url: /demo/identities }
    expect: { status: 200 }
    capture:
      whale_id: "$[?@.name == 'whale'].user_id"
      whale_token: "$[?@.name == 'whale'].token"
      typical_id: "$[?@.name == 'typical'].user_id"
      typical_token: "$[?@.name == 'typical'].token"
steps:
  - name: typical_profile
    request:
      url: /users/{{typical_id}}/profile
      headers: { Authorization: "Bearer {{typical_token}}" }
    expect: { status: 200 }
  - name: whale_profile
    request:
      url: /users/{{whale_id}}/profile
      headers: { Authorization: "Bearer {{whale_token}}" }
    expect: { status: 200 }
"#;

#[test]
fn the_slowest_exemplar_is_the_whales_profile_and_the_demo_logged_its_trace_id() {
    let d = demo(&["slow-profile"]);
    let dir = tempfile::tempdir().unwrap();
    let scenario = dir.path().join("w.yaml");
    std::fs::write(&scenario, SCENARIO).unwrap();
    let json = dir.path().join("run.json");
    let md = dir.path().join("run.md");
    let html = dir.path().join("run.html");
    let out = Command::new("timeout")
        .arg("120")
        .arg(env!("CARGO_BIN_EXE_sonde"))
        .arg("run")
        .arg(&scenario)
        .args(["--target", &d.url, "--vus", "1", "--iterations", "3", "-q"])
        .args(["--trace-url", "https://tempo.example/trace/{trace_id}"])
        .arg("--out")
        .arg(&json)
        .arg("--out")
        .arg(&md)
        .arg("--out")
        .arg(&html)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&out.stdout).to_string();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{table}\n{stderr}");
    let result: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    // The result, exemplars and `trace_url` included, is what docs/result-schema.json says.
    schema_check(&result);
    assert_eq!(
        result["trace_url"],
        "https://tempo.example/trace/{trace_id}"
    );

    // The run's slowest request is a whale profile, with its trace id and the server's answer.
    let slowest = result["http"]["exemplars"]["slowest"].as_array().unwrap();
    assert_eq!(slowest.len(), 5, "5 slowest of 6 requests: {slowest:#?}");
    let top = &slowest[0];
    assert_eq!(top["step"], "whale_profile", "{slowest:#?}");
    let whales: Vec<&Value> = slowest
        .iter()
        .filter(|e| e["step"] == "whale_profile")
        .collect();
    assert_eq!(
        whales.len(),
        3,
        "every whale profile is slower than any typical one"
    );
    let trace = top["trace_id"].as_str().unwrap();
    assert_eq!(trace.len(), 32);
    let latency = top["latency_ms"].as_f64().unwrap();
    // The step's max as its histogram holds it (3 significant digits).
    let max = result["steps"][1]["latency"]["max_ms"].as_f64().unwrap();
    assert!(
        (latency - max).abs() <= max * 0.001,
        "the slowest exemplar is the step's max: {latency} vs {max}"
    );
    // The demo answered `traceresponse` with the same trace id: it saw this very request.
    let rid = top["request_id"].as_str().unwrap();
    assert!(rid.starts_with(&format!("00-{trace}-")), "{rid}");
    // Its Server-Timing: `db` is where the time went.
    let db = top["server_timing"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "db")
        .unwrap_or_else(|| panic!("no db part: {top}"))["dur_ms"]
        .as_f64()
        .unwrap();
    assert!(db > latency * 0.5, "db {db} of {latency} ms: {top}");
    let typical_db_max = result["steps"][0]["server_timing"]["db"]["max_ms"]
        .as_f64()
        .unwrap();
    assert!(
        db > 10.0 * typical_db_max,
        "db {db} vs typical {typical_db_max}"
    );

    // The demo's log line for that request carries the same trace id and the slow db.
    let deadline = Instant::now() + Duration::from_secs(10);
    let logged = loop {
        let log = d.log.lock().unwrap().clone();
        if let Some(l) = log
            .iter()
            .find(|l| l.contains(&format!("trace_id={trace}")))
        {
            break l.clone();
        }
        assert!(
            Instant::now() < deadline,
            "trace id {trace} not in the demo's log:\n{log:#?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let whale_id = result["steps"][1]["name"].as_str().unwrap();
    assert_eq!(whale_id, "whale_profile");
    assert!(
        logged.contains("slow request: GET /users/") && logged.contains("/profile 200"),
        "{logged}"
    );
    assert!(
        logged.contains("server-timing: ") && logged.contains("db;dur="),
        "{logged}"
    );

    // Shown where people look: under the table's percentiles, one line each, linked in md/html.
    let section = table
        .split("slowest requests\n")
        .nth(1)
        .unwrap_or_else(|| panic!("no slowest requests section:\n{table}"));
    let first = section.lines().next().unwrap();
    assert!(
        first.contains("whale_profile") && first.contains(trace) && first.contains("db="),
        "{first}"
    );
    assert!(
        first.contains(&format!("https://tempo.example/trace/{trace}")),
        "{first}"
    );
    assert_eq!(
        section.lines().take_while(|l| l.starts_with("  ")).count(),
        5,
        "{section}"
    );
    let md = std::fs::read_to_string(&md).unwrap();
    assert!(md.contains("### Slowest requests"), "{md}");
    assert!(
        md.contains(&format!("[`{trace}`](https://tempo.example/trace/{trace})")),
        "{md}"
    );
    let html = std::fs::read_to_string(&html).unwrap();
    assert!(
        html.contains(&format!(
            "<a href=\"https://tempo.example/trace/{trace}\">{trace}</a>"
        )),
        "html links the exemplar"
    );

    // No secret reaches an exemplar: the whale's bearer token is nowhere in any output.
    let ids = get_json(&d.url, "/demo/identities");
    let tokens: Vec<String> = ids
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|i| i["token"].as_str().map(str::to_string))
        .collect();
    assert!(tokens.len() >= 2, "{ids}");
    let everything = format!(
        "{table}{stderr}{}{md}{html}",
        std::fs::read_to_string(&json).unwrap()
    );
    for t in &tokens {
        assert!(!everything.contains(t.as_str()), "a token leaked");
    }
}

/// A plain HTTP/1.1 GET on a fresh connection, the body as JSON.
fn get_json(base: &str, path: &str) -> Value {
    use std::io::{Read, Write};
    let addr = base.trim_start_matches("http://");
    let mut c = std::net::TcpStream::connect(addr).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        c,
        "GET {path} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\n\r\n"
    )
    .unwrap();
    let mut buf = Vec::new();
    c.read_to_end(&mut buf).unwrap();
    let text = String::from_utf8_lossy(&buf);
    let body = text.split("\r\n\r\n").nth(1).unwrap();
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {text}"))
}

/// Validates `v` against docs/result-schema.json (draft 2020-12).
fn schema_check(v: &Value) {
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
    if let Err(e) = schemas.validate(v, idx) {
        panic!("the result breaks docs/result-schema.json: {e:#}");
    }
    // And an exemplar that breaks the contract is refused.
    let mut broken = v.clone();
    broken["http"]["exemplars"]["slowest"][0]["trace_id"] = "not hex".into();
    assert!(schemas.validate(&broken, idx).is_err());
}
