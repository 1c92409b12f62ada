//! The environment model every input becomes: headers, cookies, feature flags, query
//! parameters, variables and a body, as atomic [`Item`]s that two environments can be diffed on
//! (`repro`/`bisect`; see `diff`). Inline items and env files are read by `envfile`.
//! Holds no I/O, and its `Debug`/`Display` never show a secret value.

use crate::plan::{Environment, FlagTransport, Template};
use crate::redact;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// What an atomic environment item is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ItemKind {
    Header,
    Cookie,
    Flag,
    Query,
    Var,
    Body,
}

impl ItemKind {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            ItemKind::Header => "header",
            ItemKind::Cookie => "cookie",
            ItemKind::Flag => "flag",
            ItemKind::Query => "query",
            ItemKind::Var => "var",
            ItemKind::Body => "body",
        }
    }

    #[must_use]
    pub fn parse(s: &str) -> Option<ItemKind> {
        Some(match s {
            "header" => ItemKind::Header,
            "cookie" => ItemKind::Cookie,
            "flag" => ItemKind::Flag,
            "query" => ItemKind::Query,
            "var" => ItemKind::Var,
            "body" => ItemKind::Body,
            _ => return None,
        })
    }
}

impl fmt::Display for ItemKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether a value is secret given its kind and name (the rules live in `crate::redact`).
#[must_use]
pub fn is_secret(kind: ItemKind, name: &str, value: &str) -> bool {
    display_value(kind, name, value) != value
}

/// The printable form of a value, from `crate::redact`: secret values (or the secret parts of a
/// URL-valued header or of a body) become `‹redacted›`.
#[must_use]
pub fn display_value(kind: ItemKind, name: &str, value: &str) -> String {
    let secret = match kind {
        ItemKind::Header => return redact::redact_header(name, value).into_owned(),
        ItemKind::Cookie => return redact::redact_cookie(name, value).into_owned(),
        ItemKind::Query => return redact::redact_query(name, value).into_owned(),
        ItemKind::Body => return redact::redact_body(value),
        ItemKind::Var => {
            redact::is_secret_query_name(name)
                || redact::is_secret_cookie_name(name)
                || redact::looks_secret(value)
        }
        ItemKind::Flag => false,
    };
    if secret && !value.is_empty() {
        redact::REDACTED.to_string()
    } else {
        value.to_string()
    }
}

/// One atomic item. Headers compare by lowercase name; everything else by exact name.
#[derive(Clone, PartialEq, Eq)]
pub struct Item {
    pub kind: ItemKind,
    pub name: String,
    /// Flags: `on` or `off`. Body: the raw text.
    pub value: String,
}

impl Item {
    pub fn new(kind: ItemKind, name: impl Into<String>, value: impl Into<String>) -> Item {
        Item {
            kind,
            name: name.into(),
            value: value.into(),
        }
    }

    /// The identity of the item across environments: kind + name (lowercase for headers).
    #[must_use]
    pub fn key(&self) -> (ItemKind, String) {
        item_key(self.kind, &self.name)
    }

    #[must_use]
    pub fn is_secret(&self) -> bool {
        is_secret(self.kind, &self.name, &self.value)
    }
}

fn item_key(kind: ItemKind, name: &str) -> (ItemKind, String) {
    match kind {
        ItemKind::Header => (kind, name.to_ascii_lowercase()),
        _ => (kind, name.to_string()),
    }
}

impl fmt::Debug for Item {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}={}",
            self.kind,
            self.name,
            display_value(self.kind, &self.name, &self.value)
        )
    }
}

impl fmt::Display for Item {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// How a body was recognised. The raw text is always kept byte for byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyKind {
    /// `application/x-www-form-urlencoded` pairs.
    Form,
    /// Text that parses as JSON.
    Json,
    Raw,
}

#[derive(Clone, PartialEq)]
pub struct Body {
    pub kind: BodyKind,
    /// Exactly the bytes that would be sent, when they are UTF-8; otherwise a lossy rendering
    /// for display and diffs, and the bytes are in `binary`.
    pub text: String,
    /// The exact bytes when they are not UTF-8 (a `$'\xe9'` in a curl command, a base64 HAR
    /// body); `None` for text.
    pub binary: Option<Vec<u8>>,
    /// From the `Content-Type` header or the HAR `mimeType`; curl's `-d` default
    /// (`application/x-www-form-urlencoded`) when neither.
    pub content_type: Option<String>,
}

