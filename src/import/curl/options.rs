//! The curl options sonde knows: which it supports, which it ignores because they change
//! nothing in the request, and why it refuses the others; long-option abbreviation as curl
//! does it. The table only names options; `super` interprets them.

use super::tokenize::Pos;
use crate::import::ImportError;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Opt {
    Request,
    Header,
    Cookie,
    Data,
    DataRaw,
    DataUrlencode,
    Json,
    /// `-F name=content[;type=…][;filename=…]`.
    Form,
    /// `--form-string name=content`, taken literally.
    FormString,
    User,
    Bearer,
    UserAgent,
    Referer,
    Range,
    Url,
    UrlQuery,
    Get,
    Head,
    Compressed,
    Insecure,
    Location,
    Globoff,
    /// Changes nothing in the request curl sends (output, progress, timeouts, TLS versions).
    Ignored,
    /// Like `Ignored`, with a value to skip.
    IgnoredValue,
}

impl Opt {
    pub(super) fn takes_value(self) -> bool {
        !matches!(
            self,
            Opt::Get
                | Opt::Head
                | Opt::Compressed
                | Opt::Insecure
                | Opt::Location
                | Opt::Globoff
                | Opt::Ignored
        )
    }
}

/// Every long option curl 7.88 knows (`curl --help all`), for curl's abbreviation rule (a
/// unique prefix names an option) and to tell "not supported" from "not a curl option".
const CURL_LONG: &[&str] = &[
    "abstract-unix-socket",
    "alt-svc",
    "anyauth",
    "append",
    "aws-sigv4",
    "basic",
    "cacert",
    "capath",
    "cert",
    "cert-status",
    "cert-type",
    "ciphers",
    "compressed",
    "compressed-ssh",
    "config",
    "connect-timeout",
    "connect-to",
    "continue-at",
    "cookie",
    "cookie-jar",
    "create-dirs",
    "create-file-mode",
    "crlf",
    "crlfile",
    "curves",
    "data",
    "data-ascii",
    "data-binary",
    "data-raw",
    "data-urlencode",
    "delegation",
    "digest",
    "disable",
    "disable-eprt",
    "disable-epsv",
    "disallow-username-in-url",
    "dns-interface",
    "dns-ipv4-addr",
    "dns-ipv6-addr",
    "dns-servers",
    "doh-cert-status",
    "doh-insecure",
    "doh-url",
    "dump-header",
    "egd-file",
    "engine",
    "etag-compare",
    "etag-save",
    "expect100-timeout",
    "fail",
    "fail-early",
    "fail-with-body",
    "false-start",
    "form",
    "form-escape",
    "form-string",
    "ftp-account",
    "ftp-alternative-to-user",
    "ftp-create-dirs",
    "ftp-method",
    "ftp-pasv",
    "ftp-port",
    "ftp-pret",
    "ftp-skip-pasv-ip",
    "ftp-ssl-ccc",
    "ftp-ssl-ccc-mode",
    "ftp-ssl-control",
    "get",
    "globoff",
    "happy-eyeballs-timeout-ms",
    "haproxy-protocol",
    "head",
    "header",
    "help",
    "hostpubmd5",
    "hostpubsha256",
    "hsts",
    "http0.9",
    "http1.0",
    "http1.1",
    "http2",
    "http2-prior-knowledge",
    "http3",
    "http3-only",
    "ignore-content-length",
    "include",
    "insecure",
    "interface",
    "ipv4",
    "ipv6",
    "json",
    "junk-session-cookies",
    "keepalive-time",
    "key",
    "key-type",
    "krb",
    "libcurl",
    "limit-rate",
    "list-only",
    "local-port",
    "location",
    "location-trusted",
    "login-options",
    "mail-auth",
    "mail-from",
    "mail-rcpt",
    "mail-rcpt-allowfails",
    "manual",
    "max-filesize",
    "max-redirs",
    "max-time",
    "metalink",
    "negotiate",
    "netrc",
    "netrc-file",
    "netrc-optional",
    "next",
    "no-alpn",
    "no-buffer",
    "no-clobber",
    "no-keepalive",
    "no-npn",
    "no-progress-meter",
    "no-sessionid",
    "noproxy",
    "ntlm",
    "ntlm-wb",
    "oauth2-bearer",
    "output",
    "output-dir",
    "parallel",
    "parallel-immediate",
    "parallel-max",
    "pass",
    "path-as-is",
    "pinnedpubkey",
    "post301",
    "post302",
    "post303",
    "preproxy",
    "progress-bar",
    "proto",
    "proto-default",
    "proto-redir",
    "proxy",
    "proxy-anyauth",
    "proxy-basic",
    "proxy-cacert",
    "proxy-capath",
    "proxy-cert",
    "proxy-cert-type",
    "proxy-ciphers",
    "proxy-crlfile",
    "proxy-digest",
    "proxy-header",
    "proxy-insecure",
    "proxy-key",
    "proxy-key-type",
    "proxy-negotiate",
    "proxy-ntlm",
    "proxy-pass",
    "proxy-pinnedpubkey",
    "proxy-service-name",
    "proxy-ssl-allow-beast",
    "proxy-ssl-auto-client-cert",
    "proxy-tls13-ciphers",
    "proxy-tlsauthtype",
    "proxy-tlspassword",
    "proxy-tlsuser",
    "proxy-tlsv1",
    "proxy-user",
    "proxy1.0",
    "proxytunnel",
    "pubkey",
    "quote",
    "random-file",
    "range",
    "rate",
    "raw",
    "referer",
    "remote-header-name",
    "remote-name",
    "remote-name-all",
    "remote-time",
    "remove-on-error",
    "request",
    "request-target",
    "resolve",
    "retry",
    "retry-all-errors",
    "retry-connrefused",
    "retry-delay",
    "retry-max-time",
    "sasl-authzid",
    "sasl-ir",
    "service-name",
    "show-error",
    "silent",
    "socks4",
    "socks4a",
    "socks5",
    "socks5-basic",
    "socks5-gssapi",
    "socks5-gssapi-nec",
    "socks5-gssapi-service",
    "socks5-hostname",
    "speed-limit",
    "speed-time",
    "ssl",
    "ssl-allow-beast",
    "ssl-auto-client-cert",
    "ssl-no-revoke",
    "ssl-reqd",
    "ssl-revoke-best-effort",
    "sslv2",
    "sslv3",
    "stderr",
    "styled-output",
    "suppress-connect-headers",
    "tcp-fastopen",
    "tcp-nodelay",
    "telnet-option",
    "tftp-blksize",
    "tftp-no-options",
    "time-cond",
    "tls-max",
    "tls13-ciphers",
    "tlsauthtype",
    "tlspassword",
    "tlsuser",
    "tlsv1",
    "tlsv1.0",
    "tlsv1.1",
    "tlsv1.2",
    "tlsv1.3",
    "tr-encoding",
    "trace",
    "trace-ascii",
    "trace-time",
    "unix-socket",
    "upload-file",
    "url",
    "url-query",
    "use-ascii",
    "user",
    "user-agent",
    "verbose",
    "version",
    "write-out",
    "xattr",
];

