//! Typed access to the positioned YAML tree: mappings with known keys ("unknown key" errors with
//! suggestions), scalars as strings/numbers/durations, `${ENV}` expansion and `{{var}}`
//! templates with the position of every variable use. Knows no scenario structure.

use super::error::{Diag, Pos, did_you_mean};
use super::yaml::{Node, Source, Value};
use crate::plan::{Template, TemplateError};
use crate::units;
use std::time::Duration;

pub type R<T> = Result<T, Diag>;

/// A use of `{{name}}` at a position in the file.
#[derive(Debug, Clone, PartialEq)]
pub struct Use {
    pub name: String,
    pub pos: Pos,
    /// Which template of the file the use is in (uses of one template share it).
    pub template: usize,
}

/// Looks up process environment variables for `${VAR}` (injectable for tests).
pub type EnvLookup<'a> = &'a dyn Fn(&str) -> Option<String>;

pub struct Reader<'a> {
    pub src: Source<'a>,
    env: EnvLookup<'a>,
    /// Bytes of literal text of every template read so far, indexed by `Use::template`.
    literals: std::cell::RefCell<Vec<u64>>,
}

/// A mapping node with its keys as strings.
pub struct Map<'a> {
    pub entries: Vec<(String, &'a Node, &'a Node)>,
}

impl<'a> Map<'a> {
    /// Fails on the first key not in `allowed`, suggesting the nearest allowed one.
    pub fn allow(&self, allowed: &[&str], what: &str) -> R<()> {
        for (k, kn, _) in &self.entries {
            if !allowed.contains(&k.as_str()) {
                let d = Diag::new(kn.pos, format!("unknown key `{k}` in {what}"));
                let help = did_you_mean(k, allowed.iter().copied()).unwrap_or_else(|| {
                    let list: Vec<String> = allowed.iter().map(|a| format!("`{a}`")).collect();
                    format!("{what} takes {}", list.join(", "))
                });
                return Err(d.help(help));
            }
        }
        Ok(())
    }

    /// The value of `key`, treating an explicit `null` as absent.
    pub fn get(&self, key: &str) -> Option<&'a Node> {
        self.entries
            .iter()
            .find(|(k, _, v)| k == key && v.value != Value::Null)
            .map(|(_, _, v)| *v)
    }

    pub fn key_pos(&self, key: &str) -> Option<Pos> {
        self.entries
            .iter()
            .find(|(k, _, _)| k == key)
            .map(|(_, kn, _)| kn.pos)
    }

    pub fn has(&self, key: &str) -> bool {
        self.get(key).is_some()
    }
}

