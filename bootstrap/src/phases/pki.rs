//! pki: the cluster's certificate authorities and keys, made once by the controller (kept in the
//! state directory, 0600) and pushed to the masters before kubeadm runs, so kubeadm signs its
//! own certificates with them and no `--upload-certs` is needed.

use std::sync::Arc;

use futures::FutureExt;
use futures::future::BoxFuture;

use super::node::file;
use super::{Change, Cluster, Node, StepError};
use crate::pki::{ClusterPki, PkiSpec};

pub const REMOTE_DIR: &str = "/etc/kubernetes/pki";

/// The PKI, loaded or (not in a dry run) created once per run.
pub async fn cluster_pki(cluster: &Cluster) -> Result<Arc<ClusterPki>, StepError> {
    // Never make or use a PKI the masters contradict.
    super::identity::ensure(cluster).await?;
    let mut shared = cluster.shared.lock().await;
    if let Some(p) = &shared.pki {
        return Ok(p.clone());
    }
    let dir = cluster.state.pki_dir();
    if cluster.dry_run && !dir.join("ca.crt").exists() {
        return Err(StepError::new("would generate the cluster PKI (none yet)"));
    }
    let spec = spec(&cluster.inventory)?;
    let (pki, created) = ClusterPki::load_or_create(&dir, &spec).map_err(|e| StepError::new(e.to_string()))?;
    for c in &created {
        tracing::info!("pki: created {c}");
    }
    if !cluster.dry_run {
        super::identity::record(cluster, None)?;
    }
    let pki = Arc::new(pki);
    shared.pki = Some(pki.clone());
    Ok(pki)
}

/// What the PKI must hold for this inventory: an etcd member per master, the registry's server.
pub fn spec(inventory: &crate::inventory::Inventory) -> Result<PkiSpec, StepError> {
    let mut members = Vec::new();
    for m in inventory.hosts.iter().filter(|h| h.roles.contains(&crate::inventory::Role::Master)) {
        let ip = m.address.parse().map_err(|_| {
            StepError::new(format!("{}: etcd certificates need an IP address, not `{}`", m.name, m.address))
        })?;
        members.push((m.name.clone(), ip));
    }
    // The site registry's server certificate: its host's name and address.
    let registry = crate::registry::site(inventory)
        .map(|(host, _)| crate::pki::RegistryServer { name: host.name.clone(), address: host.address.clone() });
    Ok(PkiSpec { etcd_members: members, registry })
}

pub fn run<'a>(cluster: &'a Cluster, node: &'a Node) -> BoxFuture<'a, Result<Vec<Change>, StepError>> {
    async move {
        // A refusal is not "would generate": it stops the plan as it stops the apply.
        super::identity::ensure(cluster).await?;
        let pki = match cluster_pki(cluster).await {
            Ok(p) => p,
            Err(e) if cluster.dry_run => return Ok(vec![Change::new(e.0)]),
            Err(e) => return Err(e),
        };
        let mut files = pki.files_for_master(node.name());
        if cluster.external_etcd() {
            files.extend(pki.files_for_etcd_member(node.name()));
        } else {
            // Stacked etcd: kubeadm makes each member's certificates with the etcd CA.
            files.push(pki.etcd_ca_key_file().ok_or_else(|| {
                StepError::new("stacked etcd needs etcd/ca.key on the masters, and this state does not hold it")
            })?);
        }
        // The etcd CA certificate is in both lists.
        let mut seen = std::collections::BTreeSet::new();
        files.retain(|f| seen.insert(f.path.clone()));
        let tasks = files
            .into_iter()
            .map(|f| {
                file(&format!("{REMOTE_DIR}/{}", f.path), String::from_utf8_lossy(&f.content).into_owned(), f.mode)
            })
            .collect();
        node.ensure_all(tasks).await
    }
    .boxed()
}
