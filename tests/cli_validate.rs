//! `sonde validate` through the binary: shipped scenarios pass, a bad file fails with exit 2
//! and the loader's positioned message on stderr, nothing on stdout for it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Command;

#[test]
fn shipped_scenarios_validate() {
    let out = Command::new(env!("CARGO_BIN_EXE_sonde"))
        .args([
            "validate",
            "scenarios/profile-load.yaml",
            "scenarios/invest.yaml",
        ])
        .args([
            "scenarios/startups-browse.yaml",
            "scenarios/onboarding-click.yaml",
        ])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        stdout.lines().filter(|l| l.starts_with("ok  ")).count(),
        4,
        "{stdout}"
    );
}

#[test]
fn a_bad_file_exits_2_with_its_position() {
    let bad = "tests/fixtures/scenarios/bad/unknown-key-in-request.yaml";
    let out = Command::new(env!("CARGO_BIN_EXE_sonde"))
        .args(["validate", bad])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let expected = std::fs::read_to_string(bad.replace(".yaml", ".err")).unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.trim_end(), expected.trim_end());
}
