//! Request bodies: size limit, content type, JSON parsing with the path of the offending
//! field (a key repeated in one object is refused: which of the two counts would be a guess),
//! and typed field readers that answer 422 naming the field (text without control
//! characters). No business rules.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode, header};
use serde_json::{Map, Value};

use super::problem::ApiError;

/// Bodies above this size are refused with 413 before parsing.
pub(crate) const MAX_BODY_BYTES: usize = 1024 * 1024;

/// Reads a JSON object body. `Err` names the field (or `.` for the whole body) when parsing
/// fails. An empty body counts as `{}` when `empty_is_object`.
pub(crate) fn json_object(
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
    empty_is_object: bool,
) -> Result<Map<String, Value>, ApiError> {
    let body = body.map_err(|rejection| {
        let status = rejection.status();
        if status == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                status,
                "body-too-large",
                format!("the body is larger than {MAX_BODY_BYTES} bytes"),
            )
            .with_field(".")
        } else {
            ApiError::new(
                status,
                "unreadable-body",
                "the request body could not be read",
            )
        }
    })?;
    if let Some(ct) = headers.get(header::CONTENT_TYPE) {
        let ct = ct.to_str().unwrap_or("").to_ascii_lowercase();
        let essence = ct.split(';').next().unwrap_or("").trim();
        if !(essence == "application/json" || essence.ends_with("+json")) {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported-media-type",
                "send JSON with Content-Type: application/json",
            ));
        }
    }
    if body.iter().all(u8::is_ascii_whitespace) {
        return if empty_is_object {
            Ok(Map::new())
        } else {
            Err(
                ApiError::bad_request("malformed-json", "the body is empty; send a JSON object")
                    .with_field("."),
            )
        };
    }
    let mut de = serde_json::Deserializer::from_slice(&body);
    let value: Value = serde_path_to_error::deserialize::<_, Strict>(&mut de)
        .map_err(|err| {
            let path = err.path().to_string();
            let inner = err.inner().to_string();
            if let Some(key) = inner
                .strip_prefix(DUPLICATE)
                .and_then(|rest| rest.split('`').next())
            {
                let field = if path == "." || path.is_empty() {
                    key.to_string()
                } else {
                    format!("{path}.{key}")
                };
                return ApiError::bad_request(
                    "duplicate-key",
                    format!("the key `{key}` appears more than once in one object; send it once"),
                )
                .with_field(field);
            }
            ApiError::bad_request("malformed-json", format!("malformed JSON: {inner}"))
                .with_field(path)
        })?
        .0;
    de.end().map_err(|err| {
        ApiError::bad_request("malformed-json", format!("malformed JSON: {err}")).with_field(".")
    })?;
    match value {
        Value::Object(map) => Ok(map),
        other => Err(ApiError::invalid(
            ".",
            format!("the body must be a JSON object, not {}", kind(&other)),
        )),
    }
}

/// How a repeated key's error message starts (then the key, then a backquote).
const DUPLICATE: &str = "duplicate key `";

/// A JSON value read like `serde_json::Value`, except that a key repeated in one object is an
/// error (serde_json keeps the last one silently).
struct Strict(Value);

impl<'de> serde::Deserialize<'de> for Strict {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(StrictVisitor).map(Strict)
    }
}

struct StrictVisitor;

impl<'de> serde::de::Visitor<'de> for StrictVisitor {
    type Value = Value;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_some<D: serde::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(StrictVisitor)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut v = Vec::new();
        while let Some(Strict(x)) = seq.next_element()? {
            v.push(x);
        }
        Ok(Value::Array(v))
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut m = Map::new();
        while let Some(k) = map.next_key::<String>()? {
            if m.contains_key(&k) {
                return Err(serde::de::Error::custom(format!("{DUPLICATE}{k}`")));
            }
            let Strict(v) = map.next_value()?;
            m.insert(k, v);
        }
        Ok(Value::Object(m))
    }
}

/// "a string", "an array"... for error messages.
pub(crate) fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "an integer",
        Value::Number(_) => "a fractional number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Rejects fields not in `allowed` (a typo must not silently fall back to a default).
pub(crate) fn only_fields(
    map: &Map<String, Value>,
    prefix: &str,
    allowed: &[&str],
) -> Result<(), ApiError> {
    match map.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(unknown) => Err(ApiError::invalid(
            format!("{prefix}{unknown}"),
            format!("unknown field; expected one of: {}", allowed.join(", ")),
        )),
        None => Ok(()),
    }
}

/// A required integer in `min..=max`.
pub(crate) fn required_int(
    map: &Map<String, Value>,
    name: &str,
    min: i64,
    max: i64,
) -> Result<i64, ApiError> {
    match map.get(name) {
        None => Err(ApiError::invalid(name, "is required")),
        Some(v) => int_value(v, name, min, max),
    }
}

pub(crate) fn int_value(v: &Value, name: &str, min: i64, max: i64) -> Result<i64, ApiError> {
    let range = || format!("must be an integer between {min} and {max}");
    match v {
        Value::Number(n) => match n.as_i64() {
            Some(i) if (min..=max).contains(&i) => Ok(i),
            Some(i) => Err(ApiError::invalid(name, format!("{} (got {i})", range()))),
            None if n.is_u64() => Err(ApiError::invalid(name, format!("{} (got {n})", range()))),
            None => Err(ApiError::invalid(
                name,
                format!("{}, not a fractional number (got {n})", range()),
            )),
        },
        other => Err(ApiError::invalid(
            name,
            format!("{}, not {}", range(), kind(other)),
        )),
    }
}

/// An optional string whose length (in characters) is in `1..=max_chars`.
pub(crate) fn optional_str(
    map: &Map<String, Value>,
    prefix: &str,
    name: &str,
    max_chars: usize,
) -> Result<Option<String>, ApiError> {
    match map.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => {
            let s = s.trim();
            let n = s.chars().count();
            if let Some((i, c)) = s.chars().enumerate().find(|(_, c)| c.is_control()) {
                return Err(ApiError::invalid(
                    format!("{prefix}{name}"),
                    format!(
                        "must not contain control characters (U+{:04X} at character {})",
                        u32::from(c),
                        i + 1
                    ),
                ));
            }
            if n == 0 || n > max_chars {
                Err(ApiError::invalid(
                    format!("{prefix}{name}"),
                    format!("must be 1 to {max_chars} characters"),
                ))
            } else {
                Ok(Some(s.to_string()))
            }
        }
        Some(other) => Err(ApiError::invalid(
            format!("{prefix}{name}"),
            format!("must be a string, not {}", kind(other)),
        )),
    }
}

pub(crate) fn optional_bool(
    map: &Map<String, Value>,
    prefix: &str,
    name: &str,
) -> Result<Option<bool>, ApiError> {
    match map.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(other) => Err(ApiError::invalid(
            format!("{prefix}{name}"),
            format!("must be true or false, not {}", kind(other)),
        )),
    }
}
