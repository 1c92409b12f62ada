//! How `sonde import` writes text the scenario loader reads back exactly: YAML scalars with
//! every non-printable character escaped (or literal blocks when exact), and the spelling of
//! `${`, `{{` and a `$` before a variable so the loader's `${ENV}` expansion and `{{var}}`
//! templates change no byte. Pure functions; no I/O.

use super::curl::tokenize::{VAR_CLOSE, VAR_OPEN};
use std::fmt::Write as _;

/// The variable that spells `{` where a value holds `{{` (a template would start there).
pub const LBRACE_VAR: &str = "sonde_lbrace";
/// The variable that spells a `$` right before a `${…}` placeholder.
pub const DOLLAR_VAR: &str = "sonde_dollar";

/// The helper variables a file needs: `sonde_lbrace` (`{`) and `sonde_dollar` (`$`).
#[derive(Default)]
pub(super) struct Spell {
    pub(super) lbrace: bool,
    pub(super) dollar: bool,
}

/// Text for the loader: `${` → `$${`; when the text holds `{{`, every `{` spelled
/// `{{sonde_lbrace}}`; variable markers → `${NAME}`, and a `$` right before one spelled
/// `{{sonde_dollar}}` (`$${` would be read as a literal). Records the helpers used.
pub(super) fn loader_text(s: &str, spell: &mut Spell) -> String {
    let lbrace = s.contains("{{");
    let chars: Vec<char> = s.chars().collect();
    let mut out = String::with_capacity(s.len() + 8);
    for (i, &c) in chars.iter().enumerate() {
        match c {
            '$' if chars.get(i + 1) == Some(&VAR_OPEN) => {
                spell.dollar = true;
                let _ = write!(out, "{{{{{DOLLAR_VAR}}}}}");
            }
            // `$${` reads back as `${`; with braces spelled, `$${{sonde_lbrace}}` does too.
            '$' if chars.get(i + 1) == Some(&'{') => out.push_str("$$"),
            '{' if lbrace => {
                spell.lbrace = true;
                let _ = write!(out, "{{{{{LBRACE_VAR}}}}}");
            }
            VAR_OPEN => out.push_str("${"),
            VAR_CLOSE => out.push('}'),
            c => out.push(c),
        }
    }
    out
}

/// A YAML double-quoted scalar that reads back as exactly `s`: `"` and `\` escaped, and every
/// character outside YAML's printable set (C0 and C1 controls, DEL, U+2028/9, U+FEFF,
/// U+FFFE/F) as an escape.
#[must_use]
pub fn yaml_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x20 || ((c as u32) >= 0x7F && (c as u32) <= 0x9F) => {
                let _ = write!(out, "\\x{:02X}", c as u32);
            }
            '\u{2028}' | '\u{2029}' | '\u{FEFF}' | '\u{FFFE}' | '\u{FFFF}' => {
                let _ = write!(out, "\\u{:04X}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A literal block scalar (`|`) for multi-line text when that is exact: only printable
/// characters besides `\n`, no `\r`, and no line that starts with a space or tab in first
/// position of the first line (the indentation would be misread). `indent` is the block's.
pub(super) fn yaml_block(s: &str, indent: &str) -> Option<String> {
    if !s.contains('\n') || s.starts_with([' ', '\t']) || s.starts_with('\n') {
        return None;
    }
    let printable = s.chars().all(|c| {
        c == '\n'
            || c == '\t'
            || (c as u32 >= 0x20 && !(0x7F..=0x9F).contains(&(c as u32)))
                && !matches!(
                    c,
                    '\u{2028}' | '\u{2029}' | '\u{FEFF}' | '\u{FFFE}' | '\u{FFFF}'
                )
    });
    if !printable {
        return None;
    }
    let body = s.trim_end_matches('\n');
    let trailing = s.len() - body.len();
    let chomp = match trailing {
        0 => "-",
        1 => "",
        _ => "+",
    };
    let mut out = format!("|{chomp}\n");
    for line in body.split('\n') {
        if line.is_empty() {
            out.push('\n');
        } else {
            out.push_str(indent);
            out.push_str(line);
            out.push('\n');
        }
    }
    for _ in 1..trailing {
        out.push('\n');
    }
    // The caller writes the newline after the value.
    out.pop();
    Some(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    fn read_back(scalar: &str) -> String {
        let doc = format!("k: {scalar}\n");
        let v: std::collections::BTreeMap<String, String> = serde_saphyr::from_str(&doc).unwrap();
        v["k"].clone()
    }

    #[test]
    fn quoted_and_block_scalars_read_back_exactly() {
        for s in [
            "plain",
            "tab\there \"q\" back\\slash",
            "c0 \u{1} del \u{7f} c1 \u{85}\u{9f} ls \u{2028} bom \u{feff} nbsp \u{a0}",
            "line 1\r\nline 2",
            "",
            " leading and trailing ",
        ] {
            assert_eq!(read_back(&yaml_quote(s)), s, "{s:?}");
        }
        for s in [
            "a\nb",
            "a\nb\n",
            "a\nb\n\n\n",
            "a\n\n  indented\n\tb\nend ",
            "{\n  \"k\": 1\n}",
        ] {
            let block = yaml_block(s, "  ").unwrap_or_else(|| panic!("{s:?}"));
            assert_eq!(read_back(&block), s, "{s:?}");
        }
        // Not exact as a block: the caller quotes these.
        for s in [
            "one line",
            " starts with a space\nx",
            "cr\r\nlf",
            "c1 \u{85}\nx",
        ] {
            assert!(yaml_block(s, "  ").is_none(), "{s:?}");
        }
    }

    #[test]
    fn loader_text_spells_what_the_loader_would_change() {
        let mut spell = Spell::default();
        assert_eq!(loader_text("a ${HOME} b", &mut spell), "a $${HOME} b");
        assert!(!spell.lbrace && !spell.dollar);
        let t = loader_text(&format!("x{VAR_OPEN}TOKEN{VAR_CLOSE}"), &mut spell);
        assert_eq!(t, "x${TOKEN}");
        let t = loader_text(&format!("${VAR_OPEN}TOKEN{VAR_CLOSE}"), &mut spell);
        assert_eq!(t, "{{sonde_dollar}}${TOKEN}");
        assert!(spell.dollar);
        let t = loader_text("{{x}}", &mut spell);
        assert_eq!(t, "{{sonde_lbrace}}{{sonde_lbrace}}x}}");
        assert!(spell.lbrace);
    }
}
