//! Cross-step checks before anything is sent: unique step names, every `{{var}}` defined where
//! it is used (env vars in every env, data columns, setup captures, earlier captures, built-ins),
//! no cycles among env vars, `poll.since` naming an earlier step. Reads positions, builds nothing.

use super::error::{Diag, Pos, did_you_mean};
use super::reader::{R, Use};
use super::steps::StepInfo;
use std::collections::{BTreeMap, BTreeSet};

/// Variables every scope has.
pub const BUILTINS: [&str; 4] = ["vu", "iteration", "uuid", "timestamp_ms"];

/// One environment as validation sees it.
#[derive(Debug, Clone, Default)]
pub struct EnvInfo {
    pub name: String,
    pub name_pos: Pos,
    /// `vars:` entries in file order: name, position of the key, uses in the value.
    pub vars: Vec<(String, Pos, Vec<Use>)>,
    /// Uses in the env's headers, cookies and query values.
    pub uses: Vec<Use>,
    /// Bytes of literal text of each var's value (without its `{{...}}`).
    pub literals: BTreeMap<String, u64>,
}

/// The env vars every env defines, and which of them are usable during setup (in every env,
/// free of setup captures).
fn common_vars<'a>(
    envs: &'a [EnvInfo],
    setup_caps: &BTreeSet<&str>,
) -> (BTreeSet<&'a str>, BTreeSet<&'a str>) {
    let mut common: Option<BTreeSet<&str>> = None;
    let mut setup_ok: BTreeSet<&str> = BTreeSet::new();
    for (i, env) in envs.iter().enumerate() {
        let names: BTreeSet<&str> = env.vars.iter().map(|(n, _, _)| n.as_str()).collect();
        let free = capture_free(env, setup_caps);
        setup_ok = if i == 0 {
            free
        } else {
            setup_ok.intersection(&free).copied().collect()
        };
        common = Some(match common {
            None => names,
            Some(c) => c.intersection(&names).copied().collect(),
        });
    }
    (common.unwrap_or_default(), setup_ok)
}

/// `since` and `if` name only steps that ran before this one.
fn check_order(step: &StepInfo, earlier: &[&str]) -> R<()> {
    if let Some((since, pos)) = &step.since
        && !earlier.contains(&since.as_str())
    {
        let d = Diag::new(*pos, format!("`since` names no earlier step: `{since}`"));
        let help = did_you_mean(since, earlier.iter().copied())
            .unwrap_or_else(|| "`since` names a request step that runs before this one".into());
        return Err(d.help(help));
    }
    if let Some((after, pos)) = &step.after
        && !earlier.contains(&after.as_str())
    {
        let d = Diag::new(*pos, format!("`if` names no earlier step: `{after}`"));
        let help = did_you_mean(after, earlier.iter().copied()).unwrap_or_else(|| {
            "`passed`/`failed` name a request step that runs before this one".into()
        });
        return Err(d.help(help));
    }
    Ok(())
}

pub fn check(envs: &[EnvInfo], data_columns: &[String], steps: &[StepInfo]) -> R<()> {
    unique_names(steps)?;
    let setup_caps: BTreeSet<&str> = steps
        .iter()
        .filter(|s| s.setup)
        .flat_map(|s| s.captures.iter().map(|(c, _)| c.as_str()))
        .collect();
    for (i, env) in envs.iter().enumerate() {
        if let Err(d) = check_env(env, &setup_caps, data_columns) {
            return Err(also_in_other_envs(
                d,
                env,
                &envs[i + 1..],
                &setup_caps,
                data_columns,
            ));
        }
    }
    let (common, setup_ok) = common_vars(envs, &setup_caps);

    let mut captured: BTreeSet<&str> = BTreeSet::new();
    let mut earlier: Vec<&str> = Vec::new();
    // Steps whose captures are not visible yet: the current step, or its parallel group.
    let mut pending: Vec<&StepInfo> = Vec::new();
    let mut missing: Option<(Diag, Vec<Pos>)> = None;
    for (i, step) in steps.iter().enumerate() {
        let same_group = pending
            .last()
            .is_some_and(|p| p.group.is_some() && p.group == step.group && p.setup == step.setup);
        if !same_group {
            for p in pending.drain(..) {
                captured.extend(p.captures.iter().map(|(c, _)| c.as_str()));
                earlier.push(&p.name);
            }
        }
        if !step.setup && i > 0 && steps[i - 1].setup {
            // Main steps see every setup capture; their own captures start afresh.
            captured = setup_caps.clone();
            earlier.clear();
        }
        let mut scope: BTreeSet<&str> = BUILTINS.into_iter().collect();
        scope.extend(data_columns.iter().map(String::as_str));
        scope.extend(if step.setup { &setup_ok } else { &common }.iter().copied());
        scope.extend(captured.iter().copied());
        for u in &step.uses {
            if !scope.contains(u.name.as_str()) {
                // Every use of the first undefined name is listed, not only the first.
                match &mut missing {
                    None => missing = Some((undefined(u, &scope, envs, steps, i), Vec::new())),
                    Some((d, also)) if d.message == undefined_message(&u.name) => {
                        also.push(u.pos);
                    }
                    Some(_) => {}
                }
            }
        }
        if missing.is_none() {
            check_order(step, &earlier)?;
        }
        pending.push(step);
    }
    match missing {
        Some((d, also)) => Err(with_uses(d, also)),
        None => Ok(()),
    }
}

