//! `groundwork reset`: the cluster taken down, the whole of it or some hosts (`--hosts`).
//!
//! Every Kubernetes node in scope is reset (see `host_reset`), all at once. The storage host's
//! volumes and the PostgreSQL host's data are not touched unless `--wipe-volumes` /
//! `--wipe-database` says so: they hold what the services stored, and a cluster built again
//! (`apply`) finds them as they were. A whole reset also sets the cluster's identity aside in the
//! state directory (`reset-STAMP/`: its CAs, keys, tokens, journal, admin kubeconfig, users), so
//! the next apply makes a new cluster with new CAs: a kubeconfig of the old cluster is then
//! worthless. The database passwords and the etcd backups stay where they are.
//!
//! `--hosts` resets hosts that are not (or no longer) nodes of the running cluster: a node that
//! is one is refused with `groundwork node remove`, which takes it out first.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::access::{Access, AccessError, Reach, sh};
use super::host_reset;
use crate::inventory::{BackingKind, LoadedInventory, Role};

#[derive(Debug, thiserror::Error)]
pub enum ResetError {
    #[error(transparent)]
    Access(#[from] AccessError),
    #[error(transparent)]
    Host(#[from] super::access::HostStepError),
    #[error("--hosts names {0}, which the inventory does not list (hosts: {1}); nothing was changed")]
    UnknownHost(String, String),
    #[error(
        "cannot reach {0}: a reset must reach every host it resets; bring it back and run again; nothing was changed"
    )]
    Unreachable(String),
    #[error(
        "{0} is a node of the running cluster: take it out with `groundwork node remove {0}` (which drains it and \
         removes its etcd member too); nothing was changed"
    )]
    StillANode(String),
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
}

pub struct ResetOptions {
    pub transport: crate::transport::TransportOptions,
    /// Only these hosts; the whole cluster when empty.
    pub hosts: Vec<String>,
    pub wipe_volumes: bool,
    pub wipe_database: bool,
    /// Say what would be done; change nothing.
    pub dry_run: bool,
}

#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct ResetReport {
    pub cluster: String,
    pub dry_run: bool,
    /// Each host reset, and what was done there.
    pub hosts: Vec<(String, String)>,
    /// Kept as they were: why, per host.
    pub kept: Vec<(String, String)>,
    /// Where the cluster's identity was set aside (a whole reset).
    pub identity_moved_to: Option<PathBuf>,
    pub took_ms: u64,
}

/// What the state directory holds of one cluster's identity (moved aside by a whole reset).
const IDENTITY: &[&str] = &["pki", "admin.conf", "journal.json", "identity.json", "users", "etcd-restore.json"];

pub async fn reset(
    loaded: &LoadedInventory,
    opts: ResetOptions,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<ResetReport, ResetError> {
    let started = Instant::now();
    let inv = &loaded.inventory;
    let names: Vec<&str> = inv.hosts.iter().map(|h| h.name.as_str()).collect();
    if let Some(unknown) = opts.hosts.iter().find(|h| !names.contains(&h.as_str())) {
        return Err(ResetError::UnknownHost(unknown.clone(), names.join(", ")));
    }
    let whole = opts.hosts.is_empty();
    let in_scope = |name: &str| whole || opts.hosts.iter().any(|h| h == name);
    // A plan changes nothing, but still takes the lock: it answers for the cluster as it is.
    let access = Access::open_any_pki(loaded, opts.transport.clone(), Reach::All, "groundwork reset").await?;
    let result = reset_with(loaded, &access, &opts, whole, &in_scope, progress).await;
    access.close().await;
    let (hosts, kept) = result?;
    let identity_moved_to = if whole && !opts.dry_run { set_identity_aside(loaded)? } else { None };
    Ok(ResetReport {
        cluster: inv.cluster.name.clone(),
        dry_run: opts.dry_run,
        hosts,
        kept,
        identity_moved_to,
        took_ms: started.elapsed().as_millis() as u64,
    })
}

type Outcome = (Vec<(String, String)>, Vec<(String, String)>);

/// One thing a reset does on one host: planned first, then run (a plan only lists them).
struct Action<'a> {
    host: String,
    session: &'a crate::transport::NodeSession,
    what: String,
    script: String,
}

async fn reset_with(
    loaded: &LoadedInventory,
    access: &Access,
    opts: &ResetOptions,
    whole: bool,
    in_scope: &(dyn Fn(&str) -> bool + Sync),
    progress: &(dyn Fn(&str) + Sync),
) -> Result<Outcome, ResetError> {
    if let Some((name, _)) = access.unreachable.iter().find(|(n, _)| in_scope(n)) {
        return Err(ResetError::Unreachable(name.clone()));
    }
    if !whole {
        refuse_live_nodes(loaded, access, in_scope).await?;
    }
    let (actions, kept) = plan(loaded, access, opts, in_scope)?;
    let done = actions.iter().map(|a| (a.host.clone(), a.what.clone())).collect();
    if opts.dry_run {
        return Ok((done, kept));
    }
    let nodes: Vec<&Action> = actions.iter().filter(|a| a.what == NODE_RESET).collect();
    if !nodes.is_empty() {
        progress(&format!(
            "resetting {} Kubernetes node(s): kubeadm reset, etcd data, CNI, KUBE-/CNI- iptables chains, groundwork's files",
            nodes.len()
        ));
        let runs = nodes.iter().map(|a| sh(a.session, "reset the node", &a.script, Duration::from_secs(600)));
        futures::future::join_all(runs).await.into_iter().collect::<Result<Vec<_>, _>>()?;
    }
    for a in actions.iter().filter(|a| a.what != NODE_RESET) {
        progress(&format!("{}: {}", a.host, a.what));
        sh(a.session, &a.what, &a.script, Duration::from_secs(600)).await?;
    }
    Ok((done, kept))
}

