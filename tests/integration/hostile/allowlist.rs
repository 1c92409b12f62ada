//! The allow-list: loopback always, any other host only when named on the command line.
//!
//! Every case runs inside a private network namespace (`unshare -n -m`) where the "foreign"
//! addresses (169.254.169.254, the cloud metadata address, and 10.77.0.1, a private one) are
//! put on that namespace's own `lo`, with a listener that records every connection
//! (`tests/fixtures/netns/recorder.py`) and an `/etc/hosts` of its own bound over the real one
//! (`metadata.test` and `internal.test` point at them). Nothing ever leaves this machine: the
//! namespace has no other interface.

use std::path::Path;
use std::process::Command;

const HOSTS: &str = "127.0.0.1 localhost\n::1 localhost\n\
169.254.169.254 metadata.test\n10.77.0.1 internal.test\n";

/// What happened inside one namespace: sonde's output and the connections that arrived.
struct NsRun {
    out: String,
    /// One `{"on": "ADDR:PORT", "head": "..."}` per accepted connection or request.
    log: Vec<serde_json::Value>,
}

impl NsRun {
    fn to(&self, on: &str) -> Vec<&str> {
        self.log
            .iter()
            .filter(|l| l["on"] == on)
            .filter_map(|l| l["head"].as_str())
            .collect()
    }

    fn exit(&self) -> i32 {
        self.out
            .lines()
            .rev()
            .find_map(|l| l.strip_prefix("exit="))
            .and_then(|c| c.trim().parse().ok())
            .unwrap_or(-1)
    }
}

/// True when this machine lets the test make a private network namespace (root, unshare).
pub fn netns_available() -> bool {
    let ok = Command::new("unshare")
        .args(["-n", "-m", "true"])
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must be able to create network namespaces (unshare -n -m, as root)"
        );
        eprintln!("SKIPPED: cannot create a network namespace here (needs root and unshare)");
    }
    ok
}

/// Runs `body` (shell; `$SONDE` is the binary, `$D` a scratch directory) inside a fresh network
/// and mount namespace with the recorder listening on 127.0.0.1:18080, 169.254.169.254:80 and
/// 10.77.0.1:80.
fn in_netns(dir: &Path, body: &str) -> NsRun {
    in_netns_with(dir, "", body)
}

/// `in_netns` with `setup` run first (inside the namespaces, before the recorder starts).
fn in_netns_with(dir: &Path, setup: &str, body: &str) -> NsRun {
    let log = dir.join("log.jsonl");
    let hosts = dir.join("hosts");
    std::fs::write(&hosts, HOSTS).unwrap();
    let _ = std::fs::remove_file(&log);
    let _ = std::fs::remove_file(dir.join("log.jsonl.ready"));
    let recorder = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/netns/recorder.py");
    let script = format!(
        r#"
set -u
ip link set lo up
ip addr add 169.254.169.254/32 dev lo
ip addr add 10.77.0.1/32 dev lo
mount --bind '{hosts}' /etc/hosts
D='{dir}'
{setup}
python3 '{recorder}' '{log}' 127.0.0.1:18080 169.254.169.254:80 10.77.0.1:80 >/dev/null 2>&1 &
REC=$!
i=0; while [ ! -f '{log}.ready' ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i+1)); done
SONDE='{sonde}'
{body}
kill $REC 2>/dev/null
"#,
        hosts = hosts.display(),
        recorder = recorder.display(),
        log = log.display(),
        sonde = env!("CARGO_BIN_EXE_sonde"),
        dir = dir.display(),
    );
    let out = Command::new("unshare")
        .args(["-n", "-m", "sh", "-c", &script])
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let log = std::fs::read_to_string(&log)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    NsRun { out: text, log }
}

fn scenario(dir: &Path, name: &str, text: &str) {
    std::fs::write(dir.join(name), text).unwrap();
}