impl Body {
    /// Classifies `text`: JSON when it parses, form when the content type says so, else raw.
    #[must_use]
    pub fn classify(text: String, content_type: Option<String>) -> Body {
        let ct = content_type.as_deref().unwrap_or("").to_ascii_lowercase();
        let kind = if ct.contains("x-www-form-urlencoded") {
            BodyKind::Form
        } else if (ct.is_empty() || ct.contains("json") || ct.starts_with("text/plain"))
            && serde_json::from_str::<serde_json::Value>(&text)
                .is_ok_and(|v| v.is_object() || v.is_array())
        {
            BodyKind::Json
        } else {
            BodyKind::Raw
        };
        Body {
            kind,
            text,
            binary: None,
            content_type,
        }
    }

    /// A body from bytes: classified as text when they are UTF-8, kept as `binary` otherwise.
    #[must_use]
    pub fn from_bytes(bytes: Vec<u8>, content_type: Option<String>) -> Body {
        match String::from_utf8(bytes) {
            Ok(text) => Body::classify(text, content_type),
            Err(e) => {
                let bytes = e.into_bytes();
                Body {
                    kind: BodyKind::Raw,
                    text: String::from_utf8_lossy(&bytes).into_owned(),
                    binary: Some(bytes),
                    content_type,
                }
            }
        }
    }

    /// The bytes to send.
    #[must_use]
    pub fn wire(&self) -> &[u8] {
        match &self.binary {
            Some(b) => b,
            None => self.text.as_bytes(),
        }
    }

    /// Form fields, decoded, in order (empty unless `kind` is `Form`).
    #[must_use]
    pub fn form_fields(&self) -> Vec<(String, String)> {
        if self.kind != BodyKind::Form {
            return Vec::new();
        }
        self.text
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|p| {
                let (k, v) = p.split_once('=').unwrap_or((p, ""));
                (redact::percent_decode(k), redact::percent_decode(v))
            })
            .collect()
    }
}

impl fmt::Debug for Body {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Body")
            .field("kind", &self.kind)
            .field("bytes", &self.wire().len())
            .field("content_type", &self.content_type)
            .finish()
    }
}

/// An item whose value is a `{{template}}` of the scenario (a named env), by kind, name, value.
pub type TemplatedKey = (ItemKind, String, String);

/// An environment: everything about a request that may differ between two people.
/// Headers keep their original order and case; flags are on/off.
#[derive(Clone, Default, PartialEq)]
pub struct EnvSpec {
    pub headers: Vec<(String, String)>,
    pub cookies: Vec<(String, String)>,
    pub flags: Vec<(String, bool)>,
    pub query: Vec<(String, String)>,
    pub vars: BTreeMap<String, String>,
    pub body: Option<Body>,
    /// The query string of an imported request exactly as it was sent; used instead of the
    /// `query` items while they still decode from it (see [`EnvSpec::exact_query`]).
    pub raw_query: Option<String>,
}

impl fmt::Debug for EnvSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.items()).finish()
    }
}

impl fmt::Display for EnvSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, item) in self.items().iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{item}")?;
        }
        Ok(())
    }
}

pub(crate) fn on_off(b: bool) -> &'static str {
    if b { "on" } else { "off" }
}

/// Parses a flag value: `on/true/1/yes/enabled` → on, `off/false/0/no/disabled` → off.
#[must_use]
pub fn parse_flag_value(v: &str) -> Option<bool> {
    match v.trim().to_ascii_lowercase().as_str() {
        "" | "on" | "true" | "1" | "yes" | "enabled" => Some(true),
        "off" | "false" | "0" | "no" | "disabled" => Some(false),
        _ => None,
    }
}

impl EnvSpec {
    /// Every atomic item, in a stable order: headers, cookies, flags, query, vars, body.
    #[must_use]
    pub fn items(&self) -> Vec<Item> {
        let mut v = Vec::new();
        v.extend(
            self.headers
                .iter()
                .map(|(n, x)| Item::new(ItemKind::Header, n, x)),
        );
        v.extend(
            self.cookies
                .iter()
                .map(|(n, x)| Item::new(ItemKind::Cookie, n, x)),
        );
        v.extend(
            self.flags
                .iter()
                .map(|(n, b)| Item::new(ItemKind::Flag, n, on_off(*b))),
        );
        v.extend(
            self.query
                .iter()
                .map(|(n, x)| Item::new(ItemKind::Query, n, x)),
        );
        v.extend(
            self.vars
                .iter()
                .map(|(n, x)| Item::new(ItemKind::Var, n, x)),
        );
        if let Some(b) = &self.body {
            v.push(Item::new(ItemKind::Body, "body", b.text.clone()));
        }
        v
    }

