//! Scenario errors: one problem, positioned at the offending token, rendered like rustc/hurl
//! (`path:line:col`, the source line, a caret underline, a `help:` with the near match).
//! Owns the rendering and the "did you mean" search; knows nothing of scenario semantics.
//! Carets are placed by display width (an emoji or a CJK character is two cells, a combining
//! mark none, a tab four), so they sit under the token in a terminal.

use std::fmt;
use unicode_width::UnicodeWidthChar;

/// A 1-based position in a source text and the length (in chars) of the token there.
/// `line == 0` means "no position" (the problem comes from the command line or the file system).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Pos {
    pub line: usize,
    pub col: usize,
    pub len: usize,
}

impl Pos {
    pub const NONE: Pos = Pos {
        line: 0,
        col: 0,
        len: 0,
    };
}

/// A problem found while reading or validating, before it is tied to a file.
#[derive(Debug, Clone, PartialEq)]
pub struct Diag {
    pub pos: Pos,
    pub message: String,
    /// Short text printed after the carets.
    pub label: Option<String>,
    pub help: Option<String>,
    /// Further places the same problem occurs (each shown with its own snippet).
    pub also: Vec<Pos>,
}

impl Diag {
    pub fn new(pos: Pos, message: impl Into<String>) -> Diag {
        Diag {
            pos,
            message: message.into(),
            label: None,
            help: None,
            also: Vec::new(),
        }
    }

    #[must_use]
    pub fn also(mut self, also: Vec<Pos>) -> Diag {
        self.also = also;
        self
    }

    pub fn label(mut self, label: impl Into<String>) -> Diag {
        self.label = Some(label.into());
        self
    }

    pub fn help(mut self, help: impl Into<String>) -> Diag {
        self.help = Some(help.into());
        self
    }

    #[must_use]
    pub fn help_opt(mut self, help: Option<String>) -> Diag {
        if help.is_some() {
            self.help = help;
        }
        self
    }
}

/// What went wrong, broadly (the CLI maps all of them to exit code 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The file could not be read.
    Io,
    /// Not valid YAML.
    Syntax,
    /// Valid YAML, but not a valid scenario (or a command-line override made it invalid).
    Invalid,
}

/// A scenario error, ready to print: `Display` renders the whole message with its snippet.
#[derive(Debug, Clone, PartialEq)]
pub struct ScenarioError(Box<Inner>);

#[derive(Debug, Clone, PartialEq)]
struct Inner {
    kind: ErrorKind,
    path: String,
    message: String,
    pos: Pos,
    /// The source line at `pos.line` (tabs kept; the renderer expands them).
    source_line: Option<String>,
    label: Option<String>,
    help: Option<String>,
    /// Further positions of the same problem, each with its source line.
    also: Vec<(Pos, Option<String>)>,
}

impl std::error::Error for ScenarioError {}

/// The source line at a 1-based `line` (without its line ending).
fn line_of(src: &str, line: usize) -> Option<String> {
    if line == 0 {
        return None;
    }
    src.split('\n')
        .nth(line - 1)
        .map(|l| l.strip_suffix('\r').unwrap_or(l).to_string())
}

/// Terminal cells a character takes: tabs expand, zero-width marks take none.
fn cells(c: char) -> usize {
    if c == '\t' {
        TAB.len()
    } else {
        c.width().unwrap_or(0)
    }
}

impl ScenarioError {
    pub(crate) fn from_diag(kind: ErrorKind, path: &str, src: &str, d: Diag) -> ScenarioError {
        let source_line = line_of(src, d.pos.line);
        let also = d.also.iter().map(|p| (*p, line_of(src, p.line))).collect();
        ScenarioError(Box::new(Inner {
            kind,
            path: path.to_string(),
            message: d.message,
            pos: d.pos,
            source_line,
            label: d.label,
            help: d.help,
            also,
        }))
    }

    pub(crate) fn io(path: &str, message: String) -> ScenarioError {
        ScenarioError(Box::new(Inner {
            kind: ErrorKind::Io,
            path: path.to_string(),
            message,
            pos: Pos::NONE,
            source_line: None,
            label: None,
            help: None,
            also: Vec::new(),
        }))
    }

    #[must_use]
    pub fn kind(&self) -> ErrorKind {
        self.0.kind
    }

    /// 1-based line of the offending token; 0 when the error has no position.
    #[must_use]
    pub fn line(&self) -> usize {
        self.0.pos.line
    }

    /// 1-based column (in characters) of the offending token; 0 when it has no position.
    #[must_use]
    pub fn col(&self) -> usize {
        self.0.pos.col
    }

    /// The one-line headline, without position or snippet.
    #[must_use]
    pub fn message(&self) -> &str {
        &self.0.message
    }

    #[must_use]
    pub fn help(&self) -> Option<&str> {
        self.0.help.as_deref()
    }

    /// Further `(line, col)` positions of the same problem (every use of an undefined variable).
    #[must_use]
    pub fn also(&self) -> Vec<(usize, usize)> {
        self.0.also.iter().map(|(p, _)| (p.line, p.col)).collect()
    }

    /// The file (or `--threshold`) the error is about, as given.
    #[must_use]
    pub fn path(&self) -> &str {
        &self.0.path
    }
}

/// Tabs in a displayed line become this many spaces (carets follow).
const TAB: &str = "    ";

