//! HAR fixtures (Chrome, Firefox) import without loss, entries are chosen by index or URL
//! substring, vendor fields and nulls are tolerated, and broken JSON fails with line:column.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::support;
use crate::support::import_fixture as fixture;
use sonde::import::{BodyKind, EntrySelector, ImportError, Source, har};
use std::path::PathBuf;

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

fn corpus(name: &str) -> PathBuf {
    fixture("har-corpus").join(name)
}

fn load_entry(file: &str, index: usize) -> sonde::import::Imported {
    sonde::import::import_har_file(&corpus(file), &EntrySelector::Index(index)).unwrap()
}

/// Imports one entry and loads the scenario `sonde import` would write, with the placeholders
/// set to their values.
fn import_and_load(path: &std::path::Path, index: usize) -> Result<(), String> {
    let imp = sonde::import::import_har_file(path, &EntrySelector::Index(index))
        .map_err(|e| e.to_string())?;
    let emitted = sonde::import::to_scenario_yaml(
        &imp,
        &sonde::import::EmitOptions {
            name: "corpus".into(),
            source_label: "the HAR corpus".into(),
            include_sensitive: false,
        },
    );
    let values: Vec<(String, String)> = emitted
        .placeholders
        .iter()
        .map(|p| (p.var.clone(), p.secret_value().to_string()))
        .collect();
    sonde::scenario::load_str_with_env(
        &emitted.yaml,
        std::path::Path::new("corpus.yaml"),
        &Default::default(),
        &|n| values.iter().find(|(v, _)| v == n).map(|(_, x)| x.clone()),
    )
    .map(|_| ())
    .map_err(|e| format!("{e}\n{}", emitted.yaml))
}

#[test]
fn every_exporter_quirk_imports_into_a_valid_scenario() {
    let dir = fixture("har-corpus");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "har"))
        .collect();
    files.sort();
    assert!(files.len() >= 9, "the HAR corpus is missing");
    let (mut total, mut imported, mut failures) = (0, 0, Vec::new());
    for f in &files {
        let bytes = std::fs::read(f).unwrap();
        let text = String::from_utf8_lossy(bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&bytes));
        let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
        for (i, e) in doc["log"]["entries"].as_array().unwrap().iter().enumerate() {
            let url = e["request"]["url"].as_str().unwrap_or("");
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                continue;
            }
            total += 1;
            match import_and_load(f, i) {
                Ok(()) => imported += 1,
                Err(err) => failures.push(format!("{}#{i}: {err}", f.display())),
            }
        }
    }
    println!("HAR corpus: {imported} of {total} http(s) entries import into valid scenarios");
    assert!(total >= 20, "{total}");
    assert!(
        failures.is_empty(),
        "{} of {total} failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn exporter_quirks_are_read_as_the_browser_meant_them() {
    // Chrome: pseudo-headers and `authority` never become placeholders or items; the JSON body
    // is the exact text (big numbers, exponent, duplicate keys).
    let i = load_entry("chrome_devtools.har", 1);
    assert!(i.env.headers.iter().all(|(n, _)| !n.starts_with(':')));
    assert_eq!(
        i.env.body.as_ref().unwrap().text,
        r#"{"account":123456789012345678901,"amount":0.10000000000000000001,"scale":1e2,"k":1,"k":2,"note":"local"}"#
    );
    // A Latin-1 %E9 in a form body is kept as it is.
    let i = load_entry("chrome_devtools.har", 2);
    assert_eq!(
        i.env.body.as_ref().unwrap().text,
        "user=z%E9ynep&remember=on&password=local"
    );
    // Charles: base64 postData is decoded to its bytes; `?=` survives.
    let i = load_entry("charles.har", 1);
    let b = i.env.body.as_ref().unwrap();
    assert_eq!(b.wire(), b"\x00\x85\xff\xfeAB");
    assert_eq!(
        load_entry("charles.har", 0).raw_query.as_deref(),
        Some("=&v=1")
    );
    // Fiddler (BOM): duplicate headers stay separate and in order; `authorization` and
    // `AUTHORIZATION` are both kept.
    let i = load_entry("fiddler.har", 0);
    let ua: Vec<&str> = i
        .env
        .headers
        .iter()
        .filter(|(n, _)| n == "User-Agent")
        .map(|(_, v)| v.as_str())
        .collect();
    assert_eq!(ua, ["UA", "UA"]);
    let i = load_entry("fiddler.har", 1);
    let auth = i
        .env
        .headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("authorization"))
        .count();
    assert_eq!(auth, 2);
    // IE11: `cookies: {}`; chrome-har: numbers and booleans in params; Firebug: params only.
    assert!(load_entry("ie11.har", 0).env.cookies.is_empty());
    let i = load_entry("chrome_har_npm.har", 0);
    assert_eq!(
        i.env.body.as_ref().unwrap().text,
        "n=1&ok=true&ratio=0.5&empty="
    );
    let i = load_entry("firebug.har", 0);
    assert_eq!(
        i.env.body.as_ref().unwrap().text,
        "first+name=Ada&lang=en%26fr"
    );
    // Insomnia: the query only in `queryString`.
    let i = load_entry("insomnia.har", 0);
    assert_eq!(i.raw_query.as_deref(), Some("q=rust+http&limit=10"));
}

