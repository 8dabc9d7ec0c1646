//! `SHA256SUMS` in the format `sha256sum` writes and `sha256sum -c` reads: one `HASH  PATH` line
//! per file (`HASH *PATH` in binary mode), so an operator can check a bundle without groundwork.

use std::collections::BTreeMap;

/// A line that is not `HASH  PATH`: its number (from 1) and text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadLine {
    pub line: usize,
    pub text: String,
}

/// Path (normalised, see [`normalize`]) -> lowercase hex sum.
pub fn parse(text: &str) -> Result<BTreeMap<String, String>, BadLine> {
    let mut sums = BTreeMap::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim_end_matches('\r');
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        let bad = || BadLine { line: i + 1, text: line.to_string() };
        let (hash, rest) = line.split_once(' ').ok_or_else(bad)?;
        // `HASH  PATH` (text mode) or `HASH *PATH` (binary mode): one separator, then a marker.
        let path = rest.strip_prefix(' ').or_else(|| rest.strip_prefix('*')).ok_or_else(bad)?;
        if !is_sha256(hash) || path.is_empty() {
            return Err(bad());
        }
        sums.insert(normalize(path).to_string(), hash.to_ascii_lowercase());
    }
    Ok(sums)
}

/// `./bin/kubeadm` and `bin/kubeadm` are the same entry.
pub fn normalize(path: &str) -> &str {
    let mut p = path;
    while let Some(rest) = p.strip_prefix("./") {
        p = rest;
    }
    p
}

/// 64 hex digits.
pub fn is_sha256(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}
