//! The median iteration as a result's waterfall: the critical path of an iteration, and the
//! conversion of a pass's median iteration into `aggregate::Waterfall` for the run result and
//! the HTML report. Computes only; drawing is `render` (terminal) and `report` (HTML).

use super::{Iteration, Pass};
use crate::aggregate::{Waterfall, WaterfallRequest};

/// Per request of `it`: whether it is on the critical path. Every request of a sequential step
/// is; in a parallel group, the request that ends last.
#[must_use]
pub fn critical_path(it: &Iteration, groups: &[Vec<usize>]) -> Vec<bool> {
    let mut critical = vec![false; it.requests.len()];
    for g in groups {
        if g.len() == 1 {
            for (i, r) in it.requests.iter().enumerate() {
                if r.step == g[0] {
                    critical[i] = true;
                }
            }
            continue;
        }
        let last = it
            .requests
            .iter()
            .enumerate()
            .filter(|(_, r)| g.contains(&r.step))
            .max_by(|a, b| {
                (a.1.offset_us + a.1.phases_us[6]).total_cmp(&(b.1.offset_us + b.1.phases_us[6]))
            })
            .map(|(i, _)| i);
        if let Some(i) = last {
            critical[i] = true;
        }
    }
    critical
}

/// Microseconds to milliseconds, kept to the microsecond.
fn ms(us: f64) -> f64 {
    (us.max(0.0)).round() / 1000.0
}

/// The pass's median iteration as a waterfall (`None` when the pass has no iteration).
/// `names` are the request steps in plan order, `groups` as `breakdown::groups`.
#[must_use]
pub fn of_pass(p: &Pass, names: &[String], groups: &[Vec<usize>]) -> Option<Waterfall> {
    let it = p.median_iteration.as_ref()?;
    let critical = critical_path(it, groups);
    let mut order: Vec<usize> = (0..it.requests.len()).collect();
    order.sort_by(|a, b| {
        it.requests[*a]
            .offset_us
            .total_cmp(&it.requests[*b].offset_us)
    });
    let requests = order
        .into_iter()
        .map(|i| {
            let r = &it.requests[i];
            let ph = r.phases_us;
            WaterfallRequest {
                step: names.get(r.step).cloned().unwrap_or_else(|| "?".into()),
                offset_ms: ms(r.offset_us),
                dns_ms: ms(ph[0]),
                connect_ms: ms(ph[1]),
                tls_ms: ms(ph[2]),
                send_ms: ms(ph[3]),
                wait_ms: ms(ph[4]),
                receive_ms: ms(ph[5]),
                total_ms: ms(ph[6]),
                reused: r.reused,
                status: r.status,
                critical: critical.get(i).copied().unwrap_or(false),
                error: r.error.clone(),
            }
        })
        .collect();
    Some(Waterfall {
        connection: p.connection.as_str().to_string(),
        iterations: p.iterations.len() as u64,
        total_ms: ms(it.total_us),
        requests,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use crate::breakdown::{Connection, Request};

    fn req(step: usize, offset_us: f64, total_us: f64) -> Request {
        Request {
            step,
            offset_us,
            phases_us: [0.0, 0.0, 0.0, 10.0, total_us - 30.0, 20.0, total_us],
            reused: true,
            tls_resumed: false,
            status: Some(200),
            server_timing: Vec::new(),
            error: None,
            trace_id: None,
        }
    }

    #[test]
    fn the_median_iteration_becomes_a_waterfall_with_its_critical_path() {
        // login, then a parallel group {a, b}: b ends last, so b is critical and a is not.
        let names: Vec<String> = ["login", "a", "b"].iter().map(|s| s.to_string()).collect();
        let groups = vec![vec![0], vec![1, 2]];
        let it = |scale: f64| Iteration {
            total_us: 1000.0 * scale,
            requests: vec![
                req(2, 400.0, 500.0 * scale),
                req(0, 0.0, 400.0),
                req(1, 400.0, 300.0),
            ],
        };
        let pass = Pass::compute(
            "default",
            Connection::Reuse,
            &names,
            vec![it(1.0), it(3.0), it(2.0)],
        );
        let w = of_pass(&pass, &names, &groups).unwrap();
        assert_eq!(w.connection, "reuse");
        assert_eq!(w.iterations, 3);
        assert_eq!(w.total_ms, 2.0, "the median of 1, 2 and 3 ms");
        let steps: Vec<&str> = w.requests.iter().map(|r| r.step.as_str()).collect();
        assert_eq!(steps[0], "login", "sorted by start");
        let crit = |n: &str| w.requests.iter().find(|r| r.step == n).unwrap().critical;
        assert!(crit("login") && crit("b") && !crit("a"));
        let b = w.requests.iter().find(|r| r.step == "b").unwrap();
        assert_eq!((b.offset_ms, b.total_ms, b.wait_ms), (0.4, 1.0, 0.97));
        assert_eq!(b.end_ms(), 1.4);
        let empty = Pass::compute("default", Connection::New, &names, Vec::new());
        assert!(of_pass(&empty, &names, &groups).is_none());
    }
}
