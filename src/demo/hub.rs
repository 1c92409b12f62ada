//! In-process publish/subscribe hub: `publish(topic, event)` never blocks; each subscriber of a
//! topic gets every event in order, or, if it falls behind, one `Lagged` notice and then nothing.
//! The last few events of each recent topic are retained (bounded per topic and in topics), so
//! a subscriber that reconnects can replay what it missed. Knows nothing about investments or
//! HTTP.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use tokio::sync::broadcast;

type Topics<T> = Mutex<HashMap<String, broadcast::Sender<T>>>;

/// Events retained per topic for replay.
const RETAINED_PER_TOPIC: usize = 8;
/// Topics whose events are retained; the least recently published is forgotten first.
const RETAINED_TOPICS: usize = 10_000;

/// The retained events: per topic, the last few; and the topics in publish order.
#[derive(Debug)]
struct Retained<T> {
    events: HashMap<String, VecDeque<T>>,
    order: VecDeque<String>,
}

/// A topic-keyed broadcast hub. Cloning shares the same hub.
#[derive(Debug)]
pub struct Hub<T> {
    topics: Arc<Topics<T>>,
    retained: Arc<Mutex<Retained<T>>>,
    capacity: usize,
}

impl<T> Clone for Hub<T> {
    fn clone(&self) -> Self {
        Self {
            topics: Arc::clone(&self.topics),
            retained: Arc::clone(&self.retained),
            capacity: self.capacity,
        }
    }
}

/// What a subscriber receives.
#[derive(Debug, Clone, PartialEq)]
pub enum Delivery<T> {
    Event(T),
    /// The subscriber fell more than the hub's capacity behind and was dropped; `missed` events
    /// were lost. Nothing follows this notice.
    Lagged {
        missed: u64,
    },
}

/// One subscriber's end of a topic.
#[derive(Debug)]
pub struct Subscription<T> {
    // Option so Drop can release the receiver before checking whether the topic is now unused.
    rx: Option<broadcast::Receiver<T>>,
    topic: String,
    topics: Weak<Topics<T>>,
}

fn lock<T>(topics: &Topics<T>) -> MutexGuard<'_, HashMap<String, broadcast::Sender<T>>> {
    // A panic while holding this lock cannot leave the map half-updated (single inserts and
    // removes), so a poisoned lock is still safe to use.
    topics
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl<T: Clone + Send + 'static> Hub<T> {
    /// `capacity` is how many events a subscriber may fall behind before it is dropped.
    #[must_use]
    pub fn new(capacity: usize) -> Self {
        Self {
            topics: Arc::new(Mutex::new(HashMap::new())),
            retained: Arc::new(Mutex::new(Retained {
                events: HashMap::new(),
                order: VecDeque::new(),
            })),
            capacity: capacity.max(1),
        }
    }

    /// The last events published on `topic` (oldest first), if it is still retained.
    #[must_use]
    pub fn retained(&self, topic: &str) -> Vec<T> {
        let r = self
            .retained
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        r.events
            .get(topic)
            .map(|q| q.iter().cloned().collect())
            .unwrap_or_default()
    }

    fn retain(&self, topic: &str, event: &T) {
        // Same reasoning as `lock`: every update below leaves the maps consistent.
        let mut r = self
            .retained
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if !r.events.contains_key(topic) {
            r.order.push_back(topic.to_string());
            while r.order.len() > RETAINED_TOPICS {
                if let Some(old) = r.order.pop_front() {
                    r.events.remove(&old);
                }
            }
        }
        let q = r.events.entry(topic.to_string()).or_default();
        q.push_back(event.clone());
        while q.len() > RETAINED_PER_TOPIC {
            q.pop_front();
        }
    }

    /// Sends `event` to every current subscriber of `topic`; returns how many there were.
    /// Never waits: a slow subscriber only loses its own place (see `Delivery::Lagged`).
    /// The event is retained for replay either way.
    pub fn publish(&self, topic: &str, event: T) -> usize {
        self.retain(topic, &event);
        let mut topics = lock(&self.topics);
        let Some(tx) = topics.get(topic) else {
            return 0;
        };
        if let Ok(n) = tx.send(event) {
            n
        } else {
            // Nobody listens any more: forget the topic so the map does not grow forever.
            topics.remove(topic);
            0
        }
    }

    /// Subscribes to `topic`; events published from now on will be delivered.
    #[must_use]
    pub fn subscribe(&self, topic: &str) -> Subscription<T> {
        let mut topics = lock(&self.topics);
        let rx = if let Some(tx) = topics.get(topic) {
            tx.subscribe()
        } else {
            let (tx, rx) = broadcast::channel(self.capacity);
            topics.insert(topic.to_string(), tx);
            rx
        };
        Subscription {
            rx: Some(rx),
            topic: topic.to_string(),
            topics: Arc::downgrade(&self.topics),
        }
    }

    /// Number of topics with a live channel (for tests and diagnostics).
    #[must_use]
    pub fn topic_count(&self) -> usize {
        lock(&self.topics).len()
    }
}

