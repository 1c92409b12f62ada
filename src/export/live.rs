//! A run's live push: each second's snapshot goes to a pushing task, off the load threads;
//! the last one is built from the very recorder the run result is built from.

use crate::aggregate::Recorder;
use crate::export::prometheus::{self, Pusher, RunLabels};
use crate::plan::{LoadModel, Plan};
use std::time::Duration;

/// How long the final push may delay the results (a stopping pod may not wait long).
const FINISH_LIMIT: Duration = Duration::from_secs(5);

/// `--out prometheus=URL` for one run.
pub struct Live {
    labels: RunLabels,
    pusher: Pusher,
}

impl Live {
    /// Starts the pushing task (on the current runtime) over a client with `base`'s TLS
    /// options and allow-list; refused when the URL's host is not allowed.
    pub fn start(
        url: &url::Url,
        base: crate::http::ClientConfig,
        labels: RunLabels,
    ) -> Result<Live, String> {
        let pusher = Pusher::start(url.clone(), base)?;
        Ok(Live { labels, pusher })
    }

    /// Offers the snapshot of everything measured `t` seconds in (skipped if the queue is
    /// full: the next one carries the totals).
    pub fn offer(&self, plan: &Plan, t: f64, so_far: &Recorder) {
        let names: Vec<String> = plan.request_steps().map(|s| s.name.clone()).collect();
        self.pusher.offer(prometheus::snapshot(
            &self.labels,
            &names,
            so_far,
            planned_vus(&plan.load, t),
            prometheus::now_ms(),
        ));
    }

    /// The final push; the note for the result (where the metrics went, or what went wrong)
    /// and whether it is a warning.
    pub async fn finish(
        self,
        plan: &Plan,
        names: &[String],
        recorder: &Recorder,
        elapsed: Duration,
    ) -> (String, bool) {
        let url = crate::redact::redact_url(self.pusher.url.as_str());
        let last = prometheus::snapshot(
            &self.labels,
            names,
            recorder,
            planned_vus(&plan.load, elapsed.as_secs_f64()),
            prometheus::now_ms(),
        );
        match self.pusher.finish(last, FINISH_LIMIT).await {
            Some(warning) => (warning, true),
            None => (
                format!(
                    "metrics pushed to {url} (Prometheus remote write), run_id=\"{}\"",
                    self.labels.run_id
                ),
                false,
            ),
        }
    }
}

/// The virtual users the closed model runs `t` seconds in (stages ramp linearly); `None` for
/// the open model, whose busy VUs are not counted.
fn planned_vus(load: &LoadModel, t: f64) -> Option<f64> {
    let LoadModel::Closed { vus, stages, .. } = load else {
        return None;
    };
    if stages.is_empty() {
        return Some(f64::from(*vus));
    }
    let mut from = 0.0;
    let mut at = 0.0;
    for s in stages {
        let d = s.duration.as_secs_f64();
        if t <= at + d && d > 0.0 {
            return Some((from + (s.target - from) * (t - at) / d).round());
        }
        from = s.target;
        at += d;
    }
    Some(from)
}

