//! `stream:` on a request step: subscribe to an event stream (Server-Sent Events or a
//! WebSocket) and wait for an event that passes the step's `expect`, as `poll:` waits for a
//! response that does. Read into `plan::StreamSpec`; `since` is checked with `poll`'s.
//!
//! ```yaml
//! - name: pushed
//!   request:
//!     url: /investments/{{investment_id}}/events
//!     headers: { Authorization: "Bearer {{token}}" }
//!   stream: { protocol: sse, event: status, timeout: 30s, since: invest }
//!   expect:
//!     json: { "$.status": { matches: "^(completed|failed)$" } }
//! ```

use super::error::{Diag, Pos, did_you_mean};
use super::reader::{Map, R, Reader};
use super::yaml::Node;
use crate::plan::{StreamProtocol, StreamSpec};
use std::time::Duration;

const KEYS: [&str; 4] = ["protocol", "event", "timeout", "since"];
const PROTOCOLS: [&str; 2] = ["sse", "websocket"];
const ONE_HOUR: Duration = Duration::from_secs(3600);

/// Reads `stream:` of step `name` (whose map is `step`); returns the spec and `since` with
/// its position for the cross-step check.
pub fn read_stream(
    r: &Reader<'_>,
    n: &Node,
    step: &Map<'_>,
    name: &str,
) -> R<(StreamSpec, Option<(String, Pos)>)> {
    refuse_request_keys(r, n, step, name)?;
    let m = r.map(n, "`stream`")?;
    m.allow(&KEYS, "stream")?;
    let protocol = protocol(r, n, &m, name)?;
    let event = m.get("event").map(|e| r.string(e, "`event`")).transpose()?;
    if let (Some(e), Some(node)) = (&event, m.get("event"))
        && e.trim().is_empty()
    {
        return Err(Diag::new(node.pos, "`event` is empty")
            .help("name the event to wait for (`event: status`), or leave `event` out"));
    }
    let timeout = match m.get("timeout") {
        Some(t) => r.positive_duration(t, "stream `timeout`", ONE_HOUR)?,
        None => Duration::from_secs(30),
    };
    let since = match m.get("since") {
        Some(s) => Some((r.string(s, "`since`")?, s.pos)),
        None => None,
    };
    let spec = StreamSpec {
        protocol,
        event,
        timeout,
        since: since.as_ref().map(|(s, _)| s.clone()),
    };
    Ok((spec, since))
}

/// The step keys a stream step refuses: `poll`, its own `timeout`, `follow_redirects`, and a
/// request with a body or a method other than GET.
fn refuse_request_keys(r: &Reader<'_>, n: &Node, step: &Map<'_>, name: &str) -> R<()> {
    let at = step.key_pos("stream").unwrap_or(n.pos);
    if step.get("poll").is_some() {
        return Err(
            Diag::new(at, format!("step `{name}` has both `poll` and `stream`")).help(
                "`poll` repeats a request until it passes; `stream` waits for a pushed event: \
                 pick one",
            ),
        );
    }
    if let Some(pos) = step.key_pos("timeout") {
        return Err(Diag::new(
            pos,
            format!("stream step `{name}` takes its timeout in `stream`"),
        )
        .help("write `stream: { ..., timeout: 30s }`: it bounds the whole wait"));
    }
    if let Some(pos) = step.key_pos("follow_redirects") {
        return Err(Diag::new(
            pos,
            format!("stream step `{name}` does not follow redirects"),
        )
        .help("remove `follow_redirects`: point `url` at the stream itself"));
    }
    if let Some(req_node) = step.get("request") {
        let req = r.map(req_node, "`request`")?;
        let refused = |pos: Pos| {
            Diag::new(
                pos,
                format!("stream step `{name}` opens its stream with a GET"),
            )
            .help("remove `method`/`body`: a stream step subscribes, it sends no body")
        };
        if let Some(pos) = req.key_pos("body") {
            return Err(refused(pos));
        }
        if let Some(method) = req.get("method")
            && !r.string(method, "`method`")?.eq_ignore_ascii_case("GET")
        {
            return Err(refused(method.pos));
        }
    }
    Ok(())
}

/// The stream's required `protocol`.
fn protocol(r: &Reader<'_>, n: &Node, m: &Map<'_>, name: &str) -> R<StreamProtocol> {
    let Some(proto_node) = m.get("protocol") else {
        return Err(
            Diag::new(n.pos, format!("stream step `{name}` has no `protocol`"))
                .help("add `protocol: sse` or `protocol: websocket`"),
        );
    };
    let proto = r.string(proto_node, "`protocol`")?;
    match proto.as_str() {
        "sse" => Ok(StreamProtocol::Sse),
        "websocket" => Ok(StreamProtocol::WebSocket),
        other => {
            let d = Diag::new(proto_node.pos, format!("unknown stream protocol `{other}`"));
            Err(match did_you_mean(other, PROTOCOLS) {
                Some(hint) => d.help(hint),
                None => d.help("use `sse` or `websocket`"),
            })
        }
    }
}