/// The numbered source line and the caret line under the token at `pos`.
fn snippet(
    f: &mut fmt::Formatter<'_>,
    pad: &str,
    pos: Pos,
    line: &str,
    label: Option<&str>,
) -> fmt::Result {
    let shown = line.replace('\t', TAB);
    // Caret start and width in terminal cells (tabs expanded, wide characters two cells).
    let before: usize = line
        .chars()
        .take(pos.col.saturating_sub(1))
        .map(cells)
        .sum();
    let width: usize = line
        .chars()
        .skip(pos.col.saturating_sub(1))
        .take(pos.len)
        .map(cells)
        .sum::<usize>()
        .max(1);
    let code = format!("{:>w$} | {}", pos.line, shown, w = pad.len());
    write!(f, "\n{pad} |\n{}", code.trim_end())?;
    write!(f, "\n{pad} | {}{}", " ".repeat(before), "^".repeat(width))?;
    if let Some(label) = label {
        write!(f, " {label}")?;
    }
    Ok(())
}

impl fmt::Display for ScenarioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let e = &self.0;
        writeln!(f, "error: {}", e.message)?;
        let widest = e
            .also
            .iter()
            .map(|(p, _)| p.line)
            .chain([e.pos.line])
            .max()
            .unwrap_or(0);
        let gutter = if widest > 0 {
            widest.to_string().len()
        } else {
            1
        };
        let pad = " ".repeat(gutter);
        if e.pos.line == 0 {
            write!(f, "{pad}--> {}", e.path)?;
        } else {
            write!(f, "{pad}--> {}:{}:{}", e.path, e.pos.line, e.pos.col)?;
        }
        if let (Some(line), true) = (&e.source_line, e.pos.line > 0) {
            snippet(f, &pad, e.pos, line, e.label.as_deref())?;
        }
        for (pos, line) in &e.also {
            write!(f, "\n{pad}::: {}:{}:{}", e.path, pos.line, pos.col)?;
            if let Some(line) = line {
                snippet(f, &pad, *pos, line, None)?;
            }
        }
        if let Some(help) = &e.help {
            write!(f, "\n{pad} = help: {help}")?;
        }
        Ok(())
    }
}

pub use crate::suggest::{did_you_mean, suggest};

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn renders_snippet_with_caret_and_help() {
        let src = "steps:\n  - name: a\n    request:\n      methd: GET\n";
        let d = Diag::new(
            Pos {
                line: 4,
                col: 7,
                len: 5,
            },
            "unknown key `methd` in request",
        )
        .help("did you mean `method`?");
        let e = ScenarioError::from_diag(ErrorKind::Invalid, "s.yaml", src, d);
        assert_eq!(
            e.to_string(),
            "error: unknown key `methd` in request\n --> s.yaml:4:7\n  |\n4 |       methd: GET\n  |       ^^^^^\n  = help: did you mean `method`?"
        );
        assert_eq!((e.line(), e.col()), (4, 7));
    }

    #[test]
    fn tabs_are_expanded_under_the_caret() {
        let d = Diag::new(
            Pos {
                line: 1,
                col: 2,
                len: 1,
            },
            "tab",
        );
        let e = ScenarioError::from_diag(ErrorKind::Syntax, "t.yaml", "\tb: 1", d);
        assert!(e.to_string().ends_with("1 |     b: 1\n  |     ^"), "{e}");
    }

    #[test]
    fn carets_follow_display_width_not_characters() {
        // Two emoji (two cells each) and a combining accent (none) before the token.
        let line = "url: \"/🚀🚀/e\u{301}/{{x}}\"";
        let col = line.chars().position(|c| c == '{').unwrap() + 1;
        let d = Diag::new(
            Pos {
                line: 1,
                col,
                len: 5,
            },
            "undefined variable `x`",
        );
        let e = ScenarioError::from_diag(ErrorKind::Invalid, "e.yaml", line, d);
        let text = e.to_string();
        let carets = text.lines().last().unwrap();
        let code = text.lines().rev().nth(1).unwrap();
        // The caret starts in the same terminal cell as `{{` in the code line.
        let cell = |s: &str, upto: usize| -> usize { s[..upto].chars().map(cells).sum() };
        assert_eq!(
            cell(carets, carets.find('^').unwrap()),
            cell(code, code.find("{{").unwrap()),
            "{text}"
        );
        assert!(carets.ends_with("^^^^^"), "{text}");
    }

    #[test]
    fn further_positions_get_their_own_snippets() {
        let src = "a: {{x}}\nb: 1\nc: {{x}}\n";
        let at = |line| Pos {
            line,
            col: 4,
            len: 5,
        };
        let d = Diag::new(at(1), "undefined variable `x`").also(vec![at(3)]);
        let e = ScenarioError::from_diag(ErrorKind::Invalid, "m.yaml", src, d);
        assert_eq!(
            e.to_string(),
            "error: undefined variable `x`\n --> m.yaml:1:4\n  |\n1 | a: {{x}}\n  |    ^^^^^\n ::: m.yaml:3:4\n  |\n3 | c: {{x}}\n  |    ^^^^^"
        );
        assert_eq!(e.also(), vec![(3, 4)]);
    }

    #[test]
    fn suggestions_pick_near_matches_only() {
        let keys = ["method", "url", "headers", "query", "cookies", "body"];
        assert_eq!(suggest("methd", keys), Some("method".into()));
        assert_eq!(suggest("header", keys), Some("headers".into()));
        assert_eq!(suggest("zzzzzz", keys), None);
        assert_eq!(suggest("ur", keys), Some("url".into()));
    }
}