fn undefined_message(name: &str) -> String {
    format!("undefined variable `{name}`")
}

/// The diagnostic with the further uses of the same name attached (and counted).
fn with_uses(d: Diag, also: Vec<Pos>) -> Diag {
    if also.is_empty() {
        return d;
    }
    let n = also.len() + 1;
    let mut d = d.also(also);
    d.label = Some(format!("first of {n} uses"));
    d
}

fn unique_names(steps: &[StepInfo]) -> R<()> {
    let mut seen: BTreeMap<&str, Pos> = BTreeMap::new();
    for s in steps {
        if let Some(first) = seen.get(s.name.as_str()) {
            return Err(
                Diag::new(s.name_pos, format!("duplicate step name `{}`", s.name)).help(format!(
                    "step names are unique (setup included); the first `{}` is on line {}",
                    s.name, first.line
                )),
            );
        }
        seen.insert(&s.name, s.name_pos);
    }
    Ok(())
}

/// Env var names whose value does not depend, even indirectly, on a setup capture.
fn capture_free<'a>(env: &'a EnvInfo, setup_caps: &BTreeSet<&str>) -> BTreeSet<&'a str> {
    let mut free: BTreeSet<&str> = BTreeSet::new();
    for _ in 0..=env.vars.len() {
        let before = free.len();
        for (name, _, uses) in &env.vars {
            let ok = uses.iter().all(|u| {
                !setup_caps.contains(u.name.as_str())
                    && (BUILTINS.contains(&u.name.as_str()) || free.contains(u.name.as_str()))
            });
            if ok {
                free.insert(name);
            }
        }
        if free.len() == before {
            break;
        }
    }
    free
}

/// What an env's vars may use: built-ins, setup captures and the env's own vars.
fn env_var_scope<'a>(env: &'a EnvInfo, setup_caps: &BTreeSet<&'a str>) -> BTreeSet<&'a str> {
    let mut scope: BTreeSet<&str> = BUILTINS.into_iter().collect();
    scope.extend(setup_caps.iter().copied());
    scope.extend(env.vars.iter().map(|(n, _, _)| n.as_str()));
    scope
}

/// An undefined variable in an env's vars is often undefined in the next envs too (copied
/// blocks): their uses are listed as well, and the headline names every env.
fn also_in_other_envs(
    d: Diag,
    env: &EnvInfo,
    rest: &[EnvInfo],
    caps: &BTreeSet<&str>,
    data: &[String],
) -> Diag {
    let head = "undefined variable `";
    let Some(name) = d
        .message
        .strip_prefix(head)
        .and_then(|r| r.split('`').next())
        .filter(|_| d.message.ends_with(&format!("in env `{}`", env.name)))
        .map(str::to_string)
    else {
        return d;
    };
    let mut names = vec![env.name.as_str()];
    let mut more = Vec::new();
    for other in rest {
        let scope = env_var_scope(other, caps);
        let in_vars = other
            .vars
            .iter()
            .flat_map(|(_, _, uses)| uses)
            .filter(|u| u.name == name && !scope.contains(u.name.as_str()));
        // Headers, cookies and query may also use data columns.
        let in_requests = other
            .uses
            .iter()
            .filter(|u| u.name == name && !scope.contains(u.name.as_str()))
            .filter(|u| !data.iter().any(|c| c == &u.name));
        let uses: Vec<Pos> = in_vars.chain(in_requests).map(|u| u.pos).collect();
        if !uses.is_empty() {
            names.push(&other.name);
            more.extend(uses);
        }
    }
    if more.is_empty() {
        return d;
    }
    let mut also = d.also.clone();
    also.extend(more);
    let message = format!("{head}{name}` in envs `{}`", names.join("`, `"));
    let help = d.help.clone();
    let mut out = with_uses(Diag::new(d.pos, message), also);
    out.help = help;
    out
}

