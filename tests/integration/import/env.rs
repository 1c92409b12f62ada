//! Environments as atomic items: inline items, env YAML files, loading by `--env` spec, the
//! item-by-item diff `bisect` starts from, conversion to the plan's `Environment`, and the
//! scenario YAML `sonde import` writes (read back as YAML).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::support;
use crate::support::import_fixture as fixture;
use serde_json::{Value, json};
use sonde::import::{
    self, EmitOptions, EnvSpec, Item, ItemKind, apply_bad, diff, parse_env_yaml, parse_inline,
    to_scenario_yaml,
};
use sonde::plan::Template;

#[test]
fn inline_items_parse_into_the_item_model() {
    let cases: &[(&str, ItemKind, &str, &str)] = &[
        (
            "header:Accept-Language=tr-TR",
            ItemKind::Header,
            "Accept-Language",
            "tr-TR",
        ),
        ("cookie:ab=B", ItemKind::Cookie, "ab", "B"),
        ("flag:new_kyc_form=on", ItemKind::Flag, "new_kyc_form", "on"),
        ("flag:beta=false", ItemKind::Flag, "beta", "off"),
        ("flag:bare", ItemKind::Flag, "bare", "on"),
        ("query:x=1=2", ItemKind::Query, "x", "1=2"),
        ("var:user_id=7", ItemKind::Var, "user_id", "7"),
    ];
    for (src, kind, name, value) in cases {
        let items = parse_inline(src).unwrap();
        assert_eq!(items, vec![Item::new(*kind, *name, *value)], "{src}");
    }
    let flags = parse_inline("flags=a, b").unwrap();
    assert_eq!(flags.len(), 2);
    for bad in [
        "nokind",
        "color:x=1",
        "header:Bad Name=x",
        "flag:x=maybe",
        "cookie:=v",
    ] {
        let e = parse_inline(bad).unwrap_err();
        assert!(
            e.to_string().contains("invalid environment item"),
            "{bad}: {e}"
        );
    }
}

#[test]
fn env_yaml_keeps_order_and_types() {
    let src = "headers:\n  X-B: two\n  X-A: one\ncookies: {ab: B}\nflags: [new_kyc_form, beta]\nquery: {page: 2}\nvars: {user_id: 7}\n";
    let e = parse_env_yaml(src).unwrap();
    assert_eq!(
        e.headers,
        vec![("X-B".into(), "two".into()), ("X-A".into(), "one".into())]
    );
    assert_eq!(e.cookies, vec![("ab".into(), "B".into())]);
    assert_eq!(
        e.flags,
        vec![("new_kyc_form".into(), true), ("beta".into(), true)]
    );
    assert_eq!(e.query, vec![("page".into(), "2".into())]);
    assert_eq!(e.vars.get("user_id").map(String::as_str), Some("7"));
    let e = parse_env_yaml("flags: {a: off, b: true}").unwrap();
    assert_eq!(e.flags, vec![("a".into(), false), ("b".into(), true)]);
    let err = parse_env_yaml("flags: {a: maybe}").unwrap_err();
    assert!(
        err.to_string().contains("flag `a` must be on or off"),
        "{err}"
    );
    let err = parse_env_yaml("headers: {a: 1}\nheadrs: {b: 2}\n").unwrap_err();
    assert_eq!(err.position().map(|p| p.0), Some(2), "{err}");
}

#[test]
fn load_env_accepts_every_input_form() {
    let dir = tempfile::tempdir().unwrap();
    let yaml = dir.path().join("mine.yaml");
    std::fs::write(&yaml, "headers: {Accept-Language: en-US}\n").unwrap();
    let e = import::load_env(yaml.to_str().unwrap()).unwrap();
    assert_eq!(e.headers, vec![("Accept-Language".into(), "en-US".into())]);
    let e = import::load_env("header:Accept-Language=tr-TR").unwrap();
    assert_eq!(e.headers, vec![("Accept-Language".into(), "tr-TR".into())]);
    let e = import::load_env(fixture("chrome_bash.curl").to_str().unwrap()).unwrap();
    assert_eq!(e.cookies.len(), 2);
    let spec = format!("{}#complete", fixture("chrome.har").display());
    let e = import::load_env(&spec).unwrap();
    assert_eq!(e.flags.len(), 3);
    assert!(import::load_env("/nonexistent/x.curl").is_err());
}

