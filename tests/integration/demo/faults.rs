//! The demo's diagnostic faults behave exactly as documented: `slow-profile` (timings checked
//! with generous bounds and as ratios) and `onboarding-locale` (500 only for German locale AND
//! flag `new_kyc_form`), against the real server on 127.0.0.1:0.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use crate::support::demo::{Resp, req, start, token, user_id};
use serde_json::{Value, json};
use sonde::demo::{DemoConfig, Fault, RunningDemo};

/// Fastest of `n` profile loads (the minimum filters out scheduler noise), and the last body.
async fn profile_time(demo: &RunningDemo, who: &str, n: usize) -> (Duration, Value) {
    let id = user_id(demo, who);
    let mut best = Duration::MAX;
    let mut body = Value::Null;
    for _ in 0..n {
        let started = Instant::now();
        let resp = req(demo.addr, "GET", &format!("/users/{id}/profile"))
            .bearer(&token(demo, who))
            .send()
            .await;
        best = best.min(started.elapsed());
        assert_eq!(resp.status, 200);
        body = resp.json();
    }
    (best, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_profile_makes_only_the_whale_slow_and_changes_no_answer() {
    let healthy = start(DemoConfig::default()).await;
    let (whale_fast, whale_body) = profile_time(&healthy, "whale", 3).await;
    let (_, typical_body) = profile_time(&healthy, "typical", 1).await;
    healthy.shutdown().await.unwrap();

    let faulty = start(DemoConfig {
        faults: vec![Fault::SlowProfile],
        ..DemoConfig::default()
    })
    .await;
    let (whale_slow, whale_body_slow) = profile_time(&faulty, "whale", 1).await;
    let (typical_slow, typical_body_slow) = profile_time(&faulty, "typical", 10).await;
    faulty.shutdown().await.unwrap();

    eprintln!(
        "whale: {whale_fast:?} healthy, {whale_slow:?} with slow-profile; typical {typical_slow:?}"
    );
    assert!(
        whale_fast < Duration::from_millis(100),
        "healthy whale: {whale_fast:?}"
    );
    assert!(
        whale_slow > Duration::from_secs(1),
        "faulty whale: {whale_slow:?}"
    );
    assert!(
        typical_slow < Duration::from_millis(50),
        "typical with the fault: {typical_slow:?}"
    );
    assert!(
        whale_slow.as_secs_f64() / whale_fast.as_secs_f64() > 10.0,
        "the fault costs the whale an order of magnitude"
    );
    assert_eq!(whale_body, whale_body_slow, "same answer, only slower");
    assert_eq!(typical_body, typical_body_slow);
}

/// Runs start → steps 1-3 → complete for `who` with the given extra headers on every call.
async fn onboard(demo: &RunningDemo, who: &str, headers: &[(&str, &str)]) -> Resp {
    let t = token(demo, who);
    let post = |path: &str| {
        let mut r = req(demo.addr, "POST", path).bearer(&t);
        for (k, v) in headers {
            r = r.header(k, v);
        }
        r
    };
    assert_eq!(post("/onboarding/start").send().await.status, 200);
    for n in 1..=3 {
        let resp = post(&format!("/onboarding/steps/{n}"))
            .json(&json!({}))
            .send()
            .await;
        assert_eq!(resp.status, 200, "step {n}: {}", resp.text());
    }
    post("/onboarding/complete").send().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn onboarding_locale_fails_only_for_german_with_new_kyc_form() {
    let demo = start(DemoConfig {
        faults: vec![Fault::OnboardingLocale],
        ..DemoConfig::default()
    })
    .await;
    let de = ("accept-language", "de-DE,de;q=0.9,en;q=0.8");
    let en = ("accept-language", "en-GB,en;q=0.9");
    let flag = ("x-feature-flags", "dark_mode, new_kyc_form");
    let other_flag = ("x-feature-flags", "dark_mode");
    let cookie_flag = ("cookie", "ff=beta_nav|new_kyc_form; theme=dark");
    type Case<'a> = (&'a str, Vec<(&'a str, &'a str)>, u16);
    let cases: [Case; 7] = [
        ("german + flag header", vec![de, flag], 500),
        ("german + flag cookie", vec![de, cookie_flag], 500),
        (
            "plain de + flag",
            vec![("accept-language", "de"), flag],
            500,
        ),
        ("german alone", vec![de, other_flag], 200),
        ("flag alone", vec![en, flag], 200),
        ("flag, no locale", vec![flag], 200),
        ("neither", vec![en], 200),
    ];
    for (name, headers, status) in cases {
        let resp = onboard(&demo, "newbie", &headers).await;
        assert_eq!(resp.status, status, "{name}: {}", resp.text());
        if status == 500 {
            let p = resp.assert_problem(500, None);
            assert!(
                !p["detail"].as_str().unwrap().contains("parse"),
                "no internals leak"
            );
        } else {
            assert!(resp.json()["completed_at"].is_string(), "{name}");
        }
    }
    demo.shutdown().await.unwrap();

    let healthy = start(DemoConfig::default()).await;
    let resp = onboard(&healthy, "newbie", &[de, flag]).await;
    assert_eq!(resp.status, 200, "without the fault German + flag succeeds");
    assert_eq!(resp.json()["message"], "Willkommen an Bord!");
    healthy.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn onboarding_flow_validates_fills_defaults_and_orders_steps() {
    let demo = start(DemoConfig::default()).await;
    let t = token(&demo, "typical");
    let post = |path: &str| req(demo.addr, "POST", path).bearer(&t);
    post("/onboarding/steps/1")
        .json(&json!({}))
        .send()
        .await
        .assert_problem(409, None);
    post("/onboarding/complete")
        .send()
        .await
        .assert_problem(409, None);
    req(demo.addr, "POST", "/onboarding/start")
        .send()
        .await
        .assert_problem(401, None);
    assert_eq!(post("/onboarding/start").send().await.status, 200);
    post("/onboarding/steps/4")
        .json(&json!({}))
        .send()
        .await
        .assert_problem(404, None);
    post("/onboarding/steps/1")
        .json(&json!({"country": "Germany"}))
        .send()
        .await
        .assert_problem(422, Some("country"));
    post("/onboarding/steps/1")
        .json(&json!({"birth_year": "1990"}))
        .send()
        .await
        .assert_problem(422, Some("birth_year"));
    let step1 = post("/onboarding/steps/1")
        .header("accept-language", "fr-FR")
        .json(&json!({"display_name": "Zoë"}))
        .send()
        .await
        .json();
    assert_eq!(step1["profile"]["display_name"], "Zoë");
    assert_eq!(step1["profile"]["country"], "FR", "default from the locale");
    assert_eq!(step1["next_step"], 2);
    let incomplete = post("/onboarding/complete").send().await;
    let p = incomplete.assert_problem(409, None);
    assert!(p["detail"].as_str().unwrap().contains("2, 3"), "{p}");
    post("/onboarding/steps/2")
        .json(&json!({"address": "1 Main St"}))
        .send()
        .await
        .assert_problem(422, Some("address"));
    let step2 = post("/onboarding/steps/2")
        .header("x-feature-flags", "new_kyc_form")
        .json(&json!({"address": "1 Main St"}))
        .send()
        .await
        .json();
    assert_eq!(step2["kyc"]["form_version"], 2);
    assert_eq!(step2["kyc"]["tax_residency"], "FR");
    post("/onboarding/steps/3")
        .json(&json!({"accept_terms": false}))
        .send()
        .await
        .assert_problem(422, Some("accept_terms"));
    assert_eq!(post("/onboarding/steps/3").send().await.status, 200);
    let done = post("/onboarding/complete").send().await;
    assert_eq!(done.status, 200);
    assert_eq!(done.json()["message"], "Welcome aboard!");
    assert_eq!(done.json()["next_step"], Value::Null);
    // Restart clears the flow.
    let restarted = post("/onboarding/start").send().await.json();
    assert_eq!(restarted["next_step"], 1);
    assert_eq!(restarted["completed_at"], Value::Null);
    demo.shutdown().await.unwrap();
}
