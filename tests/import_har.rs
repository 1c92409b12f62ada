//! HAR fixtures (Chrome, Firefox) import without loss, entries are chosen by index or URL
//! substring, vendor fields and nulls are tolerated, and broken JSON fails with line:column.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use sonde::import::{BodyKind, EntrySelector, ImportError, Source, har};
use std::path::PathBuf;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/import")
        .join(name)
}

fn read(name: &str) -> String {
    std::fs::read_to_string(fixture(name)).unwrap()
}

fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
    v.iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

#[test]
fn chrome_har_entry_by_url_substring() {
    let i = har::parse(
        &read("chrome.har"),
        &EntrySelector::UrlContains("onboarding/complete".into()),
    )
    .unwrap();
    assert_eq!(i.source, Source::Har { entry: 1 });
    assert_eq!(i.method, http::Method::POST);
    assert_eq!(i.base, "https://api.example.com");
    assert_eq!(i.path, "/onboarding/complete");
    assert_eq!(
        i.env.query,
        pairs(&[("step", "3"), ("access_token", "canaryQUERYtoken444")])
    );
    // Pseudo-headers, content-length, accept-encoding and cookie are not header items.
    assert_eq!(
        i.env.headers,
        pairs(&[
            ("accept", "application/json, text/plain, */*"),
            ("accept-language", "tr-TR,tr;q=0.9,en-US;q=0.8,en;q=0.7"),
            ("authorization", "Bearer canaryAUTHtoken111"),
            ("content-type", "application/json"),
            ("origin", "https://app.example.com"),
            ("priority", "u=1, i"),
            ("referer", "https://app.example.com/onboarding"),
            (
                "sec-ch-ua",
                r#""Chromium";v="124", "Google Chrome";v="124", "Not-A.Brand";v="99""#
            ),
            ("sec-fetch-mode", "cors"),
            (
                "user-agent",
                "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36"
            ),
            (
                "x-trace-context",
                "eyJhbGciOiJIUzI1NiJ9.eyJjYW5hcnkiOiI1NTUifQ.canaryJWTsig555"
            ),
        ])
    );
    assert!(i.compressed);
    assert_eq!(
        i.env.cookies,
        pairs(&[("sessionid", "canarySESSIONvalue222"), ("ab", "B")])
    );
    let flags: Vec<&str> = i.env.flags.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(flags, ["new_kyc_form", "beta_banner", "dark_mode"]);
    let b = i.env.body.as_ref().unwrap();
    assert_eq!(
        b.text,
        "{\"locale\":\"tr-TR\",\"name\":\"Zeynep Y\u{131}lmaz\"}"
    );
    assert_eq!(b.kind, BodyKind::Json);
}

#[test]
fn firefox_har_entry_by_index_with_form_body_and_url_credentials() {
    let i = har::parse(&read("firefox.har"), &EntrySelector::Index(1)).unwrap();
    assert_eq!(i.base, "https://api.example.com");
    assert_eq!(i.path, "/onboarding/step");
    assert_eq!(
        i.env.query,
        pairs(&[("access_token", "canaryQUERYtoken444"), ("lang", "tr")])
    );
    assert_eq!(
        i.env.headers,
        pairs(&[
            (
                "User-Agent",
                "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0"
            ),
            ("Accept", "*/*"),
            ("Accept-Language", "tr-TR,tr;q=0.8,en-US;q=0.5,en;q=0.3"),
            ("Content-Type", "application/x-www-form-urlencoded"),
            ("Origin", "https://app.example.com"),
            ("Referer", "https://app.example.com/onboarding"),
            ("Sec-Fetch-Dest", "empty"),
            // bob:canaryURLpass333 from the URL.
            ("Authorization", "Basic Ym9iOmNhbmFyeVVSTHBhc3MzMzM="),
        ])
    );
    assert_eq!(
        i.env.cookies,
        pairs(&[("sessionid", "canarySESSIONvalue222"), ("ab", "B")])
    );
    assert_eq!(i.env.flags, vec![("new_kyc_form".to_string(), true)]);
    let b = i.env.body.as_ref().unwrap();
    assert_eq!(
        b.text,
        "step=identity&full_name=Zeynep+Y%C4%B1lmaz&consent=on&x=1"
    );
    assert_eq!(b.kind, BodyKind::Form);
    assert_eq!(
        b.form_fields(),
        pairs(&[
            ("step", "identity"),
            ("full_name", "Zeynep Yılmaz"),
            ("consent", "on"),
            ("x", "1")
        ])
    );
}