#[test]
fn diff_lists_atomic_differences_and_apply_reproduces_bad() {
    let good = import::curl::parse(
        "curl https://h/p -H 'Accept-Language: en-US' -H 'Accept: */*' -H 'X-Feature-Flags: a,b' \
         -b 'ab=A; theme=dark' --url-query-is-not-here",
    );
    // An unknown option is refused, never dropped:
    assert!(good.is_err());
    let good = import::curl::parse(
        "curl 'https://h/p?page=1' -H 'Accept-Language: en-US' -H 'Accept: */*' \
         -H 'X-Feature-Flags: a,b' -b 'ab=A; theme=dark'",
    )
    .unwrap()
    .env;
    let bad = import::curl::parse(
        "curl 'https://h/p?page=1' -H 'accept-language: tr-TR' -H 'ACCEPT: */*' \
         -H 'X-Feature-Flags: b,c' -b 'ab=B; theme=dark'",
    )
    .unwrap()
    .env;
    let d = diff(&good, &bad);
    let got: Vec<(ItemKind, &str, Option<&str>, Option<&str>)> = d
        .iter()
        .map(|x| (x.kind, x.name.as_str(), x.good.as_deref(), x.bad.as_deref()))
        .collect();
    assert_eq!(
        got,
        vec![
            (
                ItemKind::Header,
                "accept-language",
                Some("en-US"),
                Some("tr-TR")
            ),
            (ItemKind::Cookie, "ab", Some("A"), Some("B")),
            (ItemKind::Flag, "c", None, Some("on")),
            (ItemKind::Flag, "a", Some("on"), None),
        ]
    );
    // Applying every difference to the good side gives the bad side's items.
    let all: Vec<_> = d.iter().collect();
    let probe = apply_bad(&good, &all);
    assert!(diff(&probe, &bad).is_empty(), "{:?}", diff(&probe, &bad));
    // A subset moves only those items.
    let one = apply_bad(&good, &[&d[1]]);
    assert_eq!(diff(&good, &one).len(), 1);
    assert!(diff(&good, &good).is_empty());
    // Identity: a differing session cookie is flagged.
    let a = EnvSpec::from_items(&[Item::new(ItemKind::Cookie, "sessionid", "x")]);
    let b = EnvSpec::from_items(&[Item::new(ItemKind::Cookie, "sessionid", "y")]);
    let d = diff(&a, &b);
    assert!(d[0].is_identity() && d[0].is_secret());
}

#[test]
fn converts_to_and_from_the_plan_environment() {
    let mut e = EnvSpec::from_items(&parse_inline("header:X-A={{not_a_var}}").unwrap());
    e.merge(&EnvSpec::from_items(&parse_inline("flag:f=off").unwrap()));
    e.merge(&EnvSpec::from_items(
        &parse_inline("var:user_id=7").unwrap(),
    ));
    let env = e.to_environment();
    assert_eq!(
        env.headers,
        vec![("X-A".into(), Template::literal("{{not_a_var}}"))]
    );
    assert_eq!(env.flags.get("f"), Some(&false));
    assert_eq!(env.vars.get("user_id"), Some(&Template::literal("7")));
    let back = EnvSpec::from_environment(&env);
    assert_eq!(back.vars, e.vars);
    assert_eq!(back.flags, e.flags);
}

fn yaml_of(imp: &sonde::import::Imported) -> Value {
    let out = to_scenario_yaml(
        imp,
        &EmitOptions {
            name: "s".into(),
            source_label: "test".into(),
            include_sensitive: false,
        },
    );
    serde_saphyr::from_str::<Value>(&out.yaml).unwrap()
}

