//! Bad scenario files and their exact expected messages (`bad/NAME.yaml` → `bad/NAME.err`),
//! compared byte for byte after normalising path separators. `SONDE_BLESS=1` rewrites the
//! `.err` files from the current output (review the diff before committing).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use sonde::scenario::{ErrorKind, Overrides, load_str_with_env};
use std::path::{Path, PathBuf};

const DIR: &str = "tests/fixtures/scenarios/bad";

/// No `${VAR}` is set while fixtures load, whatever the machine's environment holds.
fn no_env(_: &str) -> Option<String> {
    None
}

fn normalise(s: &str) -> String {
    s.replace("\r\n", "\n").replace('\\', "/")
}

fn fixtures() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(DIR)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    v.sort();
    v
}

#[test]
fn every_bad_fixture_fails_with_its_exact_message() {
    let bless = std::env::var_os("SONDE_BLESS").is_some();
    let files = fixtures();
    assert!(files.len() >= 12, "only {} bad fixtures", files.len());
    let mut mismatches = Vec::new();
    for f in &files {
        let name = f.file_name().unwrap().to_string_lossy().into_owned();
        let shown = Path::new(DIR).join(&name);
        let text = std::fs::read_to_string(f).unwrap();
        let err = match load_str_with_env(&text, &shown, &Overrides::default(), &no_env) {
            Ok(_) => panic!("{name} loaded without error"),
            Err(e) => e,
        };
        let got = normalise(&format!("{err}\n"));
        let expected_path = f.with_extension("err");
        if bless {
            std::fs::write(&expected_path, &got).unwrap();
            continue;
        }
        let want = std::fs::read_to_string(&expected_path)
            .map(|s| normalise(&s))
            .unwrap_or_else(|_| panic!("missing {}", expected_path.display()));
        if got != want {
            mismatches.push(format!("--- {name}: expected\n{want}--- got\n{got}"));
        }
        // Every message names the file with a position and shows a caret.
        assert!(got.contains(&format!("--> {DIR}/{name}:")), "{name}: {got}");
        assert!(got.contains('^'), "{name}: no caret");
        assert!(err.line() >= 1 && err.col() >= 1, "{name}: no position");
        let syntax = ["tab-", "unclosed-", "duplicate-key"]
            .iter()
            .any(|p| name.starts_with(p));
        assert_eq!(err.kind() == ErrorKind::Syntax, syntax, "{name}: kind");
    }
    assert!(mismatches.is_empty(), "\n{}", mismatches.join("\n"));
}