    /// Sets (`Some`) or removes (`None`) an item. Setting replaces the first item with the same
    /// key (and drops later duplicates) or appends. A body set this way keeps the old content
    /// type, or is classified without one.
    pub fn set(&mut self, kind: ItemKind, name: &str, value: Option<&str>) {
        fn set_in(list: &mut Vec<(String, String)>, name: &str, value: Option<&str>, ci: bool) {
            let same = |n: &str| {
                if ci {
                    n.eq_ignore_ascii_case(name)
                } else {
                    n == name
                }
            };
            match value {
                None => list.retain(|(n, _)| !same(n)),
                Some(v) => match list.iter().position(|(n, _)| same(n)) {
                    Some(i) => {
                        list[i].1 = v.to_string();
                        let mut seen = false;
                        list.retain(|(n, _)| {
                            if !same(n) {
                                return true;
                            }
                            let keep = !seen;
                            seen = true;
                            keep
                        });
                    }
                    None => list.push((name.to_string(), v.to_string())),
                },
            }
        }
        match kind {
            ItemKind::Header => set_in(&mut self.headers, name, value, true),
            ItemKind::Cookie => set_in(&mut self.cookies, name, value, false),
            ItemKind::Query => set_in(&mut self.query, name, value, false),
            ItemKind::Flag => {
                let b = value.and_then(parse_flag_value);
                match (self.flags.iter().position(|(n, _)| n == name), b) {
                    (Some(i), Some(b)) => self.flags[i].1 = b,
                    (Some(i), None) => {
                        self.flags.remove(i);
                    }
                    (None, Some(b)) => self.flags.push((name.to_string(), b)),
                    (None, None) => {}
                }
            }
            ItemKind::Var => match value {
                Some(v) => {
                    self.vars.insert(name.to_string(), v.to_string());
                }
                None => {
                    self.vars.remove(name);
                }
            },
            ItemKind::Body => {
                self.body = value.map(|v| {
                    let ct = self.body.as_ref().and_then(|b| b.content_type.clone());
                    Body::classify(v.to_string(), ct)
                });
            }
        }
    }