impl<'a> Reader<'a> {
    pub fn new(text: &'a str, env: EnvLookup<'a>) -> Reader<'a> {
        Reader {
            src: Source::new(text),
            env,
            literals: std::cell::RefCell::new(Vec::new()),
        }
    }

    fn expected(&self, n: &Node, what: &str) -> Diag {
        Diag::new(n.pos, format!("expected {what}, found {}", n.kind()))
    }

    /// A key's text (plain numbers and booleans as written).
    pub fn key_text(&self, k: &Node) -> R<String> {
        match &k.value {
            Value::Str(s) => Ok(s.clone()),
            Value::Int(_) | Value::Float(_) | Value::Bool(_) | Value::Null => {
                Ok(self.src.raw(k.pos).unwrap_or_default())
            }
            _ => Err(Diag::new(k.pos, "a key must be a plain string")),
        }
    }

    pub fn map<'n>(&self, n: &'n Node, what: &str) -> R<Map<'n>> {
        match &n.value {
            Value::Map(m) => {
                let mut entries = Vec::with_capacity(m.len());
                for (k, v) in m {
                    entries.push((self.key_text(k)?, k, v));
                }
                Ok(Map { entries })
            }
            _ => Err(self.expected(n, &format!("a mapping for {what}"))),
        }
    }

    pub fn seq<'n>(&self, n: &'n Node, what: &str) -> R<&'n [Node]> {
        match &n.value {
            Value::Seq(s) => Ok(s),
            _ => Err(self.expected(n, &format!("a list for {what}"))),
        }
    }

    /// A scalar as text, `${VAR}` expanded. Numbers and booleans keep their spelling.
    pub fn string(&self, n: &Node, what: &str) -> R<String> {
        let raw = match &n.value {
            Value::Str(s) => s.clone(),
            Value::Int(_) | Value::Float(_) | Value::Bool(_) => {
                self.src.raw(n.pos).unwrap_or_else(|| scalar_text(&n.value))
            }
            _ => return Err(self.expected(n, &format!("a string for {what}"))),
        };
        self.expand(&raw, n.pos)
    }

    /// Expands `${VAR}` and `${VAR:-default}`; `$${` is a literal `${`.
    pub fn expand(&self, s: &str, pos: Pos) -> R<String> {
        if !s.contains("${") {
            return Ok(s.to_string());
        }
        let mut out = String::with_capacity(s.len());
        let mut rest = s;
        while let Some(i) = rest.find("${") {
            if rest[..i].ends_with('$') {
                out.push_str(&rest[..i]);
                out.push('{');
                rest = &rest[i + 2..];
                continue;
            }
            out.push_str(&rest[..i]);
            let after = &rest[i + 2..];
            let Some(close) = after.find('}') else {
                return Err(Diag::new(self.src.find_in(pos, "${"), "unclosed `${`")
                    .help("write `${NAME}` or `${NAME:-default}`; `$${` is a literal `${`"));
            };
            let inner = &after[..close];
            let (name, default) = match inner.split_once(":-") {
                Some((n, d)) => (n, Some(d)),
                None => (inner, None),
            };
            let valid = name
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            let here = self.src.find_in(pos, &format!("${{{inner}}}"));
            if !valid {
                return Err(Diag::new(
                    here,
                    format!("invalid environment variable name `{name}`"),
                ));
            }
            match ((self.env)(name), default) {
                (Some(v), _) => out.push_str(&v),
                (None, Some(d)) => out.push_str(d),
                (None, None) => {
                    return Err(Diag::new(
                        here,
                        format!("environment variable `{name}` is not set"),
                    )
                    .help(format!("set it, or give a default: `${{{name}:-value}}`")));
                }
            }
            rest = &after[close + 1..];
        }
        out.push_str(rest);
        Ok(out)
    }

    pub fn opt_string(&self, m: &Map<'_>, key: &str, what: &str) -> R<Option<String>> {
        m.get(key).map(|n| self.string(n, what)).transpose()
    }

    pub fn bool(&self, n: &Node, what: &str) -> R<bool> {
        match &n.value {
            Value::Bool(b) => Ok(*b),
            _ => Err(self.expected(n, &format!("true or false for {what}"))),
        }
    }

    /// A whole number in `min..=max`.
    pub fn int(&self, n: &Node, what: &str, min: i128, max: i128) -> R<i128> {
        let v = match &n.value {
            Value::Int(i) => *i,
            Value::Str(s) => {
                let e = self.expand(s, n.pos)?;
                e.trim()
                    .parse::<i128>()
                    .map_err(|_| self.expected(n, &format!("a whole number for {what}")))?
            }
            _ => return Err(self.expected(n, &format!("a whole number for {what}"))),
        };
        if v < min || v > max {
            return Err(Diag::new(
                n.pos,
                format!("{what} must be between {min} and {max}, found {v}"),
            ));
        }
        Ok(v)
    }

    /// A duration such as `30s`; `0` parses (callers reject it where it makes no sense).
    pub fn duration(&self, n: &Node, what: &str) -> R<Duration> {
        let text = match &n.value {
            Value::Int(0) => "0".to_string(),
            Value::Int(i) => {
                return Err(Diag::new(n.pos, format!("{what} needs a unit"))
                    .help(format!("write `{i}s` or `{i}ms`")));
            }
            Value::Str(s) => self.expand(s, n.pos)?,
            _ => return Err(self.expected(n, &format!("a duration for {what}"))),
        };
        units::parse_duration(&text).map_err(|e| Diag::new(n.pos, format!("invalid {what}: {e}")))
    }

    /// A positive duration no longer than `max`.
    pub fn positive_duration(&self, n: &Node, what: &str, max: Duration) -> R<Duration> {
        let d = self.duration(n, what)?;
        if d.is_zero() {
            return Err(Diag::new(n.pos, format!("{what} must be greater than 0"))
                .help("write a positive duration, such as `30s` or `500ms`"));
        }
        if d > max {
            return Err(Diag::new(
                n.pos,
                format!("{what} must be at most {}", units::fmt_duration(max)),
            ));
        }
        Ok(d)
    }

    /// A `{{var}}` template; `uses` receives each variable with its position.
    pub fn template(&self, n: &Node, what: &str, uses: &mut Vec<Use>) -> R<Template> {
        let s = self.string(n, what)?;
        self.template_of(&s, n.pos, uses)
    }

    /// Parses `s` (read from the node at `pos`) as a template.
    pub fn template_of(&self, s: &str, pos: Pos, uses: &mut Vec<Use>) -> R<Template> {
        let t = Template::parse(s).map_err(|e| match e {
            TemplateError::Unclosed { .. } => {
                Diag::new(self.src.find_in(pos, "{{"), "unclosed `{{` in template")
                    .help("variables are written `{{name}}`")
            }
            TemplateError::BadName { name, .. } => {
                Diag::new(pos, format!("invalid variable name `{name}` in template"))
                    .help("variable names use letters, digits, `_`, `-` and `.`")
            }
            TemplateError::Undefined(name) | TemplateError::TooLarge { name } => {
                Diag::new(pos, format!("undefined variable `{name}`"))
            }
        })?;
        let template = {
            let mut lits = self.literals.borrow_mut();
            lits.push(t.literal_len() as u64);
            lits.len() - 1
        };
        for name in t.vars() {
            uses.push(Use {
                name: name.to_string(),
                pos: self.var_pos(pos, name),
                template,
            });
        }
        Ok(t)
    }

    /// Bytes of literal text of the template `Use::template` names (0 if unknown).
    pub fn literal_len(&self, template: usize) -> u64 {
        self.literals.borrow().get(template).copied().unwrap_or(0)
    }

    /// Where `{{name}}` sits inside the token at `pos` (the whole token if not found).
    pub fn var_pos(&self, pos: Pos, name: &str) -> Pos {
        for needle in [format!("{{{{{name}}}}}"), format!("{{{{ {name} }}}}")] {
            let p = self.src.find_in(pos, &needle);
            if p != pos || pos.len == needle.chars().count() {
                return p;
            }
        }
        pos
    }
}