#[test]
fn params_only_post_data_nulls_and_missing_fields_are_fine() {
    let src = r#"{"log":{"entries":[{"request":{"method":"POST","url":"http://127.0.0.1:9/f",
        "headers":[{"name":"X-A","value":null},{"name":"Cookie","value":"a=1"}],
        "cookies":null,"queryString":null,"_vendor":{"x":1},
        "postData":{"mimeType":"application/x-www-form-urlencoded",
                    "params":[{"name":"a b","value":"c&d"},{"name":"e"}]}},
        "response":null,"_securityState":"insecure"}]}}"#;
    let i = har::parse(src, &EntrySelector::Only).unwrap();
    assert_eq!(i.env.headers, pairs(&[("X-A", "")]));
    assert_eq!(i.env.cookies, pairs(&[("a", "1")]));
    assert_eq!(i.env.body.unwrap().text, "a+b=c%26d&e=");
}

#[test]
fn entry_selection_errors_list_the_entries() {
    let src = read("firefox.har");
    let e = har::parse(&src, &EntrySelector::Only).unwrap_err();
    let msg = e.to_string();
    assert!(msg.contains("2 entries"), "{msg}");
    assert!(
        msg.contains("0: GET https://api.example.com/users/7/profile"),
        "{msg}"
    );
    let e = har::parse(&src, &EntrySelector::UrlContains("/nope".into())).unwrap_err();
    assert!(e.to_string().contains("/onboarding/step"), "{e}");
    let e = har::parse(&src, &EntrySelector::Index(7)).unwrap_err();
    assert!(e.to_string().contains("entry 7 does not exist"), "{e}");
    assert_eq!(EntrySelector::parse("3"), EntrySelector::Index(3));
    let e = har::parse(r#"{"log":{"entries":[]}}"#, &EntrySelector::Only).unwrap_err();
    assert!(e.to_string().contains("no entries"), "{e}");
}

#[test]
fn broken_json_reports_line_and_column() {
    // A HAR cut in the middle (an interrupted save), at a known place.
    let full = read("chrome.har");
    let cut_at = full.find("\"_priority\": \"High\"").unwrap();
    let cut = &full[..cut_at];
    let e = har::parse(cut, &EntrySelector::Only).unwrap_err();
    let lines = cut.lines().count();
    let last_len = cut.lines().last().unwrap().len();
    match &e {
        ImportError::HarJson { line, col, .. } => {
            assert_eq!(*line, lines, "{e}");
            assert_eq!(*col, last_len, "{e}");
        }
        other => panic!("expected a JSON error, got {other}"),
    }
    // Wrong shape in the picked entry: the error names the JSON path, never the value.
    let src = "{\"log\": {\"entries\": [\n  {\"request\": {\"method\": \"GET\", \"url\": [\"canaryXYZsecret\"]}}]}}";
    let e = har::parse(src, &EntrySelector::Only).unwrap_err();
    assert!(
        e.to_string()
            .starts_with("log.entries[0].request.url: missing, empty or not a string"),
        "{e}"
    );
    assert!(!e.to_string().contains("canaryXYZsecret"), "{e}");
    let e = sonde::import::import_har_file(&fixture("broken/truncated.har"), &EntrySelector::Only)
        .unwrap_err();
    assert_eq!(e.position(), Some((5, 1)), "{e}");
}
