//! Expansion bounds, checked before anything is sent: how large every `{{var}}` can become once
//! expanded, from the sizes its sources can have (literal text, data columns, built-ins, other
//! env vars). Captures are unknown here and count as empty; the renderer bounds them when a
//! request is built. A variable or a template that could grow past `MAX_EXPANDED_BYTES`, or a
//! step whose templates together could grow past `MAX_STEP_BYTES`, is refused with the chain of
//! variables that makes it grow ("billion laughs": each level repeating the one below doubles
//! it). Reads positions and sizes, builds nothing.

use super::error::{Diag, Pos};
use super::reader::{R, Use};
use super::steps::StepInfo;
use super::vars::EnvInfo;
use crate::plan::template::MAX_EXPANDED_BYTES;
use crate::units::fmt_size;
use std::collections::BTreeMap;

/// One expanded value: a variable, or one templated field of a request.
const LIMIT: u64 = MAX_EXPANDED_BYTES as u64;
/// Every templated field of one step (or of an env's headers, cookies and query) together.
pub const MAX_STEP_BYTES: u64 = 16 << 20;
/// Chains longer than this show their first and last links only.
const CHAIN_SHOWN: usize = 8;

/// The longest text each built-in renders as.
fn builtin_size(name: &str) -> Option<u64> {
    match name {
        "vu" => Some(10),
        "iteration" | "timestamp_ms" => Some(20),
        "uuid" => Some(36),
        _ => None,
    }
}

/// The longest value of each data column, in bytes.
pub fn column_sizes(
    rows: &[BTreeMap<String, String>],
    columns: &[String],
) -> BTreeMap<String, u64> {
    let mut out: BTreeMap<String, u64> = columns.iter().map(|c| (c.clone(), 0)).collect();
    for row in rows {
        for (k, v) in row {
            let n = out.entry(k.clone()).or_insert(0);
            *n = (*n).max(v.len() as u64);
        }
    }
    out
}

/// One env's vars: the largest size each can expand to, and through which var it grows most.
struct EnvSizes {
    size: BTreeMap<String, u64>,
    via: BTreeMap<String, String>,
}

fn env_sizes(env: &EnvInfo) -> EnvSizes {
    let mut size: BTreeMap<String, u64> = BTreeMap::new();
    let mut via: BTreeMap<String, String> = BTreeMap::new();
    let is_var = |n: &str| env.vars.iter().any(|(v, _, _)| v == n);
    // Cycles were refused already; the bound on rounds keeps this finite regardless.
    for _ in 0..=env.vars.len() {
        let before = size.len();
        for (name, _, uses) in &env.vars {
            if size.contains_key(name)
                || uses
                    .iter()
                    .any(|u| is_var(&u.name) && !size.contains_key(&u.name))
            {
                continue;
            }
            let mut total = env.literals.get(name).copied().unwrap_or(0);
            let mut biggest: Option<(&str, u64)> = None;
            for u in uses {
                let n = match size.get(&u.name) {
                    Some(n) => {
                        if biggest.is_none_or(|(_, b)| *n > b) {
                            biggest = Some((&u.name, *n));
                        }
                        *n
                    }
                    // A built-in, or a setup capture (bounded when rendered).
                    None => builtin_size(&u.name).unwrap_or(0),
                };
                total = total.saturating_add(n);
            }
            size.insert(name.clone(), total);
            if let Some((b, _)) = biggest {
                via.insert(name.clone(), b.to_string());
            }
        }
        if size.len() == before {
            break;
        }
    }
    EnvSizes { size, via }
}

impl EnvSizes {
    /// `a -> b -> c`: from `name`, down through the var each one grows most by.
    fn chain(&self, name: &str) -> String {
        let mut links = vec![name.to_string()];
        let mut cur = name;
        while let Some(next) = self.via.get(cur) {
            if links.len() > self.via.len() + 1 {
                break;
            }
            links.push(next.clone());
            cur = next;
        }
        if links.len() > CHAIN_SHOWN {
            let n = links.len();
            let mut short: Vec<String> = links[..CHAIN_SHOWN - 2].to_vec();
            short.push("…".into());
            short.extend(links[n - 2..].iter().cloned());
            return format!("{} ({n} variables)", short.join(" -> "));
        }
        links.join(" -> ")
    }
}

fn limit_text() -> String {
    format!("{} MiB", LIMIT >> 20)
}

/// Each env's vars on their own: the smallest one over the limit is refused.
fn check_vars(envs: &[EnvInfo], sized: &[EnvSizes]) -> R<()> {
    for (env, s) in envs.iter().zip(sized) {
        // The smallest var over the limit is where the growth crosses it: point there.
        let over = env
            .vars
            .iter()
            .filter_map(|(n, pos, _)| s.size.get(n).map(|sz| (n, *pos, *sz)))
            .filter(|(_, _, sz)| *sz > LIMIT)
            .min_by_key(|(_, _, sz)| *sz);
        if let Some((name, pos, sz)) = over {
            return Err(Diag::new(
                pos,
                format!(
                    "variable `{name}` in env `{}` expands to {}, above the {} limit for one expanded value",
                    env.name,
                    fmt_size(sz),
                    limit_text()
                ),
            )
            .help(format!(
                "expansion chain: {}; each `{{{{var}}}}` is replaced by that variable's whole value",
                s.chain(name)
            )));
        }
    }
    Ok(())
}

