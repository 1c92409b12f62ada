//! Canary secrets planted in `Authorization`, `Cookie`, `Set-Cookie`, URL credentials,
//! `access_token` query parameters, API-key headers, JWTs in custom headers and body fields (in
//! any letter case) never appear in a generated scenario, an error message, or the
//! `Debug`/`Display` of what was imported, nor in anything `sonde import` prints. With
//! `--include-sensitive` they do appear, which proves the checks can see them.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::support;
use crate::support::import_fixture as fixture;
use sonde::import::{self, EmitOptions, EntrySelector, EnvSpec, Imported, diff, to_scenario_yaml};
use sonde::redact::{self, Redactor};

const CANARIES: &[&str] = &[
    "canaryAUTHtoken111",
    "canarySESSIONvalue222",
    "canaryURLpass333",
    "canaryQUERYtoken444",
    "canaryJWTsig555",
    "eyJhbGciOiJIUzI1NiJ9.eyJjYW5hcnkiOiI1NTUifQ",
    "canarySETCOOKIE666",
    "canaryAPIKEY777",
    "canaryPASSWORD888",
    "canaryBODYtok999",
    // base64 of `bob:canaryURLpass333` (URL credentials become `Authorization: Basic`).
    "Ym9iOmNhbmFyeVVSTHBhc3MzMzM",
];

/// Fails naming the canary and the context, never printing the whole text twice.
fn assert_clean(text: &str, context: &str) {
    let lower = text.to_lowercase();
    for c in CANARIES {
        assert!(
            !lower.contains(&c.to_lowercase()),
            "canary {c} leaked in {context}:\n{text}"
        );
    }
}

fn count_canaries(text: &str) -> usize {
    let lower = text.to_lowercase();
    CANARIES
        .iter()
        .filter(|c| lower.contains(&c.to_lowercase()))
        .count()
}

fn imports() -> Vec<(String, Imported)> {
    let mut v = Vec::new();
    for f in [
        "chrome_bash.curl",
        "chrome_cmd.cmd",
        "firefox_posix.curl",
        "mixed_case_secrets.curl",
        "url_credentials.curl",
    ] {
        v.push((
            f.to_string(),
            import::import_curl_file(&fixture(f)).unwrap(),
        ));
    }
    for (f, sel) in [
        ("chrome.har", EntrySelector::Index(1)),
        (
            "firefox.har",
            EntrySelector::UrlContains("onboarding".into()),
        ),
    ] {
        v.push((
            f.to_string(),
            import::import_har_file(&fixture(f), &sel).unwrap(),
        ));
    }
    v
}

fn opts(include_sensitive: bool) -> EmitOptions {
    EmitOptions {
        name: "t".into(),
        source_label: "test".into(),
        include_sensitive,
    }
}

#[test]
fn generated_scenarios_hold_placeholders_not_secrets() {
    for (name, imp) in imports() {
        let out = to_scenario_yaml(&imp, &opts(false));
        assert_clean(&out.yaml, &format!("scenario from {name}"));
        assert!(
            out.yaml.contains("${SONDE_"),
            "{name}: no placeholder:\n{}",
            out.yaml
        );
        assert_clean(&format!("{:?}", out.placeholders), "placeholder list");
        // The placeholders carry the values, so that a caller could export them.
        let planted: usize = out
            .placeholders
            .iter()
            .map(|p| count_canaries(p.secret_value()))
            .sum();
        assert!(planted >= 2, "{name}: only {planted} canaries found");
    }
}

#[test]
fn include_sensitive_keeps_the_values() {
    for (name, imp) in imports() {
        let out = to_scenario_yaml(&imp, &opts(true));
        assert!(out.placeholders.is_empty());
        assert!(
            count_canaries(&out.yaml) >= 2,
            "{name}: values missing with --include-sensitive:\n{}",
            out.yaml
        );
    }
}

#[test]
fn debug_and_display_never_show_secrets() {
    for (name, imp) in imports() {
        assert_clean(&format!("{imp:?}"), &format!("Debug of {name}"));
        assert_clean(&format!("{imp}"), &format!("Display of {name}"));
        assert_clean(&format!("{:?}", imp.env), &format!("Debug of env {name}"));
        assert_clean(&format!("{}", imp.env), &format!("Display of env {name}"));
        for item in imp.env.items() {
            assert_clean(&format!("{item:?} {item}"), "an item");
        }
        // A diff against an empty environment lists every item; none shows a secret value.
        let d = diff(&EnvSpec::default(), &imp.env);
        assert!(!d.is_empty());
        assert_clean(&format!("{d:?}"), &format!("diff of {name}"));
        let mut r = Redactor::new(false);
        for v in imp.env.secret_values() {
            r.add(&v);
        }
        assert_clean(&format!("{r:?}"), "Redactor Debug");
    }
}

