//! Secrets that come back from the server (`Set-Cookie`, `X-Auth-Token`, a JSON `token`, a
//! captured session) never show in a failure message: not on stdout or stderr, not in any of
//! the five `--out` formats, not in `breakdown -o`, not in the repro table.

use crate::support::{self, full};
use std::time::Duration;
use tokio::process::Command;

const CANARIES: [&str; 4] = [
    "canary-cookie-1",
    "canary-tok-2",
    "canary-json-3",
    "canary-sess-4",
];

async fn leaky_server() -> support::Server {
    support::spawn(|_req| async {
        let body = r#"{"token":"canary-json-3","user":{"session":"canary-sess-4"},"n":1}"#;
        let mut r = support::response(200, full(body));
        let h = r.headers_mut();
        h.insert("set-cookie", "sid=canary-cookie-1; Path=/".parse().unwrap());
        h.insert("x-auth-token", "canary-tok-2".parse().unwrap());
        h.insert("content-type", "application/json".parse().unwrap());
        r
    })
    .await
}

fn scenario(target: &str) -> String {
    format!(
        r#"name: leaky
target: {target}
load: {{ vus: 1, iterations: 2 }}
steps:
  - name: login
    request: {{ url: /login }}
    capture: {{ session_token: "$.user.session" }}
    expect: {{ headers: {{ x-auth-token: "expected-other" }} }}
  - name: cookie
    request: {{ url: /me }}
    expect: {{ headers: {{ set-cookie: {{ matches: "^nope" }} }} }}
  - name: json
    request: {{ url: /me }}
    expect: {{ json: {{ "$.token": "expected-other" }} }}
  - name: whole
    request: {{ url: /me }}
    expect: {{ json: {{ "$.user": "expected-object" }} }}
  - name: echo
    request: {{ url: /me }}
    expect: {{ body_contains: "{{{{session_token}}}}-and-more" }}
"#
    )
}

fn assert_clean(what: &str, text: &str) {
    for c in CANARIES {
        assert!(!text.contains(c), "{what} leaks {c}:\n{text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn response_secrets_never_reach_messages_or_reports() {
    let srv = leaky_server().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("leaky.yaml");
    std::fs::write(&file, scenario(srv.url("").as_str().trim_end_matches('/'))).unwrap();
    let outs: Vec<_> = ["run.json", "run.md", "junit.xml", "report.html", "run.txt"]
        .iter()
        .map(|n| dir.path().join(n))
        .collect();
    let mut args = vec!["run".to_string(), file.display().to_string(), "-q".into()];
    for o in &outs {
        args.push("-o".into());
        args.push(o.display().to_string());
    }
    let out = tokio::time::timeout(
        Duration::from_secs(60),
        Command::from(support::sonde()).args(&args).output(),
    )
    .await
    .unwrap()
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The failures are there, with what failed, just not the values.
    assert!(stdout.contains("expected header x-auth-token"), "{stdout}");
    assert!(stdout.contains("expected $.token =="), "{stdout}");
    assert!(stdout.contains("‹redacted›"), "{stdout}");
    assert_clean("stdout", &stdout);
    assert_clean("stderr", &String::from_utf8_lossy(&out.stderr));
    for o in &outs {
        assert_clean(
            &o.display().to_string(),
            &std::fs::read_to_string(o).unwrap(),
        );
    }

    let bd = dir.path().join("breakdown.json");
    let out = Command::from(support::sonde())
        .args([
            "breakdown",
            file.to_str().unwrap(),
            "-n",
            "1",
            "--connection",
            "reuse",
        ])
        .args(["-o", bd.to_str().unwrap()])
        .output()
        .await
        .unwrap();
    assert_clean("breakdown stdout", &String::from_utf8_lossy(&out.stdout));
    assert_clean("breakdown -o", &std::fs::read_to_string(&bd).unwrap());

    let out = Command::from(support::sonde())
        .args(["repro", file.to_str().unwrap(), "-n", "1"])
        .output()
        .await
        .unwrap();
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(table.contains("login"), "{table}");
    assert_clean("repro stdout", &table);
    assert_clean("repro stderr", &String::from_utf8_lossy(&out.stderr));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verbose_shows_the_jar_cookie_a_request_carries_redacted() {
    let srv = leaky_server().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("leaky.yaml");
    std::fs::write(&file, scenario(srv.url("").as_str().trim_end_matches('/'))).unwrap();
    let out = Command::from(support::sonde())
        .args([
            "run",
            file.to_str().unwrap(),
            "-q",
            "-v",
            "--verbose-limit",
            "3",
        ])
        .output()
        .await
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    // The second request carries the cookie the first response set, and -v shows it.
    assert!(err.contains("> cookie: sid=‹redacted›"), "{err}");
    assert!(err.contains("< set-cookie: sid=‹redacted›"), "{err}");
    assert_clean("-v", &err);
}
