//! "Did you mean": the closest allowed word to what was written.

/// The candidate closest to `word` if it is close enough to be a likely typo: same word in
/// another case, or a small edit distance relative to the word's length.
pub fn closest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let lower = word.to_lowercase();
    let mut best: Option<(&str, f64)> = None;
    for c in candidates {
        if c.to_lowercase() == lower {
            return Some(c);
        }
        let score = strsim::jaro_winkler(&lower, &c.to_lowercase());
        let distance = strsim::damerau_levenshtein(&lower, &c.to_lowercase());
        let close = score >= 0.85 || distance <= (word.len() / 4).max(1);
        if close && best.is_none_or(|(_, s)| score > s) {
            best = Some((c, score));
        }
    }
    best.map(|(c, _)| c)
}

#[cfg(test)]
mod tests {
    use super::closest;

    #[test]
    fn finds_typos_and_case_slips() {
        let keys = ["name", "address", "roles", "ssh", "labels"];
        assert_eq!(closest("adress", keys), Some("address"));
        assert_eq!(closest("role", keys), Some("roles"));
        assert_eq!(closest("Address", keys), Some("address"));
        assert_eq!(closest("podCidr", ["podCIDR", "serviceCIDR"]), Some("podCIDR"));
        assert_eq!(closest("zzz", keys), None);
    }
}
