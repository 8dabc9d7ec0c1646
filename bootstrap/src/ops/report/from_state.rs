//! The report's parts the state directory holds: the journal of the last apply (phase, host,
//! outcome, when, how long) and the expiries of the state's certificates. Only the journal and
//! `.crt` files are opened: never a key, never `secrets/`.

use super::data::{LastApply, PhaseHost, PhaseRow};
use crate::ops::certs::CertInfo;
use crate::state::{Journal, PhaseStatus, StateDir};

/// The journal's phases in the order apply runs them (phases it does not know, such as an
/// upgrade's, after them by name), each host's last outcome.
pub fn last_apply(state: &StateDir) -> LastApply {
    let file = state.journal_file();
    if !file.exists() {
        return LastApply {
            problem: Some(format!("no journal at {}: `groundwork apply` has not run from this state", file.display())),
            phases: Vec::new(),
        };
    }
    let journal = match Journal::load(&file) {
        Ok(j) => j,
        Err(e) => return LastApply { problem: Some(crate::sanitize::line(&e.to_string())), phases: Vec::new() },
    };
    let order = crate::phases::names();
    let rank = |p: &str| order.iter().position(|n| *n == p).unwrap_or(order.len());
    let mut names: Vec<&String> = journal.phases.keys().collect();
    names.sort_by_key(|p| (rank(p), p.to_string()));
    let phases = names
        .into_iter()
        .map(|phase| PhaseRow {
            phase: phase.clone(),
            hosts: journal.phases[phase]
                .iter()
                .map(|(host, e)| PhaseHost {
                    host: host.clone(),
                    status: match e.status {
                        PhaseStatus::Done => "done".into(),
                        PhaseStatus::Failed => "failed".into(),
                    },
                    at: e.at,
                    took_ms: e.took_ms,
                    changes: e.changes,
                    error: e.error.as_deref().map(crate::sanitize::line),
                })
                .collect(),
        })
        .collect();
    LastApply { problem: None, phases }
}

/// The state's certificates, judged now against the thresholds (days).
pub fn certificates(state: &StateDir, now: i64, warn_days: i64, fail_days: i64) -> Vec<CertInfo> {
    crate::ops::certs::state_certificates(&state.pki_dir(), now, warn_days, fail_days)
}
