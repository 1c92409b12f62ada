//! Splits a "Copy as cURL" command into words the way a shell would, without ever running one.
//! Two dialects: POSIX/bash (Chrome "Copy as cURL (bash)", Firefox "Copy as cURL (POSIX)") and
//! Windows cmd (Chrome/Firefox "(cmd)": `^` escapes, `^`-newline continuations, then the MS C
//! runtime's `"`/`\` argument rules). Nothing is expanded: `%VAR%` and globs stay text; a POSIX
//! `$NAME`/`${NAME}` outside single quotes is kept as a shell-variable marker (see
//! [`VAR_OPEN`]) that the importer turns into a `${NAME}` scenario variable, since a shell would
//! have substituted it. Any other `$` expansion (`$(…)`, `$1`, `$?`) is refused.
//! Every word and every error carries the 1-based line:column where it starts in the file.

use crate::import::ImportError;

/// Which shell the command was copied for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Posix,
    Cmd,
}

/// Marks the start of a shell variable reference inside a word's text: `VAR_OPEN NAME VAR_CLOSE`
/// (private-use characters, refused when they appear in the input itself).
pub const VAR_OPEN: char = '\u{E000}';
/// Marks the end of a shell variable reference.
pub const VAR_CLOSE: char = '\u{E001}';

/// A position in the source: 1-based line and column (in characters).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Pos {
    pub line: usize,
    pub col: usize,
}

/// One shell word after quote removal.
#[derive(Clone, PartialEq, Eq)]
pub struct Word {
    /// The word as text. Bytes from `$'\xHH'` escapes that do not form UTF-8 are read as
    /// Latin-1 code points, as the browsers that write them mean them (see `bytes_of`).
    pub text: String,
    pub pos: Pos,
    /// Source characters before the first character of `text` (1 for a word that opens with
    /// `'` or `"`, 2 for `$'`), so a column inside the word can be told.
    pub lead: usize,
}

impl Word {
    /// The position of the character at `chars` characters into `text`, exact when the word
    /// is one quoted string or has no quotes (columns count source characters).
    #[must_use]
    pub fn pos_at(&self, chars: usize) -> Pos {
        Pos {
            line: self.pos.line,
            col: self.pos.col + self.lead + chars,
        }
    }
}

impl std::fmt::Debug for Word {
    /// Shows the position and length only: a word may be a credential.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Word@{}:{}({} bytes)",
            self.pos.line,
            self.pos.col,
            self.text.len()
        )
    }
}

fn syntax(pos: Pos, message: impl Into<String>) -> ImportError {
    ImportError::Syntax {
        line: pos.line,
        col: pos.col,
        message: message.into(),
    }
}

/// Characters with their positions; `\r` before `\n` is dropped.
fn positioned(src: &str) -> Vec<(char, Pos)> {
    let mut out = Vec::with_capacity(src.len());
    let (mut line, mut col) = (1, 1);
    let mut it = src.chars().peekable();
    while let Some(c) = it.next() {
        if c == '\r' && it.peek() == Some(&'\n') {
            continue;
        }
        out.push((c, Pos { line, col }));
        if c == '\n' {
            line += 1;
            col = 1;
        } else {
            col += 1;
        }
    }
    out
}

/// Guesses the dialect: Windows cmd when carets quote (`^"`) or continue lines (` ^` at a line
/// end); POSIX otherwise.
#[must_use]
pub fn detect(src: &str) -> Dialect {
    if src.contains("^\"") || src.lines().any(|l| l.trim_end().ends_with(" ^")) {
        Dialect::Cmd
    } else {
        Dialect::Posix
    }
}

pub fn tokenize(src: &str, dialect: Dialect) -> Result<Vec<Word>, ImportError> {
    let chars = positioned(src);
    if let Some((_, pos)) = chars
        .iter()
        .find(|(c, _)| *c == VAR_OPEN || *c == VAR_CLOSE)
    {
        return Err(syntax(
            *pos,
            "the private-use character U+E000/U+E001 is not accepted in a curl command",
        ));
    }
    match dialect {
        Dialect::Posix => posix(&chars),
        Dialect::Cmd => cmd(&chars),
    }
}

/// A word under construction: bytes (for `$'\xHH'`), plus a Latin-1 reading of `\xHH` ≥ 0x80
/// used when the bytes are not UTF-8 (Firefox writes U+00E9 as `\xe9`).
struct WordBuf {
    bytes: Vec<u8>,
    latin1: String,
    pos: Pos,
    lead: usize,
}