const NODE_RESET: &str = "reset: kubeadm reset; the kubelet's, etcd's, the CNI's and groundwork's files and units; KUBE-/CNI- iptables chains";

/// What the reset does, host by host, and what it keeps (host, what).
type Planned<'a> = (Vec<Action<'a>>, Vec<(String, String)>);

/// What the reset does, host by host, and what it keeps.
fn plan<'a>(
    loaded: &LoadedInventory,
    access: &'a Access,
    opts: &ResetOptions,
    in_scope: &(dyn Fn(&str) -> bool + Sync),
) -> Result<Planned<'a>, ResetError> {
    let inv = &loaded.inventory;
    let is_node = |roles: &[Role]| roles.iter().any(|r| matches!(r, Role::Master | Role::Worker));
    let node_script = host_reset::kubernetes_node(&inv.cluster.pod_cidr.0.to_string());
    let mut actions: Vec<Action> = access
        .hosts()
        .into_iter()
        .filter(|(t, _)| in_scope(&t.name) && is_node(&t.roles))
        .map(|(t, s)| Action { host: t.name.clone(), session: s, what: NODE_RESET.into(), script: node_script.clone() })
        .collect();
    let mut kept = Vec::new();
    if let Some(plan) = crate::storage::VolumePlan::of(inv).filter(|p| in_scope(&p.host)) {
        if opts.wipe_volumes {
            let storage = inv.storage.as_ref().expect("a volume plan has a storage section");
            let lvs: Vec<String> = match (&storage.backing_store.kind, &storage.backing_store.volume_group) {
                (BackingKind::Lvm, Some(vg)) => plan.iscsi().map(|v| format!("{vg}/{}", v.name)).collect(),
                _ => vec![],
            };
            actions.push(Action {
                host: plan.host.clone(),
                session: session_of(access, &plan.host)?,
                what: format!("volumes wiped ({}, --wipe-volumes)", plan.directory.display()),
                script: host_reset::storage_volumes(&plan.directory.to_string_lossy(), &lvs),
            });
        } else {
            kept.push((plan.host.clone(), format!("the volumes' data is kept in {}", plan.directory.display())));
        }
    }
    if let Some((host, db)) = crate::database::host(inv).filter(|(h, _)| in_scope(&h.name)) {
        if opts.wipe_database {
            actions.push(Action {
                host: host.name.clone(),
                session: session_of(access, &host.name)?,
                what: format!("PostgreSQL {} cluster dropped (--wipe-database)", db.postgresql.version),
                script: host_reset::database(db.postgresql.version),
            });
        } else {
            kept.push((host.name.clone(), "PostgreSQL and its data are kept".to_string()));
        }
    }
    Ok((actions, kept))
}

fn session_of<'a>(access: &'a Access, name: &str) -> Result<&'a crate::transport::NodeSession, ResetError> {
    access.session(name).ok_or_else(|| ResetError::Unreachable(name.to_string()))
}

/// A host in scope that the running cluster lists as a node is refused (when the API answers: a
/// cluster whose API is gone has no node to protect).
async fn refuse_live_nodes(
    loaded: &LoadedInventory,
    access: &Access,
    in_scope: &(dyn Fn(&str) -> bool + Sync),
) -> Result<(), ResetError> {
    let Some((_, via)) = access.masters().into_iter().find(|(t, _)| !in_scope(&t.name)) else { return Ok(()) };
    if access.try_pki().is_none() {
        return Ok(());
    }
    let Ok(kube) = access.kube(loaded) else { return Ok(()) };
    let Ok(list) = kube.get_json(via, "/api/v1/nodes").await else { return Ok(()) };
    match crate::kube::node_statuses(&list).into_iter().find(|n| in_scope(&n.name)) {
        Some(n) => Err(ResetError::StillANode(n.name)),
        None => Ok(()),
    }
}

/// Moves the cluster's identity into `reset-STAMP/` in the state directory.
fn set_identity_aside(loaded: &LoadedInventory) -> Result<Option<PathBuf>, ResetError> {
    let state = crate::state::StateDir::for_cluster(&loaded.base_dir, &loaded.inventory.cluster.name);
    let present: Vec<&str> = IDENTITY.iter().copied().filter(|f| state.root().join(f).exists()).collect();
    if present.is_empty() {
        return Ok(None);
    }
    let aside = state.root().join(format!("reset-{}", crate::etcd::snapshot::stamp(time::OffsetDateTime::now_utc())));
    std::fs::create_dir_all(&aside).map_err(|source| ResetError::Io { path: aside.clone(), source })?;
    for f in present {
        let from = state.root().join(f);
        std::fs::rename(&from, aside.join(f)).map_err(|source| ResetError::Io { path: from, source })?;
    }
    Ok(Some(aside))
}