#[test]
fn refusals_name_the_json_path_and_tell_missing_from_empty() {
    let e = har::parse(r#"{"log":{"version":"1.2"}}"#, &EntrySelector::Only).unwrap_err();
    assert!(e.to_string().contains("`log.entries` is missing"), "{e}");
    let e = har::parse(r#"{"log":{"entries":[]}}"#, &EntrySelector::Only).unwrap_err();
    assert!(e.to_string().contains("no entries"), "{e}");
    let e = har::parse(r#"{"nope":1}"#, &EntrySelector::Only).unwrap_err();
    assert!(e.to_string().contains("is this a HAR file"), "{e}");
    // Another entry's odd shape does not matter; the picked one's does, by path.
    let src = r#"{"log":{"entries":[
        {"request":{"method":"GET","url":"https://a.test/","headers":"weird"}},
        {"request":{"method":"POST","url":"https://a.test/p","postData":{"mimeType":"application/x-www-form-urlencoded",
          "params":[{"name":"a","value":{"nested":true}}]}}}]}}"#;
    let e = har::parse(src, &EntrySelector::Index(1)).unwrap_err();
    assert_eq!(
        e.to_string(),
        "log.entries[1].request.postData.params[0].value: an object where a text value belongs"
    );
    let e = har::parse(src, &EntrySelector::Index(0)).unwrap_err();
    assert_eq!(e.to_string(), "log.entries[0].request.headers: not a list");
    // A UTF-16 export is named as such; a BOM is fine.
    let e = har::from_reader(&b"\xFF\xFE{\x00"[..], &EntrySelector::Only).unwrap_err();
    assert!(e.to_string().contains("UTF-16"), "{e}");
    let i = har::from_reader(
        &b"\xEF\xBB\xBF{\"log\":{\"entries\":[{\"request\":{\"method\":\"GET\",\"url\":\"http://a.test/\"}}]}}"[..],
        &EntrySelector::Only,
    )
    .unwrap();
    assert_eq!(i.path, "/");
    // The wrong importer says which one to use.
    let e = har::parse("curl http://a.test/\n", &EntrySelector::Only).unwrap_err();
    assert!(
        e.to_string().contains("use `sonde import curl FILE`"),
        "{e}"
    );
    let e = sonde::import::curl::parse("\n  {\"log\": {}}").unwrap_err();
    assert_eq!(e.position(), Some((2, 3)), "{e}");
    assert!(e.to_string().contains("use `sonde import har FILE`"), "{e}");
    // HARP, harviewer's JSONP form, often saved as .har.
    let i = har::parse(
        "onInputData({\"log\":{\"entries\":[{\"request\":{\"method\":\"GET\",\"url\":\"http://a.test/p\"}}]}});\n",
        &EntrySelector::Only,
    )
    .unwrap();
    assert_eq!(i.path, "/p");
}

#[test]
fn a_large_har_is_streamed_not_held() {
    // 5,000 entries with 4 KiB response bodies (20 MB), read through `Read`: the
    // last entry is found by URL, reading one entry at a time.
    struct Gen {
        i: usize,
        n: usize,
        buf: Vec<u8>,
        pos: usize,
    }
    impl std::io::Read for Gen {
        fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
            if self.pos == self.buf.len() {
                self.buf.clear();
                self.pos = 0;
                if self.i == 0 {
                    self.buf.extend_from_slice(b"{\"log\":{\"entries\":[");
                }
                if self.i < self.n {
                    if self.i > 0 {
                        self.buf.push(b',');
                    }
                    let body = "x".repeat(4096);
                    self.buf.extend_from_slice(
                        format!(
                            "{{\"request\":{{\"method\":\"GET\",\"url\":\"https://big.test/e{}\",\"headers\":[]}},\"response\":{{\"content\":{{\"text\":\"{body}\"}}}}}}",
                            self.i
                        )
                        .as_bytes(),
                    );
                    self.i += 1;
                } else if self.i == self.n {
                    self.buf.extend_from_slice(b"]}}");
                    self.i += 1;
                } else {
                    return Ok(0);
                }
            }
            let k = out.len().min(self.buf.len() - self.pos);
            out[..k].copy_from_slice(&self.buf[self.pos..self.pos + k]);
            self.pos += k;
            Ok(k)
        }
    }
    let n = 5_000;
    let g = Gen {
        i: 0,
        n,
        buf: Vec::new(),
        pos: 0,
    };
    let i = har::from_reader(g, &EntrySelector::UrlContains("/e4999".into())).unwrap();
    assert_eq!(i.path, "/e4999");
    assert_eq!(i.source, Source::Har { entry: 4_999 });
}

