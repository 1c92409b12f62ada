//! The top level of a scenario file (name, target, faults, envs, flags, data, http, setup,
//! steps, thresholds) read and validated into a `plan::Plan`. Reads the data file, if any;
//! sends nothing.

use super::checks::var_name;
use super::error::{Diag, Pos, did_you_mean};
use super::reader::{EnvLookup, R, Reader, Use};
use super::steps::{StepInfo, pairs, read_list};
use super::vars::EnvInfo;
use super::yaml::{self, Node, Value};
use super::{Overrides, load, sizes, thresholds, vars};
use crate::gate::Threshold;
use crate::plan::{Environment, FlagTransport, HttpOptions, Plan, StepNode, TargetSpec};
use crate::units::parse_bytes;
use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;
use std::time::Duration;

const TOP_KEYS: [&str; 11] = [
    "name",
    "target",
    "demo_faults",
    "env",
    "flags",
    "data",
    "load",
    "http",
    "setup",
    "steps",
    "thresholds",
];
const FAULTS: [&str; 6] = [
    "slow-profile",
    "onboarding-locale",
    "payment-latency",
    "payment-declines",
    "payment-timeouts",
    "worker-crash-after-charge",
];
const MAX_DATA_ROWS: usize = 1_000_000;
const MAX_DATA_BYTES: u64 = 64 << 20;

/// Why building failed: a problem in the file, or in a `--threshold` (with its text).
pub enum Fail {
    Syntax(Diag),
    File(Diag),
    Cli { src: String, diag: Box<Diag> },
}

impl From<Diag> for Fail {
    fn from(d: Diag) -> Fail {
        Fail::File(d)
    }
}

/// The scenario's `thresholds:` and the command line's `--threshold`s, checked against the
/// names the scenario declares (steps, setup steps, polls, environments).
fn read_thresholds(
    r: &Reader<'_>,
    node: Option<&Node>,
    o: &Overrides,
    infos: &[StepInfo],
    envs: &[(String, Environment)],
    steps: &[StepNode],
) -> Result<Vec<Threshold>, Fail> {
    let main: Vec<&str> = infos
        .iter()
        .filter(|i| !i.setup)
        .map(|i| i.name.as_str())
        .collect();
    let setup_names: Vec<&str> = infos
        .iter()
        .filter(|i| i.setup)
        .map(|i| i.name.as_str())
        .collect();
    let env_names: Vec<&str> = envs.iter().map(|(n, _)| n.as_str()).collect();
    let polls: Vec<&str> = crate::plan::flatten(steps)
        .filter(|s| s.poll.is_some() || s.stream.is_some())
        .map(|s| s.name.as_str())
        .collect();
    let names = thresholds::Names {
        steps: &main,
        setup: &setup_names,
        polls: &polls,
        envs: &env_names,
    };
    let mut ths = match node {
        Some(t) => thresholds::read(r, t, &names)?,
        None => Vec::new(),
    };
    for cli in &o.thresholds {
        let t = thresholds::from_cli(cli, &names).map_err(|diag| Fail::Cli {
            src: cli.clone(),
            diag: Box::new(diag),
        })?;
        ths.push(t);
    }
    Ok(ths)
}

