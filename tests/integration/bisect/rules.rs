//! `sonde bisect` against small real servers whose failing rule each test writes: single
//! culprits, two- and three-way interactions among 30 differences (probe counts within ddmin's
//! bound and matching what the server saw), a culprit that fails every other time (found with
//! `-n 5`, marked flaky), identity items, and the premise failures with their exit codes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::support;
use crate::support::bisect::{culprit_names, curl_env, name_of, rule_server, s, sonde};
use sonde::bisect::ddmin::probe_bound;

struct Envs {
    _dir: tempfile::TempDir,
    good: String,
    bad: String,
}

fn envs(port: u16, n: usize) -> Envs {
    let dir = tempfile::tempdir().unwrap();
    let good = curl_env(dir.path(), "good.curl", port, 'g', n, "");
    let bad = curl_env(dir.path(), "bad.curl", port, 'b', n, "");
    Envs {
        good: good.display().to_string(),
        bad: bad.display().to_string(),
        _dir: dir,
    }
}

async fn bisect(e: &Envs, extra: &[&str]) -> support::bisect::Output {
    let mut args = s(&[
        "bisect", "--good", &e.good, "--bad", &e.bad, "--format", "json", "-q",
    ]);
    args.extend(s(extra));
    sonde(args).await
}

/// Plants `culprits` among 30 differences and checks bisect finds exactly them, within ddmin's
/// bound, and that the reported probe and request counts are what the server received.
async fn planted(culprits: &'static [usize]) {
    let srv = rule_server(200, move |seen, _| seen.all_bad(culprits)).await;
    let e = envs(srv.server.port(), 30);
    let out = bisect(&e, &["-n", "1"]).await;
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    let doc = out.json();
    let want: Vec<String> = culprits.iter().map(|i| name_of(*i)).collect();
    assert_eq!(culprit_names(&doc), want);
    assert_eq!(doc["outcome"], "culprit_found");
    assert_eq!(doc["differences"], 31, "30 items + the session cookie");
    assert_eq!(doc["identity_kept"][0]["name"], "session");
    assert_eq!(doc["varied"], 30);
    let probes = doc["probes"].as_u64().unwrap();
    assert!(probes as usize <= probe_bound(30));
    assert_eq!(doc["probe_bound"], probe_bound(30));
    // premise: bad, good; good + the bad identity; the probes; the witness run.
    assert_eq!(srv.requests(), probes + 4);
    assert_eq!(doc["requests"].as_u64().unwrap(), srv.requests());
    assert_eq!(doc["flaky"], false);
    assert_eq!(doc["confidence"], "high");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_culprit_among_30() {
    planted(&[17]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_way_interaction_among_30() {
    planted(&[3, 28]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_way_interaction_among_30() {
    planted(&[0, 14, 29]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn culprit_failing_half_the_time_is_found_and_marked_flaky() {
    // Requests carrying the culprit fail every other time: k = 5 runs of such a probe always
    // disagree, so it is flaky, never a clean pass.
    let hits = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let h = hits.clone();
    let srv = rule_server(200, move |seen, _| {
        seen.all_bad(&[7])
            && h.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
                .is_multiple_of(2)
    })
    .await;
    let e = envs(srv.server.port(), 12);
    let out = bisect(&e, &["-n", "5"]).await;
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    let doc = out.json();
    assert_eq!(culprit_names(&doc), vec![name_of(7)]);
    assert_eq!(doc["flaky"], true);
    assert!(doc["flaky_probes"].as_u64().unwrap() > 0);
    assert_ne!(doc["confidence"], "high");
    let note = doc["confidence_note"].as_str().unwrap();
    assert!(note.contains("flaky") && note.contains("50%"), "{note}");
    assert_eq!(doc["premise"]["bad"]["runs"], 5);
    let failed = doc["premise"]["bad"]["failed"].as_u64().unwrap();
    assert!((2..=3).contains(&failed), "bad failed {failed}/5");
    // The table says it too.
    let out = bisect_table(&e, &["-n", "5"]).await;
    assert!(out.stdout.contains("flaky"), "{}", out.stdout);
}

async fn bisect_table(e: &Envs, extra: &[&str]) -> support::bisect::Output {
    let mut args = s(&["bisect", "--good", &e.good, "--bad", &e.bad, "-q"]);
    args.extend(s(extra));
    sonde(args).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identity_is_kept_from_the_bad_side_unless_varied() {
    // Fails only for the bad session together with the bad x-d03.
    let srv = rule_server(200, |seen, _| {
        seen.cookies.get("session").map(String::as_str) == Some("sessb") && seen.all_bad(&[3])
    })
    .await;
    let e = envs(srv.server.port(), 6);
    let kept = bisect(&e, &["-n", "1"]).await;
    assert_eq!(kept.code, 0, "{}\n{}", kept.stdout, kept.stderr);
    assert_eq!(culprit_names(&kept.json()), vec![name_of(3)]);
    let varied = bisect(&e, &["-n", "1", "--vary-identity"]).await;
    assert_eq!(varied.code, 0, "{}", varied.stderr);
    let doc = varied.json();
    assert_eq!(
        culprit_names(&doc),
        vec![name_of(3), "cookie:session".to_string()]
    );
    assert_eq!(doc["identity_kept"].as_array().unwrap().len(), 0);
    // The session value is secret: its name shows, its value does not.
    let session = &doc["culprits"][1];
    assert_eq!(session["secret"], true);
    assert_ne!(session["bad"], "sessb");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identity_alone_failing_is_reported_as_the_culprit() {
    let srv = rule_server(200, |seen, _| {
        seen.cookies.get("session").map(String::as_str) == Some("sessb")
    })
    .await;
    let e = envs(srv.server.port(), 4);
    let out = bisect(&e, &["-n", "1"]).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let doc = out.json();
    assert_eq!(doc["identity_culprit"], true);
    assert_eq!(culprit_names(&doc), vec!["cookie:session".to_string()]);
    assert!(doc["message"].as_str().unwrap().contains("--vary-identity"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identical_environments_exit_2_and_send_nothing() {
    let srv = rule_server(200, |_, _| false).await;
    let e = envs(srv.server.port(), 5);
    let out = sonde(s(&["bisect", "--good", &e.good, "--bad", &e.good])).await;
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("identical"), "{}", out.stderr);
    assert!(out.stderr.contains("nothing was sent"), "{}", out.stderr);
    assert_eq!(srv.requests(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_that_passes_is_not_reproducible_exit_1() {
    let srv = rule_server(200, |_, _| false).await;
    let e = envs(srv.server.port(), 5);
    let out = bisect(&e, &["-n", "2"]).await;
    assert_eq!(out.code, 1, "{}", out.stderr);
    let doc = out.json();
    assert_eq!(doc["outcome"], "not_reproducible");
    let msg = doc["message"].as_str().unwrap();
    assert!(msg.contains("not reproducible here"), "{msg}");
    assert!(msg.contains("passed all 2 runs"), "{msg}");
    assert_eq!(doc["culprits"].as_array().unwrap().len(), 0);
    // Only the bad side was tried.
    assert_eq!(srv.requests(), 2);
    let table = bisect_table(&e, &["-n", "2"]).await;
    assert_eq!(table.code, 1);
    assert!(
        table.stdout.contains("not reproducible here"),
        "{}",
        table.stdout
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn good_that_fails_too_exit_1() {
    let srv = rule_server(200, |_, _| true).await;
    let e = envs(srv.server.port(), 5);
    let out = bisect(&e, &["-n", "2"]).await;
    assert_eq!(out.code, 1, "{}", out.stderr);
    let doc = out.json();
    assert_eq!(doc["outcome"], "good_fails");
    let msg = doc["message"].as_str().unwrap();
    assert!(msg.contains("the good environment fails too"), "{msg}");
    assert!(msg.contains("status 500"), "{msg}");
    assert_eq!(doc["premise"]["good"]["failed"], 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_target_exit_3() {
    let port = support::closed_port().await;
    let e = envs(port, 3);
    let out = bisect_table(&e, &["-n", "1"]).await;
    assert_eq!(out.code, 3, "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stderr.contains("could not be reached"),
        "{}",
        out.stderr
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probe_budget_is_respected_and_reported() {
    let srv = rule_server(200, |seen, _| seen.all_bad(&[2, 20])).await;
    let e = envs(srv.server.port(), 24);
    let out = bisect(&e, &["-n", "1", "--max-probes", "3"]).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let doc = out.json();
    assert_eq!(doc["exhausted"], true);
    assert_eq!(doc["probes"], 3);
    assert_eq!(doc["confidence"], "low");
    let names = culprit_names(&doc);
    assert!(names.contains(&name_of(2)) && names.contains(&name_of(20)));
}
