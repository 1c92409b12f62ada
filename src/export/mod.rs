//! Live metrics to other systems while a run goes on. `--out prometheus=URL` pushes with the
//! Prometheus remote-write protocol (`prometheus`). Everything here runs off the hot path: the
//! aggregator's per-second merge hands a snapshot to a separate task through a bounded queue.

pub mod live;
pub mod prometheus;

/// Splits `--out` values into report files and remote outputs (`prometheus=URL`).
pub fn split_outs(
    outs: &[std::path::PathBuf],
) -> Result<(Vec<std::path::PathBuf>, Vec<url::Url>), String> {
    let mut files = Vec::new();
    let mut prom = Vec::new();
    for o in outs {
        let text = o.to_string_lossy();
        match text.split_once('=') {
            Some(("prometheus", raw)) => {
                let url = url::Url::parse(raw)
                    .map_err(|e| format!("--out prometheus=`{raw}`: not a URL: {e}"))?;
                if !matches!(url.scheme(), "http" | "https") {
                    return Err(format!(
                        "--out prometheus=`{raw}`: the remote-write URL must be http(s), e.g. \
                         http://127.0.0.1:9090/api/v1/write"
                    ));
                }
                prom.push(url);
            }
            Some((kind, _)) if !kind.contains(['/', '.', '\\']) => {
                return Err(format!(
                    "--out `{text}`: unknown output `{kind}` (remote outputs: prometheus=URL; \
                     report files: a path ending in .json, .txt, .md, .xml or .html)"
                ));
            }
            _ => files.push(o.clone()),
        }
    }
    if prom.len() > 1 {
        return Err("--out prometheus=URL given more than once".into());
    }
    Ok((files, prom))
}
