//! Variable lookup for one iteration of one virtual user, in layers: captures, the data row,
//! built-ins (`vu`, `iteration`, `uuid`, `timestamp_ms`), the environment's vars, then setup's
//! captures. Nothing here allocates on lookup except a built-in's first use in an iteration.

use crate::plan::Vars;
use serde_json::Value;
use std::cell::OnceCell;
use std::collections::BTreeMap;

pub type VarMap = BTreeMap<String, Value>;

pub struct Scope<'a> {
    pub captures: &'a VarMap,
    pub row: Option<&'a VarMap>,
    pub builtins: &'a Builtins,
    pub env: &'a VarMap,
    pub shared: &'a VarMap,
}

/// Per-iteration built-in variables. `uuid` is fixed for the iteration so a step can reuse it
/// (e.g. an idempotency key sent twice on purpose). `uuid` and `timestamp_ms` are made on first
/// use: an iteration whose steps use neither pays nothing for them.
pub struct Builtins {
    pub vu: Value,
    pub iteration: Value,
    uuid: OnceCell<Value>,
    timestamp_ms: OnceCell<Value>,
    /// The W3C trace id every request of this iteration carries (`crate::trace`).
    pub trace_id: u128,
}

impl Builtins {
    #[must_use]
    pub fn new(vu: u64, iteration: u64) -> Builtins {
        Builtins {
            vu: Value::from(vu),
            iteration: Value::from(iteration),
            uuid: OnceCell::new(),
            timestamp_ms: OnceCell::new(),
            trace_id: crate::trace::new_trace_id(),
        }
    }

    pub fn uuid(&self) -> &Value {
        self.uuid.get_or_init(|| Value::String(uuid_v4()))
    }

    pub fn timestamp_ms(&self) -> &Value {
        self.timestamp_ms.get_or_init(|| {
            let now_ms = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64);
            Value::from(now_ms)
        })
    }
}

/// A random (version 4 layout) UUID from a fast non-cryptographic generator: unique enough for
/// idempotency keys and test data, never used for security.
#[must_use]
pub fn uuid_v4() -> String {
    let hi = fastrand::u64(..);
    let lo = fastrand::u64(..);
    let hi = (hi & 0xffff_ffff_ffff_0fff) | 0x0000_0000_0000_4000;
    let lo = (lo & 0x3fff_ffff_ffff_ffff) | 0x8000_0000_0000_0000;
    format!(
        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        hi >> 32,
        (hi >> 16) & 0xffff,
        hi & 0xffff,
        lo >> 48,
        lo & 0xffff_ffff_ffff
    )
}

impl Vars for Scope<'_> {
    fn get_var(&self, name: &str) -> Option<&Value> {
        if let Some(v) = self.captures.get(name) {
            return Some(v);
        }
        if let Some(v) = self.row.and_then(|r| r.get(name)) {
            return Some(v);
        }
        match name {
            "vu" => return Some(&self.builtins.vu),
            "iteration" => return Some(&self.builtins.iteration),
            "uuid" => return Some(self.builtins.uuid()),
            "timestamp_ms" => return Some(self.builtins.timestamp_ms()),
            _ => {}
        }
        self.env.get(name).or_else(|| self.shared.get(name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layers_resolve_in_order() {
        let mut cap = VarMap::new();
        cap.insert("a".into(), Value::from("capture"));
        let mut row = VarMap::new();
        row.insert("a".into(), Value::from("row"));
        row.insert("b".into(), Value::from("row"));
        let mut env = VarMap::new();
        env.insert("c".into(), Value::from("env"));
        env.insert("vu".into(), Value::from("shadowed"));
        let mut shared = VarMap::new();
        shared.insert("c".into(), Value::from("shared"));
        shared.insert("d".into(), Value::from("shared"));
        let b = Builtins::new(3, 9);
        let s = Scope {
            captures: &cap,
            row: Some(&row),
            builtins: &b,
            env: &env,
            shared: &shared,
        };
        assert_eq!(s.get_var("a"), Some(&Value::from("capture")));
        assert_eq!(s.get_var("b"), Some(&Value::from("row")));
        assert_eq!(s.get_var("c"), Some(&Value::from("env")));
        assert_eq!(s.get_var("d"), Some(&Value::from("shared")));
        assert_eq!(s.get_var("vu"), Some(&Value::from(3u64)));
        assert_eq!(s.get_var("nope"), None);
        let u = uuid_v4();
        assert_eq!(u.len(), 36);
        assert_eq!(&u[14..15], "4");
        assert_ne!(uuid_v4(), u);
    }
}