/// A supported long option (full name).
// Long by design: the table of curl's long option names, one line each.
pub(super) fn long(name: &str) -> Option<Opt> {
    Some(match name {
        "request" => Opt::Request,
        "header" => Opt::Header,
        "cookie" => Opt::Cookie,
        "data" | "data-ascii" | "data-binary" => Opt::Data,
        "data-raw" => Opt::DataRaw,
        "data-urlencode" => Opt::DataUrlencode,
        "json" => Opt::Json,
        "form" => Opt::Form,
        "form-string" => Opt::FormString,
        "user" => Opt::User,
        "oauth2-bearer" => Opt::Bearer,
        "user-agent" => Opt::UserAgent,
        "referer" => Opt::Referer,
        "range" => Opt::Range,
        "url" => Opt::Url,
        "url-query" => Opt::UrlQuery,
        "get" => Opt::Get,
        "head" => Opt::Head,
        "compressed" => Opt::Compressed,
        "insecure" => Opt::Insecure,
        "location" | "location-trusted" => Opt::Location,
        "globoff" => Opt::Globoff,
        "include"
        | "silent"
        | "show-error"
        | "verbose"
        | "fail"
        | "fail-early"
        | "fail-with-body"
        | "no-buffer"
        | "path-as-is"
        | "http1.0"
        | "http1.1"
        | "http2"
        | "http2-prior-knowledge"
        | "http3"
        | "http3-only"
        | "http0.9"
        | "tlsv1"
        | "tlsv1.0"
        | "tlsv1.1"
        | "tlsv1.2"
        | "tlsv1.3"
        | "sslv2"
        | "sslv3"
        | "ssl"
        | "ssl-reqd"
        | "ssl-no-revoke"
        | "ssl-revoke-best-effort"
        | "ssl-allow-beast"
        | "cert-status"
        | "false-start"
        | "no-alpn"
        | "no-npn"
        | "no-sessionid"
        | "no-keepalive"
        | "tcp-nodelay"
        | "tcp-fastopen"
        | "ipv4"
        | "ipv6"
        | "progress-bar"
        | "no-progress-meter"
        | "remote-name"
        | "remote-name-all"
        | "remote-header-name"
        | "remote-time"
        | "remove-on-error"
        | "create-dirs"
        | "no-clobber"
        | "xattr"
        | "trace-time"
        | "styled-output"
        | "junk-session-cookies"
        | "disable"
        | "retry-all-errors"
        | "retry-connrefused"
        | "parallel"
        | "parallel-immediate"
        | "raw"
        | "basic"
        | "post301"
        | "post302"
        | "post303"
        | "ignore-content-length"
        | "compressed-ssh"
        | "suppress-connect-headers"
        | "disallow-username-in-url"
        | "doh-insecure"
        | "doh-cert-status"
        | "manual" => Opt::Ignored,
        "cookie-jar"
        | "output"
        | "output-dir"
        | "dump-header"
        | "stderr"
        | "write-out"
        | "trace"
        | "trace-ascii"
        | "max-time"
        | "connect-timeout"
        | "max-redirs"
        | "retry"
        | "retry-delay"
        | "retry-max-time"
        | "limit-rate"
        | "max-filesize"
        | "speed-limit"
        | "speed-time"
        | "cacert"
        | "capath"
        | "crlfile"
        | "pinnedpubkey"
        | "ciphers"
        | "curves"
        | "tls-max"
        | "tls13-ciphers"
        | "proto"
        | "proto-default"
        | "proto-redir"
        | "interface"
        | "local-port"
        | "dns-servers"
        | "dns-interface"
        | "dns-ipv4-addr"
        | "dns-ipv6-addr"
        | "doh-url"
        | "alt-svc"
        | "expect100-timeout"
        | "happy-eyeballs-timeout-ms"
        | "keepalive-time"
        | "parallel-max"
        | "create-file-mode"
        | "libcurl"
        | "etag-save"
        | "egd-file"
        | "random-file"
        | "engine"
        | "rate" => Opt::IgnoredValue,
        _ => return None,
    })
}

