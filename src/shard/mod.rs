//! Sharding one run across machines: which shard this process is (`ShardSpec`, from `--shard K/N`
//! or the environment), its deterministic share of the plan (`split`), the plan's identity
//! (`plan_hash`), the common wall-clock start (`start`), and the checks before shard results are
//! merged exactly (`merge`). No coordinator and no network: shards agree through the plan hash and
//! the start time alone. Sends nothing; measuring belongs to `exec`, adding results to `aggregate`.

pub mod hash;
pub mod merge;
pub mod split;
pub mod start;

pub use hash::plan_hash;
pub use merge::{MergeOptions, ShardMergeError, merge_files};
pub use split::{check, describe, split};
pub use start::{StartAt, StartError};

use std::fmt;
use std::fmt::Write as _;

/// Most shards one run may have; more is almost certainly a typo.
pub const MAX_SHARDS: u32 = 100_000;

/// Shard `index` (from 0) of `count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShardSpec {
    pub index: u32,
    pub count: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShardError {
    #[error("{origin} `{text}`: expected K/N with 0 <= K < N (shards count from 0), e.g. 0/4")]
    Syntax { origin: String, text: String },
    #[error("{origin} `{text}`: the shard index {index} must be below the shard count {count}")]
    IndexTooLarge {
        origin: String,
        text: String,
        index: u32,
        count: u32,
    },
    #[error("{origin} `{text}`: the shard count must be between 1 and {MAX_SHARDS}")]
    BadCount { origin: String, text: String },
    #[error(
        "SONDE_SHARDS is set but no shard index is: set SONDE_SHARD=K (or run as a Kubernetes \
         Indexed Job, which sets JOB_COMPLETION_INDEX)"
    )]
    NoIndex,
    #[error("{0}")]
    Plan(String),
}

impl fmt::Display for ShardSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

fn number(origin: &str, text: &str, s: &str) -> Result<u32, ShardError> {
    let s = s.trim();
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ShardError::Syntax {
            origin: origin.into(),
            text: text.into(),
        });
    }
    s.parse::<u32>().map_err(|_| ShardError::BadCount {
        origin: origin.into(),
        text: text.into(),
    })
}

impl ShardSpec {
    /// The whole plan: one shard of one.
    pub const WHOLE: ShardSpec = ShardSpec { index: 0, count: 1 };

    pub fn new(index: u32, count: u32) -> Result<ShardSpec, ShardError> {
        let text = format!("{index}/{count}");
        ShardSpec::build("--shard", &text, index, count)
    }

    fn build(origin: &str, text: &str, index: u32, count: u32) -> Result<ShardSpec, ShardError> {
        if count == 0 || count > MAX_SHARDS {
            return Err(ShardError::BadCount {
                origin: origin.into(),
                text: text.into(),
            });
        }
        if index >= count {
            return Err(ShardError::IndexTooLarge {
                origin: origin.into(),
                text: text.into(),
                index,
                count,
            });
        }
        Ok(ShardSpec { index, count })
    }

    /// Parses `K/N` (`origin` names where the text came from, for the message).
    pub fn parse(origin: &str, text: &str) -> Result<ShardSpec, ShardError> {
        let Some((k, n)) = text.split_once('/') else {
            return Err(ShardError::Syntax {
                origin: origin.into(),
                text: text.into(),
            });
        };
        let count = number(origin, text, n)?;
        let index = number(origin, text, k)?;
        ShardSpec::build(origin, text, index, count)
    }