fn check_env(env: &EnvInfo, setup_caps: &BTreeSet<&str>, data: &[String]) -> R<()> {
    let mut scope = env_var_scope(env, setup_caps);
    let mut undefined_uses = env
        .vars
        .iter()
        .flat_map(|(_, _, uses)| uses)
        .filter(|u| !scope.contains(u.name.as_str()));
    if let Some(u) = undefined_uses.next() {
        let also = undefined_uses
            .filter(|x| x.name == u.name)
            .map(|x| x.pos)
            .collect();
        let mut d = Diag::new(
            u.pos,
            format!("undefined variable `{}` in env `{}`", u.name, env.name),
        );
        d = d.help_opt(did_you_mean(&u.name, scope.iter().copied()));
        if d.help.is_none() && data.iter().any(|c| c == &u.name) {
            d = d.help("env vars are resolved once per virtual user, before data rows; use the column in the step instead");
        }
        return Err(with_uses(d, also));
    }
    if let Some(cycle) = find_cycle(env) {
        let first = &cycle[0];
        let pos = env
            .vars
            .iter()
            .find(|(n, _, _)| n == first)
            .map_or(env.name_pos, |(_, p, _)| *p);
        return Err(Diag::new(
            pos,
            format!(
                "variable cycle in env `{}`: {}",
                env.name,
                cycle.join(" → ")
            ),
        )
        .help("an env var cannot depend on itself, directly or through others"));
    }
    scope.extend(data.iter().map(String::as_str));
    let mut undefined_uses = env.uses.iter().filter(|u| !scope.contains(u.name.as_str()));
    if let Some(u) = undefined_uses.next() {
        let also = undefined_uses
            .filter(|x| x.name == u.name)
            .map(|x| x.pos)
            .collect();
        let d = Diag::new(
            u.pos,
            format!("undefined variable `{}` in env `{}`", u.name, env.name),
        )
        .help_opt(did_you_mean(&u.name, scope.iter().copied()));
        return Err(with_uses(d, also));
    }
    Ok(())
}

/// The first cycle among the env's vars, in file order, as `a, b, a`.
fn find_cycle(env: &EnvInfo) -> Option<Vec<String>> {
    let edges: BTreeMap<&str, Vec<&str>> = env
        .vars
        .iter()
        .map(|(n, _, uses)| {
            let targets = uses
                .iter()
                .map(|u| u.name.as_str())
                .filter(|t| env.vars.iter().any(|(v, _, _)| v == t))
                .collect();
            (n.as_str(), targets)
        })
        .collect();
    // 0 = unvisited, 1 = on the stack, 2 = done.
    let mut state: BTreeMap<&str, u8> = BTreeMap::new();
    for (start, _, _) in &env.vars {
        let mut stack: Vec<(&str, usize)> = vec![(start.as_str(), 0)];
        if state.get(start.as_str()).copied().unwrap_or(0) != 0 {
            continue;
        }
        state.insert(start, 1);
        while let Some((node, next)) = stack.last().copied() {
            let targets = edges.get(node).map_or(&[][..], Vec::as_slice);
            if let Some(&t) = targets.get(next) {
                if let Some(top) = stack.last_mut() {
                    top.1 += 1;
                }
                match state.get(t).copied().unwrap_or(0) {
                    0 => {
                        state.insert(t, 1);
                        stack.push((t, 0));
                    }
                    1 => {
                        let from = stack.iter().position(|(n, _)| *n == t).unwrap_or(0);
                        let mut cycle: Vec<String> =
                            stack[from..].iter().map(|(n, _)| n.to_string()).collect();
                        cycle.push(t.to_string());
                        return Some(cycle);
                    }
                    _ => {}
                }
            } else {
                state.insert(node, 2);
                stack.pop();
            }
        }
    }
    None
}

fn undefined(
    u: &Use,
    scope: &BTreeSet<&str>,
    envs: &[EnvInfo],
    steps: &[StepInfo],
    at: usize,
) -> Diag {
    let name = u.name.as_str();
    let step = &steps[at];
    let d = Diag::new(u.pos, undefined_message(name));
    let in_envs: Vec<&str> = envs
        .iter()
        .filter(|e| e.vars.iter().any(|(v, _, _)| v == name))
        .map(|e| e.name.as_str())
        .collect();
    if !in_envs.is_empty() {
        if step.setup && in_envs.len() == envs.len() {
            return d.help(format!(
                "`{name}` depends on a setup capture, so setup steps cannot use it"
            ));
        }
        let missing: Vec<&str> = envs
            .iter()
            .filter(|e| !in_envs.contains(&e.name.as_str()))
            .map(|e| e.name.as_str())
            .collect();
        return d.help(format!(
            "`{name}` is defined in env `{}` but not in `{}`; every env must define it",
            in_envs.join("`, `"),
            missing.join("`, `")
        ));
    }
    if let Some(other) = steps
        .iter()
        .enumerate()
        .find(|(_, s)| s.captures.iter().any(|(c, _)| c == name))
    {
        let (j, s) = other;
        if step.group.is_some() && s.group == step.group && s.setup == step.setup {
            return d.help(format!(
                "`{name}` is captured by `{}` in the same parallel group; it is set only after the group finishes",
                s.name
            ));
        }
        if j >= at || (!s.setup && step.setup) {
            return d.help(format!(
                "`{name}` is captured by step `{}`, which runs after this one",
                s.name
            ));
        }
    }
    d.help(did_you_mean(name, scope.iter().copied()).unwrap_or_else(|| {
        "variables come from env `vars`, `data` columns, captures of earlier steps, or the built-ins `vu`, `iteration`, `uuid`, `timestamp_ms`".into()
    }))
}
