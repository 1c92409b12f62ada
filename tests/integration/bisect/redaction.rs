//! Canary secrets in `Authorization`, `Cookie`, `Set-Cookie`, URL credentials, `access_token`
//! query parameters and JWTs (names in any letter case) never appear in anything `repro` or
//! `bisect` print — tables, JSON, the curl command, the `sonde repro` line, progress and error
//! messages — even when a secret item is the culprit. With `--include-sensitive` they do
//! appear, which proves the checks can see them.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::support;
use crate::support::bisect::{Output, rule_server, s, sonde};

const CANARIES: &[&str] = &[
    "canaryAUTHtoken111",
    "canarySESSIONvalue222",
    "canarySESSgood223",
    "canaryURLpass334",
    "canaryQUERYtoken444",
    "canaryQUERYgood445",
    "canaryJWTsig555",
    "eyJjYW5hcnkiOiI1NTUifQ",
    "canarySETCOOKIE666",
    // base64 of `bob:canaryURLpass334` (URL credentials become `Authorization: Basic`).
    "Ym9iOmNhbmFyeVVSTHBhc3MzMzQ",
];

fn leaks(text: &str) -> Vec<&'static str> {
    let lower = text.to_lowercase();
    CANARIES
        .iter()
        .copied()
        .filter(|c| lower.contains(&c.to_lowercase()))
        .collect()
}

fn assert_clean(out: &Output, what: &str) {
    let all = format!("{}\n{}", out.stdout, out.stderr);
    let found = leaks(&all);
    assert!(found.is_empty(), "{what} leaked {found:?}:\n{all}");
}

fn write(dir: &std::path::Path, name: &str, text: String) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p.display().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn canaries_never_leak_from_repro_or_bisect() {
    // Fails when the bad side's ACCESS_TOKEN and German locale come together: a secret item
    // is part of the culprit.
    let srv = rule_server(200, |seen, _| {
        seen.query.get("ACCESS_TOKEN").map(String::as_str) == Some("canaryQUERYtoken444")
            && seen.headers.get("x-locale").map(String::as_str) == Some("de")
    })
    .await;
    let port = srv.server.port();
    let dir = tempfile::tempdir().unwrap();
    let good = write(
        dir.path(),
        "good.curl",
        format!(
            "curl 'http://bob:canaryURLpass334@127.0.0.1:{port}/flow?access_token=canaryQUERYgood445&page=1' \\\n  \
             -H 'x-locale: en' \\\n  -b 'SessionId=canarySESSgood223; theme=light'\n"
        ),
    );
    let bad = write(
        dir.path(),
        "bad.curl",
        format!(
            "curl 'http://127.0.0.1:{port}/flow?ACCESS_TOKEN=canaryQUERYtoken444&page=1' \\\n  \
             -H 'AUTHORIZATION: Bearer canaryAUTHtoken111' \\\n  \
             -H 'COOKIE: SessionId=canarySESSIONvalue222; theme=dark' \\\n  \
             -H 'Set-COOKIE: SID=canarySETCOOKIE666; Path=/' \\\n  \
             -H 'X-Trace-Context: eyJhbGciOiJIUzI1NiJ9.eyJjYW5hcnkiOiI1NTUifQ.canaryJWTsig555' \\\n  \
             -H 'x-locale: de'\n"
        ),
    );

    for format in ["table", "json"] {
        let out = sonde(s(&[
            "bisect", "--good", &good, "--bad", &bad, "-n", "1", "--format", format,
        ]))
        .await;
        assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
        assert_clean(&out, &format!("bisect --format {format}"));
        if format == "json" {
            let doc = out.json();
            let names = support::bisect::culprit_names(&doc);
            assert_eq!(names, vec!["header:x-locale", "query:ACCESS_TOKEN"]);
            assert_eq!(doc["culprits"][1]["secret"], true);
            assert_eq!(doc["culprits"][1]["bad"], sonde::redact::REDACTED);
            let curl = doc["curl"].as_str().unwrap();
            // Each placeholder names the side whose value it holds.
            assert!(
                curl.contains("\"$SONDE_QUERY_ACCESS_TOKEN_GOOD\""),
                "{curl}"
            );
            assert!(curl.contains("\"$SONDE_QUERY_ACCESS_TOKEN_BAD\""), "{curl}");
            let repro = doc["repro"].as_str().unwrap();
            assert!(repro.contains("--matrix"), "{repro}");
        }
        let out = sonde(s(&[
            "repro",
            "--env",
            &good,
            "--env",
            &bad,
            "-n",
            "1",
            "--format",
            format,
            "--matrix",
            "query:ACCESS_TOKEN=canaryQUERYtoken444,~",
        ]))
        .await;
        assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
        assert_clean(&out, &format!("repro --format {format}"));
    }
    // Errors about a secret-bearing input stay clean too.
    let out = sonde(s(&[
        "repro",
        "--env",
        &good,
        "--matrix",
        "bogus:Authorization=Bearer canaryAUTHtoken111",
    ]))
    .await;
    assert_eq!(out.code, 2);
    assert_clean(&out, "a --matrix error");

    // Control: with --include-sensitive the values are there to be seen.
    let out = sonde(s(&[
        "bisect",
        "--good",
        &good,
        "--bad",
        &bad,
        "-n",
        "1",
        "--format",
        "json",
        "--include-sensitive",
    ]))
    .await;
    assert_eq!(out.code, 0);
    let seen = leaks(&out.stdout);
    assert!(seen.contains(&"canaryQUERYtoken444"), "{}", out.stdout);
    assert!(seen.contains(&"canaryAUTHtoken111"), "{}", out.stdout);
}
