//! `{{var}}` templates, parsed once at plan time and rendered per request without re-parsing.
//! `${ENV_VAR}` is not handled here: the scenario loader expands it when it reads the file.
//! A rendering never grows past `MAX_EXPANDED_BYTES` (nested variables that double at each
//! level would otherwise reach gigabytes); the loader checks the same bound statically.

use serde_json::Value;
use std::borrow::Cow;
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Lit(String),
    Var(String),
}

/// A string with `{{name}}` placeholders.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Template {
    parts: Vec<Part>,
}

/// The largest value one template may render to (and one variable may expand to): 1 MiB.
pub const MAX_EXPANDED_BYTES: usize = 1 << 20;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("unclosed `{{{{` at byte {offset}")]
    Unclosed { offset: usize },
    #[error("empty or invalid variable name `{name}` at byte {offset}")]
    BadName { name: String, offset: usize },
    #[error("undefined variable `{0}`")]
    Undefined(String),
    #[error(
        "`{{{{{name}}}}}` makes the rendered value larger than {} MiB, the limit for one expanded value",
        MAX_EXPANDED_BYTES >> 20
    )]
    TooLarge { name: String },
}

/// Read access to variables. Implemented by exec's layered scopes and by plain maps.
pub trait Vars {
    fn get_var(&self, name: &str) -> Option<&Value>;
}

impl Vars for BTreeMap<String, Value> {
    fn get_var(&self, name: &str) -> Option<&Value> {
        self.get(name)
    }
}

impl Vars for std::collections::HashMap<String, Value> {
    fn get_var(&self, name: &str) -> Option<&Value> {
        self.get(name)
    }
}

fn valid_name(n: &str) -> bool {
    !n.is_empty()
        && n.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.')
}

/// The text a variable renders as inside a larger string: strings raw, others as JSON.
#[must_use]
pub fn value_text(v: &Value) -> Cow<'_, str> {
    match v {
        Value::String(s) => Cow::Borrowed(s.as_str()),
        Value::Null => Cow::Borrowed(""),
        other => Cow::Owned(other.to_string()),
    }
}

impl Template {
    pub fn parse(s: &str) -> Result<Template, TemplateError> {
        let mut parts = Vec::new();
        let mut rest = s;
        let mut base = 0usize;
        while let Some(open) = rest.find("{{") {
            if open > 0 {
                parts.push(Part::Lit(rest[..open].to_string()));
            }
            let after = &rest[open + 2..];
            let close = after.find("}}").ok_or(TemplateError::Unclosed {
                offset: base + open,
            })?;
            let name = after[..close].trim();
            if !valid_name(name) {
                return Err(TemplateError::BadName {
                    name: name.to_string(),
                    offset: base + open,
                });
            }
            parts.push(Part::Var(name.to_string()));
            let consumed = open + 2 + close + 2;
            base += consumed;
            rest = &rest[consumed..];
        }
        if !rest.is_empty() {
            parts.push(Part::Lit(rest.to_string()));
        }
        Ok(Template { parts })
    }

    /// A template with no placeholders (the text is taken as is, `{{` included).
    pub fn literal(s: impl Into<String>) -> Template {
        let s = s.into();
        if s.is_empty() {
            return Template::default();
        }
        Template {
            parts: vec![Part::Lit(s)],
        }
    }

    /// Variable names used, in order of appearance (repeats included).
    pub fn vars(&self) -> impl Iterator<Item = &str> {
        self.parts.iter().filter_map(|p| match p {
            Part::Var(v) => Some(v.as_str()),
            Part::Lit(_) => None,
        })
    }

    #[must_use]
    pub fn is_static(&self) -> bool {
        self.parts.iter().all(|p| matches!(p, Part::Lit(_)))
    }

    /// `Some(name)` when the whole template is exactly one placeholder.
    #[must_use]
    pub fn sole_var(&self) -> Option<&str> {
        match self.parts.as_slice() {
            [Part::Var(v)] => Some(v),
            _ => None,
        }
    }

