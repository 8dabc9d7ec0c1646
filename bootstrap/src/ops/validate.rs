//! `validate`: read an inventory, check it, and summarise what it describes.

use std::path::Path;

use serde::Serialize;

use crate::inventory::{self, Diagnostic, LoadError, LoadedInventory, LocalFiles, Role};

/// What a valid inventory describes, for the operator to confirm at a glance.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct Summary {
    pub cluster: String,
    pub kubernetes_version: String,
    /// Host names per role, in role order (master, worker, storage, database).
    pub hosts_by_role: Vec<(&'static str, Vec<String>)>,
    pub bastion: Option<String>,
    pub package_source: String,
    /// How the baselines in force differ from the deployment guide (empty when they do not).
    pub baseline_relaxations: Vec<String>,
    pub warnings: Vec<Diagnostic>,
}

/// Checks the file at `path`; `local` says whether the files it names on this machine must be here.
pub fn validate(path: &Path, local: LocalFiles) -> Result<(LoadedInventory, Summary), LoadError> {
    let loaded = inventory::load_checking(path, local)?;
    let summary = summarise(&loaded);
    Ok((loaded, summary))
}

fn summarise(loaded: &LoadedInventory) -> Summary {
    let inv = &loaded.inventory;
    let hosts_by_role = Role::ALL
        .iter()
        .map(|r| (r.as_str(), inv.hosts_with(*r).map(|(_, h)| h.name.clone()).collect::<Vec<_>>()))
        .filter(|(_, names)| !names.is_empty())
        .collect();
    let bastion = inv.bastion.as_ref().map(|b| format!("{}:{}", b.address, b.port));
    let package_source =
        serde_json::to_value(inv.packages.source).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default();
    Summary {
        cluster: inv.cluster.name.clone(),
        kubernetes_version: inv.cluster.kubernetes_version.clone(),
        hosts_by_role,
        bastion,
        package_source,
        baseline_relaxations: inv.baselines.relaxations(),
        warnings: loaded.warnings.clone(),
    }
}
