//! Which hosts sonde may send a request to: the one rule, enforced in the transport for every
//! request of every command (load, breakdown, repro, bisect, setup steps, redirect hops).
//!
//! - Loopback (`127.0.0.0/8`, `::1`, `localhost` and `*.localhost`) is always allowed.
//! - Any other host only when the user named it on the command line: `--target`, `--allow-host`
//!   (a name, an IP address or a CIDR block), or the URL, curl file or HAR file they passed.
//! - Names are checked again after resolution: a name that resolves to a link-local address
//!   (`169.254.0.0/16`, the cloud metadata range, or `fe80::/10`), to an unspecified, multicast
//!   or broadcast address, or to a private range (`10/8`, `172.16/12`, `192.168/16`,
//!   `100.64/10`, `fc00::/7`) is refused unless that address is itself allowed (an IP or CIDR
//!   on the command line): allowing a name does not allow what a DNS answer may point it at.
//!   `localhost` names must resolve to loopback.
//!
//! A refused request never opens a connection: it fails with the class `not_allowed`, naming
//! the host and the rule. Pure logic, no I/O.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// An allowed address block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Block {
    addr: IpAddr,
    prefix: u8,
}

impl Block {
    fn contains(&self, ip: IpAddr) -> bool {
        let (a, b, width) = match (self.addr, ip) {
            (IpAddr::V4(a), IpAddr::V4(b)) => {
                (u128::from(u32::from(a)), u128::from(u32::from(b)), 32)
            }
            (IpAddr::V6(a), IpAddr::V6(b)) => (u128::from(a), u128::from(b), 128),
            _ => return false,
        };
        let prefix = u32::from(self.prefix).min(width);
        // The first `prefix` bits agree (a /0 block holds every address of its family).
        prefix == 0 || a >> (width - prefix) == b >> (width - prefix)
    }
}

impl fmt::Display for Block {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let full = if self.addr.is_ipv4() { 32 } else { 128 };
        if self.prefix == full {
            write!(f, "{}", self.addr)
        } else {
            write!(f, "{}/{}", self.addr, self.prefix)
        }
    }
}

/// The hosts a command may contact besides loopback. Built once from the command line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostPolicy {
    /// Lower-case host names, without a trailing dot.
    names: Vec<String>,
    blocks: Vec<Block>,
}

/// Why a request was refused (class `not_allowed`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub host: String,
    pub rule: String,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "request to {} not allowed: {}", self.host, self.rule)
    }
}

fn normalise_name(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

fn is_localhost_name(name: &str) -> bool {
    let n = normalise_name(name);
    n == "localhost" || n.ends_with(".localhost")
}

/// IPv4-mapped IPv6 addresses are judged as the IPv4 address they carry.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// The reason a resolved address needs an explicit allowance, if it does.
fn special_range(ip: IpAddr) -> Option<&'static str> {
    match canonical(ip) {
        IpAddr::V4(v4) => special_v4(v4),
        IpAddr::V6(v6) => special_v6(v6),
    }
}

fn special_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let o = ip.octets();
    if ip.is_link_local() {
        Some("a link-local address (169.254.0.0/16, where cloud metadata services answer)")
    } else if ip.is_unspecified() || o[0] == 0 {
        Some("an unspecified address (0.0.0.0/8)")
    } else if ip.is_broadcast() || ip.is_multicast() || o[0] >= 240 {
        Some("a broadcast, multicast or reserved address")
    } else if ip.is_private() {
        Some("a private address (10/8, 172.16/12, 192.168/16)")
    } else if o[0] == 100 && (64..128).contains(&o[1]) {
        Some("a shared (carrier-grade NAT) address (100.64/10)")
    } else {
        None
    }
}

fn special_v6(ip: Ipv6Addr) -> Option<&'static str> {
    let s = ip.segments();
    if s[0] & 0xffc0 == 0xfe80 {
        Some("a link-local address (fe80::/10)")
    } else if ip.is_unspecified() {
        Some("the unspecified address (::)")
    } else if ip.is_multicast() {
        Some("a multicast address")
    } else if s[0] & 0xfe00 == 0xfc00 {
        Some("a unique-local (private) address (fc00::/7)")
    } else {
        None
    }
}

impl HostPolicy {
    /// Loopback only.
    #[must_use]
    pub fn loopback_only() -> HostPolicy {
        HostPolicy::default()
    }

