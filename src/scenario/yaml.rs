//! A generic YAML tree where every node and every mapping key knows its position, built with
//! serde-saphyr (`Spanned`), plus the source text helpers that recover a token's raw spelling.
//! Holds no scenario semantics.

use super::error::{Diag, Pos};
use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::{MessageFormatter, Spanned};
use std::fmt;

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i128),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    Map(Vec<(Node, Node)>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub pos: Pos,
    pub value: Value,
}

impl Node {
    /// A short name of the node's type, for "expected X, found Y" messages.
    pub fn kind(&self) -> &'static str {
        match &self.value {
            Value::Null => "nothing",
            Value::Bool(_) => "a boolean",
            Value::Int(_) => "a number",
            Value::Float(_) => "a number",
            Value::Str(_) => "a string",
            Value::Seq(_) => "a list",
            Value::Map(_) => "a mapping",
        }
    }
}

struct ValueVisitor;

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = Value;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any YAML value")
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Int(v.into()))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Int(v.into()))
    }
    fn visit_i128<E: de::Error>(self, v: i128) -> Result<Value, E> {
        Ok(Value::Int(v))
    }
    fn visit_u128<E: de::Error>(self, v: u128) -> Result<Value, E> {
        Ok(i128::try_from(v).map_or(Value::Float(v as f64), Value::Int))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        Ok(Value::Float(v))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        Ok(Value::Str(v.to_string()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
        Ok(Value::Str(v))
    }
    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Value, E> {
        Ok(Value::Str(String::from_utf8_lossy(v).into_owned()))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(ValueVisitor)
    }
    fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(ValueVisitor)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut v = Vec::new();
        while let Some(n) = seq.next_element::<Node>()? {
            v.push(n);
        }
        Ok(Value::Seq(v))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut v = Vec::new();
        while let Some(k) = map.next_key::<Node>()? {
            let val = map.next_value::<Node>()?;
            v.push((k, val));
        }
        Ok(Value::Map(v))
    }
}

struct RawValue(Value);

impl<'de> Deserialize<'de> for RawValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ValueVisitor).map(RawValue)
    }
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s: Spanned<RawValue> = Spanned::deserialize(d)?;
        let loc = s.referenced;
        Ok(Node {
            pos: Pos {
                line: usize::try_from(loc.line()).unwrap_or(0),
                col: usize::try_from(loc.column()).unwrap_or(0),
                len: usize::try_from(loc.span().len()).unwrap_or(0),
            },
            value: s.value.0,
        })
    }
}

/// Parses YAML text into a positioned tree. YAML 1.2 booleans only (`on`, `no`, `y` stay
/// strings), leading-zero and underscored numbers stay strings, duplicate keys are errors.
pub fn parse(src: &str) -> Result<Node, Diag> {
    if src.trim().is_empty() {
        return Ok(Node {
            pos: Pos {
                line: 1,
                col: 1,
                len: 0,
            },
            value: Value::Null,
        });
    }
    let opts = serde_saphyr::options! {
        strict_booleans: true,
        leading_zero_numbers_as_strings: true,
        underscored_numbers_as_strings: true,
    };
    serde_saphyr::from_str_with_options::<Node>(src, opts).map_err(|e| {
        let pos = e.location().map_or(Pos::NONE, |l| Pos {
            line: usize::try_from(l.line()).unwrap_or(0),
            col: usize::try_from(l.column()).unwrap_or(0),
            len: 1,
        });
        let formatter = serde_saphyr::UserMessageFormatter;
        let raw = formatter.format_message(e.without_snippet()).into_owned();
        let clean: String = raw
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        let clean = clean.trim().trim_end_matches('.').to_string();
        if let Some(tab) = indentation_tab(src, pos.line) {
            return tab;
        }
        let mut pos = pos;
        if let Some(key) = clean
            .strip_prefix("duplicate mapping key `")
            .and_then(|k| k.split('`').next())
        {
            pos.len = key.chars().count().max(1);
        }
        if clean.contains("limits breached") {
            // serde-saphyr's budget: anchors and aliases (`*a`) that repeat each other grow
            // exponentially ("billion laughs"); the parser stops them before memory does.
            // `Nodes { nodes: 250001 }` reads as `nodes: 250001`.
            let raw = clean.rsplit("limits breached:").next().unwrap_or("").trim();
            let what = raw
                .split_once('{')
                .and_then(|(_, r)| r.split('}').next())
                .unwrap_or(raw)
                .trim();
            return Diag::new(
                pos,
                format!("the YAML is too large or too complex once its aliases are expanded ({what})"),
            )
            .help("each `*alias` copies what its `&anchor` holds; write the values out, or repeat less");
        }
        let d = Diag::new(pos, format!("invalid YAML: {clean}"));
        if clean.starts_with("duplicate mapping key") {
            d.help("each key appears once in a mapping; merge the two entries")
        } else if clean.contains("quote") {
            d.help("close the string with the quote it opens with")
        } else if clean.contains("bracket") || clean.contains("brace") {
            d.help("close the `[` or `{` on the same level")
        } else {
            d
        }
    })
}