pub fn build(text: &str, path: &Path, o: &Overrides, env: EnvLookup<'_>) -> Result<Plan, Fail> {
    let root = yaml::parse(text).map_err(Fail::Syntax)?;
    let r = Reader::new(text, env);
    if root.value == Value::Null {
        return Err(Diag::new(root.pos, "the scenario file is empty")
            .help("a scenario needs at least `steps:`")
            .into());
    }
    let m = r.map(&root, "the scenario")?;
    m.allow(&TOP_KEYS, "the scenario")?;
    let name = match m.get("name") {
        Some(n) => r.string(n, "`name`")?,
        None => path.file_stem().map_or_else(
            || "scenario".to_string(),
            |s| s.to_string_lossy().into_owned(),
        ),
    };
    let faults = match m.get("demo_faults") {
        Some(f) => demo_faults(&r, f)?,
        None => Vec::new(),
    };
    let target = target(&r, m.get("target"), o, faults)?;
    let (envs, env_infos) = match m.get("env") {
        Some(e) => environments(&r, e)?,
        None => (Vec::new(), Vec::new()),
    };
    let flags = match m.get("flags") {
        Some(f) => flags(&r, f)?,
        None => FlagTransport::default(),
    };
    let (data, columns) = match m.get("data") {
        Some(d) => data(&r, d, path)?,
        None => (Vec::new(), Vec::new()),
    };
    let (load, max_duration) = load::build(&r, m.get("load"), o)?;
    let graceful_stop = load::graceful_stop(&r, m.get("load"), o)?;
    let http = http(&r, m.get("http"), o.http.as_ref())?;
    let mut groups = 0;
    let mut infos: Vec<StepInfo> = Vec::new();
    let setup = match m.get("setup") {
        Some(s) => read_list(&r, s, "setup", true, &mut groups, &mut infos)?,
        None => Vec::new(),
    };
    let steps = match m.get("steps") {
        Some(s) => read_list(&r, s, "steps", false, &mut groups, &mut infos)?,
        None => Vec::new(),
    };
    if steps.is_empty() || !infos.iter().any(|i| !i.setup) {
        let pos = m.get("steps").map_or(root.pos, |s| s.pos);
        let msg = if m.has("steps") {
            "`steps` has no request step"
        } else {
            "the scenario has no `steps`"
        };
        return Err(Diag::new(pos, msg)
            .help("add at least one step: `steps: [{name: home, request: {url: /}}]`")
            .into());
    }
    vars::check(&env_infos, &columns, &infos)?;
    let column_sizes = sizes::column_sizes(&data, &columns);
    sizes::check(&env_infos, &column_sizes, &infos, &|t| r.literal_len(t))?;
    let ths = read_thresholds(&r, m.get("thresholds"), o, &infos, &envs, &steps)?;
    let (env_name, env) = select_env(&envs, o.env.as_deref())?;
    Ok(Plan {
        name,
        source: Some(path.to_path_buf()),
        target,
        env_name,
        envs: envs.into_iter().collect(),
        env,
        flags,
        data,
        load,
        setup,
        steps,
        thresholds: ths,
        http,
        max_duration,
        graceful_stop,
    })
}

fn target(r: &Reader<'_>, n: Option<&Node>, o: &Overrides, faults: Vec<String>) -> R<TargetSpec> {
    if let Some(t) = &o.target {
        // `--target` replaces the file's target, which is then not evaluated at all (so an
        // unset `${TARGET}` there is no error).
        return check_url(t.as_str(), Pos::NONE).map(TargetSpec::Url);
    }
    let file = match n {
        Some(n) => {
            let s = r.string(n, "`target`")?;
            if s.trim().is_empty() {
                None
            } else {
                Some(check_url(s.trim(), n.pos)?)
            }
        }
        None => None,
    };
    Ok(match file {
        Some(u) => TargetSpec::Url(u),
        None => TargetSpec::EmbeddedDemo { faults },
    })
}

fn check_url(s: &str, pos: Pos) -> R<url::Url> {
    let bad = |why: String| {
        let what = if pos == Pos::NONE {
            "`--target`"
        } else {
            "target"
        };
        Diag::new(pos, format!("invalid {what} `{s}`: {why}"))
            .help("a target is an absolute http(s) URL, like `https://api.example.com`")
    };
    let u = url::Url::parse(s).map_err(|e| bad(e.to_string()))?;
    if !matches!(u.scheme(), "http" | "https") {
        return Err(bad(format!("scheme `{}` is not http or https", u.scheme())));
    }
    if u.host().is_none() {
        return Err(bad("no host".into()));
    }
    Ok(u)
}