    /// Allow what the user wrote after `--allow-host`: a host name, an IP address (IPv6 with or
    /// without brackets) or a CIDR block (`10.0.0.0/8`).
    pub fn allow(&mut self, spec: &str) -> Result<(), String> {
        let s = spec.trim();
        if s.is_empty() {
            return Err("an empty host".into());
        }
        if s.contains("://") {
            let url = url::Url::parse(s).map_err(|e| format!("`{s}` is not a valid URL: {e}"))?;
            self.allow_url(&url);
            return Ok(());
        }
        if let Some((addr, prefix)) = s.split_once('/') {
            let addr = addr.trim_start_matches('[').trim_end_matches(']');
            let ip: IpAddr = addr
                .parse()
                .map_err(|_| format!("`{s}`: `{addr}` is not an IP address"))?;
            let full = if ip.is_ipv4() { 32 } else { 128 };
            let prefix: u8 = prefix
                .parse()
                .ok()
                .filter(|p| *p <= full)
                .ok_or_else(|| format!("`{s}`: the prefix length must be 0 to {full}"))?;
            self.push_block(Block {
                addr: canonical(ip),
                prefix,
            });
            return Ok(());
        }
        let bare = s.trim_start_matches('[').trim_end_matches(']');
        if let Ok(ip) = bare.parse::<IpAddr>() {
            self.push_ip(ip);
            return Ok(());
        }
        // `host:port` is accepted; the port does not matter to the rule.
        let name = match s.rsplit_once(':') {
            Some((h, p)) if !h.contains(':') && p.bytes().all(|b| b.is_ascii_digit()) => h,
            _ => s,
        };
        if name.contains(|c: char| c.is_whitespace() || c == '/' || c == '@') {
            return Err(format!(
                "`{s}` is not a host name, IP address or CIDR block"
            ));
        }
        // A name written as an IP with a port (`10.0.0.1:8080`).
        if let Ok(ip) = name.parse::<IpAddr>() {
            self.push_ip(ip);
            return Ok(());
        }
        let name = match url::Host::parse(name) {
            Ok(url::Host::Domain(d)) => d,
            Ok(url::Host::Ipv4(ip)) => {
                self.push_ip(ip.into());
                return Ok(());
            }
            Ok(url::Host::Ipv6(ip)) => {
                self.push_ip(ip.into());
                return Ok(());
            }
            Err(e) => return Err(format!("`{s}` is not a valid host name: {e}")),
        };
        let n = normalise_name(&name);
        if !self.names.contains(&n) {
            self.names.push(n);
        }
        Ok(())
    }

    /// Allow the host of a URL the user named on the command line.
    pub fn allow_url(&mut self, url: &url::Url) {
        match url.host() {
            Some(url::Host::Domain(d)) => {
                let n = normalise_name(d);
                if !self.names.contains(&n) {
                    self.names.push(n);
                }
            }
            Some(url::Host::Ipv4(ip)) => self.push_ip(ip.into()),
            Some(url::Host::Ipv6(ip)) => self.push_ip(ip.into()),
            None => {}
        }
    }

    fn push_ip(&mut self, ip: IpAddr) {
        let ip = canonical(ip);
        let prefix = if ip.is_ipv4() { 32 } else { 128 };
        self.push_block(Block { addr: ip, prefix });
    }

    fn push_block(&mut self, b: Block) {
        if !self.blocks.contains(&b) {
            self.blocks.push(b);
        }
    }

    fn ip_allowed(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        ip.is_loopback() || self.blocks.iter().any(|b| b.contains(ip))
    }

    /// Before anything is sent: is this URL host allowed at all?
    pub fn check_host(&self, host: &url::Host<&str>) -> Result<(), Refusal> {
        let refuse = |h: String| Refusal {
            rule: format!(
                "{h} is not loopback and was not named on the command line \
                 (add --allow-host {} or pass it with --target)",
                h.trim_start_matches('[').trim_end_matches(']')
            ),
            host: h,
        };
        match host {
            url::Host::Ipv4(ip) => {
                if self.ip_allowed((*ip).into()) {
                    Ok(())
                } else {
                    Err(refuse(ip.to_string()))
                }
            }
            url::Host::Ipv6(ip) => {
                if self.ip_allowed((*ip).into()) {
                    Ok(())
                } else {
                    Err(refuse(format!("[{ip}]")))
                }
            }
            url::Host::Domain(d) => {
                let n = normalise_name(d);
                if is_localhost_name(&n) || self.names.contains(&n) {
                    Ok(())
                } else {
                    Err(refuse(n))
                }
            }
        }
    }

    /// The same check on a URL string's host, for plans and dry runs.
    pub fn check_url(&self, url: &url::Url) -> Result<(), Refusal> {
        match url.host() {
            Some(h) => self.check_host(&h),
            None => Ok(()),
        }
    }

