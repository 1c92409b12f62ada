//! `sonde validate` through the binary: shipped scenarios pass, a bad file fails with exit 2
//! and the loader's positioned message on stderr, nothing on stdout for it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::support;
use std::process::Command;

#[test]
fn shipped_scenarios_validate() {
    let out = support::sonde()
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
    let out = support::sonde().args(["validate", bad]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let expected = std::fs::read_to_string(bad.replace(".yaml", ".err")).unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.trim_end(), expected.trim_end());
}

/// "Billion laughs": nested variables that double at each level are refused by `validate` and
/// by `run` alike, before anything is sent, naming the variable, its position and the chain.
#[test]
fn expanding_variables_are_bounded_in_validate_and_run() {
    let bad = "tests/fixtures/scenarios/bad/template-expansion-too-large.yaml";
    let want =
        "variable `l20` in env `default` expands to 2.0 MiB (2097152 bytes), above the 1 MiB limit";
    let validate = support::sonde().args(["validate", bad]).output().unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let target = format!("http://{}", listener.local_addr().unwrap());
    let run = support::sonde()
        .args([
            "run",
            bad,
            "--target",
            &target,
            "--duration",
            "1s",
            "--quiet",
        ])
        .output()
        .unwrap();
    for (what, out) in [("validate", &validate), ("run", &run)] {
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{what}: {stderr}");
        assert!(stderr.contains(want), "{what}: {stderr}");
        assert!(
            stderr.contains(&format!("--> {bad}:26:7"))
                && stderr.contains("expansion chain: l20 -> l19 -> l18"),
            "{what}: {stderr}"
        );
    }
    // Nothing was sent: the listener never saw a connection.
    assert!(listener.accept().is_err(), "run connected to the target");
}

/// Invalid UTF-8 is positioned: line, column (characters before it) and byte offset, with the
/// line shown and a caret under the bad byte.
#[test]
fn invalid_utf8_names_line_column_and_byte_offset() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("latin1.yaml");
    let mut bytes = b"name: x\nsteps:\n  - name: caf".to_vec();
    bytes.push(0xE9); // `é` in Latin-1
    bytes.extend_from_slice(b"\n    request: { url: / }\n");
    std::fs::write(&path, &bytes).unwrap();
    let out = support::sonde()
        .arg("validate")
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("not valid UTF-8: byte 0xE9 at offset 28 (line 3, column 14)"),
        "{stderr}"
    );
    assert!(stderr.contains("latin1.yaml:3:14"), "{stderr}");
    assert!(
        stderr.contains("3 |   - name: caf\u{FFFD}\n  |              ^ invalid UTF-8 here"),
        "{stderr}"
    );
}

#[test]
fn completions_parse_in_bash_and_know_the_subcommands_and_the_man_page_is_roff() {
    let dir = tempfile::tempdir().unwrap();
    for shell in ["bash", "zsh", "fish"] {
        let out = support::sonde()
            .args(["completions", shell])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{shell}");
        let script = String::from_utf8(out.stdout).unwrap();
        for sub in ["breakdown", "bisect", "compare", "min-diff"] {
            assert!(script.contains(sub), "{shell} lacks {sub}");
        }
        if shell == "bash" {
            let path = dir.path().join("sonde.bash");
            std::fs::write(&path, &script).unwrap();
            let check = Command::new("bash").arg("-n").arg(&path).output().unwrap();
            assert!(
                check.status.success(),
                "bash -n: {}",
                String::from_utf8_lossy(&check.stderr)
            );
            // Sourced, it registers the completion function for `sonde`.
            let probe = Command::new("bash")
                .arg("-c")
                .arg(format!(". '{}' && complete -p sonde", path.display()))
                .output()
                .unwrap();
            assert!(
                String::from_utf8_lossy(&probe.stdout).contains("sonde"),
                "{}",
                String::from_utf8_lossy(&probe.stderr)
            );
        }
    }
    let out = support::sonde().arg("man").output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let man = String::from_utf8(out.stdout).unwrap();
    assert!(man.starts_with(".ie") || man.contains(".TH sonde"), "{man}");
    assert!(man.contains("breakdown"), "{man}");
    let bad = support::sonde()
        .args(["completions", "tcsh"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
}
