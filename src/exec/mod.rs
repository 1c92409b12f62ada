//! Runs a `Plan`: setup once, then the load model on N load threads, each a single-threaded
//! tokio runtime that owns its virtual users and one `Recorder` (no locks shared across threads
//! on the hot path). Every second each thread swaps its recorder for a fresh one and ships the
//! filled one (its delta) to the aggregator, which merges the deltas exactly: memory stays flat
//! however long the run, and a partial summary exists at every interval (for
//! `abort_on_fail` thresholds and the live view). Measures; never formats.
//!
//! Coordinated omission: in the open model every iteration has an intended start on the
//! arrival schedule, and its first step's latency is measured from that instant, so a stalled
//! server or a late load thread shows up in the percentiles. The `total` phase keeps the pure
//! service time.
//!
//! Outside the load model, `OneUser` runs one traced virtual user through the flow one
//! iteration at a time (setup, `breakdown`, `repro`, `bisect`); `outcome` says what a finished
//! run means beyond its numbers. Virtual users, recorders and `RunContext`'s fields are this
//! module's own.

mod one_user;
pub mod outcome;
pub mod schedule;
pub mod scope;
pub mod step;
mod stream;
mod timer;
pub mod verbose;
mod vu;

use crate::aggregate::{IntervalPoint, IntervalRecorder, Recorder};
use crate::http::Client;
use crate::plan::{LoadModel, Plan};
pub use one_user::{OneRun, OneUser};
use schedule::{Arrivals, Ramp, share};
use scope::VarMap;
use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime};
use tokio::sync::mpsc;
use vu::{Local, Recording, Stop, Vu, run_iteration};
pub use vu::{RunContext, Traced};

#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Load threads (each a single-threaded runtime).
    pub threads: usize,
    /// Time-series interval.
    pub interval: Duration,
    /// How long in-flight iterations may finish after the end or an interrupt.
    pub grace: Duration,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            threads: std::thread::available_parallelism().map_or(1, std::num::NonZero::get),
            interval: Duration::from_secs(1),
            grace: crate::plan::DEFAULT_GRACEFUL_STOP,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    #[error("setup step `{step}` failed: {message}")]
    Setup { step: String, message: String },
    #[error("could not start a load thread: {0}")]
    Thread(String),
}

/// What a run measured.
pub struct RunResult {
    pub recorder: Recorder,
    pub names: Vec<String>,
    pub series: Vec<IntervalPoint>,
    pub started_at: SystemTime,
    pub elapsed: Duration,
    pub interrupted: bool,
}

/// The transport configuration a plan asks for: the one place `HttpOptions` become a
/// `ClientConfig` (`run`, `breakdown`, `repro` and `bisect` all build their client here).
#[must_use]
pub fn client_config(
    http: &crate::plan::HttpOptions,
    connection: crate::http::ConnectionMode,
) -> crate::http::ClientConfig {
    crate::http::ClientConfig {
        connect_timeout: http.connect_timeout,
        request_timeout: http.request_timeout,
        max_redirects: http.max_redirects,
        body_capture_limit: http.body_capture_limit,
        insecure: http.insecure,
        cacert: http.cacert.clone(),
        connection,
        tls_resumption: http.tls_resumption,
        http2: true,
        streams_per_connection: http.streams_per_connection,
        allow: http.allow.clone(),
    }
}

/// Runs the plan's `setup` steps once with their own session; their captures become variables
/// every virtual user sees. Any failed setup step fails the run (nothing else is sent).
pub async fn run_setup(plan: &Arc<Plan>, base: &str, client: &Client) -> Result<VarMap, ExecError> {
    if plan.setup.is_empty() {
        return Ok(VarMap::new());
    }
    let ctx = Arc::new(RunContext::new(
        plan.clone(),
        base.to_string(),
        client.clone(),
        VarMap::new(),
    ));
    // Setup vars come from the environment too (identities may be env-specific).
    let mut user = OneUser::setup(ctx);
    user.iterate().await;
    let rec = user.take_recorder();
    for (step, stats) in crate::plan::flatten(&plan.setup).zip(rec.steps.iter()) {
        let by_design = stats.not_run > stats.not_run_unset;
        if stats.errors > 0
            || stats.skipped > 0
            || stats.not_run_unset > 0
            || (stats.requests == 0 && !by_design)
        {
            let message = stats
                .error_messages
                .keys()
                .chain(stats.not_run_reasons.keys())
                .next()
                .cloned()
                .unwrap_or_else(|| "no request was sent".to_string());
            return Err(ExecError::Setup {
                step: step.name.clone(),
                message,
            });
        }
    }
    let captures = user.into_captures();
    // Env vars built from setup captures: one that would expand past the size limit is an
    // error here, not an "undefined variable" in every step that uses it.
    let (_, too_large) = vu::render_env_checked(&plan.env.vars, &captures);
    if let Some((name, why)) = too_large.first() {
        return Err(ExecError::Setup {
            step: "(env)".into(),
            message: format!("env var `{name}` from setup captures: {why}"),
        });
    }
    Ok(captures)
}