    /// After resolving the allowed name `name`: may a connection go to `ip`?
    pub fn check_resolved(&self, name: &str, ip: IpAddr) -> Result<(), Refusal> {
        let ip = canonical(ip);
        if ip.is_loopback() {
            return Ok(());
        }
        if is_localhost_name(name) {
            return Err(Refusal {
                host: name.to_string(),
                rule: format!("{name} resolved to {ip}, which is not a loopback address"),
            });
        }
        if self.blocks.iter().any(|b| b.contains(ip)) {
            return Ok(());
        }
        match special_range(ip) {
            None => Ok(()),
            Some(what) => Err(Refusal {
                host: name.to_string(),
                rule: format!(
                    "{name} resolved to {ip}, {what}; allowing a name does not allow the \
                     private or link-local addresses it may resolve to (add --allow-host {ip} \
                     to allow it)"
                ),
            }),
        }
    }

    /// Everything allowed besides loopback, for `--dry-run` and messages.
    pub fn describe(&self) -> Vec<String> {
        let mut out: Vec<String> = self.names.clone();
        out.extend(self.blocks.iter().map(Block::to_string));
        out
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    fn host(s: &str) -> url::Host<String> {
        url::Host::parse(s).unwrap()
    }

    fn check(p: &HostPolicy, s: &str) -> Result<(), Refusal> {
        let h = host(s);
        let h = match &h {
            url::Host::Domain(d) => url::Host::Domain(d.as_str()),
            url::Host::Ipv4(i) => url::Host::Ipv4(*i),
            url::Host::Ipv6(i) => url::Host::Ipv6(*i),
        };
        p.check_host(&h)
    }

    #[test]
    fn loopback_is_always_allowed_and_nothing_else_by_default() {
        let p = HostPolicy::loopback_only();
        for ok in [
            "127.0.0.1",
            "127.9.9.9",
            "[::1]",
            "localhost",
            "api.localhost",
        ] {
            assert!(check(&p, ok).is_ok(), "{ok}");
        }
        for bad in [
            "10.0.0.1",
            "169.254.169.254",
            "example.com",
            "[fe80::1]",
            "0.0.0.0",
        ] {
            let e = check(&p, bad).unwrap_err();
            assert!(e.to_string().contains("not allowed"), "{e}");
            assert!(e.rule.contains("--allow-host"), "{e}");
        }
    }

    #[test]
    fn names_ips_and_cidrs_from_the_command_line() {
        let mut p = HostPolicy::loopback_only();
        p.allow("API.Example.com.").unwrap();
        p.allow("10.1.2.3:8080").unwrap();
        p.allow("192.168.0.0/16").unwrap();
        p.allow("[2001:db8::1]").unwrap();
        p.allow("https://other.test:8443/x").unwrap();
        assert!(check(&p, "api.example.com").is_ok());
        assert!(check(&p, "other.test").is_ok());
        assert!(check(&p, "10.1.2.3").is_ok());
        assert!(check(&p, "10.1.2.4").is_err());
        assert!(check(&p, "192.168.7.7").is_ok());
        assert!(check(&p, "[2001:db8::1]").is_ok());
        assert!(check(&p, "evil.example.com").is_err());
        assert!(check(&p, "[2001:db8::2]").is_err());
        p.allow("2001:db8::/32").unwrap();
        assert!(check(&p, "[2001:db8:1::5]").is_ok());
        assert!(check(&p, "[2001:db9::1]").is_err());
        assert!(p.allow("10.0.0.0/33").is_err());
        assert!(p.allow("a b").is_err());
        assert!(p.allow("").is_err());
    }

    #[test]
    fn resolution_to_metadata_or_private_ranges_is_refused_for_names() {
        let mut p = HostPolicy::loopback_only();
        p.allow("api.example.com").unwrap();
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert!(
            p.check_resolved("api.example.com", ip("93.184.216.34"))
                .is_ok()
        );
        assert!(p.check_resolved("api.example.com", ip("127.0.0.1")).is_ok());
        let e = p
            .check_resolved("api.example.com", ip("169.254.169.254"))
            .unwrap_err();
        assert!(e.rule.contains("link-local"), "{e}");
        assert!(p.check_resolved("api.example.com", ip("10.0.0.5")).is_err());
        assert!(
            p.check_resolved("api.example.com", ip("::ffff:169.254.169.254"))
                .is_err()
        );
        assert!(p.check_resolved("api.example.com", ip("fd00::1")).is_err());
        assert!(p.check_resolved("localhost", ip("10.0.0.5")).is_err());
        p.allow("10.0.0.0/8").unwrap();
        assert!(p.check_resolved("api.example.com", ip("10.0.0.5")).is_ok());
    }
}
