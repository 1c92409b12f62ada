//! "Did you mean": the one typo search behind every suggestion sonde makes (scenario keys and
//! names, threshold metrics, environment names, HTTP methods). A leaf: reads nothing else of the
//! crate.

/// The closest candidate to `word`, if it is close enough to be a likely typo.
pub fn suggest<'a, I>(word: &str, candidates: I) -> Option<String>
where
    I: IntoIterator<Item = &'a str>,
{
    let lower = word.to_lowercase();
    let mut best: Option<(f64, &str)> = None;
    for c in candidates {
        if c == word {
            continue;
        }
        let score = strsim::jaro_winkler(&lower, &c.to_lowercase());
        let close = strsim::damerau_levenshtein(&lower, &c.to_lowercase());
        let ok = score >= 0.8 || close <= 2 && close < c.chars().count().max(2);
        if ok && best.is_none_or(|(s, _)| score > s) {
            best = Some((score, c));
        }
    }
    best.map(|(_, c)| c.to_string())
}

/// `did you mean `x`?` for the closest candidate, if any.
pub fn did_you_mean<'a, I>(word: &str, candidates: I) -> Option<String>
where
    I: IntoIterator<Item = &'a str>,
{
    suggest(word, candidates).map(|c| format!("did you mean `{c}`?"))
}

/// The standard method a non-standard one is one edit away from (`GTE` → `GET`): the scenario
/// loader takes it for a typo and refuses it, so import refuses it too rather than write a
/// file the loader rejects. `None` for a standard method or any other token.
#[must_use]
pub fn method_typo(method: &str) -> Option<&'static str> {
    const STANDARD: [&str; 7] = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"];
    let upper = method.to_ascii_uppercase();
    if STANDARD.contains(&upper.as_str()) {
        return None;
    }
    STANDARD
        .into_iter()
        .find(|m| strsim::damerau_levenshtein(&upper, m) <= 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closest_candidate_or_none() {
        assert_eq!(
            suggest("methd", ["method", "url"]),
            Some("method".to_string())
        );
        assert_eq!(suggest("x", ["method", "url"]), None);
        assert_eq!(suggest("url", ["url"]), None);
        assert_eq!(
            did_you_mean("whal", ["whale", "default"]).as_deref(),
            Some("did you mean `whale`?")
        );
        assert_eq!(method_typo("GTE"), Some("GET"));
        assert_eq!(method_typo("get"), None);
        assert_eq!(method_typo("PURGE"), None);
    }
}
