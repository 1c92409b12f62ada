//! `Server-Timing` header parsing (W3C Server Timing): `name;dur=12.3;desc="text"` entries,
//! comma-separated, quoted strings honoured. Malformed entries are skipped and counted, never a
//! panic. Knows nothing of requests or reports.

/// One metric the server reported about its own work.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerTimingMetric {
    pub name: String,
    /// Milliseconds, when the entry carried a valid `dur`.
    pub dur_ms: Option<f64>,
    pub desc: Option<String>,
}

/// Parse one `Server-Timing` header value, appending metrics to `out`. Returns how many
/// non-empty entries were malformed and skipped (bad name, unterminated quote, a `dur` that is
/// not a finite non-negative number, a parameter without a name). Unknown parameters are
/// ignored; the first `dur`/`desc` wins.
pub fn parse_server_timing(value: &str, out: &mut Vec<ServerTimingMetric>) -> usize {
    let mut skipped = 0;
    let mut rest = value;
    while !rest.is_empty() {
        let (entry, after, balanced) = split_unquoted(rest, b',');
        rest = after;
        if entry.trim().is_empty() {
            continue;
        }
        match (balanced, parse_entry(entry)) {
            (true, Some(metric)) => out.push(metric),
            _ => skipped += 1,
        }
    }
    skipped
}

fn parse_entry(entry: &str) -> Option<ServerTimingMetric> {
    let (name, mut rest, _) = split_unquoted(entry, b';');
    let name = name.trim();
    if !is_token(name) {
        return None;
    }
    let mut metric = ServerTimingMetric {
        name: name.to_owned(),
        dur_ms: None,
        desc: None,
    };
    let mut seen_dur = false;
    let mut seen_desc = false;
    while !rest.is_empty() {
        let (param, after, _) = split_unquoted(rest, b';');
        rest = after;
        let param = param.trim();
        if param.is_empty() {
            continue;
        }
        let (key, raw) = match param.split_once('=') {
            Some((k, v)) => (k.trim(), Some(v.trim())),
            None => (param, None),
        };
        if !is_token(key) {
            return None;
        }
        let value = match raw {
            Some(v) => Some(param_value(v)?),
            None => None,
        };
        if key.eq_ignore_ascii_case("dur") && !seen_dur {
            seen_dur = true;
            let v = value?;
            let ms: f64 = v.parse().ok()?;
            if !ms.is_finite() || ms < 0.0 {
                return None;
            }
            metric.dur_ms = Some(ms);
        } else if key.eq_ignore_ascii_case("desc") && !seen_desc {
            seen_desc = true;
            metric.desc = value;
        }
    }
    Some(metric)
}

/// A parameter value: a token, or a quoted string with `\` escapes removed.
fn param_value(v: &str) -> Option<String> {
    if let Some(inner) = v.strip_prefix('"') {
        let mut out = String::with_capacity(inner.len());
        let mut chars = inner.chars();
        while let Some(c) = chars.next() {
            match c {
                '\\' => out.push(chars.next()?),
                '"' => {
                    return if chars.as_str().trim().is_empty() {
                        Some(out)
                    } else {
                        None
                    };
                }
                c => out.push(c),
            }
        }
        None
    } else if is_token(v) {
        Some(v.to_owned())
    } else {
        None
    }
}

/// Split `s` at the first `sep` outside a quoted string: (before, after, quotes balanced).
fn split_unquoted(s: &str, sep: u8) -> (&str, &str, bool) {
    let bytes = s.as_bytes();
    let mut in_quote = false;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if in_quote {
            match b {
                b'\\' => i += 1,
                b'"' => in_quote = false,
                _ => {}
            }
        } else if b == b'"' {
            in_quote = true;
        } else if b == sep {
            // `sep` is ASCII, so both sides are on char boundaries.
            return (&s[..i], &s[i + 1..], true);
        }
        i += 1;
    }
    (s, "", !in_quote)
}

/// RFC 9110 token characters.
fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(super::is_tchar)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    fn parse(v: &str) -> (Vec<ServerTimingMetric>, usize) {
        let mut out = Vec::new();
        let skipped = parse_server_timing(v, &mut out);
        (out, skipped)
    }

    #[test]
    fn the_issue_example_parses_per_metric_with_desc() {
        let (m, skipped) = parse(r#"db;dur=150, cache;desc="hit";dur=2"#);
        assert_eq!(skipped, 0);
        assert_eq!(m.len(), 2);
        assert_eq!(m[0].name, "db");
        assert_eq!(m[0].dur_ms, Some(150.0));
        assert_eq!(m[0].desc, None);
        assert_eq!(m[1].name, "cache");
        assert_eq!(m[1].dur_ms, Some(2.0));
        assert_eq!(m[1].desc.as_deref(), Some("hit"));
    }

    #[test]
    fn quoted_desc_may_hold_commas_semicolons_and_escapes() {
        let (m, skipped) = parse(r#"app;desc="a, b; \"c\"";dur=1.5,miss"#);
        assert_eq!(skipped, 0);
        assert_eq!(m[0].desc.as_deref(), Some(r#"a, b; "c""#));
        assert_eq!(m[0].dur_ms, Some(1.5));
        assert_eq!(m[1].name, "miss");
        assert_eq!(m[1].dur_ms, None);
    }

    #[test]
    fn malformed_entries_are_skipped_and_counted() {
        let (m, skipped) =
            parse("ok;dur=1, ;dur=2, bad name;dur=3, x;dur=abc, y;dur=-1, z;dur=NaN, w;=5");
        assert_eq!(
            m.iter().map(|m| m.name.as_str()).collect::<Vec<_>>(),
            ["ok"]
        );
        assert_eq!(skipped, 6);
    }

    #[test]
    fn unterminated_quote_swallows_the_rest_as_one_bad_entry() {
        let (m, skipped) = parse(r#"a;dur=1, b;desc="open, c;dur=2"#);
        assert_eq!(m.len(), 1);
        assert_eq!(skipped, 1);
    }

    #[test]
    fn odd_inputs_never_panic() {
        let odd = [
            "",
            ",",
            ",,,",
            ";",
            "\"",
            "\\",
            "a;desc=\"\\",
            "é;dur=1",
            "a;dur=1e400",
            "a;dur=",
            "a;dur",
            "a;desc",
            "a;desc=\"x\" junk",
            "a;;;dur=3",
            "a ; dur = 4 ; desc = y",
            "a;dur=1;dur=2",
            "\u{0}",
            "a;desc=\"ü\"",
        ];
        for v in odd {
            let _ = parse(v);
        }
        assert_eq!(parse("a ; dur = 4 ; desc = y").0[0].dur_ms, Some(4.0));
        assert_eq!(parse("a;dur=1;dur=2").0[0].dur_ms, Some(1.0));
        assert_eq!(parse("a;;;dur=3").0[0].dur_ms, Some(3.0));
        assert_eq!(parse("a;desc=\"ü\"").0[0].desc.as_deref(), Some("ü"));
        assert_eq!(parse("a;dur=1e400").1, 1);
        assert_eq!(parse("é;dur=1").1, 1);
        assert_eq!(parse(",,,"), (vec![], 0));
    }
}
