//! The shipped scenarios validate against the embedded demo with no flags, and no input
//! derived from them (every truncation, some byte damage) makes the loader panic.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use sonde::plan::{LoadModel, StepNode, TargetSpec};
use sonde::scenario::{Overrides, load_str_with_env};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

fn no_env(_: &str) -> Option<String> {
    None
}

fn shipped() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir("scenarios")
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    v.sort();
    v
}

#[test]
fn every_shipped_scenario_validates_and_targets_the_embedded_demo() {
    let files = shipped();
    let names: Vec<String> = files
        .iter()
        .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
        .collect();
    for want in [
        "invest",
        "onboarding-click",
        "profile-load",
        "startups-browse",
    ] {
        assert!(
            names.iter().any(|n| n == want),
            "missing scenarios/{want}.yaml"
        );
    }
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        let plan = load_str_with_env(&text, f, &Overrides::default(), &no_env)
            .unwrap_or_else(|e| panic!("{}:\n{e}", f.display()));
        assert!(
            matches!(plan.target, TargetSpec::EmbeddedDemo { .. }),
            "{}",
            f.display()
        );
        assert!(plan.request_steps().count() >= 1);
        assert!(
            !plan.thresholds.is_empty(),
            "{} has no thresholds",
            f.display()
        );
        // The same file through `load` (process environment, real path) agrees.
        if std::env::var_os("TARGET").is_none() {
            let again = sonde::scenario::load(f, &Overrides::default()).unwrap();
            assert_eq!(again.name, plan.name);
        }
    }
}

#[test]
fn shipped_scenarios_have_the_shapes_the_issue_asks_for() {
    let load = |name: &str| {
        let p = Path::new("scenarios").join(format!("{name}.yaml"));
        let text = std::fs::read_to_string(&p).unwrap();
        load_str_with_env(&text, &p, &Overrides::default(), &no_env).unwrap()
    };
    let profile = load("profile-load");
    assert_eq!(
        profile.envs.keys().collect::<Vec<_>>(),
        vec!["typical", "whale"]
    );
    assert_eq!(profile.env_name.as_deref(), Some("whale"));
    assert!(
        profile
            .steps
            .iter()
            .any(|n| matches!(n, StepNode::Parallel(v) if v.len() == 2))
    );
    assert_eq!(profile.setup.len(), 1);

    let invest = load("invest");
    assert!(matches!(invest.load, LoadModel::Open { max_vus: 50, .. }));
    let settled = invest
        .request_steps()
        .find(|s| s.name == "settled")
        .unwrap();
    assert_eq!(
        settled.poll.as_ref().unwrap().since.as_deref(),
        Some("invest")
    );

    let browse = load("startups-browse");
    assert_eq!(browse.data.len(), 6);

    let onboarding = load("onboarding-click");
    assert!(onboarding.envs["de-new-kyc"].flags["new_kyc_form"]);
    assert!(!onboarding.envs["de"].flags["new_kyc_form"]);
    assert_eq!(
        onboarding.target,
        TargetSpec::EmbeddedDemo {
            faults: vec!["onboarding-locale".into()]
        }
    );
}

#[test]
fn target_comes_from_the_environment_when_set() {
    let p = Path::new("scenarios/profile-load.yaml");
    let text = std::fs::read_to_string(p).unwrap();
    let env = |n: &str| (n == "TARGET").then(|| "https://staging.example.test".to_string());
    let plan = load_str_with_env(&text, p, &Overrides::default(), &env).unwrap();
    assert_eq!(
        plan.target,
        TargetSpec::Url("https://staging.example.test".parse().unwrap())
    );
}

/// Every prefix (on char boundaries) of every shipped scenario, and each with one byte
/// replaced by characters YAML cares about: the loader returns Ok or Err, never panics.
#[test]
fn truncated_or_damaged_scenarios_never_panic() {
    let started = Instant::now();
    let mut runs = 0usize;
    for f in shipped() {
        let text = std::fs::read_to_string(&f).unwrap();
        // Every 3rd byte, and both sides of every line break and syntax character. (Each load
        // costs ~1-6 ms in a debug build, so not every byte.)
        let special = |c: char| "\n:{}[]\"'-#".contains(c);
        let cuts: Vec<usize> = (0..=text.len())
            .filter(|&i| text.is_char_boundary(i))
            .filter(|&i| {
                i % 3 == 0 || text[i..].starts_with(special) || text[..i].ends_with(special)
            })
            .collect();
        for &cut in &cuts {
            if let Err(e) = load_str_with_env(&text[..cut], &f, &Overrides::default(), &no_env) {
                let _ = e.to_string();
            }
            runs += 1;
        }
        for (k, &at) in cuts.iter().enumerate().step_by(17) {
            let junk = ["\t", ":", "{", "\"", "-", "[", "'", "#", "&a ", "*a"][k % 10];
            let mut damaged = text[..at].to_string();
            damaged.push_str(junk);
            damaged.push_str(text[at..].get(1..).unwrap_or(""));
            if let Err(e) = load_str_with_env(&damaged, &f, &Overrides::default(), &no_env) {
                let _ = e.to_string();
            }
            runs += 1;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "too slow");
    }
    assert!(runs > 1000, "only {runs} inputs tried");
}

/// Pseudo-random documents built from YAML-significant pieces (and multi-byte characters, so
/// columns and byte offsets differ): the loader never panics on any of them.
#[test]
fn random_yaml_like_input_never_panics() {
    const PIECES: [&str; 34] = [
        "steps:",
        "\n",
        "  ",
        "    ",
        "- ",
        "name: a",
        "name: b",
        "request:",
        "{",
        "}",
        "[",
        "]",
        ": ",
        "url: /",
        "{{x}}",
        "${X}",
        "\"",
        "'",
        "&a ",
        "*a",
        "<<: ",
        "load:",
        "rate: 1/s",
        "thresholds:",
        "a: [\"p(95) < 1s\"]",
        "\t",
        "é",
        "🙂",
        "#",
        "|",
        "capture: { x: $.x }",
        "env:",
        "parallel:",
        "think: 1s..",
    ];
    let mut rng = fastrand::Rng::with_seed(0x5eed);
    let started = Instant::now();
    for _ in 0..3000 {
        let n = rng.usize(1..40);
        let doc: String = (0..n).map(|_| PIECES[rng.usize(..PIECES.len())]).collect();
        if let Err(e) = load_str_with_env(&doc, Path::new("r.yaml"), &Overrides::default(), &no_env)
        {
            // Rendering walks the source line too: it must not panic either.
            let _ = e.to_string();
        }
    }
    assert!(started.elapsed() < Duration::from_secs(60));
}