fn scalar_text(v: &Value) -> String {
    match v {
        Value::Int(i) => i.to_string(),
        Value::Float(f) => f.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Str(s) => s.clone(),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use crate::scenario::yaml::parse;

    fn env(name: &str) -> Option<String> {
        (name == "HOST").then(|| "example.test".to_string())
    }

    #[test]
    fn expands_environment_variables() {
        let r = Reader::new("x: 1", &env);
        let p = Pos::NONE;
        assert_eq!(
            r.expand("https://${HOST}/a", p).unwrap(),
            "https://example.test/a"
        );
        assert_eq!(r.expand("${NOPE:-dflt}", p).unwrap(), "dflt");
        assert_eq!(r.expand("${NOPE:-}", p).unwrap(), "");
        assert_eq!(r.expand("$${HOST}", p).unwrap(), "${HOST}");
        assert_eq!(r.expand("$.items[0]", p).unwrap(), "$.items[0]");
        let e = r.expand("${NOPE}", p).unwrap_err();
        assert_eq!(e.message, "environment variable `NOPE` is not set");
        assert!(r.expand("${HOST", p).is_err());
        assert!(r.expand("${9x}", p).is_err());
    }

    #[test]
    fn unknown_keys_suggest_and_positions_point_at_uses() {
        let src = "request:\n  methd: GET\n  url: /users/{{uid}}/x\n";
        let root = parse(src).unwrap();
        let r = Reader::new(src, &env);
        let top = r.map(&root, "the scenario").unwrap();
        let req = r.map(top.get("request").unwrap(), "request").unwrap();
        let e = req.allow(&["method", "url"], "request").unwrap_err();
        assert_eq!(
            e.pos,
            Pos {
                line: 2,
                col: 3,
                len: 5
            }
        );
        assert_eq!(e.help.as_deref(), Some("did you mean `method`?"));
        let mut uses = Vec::new();
        r.template(req.get("url").unwrap(), "url", &mut uses)
            .unwrap();
        assert_eq!(uses[0].name, "uid");
        assert_eq!(
            uses[0].pos,
            Pos {
                line: 3,
                col: 15,
                len: 7
            }
        );
    }
}
