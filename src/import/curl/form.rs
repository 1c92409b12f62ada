//! `-F`/`--form-string` parts and the multipart body curl 7.88 builds from them. Never reads a
//! file: a part that would (`@file`, `<file`) is refused.

use super::err_at;
use super::options::refused;
use super::tokenize::Pos;
use crate::import::ImportError;

/// One part of a `-F` multipart body.
pub(super) struct FormPart {
    name: String,
    content: String,
    content_type: Option<String>,
    filename: Option<String>,
}

/// Reads a `-F` value the way curl 7.88 does: `name=content`, the content either a `"…"` string
/// (with `\"` and `\\` escapes) or text up to the first `;`; then `;type=…` and
/// `;filename=…` (other parameters are dropped, as curl drops them with a warning). A content
/// starting with `@` or `<` reads a file and is refused.
// Long by design: one scanner over curl's `-F` grammar (quoted or bare content, then
// parameters), following curl's own order of checks.
pub(super) fn form_part(
    v: &str,
    name: &str,
    pos: Pos,
    literal: bool,
) -> Result<FormPart, ImportError> {
    let Some((field, rest)) = v.split_once('=') else {
        return Err(err_at(pos, format!("{name} needs `name=content`")));
    };
    if field.contains(['"', '\r', '\n']) {
        return Err(err_at(
            pos,
            format!("{name}: a field name with `\"` or a line break is not supported"),
        ));
    }
    let part = |content: String| FormPart {
        name: field.to_string(),
        content,
        content_type: None,
        filename: None,
    };
    if literal {
        return Ok(part(rest.to_string()));
    }
    if rest.starts_with(['@', '<']) {
        return Err(refused(
            pos,
            &format!("{name} NAME={}FILE", &rest[..1]),
            "it reads a file, which sonde does not do: paste the content as a value",
        ));
    }
    let (content, params) = if let Some(q) = rest.strip_prefix('"') {
        let mut out = String::new();
        let mut chars = q.char_indices();
        let mut end = None;
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some((_, e @ ('"' | '\\'))) => out.push(e),
                    Some((_, e)) => {
                        out.push('\\');
                        out.push(e);
                    }
                    None => out.push('\\'),
                },
                '"' => {
                    end = Some(i + 1);
                    break;
                }
                c => out.push(c),
            }
        }
        let Some(end) = end else {
            return Err(err_at(pos, format!("{name}: unbalanced `\"` in the value")));
        };
        (out, &q[end..])
    } else {
        match rest.find(';') {
            Some(i) => (rest[..i].to_string(), &rest[i..]),
            None => (rest.to_string(), ""),
        }
    };
    let mut p = part(content);
    for param in params.split(';').map(str::trim).filter(|x| !x.is_empty()) {
        let (k, v) = param.split_once('=').unwrap_or((param, ""));
        let v = v.trim_matches('"').to_string();
        match k.trim() {
            "type" => p.content_type = Some(v),
            "filename" => p.filename = Some(v),
            "headers" | "encoder" => {
                return Err(refused(
                    pos,
                    &format!("{name} …;{k}="),
                    "per-part headers and encoders are not imported",
                ));
            }
            _ => {}
        }
    }
    Ok(p)
}

/// The content type curl gives a part with a file name and no `type=`.
fn type_for_filename(f: &str) -> &'static str {
    let ext = f.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase());
    match ext.as_deref() {
        Some("gif") => "image/gif",
        Some("jpg" | "jpeg") => "image/jpeg",
        Some("png") => "image/png",
        Some("svg") => "image/svg+xml",
        Some("txt") => "text/plain",
        Some("htm" | "html") => "text/html",
        Some("xml") => "application/xml",
        _ => "application/octet-stream",
    }
}

/// The multipart body curl sends for `parts`, with a boundary of curl's shape that is fixed by
/// the content (so the file is stable) and appears in no part.
pub(super) fn multipart(parts: &[FormPart]) -> (String, Vec<u8>) {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for p in parts {
        for b in p.name.bytes().chain(p.content.bytes()) {
            h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    }
    let mut boundary = format!("------------------------{h:016x}");
    while parts.iter().any(|p| p.content.contains(&boundary)) {
        h = h.wrapping_mul(0x0100_0000_01b3).wrapping_add(1);
        boundary = format!("------------------------{h:016x}");
    }
    let mut body = Vec::new();
    for p in parts {
        body.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
        body.extend_from_slice(
            format!("Content-Disposition: form-data; name=\"{}\"", p.name).as_bytes(),
        );
        if let Some(f) = &p.filename {
            body.extend_from_slice(format!("; filename=\"{f}\"").as_bytes());
        }
        body.extend_from_slice(b"\r\n");
        let ct = p.content_type.clone().or_else(|| {
            p.filename
                .as_deref()
                .map(|f| type_for_filename(f).to_string())
        });
        if let Some(ct) = ct {
            body.extend_from_slice(format!("Content-Type: {ct}\r\n").as_bytes());
        }
        body.extend_from_slice(b"\r\n");
        body.extend_from_slice(p.content.as_bytes());
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (boundary, body)
}
