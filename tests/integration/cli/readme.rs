//! The README's main command, exactly as a newcomer types it (minus `cargo run --release --`):
//! no server running, no flags. It must start the embedded demo, exit 0 and print the table.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::support;

#[test]
fn readme_main_command_prints_the_table() {
    let readme = std::fs::read_to_string("README.md").unwrap();
    let cmd = "cargo run --release -- run scenarios/profile-load.yaml";
    assert!(
        readme.contains(cmd),
        "the README's main command changed; update this test"
    );
    let out = support::sonde()
        .args(["run", "scenarios/profile-load.yaml"])
        .env_remove("TARGET")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("started the demo API in-process"),
        "{stderr}"
    );
    for want in [
        "│ profile",
        "│ total",
        "│ startup",
        "│ http",
        "p99 ms",
        "thresholds",
        "no errors",
    ] {
        assert!(stdout.contains(want), "missing {want:?} in:\n{stdout}");
    }
}

/// Every shipped scenario runs green against the embedded demo with no flags but a short
/// duration (the invest scenario once picked a fully funded startup and got only 422s).
#[test]
fn every_shipped_scenario_passes_against_the_demo() {
    for name in ["invest", "startups-browse", "onboarding-click"] {
        let out = support::sonde()
            .args([
                "run",
                &format!("scenarios/{name}.yaml"),
                "--duration",
                "2s",
                "-q",
            ])
            .env_remove("TARGET")
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{name}:\n{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(stdout.contains("no errors"), "{name}:\n{stdout}");
    }
}