struct Msg {
    thread: usize,
    index: u64,
    data: IntervalRecorder,
    delta: Recorder,
}

/// Recorders the aggregator has merged and emptied, going back to their load thread: swapping
/// in a fresh one every second would allocate and fault in new histogram pages (about a
/// millisecond) in the middle of whatever request records first.
type Recycle = std::sync::mpsc::Receiver<(IntervalRecorder, Recorder)>;

/// Runs the load. `on_interval` sees each merged interval as it completes, with everything
/// measured so far (live view, abort checks).
pub async fn run_load(
    shared: Arc<RunContext>,
    opts: &RunOptions,
    mut on_interval: impl FnMut(&IntervalPoint, &Recorder),
) -> Result<RunResult, ExecError> {
    let threads = opts.threads.max(1);
    raise_open_files_limit();
    let names: Vec<String> = shared
        .plan
        .request_steps()
        .map(|s| s.name.clone())
        .collect();
    let (tx, mut rx) = mpsc::unbounded_channel::<Msg>();
    let started_at = SystemTime::now();
    let start = Instant::now();
    let mut handles = Vec::with_capacity(threads);
    let arrive = arrivals(&shared, threads, start)?;
    let mut recycle_txs = Vec::with_capacity(threads);
    for (idx, arrive) in arrive.into_iter().enumerate() {
        let (recycle_tx, recycle) = std::sync::mpsc::channel();
        recycle_txs.push(recycle_tx);
        let shared = shared.clone();
        let tx = tx.clone();
        let opts = opts.clone();
        let n_steps = names.len();
        let h = std::thread::Builder::new()
            .name(format!("sonde-load-{idx}"))
            .spawn(move || {
                load_thread(
                    idx as u64,
                    threads as u64,
                    shared,
                    start,
                    &opts,
                    n_steps,
                    tx,
                    arrive,
                    recycle,
                )
            })
            .map_err(|e| ExecError::Thread(e.to_string()))?;
        handles.push(h);
    }
    drop(tx);

    let (recorder, series) = aggregate(
        &mut rx,
        &recycle_txs,
        (threads, names.len()),
        opts.interval,
        start,
        &mut on_interval,
    )
    .await;
    let joined = tokio::task::spawn_blocking(move || {
        handles
            .into_iter()
            .map(|h| h.join().map_err(|_| "a load thread panicked".to_string()))
            .collect::<Vec<_>>()
    })
    .await
    .map_err(|e| ExecError::Thread(e.to_string()))?;
    let elapsed = start.elapsed();
    for r in joined {
        r.map_err(ExecError::Thread)??;
    }
    Ok(RunResult {
        recorder,
        names,
        series,
        started_at,
        elapsed,
        interrupted: shared.interrupted(),
    })
}

