//! `removed.json`: the hosts `groundwork node remove` took out of the cluster, and when. While the
//! inventory still lists one, `apply` joins it again (that is how a node is replaced); the record
//! lets `apply` and `plan` say so first, and goes once the host is a member again.

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::{StateDir, write_atomic};

fn file(state: &StateDir) -> PathBuf {
    state.root().join("removed.json")
}

/// Host name -> when it was removed (seconds since the epoch, UTC).
pub fn load(state: &StateDir) -> BTreeMap<String, i64> {
    std::fs::read(file(state)).ok().and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or_default()
}

fn save(state: &StateDir, removed: &BTreeMap<String, i64>) -> std::io::Result<()> {
    if removed.is_empty() {
        return match std::fs::remove_file(file(state)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        };
    }
    write_atomic(&file(state), &serde_json::to_vec_pretty(removed).expect("serialisable"), 0o600)
}

pub fn record(state: &StateDir, host: &str) -> std::io::Result<()> {
    let mut removed = load(state);
    removed.insert(host.to_string(), time::OffsetDateTime::now_utc().unix_timestamp());
    save(state, &removed)
}

/// Forgets `hosts` (joined again).
pub fn forget<'a>(state: &StateDir, hosts: impl IntoIterator<Item = &'a str>) -> std::io::Result<()> {
    let mut removed = load(state);
    let before = removed.len();
    for h in hosts {
        removed.remove(h);
    }
    if removed.len() == before { Ok(()) } else { save(state, &removed) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_removed_host_is_recorded_until_it_is_forgotten() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::for_cluster(dir.path(), "c");
        state.create().unwrap();
        assert!(load(&state).is_empty());
        record(&state, "worker-4").unwrap();
        record(&state, "master-3").unwrap();
        assert_eq!(load(&state).keys().collect::<Vec<_>>(), ["master-3", "worker-4"]);
        forget(&state, ["worker-4", "worker-9"]).unwrap();
        assert_eq!(load(&state).keys().collect::<Vec<_>>(), ["master-3"]);
        forget(&state, ["master-3"]).unwrap();
        assert!(!state.root().join("removed.json").exists());
    }
}
