//! `sonde repro` against small real servers: the `--matrix` cross product (only the culprit
//! cell fails, with its status and first failure), a flaky environment, `--expect-status` for a
//! scenario-less flow, inline and env-file environments, and the usage errors.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::support::bisect::{curl_env, rule_server, s, sonde};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn matrix_rows_show_which_cell_fails() {
    // Fails only when x-d00 and x-d03 (both headers) are `b`.
    let srv = rule_server(200, |seen, _| seen.all_bad(&[0, 3])).await;
    let dir = tempfile::tempdir().unwrap();
    let good = curl_env(dir.path(), "g.curl", srv.server.port(), 'g', 6, "");
    let good = good.display().to_string();
    let out = sonde(s(&[
        "repro",
        "--env",
        &good,
        "--matrix",
        "header:x-d00=g,b",
        "--matrix",
        "header:x-d03=g,b",
        "-n",
        "2",
        "--format",
        "json",
    ]))
    .await;
    assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
    let doc = out.json();
    assert_eq!(doc["schema"], "sonde.repro/v1");
    assert_eq!(
        doc["matrix"],
        serde_json::json!(["header:x-d00", "header:x-d03"])
    );
    let rows = doc["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 4);
    let verdicts: Vec<&str> = rows
        .iter()
        .map(|r| r["verdict"].as_str().unwrap())
        .collect();
    assert_eq!(verdicts, vec!["pass", "pass", "pass", "fail"]);
    assert_eq!(
        rows[3]["cell"],
        serde_json::json!(["header:x-d00=b", "header:x-d03=b"])
    );
    assert_eq!(rows[3]["steps"][0]["statuses"]["500"], 2);
    assert_eq!(rows[3]["first_failure"], "GET /flow: status 500");
    assert_eq!(rows[0]["steps"][0]["statuses"]["200"], 2);
    assert_eq!(srv.requests(), 8);

    // The table: the axes are columns, the failure is listed under it.
    let out = sonde(s(&[
        "repro",
        "--env",
        &good,
        "--matrix",
        "header:x-d00=g,b",
        "--matrix",
        "header:x-d03=~,b",
        "-n",
        "1",
    ]))
    .await;
    assert_eq!(out.code, 1);
    let t = &out.stdout;
    assert!(
        t.contains("x-d00") && t.contains("x-d03") && t.contains("(absent)"),
        "{t}"
    );
    assert!(t.contains("FAIL 500"), "{t}");
    assert!(t.contains("first failure per environment"), "{t}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_environment_that_both_passes_and_fails_is_flaky() {
    let srv = rule_server(200, |seen, n| seen.all_bad(&[0]) && n % 2 == 1).await;
    let dir = tempfile::tempdir().unwrap();
    let port = srv.server.port();
    let good = curl_env(dir.path(), "g.curl", port, 'g', 3, "")
        .display()
        .to_string();
    let bad = curl_env(dir.path(), "b.curl", port, 'b', 3, "")
        .display()
        .to_string();
    let out = sonde(s(&[
        "repro", "--env", &good, "--env", &bad, "-n", "4", "--format", "json",
    ]))
    .await;
    assert_eq!(out.code, 1, "{}", out.stderr);
    let doc = out.json();
    assert_eq!(doc["rows"][0]["verdict"], "pass");
    assert_eq!(doc["rows"][1]["verdict"], "flaky");
    assert_eq!(doc["rows"][1]["failed"], 2);
    assert_eq!(doc["rows"][1]["steps"][0]["flaky"], true);
    let table = sonde(s(&["repro", "--env", &good, "--env", &bad, "-n", "4"])).await;
    assert!(table.stdout.contains("flaky"), "{}", table.stdout);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expect_status_overrides_the_default_rule() {
    let srv = rule_server(201, |_, _| false).await;
    let dir = tempfile::tempdir().unwrap();
    let env = curl_env(
        dir.path(),
        "e.curl",
        srv.server.port(),
        'g',
        2,
        "-X POST --data-raw '{\"a\":1}'",
    );
    let env = env.display().to_string();
    let ok = sonde(s(&["repro", "--env", &env, "-n", "1", "--format", "json"])).await;
    assert_eq!(ok.code, 0, "{}\n{}", ok.stdout, ok.stderr);
    assert_eq!(ok.json()["rows"][0]["steps"][0]["statuses"]["201"], 1);
    assert_eq!(ok.json()["steps"][0], "POST /flow");
    let strict = sonde(s(&[
        "repro",
        "--env",
        &env,
        "-n",
        "1",
        "--expect-status",
        "200",
        "--format",
        "json",
    ]))
    .await;
    assert_eq!(strict.code, 1);
    assert_eq!(
        strict.json()["rows"][0]["first_failure"],
        "POST /flow: expected status 200, got 201"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inline_items_and_env_files_are_environments_too() {
    let srv = rule_server(200, |seen, _| {
        seen.headers
            .get("accept-language")
            .is_some_and(|l| l.starts_with("de"))
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let req = curl_env(dir.path(), "r.curl", srv.server.port(), 'g', 1, "")
        .display()
        .to_string();
    let yaml = dir.path().join("de.yaml");
    std::fs::write(&yaml, "headers:\n  Accept-Language: de-DE\n").unwrap();
    let out = sonde(s(&[
        "repro",
        "--env",
        &req,
        "--env",
        "header:Accept-Language=de-AT",
        "--env",
        &yaml.display().to_string(),
        "-n",
        "1",
        "--format",
        "json",
    ]))
    .await;
    assert_eq!(out.code, 1, "{}", out.stderr);
    let doc = out.json();
    let rows: Vec<(String, String)> = doc["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["env"].as_str().unwrap().into(),
                r["verdict"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(
        rows,
        vec![
            ("r.curl".into(), "pass".into()),
            ("header:Accept-Language=de-AT".into(), "fail".into()),
            ("de.yaml".into(), "fail".into())
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_errors_exit_2_before_sending() {
    let out = sonde(s(&["repro", "--env", "header:X-A=1"])).await;
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains("nothing to send"), "{}", out.stderr);
    let out = sonde(s(&["repro"])).await;
    assert_eq!(out.code, 2);
    let out = sonde(s(&["repro", "--env", "no/such/file.curl"])).await;
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains("no such file"), "{}", out.stderr);
    let out = sonde(s(&[
        "repro",
        "--env",
        "header:X-A=1",
        "--matrix",
        "header:X=\"open",
    ]))
    .await;
    assert_eq!(out.code, 2);
    assert!(
        out.stderr.contains("unclosed double quote"),
        "{}",
        out.stderr
    );
    let out = sonde(s(&["repro", "some.curl", "--env", "header:X-A=1"])).await;
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains("--env"), "{}", out.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_matrix_above_the_cell_cap_is_refused_before_anything_is_sent() {
    let srv = rule_server(200, |_, _| false).await;
    let dir = tempfile::tempdir().unwrap();
    let env = curl_env(dir.path(), "g.curl", srv.server.port(), 'g', 1, "");
    let env = env.display().to_string();
    let ten = "0,1,2,3,4,5,6,7,8,9";
    let mut args = s(&["repro", "--env", &env, "-n", "1"]);
    for i in 0..4 {
        args.push("--matrix".into());
        args.push(format!("header:x-m{i}={ten}"));
    }
    let out = sonde(args.clone()).await;
    assert_eq!(out.code, 2, "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stderr.contains("10000 rows")
            && out.stderr.contains("cap of 1000")
            && out.stderr.contains("--max-cells"),
        "{}",
        out.stderr
    );
    assert_eq!(srv.requests(), 0);

    // `--max-cells` moves the cap both ways.
    let two = |max: &str| {
        s(&[
            "repro",
            "--env",
            &env,
            "-n",
            "1",
            "--matrix",
            "header:x-a=1,2",
            "--matrix",
            "header:x-b=1,2",
            "--max-cells",
            max,
            "--format",
            "json",
        ])
    };
    let out = sonde(two("3")).await;
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr.contains("4 rows") && out.stderr.contains("cap of 3"),
        "{}",
        out.stderr
    );
    assert_eq!(srv.requests(), 0);
    let out = sonde(two("4")).await;
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert_eq!(out.json()["rows"].as_array().unwrap().len(), 4);
    assert_eq!(srv.requests(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_huge_run_count_is_refused_not_allocated() {
    let srv = rule_server(200, |_, _| false).await;
    let dir = tempfile::tempdir().unwrap();
    let env = curl_env(dir.path(), "g.curl", srv.server.port(), 'g', 1, "");
    let env = env.display().to_string();
    for k in ["100000000000", "1001"] {
        let out = sonde(s(&["repro", "--env", &env, "-n", k])).await;
        assert_eq!(out.code, 2, "-n {k}: {}", out.stderr);
        assert!(out.stderr.contains("cap of 1000"), "{}", out.stderr);
    }
    assert_eq!(srv.requests(), 0);
}