impl WordBuf {
    fn new(pos: Pos) -> WordBuf {
        WordBuf::led(pos, 0)
    }
    fn led(pos: Pos, lead: usize) -> WordBuf {
        WordBuf {
            bytes: Vec::new(),
            latin1: String::new(),
            pos,
            lead,
        }
    }
    fn push(&mut self, c: char) {
        let mut b = [0u8; 4];
        self.bytes
            .extend_from_slice(c.encode_utf8(&mut b).as_bytes());
        self.latin1.push(c);
    }
    fn push_byte(&mut self, b: u8) {
        self.bytes.push(b);
        self.latin1.push(char::from(b));
    }
    fn finish(self) -> Word {
        match String::from_utf8(self.bytes) {
            Ok(text) => Word {
                text,
                pos: self.pos,
                lead: self.lead,
            },
            Err(_) => Word {
                text: self.latin1,
                pos: self.pos,
                lead: self.lead,
            },
        }
    }
}

fn is_continuation(chars: &[(char, Pos)], i: usize) -> bool {
    chars.get(i + 1).map(|c| c.0) == Some('\n')
}

/// True when nothing but whitespace follows index `i`.
fn only_space_after(chars: &[(char, Pos)], i: usize) -> bool {
    chars.iter().skip(i).all(|(c, _)| c.is_whitespace())
}

// Long by design: one character-level state machine (quotes, escapes, `$'…'`, comments,
// line continuations) whose state would otherwise travel through every helper.
fn posix(chars: &[(char, Pos)]) -> Result<Vec<Word>, ImportError> {
    let mut words = Vec::new();
    let mut cur: Option<WordBuf> = None;
    let mut i = 0;
    let end_of_file = chars.last().map_or(Pos { line: 1, col: 1 }, |c| c.1);
    while i < chars.len() {
        let (c, pos) = chars[i];
        match c {
            ' ' | '\t' | '\r' => {
                if let Some(w) = cur.take() {
                    words.push(w.finish());
                }
                i += 1;
            }
            '\n' => {
                if let Some(w) = cur.take() {
                    words.push(w.finish());
                }
                i += 1;
                if !words.is_empty() {
                    return finish_after_command(chars, i, words, '\\');
                }
            }
            '#' if cur.is_none() => {
                while i < chars.len() && chars[i].0 != '\n' {
                    i += 1;
                }
            }
            '\\' => {
                if is_continuation(chars, i) {
                    if only_space_after(chars, i + 2) {
                        return Err(syntax(
                            pos,
                            "trailing `\\`: the command continues past the end of the file",
                        ));
                    }
                    i += 2;
                    continue;
                }
                let Some(&(next, _)) = chars.get(i + 1) else {
                    return Err(syntax(pos, "trailing `\\` at the end of the file"));
                };
                cur.get_or_insert_with(|| WordBuf::new(pos)).push(next);
                i += 2;
            }
            '\'' => {
                let w = cur.get_or_insert_with(|| WordBuf::led(pos, 1));
                i += 1;
                loop {
                    let Some(&(q, _)) = chars.get(i) else {
                        return Err(syntax(pos, "unbalanced single quote: no closing `'`"));
                    };
                    i += 1;
                    if q == '\'' {
                        break;
                    }
                    w.push(q);
                }
            }
            '"' => {
                let w = cur.get_or_insert_with(|| WordBuf::led(pos, 1));
                i = double_quoted(chars, i + 1, pos, w)?;
            }
            '$' if chars.get(i + 1).map(|c| c.0) == Some('\'') => {
                let w = cur.get_or_insert_with(|| WordBuf::led(pos, 2));
                i = ansi_c(chars, i + 2, pos, w)?;
            }
            '$' if chars.get(i + 1).map(|c| c.0) == Some('"') => {
                let w = cur.get_or_insert_with(|| WordBuf::led(pos, 2));
                i = double_quoted(chars, i + 2, pos, w)?;
            }
            '$' => {
                let w = cur.get_or_insert_with(|| WordBuf::new(pos));
                i = dollar(chars, i, w)?;
            }
            '|' | '&' | ';' | '<' | '>' | '(' | ')' | '`' => {
                return Err(syntax(
                    pos,
                    format!(
                        "shell operator `{c}` is not supported: sonde reads one curl command and never runs a shell (quote it if it is data)"
                    ),
                ));
            }
            _ => {
                cur.get_or_insert_with(|| WordBuf::new(pos)).push(c);
                i += 1;
            }
        }
    }
    if let Some(w) = cur.take() {
        words.push(w.finish());
    }
    if words.is_empty() {
        return Err(syntax(end_of_file, "the file holds no curl command"));
    }
    Ok(words)
}

