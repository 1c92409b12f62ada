//! Argument groups several commands share, flattened into each with `#[command(flatten)]`, so a
//! flag means the same thing (and has the same short letter) everywhere: `HttpArgs` (transport
//! and allow-list), `VerboseArgs` (`-v`), and the one stdout format enum.

use super::Error;
use crate::http::HostPolicy;
use crate::plan::HttpOptions;
use clap::Args;
use std::path::PathBuf;

/// How requests are sent and where they may go: `run`, `breakdown`, `repro`, `bisect`.
#[derive(Debug, Clone, Default, Args)]
pub struct HttpArgs {
    /// Do not verify TLS certificates (as curl -k; stated in every report).
    #[arg(long, short = 'k')]
    pub insecure: bool,
    /// Also trust the CA certificates in this PEM file.
    #[arg(long)]
    pub cacert: Option<PathBuf>,
    /// Whole-request timeout, body included (`30s`).
    #[arg(long)]
    pub timeout: Option<String>,
    /// Allow requests to this host besides loopback: a name, an IP or a CIDR block
    /// (repeatable). Hosts named on the command line (--target, --url, a URL argument, curl and
    /// HAR files) are allowed too; a scenario's own hosts (target, absolute step URLs,
    /// redirects) are refused unless named.
    #[arg(long = "allow-host", value_name = "HOST")]
    pub allow_hosts: Vec<String>,
    /// Send no W3C `traceparent` header (sent by default: a fresh trace id per iteration; a
    /// `traceparent` the scenario, curl or HAR sets itself is always sent as is).
    #[arg(long = "no-trace-context")]
    pub no_trace_context: bool,
}

impl HttpArgs {
    /// The transport options these flags ask for (the rest at their defaults).
    pub fn http_options(&self) -> Result<HttpOptions, Error> {
        let mut h = HttpOptions {
            insecure: self.insecure,
            cacert: self.cacert.clone(),
            ..HttpOptions::default()
        };
        h.trace.context = !self.no_trace_context;
        if let Some(t) = &self.timeout {
            h.request_timeout = duration(t, "timeout")?;
        }
        Ok(h)
    }

    /// The allow-list of one command: loopback, every `--allow-host`, and the URLs the user
    /// named on the command line (`--target`, `--url`, a URL argument, a curl or HAR file's
    /// request).
    pub fn host_policy<'a>(
        &self,
        named: impl IntoIterator<Item = &'a url::Url>,
    ) -> Result<HostPolicy, Error> {
        let mut p = HostPolicy::loopback_only();
        for h in &self.allow_hosts {
            p.allow(h)
                .map_err(|e| Error::usage(format!("--allow-host: {e}")))?;
        }
        for u in named {
            p.allow_url(u);
        }
        Ok(p)
    }
}

/// `-v`: exchanges on stderr as curl -v prints them.
#[derive(Debug, Clone, Default, Args)]
pub struct VerboseArgs {
    /// Print exchanges on stderr as curl -v does: request line, headers and body excerpt,
    /// response status, headers and body excerpt, secrets redacted. The first
    /// --verbose-limit exchanges, then failed ones only, up to as many again.
    #[arg(short = 'v', long)]
    pub verbose: bool,
    /// With -v: how many exchanges to show, then how many failed ones.
    #[arg(long, value_name = "N", default_value_t = crate::exec::verbose::DEFAULT_LIMIT, requires = "verbose")]
    pub verbose_limit: u64,
}

impl VerboseArgs {
    /// The printer these flags ask for (`None`: off).
    #[must_use]
    pub fn printer(&self) -> Option<std::sync::Arc<crate::exec::verbose::Verbose>> {
        crate::exec::verbose::from_flags(self.verbose, self.verbose_limit)
    }
}

/// Where a run's result goes: stdout's format, `--out` files, the progress line (`run`,
/// `breakdown`).
#[derive(Debug, Clone, Args)]
pub struct OutputArgs {
    /// Write the result to FILE; the extension picks the format (json, txt, md, xml = JUnit,
    /// html). Repeatable. With `breakdown --vs`, the second environment's result goes to FILE
    /// with `.ENV` before the extension. `run` also takes `prometheus=URL`: live metrics pushed
    /// by Prometheus remote write (e.g. prometheus=http://127.0.0.1:9090/api/v1/write).
    #[arg(long = "out", short = 'o')]
    pub outs: Vec<PathBuf>,
    /// What to print on stdout.
    #[arg(long, default_value = "table", value_parser = stdout_formats(TABLE_JSON))]
    pub format: OutputFormat,
    /// No progress line on stderr (it is shown only on a terminal anyway).
    #[arg(long, short = 'q')]
    pub quiet: bool,
}

/// What a command prints on stdout. One enum for every command; each accepts the values that
/// apply to it (`stdout_formats`), so `--help` lists only those.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputFormat {
    Table,
    Json,
    Md,
    Junit,
    Html,
}

impl OutputFormat {
    fn from_name(name: &str) -> OutputFormat {
        match name {
            "json" => OutputFormat::Json,
            "md" => OutputFormat::Md,
            "junit" => OutputFormat::Junit,
            "html" => OutputFormat::Html,
            _ => OutputFormat::Table,
        }
    }
}

impl From<OutputFormat> for crate::report::Format {
    fn from(f: OutputFormat) -> crate::report::Format {
        use crate::report::Format;
        match f {
            OutputFormat::Table => Format::Table,
            OutputFormat::Json => Format::Json,
            OutputFormat::Md => Format::Markdown,
            OutputFormat::Junit => Format::Junit,
            OutputFormat::Html => Format::Html,
        }
    }
}

/// The `--format` values a command accepts (a subset of `OutputFormat`'s names).
#[must_use]
pub fn stdout_formats(
    allowed: &'static [&'static str],
) -> impl clap::builder::TypedValueParser<Value = OutputFormat> {
    use clap::builder::TypedValueParser as _;
    clap::builder::PossibleValuesParser::new(allowed.iter().copied())
        .map(|s| OutputFormat::from_name(&s))
}

/// `table` and `json`: what most commands print.
pub const TABLE_JSON: &[&str] = &["table", "json"];

/// A duration flag (`30s`, `2m`), its error naming the flag and the value.
pub fn duration(text: &str, flag: &str) -> Result<std::time::Duration, Error> {
    crate::scenario::parse_duration(text)
        .map_err(|e| Error::usage(format!("--{flag} `{text}`: {e}")))
}

/// A URL flag (`--target`), its error naming the flag and the value (redacted).
pub fn url(text: &str, flag: &str) -> Result<url::Url, Error> {
    url::Url::parse(text).map_err(|e| {
        Error::usage(format!(
            "--{flag} `{}`: {e}",
            crate::redact::redact_url(text)
        ))
    })
}
