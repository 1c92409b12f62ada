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
                out.push_str(&format!("{{{{{DOLLAR_VAR}}}}}"));
            }
            // `$${` reads back as `${`; with braces spelled, `$${{sonde_lbrace}}` does too.
            '$' if chars.get(i + 1) == Some(&'{') => out.push_str("$$"),
            '{' if lbrace => {
                spell.lbrace = true;
                out.push_str(&format!("{{{{{LBRACE_VAR}}}}}"));
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
