//! `Hist`: an HDR histogram of microseconds (1 µs to 1 h, 3 significant digits), allocated on
//! first use so phases a run never sees (e.g. `tls` on plain HTTP) cost nothing, serialized as
//! `HdrHistogram` V2 + deflate + base64 so result files merge exactly.

use base64::Engine as _;
use hdrhistogram::Histogram;
use hdrhistogram::serialization::{Deserializer, Serializer, V2DeflateSerializer};
use std::time::Duration;

/// Highest trackable value: one hour in microseconds. Larger values saturate.
pub const MAX_US: u64 = 3_600_000_000;
pub const SIGFIG: u8 = 3;

#[derive(Debug, Clone, Default)]
pub struct Hist(Option<Box<Histogram<u64>>>);

#[derive(Debug, thiserror::Error)]
pub enum HistError {
    #[error("histogram is not valid base64: {0}")]
    Base64(#[from] base64::DecodeError),
    #[error("histogram data is corrupt: {0}")]
    Decode(String),
    #[error("histogram could not be serialized: {0}")]
    Encode(String),
}

fn new_hist() -> Option<Box<Histogram<u64>>> {
    Histogram::new_with_bounds(1, MAX_US, SIGFIG)
        .ok()
        .map(Box::new)
}

impl Hist {
    #[inline]
    pub fn record_us(&mut self, us: u64) {
        if self.0.is_none() {
            self.0 = new_hist();
        }
        if let Some(h) = self.0.as_mut() {
            h.saturating_record(us.clamp(1, MAX_US));
        }
    }

    /// `n` samples of `us` in one record (the same histogram as `n` calls of `record_us`).
    pub fn record_n_us(&mut self, us: u64, n: u64) {
        if n == 0 {
            return;
        }
        if self.0.is_none() {
            self.0 = new_hist();
        }
        if let Some(h) = self.0.as_mut() {
            h.saturating_record_n(us.clamp(1, MAX_US), n);
        }
    }

    #[inline]
    pub fn record(&mut self, d: Duration) {
        self.record_us(d.as_micros().min(u128::from(MAX_US)) as u64);
    }

    /// Empty it, keeping the allocation (a recorder reused every second then causes no page
    /// faults on the hot path).
    pub fn reset(&mut self) {
        if let Some(h) = self.0.as_mut() {
            h.reset();
        }
    }

    pub fn merge(&mut self, o: &Hist) {
        let Some(src) = o.0.as_ref() else { return };
        match self.0.as_mut() {
            // Same bounds on both sides, so `add` cannot fail; a failure would mean a corrupt
            // deserialized histogram, and then the one we hold is kept unchanged.
            Some(h) => {
                let _ = h.add(src.as_ref());
            }
            None => self.0 = Some(src.clone()),
        }
    }

    #[must_use]
    pub fn count(&self) -> u64 {
        self.0.as_ref().map_or(0, |h| h.len())
    }

    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.count() == 0
    }

    /// Value at quantile `q` in [0, 1], in microseconds (0 when empty).
    #[must_use]
    pub fn quantile_us(&self, q: f64) -> u64 {
        self.0
            .as_ref()
            .map_or(0, |h| h.value_at_quantile(q.clamp(0.0, 1.0)))
    }

    #[must_use]
    pub fn quantile_ms(&self, q: f64) -> f64 {
        self.quantile_us(q) as f64 / 1000.0
    }

    #[must_use]
    pub fn min_us(&self) -> u64 {
        self.0.as_ref().map_or(0, |h| h.min())
    }

    #[must_use]
    pub fn max_us(&self) -> u64 {
        self.0.as_ref().map_or(0, |h| h.max())
    }

    #[must_use]
    pub fn mean_us(&self) -> f64 {
        self.0.as_ref().map_or(0.0, |h| h.mean())
    }

    #[must_use]
    pub fn stdev_us(&self) -> f64 {
        self.0.as_ref().map_or(0.0, |h| h.stdev())
    }

    #[must_use]
    pub fn inner(&self) -> Option<&Histogram<u64>> {
        self.0.as_deref()
    }

    /// `(value_us, count)` for every recorded distinct bucket, for exact comparison and tests.
    pub fn buckets(&self) -> Vec<(u64, u64)> {
        self.0.as_ref().map_or_else(Vec::new, |h| {
            h.iter_recorded()
                .map(|v| (v.value_iterated_to(), v.count_at_value()))
                .collect()
        })
    }

    /// V2 + deflate, base64 (standard alphabet). Empty histograms encode as "".
    pub fn encode(&self) -> Result<String, HistError> {
        let Some(h) = self.0.as_ref() else {
            return Ok(String::new());
        };
        let mut buf = Vec::new();
        V2DeflateSerializer::new()
            .serialize(h.as_ref(), &mut buf)
            .map_err(|e| HistError::Encode(format!("{e:?}")))?;
        Ok(base64::engine::general_purpose::STANDARD.encode(buf))
    }

    pub fn decode(s: &str) -> Result<Hist, HistError> {
        if s.is_empty() {
            return Ok(Hist::default());
        }
        let bytes = base64::engine::general_purpose::STANDARD.decode(s.trim())?;
        let h: Histogram<u64> = Deserializer::new()
            .deserialize(&mut bytes.as_slice())
            .map_err(|e| HistError::Decode(format!("{e:?}")))?;
        // Re-home into our bounds so later merges with fresh histograms always succeed.
        let mut out = Hist::default();
        if h.is_empty() {
            return Ok(out);
        }
        out.0 = new_hist();
        if let Some(o) = out.0.as_mut() {
            o.add(&h).map_err(|e| HistError::Decode(format!("{e:?}")))?;
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn records_merges_and_round_trips_exactly() {
        let mut a = Hist::default();
        let mut b = Hist::default();
        assert!(a.is_empty());
        for i in 1..=1000u64 {
            a.record_us(i * 10);
            b.record(Duration::from_micros(i * 7));
        }
        let mut m = a.clone();
        m.merge(&b);
        assert_eq!(m.count(), 2000);
        let enc = m.encode().unwrap();
        let back = Hist::decode(&enc).unwrap();
        assert_eq!(back.buckets(), m.buckets());
        assert_eq!(back.quantile_us(0.99), m.quantile_us(0.99));
        // p50 of 10..=10000 step 10 is 5000 within HDR precision (3 significant digits).
        let p50 = a.quantile_us(0.5);
        assert!((4995..=5005).contains(&p50), "{p50}");
        assert_eq!(Hist::decode("").unwrap().count(), 0);
        assert!(Hist::decode("not base64!").is_err());
    }

    #[test]
    fn saturates_instead_of_failing() {
        let mut h = Hist::default();
        h.record_us(0);
        h.record_us(u64::MAX);
        assert_eq!(h.count(), 2);
        assert!(h.max_us() >= MAX_US);
    }
}