/// Why a curl option that sonde knows of is refused.
pub(super) fn refusal(name: &str) -> &'static str {
    match name {
        "form-escape" => {
            "it changes how curl escapes multipart field names; sonde writes curl's default"
        }
        "upload-file" | "config" | "netrc" | "netrc-file" | "netrc-optional" | "etag-compare"
        | "hsts" => "it reads a file, which sonde does not do",
        "digest" | "ntlm" | "ntlm-wb" | "negotiate" | "anyauth" | "aws-sigv4" | "krb"
        | "delegation" => {
            "its authentication is computed by curl from a server challenge or a signature; import the Authorization header the browser sent instead"
        }
        "cert" | "key" | "cert-type" | "key-type" | "pass" | "ssl-auto-client-cert" => {
            "TLS client certificates are not supported"
        }
        "next" => "it starts a second request; sonde imports one request per command",
        "unix-socket"
        | "abstract-unix-socket"
        | "connect-to"
        | "resolve"
        | "haproxy-protocol"
        | "request-target" => {
            "it changes where or how the request is sent in a way sonde cannot reproduce"
        }
        "continue-at" | "time-cond" | "tr-encoding" | "crlf" | "use-ascii" | "append" => {
            "it changes the request in a way sonde does not reproduce"
        }
        n if n.starts_with("proxy")
            || n.starts_with("socks")
            || n == "preproxy"
            || n == "noproxy" =>
        {
            "proxies are not supported: sonde sends to the target directly"
        }
        _ => "it is not an HTTP request option sonde reproduces",
    }
}