/// The parser often reports a tab used for indentation somewhere after it; point at the tab
/// itself (the first line, up to the reported one, whose indentation holds a tab).
fn indentation_tab(src: &str, upto: usize) -> Option<Diag> {
    let limit = if upto == 0 { usize::MAX } else { upto + 1 };
    for (i, line) in src.split('\n').enumerate().take(limit) {
        let indent: String = line
            .chars()
            .take_while(|c| *c == ' ' || *c == '\t')
            .collect();
        if let Some(col) = indent.chars().position(|c| c == '\t') {
            if line.trim().is_empty() {
                continue;
            }
            let pos = Pos {
                line: i + 1,
                col: col + 1,
                len: 1,
            };
            return Some(
                Diag::new(pos, "invalid YAML: tab in indentation")
                    .help("YAML indents with spaces; replace the tab"),
            );
        }
    }
    None
}

/// The scenario text, split in lines, to recover raw token spellings and sub-token positions.
pub struct Source<'a> {
    lines: Vec<&'a str>,
}

impl<'a> Source<'a> {
    pub fn new(text: &'a str) -> Source<'a> {
        Source {
            lines: text
                .split('\n')
                .map(|l| l.strip_suffix('\r').unwrap_or(l))
                .collect(),
        }
    }

    /// The token's text as written (single-line tokens only), e.g. `1.10` for a float.
    pub fn raw(&self, pos: Pos) -> Option<String> {
        let line = self.lines.get(pos.line.checked_sub(1)?)?;
        let s: String = line
            .chars()
            .skip(pos.col.checked_sub(1)?)
            .take(pos.len)
            .collect();
        (s.chars().count() == pos.len && pos.len > 0).then_some(s)
    }

    /// The position of `needle` inside the token at `pos` (same line), or `pos` itself.
    pub fn find_in(&self, pos: Pos, needle: &str) -> Pos {
        let Some(line) = pos.line.checked_sub(1).and_then(|i| self.lines.get(i)) else {
            return pos;
        };
        let chars: Vec<char> = line.chars().collect();
        let start = pos.col.saturating_sub(1).min(chars.len());
        let hay: String = chars[start..].iter().collect();
        match hay.find(needle) {
            Some(byte) => {
                let offset = hay[..byte].chars().count();
                Pos {
                    line: pos.line,
                    col: pos.col + offset,
                    len: needle.chars().count(),
                }
            }
            None => pos,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    fn map(n: &Node) -> &[(Node, Node)] {
        match &n.value {
            Value::Map(m) => m,
            other => panic!("not a map: {other:?}"),
        }
    }

    #[test]
    fn keys_and_values_carry_positions() {
        let src = "name: x\nsteps:\n  - n: no\n    v: 1.10\n    t: true\n";
        let root = parse(src).unwrap();
        let top = map(&root);
        assert_eq!(
            top[1].0.pos,
            Pos {
                line: 2,
                col: 1,
                len: 5
            }
        );
        let Value::Seq(steps) = &top[1].1.value else {
            panic!()
        };
        let step = map(&steps[0]);
        assert_eq!(step[0].0.value, Value::Str("n".into()));
        assert_eq!(step[0].1.value, Value::Str("no".into()));
        assert_eq!(step[1].1.value, Value::Float(1.1));
        assert_eq!(Source::new(src).raw(step[1].1.pos).as_deref(), Some("1.10"));
        assert_eq!(step[2].1.value, Value::Bool(true));
    }

    #[test]
    fn syntax_errors_have_positions() {
        let e = parse("a:\n\tb: 1\n").unwrap_err();
        assert_eq!((e.pos.line, e.pos.col), (2, 1));
        assert!(e.message.contains("tab"), "{}", e.message);
        let e = parse("a: \"abc\nb: 2\n").unwrap_err();
        assert_eq!((e.pos.line, e.pos.col), (1, 4));
        assert!(e.message.contains("quote"), "{}", e.message);
        // A tab inside a block scalar's content is text, not indentation: no error.
        assert!(parse("a: |\n  x\n  \ty\n").is_ok());
    }

    #[test]
    fn aliases_that_multiply_are_stopped_with_a_clear_message() {
        let mut src = String::from("a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
        for i in 1..9 {
            let refs = vec![format!("*a{}", i - 1); 9].join(", ");
            src.push_str(&format!("a{i}: &a{i} [{refs}]\n"));
        }
        let e = parse(&src).unwrap_err();
        assert!(
            e.message
                .starts_with("the YAML is too large or too complex once its aliases are expanded"),
            "{}",
            e.message
        );
        assert!(e.pos.line > 1, "{:?}", e.pos);
        assert!(e.help.unwrap().contains("*alias"));
    }

    #[test]
    fn find_in_locates_a_placeholder() {
        let src = "url: \"/users/{{uid}}/x\"";
        let p = Source::new(src).find_in(
            Pos {
                line: 1,
                col: 6,
                len: 18,
            },
            "{{uid}}",
        );
        assert_eq!(
            p,
            Pos {
                line: 1,
                col: 14,
                len: 7
            }
        );
    }
}