#[test]
fn scenario_yaml_reads_back_with_the_imported_request() {
    let imp = import::import_curl_file(&fixture("chrome_bash.curl")).unwrap();
    let y = yaml_of(&imp);
    assert_eq!(y["name"], "s");
    assert_eq!(y["target"], "https://api.example.com");
    // The flags travel in a header and a cookie: a scenario sends them one way, so the file
    // keeps both as they were, byte for byte.
    assert!(y.get("flags").is_none());
    let env = &y["env"]["imported"];
    assert_eq!(
        env["headers"]["x-feature-flags"],
        "new_kyc_form,beta_banner"
    );
    assert_eq!(env["headers"]["authorization"], "${SONDE_AUTHORIZATION}");
    assert_eq!(env["headers"]["sec-ch-ua-platform"], "\"macOS\"");
    // The Content-Type header stays where it was; the body does not repeat it.
    assert_eq!(env["headers"]["content-type"], "application/json");
    assert_eq!(
        env["cookies"],
        json!({"sessionid": "${SONDE_COOKIE_SESSIONID}", "ff": "new_kyc_form|dark_mode", "ab": "B"})
    );
    assert!(env.get("flags").is_none());
    // One transport whose flags a scenario sends as they were: flags they stay.
    let one = import::curl::parse("curl http://h/ -H 'X-Feature-Flags: a,b'").unwrap();
    let y1 = yaml_of(&one);
    assert_eq!(
        y1["flags"],
        json!({"header": "X-Feature-Flags", "separator": ","})
    );
    assert_eq!(
        y1["env"]["imported"]["flags"],
        json!({"a": true, "b": true})
    );
    let spaced = import::curl::parse("curl http://h/ -H 'X-Feature-Flags: b, a'").unwrap();
    let y2 = yaml_of(&spaced);
    assert!(y2.get("flags").is_none());
    assert_eq!(y2["env"]["imported"]["headers"]["X-Feature-Flags"], "b, a");
    assert_eq!(
        env["query"],
        json!({"step": "3", "access_token": "${SONDE_QUERY_ACCESS_TOKEN}"})
    );
    let step = &y["steps"][0];
    assert_eq!(step["name"], "complete");
    assert_eq!(step["request"]["method"], "POST");
    assert_eq!(step["request"]["url"], "/onboarding/complete");
    assert_eq!(step["follow_redirects"], false);
    // A JSON body is written as the bytes it was, never re-serialised.
    assert_eq!(
        step["request"]["body"],
        json!({"raw": imp.env.body.unwrap().text})
    );

    // A form body is a form when sending the fields gives the same bytes, else raw text.
    let imp = import::curl::parse("curl -L http://127.0.0.1:1/f -d 'a=1&b=x+y'").unwrap();
    let y = yaml_of(&imp);
    assert_eq!(
        y["steps"][0]["request"]["body"]["form"],
        json!({"a": "1", "b": "x y"})
    );
    assert!(y["steps"][0].get("follow_redirects").is_none());
    let imp = import::curl::parse("curl http://127.0.0.1:1/f -d 'a=1&b=x%20y&c=%E9'").unwrap();
    let y = yaml_of(&imp);
    assert_eq!(
        y["steps"][0]["request"]["body"],
        json!({"raw": "a=1&b=x%20y&c=%E9", "content_type": "application/x-www-form-urlencoded"})
    );
    let imp = import::curl::parse(
        "curl http://127.0.0.1:1/t -H 'Content-Type: text/plain' --data-raw $'line\\n\"q\"'",
    )
    .unwrap();
    let y = yaml_of(&imp);
    assert_eq!(
        y["steps"][0]["request"]["body"],
        json!({"raw": "line\n\"q\""})
    );
    assert_eq!(
        y["env"]["imported"]["headers"]["Content-Type"],
        "text/plain"
    );
}