/// A use's size in a request: the largest over the envs (with the env it comes from), a
/// built-in, a data column, or a capture (unknown here: 0, bounded when rendered).
fn use_size<'a>(
    u: &Use,
    sized: &'a [EnvSizes],
    columns: &BTreeMap<String, u64>,
) -> (u64, Option<&'a EnvSizes>) {
    let mut best: (u64, Option<&EnvSizes>) = (0, None);
    for s in sized {
        if let Some(n) = s.size.get(&u.name)
            && (best.1.is_none() || *n > best.0)
        {
            best = (*n, Some(s));
        }
    }
    if best.1.is_some() {
        return best;
    }
    let n = builtin_size(&u.name)
        .or_else(|| columns.get(&u.name).copied())
        .unwrap_or(0);
    (n, None)
}

pub fn check(
    envs: &[EnvInfo],
    columns: &BTreeMap<String, u64>,
    steps: &[StepInfo],
    literal: &dyn Fn(usize) -> u64,
) -> R<()> {
    let sized: Vec<EnvSizes> = envs.iter().map(env_sizes).collect();
    check_vars(envs, &sized)?;
    let use_size = |u: &Use| use_size(u, &sized, columns);
    let mut groups: Vec<(&[Use], Pos, String)> = envs
        .iter()
        .map(|e| {
            (
                e.uses.as_slice(),
                e.name_pos,
                format!("env `{}`'s headers, cookies and query", e.name),
            )
        })
        .collect();
    groups.extend(
        steps
            .iter()
            .map(|s| (s.uses.as_slice(), s.name_pos, format!("step `{}`", s.name))),
    );
    for (uses, whole_pos, what) in groups {
        let mut by_template: BTreeMap<usize, Vec<&Use>> = BTreeMap::new();
        for u in uses {
            by_template.entry(u.template).or_default().push(u);
        }
        let mut whole: u64 = 0;
        for (t, us) in &by_template {
            let mut total = literal(*t);
            let mut biggest: Option<(&Use, u64, Option<&EnvSizes>)> = None;
            for u in us {
                let (n, from) = use_size(u);
                total = total.saturating_add(n);
                if biggest.is_none_or(|(_, b, _)| n > b) {
                    biggest = Some((u, n, from));
                }
            }
            whole = whole.saturating_add(total);
            if total > LIMIT
                && let Some((u, _, from)) = biggest
            {
                let times = us.iter().filter(|x| x.name == u.name).count();
                let chain = from.map_or_else(|| u.name.clone(), |s| s.chain(&u.name));
                let repeated = if times > 1 {
                    format!(" (used {times} times here)")
                } else {
                    String::new()
                };
                return Err(Diag::new(
                    u.pos,
                    format!(
                        "this value of {what} expands to {}, above the {} limit for one expanded value",
                        fmt_size(total),
                        limit_text()
                    ),
                )
                .help(format!("expansion chain: {chain}{repeated}")));
            }
        }
        if whole > MAX_STEP_BYTES {
            return Err(Diag::new(
                whole_pos,
                format!(
                    "the templates of {what} together expand to {}, above the {} MiB limit per request",
                    fmt_size(whole),
                    MAX_STEP_BYTES >> 20
                ),
            )
            .help("use each large variable once, or make it smaller"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use crate::scenario::{Overrides, load_str_with_env};
    use std::path::Path;

    fn load(src: &str) -> Result<crate::plan::Plan, String> {
        load_str_with_env(src, Path::new("s.yaml"), &Overrides::default(), &|_| None)
            .map_err(|e| e.to_string())
    }

    /// `levels` vars, each the one below twice, from a 16-byte seed.
    fn laughs(levels: usize, url: &str) -> String {
        let mut s = String::from("env:\n  default:\n    vars:\n      l0: \"0123456789abcdef\"\n");
        for i in 1..levels {
            s.push_str(&format!(
                "      l{i}: \"{{{{l{}}}}}{{{{l{}}}}}\"\n",
                i - 1,
                i - 1
            ));
        }
        s.push_str(&format!(
            "steps:\n  - name: a\n    request: {{ url: \"{url}\" }}\n"
        ));
        s
    }

    #[test]
    fn doubling_vars_are_refused_where_they_cross_the_limit_with_their_chain() {
        let e = load(&laughs(40, "/x")).unwrap_err();
        // l17 = 16 × 2^17 bytes = 2 MiB is the first above 1 MiB.
        assert!(
            e.contains("variable `l17` in env `default` expands to 2.0 MiB (2097152 bytes)"),
            "{e}"
        );
        assert!(e.contains("--> s.yaml:21:7"), "{e}");
        assert!(
            e.contains("expansion chain: l17 -> l16 -> l15 -> l14 -> l13 -> l12 -> … -> l1 -> l0 (18 variables)"),
            "{e}"
        );
        // Saturating arithmetic: 70 levels overflow a u64 and are still refused clearly.
        assert!(load(&laughs(70, "/x")).unwrap_err().contains("l17"));
    }

    #[test]
    fn a_template_that_repeats_a_large_var_is_refused_at_its_use() {
        // l16 = 1 MiB exactly: allowed alone, not twice in one value.
        assert!(load(&laughs(17, "/{{l0}}")).is_ok());
        let e = load(&laughs(17, "/{{l16}}{{l16}}")).unwrap_err();
        assert!(
            e.contains("this value of step `a` expands to 2.0 MiB (2097153 bytes)"),
            "{e}"
        );
        assert!(e.contains("used 2 times here"), "{e}");
        assert!(e.contains("l16 -> l15"), "{e}");
    }

    #[test]
    fn a_step_whose_values_together_are_too_large_is_refused() {
        let mut src = laughs(17, "/");
        src.push_str("      headers:\n");
        for i in 0..17 {
            src.push_str(&format!("        x-h{i}: \"{{{{l16}}}}\"\n"));
        }
        let src = src.replace("request: { url: \"/\" }", "request:\n      url: /");
        let e = load(&src).unwrap_err();
        assert!(
            e.contains("the templates of step `a` together expand to 17.0 MiB"),
            "{e}"
        );
    }
}
