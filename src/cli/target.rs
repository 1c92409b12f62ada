//! Resolving where requests go: the plan's URL, or the demo API started in-process when the
//! scenario has no target and none was given.

use super::CliError;
use crate::aggregate::summary::TargetInfo;
use crate::plan::{Plan, TargetSpec};

pub struct Target {
    /// Base URL without a trailing slash.
    pub base: String,
    pub info: TargetInfo,
    /// What every report should state (e.g. the demo's seeding time).
    pub notes: Vec<String>,
    demo: Option<crate::demo::RunningDemo>,
}

impl Target {
    /// Stops the embedded demo, if one was started.
    pub async fn stop(self) {
        if let Some(d) = self.demo
            && let Err(e) = d.shutdown().await
        {
            eprintln!("warning: the embedded demo did not shut down cleanly: {e}");
        }
    }
}

pub async fn start(plan: &Plan) -> Result<Target, CliError> {
    match &plan.target {
        TargetSpec::Url(u) => Ok(Target {
            base: u.as_str().trim_end_matches('/').to_string(),
            info: TargetInfo {
                kind: "url".into(),
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
                .collect::<Result<Vec<_>, _>>()
                .map_err(CliError::invalid)?;
            let demo = crate::demo::start(crate::demo::DemoConfig {
                faults: parsed,
                ..crate::demo::DemoConfig::default()
            })
            .await
            .map_err(|e| CliError::runtime(format!("could not start the embedded demo: {e}")))?;
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
            Ok(Target {
                base: base.clone(),
                info: TargetInfo {
                    kind: "embedded-demo".into(),
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