#[test]
fn error_messages_never_show_secrets() {
    for f in [
        "broken/unbalanced_single.curl",
        "broken/unknown_option.curl",
        "broken/bad_url.curl",
        "broken/missing_continuation.curl",
    ] {
        let e = import::import_curl_file(&fixture(f)).unwrap_err();
        assert_clean(&format!("{e} {e:?}"), f);
    }
    // A HAR whose entry cannot be chosen lists URLs: redacted.
    let e = import::import_har_file(&fixture("firefox.har"), &EntrySelector::Only).unwrap_err();
    assert_clean(&e.to_string(), "HAR entry listing");
    let e = import::import_har_file(
        &fixture("chrome.har"),
        &EntrySelector::UrlContains("nothing-matches".into()),
    )
    .unwrap_err();
    assert_clean(&e.to_string(), "HAR no match");
    let e = import::parse_inline(
        "header:X=eyJhbGciOiJIUzI1NiJ9.eyJjYW5hcnkiOiI1NTUifQ.canaryJWTsig555 bad",
    )
    .err();
    // A valid item: no error expected, but its Debug must be clean.
    assert!(e.is_none());
    let e = import::parse_inline(
        "nonsense eyJhbGciOiJIUzI1NiJ9.eyJjYW5hcnkiOiI1NTUifQ.canaryJWTsig555",
    )
    .unwrap_err();
    assert_clean(&e.to_string(), "inline item error");
}

#[test]
fn cli_output_and_errors_are_clean() {
    let dir = tempfile::tempdir().unwrap();
    for (args, ok) in [
        (vec!["curl", "mixed_case_secrets.curl"], true),
        (vec!["curl", "chrome_cmd.cmd"], true),
        (vec!["har", "chrome.har", "--entry", "complete"], true),
        (vec!["har", "firefox.har"], false),
        (vec!["curl", "broken/unbalanced_single.curl"], false),
        (vec!["curl", "broken/bad_url.curl"], false),
    ] {
        let mut cmd = support::sonde_cmd();
        cmd.current_dir(fixture(""))
            .arg("import")
            .args(&args)
            .env("HOME", dir.path());
        let out = cmd.output().unwrap();
        assert_eq!(out.status.success(), ok, "{args:?}");
        if !ok {
            assert_eq!(out.status.code(), Some(2), "{args:?}");
        }
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert_clean(&all, &format!("sonde import {args:?}"));
    }
    // Written to a file: same guarantee.
    let target = dir.path().join("s.yaml");
    support::sonde_cmd()
        .args(["import", "curl"])
        .arg(fixture("mixed_case_secrets.curl"))
        .arg("-o")
        .arg(&target)
        .assert()
        .success();
    assert_clean(
        &std::fs::read_to_string(&target).unwrap(),
        "written scenario",
    );
}

#[test]
fn free_functions_hide_every_canary_shape() {
    let h = |n: &str, v: &str| redact::redact_header(n, v).into_owned();
    assert_clean(&h("AuThOrIzAtIoN", "Bearer canaryAUTHtoken111"), "header");
    assert_clean(
        &h("cookie", "SID=canarySESSIONvalue222; a=b"),
        "cookie header",
    );
    assert_clean(
        &h("SET-COOKIE", "x=canarySETCOOKIE666; Path=/"),
        "set-cookie",
    );
    assert_clean(&h("X-API-KEY", "canaryAPIKEY777"), "api key");
    assert_clean(
        &h(
            "X-Whatever",
            "eyJhbGciOiJIUzI1NiJ9.eyJjYW5hcnkiOiI1NTUifQ.canaryJWTsig555",
        ),
        "jwt",
    );
    assert_clean(
        &redact::redact_url("https://u:canaryURLpass333@h/p?Access_Token=canaryQUERYtoken444"),
        "url",
    );
    assert_clean(
        &redact::redact_cookie("JSESSIONID", "canarySESSIONvalue222"),
        "cookie",
    );
}