    /// The static text, when there are no placeholders.
    #[must_use]
    pub fn as_static(&self) -> Option<Cow<'_, str>> {
        match self.parts.as_slice() {
            [] => Some(Cow::Borrowed("")),
            [Part::Lit(s)] => Some(Cow::Borrowed(s)),
            _ if self.is_static() => Some(Cow::Owned(self.source())),
            _ => None,
        }
    }

    /// Bytes of literal text (everything but the placeholders).
    #[must_use]
    pub fn literal_len(&self) -> usize {
        self.parts
            .iter()
            .map(|p| match p {
                Part::Lit(s) => s.len(),
                Part::Var(_) => 0,
            })
            .sum()
    }

    /// Appends the rendering to `out`; what this call adds is at most `MAX_EXPANDED_BYTES`.
    pub fn render_into(&self, vars: &dyn Vars, out: &mut String) -> Result<(), TemplateError> {
        let start = out.len();
        for p in &self.parts {
            match p {
                Part::Lit(s) => out.push_str(s),
                Part::Var(v) => {
                    let val = vars
                        .get_var(v)
                        .ok_or_else(|| TemplateError::Undefined(v.clone()))?;
                    let text = value_text(val);
                    if out.len() - start + text.len() > MAX_EXPANDED_BYTES {
                        out.truncate(start);
                        return Err(TemplateError::TooLarge { name: v.clone() });
                    }
                    out.push_str(&text);
                }
            }
        }
        Ok(())
    }

    pub fn render(&self, vars: &dyn Vars) -> Result<String, TemplateError> {
        let mut s = String::new();
        self.render_into(vars, &mut s)?;
        Ok(s)
    }

    /// Like `render`, but a template that is exactly one placeholder yields the variable's
    /// JSON value with its type (used for JSON bodies).
    pub fn render_value(&self, vars: &dyn Vars) -> Result<Value, TemplateError> {
        if let Some(v) = self.sole_var() {
            return vars
                .get_var(v)
                .cloned()
                .ok_or_else(|| TemplateError::Undefined(v.to_string()));
        }
        self.render(vars).map(Value::String)
    }

    /// The template written back in `{{name}}` form.
    #[must_use]
    pub fn source(&self) -> String {
        let mut s = String::new();
        for p in &self.parts {
            match p {
                Part::Lit(l) => s.push_str(l),
                Part::Var(v) => {
                    s.push_str("{{");
                    s.push_str(v);
                    s.push_str("}}");
                }
            }
        }
        s
    }
}

/// Renders every string inside a JSON value as a template (see `Template::render_value`).
pub fn render_json(v: &Value, vars: &dyn Vars) -> Result<Value, TemplateError> {
    Ok(match v {
        Value::String(s) => Template::parse(s)?.render_value(vars)?,
        Value::Array(a) => Value::Array(
            a.iter()
                .map(|x| render_json(x, vars))
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(o) => {
            let mut m = serde_json::Map::with_capacity(o.len());
            for (k, x) in o {
                m.insert(k.clone(), render_json(x, vars)?);
            }
            Value::Object(m)
        }
        other => other.clone(),
    })
}

/// Variable names used anywhere in a JSON template.
pub fn json_vars(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::String(s) => {
            if let Ok(t) = Template::parse(s) {
                out.extend(t.vars().map(str::to_string));
            }
        }
        Value::Array(a) => a.iter().for_each(|x| json_vars(x, out)),
        Value::Object(o) => o.values().for_each(|x| json_vars(x, out)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn vars() -> BTreeMap<String, Value> {
        let mut m = BTreeMap::new();
        m.insert("id".to_string(), json!(42));
        m.insert("name".to_string(), json!("whale"));
        m
    }

    #[test]
    fn renders_text_and_typed_values() {
        let t = Template::parse("/users/{{ id }}/profile?n={{name}}").unwrap();
        assert_eq!(t.render(&vars()).unwrap(), "/users/42/profile?n=whale");
        assert_eq!(t.vars().collect::<Vec<_>>(), vec!["id", "name"]);
        assert_eq!(
            Template::parse("{{id}}")
                .unwrap()
                .render_value(&vars())
                .unwrap(),
            json!(42)
        );
        let body = json!({"startup_id": "{{id}}", "note": "for {{name}}"});
        assert_eq!(
            render_json(&body, &vars()).unwrap(),
            json!({"startup_id": 42, "note": "for whale"})
        );
    }

    #[test]
    fn errors_name_the_problem() {
        assert_eq!(
            Template::parse("a {{b").unwrap_err(),
            TemplateError::Unclosed { offset: 2 }
        );
        assert!(matches!(
            Template::parse("{{ }}"),
            Err(TemplateError::BadName { .. })
        ));
        assert_eq!(
            Template::parse("{{missing}}")
                .unwrap()
                .render(&vars())
                .unwrap_err(),
            TemplateError::Undefined("missing".into())
        );
        assert_eq!(Template::parse("x{{id}}y").unwrap().source(), "x{{id}}y");
    }

    #[test]
    fn a_rendering_never_grows_past_the_cap() {
        let mut m = vars();
        m.insert("half".into(), json!("x".repeat(MAX_EXPANDED_BYTES / 2)));
        let t = Template::parse("{{half}}{{half}}").unwrap();
        assert_eq!(t.render(&m).unwrap().len(), MAX_EXPANDED_BYTES);
        let t = Template::parse("{{half}}{{half}}{{id}}").unwrap();
        let e = t.render(&m).unwrap_err();
        assert_eq!(e, TemplateError::TooLarge { name: "id".into() });
        assert!(e.to_string().contains("larger than 1 MiB"), "{e}");
        let body = json!({"a": "{{half}}-{{half}}"});
        assert!(matches!(
            render_json(&body, &m),
            Err(TemplateError::TooLarge { .. })
        ));
        assert_eq!(Template::parse("ab{{id}}c").unwrap().literal_len(), 3);
    }
}
