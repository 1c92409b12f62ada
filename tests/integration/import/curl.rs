//! "Copy as cURL" fixtures (Chrome bash, Chrome cmd, Firefox POSIX) import without loss, and
//! broken commands fail with the expected line:column.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::support::import_fixture as fixture;
use sonde::import::{BodyKind, Dialect, ImportError, Imported, Source, curl};

fn load(name: &str) -> Imported {
    sonde::import::import_curl_file(&fixture(name)).unwrap()
}

fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
    v.iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

const CHROME_UA_MAC: &str = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36";
const SEC_CH_UA: &str = r#""Chromium";v="124", "Google Chrome";v="124", "Not-A.Brand";v="99""#;
const JWT: &str = "eyJhbGciOiJIUzI1NiJ9.eyJjYW5hcnkiOiI1NTUifQ.canaryJWTsig555";

fn chrome_headers(platform: &str, ua: &str) -> Vec<(String, String)> {
    pairs(&[
        ("accept", "application/json, text/plain, */*"),
        ("accept-language", "tr-TR,tr;q=0.9,en-US;q=0.8,en;q=0.7"),
        ("authorization", "Bearer canaryAUTHtoken111"),
        ("content-type", "application/json"),
        ("origin", "https://app.example.com"),
        ("priority", "u=1, i"),
        ("referer", "https://app.example.com/onboarding"),
        ("sec-ch-ua", SEC_CH_UA),
        ("sec-ch-ua-mobile", "?0"),
        ("sec-ch-ua-platform", platform),
        ("sec-fetch-dest", "empty"),
        ("sec-fetch-mode", "cors"),
        ("sec-fetch-site", "same-site"),
        ("user-agent", ua),
        ("x-trace-context", JWT),
    ])
}

fn common_request_checks(i: &Imported) {
    assert_eq!(i.method, http::Method::POST);
    assert_eq!(i.base, "https://api.example.com");
    assert_eq!(i.path, "/onboarding/complete");
    assert_eq!(
        i.env.query,
        pairs(&[("step", "3"), ("access_token", "canaryQUERYtoken444")])
    );
    assert_eq!(
        i.env.cookies,
        pairs(&[("sessionid", "canarySESSIONvalue222"), ("ab", "B")])
    );
    // X-Feature-Flags (comma list) and the ff cookie (| list) became flags, in order.
    let flags: Vec<(String, bool)> = ["new_kyc_form", "beta_banner", "dark_mode"]
        .iter()
        .map(|f| (f.to_string(), true))
        .collect();
    assert_eq!(i.env.flags, flags);
    assert_eq!(i.flag_sources.len(), 2);
    assert!(!i.insecure);
    assert!(!i.follow_redirects);
}

#[test]
fn chrome_bash_imports_every_byte() {
    let i = load("chrome_bash.curl");
    common_request_checks(&i);
    assert_eq!(i.source, Source::Curl(Dialect::Posix));
    assert_eq!(i.env.headers, chrome_headers("\"macOS\"", CHROME_UA_MAC));
    let body = i.env.body.as_ref().unwrap();
    assert_eq!(
        body.text,
        "{\"locale\":\"tr-TR\",\"name\":\"Zeynep 'Z' Y\u{131}lmaz\",\"note\":\"line1\\nline2\",\"emoji\":\"\u{1F680}\"}"
    );
    assert_eq!(body.kind, BodyKind::Json);
    assert_eq!(body.content_type.as_deref(), Some("application/json"));
}

#[test]
fn chrome_cmd_imports_every_byte() {
    let i = load("chrome_cmd.cmd");
    common_request_checks(&i);
    assert_eq!(i.source, Source::Curl(Dialect::Cmd));
    let ua_win = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36";
    assert_eq!(i.env.headers, chrome_headers("\"Windows\"", ua_win));
    let body = i.env.body.as_ref().unwrap();
    assert_eq!(
        body.text,
        "{\"locale\":\"tr-TR\",\"discount\":\"10%25 off\",\"note\":\"line1\nline2\"}"
    );
}