fn demo_faults(r: &Reader<'_>, n: &Node) -> R<Vec<String>> {
    let mut out = Vec::new();
    for f in r.seq(n, "`demo_faults`")? {
        let s = r.string(f, "a fault name")?;
        let (name, value) = match s.split_once('=') {
            Some((a, b)) => (a, Some(b)),
            None => (s.as_str(), None),
        };
        if !FAULTS.contains(&name) {
            return Err(Diag::new(f.pos, format!("unknown fault `{name}`"))
                .help(did_you_mean(name, FAULTS).unwrap_or_else(|| {
                    "faults are slow-profile, onboarding-locale, payment-latency=MS, payment-declines=PCT, payment-timeouts=PCT, worker-crash-after-charge".into()
                })));
        }
        let hint = match name {
            "payment-latency" => Some("MS"),
            "payment-declines" | "payment-timeouts" => Some("PCT"),
            _ => None,
        };
        match (hint, value) {
            (None, Some(v)) => {
                return Err(Diag::new(
                    f.pos,
                    format!("fault `{name}` takes no value (got `{v}`)"),
                ));
            }
            (Some(h), None) => {
                return Err(Diag::new(f.pos, format!("fault `{name}` needs a value"))
                    .help(format!("write `{name}={h}`")));
            }
            (Some("MS"), Some(v)) => {
                if !v.parse::<u64>().is_ok_and(|ms| ms <= 600_000) {
                    return Err(Diag::new(f.pos, format!("`{v}` is not a latency in ms"))
                        .help("write milliseconds from 0 to 600000, e.g. `payment-latency=250`"));
                }
            }
            (Some(_), Some(v)) => {
                let pct = v.trim_end_matches('%').parse::<f64>();
                if !pct.is_ok_and(|p| (0.0..=100.0).contains(&p)) {
                    return Err(Diag::new(f.pos, format!("`{v}` is not a percentage"))
                        .help(format!("write a number from 0 to 100, e.g. `{name}=5`")));
                }
            }
            (None, None) => {}
        }
        out.push(s);
    }
    Ok(out)
}

fn valid_env_name(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

type Envs = (Vec<(String, Environment)>, Vec<EnvInfo>);

fn environments(r: &Reader<'_>, n: &Node) -> R<Envs> {
    let m = r.map(n, "`env`")?;
    let mut envs = Vec::with_capacity(m.entries.len());
    let mut infos = Vec::with_capacity(m.entries.len());
    for (name, kn, v) in &m.entries {
        if !valid_env_name(name) {
            return Err(Diag::new(kn.pos, format!("invalid env name `{name}`"))
                .help("env names use letters, digits, `_` and `-`"));
        }
        let mut info = EnvInfo {
            name: name.clone(),
            name_pos: kn.pos,
            ..EnvInfo::default()
        };
        let mut env = Environment::default();
        if v.value != Value::Null {
            let em = r.map(v, &format!("env `{name}`"))?;
            em.allow(&["vars", "headers", "cookies", "flags", "query"], "an env")?;
            if let Some(vars) = em.get("vars") {
                for (var, vk, vv) in &r.map(vars, "`vars`")?.entries {
                    var_name(var, vk.pos, "variable")?;
                    let mut uses: Vec<Use> = Vec::new();
                    let t = r.template(vv, "a variable", &mut uses)?;
                    info.literals.insert(var.clone(), t.literal_len() as u64);
                    env.vars.insert(var.clone(), t);
                    info.vars.push((var.clone(), vk.pos, uses));
                }
            }
            env.headers = pairs(r, em.get("headers"), "`headers`", &mut info.uses, true)?;
            env.cookies = pairs(r, em.get("cookies"), "`cookies`", &mut info.uses, false)?;
            env.query = pairs(r, em.get("query"), "`query`", &mut info.uses, false)?;
            if let Some(f) = em.get("flags") {
                env.flags = env_flags(r, f)?;
            }
        }
        envs.push((name.clone(), env));
        infos.push(info);
    }
    Ok((envs, infos))
}

fn flag_name(s: &str, pos: Pos) -> R<()> {
    if s.is_empty()
        || !s
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c))
    {
        return Err(Diag::new(pos, format!("invalid flag name `{s}`"))
            .help("flag names use letters, digits, `_`, `-` and `.`"));
    }
    Ok(())
}