/// After an unescaped newline ends the command, only blank lines and `#` comments (POSIX) or
/// `REM`/`::` comments (cmd) may follow.
fn finish_after_command(
    chars: &[(char, Pos)],
    mut i: usize,
    words: Vec<Word>,
    continuation: char,
) -> Result<Vec<Word>, ImportError> {
    while i < chars.len() {
        let (c, pos) = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == '#' && continuation == '\\' {
            while i < chars.len() && chars[i].0 != '\n' {
                i += 1;
            }
        } else {
            let starts = command_starts(chars, i);
            if !starts.is_empty() {
                let lines: Vec<String> = std::iter::once(first_line(chars))
                    .chain(starts.iter().map(|p| p.line.to_string()))
                    .collect();
                return Err(syntax(
                    pos,
                    format!(
                        "the file holds {} curl commands (on lines {}); sonde imports one request per file: keep the one you mean",
                        starts.len() + 1,
                        lines.join(", ")
                    ),
                ));
            }
            return Err(syntax(
                pos,
                format!(
                    "text after the end of the curl command (is a `{continuation}` line continuation missing on the line before?)"
                ),
            ));
        }
    }
    Ok(words)
}

/// The line of the first non-blank, non-comment character (where the first command starts).
fn first_line(chars: &[(char, Pos)]) -> String {
    let mut at_line_start = true;
    let mut comment = false;
    for (c, p) in chars {
        if *c == '\n' {
            at_line_start = true;
            comment = false;
            continue;
        }
        if comment || c.is_whitespace() {
            continue;
        }
        if at_line_start && (*c == '#' || *c == ':') {
            comment = true;
            continue;
        }
        return p.line.to_string();
    }
    "1".to_string()
}

/// Positions of every later line (from index `from`) that starts with `curl` as a word.
fn command_starts(chars: &[(char, Pos)], from: usize) -> Vec<Pos> {
    let text: String = chars[from..].iter().map(|c| c.0).collect();
    let mut out = Vec::new();
    let mut offset = from;
    for line in text.split('\n') {
        let trimmed = line.trim_start();
        let lower = trimmed.to_ascii_lowercase();
        let is_curl = ["curl ", "curl\t", "curl.exe "]
            .iter()
            .any(|p| lower.starts_with(p))
            || lower == "curl";
        if is_curl {
            let k = offset + (line.chars().count() - trimmed.chars().count());
            if let Some((_, p)) = chars.get(k) {
                out.push(*p);
            }
        }
        offset += line.chars().count() + 1;
    }
    out
}

/// Reads a `"…"` string body from `i`; returns the index after the closing quote.
fn double_quoted(
    chars: &[(char, Pos)],
    mut i: usize,
    open: Pos,
    w: &mut WordBuf,
) -> Result<usize, ImportError> {
    loop {
        let Some(&(c, _)) = chars.get(i) else {
            return Err(syntax(open, "unbalanced double quote: no closing `\"`"));
        };
        match c {
            '"' => return Ok(i + 1),
            '\\' => match chars.get(i + 1).map(|c| c.0) {
                Some('\n') => i += 2,
                Some(e @ ('$' | '`' | '"' | '\\')) => {
                    w.push(e);
                    i += 2;
                }
                _ => {
                    w.push('\\');
                    i += 1;
                }
            },
            '$' => i = dollar(chars, i, w)?,
            '`' => {
                return Err(syntax(
                    chars[i].1,
                    "command substitution with backquotes is not supported: sonde never runs a shell (paste the value itself)",
                ));
            }
            _ => {
                w.push(c);
                i += 1;
            }
        }
    }
}