#[test]
fn firefox_posix_imports_every_byte() {
    let i = load("firefox_posix.curl");
    common_request_checks(&i);
    assert!(i.compressed);
    assert_eq!(
        i.env.headers,
        pairs(&[
            (
                "User-Agent",
                "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0"
            ),
            ("Accept", "application/json, text/plain, */*"),
            ("Accept-Language", "tr-TR,tr;q=0.8,en-US;q=0.5,en;q=0.3"),
            ("Accept-Encoding", "gzip, deflate, br"),
            ("Content-Type", "application/json"),
            ("Authorization", "Bearer canaryAUTHtoken111"),
            ("Origin", "https://app.example.com"),
            ("Connection", "keep-alive"),
            ("Referer", "https://app.example.com/onboarding"),
            ("Sec-Fetch-Dest", "empty"),
            ("Sec-Fetch-Mode", "cors"),
            ("Sec-Fetch-Site", "same-site"),
            ("X-Trace-Context", JWT),
            ("TE", "trailers"),
        ])
    );
    // Firefox writes U+00E9 as `\xe9` and U+0130 as `\u0130`.
    assert_eq!(
        i.env.body.as_ref().unwrap().text,
        "{\"locale\":\"tr-TR\",\"city\":\"\u{130}stanbul\",\"caf\u{e9}\":\"it's\"}"
    );
}

#[test]
fn cookies_flags_user_and_options() {
    let i = curl::parse(
        "curl -b 'ff=a|b; x=1; y=2' -u 'bob:s3cr3t' -A 'UA/1' -e 'https://r/;auto' \
         -kL --url http://127.0.0.1:8080/p --data-binary 'raw' -d 'more'",
    )
    .unwrap();
    assert_eq!(i.env.cookies, pairs(&[("x", "1"), ("y", "2")]));
    // As curl: a Cookie header replaces -b; several -b join with `;` and are sent verbatim.
    let j = curl::parse("curl http://h/ -b 'x=1' -H 'Cookie: y=2'").unwrap();
    assert_eq!(j.env.cookies, pairs(&[("y", "2")]));
    let j = curl::parse("curl http://h/ -b 'x=1' -b 'y=2'").unwrap();
    assert_eq!(j.env.headers, pairs(&[("Cookie", "x=1;y=2")]));
    assert_eq!(i.env.flags, vec![("a".into(), true), ("b".into(), true)]);
    assert_eq!(
        i.env.headers,
        pairs(&[
            ("Authorization", "Basic Ym9iOnMzY3IzdA=="),
            ("User-Agent", "UA/1"),
            ("Referer", "https://r/"),
        ])
    );
    assert!(i.insecure && i.follow_redirects);
    assert_eq!(i.base, "http://127.0.0.1:8080");
    let b = i.env.body.unwrap();
    assert_eq!(b.text, "raw&more");
    assert_eq!(
        b.content_type.as_deref(),
        Some("application/x-www-form-urlencoded")
    );
}

#[test]
fn url_credentials_become_basic_auth_and_leave_the_url() {
    let i = curl::parse("curl 'https://bob:pw@h.example/x'").unwrap();
    assert_eq!(i.base, "https://h.example");
    assert_eq!(i.env.headers, pairs(&[("Authorization", "Basic Ym9iOnB3")]));
}

/// Every broken input names the problem at the right place.
#[test]
fn broken_inputs_report_positions() {
    let cases: &[(&str, (usize, usize), &str)] = &[
        ("unbalanced_single.curl", (3, 6), "unbalanced single quote"),
        ("unbalanced_double.curl", (2, 6), "unbalanced double quote"),
        ("trailing_backslash.curl", (3, 28), "trailing `\\`"),
        ("unknown_option.curl", (3, 3), "`--proxy`"),
        ("missing_value.curl", (2, 3), "`-H` needs a value"),
        (
            "missing_continuation.curl",
            (3, 3),
            "line continuation missing",
        ),
        ("ansi_unbalanced.curl", (2, 14), "unbalanced `$'`"),
        ("shell_pipe.curl", (1, 26), "shell operator `|`"),
        ("not_curl.curl", (1, 1), "must start with `curl`"),
        ("bad_url.curl", (1, 6), "invalid URL"),
        ("cmd_unbalanced.cmd", (2, 7), "unbalanced double quote"),
        ("cmd_trailing_caret.cmd", (2, 22), "trailing `^`"),
    ];
    for (file, pos, needle) in cases {
        let e = sonde::import::import_curl_file(&fixture(&format!("broken/{file}"))).unwrap_err();
        assert_eq!(e.position(), Some(*pos), "{file}: {e}");
        assert!(e.to_string().contains(needle), "{file}: {e}");
    }
    let e = sonde::import::import_curl_file(&fixture("broken/no_url.curl")).unwrap_err();
    assert!(matches!(e, ImportError::MissingUrl), "{e}");
}

