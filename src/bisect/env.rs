//! What `--env`, `--good`, `--bad` and `--matrix` name, loaded into [`EnvSpec`]s: a named env of
//! the scenario, or anything `import::load_env` reads (curl, HAR, env YAML, inline item), keeping
//! the imported request line when there is one (the flow of a scenario-less `repro`/`bisect`).
//! Also the plan form of an environment. Reads files; sends nothing.

use crate::import::{self, EnvArg, EnvSpec, Imported, ItemKind};
use crate::plan::{Environment, FlagTransport, Plan};
use crate::redact;
use std::collections::BTreeSet;
use std::path::Path;

/// Why an environment or a matrix axis could not be loaded. Never holds a secret value.
#[derive(Debug, thiserror::Error)]
pub enum EnvError {
    #[error("{label}: {source}")]
    Import {
        label: String,
        source: import::ImportError,
    },
    #[error("{0}")]
    Invalid(String),
}

pub use crate::import::env::TemplatedKey;

/// One loaded environment.
#[derive(Debug, Clone)]
pub struct LoadedEnv {
    /// How tables and reports name it: the env name, the file name, or the (redacted) item.
    pub label: String,
    /// What the user typed (for generated `sonde repro` lines).
    pub spec_text: String,
    pub spec: EnvSpec,
    /// The request of a curl command or HAR entry.
    pub request: Option<Imported>,
    /// Values that come from a scenario env and are templates, not literals.
    pub templated: BTreeSet<TemplatedKey>,
}

/// Loads `text`: a named env of `plan` first, else a curl/HAR/env-file/inline item. Flags are
/// extracted from the scenario's flag transport as well as the default ones.
pub fn load(text: &str, plan: Option<&Plan>) -> Result<LoadedEnv, EnvError> {
    if let Some(env) = plan.and_then(|p| p.envs.get(text)) {
        let spec = EnvSpec::from_environment(env);
        let templated = spec
            .items()
            .into_iter()
            .filter(|i| i.value.contains("{{"))
            .map(|i| (i.kind, i.name, i.value))
            .collect();
        return Ok(LoadedEnv {
            label: text.to_string(),
            spec_text: text.to_string(),
            spec,
            request: None,
            templated,
        });
    }
    let import_err = |source| EnvError::Import {
        label: short_label(text),
        source,
    };
    if let EnvArg::File { path, .. } = EnvArg::parse(text)
        && !path.exists()
    {
        return Err(EnvError::Invalid(not_found(text, plan)));
    }
    let (mut spec, request) = import::read_env(text).map_err(import_err)?;
    let mut sources: Vec<FlagTransport> = plan.map(|p| p.flags.clone()).into_iter().collect();
    sources.extend(import::default_flag_sources());
    spec.extract_flags(&sources);
    Ok(LoadedEnv {
        label: short_label(text),
        spec_text: text.to_string(),
        spec,
        request,
        templated: BTreeSet::new(),
    })
}

fn not_found(text: &str, plan: Option<&Plan>) -> String {
    let names: Vec<&str> = plan
        .map(|p| p.envs.keys().map(String::as_str).collect())
        .unwrap_or_default();
    let hint = crate::suggest::did_you_mean(text, names.iter().copied())
        .map(|h| format!(" ({h})"))
        .unwrap_or_default();
    let shown = short_label(text);
    if plan.is_some() {
        format!(
            "`{shown}` is neither an environment of the scenario{hint} nor a file; the scenario has: {}",
            if names.is_empty() {
                "none".to_string()
            } else {
                names.join(", ")
            }
        )
    } else {
        format!(
            "`{shown}`: no such file (an environment is a curl file, a .har[#entry], an env .yaml, \
             or an inline item such as header:Accept-Language=de-DE)"
        )
    }
}

/// A printable name: a file's name, or an inline item with its value redacted when secret.
pub fn short_label(text: &str) -> String {
    let is_inline = text
        .split_once(':')
        .is_some_and(|(k, _)| ItemKind::parse(k).is_some());
    if is_inline {
        return match import::parse_inline(text) {
            Ok(items) => items
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(" "),
            Err(_) => redact::Redactor::default().scrub(text).into_owned(),
        };
    }
    if text.starts_with("flags=") {
        return text.to_string();
    }
    let name = Path::new(text.split_once(".har#").map_or(text, |(f, _)| f))
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or(text);
    match text.split_once(".har#") {
        Some((_, e)) => format!("{name}.har#{e}"),
        None => name.to_string(),
    }
}

/// The plan form of an environment (see [`EnvSpec::to_environment_keeping`]).
#[must_use]
pub fn to_plan_env(spec: &EnvSpec, templated: &BTreeSet<TemplatedKey>) -> Environment {
    spec.to_environment_keeping(templated)
}

/// Where flags travel without a scenario: the first transport the request used, else the
/// default `X-Feature-Flags` header.
#[must_use]
pub fn flag_transport(requests: &[&Imported]) -> FlagTransport {
    requests
        .iter()
        .find_map(|r| r.flag_sources.first().cloned())
        .unwrap_or_default()
}