/// `SONDE_HAR_CORPUS=DIR`: the figures for another corpus of HAR files (not in the
/// repository): every http(s) entry imported and loaded as `sonde validate` would.
#[test]
#[ignore = "needs SONDE_HAR_CORPUS=DIR"]
fn external_har_corpus_figures() {
    let dir = std::env::var("SONDE_HAR_CORPUS").expect("SONDE_HAR_CORPUS=DIR");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "har"))
        .collect();
    files.sort();
    let (mut total, mut imported, mut unreadable) = (0, 0, 0);
    for f in &files {
        let bytes = std::fs::read(f).unwrap();
        let body = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&bytes);
        // HARP (`callback({...});`) read the same way the importer does.
        let unwrapped = std::str::from_utf8(body)
            .ok()
            .and_then(|t| Some(&t[t.find('(')? + 1..t.rfind(')')?]));
        let doc = serde_json::from_slice::<serde_json::Value>(body)
            .ok()
            .or_else(|| unwrapped.and_then(|t| serde_json::from_str::<serde_json::Value>(t).ok()));
        let Some(doc) = doc else {
            unreadable += 1;
            let e = sonde::import::import_har_file(f, &EntrySelector::Index(0)).unwrap_err();
            println!("not JSON  {}: {e}", f.display());
            continue;
        };
        let entries = doc["log"]["entries"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        for (i, e) in entries.iter().enumerate() {
            let url = e["request"]["url"].as_str().unwrap_or("");
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                continue;
            }
            total += 1;
            match import_and_load(f, i) {
                Ok(()) => imported += 1,
                Err(err) => println!("FAILED    {}#{i}: {err}", f.display()),
            }
        }
    }
    println!(
        "{} files ({unreadable} not JSON): {imported} of {total} http(s) entries import into valid scenarios",
        files.len()
    );
    assert!(imported * 100 >= total * 99, "{imported} of {total}");
}

/// The 1 GB export that took 1 GB of memory: `sonde import har` on a 64 MiB HAR (large
/// response bodies) must peak far below the file's size. The peak is `VmHWM`, sampled while
/// the process runs.
#[cfg(target_os = "linux")]
#[test]
fn a_large_har_file_is_imported_in_bounded_memory() {
    use std::io::Write as _;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.har");
    let mut f = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
    let body = "x".repeat(256 * 1024);
    f.write_all(b"{\"log\":{\"version\":\"1.2\",\"entries\":[")
        .unwrap();
    let n = 256;
    for i in 0..n {
        if i > 0 {
            f.write_all(b",").unwrap();
        }
        write!(
            f,
            "{{\"request\":{{\"method\":\"GET\",\"url\":\"https://big.test/e{i}\",\"headers\":[]}},\
             \"response\":{{\"content\":{{\"text\":\"{body}\"}}}}}}"
        )
        .unwrap();
    }
    f.write_all(b"]}}").unwrap();
    f.flush().unwrap();
    drop(f);
    let size = std::fs::metadata(&path).unwrap().len();
    assert!(size > 64 << 20, "{size}");

    let mut child = support::sonde()
        .args(["import", "har"])
        .arg(&path)
        .args(["--entry", &format!("e{}", n - 1)])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let status_file = format!("/proc/{}/status", child.id());
    let mut peak_kib = 0u64;
    let status = loop {
        if let Ok(s) = std::fs::read_to_string(&status_file)
            && let Some(kib) = s
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        {
            peak_kib = peak_kib.max(kib);
        }
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    };
    assert!(status.success());
    assert!(peak_kib > 0, "no memory sample was taken");
    assert!(
        peak_kib * 1024 < size / 2,
        "peak {peak_kib} KiB for a {size}-byte file"
    );
}
