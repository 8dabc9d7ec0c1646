//! `groundwork report`: a handover report of the site. [`gather`] collects [`ReportData`] from the
//! inventory, the state directory and (unless offline) the hosts; [`html::render`] draws it as one
//! self-contained page; [`output::write`] writes it (and its PDF when Chromium is there).
//!
//! Gathering never fails as a whole: what could not be asked is marked in the data with why, and
//! the page says so. It only reads (no lock, no lease), so it can run while an apply does.

pub mod data;
mod from_inventory;
mod from_state;
pub mod html;
mod live;
pub mod output;

pub use data::ReportData;
use data::{Certificates, Live, NotGathered, Volumes};

use crate::inventory::LoadedInventory;
use crate::ops::facts::FactsOptions;
use crate::state::StateDir;

/// Below this many days a certificate warns, below [`FAIL_DAYS`] it fails (as `certs check`).
pub const WARN_DAYS: i64 = 30;
pub const FAIL_DAYS: i64 = 7;

/// The sections that need the hosts, as `not_gathered` names them.
pub const FACTS: &str = "hosts' facts and baselines";
const KUBERNETES: &str = "Kubernetes";
const CLAIMS: &str = "volumes' claims";
const NODE_CERTIFICATES: &str = "nodes' certificates";

/// The report's data: from the inventory and the state, and from the hosts unless `live` is None
/// (`--offline`).
pub async fn gather(loaded: &LoadedInventory, live: Option<&FactsOptions>) -> ReportData {
    let inv = &loaded.inventory;
    let state = StateDir::for_cluster(&loaded.base_dir, &inv.cluster.name);
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let (mut bastion, mut hosts) = from_inventory::hosts(inv);
    let (storage_host, planned) = from_inventory::planned_volumes(inv);
    let mut not_gathered = Vec::new();
    let mut note = |section: &str, reason: &str| {
        not_gathered.push(NotGathered { section: section.to_string(), reason: reason.to_string() })
    };

    let (kubernetes, persistent_volumes, node_certificates) = match live {
        None => {
            let why = "--offline: made from the inventory and the state directory alone; the hosts were not asked";
            for section in [FACTS, KUBERNETES, CLAIMS, NODE_CERTIFICATES] {
                note(section, why);
            }
            (Live::not(why), Live::not(why), Live::not(why))
        }
        Some(opts) => {
            let g = live::gather_live(loaded, opts, &mut bastion, &mut hosts, now, (WARN_DAYS, FAIL_DAYS)).await;
            if let Some(why) = &g.facts_problem {
                note(FACTS, why);
            }
            for (section, reason) in [
                (KUBERNETES, not_gathered_reason(&g.kubernetes)),
                (CLAIMS, not_gathered_reason(&g.persistent_volumes)),
                (NODE_CERTIFICATES, not_gathered_reason(&g.node_certificates)),
            ] {
                if let Some(r) = reason {
                    note(section, r);
                }
            }
            (g.kubernetes, g.persistent_volumes, g.node_certificates)
        }
    };

    ReportData {
        generated_at: now,
        generated_by: format!("groundwork {}", env!("CARGO_PKG_VERSION")),
        inventory_file: loaded.file.display().to_string(),
        state_dir: state.root().display().to_string(),
        offline: live.is_none(),
        not_gathered,
        cluster: from_inventory::cluster(inv),
        bastion,
        hosts,
        kubernetes,
        volumes: Volumes { storage_host, planned, persistent_volumes },
        database: from_inventory::database(inv, &state),
        registry: from_inventory::registry(inv, &state),
        certificates: Certificates {
            warn_days: WARN_DAYS,
            fail_days: FAIL_DAYS,
            state: from_state::certificates(&state, now, WARN_DAYS, FAIL_DAYS),
            nodes: node_certificates,
        },
        last_apply: from_state::last_apply(&state),
    }
}

fn not_gathered_reason<T>(live: &Live<T>) -> Option<&str> {
    match live {
        Live::Gathered(_) => None,
        Live::NotGathered { reason } => Some(reason),
    }
}

#[cfg(test)]
mod tests;