/// A `$` outside single quotes at `i`: `$NAME` and `${NAME}` become a variable marker; a `$`
/// that starts no expansion (before a space, a quote, the end) is a literal `$`; any other
/// expansion is refused, since only a shell could say what it becomes. Returns the next index.
fn dollar(chars: &[(char, Pos)], i: usize, w: &mut WordBuf) -> Result<usize, ImportError> {
    let pos = chars[i].1;
    let at = |k: usize| chars.get(k).map(|c| c.0);
    let is_start = |c: char| c.is_ascii_alphabetic() || c == '_';
    let is_name = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let mut name = String::new();
    let next = match at(i + 1) {
        Some(c) if is_start(c) => {
            let mut k = i + 1;
            while let Some(c) = at(k).filter(|c| is_name(*c)) {
                name.push(c);
                k += 1;
            }
            k
        }
        Some('{') => {
            let mut k = i + 2;
            while let Some(c) = at(k).filter(|c| is_name(*c)) {
                name.push(c);
                k += 1;
            }
            let plain = name.chars().next().is_some_and(is_start) && at(k) == Some('}');
            if !plain {
                return Err(syntax(
                    pos,
                    "shell expansion `${…}` with an operator is not supported: sonde never runs a shell (write the value itself, or `${NAME}`)",
                ));
            }
            k + 1
        }
        Some('(') => {
            return Err(syntax(
                pos,
                "command substitution `$(…)` is not supported: sonde never runs a shell (paste the value itself)",
            ));
        }
        Some(c) if c.is_ascii_digit() || "@*#?$!-".contains(c) => {
            return Err(syntax(
                pos,
                format!(
                    "shell parameter `${c}` is not supported: sonde never runs a shell (paste the value itself)"
                ),
            ));
        }
        _ => {
            w.push('$');
            return Ok(i + 1);
        }
    };
    w.push(VAR_OPEN);
    name.chars().for_each(|c| w.push(c));
    w.push(VAR_CLOSE);
    Ok(next)
}

fn hex_digits(chars: &[(char, Pos)], i: usize, max: usize, radix: u32) -> (u32, usize) {
    let mut v = 0u32;
    let mut n = 0;
    while n < max {
        match chars.get(i + n).and_then(|c| c.0.to_digit(radix)) {
            Some(d) => {
                v = v.saturating_mul(radix).saturating_add(d);
                n += 1;
            }
            None => break,
        }
    }
    (v, n)
}

/// Reads a bash `$'…'` (ANSI-C) string body from `i`; returns the index after the closing quote.
// Long by design: one arm per bash escape (`\n`, `\x..`, `\u....`, `\c.`, …), read in place.
fn ansi_c(
    chars: &[(char, Pos)],
    mut i: usize,
    open: Pos,
    w: &mut WordBuf,
) -> Result<usize, ImportError> {
    loop {
        let Some(&(c, _)) = chars.get(i) else {
            return Err(syntax(open, "unbalanced `$'` string: no closing `'`"));
        };
        if c == '\'' {
            return Ok(i + 1);
        }
        if c != '\\' {
            w.push(c);
            i += 1;
            continue;
        }
        let Some(&(e, epos)) = chars.get(i + 1) else {
            return Err(syntax(open, "unbalanced `$'` string: no closing `'`"));
        };
        i += 2;
        let simple = match e {
            'a' => Some('\x07'),
            'b' => Some('\x08'),
            'e' | 'E' => Some('\x1b'),
            'f' => Some('\x0c'),
            'n' => Some('\n'),
            'r' => Some('\r'),
            't' => Some('\t'),
            'v' => Some('\x0b'),
            '\\' | '\'' | '"' | '?' => Some(e),
            _ => None,
        };
        if let Some(s) = simple {
            w.push(s);
            continue;
        }
        match e {
            'x' => {
                let (v, n) = hex_digits(chars, i, 2, 16);
                if n == 0 {
                    w.push('\\');
                    w.push('x');
                } else {
                    w.push_byte(v as u8);
                    i += n;
                }
            }
            '0'..='7' => {
                let (v, n) = hex_digits(chars, i - 1, 3, 8);
                w.push_byte((v & 0xff) as u8);
                i += n - 1;
            }
            'u' | 'U' => {
                let (v, n) = hex_digits(chars, i, if e == 'u' { 4 } else { 8 }, 16);
                if n == 0 {
                    w.push('\\');
                    w.push(e);
                    continue;
                }
                i += n;
                let cp = if (0xD800..0xDC00).contains(&v) {
                    // JavaScript writes astral characters as two UTF-16 escapes.
                    let low = if chars.get(i).map(|c| c.0) == Some('\\')
                        && chars.get(i + 1).map(|c| c.0) == Some('u')
                    {
                        let (lo, ln) = hex_digits(chars, i + 2, 4, 16);
                        (ln == 4 && (0xDC00..0xE000).contains(&lo)).then_some(lo)
                    } else {
                        None
                    };
                    match low {
                        Some(lo) => {
                            i += 6;
                            0x10000 + ((v - 0xD800) << 10) + (lo - 0xDC00)
                        }
                        None => return Err(syntax(epos, "lone UTF-16 surrogate in `\\u` escape")),
                    }
                } else {
                    v
                };
                match char::from_u32(cp) {
                    Some(ch) => w.push(ch),
                    None => return Err(syntax(epos, "invalid character in `\\u` escape")),
                }
            }
            'c' => {
                let Some(&(ctl, _)) = chars.get(i) else {
                    return Err(syntax(open, "unbalanced `$'` string: no closing `'`"));
                };
                w.push_byte((ctl as u32 & 0x1f) as u8);
                i += 1;
            }
            other => {
                // bash keeps unknown escapes as written.
                w.push('\\');
                w.push(other);
            }
        }
    }
}

