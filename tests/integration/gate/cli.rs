//! `sonde compare` and `sonde report` as a user runs them: exit 1 on a regression (naming the
//! phase and `db`), 0 without one, 2 for runs that cannot be compared or bad input, the reports
//! written, and markdown appended to `$GITHUB_STEP_SUMMARY`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::support;
use crate::support::sonde_cmd as sonde;
use crate::support::summary::sampled_run;
use assert_cmd::Command;
use sonde::aggregate::Summary;
use std::path::{Path, PathBuf};

fn save(dir: &Path, name: &str, s: &Summary) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, serde_json::to_vec(s).unwrap()).unwrap();
    p
}

struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

fn run(c: &mut Command) -> Out {
    let o = c.output().unwrap();
    Out {
        code: o.status.code().unwrap(),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

#[test]
fn compare_exits_1_on_a_regression_and_names_the_phase_and_db() {
    let dir = tempfile::tempdir().unwrap();
    let base = save(dir.path(), "base.json", &sampled_run(1, 3000, 0));
    let cand = save(dir.path(), "cand.json", &sampled_run(2, 3000, 15_000));
    let summary = dir.path().join("step-summary.md");
    std::fs::write(&summary, "earlier content\n").unwrap();
    let outs: Vec<PathBuf> = ["r.md", "r.junit.xml", "r.html", "cmp.json"]
        .iter()
        .map(|n| dir.path().join(n))
        .collect();
    let mut cmd = sonde();
    cmd.arg("compare").arg(&cand).arg("--baseline").arg(&base);
    for o in &outs {
        cmd.arg("--out").arg(o);
    }
    cmd.env("GITHUB_STEP_SUMMARY", &summary);
    let o = run(&mut cmd);
    assert_eq!(o.code, 1, "{}\n{}", o.stdout, o.stderr);
    assert!(o.stderr.contains("regressed: profile: p"), "{}", o.stderr);
    assert!(o.stderr.contains("of which wait +") && o.stderr.contains("db +"));
    assert!(o.stdout.contains("regressed"), "{}", o.stdout);
    for p in &outs {
        assert!(p.exists(), "{}", p.display());
    }
    let gh = std::fs::read_to_string(&summary).unwrap();
    assert!(
        gh.starts_with("earlier content\n## sonde: profile-load vs baseline — ❌ regressed"),
        "{gh}"
    );
    assert!(gh.contains("### Compared with the baseline"));
    // Only the comparison: the run's own report was appended by `run` already.
    assert!(!gh.contains("### Latency"), "{gh}");
}

#[test]
fn compare_exits_0_without_a_regression_and_prints_json_on_request() {
    let dir = tempfile::tempdir().unwrap();
    let base = save(dir.path(), "base.json", &sampled_run(1, 2000, 0));
    let cand = save(dir.path(), "cand.json", &sampled_run(2, 2000, 0));
    let o = run(sonde()
        .arg("compare")
        .arg(&cand)
        .arg("--baseline")
        .arg(&base)
        .args([
            "--tolerance",
            "10%",
            "--confidence",
            "0.95",
            "--format",
            "json",
        ]));
    assert_eq!(o.code, 0, "{}", o.stderr);
    let v: serde_json::Value = serde_json::from_str(&o.stdout).unwrap();
    assert_eq!(v["verdict"], "no_significant_change");
    assert_eq!(v["tolerance"], 0.1);
    assert_eq!(v["confidence"], 0.95);
}

#[test]
fn compare_exits_2_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let base = save(dir.path(), "base.json", &sampled_run(1, 500, 0));
    let mut other = sampled_run(2, 500, 0);
    other.scenario = "checkout".into();
    let other = save(dir.path(), "other.json", &other);
    let garbage = dir.path().join("garbage.json");
    std::fs::write(&garbage, "{\"not\": \"a run\"}").unwrap();
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            vec![other.display().to_string()],
            "different scenarios: `profile-load` (baseline) vs `checkout`",
        ),
        (
            vec![garbage.display().to_string()],
            "not a sonde run result",
        ),
        (
            vec![dir.path().join("missing.json").display().to_string()],
            "cannot read",
        ),
        (
            vec![
                base.display().to_string(),
                "--tolerance".into(),
                "lots".into(),
            ],
            "--tolerance `lots`",
        ),
        (
            vec![
                base.display().to_string(),
                "--confidence".into(),
                "100%".into(),
            ],
            "below 100%",
        ),
        (
            vec![base.display().to_string(), "--out".into(), "x.pdf".into()],
            "unknown report format `pdf`",
        ),
    ];
    for (args, why) in cases {
        let o = run(sonde()
            .arg("compare")
            .args(&args)
            .arg("--baseline")
            .arg(&base));
        assert_eq!(o.code, 2, "{args:?}: {}", o.stderr);
        assert!(o.stderr.contains(why), "{args:?}: {}", o.stderr);
        assert!(o.stdout.is_empty());
    }
}

