//! sonde: diagnostics and load testing for HTTP APIs.
//!
//! Pipeline: scenario file --parse--> `scenario::Scenario` --resolve with CLI--> `plan::Plan`
//! --exec--> samples --aggregate--> `aggregate::Summary` --> `report`s, `gate`s, exit code.
//! `demo` is the reference investment API the scenarios run against; it imports nothing else
//! from this crate.
//!
//! Layers, lowest first (a module uses only those before it; the `layers` test checks it):
//! leaves `units`, `suggest`, `trace`, `redact`, `http`; then `aggregate` (measurements and
//! threshold results as plain data), `gate`, `plan`, `exec`, `report`, `export`, `import`,
//! `scenario`, `shard`, `breakdown`, `bisect`, `error`, `cli`.

pub mod aggregate;
pub mod bisect;
pub mod breakdown;
pub mod cli;
pub mod demo;
pub mod error;
pub mod exec;
pub mod export;
pub mod gate;
pub mod http;
pub mod import;
pub mod plan;
pub mod redact;
pub mod report;
pub mod scenario;
pub mod shard;
pub mod suggest;
pub mod trace;
pub mod units;

pub use error::{Error, Exit};

/// The module graph, checked: every `crate::x` a module names must sit lower in `LAYERS` than
/// the module itself, so no dependency cycle can come back unnoticed.
#[cfg(test)]
mod layers {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use std::collections::BTreeSet;
    use std::path::{Path, PathBuf};

    /// Lowest first; a module may use only the modules before it. Leaves (`units`, `suggest`,
    /// `redact`, `http`) are usable by all; then the plain data and the pipeline: measurements
    /// (`aggregate`, which stores threshold results), gates over them, the resolved `plan` (it
    /// holds parsed thresholds), `exec` (runs a plan into measurements), `report` (renders
    /// measurements and verdicts), `import` (builds plans from curl/HAR), the `scenario` loader
    /// (builds plans from files), `shard`, and the commands on top.
    const LAYERS: &[&str] = &[
        "units",
        "suggest",
        "trace",
        "redact",
        "http",
        "aggregate",
        "gate",
        "plan",
        "exec",
        "report",
        "export",
        "import",
        "scenario",
        "shard",
        "breakdown",
        "bisect",
        "error",
        "cli",
    ];
    /// The demo API imports nothing else of the crate (and only `cli` and `error` import it).
    const ISOLATED: &str = "demo";

    fn files(path: &Path, out: &mut Vec<PathBuf>) {
        if path.is_dir() {
            for e in std::fs::read_dir(path).unwrap() {
                files(&e.unwrap().path(), out);
            }
        } else if path.is_file() && path.extension().is_some_and(|e| e == "rs") {
            out.push(path.to_path_buf());
        }
    }

    /// The top-level modules a module's source names as `crate::x` (comments skipped).
    fn uses(src: &Path, module: &str) -> BTreeSet<String> {
        let mut paths = Vec::new();
        let dir = src.join(module);
        files(&dir, &mut paths);
        files(&src.join(format!("{module}.rs")), &mut paths);
        assert!(!paths.is_empty(), "no source for module `{module}`");
        let mut out = BTreeSet::new();
        let ident = |s: &str| -> String {
            s.trim_start()
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect()
        };
        for p in paths {
            let text = std::fs::read_to_string(&p).unwrap();
            let code: String = text
                .lines()
                .filter(|l| !l.trim_start().starts_with("//"))
                .collect::<Vec<_>>()
                .join("\n");
            for (i, _) in code.match_indices("crate::") {
                let rest = &code[i + "crate::".len()..];
                // `crate::{a, b::c}` names several modules at once (possibly over lines).
                let names: Vec<String> = match rest.strip_prefix('{') {
                    Some(group) => {
                        let mut depth = 1;
                        let end = group
                            .char_indices()
                            .find(|(_, c)| {
                                match c {
                                    '{' => depth += 1,
                                    '}' => depth -= 1,
                                    _ => {}
                                }
                                depth == 0
                            })
                            .map_or(group.len(), |(j, _)| j);
                        let mut top = Vec::new();
                        let mut level = 0;
                        let mut start = 0;
                        for (j, c) in group[..end].char_indices() {
                            match c {
                                '{' => level += 1,
                                '}' => level -= 1,
                                ',' if level == 0 => {
                                    top.push(ident(&group[start..j]));
                                    start = j + 1;
                                }
                                _ => {}
                            }
                        }
                        top.push(ident(&group[start..end]));
                        top
                    }
                    None => vec![ident(rest)],
                };
                for name in names {
                    if !name.is_empty() && name != module && name != "self" {
                        out.insert(name);
                    }
                }
            }
        }
        out
    }

    #[test]
    fn modules_only_use_lower_layers() {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let lib = std::fs::read_to_string(src.join("lib.rs")).unwrap();
        let declared: Vec<&str> = lib
            .lines()
            .filter_map(|l| l.strip_prefix("pub mod ")?.strip_suffix(';'))
            .collect();
        let mut wrong = Vec::new();
        for m in &declared {
            if *m == ISOLATED {
                let used = uses(&src, m);
                if !used.is_empty() {
                    wrong.push(format!(
                        "`{m}` must import nothing of the crate, uses {used:?}"
                    ));
                }
                continue;
            }
            let Some(rank) = LAYERS.iter().position(|l| l == m) else {
                wrong.push(format!("`{m}` has no place in LAYERS"));
                continue;
            };
            for u in uses(&src, m) {
                let allowed = LAYERS
                    .iter()
                    .position(|l| *l == u)
                    .is_some_and(|r| r < rank)
                    || (u == ISOLATED && (*m == "cli" || *m == "error"));
                if !allowed {
                    wrong.push(format!("`{m}` uses `{u}`, which is not below it"));
                }
            }
        }
        assert!(wrong.is_empty(), "layering broken:\n{}", wrong.join("\n"));
    }
}