/// `{name: on|off|true|false}` or a list of names (all on).
fn env_flags(r: &Reader<'_>, n: &Node) -> R<BTreeMap<String, bool>> {
    let mut out = BTreeMap::new();
    match &n.value {
        Value::Seq(items) => {
            for i in items {
                let s = r.string(i, "a flag name")?;
                flag_name(&s, i.pos)?;
                out.insert(s, true);
            }
        }
        _ => {
            for (k, kn, v) in &r.map(n, "`flags`")?.entries {
                flag_name(k, kn.pos)?;
                let on = match &v.value {
                    Value::Bool(b) => *b,
                    Value::Str(s) if s == "on" => true,
                    Value::Str(s) if s == "off" => false,
                    _ => {
                        return Err(Diag::new(
                            v.pos,
                            format!("expected on or off for flag `{k}`, found {}", v.kind()),
                        )
                        .help("write `on`, `off`, `true` or `false`"));
                    }
                };
                out.insert(k.clone(), on);
            }
        }
    }
    Ok(out)
}

fn flags(r: &Reader<'_>, n: &Node) -> R<FlagTransport> {
    let m = r.map(n, "`flags`")?;
    m.allow(&["header", "cookie", "separator"], "flags")?;
    let sep = r.opt_string(&m, "separator", "`separator`")?;
    if sep.as_deref() == Some("") {
        let pos = m.get("separator").map_or(n.pos, |s| s.pos);
        return Err(Diag::new(pos, "`separator` is empty"));
    }
    match (m.get("header"), m.get("cookie")) {
        (Some(h), None) => {
            let name = r.string(h, "a header name")?;
            if http::HeaderName::from_bytes(name.as_bytes()).is_err() {
                return Err(Diag::new(h.pos, format!("invalid header name `{name}`")));
            }
            Ok(FlagTransport::Header {
                name,
                separator: sep.unwrap_or_else(|| ",".into()),
            })
        }
        (None, Some(c)) => {
            let name = r.string(c, "a cookie name")?;
            if name.is_empty() || name.contains(|c: char| c.is_whitespace() || "=;,".contains(c)) {
                return Err(Diag::new(c.pos, format!("invalid cookie name `{name}`")));
            }
            Ok(FlagTransport::Cookie {
                name,
                separator: sep.unwrap_or_else(|| "|".into()),
            })
        }
        (Some(_), Some(c)) => Err(Diag::new(c.pos, "`flags` takes `header` or `cookie`, not both")),
        (None, None) => Err(Diag::new(n.pos, "`flags` needs `header` or `cookie`")
            .help("e.g. `{header: X-Feature-Flags, separator: \",\"}` or `{cookie: ff, separator: \"|\"}`")),
    }
}

type Data = (Vec<BTreeMap<String, String>>, Vec<String>);

fn data(r: &Reader<'_>, n: &Node, path: &Path) -> R<Data> {
    let m = r.map(n, "`data`")?;
    m.allow(&["file", "rows"], "data")?;
    match (m.get("file"), m.get("rows")) {
        (Some(f), None) => csv_file(r, f, path),
        (None, Some(rows)) => inline_rows(r, rows),
        (Some(_), Some(rows)) => Err(Diag::new(
            rows.pos,
            "`data` takes `file` or `rows`, not both",
        )),
        (None, None) => Err(Diag::new(n.pos, "`data` needs `file` or `rows`")),
    }
}

fn csv_file(r: &Reader<'_>, f: &Node, scenario: &Path) -> R<Data> {
    let rel = r.string(f, "a file name")?;
    let full = scenario.parent().unwrap_or(Path::new("")).join(&rel);
    let fail = |why: String| Diag::new(f.pos, format!("cannot read data file `{rel}`: {why}"));
    let file = std::fs::File::open(&full).map_err(|e| fail(e.to_string()))?;
    // Bounded, so a device or a FIFO cannot make validation read forever.
    let mut bytes = Vec::new();
    std::io::Read::take(file, MAX_DATA_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| fail(e.to_string()))?;
    if bytes.len() as u64 > MAX_DATA_BYTES {
        return Err(fail(format!("larger than {} MiB", MAX_DATA_BYTES >> 20)));
    }
    let mut rd = csv::Reader::from_reader(bytes.as_slice());
    let columns: Vec<String> = rd
        .headers()
        .map_err(|e| fail(e.to_string()))?
        .iter()
        .map(|h| h.trim().to_string())
        .collect();
    for c in &columns {
        var_name(c, f.pos, "data column")
            .map_err(|d| d.help(format!("fix the header of `{rel}`")))?;
    }
    let mut rows = Vec::new();
    for rec in rd.records() {
        let rec = rec.map_err(|e| fail(e.to_string()))?;
        if rows.len() >= MAX_DATA_ROWS {
            return Err(fail(format!("more than {MAX_DATA_ROWS} rows")));
        }
        rows.push(
            columns
                .iter()
                .cloned()
                .zip(rec.iter().map(str::to_string))
                .collect(),
        );
    }
    if rows.is_empty() {
        return Err(fail("no rows under the header".into()));
    }
    Ok((rows, columns))
}