#[test]
fn report_renders_a_saved_run_in_every_format() {
    let dir = tempfile::tempdir().unwrap();
    let run_file = save(dir.path(), "run.json", &support::summary::fixed_summary());
    let o = run(sonde()
        .arg("report")
        .arg(&run_file)
        .args(["--format", "md"]));
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert!(o.stdout.starts_with("## sonde: profile-load"));
    let o = run(sonde().arg("report").arg(&run_file));
    assert!(
        o.stdout.contains("p95 ms"),
        "table by default: {}",
        o.stdout
    );
    for (fmt, file, starts) in [
        ("junit", "r.xml", "<?xml"),
        ("html", "r.html", "<!DOCTYPE html>"),
        ("json", "r.json", "{"),
    ] {
        let out = dir.path().join(file);
        let o = run(sonde()
            .arg("report")
            .arg(&run_file)
            .args(["--format", fmt, "-o"])
            .arg(&out));
        assert_eq!(o.code, 0, "{fmt}: {}", o.stderr);
        assert!(
            std::fs::read_to_string(&out).unwrap().starts_with(starts),
            "{fmt}"
        );
    }
    // The format follows the extension when not given; a baseline adds the comparison.
    let out = dir.path().join("cmp.md");
    let o = run(sonde()
        .arg("report")
        .arg(&run_file)
        .arg("--baseline")
        .arg(&run_file)
        .arg("-o")
        .arg(&out));
    assert_eq!(o.code, 0, "{}", o.stderr);
    let md = std::fs::read_to_string(&out).unwrap();
    assert!(md.contains("no significant change"), "{md}");
    let o = run(sonde().arg("report").arg(dir.path().join("nope.json")));
    assert_eq!(o.code, 2);
}

#[test]
fn compare_shows_both_sides_in_milliseconds_and_takes_min_diff() {
    let dir = tempfile::tempdir().unwrap();
    let base = save(dir.path(), "base.json", &sampled_run(1, 3000, 0));
    let cand = save(dir.path(), "cand.json", &sampled_run(2, 3000, 15_000));
    let o = run(sonde()
        .arg("compare")
        .arg(&cand)
        .arg("--baseline")
        .arg(&base));
    assert_eq!(o.code, 1, "{}", o.stderr);
    // benchstat's columns: baseline, candidate, difference, ratio, verdict; piped: full width.
    assert!(
        o.stdout.contains("base ms") && o.stdout.contains("cand ms"),
        "{}",
        o.stdout
    );
    assert!(o.stdout.contains("min diff 1 ms"), "{}", o.stdout);
    assert!(
        !o.stdout.contains("not shown at this width"),
        "{}",
        o.stdout
    );
    assert!(
        !o.stdout.contains('\x1b'),
        "no colour when piped: {}",
        o.stdout
    );
    // A floor above the slowdown (15 ms) keeps the gate quiet.
    let o = run(sonde()
        .arg("compare")
        .arg(&cand)
        .arg("--baseline")
        .arg(&base)
        .args(["--min-diff", "100ms"]));
    assert_eq!(o.code, 0, "{}\n{}", o.stdout, o.stderr);
    let o = run(sonde()
        .arg("compare")
        .arg(&cand)
        .arg("--baseline")
        .arg(&base)
        .args(["--min-diff", "fast"]));
    assert_eq!(o.code, 2);
    assert!(o.stderr.contains("--min-diff `fast`"), "{}", o.stderr);
}