/// Short options (letters curl 7.88 knows) as their long names.
pub(super) fn short_name(c: char) -> Option<&'static str> {
    Some(match c {
        'X' => "request",
        'H' => "header",
        'b' => "cookie",
        'd' => "data",
        'u' => "user",
        'A' => "user-agent",
        'e' => "referer",
        'r' => "range",
        'G' => "get",
        'I' => "head",
        'k' => "insecure",
        'L' => "location",
        'g' => "globoff",
        'i' => "include",
        's' => "silent",
        'S' => "show-error",
        'v' => "verbose",
        'f' => "fail",
        'N' => "no-buffer",
        'm' => "max-time",
        'o' => "output",
        'O' => "remote-name",
        'J' => "remote-header-name",
        'R' => "remote-time",
        'w' => "write-out",
        'c' => "cookie-jar",
        'D' => "dump-header",
        'j' => "junk-session-cookies",
        'q' => "disable",
        '4' => "ipv4",
        '6' => "ipv6",
        '#' => "progress-bar",
        '0' => "http1.0",
        '1' => "tlsv1",
        '2' => "sslv2",
        '3' => "sslv3",
        'Y' => "speed-limit",
        'y' => "speed-time",
        'Z' => "parallel",
        'M' => "manual",
        'x' => "proxy",
        'U' => "proxy-user",
        'p' => "proxytunnel",
        'F' => "form",
        'T' => "upload-file",
        'E' => "cert",
        'K' => "config",
        'n' => "netrc",
        ':' => "next",
        'z' => "time-cond",
        'C' => "continue-at",
        'a' => "append",
        'B' => "use-ascii",
        'l' => "list-only",
        'P' => "ftp-port",
        'Q' => "quote",
        't' => "telnet-option",
        'h' => "help",
        'V' => "version",
        _ => return None,
    })
}

const SUPPORTED: &str = "-X -H -b -d --data-raw --data-binary --data-ascii --data-urlencode --json -F --form-string -u --oauth2-bearer -A -e -r --url --url-query -G -I --compressed -k -L -g, and options that do not change the request (-s -S -v -i -o -m --max-time --connect-timeout --http2 --cacert …)";

pub(super) fn unknown(pos: Pos, option: &str) -> ImportError {
    ImportError::UnknownOption {
        line: pos.line,
        col: pos.col,
        option: option.to_string(),
        supported: SUPPORTED,
    }
}

pub(super) fn refused(pos: Pos, option: &str, reason: &str) -> ImportError {
    ImportError::RefusedOption {
        line: pos.line,
        col: pos.col,
        option: option.to_string(),
        reason: reason.to_string(),
    }
}

/// Resolves a long option name the way curl does: exact, `--no-X` for a flag, or a unique
/// prefix of one of curl's names. `Ok(None)` means a known curl option sonde refuses.
pub(super) fn resolve_long(
    name: &str,
    pos: Pos,
    written: &str,
) -> Result<(Opt, bool), ImportError> {
    let full = if CURL_LONG.contains(&name) || long(name).is_some() {
        name.to_string()
    } else if let Some(flag) = name.strip_prefix("no-")
        && let Some(opt) = long(flag).filter(|o| !o.takes_value())
    {
        return Ok((opt, false));
    } else {
        let hits: Vec<&str> = CURL_LONG
            .iter()
            .copied()
            .filter(|n| n.starts_with(name))
            .collect();
        match hits.as_slice() {
            [one] => one.to_string(),
            [] => return Err(unknown(pos, written)),
            many => {
                return Err(refused(
                    pos,
                    written,
                    &format!(
                        "it is ambiguous: it abbreviates {}",
                        many.iter()
                            .take(5)
                            .map(|n| format!("--{n}"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ));
            }
        }
    };
    match long(&full) {
        Some(opt) => Ok((opt, true)),
        None => Err(refused(pos, written, refusal(&full))),
    }
}