#[test]
fn absolute_step_and_setup_urls_on_other_hosts_are_refused_before_anything_is_sent() {
    if !netns_available() {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    scenario(
        d.path(),
        "step.yaml",
        "name: s\ntarget: http://127.0.0.1:18080\nload: { vus: 2, duration: 2s }\nsteps:\n  \
         - name: local\n    request: { url: /ok }\n  \
         - name: foreign\n    request: { url: 'http://10.77.0.1/x' }\n",
    );
    scenario(
        d.path(),
        "setup.yaml",
        "name: s\ntarget: http://127.0.0.1:18080\nload: { vus: 1, iterations: 1 }\nsetup:\n  \
         - name: meta\n    request: { url: 'http://169.254.169.254/latest/meta-data/' }\n\
         steps:\n  - name: local\n    request: { url: /ok }\n",
    );
    let r = in_netns(
        d.path(),
        r#"$SONDE run "$D/step.yaml" -q; echo "exit=$?"
$SONDE run "$D/setup.yaml" -q; echo "exit2=$?"
$SONDE breakdown "$D/step.yaml" -n 1; echo "exit3=$?"
$SONDE run "$D/step.yaml" --dry-run; echo "dry=$?""#,
    );
    assert_eq!(r.exit(), 2, "{}", r.out);
    assert!(r.out.contains("exit2=2"), "{}", r.out);
    assert!(r.out.contains("exit3=2"), "{}", r.out);
    assert!(
        r.out.contains("step `foreign` sends to http://10.77.0.1/"),
        "{}",
        r.out
    );
    assert!(
        r.out
            .contains("setup step `meta` sends to http://169.254.169.254/"),
        "{}",
        r.out
    );
    assert!(r.out.contains("nothing was sent"), "{}", r.out);
    // Nothing at all reached any listener, not even the allowed loopback target.
    assert!(r.log.is_empty(), "{:?}\n{}", r.log, r.out);
    // The dry run names every host with its verdict.
    assert!(r.out.contains("dry=2"), "{}", r.out);
    assert!(r.out.contains("hosts this plan may contact"), "{}", r.out);

    // Named on the command line, the same step is allowed and arrives.
    let r = in_netns(
        d.path(),
        r#"$SONDE run "$D/step.yaml" -q -z 1s --vus 1 --allow-host 10.77.0.1; echo "exit=$?""#,
    );
    assert_eq!(r.exit(), 0, "{}", r.out);
    assert!(!r.to("10.77.0.1:80").is_empty(), "{}", r.out);
}

#[test]
fn redirects_to_other_hosts_are_refused_and_never_carry_secrets() {
    if !netns_available() {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let r = in_netns(
        d.path(),
        r#"$SONDE run --url 'http://127.0.0.1:18080/redirect-to/http://169.254.169.254/latest/meta-data/' -n 3 -q -H 'X-Api-Key: k-canary-1'; echo "exit=$?"
$SONDE run --url 'http://127.0.0.1:18080/redirect-to/http://metadata.test/latest/' -n 2 -q --allow-host metadata.test; echo "exit2=$?"
$SONDE run --url 'http://127.0.0.1:18080/redirect-to/http://10.77.0.1/next' -n 1 -q --allow-host 10.77.0.1 -H 'X-Api-Key: k-canary-2' -H 'Authorization: Bearer b-canary-3' -H 'X-Session-Token: t-canary-4' -H 'Accept: text/plain'; echo "exit3=$?""#,
    );
    // The metadata address never saw a connection, by IP or through an allowed name.
    assert!(r.to("169.254.169.254:80").is_empty(), "{}", r.out);
    assert!(r.out.contains("not_allowed"), "{}", r.out);
    assert!(r.out.contains("169.254.169.254"), "{}", r.out);
    assert!(r.out.contains("link-local"), "{}", r.out);
    // The allowed private host got the hop, without any credential.
    let hops = r.to("10.77.0.1:80");
    assert_eq!(hops.len(), 1, "{:?}\n{}", r.log, r.out);
    let head = hops[0].to_ascii_lowercase();
    assert!(head.starts_with("get /next "), "{head}");
    assert!(head.contains("accept: text/plain"), "{head}");
    for canary in [
        "k-canary-2",
        "b-canary-3",
        "t-canary-4",
        "authorization",
        "x-api-key",
    ] {
        assert!(!head.contains(canary), "{canary} crossed hosts: {head}");
    }
    // The first hop on loopback kept them.
    let first = r
        .to("127.0.0.1:18080")
        .into_iter()
        .find(|h| h.contains("/redirect-to/http://10.77.0.1/next"))
        .unwrap()
        .to_string();
    assert!(first.contains("k-canary-2"), "{first}");
    assert!(r.out.contains("exit3=0"), "{}", r.out);
}

#[test]
fn names_are_checked_after_resolution() {
    if !netns_available() {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let r = in_netns(
        d.path(),
        r#"$SONDE run --url 'http://internal.test/a' -n 2 -q; echo "exit=$?"
$SONDE run --url 'http://internal.test/b' -n 2 -q --allow-host 10.77.0.0/16; echo "exit2=$?""#,
    );
    // Named on the command line, but it resolves to a private address nobody allowed.
    let first: Vec<&str> = r
        .to("10.77.0.1:80")
        .into_iter()
        .filter(|h| h.starts_with("GET /a "))
        .collect();
    assert!(first.is_empty(), "{}", r.out);
    assert!(
        r.out.contains("internal.test resolved to 10.77.0.1"),
        "{}",
        r.out
    );
    assert_eq!(
        r.exit(),
        3,
        "every request refused is a run that reached nothing\n{}",
        r.out
    );
    // With the private range allowed too, it goes.
    let second = r
        .to("10.77.0.1:80")
        .into_iter()
        .filter(|h| h.starts_with("GET /b "))
        .count();
    assert_eq!(second, 2, "{}", r.out);
    assert!(r.out.contains("exit2=0"), "{}", r.out);
}

#[test]
fn a_resolver_that_never_answers_is_a_dns_error_within_the_request_timeout() {
    if !netns_available() {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    std::fs::write(
        d.path().join("resolv.conf"),
        "nameserver 127.0.0.1\noptions timeout:30 attempts:5\n",
    )
    .unwrap();
    // A DNS server on the namespace's loopback that reads every query and never answers.
    let setup = r#"mount --bind "$D/resolv.conf" /etc/resolv.conf
python3 -c 'import socket,time
s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM); s.bind(("127.0.0.1",53))
while True: s.recvfrom(4096)' >/dev/null 2>&1 &"#;
    let r = in_netns_with(
        d.path(),
        setup,
        r#"start=$(date +%s)
$SONDE run --url 'http://stuck.example/' --allow-host stuck.example --vus 2 -z 1s --timeout 2s -q; echo "exit=$?"
end=$(date +%s); echo "took=$((end-start))""#,
    );
    assert_eq!(r.exit(), 3, "{}", r.out);
    assert!(
        r.out.contains("resolving stuck.example did not finish"),
        "{}",
        r.out
    );
    assert!(r.out.contains("dns"), "{}", r.out);
    let took: u64 = r
        .out
        .lines()
        .find_map(|l| l.strip_prefix("took="))
        .and_then(|t| t.trim().parse().ok())
        .unwrap();
    // 1 s of load, lookups cut at the 2 s request timeout: never the resolver's 150 s.
    assert!(took <= 6, "took {took}s\n{}", r.out);
}

#[test]
fn repro_and_bisect_send_only_to_the_hosts_of_the_files_named() {
    if !netns_available() {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    std::fs::write(
        d.path().join("good.curl"),
        "curl 'http://10.77.0.1/flow' -H 'Accept-Language: en'\n",
    )
    .unwrap();
    std::fs::write(
        d.path().join("bad.curl"),
        "curl 'http://10.77.0.1/flow' -H 'Accept-Language: de'\n",
    )
    .unwrap();
    scenario(
        d.path(),
        "remote.yaml",
        "name: r\ntarget: http://10.77.0.1\nsteps:\n  - name: a\n    request: { url: /scenario-target }\n",
    );
    let r = in_netns(
        d.path(),
        r#"$SONDE repro --env "$D/good.curl" --env "$D/bad.curl" -n 1; echo "exit=$?"
$SONDE repro "$D/remote.yaml" -n 1; echo "exit2=$?"
$SONDE bisect "$D/remote.yaml" --good header:Accept-Language=en --bad header:Accept-Language=de -n 1; echo "exit3=$?"
$SONDE breakdown "$D/good.curl" --target http://127.0.0.1:18080 -n 1 --connection reuse; echo "exit4=$?""#,
    );
    // The curl files named 10.77.0.1: their request went there, twice (one per env).
    let flows = r
        .to("10.77.0.1:80")
        .into_iter()
        .filter(|h| h.starts_with("GET /flow "))
        .count();
    assert_eq!(flows, 2, "{}", r.out);
    // breakdown honours --target for a curl file: its request went to loopback instead.
    assert!(r.out.contains("exit4=0"), "{}", r.out);
    let local = r
        .to("127.0.0.1:18080")
        .into_iter()
        .filter(|h| h.starts_with("GET /flow "))
        .count();
    assert!(local >= 1, "{}", r.out);
    // A scenario's own remote target is not on the command line: refused, nothing sent.
    assert!(r.out.contains("exit2=2"), "{}", r.out);
    assert!(r.out.contains("exit3=2"), "{}", r.out);
    assert!(
        !r.to("10.77.0.1:80")
            .iter()
            .any(|h| h.contains("/scenario-target")),
        "{}",
        r.out
    );
}

#[test]
fn a_prometheus_receiver_on_a_host_not_named_gets_nothing() {
    if !netns_available() {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    // The receiver is refused before setup or load send anything (exit 2, naming it); named
    // with --allow-host, the pushes arrive.
    let r = in_netns(
        d.path(),
        r#"$SONDE run --url http://127.0.0.1:18080/ok -n 1 -q --out prometheus=http://10.77.0.1/api/v1/write; echo "exit=$?""#,
    );
    assert_eq!(r.exit(), 2, "{}", r.out);
    assert!(r.out.contains("prometheus=http://10.77.0.1/"), "{}", r.out);
    assert!(r.log.is_empty(), "{:?}\n{}", r.log, r.out);
    let r = in_netns(
        d.path(),
        r#"$SONDE run --url http://127.0.0.1:18080/ok -n 1 -q --allow-host 10.77.0.1 --out prometheus=http://10.77.0.1/api/v1/write; echo "exit=$?""#,
    );
    assert!(
        r.to("10.77.0.1:80")
            .iter()
            .any(|h| h.starts_with("POST /api/v1/write")),
        "{:?}\n{}",
        r.log,
        r.out
    );
}