#[cfg(unix)]
#[test]
fn output_files_get_the_users_umask() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    let base = save(dir.path(), "base.json", &sampled_run(1, 500, 0));
    let cand = save(dir.path(), "cand.json", &sampled_run(2, 500, 0));
    for (umask, mode) in [("022", 0o644), ("077", 0o600), ("002", 0o664)] {
        let out = dir.path().join(format!("cmp-{umask}.md"));
        let script = format!(
            "umask {umask}; exec \"$0\" compare \"$1\" --baseline \"$2\" --out \"$3\" >/dev/null"
        );
        let status = std::process::Command::new("sh")
            .args(["-c", &script])
            .arg(env!("CARGO_BIN_EXE_sonde"))
            .arg(&cand)
            .arg(&base)
            .arg(&out)
            .env_remove("GITHUB_STEP_SUMMARY")
            .status()
            .unwrap();
        assert!(matches!(status.code(), Some(0 | 1)), "{status}");
        let got = std::fs::metadata(&out).unwrap().permissions().mode() & 0o777;
        assert_eq!(got, mode, "umask {umask}: {got:o}");
    }
}

/// Runs `sonde ARGS` on a pseudo-terminal `cols` wide (util-linux `script`); `None` when
/// `script` is not installed. Output as the terminal got it (CR LF line ends).
fn on_terminal(cols: u16, env: &[(&str, &str)], args: &[&str]) -> Option<String> {
    let quoted: Vec<String> = args.iter().map(|a| format!("'{a}'")).collect();
    let inner = format!(
        "stty cols {cols} rows 50; exec '{}' {}",
        env!("CARGO_BIN_EXE_sonde"),
        quoted.join(" ")
    );
    let mut cmd = std::process::Command::new("script");
    cmd.args(["-qec", &inner, "/dev/null"])
        .env_remove("NO_COLOR")
        .env_remove("GITHUB_STEP_SUMMARY")
        .env("TERM", "xterm-256color");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().ok()?;
    Some(String::from_utf8_lossy(&out.stdout).replace("\r\n", "\n"))
}

#[test]
fn on_an_80_column_terminal_tables_fit_and_colour_follows_no_color() {
    let dir = tempfile::tempdir().unwrap();
    let base = save(dir.path(), "base.json", &sampled_run(1, 3000, 0));
    let cand = save(dir.path(), "cand.json", &sampled_run(2, 3000, 15_000));
    let (b, c) = (base.to_str().unwrap(), cand.to_str().unwrap());
    let Some(text) = on_terminal(80, &[], &["compare", c, "--baseline", b]) else {
        eprintln!("skipped: util-linux `script` is not installed");
        return;
    };
    assert!(text.contains("regressed"), "{text}");
    assert!(text.contains("\x1b["), "a terminal gets colour: {text}");
    let plain = strip_ansi(&text);
    for line in plain
        .lines()
        .filter(|l| l.starts_with('│') || l.starts_with('┌'))
    {
        assert!(
            line.chars().count() <= 80,
            "{} > 80: {line}",
            line.chars().count()
        );
    }
    assert!(plain.contains("(not shown at this width:"), "{plain}");
    let no_color = on_terminal(80, &[("NO_COLOR", "1")], &["compare", c, "--baseline", b]).unwrap();
    assert!(!no_color.contains("\x1b["), "NO_COLOR: {no_color}");
    // 120 columns: the whole comparison fits, nothing is hidden.
    let wide = on_terminal(120, &[("NO_COLOR", "1")], &["compare", c, "--baseline", b]).unwrap();
    assert!(!wide.contains("not shown at this width"), "{wide}");
}

fn strip_ansi(s: &str) -> String {
    let mut out = String::new();
    let mut chars = s.chars().peekable();
    while let Some(ch) = chars.next() {
        if ch == '\x1b' {
            // CSI: ESC [ ... final byte in @..~
            if chars.peek() == Some(&'[') {
                chars.next();
                for c in chars.by_ref() {
                    if ('@'..='~').contains(&c) {
                        break;
                    }
                }
            }
        } else {
            out.push(ch);
        }
    }
    out
}