/// Open model: arrival k goes to load thread k mod n. On Linux each load thread paces its own
/// arrivals with a timerfd (`timer`); elsewhere one pacer thread hands them out. The closed
/// model has no arrivals (`None` for every thread).
fn arrivals(
    shared: &Arc<RunContext>,
    threads: usize,
    start: Instant,
) -> Result<Vec<Option<Arrive>>, ExecError> {
    let mut arrive: Vec<Option<Arrive>> = (0..threads).map(|_| None).collect();
    let LoadModel::Open {
        rate,
        duration,
        stages,
        ..
    } = &shared.plan.load
    else {
        return Ok(arrive);
    };
    let (arrivals, length) = if stages.is_empty() {
        (Arrivals::constant(*rate), *duration)
    } else {
        (
            Arrivals::ramping(*rate, stages),
            Ramp::new(*rate, stages).total(),
        )
    };
    let length = length.min(shared.plan.max_duration);
    // SONDE_PACER=thread forces the pacer thread (for comparing the two in benchmarks).
    let thread_pacer = std::env::var_os("SONDE_PACER").is_some_and(|v| v == "thread");
    if cfg!(target_os = "linux") && !thread_pacer {
        let arrivals = Arc::new(arrivals);
        for a in &mut arrive {
            *a = Some(Arrive::Local {
                arrivals: arrivals.clone(),
                length,
            });
        }
    } else {
        let mut txs = Vec::new();
        for a in &mut arrive {
            let (t, r) = mpsc::unbounded_channel::<Instant>();
            txs.push(t);
            *a = Some(Arrive::Channel(r));
        }
        let stop = shared.stop.clone();
        std::thread::Builder::new()
            .name("sonde-pacer".into())
            .spawn(move || pace(&arrivals, start, length, &stop, &txs))
            .map_err(|e| ExecError::Thread(e.to_string()))?;
    }
    Ok(arrive)
}

/// Merges the load threads' deltas as they arrive (sending each emptied recorder back to its
/// thread) and completes an interval once every thread has shipped it. Returns everything
/// measured and the time series.
async fn aggregate(
    rx: &mut mpsc::UnboundedReceiver<Msg>,
    recycle_txs: &[std::sync::mpsc::Sender<(IntervalRecorder, Recorder)>],
    (threads, n_steps): (usize, usize),
    interval: Duration,
    start: Instant,
    on_interval: &mut impl FnMut(&IntervalPoint, &Recorder),
) -> (Recorder, Vec<IntervalPoint>) {
    let mut pending: BTreeMap<u64, (IntervalRecorder, usize)> = BTreeMap::new();
    let mut series = Vec::new();
    let interval_s = interval.as_secs_f64();
    let mut recorder = Recorder::new(n_steps);
    while let Some(mut msg) = rx.recv().await {
        recorder.merge(&msg.delta);
        let e = pending.entry(msg.index).or_default();
        e.0.merge(&msg.data);
        e.1 += 1;
        msg.data.reset();
        msg.delta.reset();
        if let Some(back) = recycle_txs.get(msg.thread) {
            let _ = back.send((msg.data, msg.delta));
        }
        while let Some(entry) = pending.first_entry() {
            if entry.get().1 < threads {
                break;
            }
            let (k, (iv, _)) = entry.remove_entry();
            let p = point(k, &iv, interval_s, start.elapsed().as_secs_f64());
            on_interval(&p, &recorder);
            series.push(p);
        }
    }
    for (k, (iv, _)) in pending {
        let p = point(k, &iv, interval_s, start.elapsed().as_secs_f64());
        on_interval(&p, &recorder);
        series.push(p);
    }
    (recorder, series)
}

fn point(k: u64, iv: &IntervalRecorder, interval_s: f64, elapsed: f64) -> IntervalPoint {
    IntervalPoint {
        t: ((k as f64 * interval_s).min(elapsed) * 1000.0).round() / 1000.0,
        requests: iv.requests,
        errors: iv.errors,
        iterations: iv.iterations,
        dropped: iv.dropped,
        p50_ms: iv.latency.quantile_ms(0.5),
        p99_ms: iv.latency.quantile_ms(0.99),
    }
}

#[allow(clippy::too_many_arguments)]
fn load_thread(
    idx: u64,
    n: u64,
    shared: Arc<RunContext>,
    start: Instant,
    opts: &RunOptions,
    n_steps: usize,
    tx: mpsc::UnboundedSender<Msg>,
    arrive: Option<Arrive>,
    recycle: Recycle,
) -> Result<(), ExecError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| ExecError::Thread(e.to_string()))?;
    let local = Rc::new(Local::new(shared.clone(), n_steps, false));
    let set = tokio::task::LocalSet::new();
    let next_index = Rc::new(Cell::new(1u64));
    set.block_on(&rt, async {
        let ticker = tokio::task::spawn_local(ship_intervals(
            local.clone(),
            Ticker {
                idx,
                start,
                interval: opts.interval,
                n_steps,
                next_index: next_index.clone(),
                tx: tx.clone(),
                recycle,
            },
        ));
        drive(&local, &shared, idx, n, arrive, start, opts.grace).await;
        ticker.abort();
        let data = local.interval.take();
        let delta = local.rec.take();
        let _ = tx.send(Msg {
            thread: idx as usize,
            index: next_index.get(),
            data,
            delta,
        });
    });
    drop(set);
    // A blocking task (a DNS lookup the resolver never answers) must not hold the run open.
    rt.shutdown_background();
    Ok(())
}

