//! Environments typed by people: inline items (`header:Accept-Language=tr-TR`, `flags=a,b`)
//! and env YAML files (`{headers, cookies, flags, query, vars}`). Errors never echo a secret.

use super::ImportError;
use super::env::{EnvSpec, Item, ItemKind, on_off, parse_flag_value};
use crate::redact;

/// Parses one inline item: `header:Accept-Language=tr-TR`, `cookie:ab=B`,
/// `flag:new_kyc_form=on` (value optional: on), `query:x=1`, `var:user_id=7`, `body:TEXT`, or
/// the shorthand `flags=a,b` (all on).
pub fn parse_inline(s: &str) -> Result<Vec<Item>, ImportError> {
    let bad = |reason: &str| ImportError::InlineItem {
        item: redact::Redactor::default().scrub(s).into_owned(),
        reason: reason.to_string(),
    };
    if let Some(list) = s.strip_prefix("flags=") {
        return Ok(list
            .split(',')
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .map(|n| Item::new(ItemKind::Flag, n, "on"))
            .collect());
    }
    let (kind, rest) = s.split_once(':').ok_or_else(|| {
        bad("expected KIND:NAME=VALUE (kinds: header, cookie, flag, query, var, body)")
    })?;
    let kind = ItemKind::parse(kind.trim())
        .ok_or_else(|| bad("unknown kind (expected header, cookie, flag, query, var or body)"))?;
    if kind == ItemKind::Body {
        return Ok(vec![Item::new(kind, "body", rest)]);
    }
    let (name, value) = match rest.split_once('=') {
        Some((n, v)) => (n.trim(), v),
        None if kind == ItemKind::Flag => (rest.trim(), "on"),
        None => return Err(bad("expected NAME=VALUE after the kind")),
    };
    if name.is_empty() {
        return Err(bad("the name is empty"));
    }
    if kind == ItemKind::Header && !name.bytes().all(crate::http::is_tchar) {
        return Err(bad("a header name may not contain spaces or separators"));
    }
    let value = if kind == ItemKind::Flag {
        on_off(parse_flag_value(value).ok_or_else(|| bad("a flag is on or off"))?).to_string()
    } else {
        value.to_string()
    };
    Ok(vec![Item::new(kind, name, value)])
}

/// An env file: `{headers, cookies, flags, query, vars}` (every key optional; flags a map of
/// on/off or a list of names that are on).
pub fn parse_env_yaml(src: &str) -> Result<EnvSpec, ImportError> {
    let file: yaml::EnvFile = serde_saphyr::from_str(src).map_err(|e| {
        let (line, col) = e
            .location()
            .map_or((0, 0), |l| (l.line() as usize, l.column() as usize));
        let first = e.to_string();
        let first = first.lines().next().unwrap_or("invalid YAML").to_string();
        ImportError::EnvFile {
            line,
            col,
            message: redact::Redactor::default().scrub(&first).into_owned(),
        }
    })?;
    file.into_env().map_err(|message| ImportError::EnvFile {
        line: 0,
        col: 0,
        message,
    })
}

mod yaml {
    //! The serde shape of an env file; order of map keys is kept.
    use super::EnvSpec;
    use serde::Deserialize;
    use serde::de::{self, MapAccess, SeqAccess, Visitor};
    use std::fmt;

    /// A scalar read as text (`7`, `true` and `on` all become their text).
    pub struct Scalar(pub String);

    impl<'de> Deserialize<'de> for Scalar {
        fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct V;
            impl Visitor<'_> for V {
                type Value = Scalar;
                fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                    f.write_str("a string, number or boolean")
                }
                fn visit_str<E: de::Error>(self, v: &str) -> Result<Scalar, E> {
                    Ok(Scalar(v.to_string()))
                }
                fn visit_bool<E: de::Error>(self, v: bool) -> Result<Scalar, E> {
                    Ok(Scalar(if v { "on" } else { "off" }.to_string()))
                }
                fn visit_i64<E: de::Error>(self, v: i64) -> Result<Scalar, E> {
                    Ok(Scalar(v.to_string()))
                }
                fn visit_u64<E: de::Error>(self, v: u64) -> Result<Scalar, E> {
                    Ok(Scalar(v.to_string()))
                }
                fn visit_f64<E: de::Error>(self, v: f64) -> Result<Scalar, E> {
                    Ok(Scalar(v.to_string()))
                }
                fn visit_unit<E: de::Error>(self) -> Result<Scalar, E> {
                    Ok(Scalar(String::new()))
                }
            }
            d.deserialize_any(V)
        }
    }

    /// A YAML mapping kept in file order.
    #[derive(Default)]
    pub struct Ordered(pub Vec<(String, String)>);

    impl<'de> Deserialize<'de> for Ordered {
        fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct V;
            impl<'de> Visitor<'de> for V {
                type Value = Ordered;
                fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                    f.write_str("a mapping of names to values")
                }
                fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Ordered, A::Error> {
                    let mut v = Vec::new();
                    while let Some((k, x)) = m.next_entry::<Scalar, Scalar>()? {
                        v.push((k.0, x.0));
                    }
                    Ok(Ordered(v))
                }
                fn visit_unit<E: de::Error>(self) -> Result<Ordered, E> {
                    Ok(Ordered::default())
                }
            }
            d.deserialize_any(V)
        }
    }

    /// Flags: a map of on/off, or a list of names (all on).
    #[derive(Default)]
    pub struct Flags(pub Vec<(String, String)>);

    impl<'de> Deserialize<'de> for Flags {
        fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct V;
            impl<'de> Visitor<'de> for V {
                type Value = Flags;
                fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                    f.write_str("a mapping of flag names to on/off, or a list of flag names")
                }
                fn visit_map<A: MapAccess<'de>>(self, m: A) -> Result<Flags, A::Error> {
                    let o = Ordered::deserialize(de::value::MapAccessDeserializer::new(m))?;
                    Ok(Flags(o.0))
                }
                fn visit_seq<A: SeqAccess<'de>>(self, mut s: A) -> Result<Flags, A::Error> {
                    let mut v = Vec::new();
                    while let Some(n) = s.next_element::<Scalar>()? {
                        v.push((n.0, "on".to_string()));
                    }
                    Ok(Flags(v))
                }
                fn visit_unit<E: de::Error>(self) -> Result<Flags, E> {
                    Ok(Flags::default())
                }
            }
            d.deserialize_any(V)
        }
    }

    #[derive(Deserialize, Default)]
    #[serde(deny_unknown_fields)]
    pub struct EnvFile {
        #[serde(default)]
        headers: Ordered,
        #[serde(default)]
        cookies: Ordered,
        #[serde(default)]
        flags: Flags,
        #[serde(default)]
        query: Ordered,
        #[serde(default)]
        vars: Ordered,
    }

    impl EnvFile {
        /// Fails naming the flag whose value is not on/off (flag values are never secret).
        pub fn into_env(self) -> Result<EnvSpec, String> {
            let mut flags = Vec::new();
            for (n, v) in self.flags.0 {
                let on = super::parse_flag_value(&v)
                    .ok_or_else(|| format!("flag `{n}` must be on or off, not `{v}`"))?;
                flags.push((n, on));
            }
            Ok(EnvSpec {
                headers: self.headers.0,
                cookies: self.cookies.0,
                flags,
                query: self.query.0,
                vars: self.vars.0.into_iter().collect(),
                body: None,
                raw_query: None,
            })
        }
    }
}
