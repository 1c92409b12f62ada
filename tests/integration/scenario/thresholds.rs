//! The threshold grammar (`sonde::gate::threshold`): every form parses and normalises, and
//! malformed ones point at the offending bytes with a useful hint.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use sonde::gate::threshold::{Cmp, Stat, parse, parse_metric_key, parse_threshold};

#[test]
fn every_form_parses_and_normalises() {
    let t = parse_threshold("profile", "p(95) < 300ms").unwrap();
    assert_eq!(t.metric.step, "profile");
    assert_eq!(
        (t.stat, t.op, t.value),
        (Stat::Percentile(95.0), Cmp::Lt, 300.0)
    );
    assert_eq!(t.source, "profile: p(95) < 300ms");
    let t = parse_threshold("profile.wait{env:whale}", "p(99.9)<=1.5s").unwrap();
    assert_eq!(t.metric.phase.as_deref(), Some("wait"));
    assert_eq!(t.metric.tags.get("env").map(String::as_str), Some("whale"));
    assert_eq!(
        (t.stat, t.op, t.value),
        (Stat::Percentile(99.9), Cmp::Le, 1500.0)
    );
    let t = parse_threshold("profile.server_timing.db", "avg < 50ms").unwrap();
    assert_eq!(t.metric.server_timing.as_deref(), Some("db"));
    assert_eq!(
        parse_threshold("http", "error_rate < 1%").unwrap().value,
        0.01
    );
    assert_eq!(
        parse_threshold("http", "error_rate <= 0.05").unwrap().value,
        0.05
    );
    assert_eq!(
        parse_threshold("http", "rate >= 600/m").unwrap().value,
        10.0
    );
    assert_eq!(parse_threshold("http", "rate > 5").unwrap().op, Cmp::Gt);
    assert_eq!(
        parse_threshold("iterations", "dropped == 0").unwrap().stat,
        Stat::Dropped
    );
    assert_eq!(parse_threshold("total", "count != 3").unwrap().op, Cmp::Ne);
    for s in ["min > 1ms", "max < 2s", "med < 10ms"] {
        assert!(parse_threshold("x", s).is_ok(), "{s}");
    }
}

#[test]
fn malformed_ones_point_at_the_problem() {
    let e = parse("profile", "p95 < 300ms").unwrap_err();
    assert_eq!((e.in_key, e.offset, e.len), (false, 0, 3));
    assert_eq!(e.help.as_deref(), Some("write percentiles as `p(95)`"));
    let e = parse("profile", "p(95) < 300").unwrap_err();
    assert_eq!(
        (e.offset, e.message.as_str()),
        (8, "a latency threshold needs a unit")
    );
    let e = parse("profile", "p(95) = 300ms").unwrap_err();
    assert_eq!(e.help.as_deref(), Some("did you mean `==`?"));
    let e = parse("profile.wiat", "p(95) < 1s").unwrap_err();
    assert_eq!((e.in_key, e.offset, e.len), (true, 8, 4));
    assert_eq!(e.help.as_deref(), Some("did you mean `wait`?"));
    let e = parse("profile{envv:whale}", "p(95) < 1s").unwrap_err();
    assert!(e.in_key && e.message.contains("unknown tag `envv`"));
    let e = parse("profile", "avrg < 1s").unwrap_err();
    assert_eq!(e.help.as_deref(), Some("did you mean `avg`?"));
    let e = parse("profile", "p(95) < 1s oops").unwrap_err();
    assert_eq!((e.offset, e.message.as_str()), (11, "unexpected text"));
    assert!(parse("profile", "p(0) < 1s").is_err());
    assert!(parse("profile", "p(101) < 1s").is_err());
    assert!(parse("profile", "error_rate < 120%").is_err());
    assert!(parse("profile", "dropped < 1").is_err());
    assert!(parse("profile.wait", "error_rate < 1%").is_err());
    assert!(parse("iterations.wait", "p(95) < 1s").is_err());
    assert!(parse("profile", "").is_err());
    assert!(parse("", "p(95) < 1s").is_err());
    assert!(parse("profile", "p(95) <").is_err());
    let e = parse_threshold("profile", "p95 < 1s").unwrap_err();
    assert_eq!(
        e.to_string(),
        "unknown statistic `p95` (write percentiles as `p(95)`)"
    );
}

#[test]
fn metric_keys_parse_on_their_own() {
    let m = parse_metric_key(" http.connect{env:eu-1} ").unwrap();
    assert_eq!(m.step, "http");
    assert_eq!(m.phase.as_deref(), Some("connect"));
    assert_eq!(m.tags["env"], "eu-1");
    assert!(parse_metric_key("profile.server_timing").is_err());
    assert!(parse_metric_key("profile.wait.extra").is_err());
    assert!(parse_metric_key("profile{env:whale").is_err());
    assert!(parse_metric_key("profile{env:a,env:b}").is_err());
    assert!(parse_metric_key("pro file").is_err());
}
