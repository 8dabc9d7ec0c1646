//! The journal: per phase and host, whether it finished, when, how long it took, and a
//! fingerprint of what was asked. A re-run reads it to say where it resumes; phases still verify
//! their work (cheaply, through idempotent checks) rather than trust the journal blindly, because
//! a host may have changed behind groundwork's back.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PhaseStatus {
    Done,
    Failed,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JournalEntry {
    pub status: PhaseStatus,
    /// Seconds since the Unix epoch.
    pub at: u64,
    pub took_ms: u64,
    /// How many changes the phase made on the host in that run.
    pub changes: usize,
    /// The failure, one line (never a secret: errors carry no secret values).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct Journal {
    /// phase -> host -> entry
    pub phases: BTreeMap<String, BTreeMap<String, JournalEntry>>,
    #[serde(skip)]
    file: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("cannot read the journal {}: {source}", path.display())]
    Read { path: PathBuf, source: std::io::Error },
    #[error("the journal {} is damaged ({source}); move it aside to start the journal afresh (the cluster itself is not affected)", path.display())]
    Parse { path: PathBuf, source: serde_json::Error },
    #[error("cannot write the journal {}: {source}", path.display())]
    Write { path: PathBuf, source: std::io::Error },
}

impl Journal {
    /// The journal in `file`, or an empty one when there is none yet.
    pub fn load(file: &Path) -> Result<Journal, JournalError> {
        let mut journal = match std::fs::read(file) {
            Ok(bytes) => serde_json::from_slice::<Journal>(&bytes)
                .map_err(|source| JournalError::Parse { path: file.to_path_buf(), source })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Journal::default(),
            Err(source) => return Err(JournalError::Read { path: file.to_path_buf(), source }),
        };
        journal.file = file.to_path_buf();
        Ok(journal)
    }

    pub fn entry(&self, phase: &str, host: &str) -> Option<&JournalEntry> {
        self.phases.get(phase).and_then(|h| h.get(host))
    }

    pub fn is_done(&self, phase: &str, host: &str) -> bool {
        self.entry(phase, host).is_some_and(|e| e.status == PhaseStatus::Done)
    }

    /// Records one outcome and writes the journal at once (atomically), so that an interrupted
    /// run leaves a journal that says exactly how far it came.
    pub fn record(&mut self, phase: &str, host: &str, entry: JournalEntry) -> Result<(), JournalError> {
        self.phases.entry(phase.to_string()).or_default().insert(host.to_string(), entry);
        self.save()
    }

    fn save(&self) -> Result<(), JournalError> {
        let text = serde_json::to_vec_pretty(self).expect("the journal always serialises");
        super::write_atomic(&self.file, &text, 0o600)
            .map_err(|source| JournalError::Write { path: self.file.clone(), source })
    }
}

pub fn now_secs() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_survive_a_reload_and_a_damaged_journal_says_what_to_do() {
        let dir = std::env::temp_dir().join(format!("gw-journal-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("journal.json");
        let mut j = Journal::load(&file).unwrap();
        assert!(!j.is_done("etcd", "master-1"));
        let e = JournalEntry { status: PhaseStatus::Done, at: 1, took_ms: 5, changes: 2, error: None };
        j.record("etcd", "master-1", e.clone()).unwrap();
        let failed = JournalEntry { status: PhaseStatus::Failed, error: Some("lost".into()), ..e.clone() };
        j.record("etcd", "master-2", failed).unwrap();
        let back = Journal::load(&file).unwrap();
        assert!(back.is_done("etcd", "master-1"));
        assert!(!back.is_done("etcd", "master-2"));
        assert_eq!(back.entry("etcd", "master-1"), Some(&e));

        std::fs::write(&file, b"{ not json").unwrap();
        let err = Journal::load(&file).unwrap_err().to_string();
        assert!(err.contains("damaged") && err.contains("move it aside"), "{err}");
        std::fs::remove_dir_all(dir).unwrap();
    }
}