fn inline_rows(r: &Reader<'_>, n: &Node) -> R<Data> {
    let items = r.seq(n, "`rows`")?;
    let mut rows: Vec<BTreeMap<String, String>> = Vec::with_capacity(items.len());
    let mut columns: Vec<String> = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let mut row = BTreeMap::new();
        let m = r.map(item, "a data row")?;
        for (k, kn, v) in &m.entries {
            var_name(k, kn.pos, "data column")?;
            if i > 0 && !columns.contains(k) {
                return Err(
                    Diag::new(kn.pos, format!("column `{k}` is not in the first row"))
                        .help("every row has the same columns"),
                );
            }
            if i == 0 {
                columns.push(k.clone());
            }
            row.insert(k.clone(), r.string(v, "a data value")?);
        }
        if let Some(missing) = columns.iter().find(|c| !row.contains_key(*c)) {
            return Err(
                Diag::new(item.pos, format!("row {} has no `{missing}`", i + 1))
                    .help("every row has the same columns"),
            );
        }
        rows.push(row);
    }
    if rows.is_empty() {
        return Err(Diag::new(n.pos, "`rows` is empty"));
    }
    Ok((rows, columns))
}

/// The file's `http:` section, then the CLI: `insecure` and `cacert` always come from the
/// CLI; its other fields override the file when they differ from the defaults.
fn http(r: &Reader<'_>, n: Option<&Node>, cli: Option<&HttpOptions>) -> R<HttpOptions> {
    let mut h = HttpOptions::default();
    if let Some(n) = n {
        http_file(r, n, &mut h)?;
    }
    if let Some(c) = cli {
        http_cli(c, &mut h);
    }
    Ok(h)
}

/// The file's `http:` section onto `h`.
fn http_file(r: &Reader<'_>, n: &Node, h: &mut HttpOptions) -> R<()> {
    let hour = Duration::from_secs(3600);
    let m = r.map(n, "`http`")?;
    m.allow(
        &[
            "timeouts",
            "max_redirects",
            "body_capture_limit",
            "honor_retry_after",
            "trace_context",
            "request_id_header",
            "connection",
            "tls_resumption",
            "streams_per_connection",
        ],
        "http",
    )?;
    if let Some(b) = m.get("tls_resumption") {
        h.tls_resumption = r.bool(b, "`tls_resumption`")?;
    }
    if let Some(c) = m.get("connection") {
        h.connection = connection_mode(r, c)?;
    }
    if let Some(x) = m.get("streams_per_connection") {
        h.streams_per_connection = u32::try_from(r.int(
            x,
            "`streams_per_connection`",
            1,
            i128::from(crate::plan::MAX_STREAMS_PER_CONNECTION),
        )?)
        .unwrap_or(1);
    }
    if let Some(b) = m.get("trace_context") {
        h.trace.context = r.bool(b, "`trace_context`")?;
    }
    if let Some(b) = m.get("request_id_header") {
        h.trace.request_id_header = Some(request_id_header(r, b)?);
    }
    if let Some(b) = m.get("honor_retry_after") {
        h.honor_retry_after = r.bool(b, "`honor_retry_after`")?;
    }
    if let Some(t) = m.get("timeouts") {
        let tm = r.map(t, "`timeouts`")?;
        tm.allow(&["connect", "request"], "timeouts")?;
        if let Some(c) = tm.get("connect") {
            h.connect_timeout = r.positive_duration(c, "connect timeout", hour)?;
        }
        if let Some(q) = tm.get("request") {
            h.request_timeout = r.positive_duration(q, "request timeout", hour)?;
        }
    }
    if let Some(x) = m.get("max_redirects") {
        h.max_redirects = u32::try_from(r.int(x, "`max_redirects`", 0, 50)?).unwrap_or(0);
    }
    if let Some(b) = m.get("body_capture_limit") {
        let s = r.string(b, "a size")?;
        let v = parse_bytes(&s).map_err(|e| Diag::new(b.pos, e))?;
        if v > 1 << 30 {
            return Err(Diag::new(
                b.pos,
                "`body_capture_limit` must be at most 1GiB",
            ));
        }
        h.body_capture_limit = usize::try_from(v).unwrap_or(usize::MAX);
    }
    Ok(())
}