/// What a load thread's interval ticker needs.
struct Ticker {
    idx: u64,
    start: Instant,
    interval: Duration,
    n_steps: usize,
    /// The next interval to ship (shared with the thread's final shipment).
    next_index: Rc<Cell<u64>>,
    tx: mpsc::UnboundedSender<Msg>,
    recycle: Recycle,
}

/// Every interval, swaps the thread's recorders for emptied ones (recycled from the
/// aggregator when it has sent them back) and ships the filled ones.
async fn ship_intervals(local: Rc<Local>, t: Ticker) {
    loop {
        let k = t.next_index.get();
        let at = t.start + t.interval.mul_f64(k as f64);
        tokio::time::sleep_until(at.into()).await;
        let (iv, rec) = t
            .recycle
            .try_recv()
            .unwrap_or_else(|_| (IntervalRecorder::default(), Recorder::new(t.n_steps)));
        let data = local.interval.replace(iv);
        let delta = local.rec.replace(rec);
        t.next_index.set(k + 1);
        if t.tx
            .send(Msg {
                thread: t.idx as usize,
                index: k,
                data,
                delta,
            })
            .is_err()
        {
            break;
        }
    }
}

/// Runs this load thread's share of the load model until its end (plus the grace period).
async fn drive(
    local: &Rc<Local>,
    shared: &Arc<RunContext>,
    idx: u64,
    n: u64,
    arrive: Option<Arrive>,
    start: Instant,
    grace: Duration,
) {
    match &shared.plan.load {
        LoadModel::Closed {
            vus,
            duration,
            iterations,
            stages,
        } => {
            let ramp = (!stages.is_empty()).then(|| Ramp::new(f64::from(*vus), stages));
            let length = match (duration, &ramp) {
                (Some(d), _) => *d,
                (None, Some(r)) => r.total(),
                (None, None) => shared.plan.max_duration,
            };
            let max_vus = stages
                .iter()
                .map(|s| s.target.ceil() as u64)
                .fold(u64::from(*vus), u64::max);
            closed(
                local,
                idx,
                n,
                max_vus,
                ramp,
                *iterations,
                start + length.min(shared.plan.max_duration),
                grace,
            )
            .await;
        }
        LoadModel::Open {
            max_vus, duration, ..
        } => {
            let rx = match arrive {
                Some(Arrive::Channel(rx)) => Some(rx),
                Some(Arrive::Local { arrivals, length }) => {
                    Some(pace_local(arrivals, start, length, idx, n, &shared.stop))
                }
                None => None,
            };
            if let Some(rx) = rx {
                open(
                    local,
                    idx,
                    n,
                    rx,
                    u64::from(*max_vus),
                    start + (*duration).min(shared.plan.max_duration),
                    grace,
                )
                .await;
            }
        }
    }
}

/// Waits for `done` to resolve, but at most `grace` after the end time or a stop signal.
async fn finish_within<F: std::future::Future>(
    done: F,
    stop: &Stop,
    end: Instant,
    grace: Duration,
) {
    tokio::select! {
        _ = done => {}
        () = async {
            tokio::select! {
                () = tokio::time::sleep_until(end.into()) => {}
                () = stop.wait() => {}
            }
            tokio::time::sleep(grace).await;
        } => {}
    }
}

