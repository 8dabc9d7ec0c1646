//! `groundwork node remove NAME`: a master or worker taken out of the running cluster.
//!
//! Three steps, each checking first so that a removal stopped anywhere is finished by running it
//! again. [`take_out`]: for a master, the etcd cluster must keep its quorum without it (refused
//! otherwise); the node is cordoned and drained (PodDisruptionBudgets honoured, within the drain
//! timeout). Then apply's own phases, run by the command layer on the inventory without the host
//! ([`without`]), bring the others up to date: HAProxy's and keepalived's lists of API servers,
//! every API server's etcd list, /etc/hosts, pod routes, the storage ACLs. Only then, when nothing
//! sends it requests any more, [`finish`]: a master's etcd member is removed (`member remove` on
//! another member), the Node object deleted, the host reset (`host_reset`).
//!
//! A host that cannot be reached (a dead machine being replaced) is removed with `--force`: not
//! drained (its pods go when its Node is deleted) and not reset.

use std::time::{Duration, Instant};

use serde::Serialize;

use super::access::{Access, AccessError, Reach, sh};
use crate::etcd::members::{self, Member};
use crate::inventory::{LoadedInventory, Role};
use crate::transport::{NodeSession, shell_quote};

use crate::phases::ADMIN_KUBECTL as KUBECTL;

#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error(transparent)]
    Access(#[from] AccessError),
    #[error(transparent)]
    Host(#[from] super::access::HostStepError),
    #[error("{0} is not in the inventory (hosts: {1})")]
    Unknown(String, String),
    #[error("{0} is not a Kubernetes node (its roles are {1}); `node remove` takes masters and workers")]
    NotANode(String, String),
    #[error("{0} is the only master: removing it ends the cluster; `groundwork reset` does that")]
    LastMaster(String),
    #[error(
        "removing {name} would leave etcd without quorum: {healthy} of the other {others} member(s) answer healthy \
         and {need} are needed. Bring the others back first; nothing was changed"
    )]
    Quorum { name: String, healthy: usize, others: usize, need: usize },
    #[error(
        "cannot reach {0}: pass --force to remove it without draining or resetting it (for a host that is gone); \
         nothing was changed"
    )]
    Unreachable(String),
    #[error("no other master answers: the cluster must run without {0} to remove it; nothing was changed")]
    NoOtherMaster(String),
    #[error(
        "{name}: the drain did not finish within {timeout} s ({why}). The node stays cordoned. See what blocks (a \
         PodDisruptionBudget that allows no disruption, a pod without a controller), fix it, and run the same \
         command again; --drain-timeout gives it longer"
    )]
    Drain { name: String, timeout: u64, why: String },
    #[error("{0}: {1}")]
    Etcd(String, String),
    #[error(transparent)]
    Kube(#[from] crate::kube::KubeError),
    #[error("cannot record the removal in the state directory: {0}")]
    State(std::io::Error),
}

pub struct RemoveOptions {
    pub transport: crate::transport::TransportOptions,
    pub name: String,
    pub drain_timeout: Duration,
    /// Remove a host that cannot be reached (not drained, not reset).
    pub force: bool,
    /// Say what would be done; change nothing.
    pub dry_run: bool,
}

#[derive(Debug, Serialize)]
pub struct RemoveReport {
    pub name: String,
    pub master: bool,
    /// What was done (or, with dry_run, would be), in order.
    pub steps: Vec<String>,
    pub took_ms: u64,
}

/// The inventory without `name`: what apply then brings the other hosts to.
pub fn without(loaded: &LoadedInventory, name: &str) -> LoadedInventory {
    let mut rest = loaded.clone();
    rest.inventory.hosts.retain(|h| h.name != name);
    rest
}