    /// The shard from the environment, looked up through `env`:
    /// `SONDE_SHARD=K/N`; or `SONDE_SHARD=K` with `SONDE_SHARDS=N`; or, when `SONDE_SHARD` is
    /// unset, `JOB_COMPLETION_INDEX=K` (set by Kubernetes Indexed Jobs) with `SONDE_SHARDS=N`.
    /// `JOB_COMPLETION_INDEX` alone does not shard (it is set for every Indexed Job).
    /// `None`: not sharded.
    pub fn from_env(env: &dyn Fn(&str) -> Option<String>) -> Result<Option<ShardSpec>, ShardError> {
        let get = |k: &str| env(k).filter(|v| !v.trim().is_empty());
        let shards = get("SONDE_SHARDS");
        let count = |text: &str| -> Result<u32, ShardError> {
            let n = number("SONDE_SHARDS", text, text)?;
            if n == 0 || n > MAX_SHARDS {
                return Err(ShardError::BadCount {
                    origin: "SONDE_SHARDS".into(),
                    text: text.into(),
                });
            }
            Ok(n)
        };
        if let Some(s) = get("SONDE_SHARD") {
            if s.contains('/') {
                return ShardSpec::parse("SONDE_SHARD", &s).map(Some);
            }
            let Some(n) = shards else {
                return Err(ShardError::Syntax {
                    origin: "SONDE_SHARD".into(),
                    text: s,
                });
            };
            let count = count(&n)?;
            let index = number("SONDE_SHARD", &s, &s)?;
            let text = format!("{s} (SONDE_SHARDS={n})");
            return ShardSpec::build("SONDE_SHARD", &text, index, count).map(Some);
        }
        let Some(n) = shards else {
            return Ok(None);
        };
        let count = count(&n)?;
        let Some(k) = get("JOB_COMPLETION_INDEX") else {
            return Err(ShardError::NoIndex);
        };
        let index = number("JOB_COMPLETION_INDEX", &k, &k)?;
        let text = format!("{k} (SONDE_SHARDS={n})");
        ShardSpec::build("JOB_COMPLETION_INDEX", &text, index, count).map(Some)
    }