#[allow(clippy::too_many_arguments)]
async fn closed(
    local: &Rc<Local>,
    idx: u64,
    n: u64,
    max_vus: u64,
    ramp: Option<Ramp>,
    iterations: Option<u64>,
    end: Instant,
    grace: Duration,
) {
    let shared = &local.shared;
    let local_vus = share(max_vus, n, idx);
    let ramp = ramp.map(Rc::new);
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(local_vus as usize);
    for rank in 0..local_vus {
        let local = local.clone();
        let ramp = ramp.clone();
        tasks.push(tokio::task::spawn_local(async move {
            let shared = &local.shared;
            let mut vu = Vu::new(idx + rank * n + 1, shared);
            loop {
                if shared.stop.is_set() || Instant::now() >= end {
                    break;
                }
                if let Some(r) = &ramp {
                    let active = |now: Instant| {
                        let target = r.at(now.duration_since(started).as_secs_f64()).round();
                        share(target.max(0.0) as u64, n, idx)
                    };
                    let mut parked = false;
                    while rank >= active(Instant::now()) {
                        let left = end.saturating_duration_since(Instant::now());
                        if left.is_zero()
                            || !shared.stop.sleep(left.min(Duration::from_millis(50))).await
                        {
                            parked = true;
                            break;
                        }
                    }
                    if parked {
                        break;
                    }
                }
                if let Some(total) = iterations
                    && shared
                        .taken_iterations
                        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |t| {
                            (t < total).then_some(t + 1)
                        })
                        .is_err()
                {
                    break;
                }
                run_iteration(&local, &mut vu, Recording::Main, None).await;
                if !back_off(&local, &mut vu, end).await {
                    break;
                }
            }
        }));
    }
    finish_within(
        futures_util::future::join_all(tasks.iter_mut()),
        &shared.stop,
        end,
        grace,
    )
    .await;
    cancel_all(tasks).await;
}

/// Cancels what is still running after the grace period and waits until each cancelled task
/// is dropped, so its in-flight request is counted (`cancelled`) in this thread's recorder
/// before the recorder is shipped.
async fn cancel_all(tasks: Vec<tokio::task::JoinHandle<()>>) {
    for t in &tasks {
        t.abort();
    }
    for t in tasks {
        // A finished handle may already have been polled to completion by the join above.
        if !t.is_finished() {
            let _ = t.await;
        }
    }
}

/// The pause a virtual user takes after an iteration that failed before any response (so a
/// closed port is not hit thousands of times a second) or was rate limited (`Retry-After`),
/// never past the run's end. False when the run was stopped meanwhile.
async fn back_off(local: &Local, vu: &mut Vu, end: Instant) -> bool {
    let Some((why, d)) = vu.backoff.take() else {
        return true;
    };
    let d = d.min(end.saturating_duration_since(Instant::now()));
    if d.is_zero() {
        return true;
    }
    if matches!(why, step::Backoff::RateLimited(_)) {
        local.rec.borrow_mut().rate_limit_wait += d;
    }
    local.shared.stop.sleep(d).await
}

/// Every virtual user holds a socket: lift the soft open-files limit to the hard one (a
/// common soft default of 1024 would fail the 1,021st connection).
fn raise_open_files_limit() {
    #[cfg(target_os = "linux")]
    {
        use rustix::process::{Resource, getrlimit, setrlimit};
        let lim = getrlimit(Resource::Nofile);
        if lim.current != lim.maximum {
            let _ = setrlimit(
                Resource::Nofile,
                rustix::process::Rlimit {
                    current: lim.maximum,
                    maximum: lim.maximum,
                },
            );
        }
    }
}

/// Where a load thread's open-model arrivals come from.
enum Arrive {
    /// Paced inside the load thread with a precise timer: arrivals idx, idx + n, ...
    Local {
        arrivals: Arc<Arrivals>,
        length: Duration,
    },
    /// Handed over by the pacer thread.
    Channel(mpsc::UnboundedReceiver<Instant>),
}

/// This load thread's share of the arrivals (k = idx, idx + n, ...), each released at its
/// intended start by a timerfd in the thread's own runtime; the channel closes after the last.
fn pace_local(
    arrivals: Arc<Arrivals>,
    start: Instant,
    length: Duration,
    idx: u64,
    n: u64,
    stop: &Arc<Stop>,
) -> mpsc::UnboundedReceiver<Instant> {
    let (tx, rx) = mpsc::unbounded_channel();
    let stop = stop.clone();
    tokio::task::spawn_local(async move {
        let timer = timer::PreciseTimer::new();
        let mut lead = timer::Lead::default();
        let mut k = idx;
        while let Some(due) = due_of(&arrivals, k, start, length) {
            if stop.is_set() {
                break;
            }
            let early = due.checked_sub(lead.get()).unwrap_or(due);
            let slept = async {
                match &timer {
                    Some(timer) => timer.sleep_until(early).await,
                    None => tokio::time::sleep_until(due.into()).await,
                }
            };
            tokio::select! {
                () = slept => {}
                () = stop.wait() => break,
            }
            lead.woke(Instant::now().saturating_duration_since(early));
            // An idle CPU wakes tens of microseconds late (more in a virtual machine): the
            // last stretch is polled, yielding so responses of other iterations keep flowing.
            while Instant::now() < due {
                tokio::task::yield_now().await;
            }
            if tx.send(due).is_err() {
                break;
            }
            k += n;
        }
    });
    rx
}