/// cmd.exe layer: removes carets, joins `^`-newline continuations, stops at the first
/// unescaped newline. Returns characters for the C runtime layer.
fn cmd_layer(chars: &[(char, Pos)]) -> Result<Vec<(char, Pos)>, ImportError> {
    let mut out = Vec::with_capacity(chars.len());
    let mut in_quote = false;
    let mut i = 0;
    // Leading blank lines and `REM`/`::` comment lines are skipped.
    loop {
        while i < chars.len() && chars[i].0.is_whitespace() {
            i += 1;
        }
        let rest: String = chars.iter().skip(i).take(4).map(|c| c.0).collect();
        if rest.starts_with("::") || rest.to_ascii_lowercase().starts_with("rem ") {
            while i < chars.len() && chars[i].0 != '\n' {
                i += 1;
            }
        } else {
            break;
        }
    }
    while i < chars.len() {
        let (c, pos) = chars[i];
        match c {
            '^' if !in_quote => {
                let Some(&(next, npos)) = chars.get(i + 1) else {
                    return Err(syntax(pos, "trailing `^` at the end of the file"));
                };
                if next == '\n' {
                    if only_space_after(chars, i + 2) {
                        return Err(syntax(
                            pos,
                            "trailing `^`: the command continues past the end of the file",
                        ));
                    }
                    i += 2;
                    // `^` newline newline: the second newline is a literal character.
                    if let Some(&('\n', lpos)) = chars.get(i) {
                        out.push(('\n', lpos));
                        i += 1;
                    }
                } else {
                    out.push((next, npos));
                    i += 2;
                }
            }
            '"' => {
                in_quote = !in_quote;
                out.push((c, pos));
                i += 1;
            }
            '\n' => {
                let words_so_far = out.iter().any(|(c, _): &(char, Pos)| !c.is_whitespace());
                if words_so_far {
                    finish_after_command(chars, i + 1, Vec::new(), '^')?;
                    return Ok(out);
                }
                i += 1;
            }
            _ => {
                out.push((c, pos));
                i += 1;
            }
        }
    }
    Ok(out)
}