    /// Builds an environment from items (later items override earlier ones with the same key).
    pub fn from_items<'a>(items: impl IntoIterator<Item = &'a Item>) -> EnvSpec {
        let mut e = EnvSpec::default();
        for it in items {
            e.set(it.kind, &it.name, Some(&it.value));
        }
        e
    }

    /// Overlays `other` on `self`: its items replace same-keyed ones, new ones are appended.
    pub fn merge(&mut self, other: &EnvSpec) {
        for it in other.items() {
            if it.kind == ItemKind::Body {
                self.body = other.body.clone();
            } else {
                self.set(it.kind, &it.name, Some(&it.value));
            }
        }
    }

    /// The query to send verbatim instead of the items: the imported query string, when the
    /// items are still the ones it decodes to and sending them as items would change its
    /// bytes (`?draft`, `%20`, `?=`). `None`: send the items.
    #[must_use]
    pub fn exact_query(&self) -> Option<&str> {
        let raw = self.raw_query.as_deref()?;
        (super::decode_query(raw) == self.query && super::encode_query(&self.query) != raw)
            .then_some(raw)
    }

    /// Every secret value of this environment, for a [`redact::Redactor`].
    pub fn secret_values(&self) -> Vec<String> {
        self.items()
            .into_iter()
            .filter(Item::is_secret)
            .map(|i| i.value)
            .collect()
    }

    /// The plan's form of this environment: every value a literal template (a `{{` in a value
    /// is sent as is). The body has no place in an `Environment` and is left out.
    #[must_use]
    pub fn to_environment(&self) -> Environment {
        let lit = |v: &Vec<(String, String)>| {
            v.iter()
                .map(|(n, x)| (n.clone(), Template::literal(x.clone())))
                .collect::<Vec<_>>()
        };
        Environment {
            vars: self
                .vars
                .iter()
                .map(|(n, x)| (n.clone(), Template::literal(x.clone())))
                .collect(),
            headers: lit(&self.headers),
            cookies: lit(&self.cookies),
            query: lit(&self.query),
            flags: self.flags.iter().cloned().collect(),
        }
    }

    /// The plan form with literal values, except those `templated` (items of a scenario's named
    /// env, see [`EnvSpec::from_environment`]), which are parsed back into templates: the two
    /// models of an environment meet here and in the two conversions beside it.
    #[must_use]
    pub fn to_environment_keeping(&self, templated: &BTreeSet<TemplatedKey>) -> Environment {
        let mut env = self.to_environment();
        let fix = |kind: ItemKind, name: &String, t: &mut Template| {
            let src = t.source();
            if templated.contains(&(kind, name.clone(), src.clone()))
                && let Ok(parsed) = Template::parse(&src)
            {
                *t = parsed;
            }
        };
        for (kind, list) in [
            (ItemKind::Header, &mut env.headers),
            (ItemKind::Cookie, &mut env.cookies),
            (ItemKind::Query, &mut env.query),
        ] {
            for (name, t) in list.iter_mut() {
                fix(kind, name, t);
            }
        }
        for (name, t) in &mut env.vars {
            fix(ItemKind::Var, name, t);
        }
        env
    }

    /// The inverse of [`EnvSpec::to_environment`] for a scenario's named env: templates are kept
    /// in their `{{name}}` source form.
    #[must_use]
    pub fn from_environment(env: &Environment) -> EnvSpec {
        let src = |v: &Vec<(String, Template)>| {
            v.iter()
                .map(|(n, t)| (n.clone(), t.source()))
                .collect::<Vec<_>>()
        };
        EnvSpec {
            headers: src(&env.headers),
            cookies: src(&env.cookies),
            flags: env.flags.iter().map(|(n, b)| (n.clone(), *b)).collect(),
            query: src(&env.query),
            vars: env
                .vars
                .iter()
                .map(|(n, t)| (n.clone(), t.source()))
                .collect(),
            body: None,
            raw_query: None,
        }
    }

    /// Moves feature flags out of the headers and cookies named by `sources` (a list-valued
    /// header or cookie with its separator) into `flags`. Entries are `name` (on) or
    /// `name=on|off|true|false|1|0`; an entry with another value stays a flag named by the
    /// whole entry. Returns which sources were found.
    pub fn extract_flags(&mut self, sources: &[FlagTransport]) -> Vec<FlagTransport> {
        let mut found = Vec::new();
        for src in sources {
            let (list, name, sep, ci) = match src {
                FlagTransport::Header { name, separator } => {
                    (&mut self.headers, name, separator, true)
                }
                FlagTransport::Cookie { name, separator } => {
                    (&mut self.cookies, name, separator, false)
                }
            };
            let matches = |n: &str| {
                if ci {
                    n.eq_ignore_ascii_case(name)
                } else {
                    n == name.as_str()
                }
            };
            let values: Vec<String> = list
                .iter()
                .filter(|(n, _)| matches(n))
                .map(|(_, v)| v.clone())
                .collect();
            if values.is_empty() || sep.is_empty() {
                continue;
            }
            list.retain(|(n, _)| !matches(n));
            found.push(src.clone());
            for v in values {
                for entry in v
                    .split(sep.as_str())
                    .map(str::trim)
                    .filter(|e| !e.is_empty())
                {
                    let (fname, on) = match entry.split_once(['=', ':']) {
                        Some((n, val)) => match parse_flag_value(val) {
                            Some(b) => (n.trim().to_string(), b),
                            None => (entry.to_string(), true),
                        },
                        None => (entry.to_string(), true),
                    };
                    match self.flags.iter_mut().find(|(n, _)| *n == fname) {
                        Some(slot) => slot.1 = on,
                        None => self.flags.push((fname, on)),
                    }
                }
            }
        }
        found
    }
}

/// The default places feature flags travel: an `X-Feature-Flags` header (comma list) and an
/// `ff` cookie (`|` list).
#[must_use]
pub fn default_flag_sources() -> Vec<FlagTransport> {
    vec![
        FlagTransport::Header {
            name: "X-Feature-Flags".into(),
            separator: ",".into(),
        },
        FlagTransport::Cookie {
            name: "ff".into(),
            separator: "|".into(),
        },
    ]
}