/// Intended start of arrival `k`, or `None` once the schedule or the run's length is over.
fn due_of(arrivals: &Arrivals, k: u64, start: Instant, length: Duration) -> Option<Instant> {
    arrivals
        .time_of(k)
        .filter(|t| *t < length.as_secs_f64())
        .map(|t| start + Duration::from_secs_f64(t))
}

/// The open model's clock where no precise timer exists: a dedicated thread sleeps until each
/// arrival's intended start and hands it to a load thread (round-robin). tokio's timer wheel has 1 ms granularity, which
/// would add up to a millisecond of the tool's own lateness to every latency measured from
/// the intended start; a thread sleep plus a short spin lands within tens of microseconds.
fn pace(
    arrivals: &Arrivals,
    start: Instant,
    length: Duration,
    stop: &Stop,
    txs: &[mpsc::UnboundedSender<Instant>],
) {
    const SPIN: Duration = Duration::from_micros(50);
    // With the kernel's default 50 us timer slack a sleep wakes up to 50 us late; with 1 ns it
    // wakes within the scheduler's latency, and the spin before each arrival can be short (a
    // long spin costs CPU the load thread on the same core needs).
    #[cfg(target_os = "linux")]
    let _ = rustix::thread::set_current_timer_slack(std::num::NonZeroU64::new(1));
    let mut k = 0u64;
    while let Some(due) = due_of(arrivals, k, start, length) {
        if stop.is_set() {
            break;
        }
        loop {
            let now = Instant::now();
            if now >= due {
                break;
            }
            let left = due - now;
            if left > SPIN {
                // Sleep in slices so a stop signal is seen within 50 ms.
                std::thread::sleep(left.saturating_sub(SPIN).min(Duration::from_millis(50)));
                if stop.is_set() {
                    return;
                }
            } else {
                std::hint::spin_loop();
            }
        }
        let tx = &txs[(k % txs.len() as u64) as usize];
        if tx.send(due).is_err() {
            break;
        }
        k += 1;
    }
}

async fn open(
    local: &Rc<Local>,
    idx: u64,
    n: u64,
    mut arrivals: mpsc::UnboundedReceiver<Instant>,
    max_vus: u64,
    end: Instant,
    grace: Duration,
) {
    let shared = &local.shared;
    let cap = share(max_vus, n, idx);
    let pool: Rc<RefCell<Vec<Vu>>> = Rc::new(RefCell::new(Vec::new()));
    let created = Cell::new(0u64);
    let mut running = tokio::task::JoinSet::new();
    loop {
        // Reap finished iterations so the set holds only those in flight.
        while running.try_join_next().is_some() {}
        let due = tokio::select! {
            d = arrivals.recv() => match d { Some(d) => d, None => break },
            () = shared.stop.wait() => break,
        };
        let vu = pool.borrow_mut().pop().or_else(|| {
            (created.get() < cap).then(|| {
                let id = idx + created.get() * n + 1;
                created.set(created.get() + 1);
                Vu::new(id, shared)
            })
        });
        if let Some(mut vu) = vu {
            let local = local.clone();
            let pool = pool.clone();
            running.spawn_local(async move {
                run_iteration(&local, &mut vu, Recording::Main, Some(due)).await;
                // A backing-off VU stays busy: arrivals that find no free VU are dropped
                // and shown, never silently sent.
                back_off(&local, &mut vu, end).await;
                pool.borrow_mut().push(vu);
            });
        } else {
            local.rec.borrow_mut().dropped_iterations += 1;
            local.interval.borrow_mut().dropped += 1;
        }
    }
    let wait_drained = async { while running.join_next().await.is_some() {} };
    finish_within(wait_drained, &shared.stop, end, grace).await;
    // Past the grace period: cancel what is left and wait until each is dropped, so its
    // in-flight request is counted before the recorder is shipped.
    running.abort_all();
    while running.join_next().await.is_some() {}
}
