//! The demo's web app as a browser's cache sees it: every file the page loads (the page, its
//! stylesheet, its modules and what they import) is served by the real demo on 127.0.0.1 with
//! a type, a strong ETag and Cache-Control; a revalidation with the ETag is 304 without a body,
//! a stale one gets the file again; a path outside the app is a problem+json 404.

use std::collections::BTreeSet;

use crate::support::demo::{req, start};
use regex::Regex;
use sonde::demo::DemoConfig;

/// `/app/...` paths the page references (`src=`, `href=`) and module imports (`from './x.js'`),
/// followed transitively from the page.
async fn files_the_page_loads(addr: std::net::SocketAddr) -> BTreeSet<String> {
    let attr = Regex::new(r#"(?:src|href)="(/app/[^"]+)""#).unwrap();
    let import = Regex::new(r#"from '\./([^']+)'"#).unwrap();
    let mut seen = BTreeSet::new();
    let mut todo = vec!["/app/".to_string()];
    while let Some(path) = todo.pop() {
        if !seen.insert(path.clone()) {
            continue;
        }
        let resp = req(addr, "GET", &path).send().await;
        assert_eq!(
            resp.status, 200,
            "{path} is referenced by the app but not served"
        );
        let text = resp.text();
        for c in attr.captures_iter(&text) {
            todo.push(c[1].to_string());
        }
        for c in import.captures_iter(&text) {
            todo.push(format!("/app/{}", &c[1]));
        }
    }
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_file_the_page_loads_is_typed_tagged_cacheable_and_revalidates_to_304() {
    let demo = start(DemoConfig::default()).await;
    let files = files_the_page_loads(demo.addr).await;
    // The page, its stylesheet, the entry module and the API module it imports.
    for expected in ["/app/", "/app/app.css", "/app/app.js", "/app/api.js"] {
        assert!(
            files.contains(expected),
            "{expected} missing from {files:?}"
        );
    }
    for path in &files {
        let first = req(demo.addr, "GET", path).send().await;
        let ctype = first.header("content-type").unwrap().to_string();
        let want = match path.rsplit('.').next() {
            Some("css") => "text/css",
            Some("js") => "text/javascript",
            _ => "text/html",
        };
        assert!(ctype.starts_with(want), "{path}: content-type {ctype}");
        let etag = first.header("etag").unwrap().to_string();
        assert!(
            etag.starts_with('"') && etag.ends_with('"') && etag.len() > 10,
            "{path}: a strong quoted ETag, got {etag}"
        );
        let cache = first.header("cache-control").unwrap().to_string();
        assert!(
            cache == "no-cache" || cache.contains("max-age"),
            "{path}: cache-control {cache}"
        );
        assert_eq!(first.header("x-content-type-options"), Some("nosniff"));

        // The same ETag again (twice, as a browser sends its whole list): 304, no body.
        let again = req(demo.addr, "GET", path)
            .header("if-none-match", &format!("\"old\", {etag}"))
            .send()
            .await;
        assert_eq!(again.status, 304, "{path} with If-None-Match {etag}");
        assert!(again.body.is_empty(), "{path}: a 304 has no body");
        assert_eq!(again.header("etag"), Some(etag.as_str()));
        assert_eq!(again.header("cache-control"), Some(cache.as_str()));

        // A stale ETag: the whole file, byte for byte what the first load got.
        let stale = req(demo.addr, "GET", path)
            .header("if-none-match", "\"0000\"")
            .send()
            .await;
        assert_eq!(stale.status, 200);
        assert_eq!(stale.body, first.body);
    }
    demo.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_app_lives_under_app_slash_and_nothing_else_is_served_from_it() {
    let demo = start(DemoConfig::default()).await;
    let bare = req(demo.addr, "GET", "/app").send().await;
    assert_eq!(bare.status, 308);
    assert_eq!(bare.header("location"), Some("/app/"));
    for path in ["/app/missing.js", "/app/..%2Fmod.rs", "/app/mod.rs"] {
        let resp = req(demo.addr, "GET", path).send().await;
        resp.assert_problem(404, None);
    }
    // The assets are GET-only, like the rest of the read surface.
    let post = req(demo.addr, "POST", "/app/app.js").send().await;
    assert_eq!(post.status, 405);
    demo.shutdown().await.unwrap();
}

#[test]
fn sonde_demo_prints_where_the_app_is_and_serves_it_there() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    use std::time::Duration;

    let mut child = Command::new(env!("CARGO_BIN_EXE_sonde"))
        .args(["demo", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut app_url = None;
    loop {
        let line = match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(line) => line,
            Err(e) => {
                let _ = child.kill();
                panic!("banner not printed: {e}");
            }
        };
        if let Some(rest) = line.strip_prefix("web app: ") {
            app_url = rest.split_whitespace().next().map(str::to_string);
        }
        if line.contains("Ctrl-C") {
            break;
        }
    }
    let app_url = app_url.expect("the banner names the web app");
    let rest = app_url.strip_prefix("http://").unwrap();
    let (addr, path) = rest.split_once('/').unwrap();
    let addr: std::net::SocketAddr = addr.parse().unwrap();
    assert_eq!(path, "app/");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let page = rt.block_on(req(addr, "GET", "/app/").send());
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(page.status, 200);
    assert!(
        page.text()
            .contains("<script type=\"module\" src=\"/app/app.js\">")
    );
}