    /// `--shard` wins over the environment; `None`: not sharded.
    pub fn resolve(
        flag: Option<&str>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Option<ShardSpec>, ShardError> {
        match flag {
            Some(f) => ShardSpec::parse("--shard", f).map(Some),
            None => ShardSpec::from_env(env),
        }
    }
}

/// Everything `sonde run` needs to run as a shard, resolved before anything is sent.
#[derive(Debug, Clone)]
pub struct Sharding {
    /// `None`: not sharded (the whole plan).
    pub spec: Option<ShardSpec>,
    /// `plan_hash` of the unsplit plan.
    pub hash: String,
    pub start: Option<StartAt>,
    /// The unsplit plan's thresholds as written (the merge evaluates them).
    pub thresholds: Vec<String>,
    /// What `--dry-run` prints.
    pub description: String,
}

impl Sharding {
    /// Resolves the shard (flag, then environment) and the start time, checks that every shard
    /// can do its part, and returns this process's share of `plan` (the plan itself when not
    /// sharded). Errors are invalid input: nothing was sent.
    pub fn prepare(
        plan: crate::plan::Plan,
        shard_flag: Option<&str>,
        start_at: Option<&str>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<(Sharding, crate::plan::Plan), String> {
        let spec = ShardSpec::resolve(shard_flag, env).map_err(|e| e.to_string())?;
        let start = start_at
            .map(|t| StartAt::parse(t, std::time::SystemTime::now()))
            .transpose()
            .map_err(|e| e.to_string())?;
        let hash = plan_hash(&plan);
        let mut description = describe(&plan, spec, &hash);
        if let Some(s) = &start {
            let _ = writeln!(description, "  start:   {}", s.rfc3339());
        }
        let thresholds = plan.thresholds.iter().map(|t| t.source.clone()).collect();
        let part = match spec {
            Some(sp) => {
                check(&plan, sp.count).map_err(|e| format!("--shard {sp}: {e}"))?;
                split(&plan, sp)
            }
            None => plan,
        };
        let sharding = Sharding {
            spec,
            hash,
            start,
            thresholds,
            description,
        };
        Ok((sharding, part))
    }

    /// Waits for `--start-at` if given; returns the wall clock the load starts on.
    pub async fn wait(&self) -> Result<Option<std::time::SystemTime>, StartError> {
        let Some(start) = &self.start else {
            return Ok(None);
        };
        let who = match self.spec {
            Some(sp) => format!("shard {sp}"),
            None => "sonde".to_string(),
        };
        start.wait(&who).await.map(Some)
    }

    /// The `shard` object of this shard's result (`None` when not sharded).
    pub fn info(
        &self,
        started_clock: Option<std::time::SystemTime>,
    ) -> Option<crate::aggregate::summary::ShardInfo> {
        let spec = self.spec?;
        Some(crate::aggregate::summary::ShardInfo {
            index: Some(spec.index),
            count: spec.count,
            plan_hash: self.hash.clone(),
            start_at: self.start.as_ref().map(StartAt::rfc3339),
            started_clock: started_clock.map(|c| humantime::format_rfc3339_micros(c).to_string()),
            thresholds: self.thresholds.clone(),
            ..Default::default()
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let m: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| m.get(k).cloned()
    }

    #[test]
    fn parses_k_of_n() {
        assert_eq!(
            ShardSpec::parse("--shard", "2/5").unwrap(),
            ShardSpec { index: 2, count: 5 }
        );
        assert_eq!(
            ShardSpec::parse("--shard", " 0 / 1 ").unwrap(),
            ShardSpec::WHOLE
        );
        for bad in ["", "3", "a/b", "1/", "/3", "-1/3", "1/3/4", "1.0/3"] {
            assert!(
                matches!(
                    ShardSpec::parse("--shard", bad),
                    Err(ShardError::Syntax { .. })
                ),
                "{bad}"
            );
        }
        let e = ShardSpec::parse("--shard", "3/3").unwrap_err();
        assert_eq!(
            e.to_string(),
            "--shard `3/3`: the shard index 3 must be below the shard count 3"
        );
        assert!(matches!(
            ShardSpec::parse("--shard", "0/0"),
            Err(ShardError::BadCount { .. })
        ));
        assert!(matches!(
            ShardSpec::parse("--shard", "0/99999999999"),
            Err(ShardError::BadCount { .. })
        ));
    }

    #[test]
    fn reads_the_environment() {
        let none = env(&[]);
        assert_eq!(ShardSpec::from_env(&none).unwrap(), None);
        let k8s = env(&[("JOB_COMPLETION_INDEX", "3"), ("SONDE_SHARDS", "4")]);
        assert_eq!(
            ShardSpec::from_env(&k8s).unwrap(),
            Some(ShardSpec { index: 3, count: 4 })
        );
        // Every Indexed Job has JOB_COMPLETION_INDEX: alone it does not shard.
        let only_index = env(&[("JOB_COMPLETION_INDEX", "3")]);
        assert_eq!(ShardSpec::from_env(&only_index).unwrap(), None);
        let both = env(&[
            ("SONDE_SHARD", "1"),
            ("SONDE_SHARDS", "2"),
            ("JOB_COMPLETION_INDEX", "0"),
        ]);
        assert_eq!(
            ShardSpec::from_env(&both).unwrap(),
            Some(ShardSpec { index: 1, count: 2 })
        );
        let full = env(&[("SONDE_SHARD", "1/3")]);
        assert_eq!(
            ShardSpec::from_env(&full).unwrap(),
            Some(ShardSpec { index: 1, count: 3 })
        );
        let no_index = env(&[("SONDE_SHARDS", "3")]);
        assert_eq!(ShardSpec::from_env(&no_index), Err(ShardError::NoIndex));
        let too_big = env(&[("JOB_COMPLETION_INDEX", "4"), ("SONDE_SHARDS", "4")]);
        let e = ShardSpec::from_env(&too_big).unwrap_err().to_string();
        assert!(
            e.contains("JOB_COMPLETION_INDEX `4 (SONDE_SHARDS=4)`"),
            "{e}"
        );
        let k_without_n = env(&[("SONDE_SHARD", "1")]);
        assert!(ShardSpec::from_env(&k_without_n).is_err());
        // The flag wins over the environment.
        assert_eq!(
            ShardSpec::resolve(Some("0/2"), &k8s).unwrap(),
            Some(ShardSpec { index: 0, count: 2 })
        );
    }
}
