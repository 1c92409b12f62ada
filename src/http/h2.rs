//! HTTP/2 connections shared between sessions (`ClientConfig::streams_per_connection`, h2load's
//! `-m`): sessions created on one thread (a load thread's virtual users) join groups of that
//! many; a group holds one HTTP/2 connection per origin, and each of its sessions' requests is
//! a stream on it. The first request to find no connection opens it (and carries its dns,
//! connect and tls phases); the group's other requests wait for it and then go as streams on
//! it (`reused`). Does not send requests (`exchange::run_h2`) or open connections (`connect`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::ThreadId;

use bytes::Bytes;
use http_body_util::Full;
use hyper::client::conn::http2;
use tokio::sync::Notify;

use super::connect::Key;
use super::io::IoStats;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic elsewhere cannot leave a slot list half-updated in a way that matters here.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Hands each new session its group: per creating thread, `size` sessions per group.
pub(crate) struct Groups {
    size: u32,
    /// The group being filled on each thread, and how many sessions it has.
    filling: Mutex<HashMap<ThreadId, (Arc<Group>, u32)>>,
}

impl Groups {
    pub(crate) fn new(size: u32) -> Groups {
        Groups {
            size,
            filling: Mutex::new(HashMap::new()),
        }
    }

    /// The group a new session on this thread joins; `None` when nothing is shared (size 1).
    pub(crate) fn join(&self) -> Option<Arc<Group>> {
        if self.size <= 1 {
            return None;
        }
        let mut filling = lock(&self.filling);
        let entry = filling
            .entry(std::thread::current().id())
            .or_insert_with(|| (Arc::new(Group::default()), 0));
        if entry.1 >= self.size {
            *entry = (Arc::new(Group::default()), 0);
        }
        entry.1 += 1;
        Some(entry.0.clone())
    }
}

/// One live shared connection: what a stream on it needs.
#[derive(Clone)]
pub(crate) struct Shared {
    pub sender: http2::SendRequest<Full<Bytes>>,
    pub stats: Arc<IoStats>,
}

enum State {
    /// A member is opening the connection; the others wait for this.
    Opening(Arc<Notify>),
    Ready(Shared),
}

struct Slot {
    key: Key,
    state: State,
}

/// The connections of one group of sessions, one per origin.
#[derive(Default)]
pub(crate) struct Group {
    slots: Mutex<Vec<Slot>>,
}

/// What a request gets from its group.
pub(crate) enum Checkout {
    /// A stream on the group's live connection (perhaps after waiting for another member to
    /// open it).
    Stream(Shared),
    /// No live connection: this request opens it, then `Opener::opened` shares it (dropping
    /// the opener instead lets a waiting member try).
    Open(Opener),
}

impl Group {
    /// The live connection to `key`'s origin, or the duty to open it; waits while another
    /// member is opening it.
    pub(crate) async fn checkout(self: &Arc<Self>, https: bool, host: &str, port: u16) -> Checkout {
        loop {
            let notify: Arc<Notify>;
            let notified;
            {
                let mut slots = lock(&self.slots);
                let found = slots.iter().position(|s| s.key.matches(https, host, port));
                match found.map(|i| (i, &slots[i].state)) {
                    Some((_, State::Ready(s))) if !s.sender.is_closed() => {
                        return Checkout::Stream(s.clone());
                    }
                    Some((_, State::Opening(n))) => {
                        notify = n.clone();
                        // Created under the lock: `notify_waiters` after this reaches it.
                        notified = notify.notified();
                    }
                    Some((i, State::Ready(_))) => {
                        let n = Arc::new(Notify::new());
                        slots[i].state = State::Opening(n.clone());
                        return Checkout::Open(self.opener(n, https, host, port));
                    }
                    None => {
                        let n = Arc::new(Notify::new());
                        slots.push(Slot {
                            key: Key {
                                https,
                                host: host.into(),
                                port,
                            },
                            state: State::Opening(n.clone()),
                        });
                        return Checkout::Open(self.opener(n, https, host, port));
                    }
                }
            }
            notified.await;
        }
    }

    fn opener(self: &Arc<Self>, notify: Arc<Notify>, https: bool, host: &str, port: u16) -> Opener {
        Opener {
            group: self.clone(),
            notify,
            key: Key {
                https,
                host: host.into(),
                port,
            },
            done: false,
        }
    }

    /// Forget every connection (the next request opens a new one).
    pub(crate) fn clear(&self) {
        let drained: Vec<Slot> = std::mem::take(&mut *lock(&self.slots));
        for s in &drained {
            if let State::Opening(n) = &s.state {
                n.notify_waiters();
            }
        }
    }
}

/// The duty to open a group's connection; dropped unfinished (failure, timeout), the slot is
/// freed and the waiting members try themselves.
pub(crate) struct Opener {
    group: Arc<Group>,
    notify: Arc<Notify>,
    key: Key,
    done: bool,
}

impl Opener {
    /// Share the opened connection with the group and wake its waiting members.
    pub(crate) fn opened(mut self, shared: Shared) {
        self.done = true;
        let mut slots = lock(&self.group.slots);
        if let Some(s) = slots.iter_mut().find(|s| s.key == self.key) {
            s.state = State::Ready(shared);
        }
        drop(slots);
        self.notify.notify_waiters();
    }
}

impl Drop for Opener {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        let mut slots = lock(&self.group.slots);
        slots.retain(|s| {
            !(s.key == self.key
                && matches!(&s.state, State::Opening(n) if Arc::ptr_eq(n, &self.notify)))
        });
        drop(slots);
        self.notify.notify_waiters();
    }
}
