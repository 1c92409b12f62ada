//! The item-by-item difference between two environments (`repro`/`bisect` start from it), and
//! applying a subset of differences to build a probe. Values print redacted when secret.

use super::env::{EnvSpec, ItemKind, display_value, is_secret};
use crate::redact;
use std::collections::BTreeMap;
use std::fmt;

/// One difference between two environments. `None` means the item is absent on that side.
#[derive(Clone, PartialEq, Eq)]
pub struct Difference {
    pub kind: ItemKind,
    /// The name as spelled on the bad side (or the good side when absent there).
    pub name: String,
    pub good: Option<String>,
    pub bad: Option<String>,
}

impl Difference {
    /// Whether either side's value is secret (its values print redacted).
    #[must_use]
    pub fn is_secret(&self) -> bool {
        [&self.good, &self.bad].iter().any(|v| {
            v.as_deref()
                .is_some_and(|v| is_secret(self.kind, &self.name, v))
        })
    }

    /// A `session`-like credential: `bisect` keeps it from the bad side unless told otherwise.
    #[must_use]
    pub fn is_identity(&self) -> bool {
        match self.kind {
            ItemKind::Cookie => redact::is_secret_cookie_name(&self.name),
            ItemKind::Header => {
                let n = self.name.to_ascii_lowercase();
                n == "authorization" || n == "proxy-authorization" || n.contains("session")
            }
            _ => false,
        }
    }

    fn shown(&self, v: &Option<String>) -> String {
        match v {
            None => "(absent)".to_string(),
            Some(v) if self.kind == ItemKind::Body => {
                format!("{:?}", display_value(self.kind, &self.name, v))
            }
            Some(v) if self.is_secret() => {
                format!("{} ({})", redact::REDACTED, redact::fingerprint(v))
            }
            Some(v) => format!("{v:?}"),
        }
    }
}

impl fmt::Debug for Difference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{} good={} bad={}",
            self.kind,
            self.name,
            self.shown(&self.good),
            self.shown(&self.bad)
        )
    }
}

impl fmt::Display for Difference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// Keys in first-seen order, and key → (name as spelled, joined values).
type Index = (
    Vec<(ItemKind, String)>,
    BTreeMap<(ItemKind, String), (String, String)>,
);

/// Items grouped by key; repeated keys (a header sent twice) join their values with `, `.
fn index(env: &EnvSpec) -> Index {
    let mut order = Vec::new();
    let mut map: BTreeMap<(ItemKind, String), (String, String)> = BTreeMap::new();
    for it in env.items() {
        let key = it.key();
        if let Some((_, v)) = map.get_mut(&key) {
            v.push_str(", ");
            v.push_str(&it.value);
        } else {
            order.push(key.clone());
            map.insert(key, (it.name, it.value));
        }
    }
    (order, map)
}

/// The atomic differences between two environments, in the order items appear (bad side
/// first, then items only the good side has). Items equal on both sides are not listed.
#[must_use]
pub fn diff(good: &EnvSpec, bad: &EnvSpec) -> Vec<Difference> {
    let (good_order, good_map) = index(good);
    let (bad_order, bad_map) = index(bad);
    let mut out = Vec::new();
    for key in bad_order
        .iter()
        .chain(good_order.iter().filter(|k| !bad_map.contains_key(*k)))
    {
        let g = good_map.get(key);
        let b = bad_map.get(key);
        if g.map(|x| &x.1) == b.map(|x| &x.1) {
            continue;
        }
        let name = b.or(g).map(|x| x.0.clone()).unwrap_or_default();
        out.push(Difference {
            kind: key.0,
            name,
            good: g.map(|x| x.1.clone()),
            bad: b.map(|x| x.1.clone()),
        });
    }
    out
}

/// Applies differences onto an environment, taking each one's `bad` side (used to build a
/// `bisect` probe: the good environment plus a subset of the bad values).
#[must_use]
pub fn apply_bad(env: &EnvSpec, diffs: &[&Difference]) -> EnvSpec {
    let mut e = env.clone();
    for d in diffs {
        e.set(d.kind, &d.name, d.bad.as_deref());
    }
    e
}
