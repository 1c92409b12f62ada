//! Resolving where requests go: the plan's URL, or the demo API started in-process when the
//! scenario has no target and none was given.

use super::Error;
use crate::aggregate::summary::TargetInfo;
use crate::http::HostPolicy;
use crate::plan::{Plan, TargetSpec};
use std::sync::Arc;

/// Puts `policy` in the plan's transport options (every request is checked against it) and
/// refuses, before anything is sent, a plan whose target or absolute step URLs leave it.
pub fn guard(plan: &mut Plan, policy: HostPolicy) -> Result<(), Error> {
    plan.check_hosts(&policy).map_err(Error::Plan)?;
    plan.http.allow = Arc::new(policy);
    Ok(())
}

/// Refuses a scenario's `http.streams_per_connection` above 1 in the commands that replay one
/// user at a time (breakdown, repro, bisect): it shares connections between the virtual users
/// of a load, and there are none to share with, so honouring it silently would mean nothing.
pub fn single_user(plan: &Plan, command: &str) -> Result<(), Error> {
    let n = plan.http.streams_per_connection;
    if n > 1 {
        return Err(Error::usage(format!(
            "the scenario's http.streams_per_connection: {n} shares HTTP/2 connections between the virtual users of `sonde run`; `sonde {command}` replays one user at a time and cannot honour it: remove the key (or set it to 1) for {command}"
        )));
    }
    Ok(())
}

/// The `--dry-run` lines naming every host the plan may contact and whether it is allowed.
#[must_use]
pub fn describe_contacts(plan: &Plan) -> String {
    use std::fmt::Write as _;
    let mut out = String::from("hosts this plan may contact:\n");
    let contacts = plan.contacts();
    if matches!(plan.target, TargetSpec::EmbeddedDemo { .. }) {
        out.push_str("  target: the embedded demo on 127.0.0.1 (loopback)\n");
    }
    for c in &contacts {
        let (shown, verdict) = match &c.origin {
            Some(o) => (
                crate::redact::redact_url(o.as_str()),
                match plan.http.allow.check_url(o) {
                    Ok(()) => "allowed".to_string(),
                    Err(r) => format!("REFUSED: {}", r.rule),
                },
            ),
            None => (
                crate::redact::redact_url(&c.written),
                "host decided at run time: checked on every request".to_string(),
            ),
        };
        let _ = writeln!(out, "  {}: {shown} ({verdict})", c.what);
    }
    let extra = plan.http.allow.describe();
    let _ = writeln!(
        out,
        "  allowed: loopback{}",
        if extra.is_empty() {
            String::new()
        } else {
            format!(", {}", extra.join(", "))
        }
    );
    out
}

/// Where a command's requests go: a URL, or the embedded demo it started (and stops).
pub struct Endpoint {
    /// Base URL without a trailing slash.
    pub base: String,
    pub info: TargetInfo,
    /// What every report should state (e.g. the demo's seeding time).
    pub notes: Vec<String>,
    demo: Option<crate::demo::RunningDemo>,
}

impl Endpoint {
    /// Stops the embedded demo, if one was started, and names the file its log went to when
    /// it logged anything (its own server errors: an injected fault's 500s, worker restarts).
    pub async fn stop(self) {
        if let Some(d) = self.demo {
            if let Err(e) = d.shutdown().await {
                eprintln!("warning: the embedded demo did not shut down cleanly: {e}");
            }
            match crate::demo::log::to_stderr() {
                Some((path, n)) => eprintln!(
                    "note: the embedded demo's server logged {n} line(s) to {}",
                    path.display()
                ),
                None => {
                    if let Some(p) = demo_log_path() {
                        let _ = std::fs::remove_file(p);
                    }
                }
            }
        }
    }
}

static DEMO_LOG: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();

fn demo_log_path() -> Option<&'static std::path::PathBuf> {
    DEMO_LOG.get()
}

/// A fresh file (0600, unpredictable name) in the temporary directory for the embedded demo's
/// log: it shares no stderr with the command's progress lines.
fn route_demo_log() {
    let made = tempfile::Builder::new()
        .prefix("sonde-demo-")
        .suffix(".log")
        .tempfile()
        .and_then(|f| f.keep().map_err(|e| e.error));
    if let Ok((_, path)) = made {
        let path = DEMO_LOG.get_or_init(|| path.clone()).clone();
        crate::demo::log::to_file(path);
    }
}

/// Resolves the plan's target, starting the embedded demo when it has none.
pub async fn start(plan: &Plan) -> Result<Endpoint, Error> {
    match &plan.target {
        TargetSpec::Url(u) => Ok(Endpoint {
            base: u.as_str().trim_end_matches('/').to_string(),
            info: TargetInfo {
                kind: crate::aggregate::summary::TargetKind::Url,
                url: crate::redact::redact_url(u.as_str()),
                demo_faults: Vec::new(),
            },
            notes: Vec::new(),
            demo: None,
        }),
        TargetSpec::EmbeddedDemo { faults } => {
            let parsed = faults
                .iter()
                .map(|f| f.parse::<crate::demo::Fault>())
                .collect::<Result<Vec<_>, _>>()?;
            route_demo_log();
            let demo = crate::demo::start(crate::demo::DemoConfig {
                faults: parsed,
                ..crate::demo::DemoConfig::default()
            })
            .await
            .map_err(Error::EmbeddedDemo)?;
            let base = demo.base_url();
            let faults_txt = if faults.is_empty() {
                "none".to_string()
            } else {
                faults.join(", ")
            };
            let secs = demo.seed_time.as_secs_f64();
            eprintln!(
                "no target given: started the demo API in-process at {base} (seeded in {secs:.2}s, faults: {faults_txt})"
            );
            Ok(Endpoint {
                base: base.clone(),
                info: TargetInfo {
                    kind: crate::aggregate::summary::TargetKind::EmbeddedDemo,
                    url: base,
                    demo_faults: faults.clone(),
                },
                notes: vec![format!(
                    "embedded demo seeded in {secs:.2}s (not part of the measurements)"
                )],
                demo: Some(demo),
            })
        }
    }
}