impl<T: Clone> Subscription<T> {
    /// The next delivery, in publish order. `None` once the subscriber was dropped for lagging
    /// (after its `Lagged` notice) or the hub is gone.
    pub async fn recv(&mut self) -> Option<Delivery<T>> {
        let rx = self.rx.as_mut()?;
        match rx.recv().await {
            Ok(event) => Some(Delivery::Event(event)),
            Err(broadcast::error::RecvError::Lagged(missed)) => {
                self.rx = None;
                Some(Delivery::Lagged { missed })
            }
            Err(broadcast::error::RecvError::Closed) => {
                self.rx = None;
                None
            }
        }
    }

    #[must_use]
    pub fn topic(&self) -> &str {
        &self.topic
    }
}

impl<T> Drop for Subscription<T> {
    fn drop(&mut self) {
        drop(self.rx.take());
        if let Some(topics) = self.topics.upgrade() {
            let mut topics = lock(&topics);
            if topics
                .get(&self.topic)
                .is_some_and(|tx| tx.receiver_count() == 0)
            {
                topics.remove(&self.topic);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use std::time::Duration;
    use tokio::time::timeout;

    #[tokio::test]
    async fn every_subscriber_gets_every_event_in_order() {
        let hub = Hub::new(16);
        let mut a = hub.subscribe("t");
        let mut b = hub.subscribe("t");
        let mut other = hub.subscribe("u");
        for i in 0..10 {
            assert_eq!(hub.publish("t", i), 2);
        }
        for sub in [&mut a, &mut b] {
            for i in 0..10 {
                let got = timeout(Duration::from_secs(1), sub.recv()).await.unwrap();
                assert_eq!(got, Some(Delivery::Event(i)));
            }
        }
        assert!(
            timeout(Duration::from_millis(20), other.recv())
                .await
                .is_err(),
            "a subscriber of another topic must receive nothing"
        );
    }

    #[tokio::test]
    async fn a_lagging_subscriber_is_dropped_with_a_notice_and_publishers_never_block() {
        let hub = Hub::new(4);
        let mut slow = hub.subscribe("t");
        let mut fast = hub.subscribe("t");
        for i in 0..100u32 {
            // publish is synchronous: if it could block on `slow`, this loop would hang.
            hub.publish("t", i);
            let got = timeout(Duration::from_secs(1), fast.recv()).await.unwrap();
            assert_eq!(got, Some(Delivery::Event(i)));
        }
        let notice = timeout(Duration::from_secs(1), slow.recv()).await.unwrap();
        assert!(matches!(notice, Some(Delivery::Lagged { missed }) if missed > 0));
        assert_eq!(slow.recv().await, None, "nothing after the notice");
    }

    #[test]
    fn recent_events_are_retained_for_replay_within_bounds() {
        let hub: Hub<usize> = Hub::new(4);
        // Retained even with nobody listening, the last few per topic.
        for i in 0..20 {
            hub.publish("t", i);
        }
        assert_eq!(hub.retained("t"), (12..20).collect::<Vec<_>>());
        assert!(hub.retained("nobody").is_empty());
        // Bounded in topics: the oldest topic is forgotten first.
        for i in 0..RETAINED_TOPICS {
            hub.publish(&format!("x{i}"), i);
        }
        assert!(hub.retained("t").is_empty());
        assert_eq!(hub.retained(&format!("x{}", RETAINED_TOPICS - 1)).len(), 1);
    }

    #[tokio::test]
    async fn unused_topics_are_forgotten() {
        let hub: Hub<u8> = Hub::new(4);
        let sub = hub.subscribe("t");
        assert_eq!(hub.topic_count(), 1);
        drop(sub);
        assert_eq!(hub.topic_count(), 0);
        assert_eq!(hub.publish("t", 1), 0);
    }
}