/// Step one: the checks (a master: the others keep etcd's quorum without it), then the cordon
/// and drain. Nothing else changes: the node still serves until [`finish`].
pub async fn take_out(
    loaded: &LoadedInventory,
    opts: &RemoveOptions,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<RemoveReport, NodeError> {
    run_step(loaded, opts, progress, Step::TakeOut).await
}

/// Step three, once apply has brought the other hosts to the inventory without the node (so no
/// load balancer sends it requests and no API server names its etcd member): the etcd member
/// removed, the Node deleted, the host reset.
pub async fn finish(
    loaded: &LoadedInventory,
    opts: &RemoveOptions,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<RemoveReport, NodeError> {
    run_step(loaded, opts, progress, Step::Finish).await
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Step {
    TakeOut,
    Finish,
}

async fn run_step(
    loaded: &LoadedInventory,
    opts: &RemoveOptions,
    progress: &(dyn Fn(&str) + Sync),
    which: Step,
) -> Result<RemoveReport, NodeError> {
    let started = Instant::now();
    let inv = &loaded.inventory;
    let host = inv.hosts.iter().find(|h| h.name == opts.name).ok_or_else(|| {
        NodeError::Unknown(opts.name.clone(), inv.hosts.iter().map(|h| h.name.as_str()).collect::<Vec<_>>().join(", "))
    })?;
    let master = host.roles.contains(&Role::Master);
    if !master && !host.roles.contains(&Role::Worker) {
        let roles = host.roles.iter().map(|r| r.as_str()).collect::<Vec<_>>().join(", ");
        return Err(NodeError::NotANode(opts.name.clone(), roles));
    }
    if master && inv.hosts.iter().filter(|h| h.roles.contains(&Role::Master)).count() == 1 {
        return Err(NodeError::LastMaster(opts.name.clone()));
    }
    let access = Access::open(loaded, opts.transport.clone(), Reach::Nodes, "groundwork node remove").await?;
    let mut said = Said { progress, lines: Vec::new() };
    let result = async {
        let found = look(loaded, &access, opts, master).await?;
        match which {
            Step::TakeOut => take_out_with(opts, found, &mut said).await,
            Step::Finish => finish_with(loaded, opts, found, &mut said).await,
        }
    }
    .await;
    access.close().await;
    result?;
    Ok(RemoveReport {
        name: opts.name.clone(),
        master,
        steps: said.lines,
        took_ms: started.elapsed().as_millis() as u64,
    })
}

/// What both steps look at first: the node's own session (None: unreachable, refused without
/// --force), another master to act from, the node's etcd member (checked to be removable without
/// losing quorum), and whether the API still lists its Node.
struct Found<'a> {
    own: Option<&'a NodeSession>,
    via: &'a NodeSession,
    member: Option<Member>,
    /// etcd members once the node's is removed.
    members_left: usize,
    present: bool,
}

async fn look<'a>(
    loaded: &LoadedInventory,
    access: &'a Access,
    opts: &RemoveOptions,
    master: bool,
) -> Result<Found<'a>, NodeError> {
    let name = opts.name.as_str();
    let own = access.session(name);
    if own.is_none() && !opts.force {
        return Err(NodeError::Unreachable(name.to_string()));
    }
    let (_, via) = access
        .masters()
        .into_iter()
        .find(|(t, _)| t.name != name)
        .ok_or_else(|| NodeError::NoOtherMaster(name.to_string()))?;
    let member = if master && loaded.inventory.cluster.etcd == crate::inventory::EtcdMode::External {
        let address = loaded.inventory.hosts.iter().find(|h| h.name == name).map(|h| h.address.as_str());
        etcd_member_to_remove(via, name, address.unwrap_or_default()).await?
    } else {
        None
    };
    let members_left = member.as_ref().map_or(0, |(_, left)| *left);
    let member = member.map(|(m, _)| m);
    let kube = access.kube(loaded)?;
    let present = kube.get_json(via, &format!("/api/v1/nodes/{name}")).await.is_ok();
    Ok(Found { own, via, member, members_left, present })
}

/// Steps said as they are taken (or, in a plan, would be).
struct Said<'a> {
    progress: &'a (dyn Fn(&str) + Sync),
    lines: Vec<String>,
}

impl Said<'_> {
    fn say(&mut self, line: String) {
        (self.progress)(&line);
        self.lines.push(line);
    }
}