/// Every prefix of every fixture (an interrupted copy or save) gives a result or an error,
/// never a panic; bounded by the fixtures' sizes.
#[test]
fn truncated_inputs_never_panic() {
    for name in [
        "chrome_bash.curl",
        "chrome_cmd.cmd",
        "firefox_posix.curl",
        "mixed_case_secrets.curl",
        "chrome.har",
    ] {
        let src = std::fs::read_to_string(fixture(name)).unwrap();
        let cuts: Vec<usize> = (0..=src.len())
            .filter(|i| src.is_char_boundary(*i))
            .collect();
        assert!(cuts.len() < 20_000);
        for i in cuts {
            let prefix = &src[..i];
            if name.ends_with(".har") {
                let _ = sonde::import::har::parse(prefix, &sonde::import::EntrySelector::Index(1));
            } else {
                let _ = curl::parse_with(prefix, Dialect::Posix);
                let _ = curl::parse_with(prefix, Dialect::Cmd);
            }
        }
    }
}

#[test]
fn chrome_glob_escapes_are_undone_in_both_dialects() {
    let bash = curl::parse("curl 'https://h/search?filter\\[a\\]=1&q=\\{x\\}'").unwrap();
    assert_eq!(bash.raw_query.as_deref(), Some("filter[a]=1&q={x}"));
    let cmd = curl::parse_with(
        "curl ^\"https://h/search?filter^\\[a^\\]=1^&q=^\\{x^\\}^\" ^\r\n  -H ^\"accept: application/json^\"\r\n",
        Dialect::Cmd,
    )
    .unwrap();
    assert_eq!(cmd.raw_query.as_deref(), Some("filter[a]=1&q={x}"));
    // An unescaped glob would make curl send several requests: refused at its column.
    let e = curl::parse("curl 'https://h/{a,b}'").unwrap_err();
    assert_eq!(e.position(), Some((1, 17)), "{e}");
    // -g turns globbing off; an IPv6 literal is no glob.
    assert!(curl::parse("curl -g 'http://h/[x]'").is_ok());
    assert_eq!(
        curl::parse("curl 'http://[::1]:8080/p'").unwrap().base,
        "http://[::1]:8080"
    );
}

#[test]
fn shell_variables_become_scenario_variables_or_come_from_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("v.curl");
    std::fs::write(
        &f,
        "curl http://h/ -H \"Authorization: Bearer $SONDE_TEST_UNSET_TOKEN_9\"\n",
    )
    .unwrap();
    // Sent now (breakdown, repro, bisect): the variable must be set, as for the shell.
    let e = sonde::import::import_curl_file(&f).unwrap_err();
    assert!(matches!(e, ImportError::UnsetShellVar { .. }), "{e}");
    assert!(e.to_string().contains("`$SONDE_TEST_UNSET_TOKEN_9`"), "{e}");
    // Written as a scenario: a ${…} variable, never the literal text.
    let i = sonde::import::read_curl_file(&f).unwrap();
    let y = sonde::import::to_scenario_yaml(
        &i,
        &sonde::import::EmitOptions {
            name: "v".into(),
            source_label: "test".into(),
            include_sensitive: false,
        },
    );
    assert!(
        y.yaml
            .contains("\"Authorization\": \"Bearer ${SONDE_TEST_UNSET_TOKEN_9}\""),
        "{}",
        y.yaml
    );
    assert!(y.placeholders.is_empty());
}