/// `http.connection`: `reuse` (keep-alive, the default) or `new` (a connection per request).
fn connection_mode(r: &Reader<'_>, n: &Node) -> R<crate::http::ConnectionMode> {
    const MODES: [&str; 2] = ["reuse", "new"];
    let s = r.string(n, "`connection`")?;
    match s.as_str() {
        "reuse" => Ok(crate::http::ConnectionMode::Reuse),
        "new" => Ok(crate::http::ConnectionMode::New),
        other => Err(
            Diag::new(n.pos, format!("unknown `connection` `{other}`")).help(
                did_you_mean(other, MODES).unwrap_or_else(|| {
                    "`connection` is `reuse` (keep-alive, the default) or `new` (a fresh connection for every request)".into()
                }),
            ),
        ),
    }
}

/// `request_id_header`: a valid header name, and not a secret one.
fn request_id_header(r: &Reader<'_>, b: &Node) -> R<String> {
    let name = r.string(b, "a header name")?;
    if http::HeaderName::from_bytes(name.as_bytes()).is_err() {
        return Err(Diag::new(
            b.pos,
            format!("`request_id_header` `{name}` is not a valid header name"),
        ));
    }
    if crate::redact::is_secret_header(&name) {
        return Err(Diag::new(
            b.pos,
            format!("`request_id_header` `{name}` names a secret header"),
        )
        .help("name the header that carries the server's request id, e.g. X-Request-Id"));
    }
    Ok(name)
}

/// The CLI's HTTP options onto `h`: `insecure`, `cacert`, the allow-list and exemplars always;
/// the switches only when off; the others when they differ from the defaults.
fn http_cli(c: &HttpOptions, h: &mut HttpOptions) {
    let d = HttpOptions::default();
    h.insecure = c.insecure;
    h.cacert = c.cacert.clone();
    h.allow = c.allow.clone();
    if !c.honor_retry_after {
        h.honor_retry_after = false;
    }
    if !c.trace.context {
        h.trace.context = false;
    }
    h.trace.exemplars = c.trace.exemplars;
    if !c.tls_resumption {
        h.tls_resumption = false;
    }
    if c.connection != d.connection {
        h.connection = c.connection;
    }
    if c.connect_timeout != d.connect_timeout {
        h.connect_timeout = c.connect_timeout;
    }
    if c.request_timeout != d.request_timeout {
        h.request_timeout = c.request_timeout;
    }
    if c.max_redirects != d.max_redirects {
        h.max_redirects = c.max_redirects;
    }
    if c.body_capture_limit != d.body_capture_limit {
        h.body_capture_limit = c.body_capture_limit;
    }
    if c.streams_per_connection != d.streams_per_connection {
        h.streams_per_connection = c.streams_per_connection;
    }
}

fn select_env(
    envs: &[(String, Environment)],
    wanted: Option<&str>,
) -> R<(Option<String>, Environment)> {
    match wanted {
        Some(w) => {
            if let Some((n, e)) = envs.iter().find(|(n, _)| n == w) {
                Ok((Some(n.clone()), e.clone()))
            } else {
                let names: Vec<&str> = envs.iter().map(|(n, _)| n.as_str()).collect();
                let help = did_you_mean(w, names.iter().copied()).unwrap_or_else(|| {
                    if names.is_empty() {
                        "the scenario defines no env".into()
                    } else {
                        format!("the scenario defines `{}`", names.join("`, `"))
                    }
                });
                Err(Diag::new(Pos::NONE, format!("unknown env `{w}` (from `--env`)")).help(help))
            }
        }
        None => Ok(envs
            .first()
            .map_or((None, Environment::default()), |(n, e)| {
                (Some(n.clone()), e.clone())
            })),
    }
}
