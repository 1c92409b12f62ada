//! The value a singular JSONPath (`$.a.b[0].c`, `$['a'][2]`: names and non-negative indexes
//! only) selects in a JSON body, read in one pass without building the document: members and
//! elements off the path are skipped unparsed, only the selected value is built. A capture of
//! one field of a large body (`$.recent_investments[0].startup_id` of a profile) then costs a
//! scan instead of a tree of maps and strings.
//!
//! Same answers as parsing the body into a `serde_json::Value` and querying the path: the body
//! must be UTF-8 and JSON as a whole (trailing data is an error), a repeated member name selects
//! its last occurrence (as `Value`'s map keeps the last), a name on a non-object or an index on
//! a non-array selects nothing.

use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;
use std::fmt;

/// Segments of a path this module handles; longer paths go the general way.
const MAX_SEGMENTS: usize = 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Seg<'a> {
    Name(&'a str),
    Index(usize),
}

/// A parsed singular path, borrowing its names from the source text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SingularPath<'a> {
    segs: [Seg<'a>; MAX_SEGMENTS],
    len: usize,
}

impl<'a> SingularPath<'a> {
    /// `Some` when `src` is `$` followed by `.name`, `['name']`, `["name"]` or `[N]`
    /// segments only (a name without escapes or quotes inside; `N` a non-negative integer
    /// without leading zeros), at most 16 of them. Anything else (wildcards, filters, slices,
    /// negative indexes, descendants, spaces) is `None`: use the general JSONPath.
    #[must_use]
    pub fn parse(src: &'a str) -> Option<SingularPath<'a>> {
        let mut rest = src.strip_prefix('$')?;
        let mut p = SingularPath {
            segs: [Seg::Index(0); MAX_SEGMENTS],
            len: 0,
        };
        while !rest.is_empty() {
            if p.len == MAX_SEGMENTS {
                return None;
            }
            let seg;
            if let Some(r) = rest.strip_prefix('.') {
                let end = r
                    .find(|c: char| !(c.is_alphanumeric() || c == '_'))
                    .unwrap_or(r.len());
                let name = &r[..end];
                let first = name.chars().next()?;
                if !(first.is_alphabetic() || first == '_')
                    || !name.chars().all(|c| c == '_' || c.is_ascii_alphanumeric())
                {
                    return None;
                }
                seg = Seg::Name(name);
                rest = &r[end..];
            } else if let Some(r) = rest.strip_prefix('[') {
                let close = r.find(']')?;
                let inner = &r[..close];
                seg = if let Some(q @ ('\'' | '"')) = inner.chars().next() {
                    let name = inner.strip_prefix(q)?.strip_suffix(q)?;
                    if name.contains(['\\', '\'', '"']) || name.chars().any(char::is_control) {
                        return None;
                    }
                    Seg::Name(name)
                } else {
                    if inner.is_empty()
                        || !inner.bytes().all(|b| b.is_ascii_digit())
                        || (inner.len() > 1 && inner.starts_with('0'))
                    {
                        return None;
                    }
                    Seg::Index(inner.parse().ok()?)
                };
                rest = &r[close + 1..];
            } else {
                return None;
            }
            p.segs[p.len] = seg;
            p.len += 1;
        }
        Some(p)
    }

    /// The value the path selects in `body`: `Ok(None)` when it selects nothing, `Err` when
    /// the body is not JSON.
    pub fn pick(&self, body: &[u8]) -> Result<Option<Value>, NotJson> {
        let text = std::str::from_utf8(body).map_err(|_| NotJson)?;
        let mut de = serde_json::Deserializer::from_str(text);
        let found = Pick(&self.segs[..self.len])
            .deserialize(&mut de)
            .map_err(|_| NotJson)?;
        de.end().map_err(|_| NotJson)?;
        Ok(found)
    }
}

/// The body is not (UTF-8) JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotJson;

/// Descends along the remaining segments; the value at the end is built, the rest skipped.
struct Pick<'p, 'a>(&'p [Seg<'a>]);