/// One `--matrix` axis: an item and the values it takes (`None`: the item is removed).
#[derive(Debug, Clone, PartialEq)]
pub struct Axis {
    pub kind: ItemKind,
    pub name: String,
    pub values: Vec<Option<String>>,
}

impl Axis {
    /// `KIND:NAME=v1,v2`. A value holding a comma is written in double quotes (`""` inside is
    /// one quote); `~` alone removes the item.
    pub fn parse(text: &str) -> Result<Axis, EnvError> {
        let bad = |why: &str| {
            EnvError::Invalid(format!(
                "--matrix `{}`: {why}",
                redact::Redactor::default().scrub(text)
            ))
        };
        let (kind, rest) = text.split_once(':').ok_or_else(|| {
            bad("expected KIND:NAME=v1,v2 (kinds: header, cookie, flag, query, var)")
        })?;
        let kind = ItemKind::parse(kind.trim())
            .filter(|k| *k != ItemKind::Body)
            .ok_or_else(|| bad("unknown kind (header, cookie, flag, query or var)"))?;
        let (name, list) = rest
            .split_once('=')
            .ok_or_else(|| bad("expected NAME=v1,v2 after the kind"))?;
        let name = name.trim();
        if name.is_empty() {
            return Err(bad("the name is empty"));
        }
        if kind == ItemKind::Header && !name.bytes().all(crate::http::is_tchar) {
            return Err(bad("a header name may not contain spaces or separators"));
        }
        let mut values = Vec::new();
        for raw in split_values(list).map_err(|e| bad(&e))? {
            let v = match raw {
                None => None,
                Some(v) if kind == ItemKind::Flag => {
                    let on = crate::import::env::parse_flag_value(&v)
                        .ok_or_else(|| bad("a flag value is on or off"))?;
                    Some(if on { "on" } else { "off" }.to_string())
                }
                Some(v) => Some(v),
            };
            values.push(v);
        }
        if values.is_empty() {
            return Err(bad("no values"));
        }
        Ok(Axis {
            kind,
            name: name.to_string(),
            values,
        })
    }

    /// `kind:name=value` for labels, the value redacted when secret.
    #[must_use]
    pub fn label(&self, value: &Option<String>) -> String {
        match value {
            None => format!("{}:{} absent", self.kind, self.name),
            Some(v) => format!(
                "{}:{}={}",
                self.kind,
                self.name,
                crate::import::env::display_value(self.kind, &self.name, v)
            ),
        }
    }
}

/// Splits `a,"b,c",~` into `[Some(a), Some(b,c), None]`.
fn split_values(list: &str) -> Result<Vec<Option<String>>, String> {
    let mut out = Vec::new();
    let mut chars = list.chars().peekable();
    loop {
        let mut value = String::new();
        let mut quoted = false;
        if chars.peek() == Some(&'"') {
            quoted = true;
            chars.next();
            loop {
                match chars.next() {
                    None => return Err("unclosed double quote".into()),
                    Some('"') if chars.peek() == Some(&'"') => {
                        chars.next();
                        value.push('"');
                    }
                    Some('"') => break,
                    Some(c) => value.push(c),
                }
            }
            if !matches!(chars.peek(), None | Some(',')) {
                return Err("a quoted value must end at a comma".into());
            }
        } else {
            while let Some(c) = chars.peek() {
                if *c == ',' {
                    break;
                }
                value.push(*c);
                chars.next();
            }
        }
        out.push(if !quoted && value == "~" {
            None
        } else {
            Some(value)
        });
        if chars.next().is_none() {
            break;
        }
    }
    Ok(out)
}

/// Applies one axis value to an environment.
pub fn apply_axis(spec: &mut EnvSpec, axis: &Axis, value: &Option<String>) {
    spec.set(axis.kind, &axis.name, value.as_deref());
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn matrix_values_split_with_quotes_and_absence() {
        let a = Axis::parse(r#"header:Accept-Language="de-DE,de;q=0.9",en-US,~"#).unwrap();
        assert_eq!(a.kind, ItemKind::Header);
        assert_eq!(
            a.values,
            vec![
                Some("de-DE,de;q=0.9".to_string()),
                Some("en-US".to_string()),
                None
            ]
        );
        let f = Axis::parse("flag:new_kyc_form=off,on").unwrap();
        assert_eq!(f.values, vec![Some("off".into()), Some("on".into())]);
        assert!(Axis::parse("flag:x=maybe").is_err());
        assert!(Axis::parse("nokind=1").is_err());
        assert!(Axis::parse(r#"cookie:a="open"#).is_err());
        let q = Axis::parse(r#"cookie:a="say ""hi""",b"#).unwrap();
        assert_eq!(q.values[0].as_deref(), Some(r#"say "hi""#));
    }

    #[test]
    fn labels_hide_secret_values() {
        let a = Axis::parse("header:Authorization=Bearer abcdefgh12345678").unwrap();
        let l = a.label(&a.values[0]);
        assert!(!l.contains("abcdefgh"), "{l}");
        assert!(l.contains("Authorization"));
        let s = short_label("cookie:session=abcdefgh12345678");
        assert!(!s.contains("abcdefgh"), "{s}");
        assert_eq!(short_label("scenarios/envs/works.curl"), "works.curl");
    }
}