/// The MS C runtime's argv rules: whitespace separates outside quotes; `"` toggles quoting;
/// `""` inside quotes is a literal quote; 2n backslashes + `"` → n backslashes and a toggle,
/// 2n+1 → n backslashes and a literal `"`; other backslashes are literal.
fn cmd(chars: &[(char, Pos)]) -> Result<Vec<Word>, ImportError> {
    let chars = cmd_layer(chars)?;
    let mut words = Vec::new();
    let mut cur: Option<WordBuf> = None;
    let mut in_q: Option<Pos> = None;
    let mut i = 0;
    while i < chars.len() {
        let (c, pos) = chars[i];
        match c {
            ' ' | '\t' | '\r' if in_q.is_none() => {
                if let Some(w) = cur.take() {
                    words.push(w.finish());
                }
                i += 1;
            }
            '\\' => {
                let mut n = 0;
                while chars.get(i + n).map(|c| c.0) == Some('\\') {
                    n += 1;
                }
                let w = cur.get_or_insert_with(|| WordBuf::new(pos));
                if chars.get(i + n).map(|c| c.0) == Some('"') {
                    (0..n / 2).for_each(|_| w.push('\\'));
                    if n % 2 == 1 {
                        w.push('"');
                    } else {
                        in_q = match in_q {
                            Some(_) => None,
                            None => Some(chars[i + n].1),
                        };
                    }
                    i += n + 1;
                } else {
                    (0..n).for_each(|_| w.push('\\'));
                    i += n;
                }
            }
            '"' => {
                cur.get_or_insert_with(|| WordBuf::new(pos));
                if in_q.is_some() && chars.get(i + 1).map(|c| c.0) == Some('"') {
                    if let Some(w) = cur.as_mut() {
                        w.push('"');
                    }
                    i += 2;
                } else {
                    in_q = match in_q {
                        Some(_) => None,
                        None => Some(pos),
                    };
                    i += 1;
                }
            }
            _ => {
                cur.get_or_insert_with(|| WordBuf::new(pos)).push(c);
                i += 1;
            }
        }
    }
    if let Some(open) = in_q {
        return Err(syntax(open, "unbalanced double quote: no closing `\"`"));
    }
    if let Some(w) = cur.take() {
        words.push(w.finish());
    }
    if words.is_empty() {
        return Err(syntax(
            Pos { line: 1, col: 1 },
            "the file holds no curl command",
        ));
    }
    Ok(words)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    fn texts(src: &str, d: Dialect) -> Vec<String> {
        tokenize(src, d)
            .unwrap()
            .into_iter()
            .map(|w| w.text)
            .collect()
    }

    #[test]
    fn posix_quotes_escapes_and_continuations() {
        let src = "curl 'https://x/a b' \\\n  -H \"A: \\\"q\\\" \\$x\" \\\n  --data-raw $'{\"k\":\"it\\'s\\n\\u00e9\\ud83d\\ude00\\x41\"}'\n";
        assert_eq!(
            texts(src, Dialect::Posix),
            vec![
                "curl",
                "https://x/a b",
                "-H",
                "A: \"q\" $x",
                "--data-raw",
                "{\"k\":\"it's\n\u{e9}\u{1F600}A\"}"
            ]
        );
    }

    #[test]
    fn posix_latin1_hex_escape_falls_back_to_code_point() {
        assert_eq!(
            texts("curl $'caf\\xe9'", Dialect::Posix),
            vec!["curl", "café"]
        );
        assert_eq!(
            texts("curl $'caf\\xc3\\xa9'", Dialect::Posix),
            vec!["curl", "café"]
        );
    }

    #[test]
    fn positions_of_errors() {
        let e = tokenize("curl \\\n  -H 'abc", Dialect::Posix).unwrap_err();
        assert_eq!(e.position(), Some((2, 6)));
        let e = tokenize("curl 'x' \\", Dialect::Posix).unwrap_err();
        assert_eq!(e.position(), Some((1, 10)));
        let e = tokenize("curl 'x'\n -H 'a: b'", Dialect::Posix).unwrap_err();
        assert_eq!(e.position(), Some((2, 2)));
    }

    #[test]
    fn cmd_carets_and_crt_quotes() {
        let src = "curl ^\"https://x/?a=1^&b=2^\" ^\r\n  -H ^\"A: b^\" ^\r\n  --data-raw ^\"^{^\\^\"k^\\^\":^\\^\"%^PATH% 1^\\^\"^}^\"\r\n";
        assert_eq!(
            texts(src, Dialect::Cmd),
            vec![
                "curl",
                "https://x/?a=1&b=2",
                "-H",
                "A: b",
                "--data-raw",
                "{\"k\":\"%PATH% 1\"}"
            ]
        );
        assert_eq!(detect(src), Dialect::Cmd);
        assert_eq!(
            texts("curl \"a \"\"b\"\"\" c\\\\d", Dialect::Cmd),
            vec!["curl", "a \"b\"", "c\\\\d"]
        );
    }

    #[test]
    fn cmd_errors() {
        let e = tokenize("curl ^\"abc ^\n -H x", Dialect::Cmd).unwrap_err();
        assert_eq!(e.position(), Some((1, 7)));
        let e = tokenize("curl x ^\n", Dialect::Cmd).unwrap_err();
        assert_eq!(e.position(), Some((1, 8)));
    }
}