async fn take_out_with(opts: &RemoveOptions, found: Found<'_>, said: &mut Said<'_>) -> Result<(), NodeError> {
    let name = opts.name.as_str();
    if let Some(m) = &found.member {
        said.say(format!("etcd keeps its quorum without {name}'s member {}", m.id));
    }
    if found.present && found.own.is_some() {
        said.say(format!("cordon and drain {name} (PodDisruptionBudgets honoured)"));
        if !opts.dry_run {
            let timeout = opts.drain_timeout.as_secs();
            let drain = format!(
                "{KUBECTL} drain {} --ignore-daemonsets --delete-emptydir-data --timeout={timeout}s",
                shell_quote(name)
            );
            sh(found.via, "drain", &drain, opts.drain_timeout + Duration::from_secs(30)).await.map_err(|e| {
                NodeError::Drain { name: name.to_string(), timeout, why: crate::sanitize::tail(&e.message, 2) }
            })?;
        }
    }
    Ok(())
}

async fn finish_with(
    loaded: &LoadedInventory,
    opts: &RemoveOptions,
    found: Found<'_>,
    said: &mut Said<'_>,
) -> Result<(), NodeError> {
    let name = opts.name.as_str();
    if let Some(m) = &found.member {
        said.say(format!("remove {name}'s etcd member {}", m.id));
        if !opts.dry_run {
            let remove = crate::etcd::etcdctl(&format!("member remove {}", m.id));
            sh(found.via, "etcdctl member remove", &remove, Duration::from_secs(60)).await?;
            // The removed member may have led: the API answers "leader changed" until the others
            // have elected one, so wait for them before the Node is deleted.
            super::etcd::wait_members_healthy(found.via, found.members_left, Duration::from_secs(60))
                .await
                .map_err(|e| NodeError::Etcd(found.via.target.name.clone(), e))?;
        }
    }
    if found.present {
        said.say(format!("delete the Node {name}"));
        if !opts.dry_run {
            let delete = format!("{KUBECTL} delete node {} --ignore-not-found", shell_quote(name));
            sh(found.via, "delete the Node", &delete, Duration::from_secs(120)).await?;
        }
    }
    match found.own {
        Some(session) => {
            said.say(format!("reset {name}: kubeadm reset, etcd data, CNI, KUBE-/CNI- chains, groundwork's files"));
            if !opts.dry_run {
                let script = super::host_reset::kubernetes_node(&loaded.inventory.cluster.pod_cidr.0.to_string());
                sh(session, "reset the node", &script, Duration::from_secs(600)).await?;
            }
        }
        None => said.say(format!("{name} cannot be reached (--force): not reset; reinstall it before using it again")),
    }
    if !opts.dry_run {
        let state = crate::state::StateDir::for_cluster(&loaded.base_dir, &loaded.inventory.cluster.name);
        crate::state::removed::record(&state, name).map_err(NodeError::State)?;
    }
    Ok(())
}

/// The etcd member of the master `name` and how many members stay, after checking that they keep
/// quorum without it; None when it is no member (removed by an earlier run).
async fn etcd_member_to_remove(
    via: &NodeSession,
    name: &str,
    address: &str,
) -> Result<Option<(Member, usize)>, NodeError> {
    let etcd_err = |e: String| NodeError::Etcd(via.target.name.clone(), e);
    let list =
        sh(via, "etcdctl member list", &crate::etcd::etcdctl("member list -w simple"), Duration::from_secs(30)).await?;
    let all = members::parse(&list).map_err(etcd_err)?;
    let peer = members::peer_url(address);
    let Some(member) = all.iter().find(|m| m.name == name || m.peer_url == peer).cloned() else { return Ok(None) };
    let others = all.len() - 1;
    let need = others / 2 + 1;
    let health = crate::etcd::health(via).await.map_err(|e| etcd_err(e.to_string()))?;
    // `endpoint health --cluster` counts the member being removed too, when it answers.
    let removed_answers = health_of(via, &member).await;
    let healthy = health.healthy - usize::from(removed_answers && health.healthy > 0);
    if others == 0 || healthy < need {
        return Err(NodeError::Quorum { name: name.to_string(), healthy, others, need });
    }
    Ok(Some((member, others)))
}

/// Whether `member` answers healthy itself (asked from `via`).
async fn health_of(via: &NodeSession, member: &Member) -> bool {
    let client = member.peer_url.replace(":2380", ":2379");
    let cmd = crate::etcd::etcdctl_at(&client, "endpoint health");
    via.exec_privileged(&cmd, None).await.is_ok_and(|o| o.success())
}