#[test]
fn cli_import_writes_the_file_and_uses_exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("s.yaml");
    let assert = support::sonde_cmd()
        .args(["import", "har"])
        .arg(fixture("firefox.har"))
        .args(["--entry", "1", "-o"])
        .arg(&out)
        .assert()
        .success();
    let stderr = String::from_utf8_lossy(&assert.get_output().stderr).into_owned();
    assert!(stderr.contains("SONDE_AUTHORIZATION"), "{stderr}");
    let written: Value = serde_saphyr::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert_eq!(written["steps"][0]["request"]["url"], "/onboarding/step");

    let run = |args: &[&str]| {
        let o = support::sonde_cmd()
            .current_dir(fixture(""))
            .arg("import")
            .args(args)
            .output()
            .unwrap();
        (
            o.status.code(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    };
    let (code, err) = run(&["curl", "broken/unbalanced_single.curl"]);
    assert_eq!(code, Some(2));
    assert!(
        err.contains("broken/unbalanced_single.curl:3:6: unbalanced single quote"),
        "{err}"
    );
    let (code, err) = run(&["curl", "missing.curl"]);
    assert_eq!(code, Some(2), "{err}");
    let (code, err) = run(&["har", "broken/truncated.har"]);
    assert_eq!(code, Some(2));
    assert!(
        err.contains("broken/truncated.har:5:1: invalid HAR file"),
        "{err}"
    );
    // Whole messages, pinned: what was refused, and where.
    let (code, err) = run(&["curl", "curl-corpus/refused/two_commands.curl"]);
    assert_eq!(code, Some(2));
    assert_eq!(
        err,
        "error: curl-corpus/refused/two_commands.curl:5:1: the file holds 2 curl commands (on lines 2, 5); sonde imports one request per file: keep the one you mean\n"
    );
    let (code, err) = run(&["curl", "curl-corpus/refused/proxy.curl"]);
    assert_eq!(code, Some(2));
    assert_eq!(
        err,
        "error: curl-corpus/refused/proxy.curl:2:33: curl option `-x` is not supported: proxies are not supported: sonde sends to the target directly\n"
    );
    let (code, err) = run(&["har", "har-corpus/charles.har", "--entry", "9"]);
    assert_eq!(code, Some(2));
    assert_eq!(
        err,
        "error: har-corpus/charles.har: entry 9 does not exist: the HAR file has 3 entries (0-based):\n  0: GET http://api.example.test/track?=&v=1\n  1: POST http://api.example.test/upload\n  2: POST http://api.example.test/ingest\n"
    );
}

#[test]
fn secrets_are_replaced_where_they_stand_and_nowhere_else() {
    let imp = import::curl::parse(
        "curl 'http://localhost:8080/login?session=s3cr3tQUERYvalue42&q=local' -H 'authority: localhost' \
         -H 'Accept: application/vnd.go.cd.v4+json' -H 'X-Api-Key: local' \
         -H 'Content-Type: application/json' --data-raw '{\"password\":\"local\",\"host\":\"localhost\",\"n\":1e2}'",
    )
    .unwrap();
    let out = to_scenario_yaml(
        &imp,
        &EmitOptions {
            name: "s".into(),
            source_label: "test".into(),
            include_sensitive: false,
        },
    );
    let y: Value = serde_saphyr::from_str(&out.yaml).unwrap();
    assert_eq!(y["target"], "http://localhost:8080");
    let h = &y["env"]["imported"]["headers"];
    assert_eq!(h["authority"], "localhost");
    assert_eq!(h["Accept"], "application/vnd.go.cd.v4+json");
    assert_eq!(h["X-Api-Key"], "${SONDE_X_API_KEY}");
    assert_eq!(
        y["steps"][0]["request"]["body"]["raw"],
        "{\"password\":\"${SONDE_BODY_PASSWORD}\",\"host\":\"localhost\",\"n\":1e2}"
    );
    assert_eq!(
        y["env"]["imported"]["query"],
        json!({"session": "${SONDE_QUERY_SESSION}", "q": "local"})
    );
    let values: Vec<(&str, &str)> = out
        .placeholders
        .iter()
        .map(|p| (p.var.as_str(), p.secret_value()))
        .collect();
    assert_eq!(
        values,
        [
            ("SONDE_X_API_KEY", "local"),
            ("SONDE_QUERY_SESSION", "s3cr3tQUERYvalue42"),
            ("SONDE_BODY_PASSWORD", "local")
        ]
    );
    assert!(!out.yaml.contains("s3cr3tQUERYvalue42"));
}

#[test]
fn written_values_read_back_exactly() {
    // Control characters (C0, DEL, C1), line separators, `${` and `{{`: the loader must read
    // back the very bytes.
    let body = "a\u{85}b\u{9f}c\u{1}d\u{7f}e\u{2028}f ${HOME} $${x} {{not}} {{{ }}";
    let imp = import::curl::parse(&format!(
        "curl http://127.0.0.1:1/x -X PROPFIND -H 'Content-Type: text/plain' --data-raw '{}'",
        body.replace('\'', "")
    ))
    .unwrap();
    let out = to_scenario_yaml(
        &imp,
        &EmitOptions {
            name: "s".into(),
            source_label: "test".into(),
            include_sensitive: false,
        },
    );
    let plan = sonde::scenario::load_str_with_env(
        &out.yaml,
        std::path::Path::new("s.yaml"),
        &Default::default(),
        &|_| None,
    )
    .unwrap_or_else(|e| panic!("{e}\n{}", out.yaml));
    let step = match &plan.steps[0] {
        sonde::plan::StepNode::Request(s) => s,
        _ => panic!("not a request step"),
    };
    assert_eq!(step.method.as_str(), "PROPFIND");
    let vars: std::collections::BTreeMap<String, Value> = plan
        .env
        .vars
        .iter()
        .map(|(n, t)| (n.clone(), Value::String(t.source())))
        .collect();
    match &step.body {
        Some(sonde::plan::BodySpec::Raw { content, .. }) => {
            assert_eq!(content.render(&vars).unwrap(), body)
        }
        other => panic!("{other:?}"),
    }
}