impl<'de> DeserializeSeed<'de> for Pick<'_, '_> {
    type Value = Option<Value>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Option<Value>, D::Error> {
        if self.0.is_empty() {
            return serde::Deserialize::deserialize(d).map(Some);
        }
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Pick<'_, '_> {
    type Value = Option<Value>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<Option<Value>, E> {
        Ok(None)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Option<Value>, E> {
        Ok(None)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Option<Value>, E> {
        Ok(None)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Option<Value>, E> {
        Ok(None)
    }
    fn visit_str<E>(self, _: &str) -> Result<Option<Value>, E> {
        Ok(None)
    }
    fn visit_unit<E>(self) -> Result<Option<Value>, E> {
        Ok(None)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Option<Value>, A::Error> {
        let mut found = None;
        let want = match self.0.first() {
            Some(Seg::Index(i)) => Some(*i),
            _ => None,
        };
        let mut n = 0usize;
        loop {
            if want == Some(n) {
                match seq.next_element_seed(Pick(&self.0[1..]))? {
                    Some(v) => found = v,
                    None => break,
                }
            } else if seq.next_element::<IgnoredAny>()?.is_none() {
                break;
            }
            n += 1;
        }
        Ok(found)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Option<Value>, A::Error> {
        let mut found = None;
        let want = match self.0.first() {
            Some(Seg::Name(name)) => Some(*name),
            _ => None,
        };
        while let Some(hit) = map.next_key_seed(KeyIs(want))? {
            if hit {
                // A repeated name: the last one counts, as in `Value`'s map.
                found = map.next_value_seed(Pick(&self.0[1..]))?;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(found)
    }
}

/// A member name, compared with the wanted one without allocating (escapes decoded by
/// serde_json first).
struct KeyIs<'a>(Option<&'a str>);

impl<'de> DeserializeSeed<'de> for KeyIs<'_> {
    type Value = bool;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeyIs<'_> {
    type Value = bool;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a member name")
    }

    fn visit_str<E>(self, k: &str) -> Result<bool, E> {
        Ok(self.0 == Some(k))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use serde_json::json;

    /// What the general way answers: parse the body, query the path, first node.
    fn general(path: &str, body: &[u8]) -> Result<Option<Value>, NotJson> {
        let doc: Value = serde_json::from_slice(body).map_err(|_| NotJson)?;
        let p = serde_json_path::JsonPath::parse(path).unwrap();
        Ok(p.query(&doc).first().map(|v| (*v).clone()))
    }

    fn both(path: &str, body: &str) -> Result<Option<Value>, NotJson> {
        let fast = SingularPath::parse(path)
            .unwrap_or_else(|| panic!("{path} is singular"))
            .pick(body.as_bytes());
        assert_eq!(fast, general(path, body.as_bytes()), "{path} on {body}");
        fast
    }

    #[test]
    fn picks_what_the_general_query_picks() {
        let profile = r#"{"user":{"id":7},"recent_investments":[
            {"id":150000,"startup":{"id":230,"name":"Clear \"Beacon\" 230"},"startup_id":230},
            {"id":149992,"startup_id":298,"tags":["a",{"x":[1,2.5e3,null,true]}]}],
            "total":{"cents":47648020000},"ratio":-0.25,"note":"caf\u00e9 \ud83d\ude00"}"#;
        assert_eq!(
            both("$.recent_investments[0].startup_id", profile),
            Ok(Some(json!(230)))
        );
        assert_eq!(
            both("$.recent_investments[1].startup_id", profile),
            Ok(Some(json!(298)))
        );
        assert_eq!(
            both("$['recent_investments'][0][\"startup\"]", profile),
            Ok(Some(json!({"id": 230, "name": "Clear \"Beacon\" 230"})))
        );
        assert_eq!(
            both("$.recent_investments[1].tags[1].x", profile),
            Ok(Some(json!([1, 2500.0, null, true])))
        );
        assert_eq!(both("$.note", profile), Ok(Some(json!("café 😀"))));
        assert_eq!(both("$.ratio", profile), Ok(Some(json!(-0.25))));
        assert_eq!(both("$", r#"[1,{"a":2}]"#), Ok(Some(json!([1, {"a": 2}]))));
        // Selecting nothing: out of range, missing member, wrong kind of container or scalar.
        assert_eq!(
            both("$.recent_investments[2].startup_id", profile),
            Ok(None)
        );
        assert_eq!(both("$.nope", profile), Ok(None));
        assert_eq!(both("$.recent_investments.startup_id", profile), Ok(None));
        assert_eq!(both("$.user[0]", profile), Ok(None));
        assert_eq!(both("$.ratio.x", profile), Ok(None));
        assert_eq!(both("$[0]", "null"), Ok(None));
        // A repeated member: the last one counts, even when it lacks the rest of the path.
        assert_eq!(
            both("$.a.b", r#"{"a":{"b":1},"a":{"b":2}}"#),
            Ok(Some(json!(2)))
        );
        assert_eq!(both("$.a.b", r#"{"a":{"b":1},"a":{"c":2}}"#), Ok(None));
        // An escaped member name matches its decoded text.
        assert_eq!(both("$.ab", r#"{"a\u0062":5}"#), Ok(Some(json!(5))));
    }

    #[test]
    fn a_body_that_is_not_json_is_refused_as_the_general_way_refuses_it() {
        for body in [
            "",
            "{",
            r#"{"a":1} trailing"#,
            r#"{"a":1,}"#,
            r#"{"b":[1,2,}"#,
            "<html>nope</html>",
            r#"{"b":"bad \x escape","a":1}"#,
        ] {
            assert_eq!(both("$.a", body), Err(NotJson), "{body}");
        }
        // Invalid UTF-8 inside a member the path skips: still not JSON.
        let mut bad = br#"{"b":""#.to_vec();
        bad.extend([0xff, 0xfe]);
        bad.extend(br#"","a":1}"#);
        let p = SingularPath::parse("$.a").unwrap();
        assert_eq!(p.pick(&bad), Err(NotJson));
        assert_eq!(general("$.a", &bad), Err(NotJson));
    }

    #[test]
    fn only_singular_paths_of_names_and_indexes_parse() {
        let p = SingularPath::parse("$.recent_investments[0].startup_id").unwrap();
        assert_eq!(
            &p.segs[..p.len],
            &[
                Seg::Name("recent_investments"),
                Seg::Index(0),
                Seg::Name("startup_id")
            ]
        );
        assert_eq!(SingularPath::parse("$").unwrap().len, 0);
        assert_eq!(
            SingularPath::parse("$['api-key'][12]").unwrap().segs[..2],
            [Seg::Name("api-key"), Seg::Index(12)]
        );
        for general_only in [
            "$[?@.name == 'whale'].user_id",
            "$.a[*]",
            "$..id",
            "$.a[-1]",
            "$.a[01]",
            "$.a[0:2]",
            "$.a[ 0 ]",
            "$['a\\'b']",
            "$.1a",
            "$.a-b",
            "$.",
            "a.b",
            "$.a[0",
            "$.a.b.c.d.e.f.g.h.i.j.k.l.m.n.o.p.q",
        ] {
            assert_eq!(SingularPath::parse(general_only), None, "{general_only}");
        }
    }
}
