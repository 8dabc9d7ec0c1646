//! What a day-2 command (etcd backup and restore, certificates, user access) needs before it
//! touches a running cluster: the controller's lock, SSH sessions to the hosts it acts on (through
//! the bastion), the lease on the masters, and the cluster's PKI. The same two locks `apply` takes,
//! so a day-2 command and an apply (here or on another controller) never overlap.
//!
//! No agent is started: these commands run a few known commands on a few hosts.

use std::path::PathBuf;

use super::lease::{ClusterLease, LeaseError};
use crate::inventory::{LoadedInventory, Role};
use crate::kube::{KubeClient, KubeError};
use crate::pki::ClusterPki;
use crate::state::{ClusterLock, LockError, LockHolder, StateDir};
use crate::transport::{NodeSession, Target, Transport, TransportError, TransportOptions, target};

#[derive(Debug, thiserror::Error)]
pub enum AccessError {
    #[error(transparent)]
    Lock(#[from] LockError),
    #[error(transparent)]
    Lease(#[from] LeaseError),
    #[error("cannot reach the bastion: {0}")]
    Bastion(TransportError),
    #[error("cannot create the state directory {}: {source}", path.display())]
    State { path: PathBuf, source: std::io::Error },
    #[error(
        "{} holds no cluster PKI: run `groundwork apply` first, or `groundwork state adopt` for a cluster \
         built from another state directory",
        path.display()
    )]
    NoPki { path: PathBuf },
    #[error("the cluster PKI in {}: {message}", path.display())]
    Pki { path: PathBuf, message: String },
    #[error("the inventory has no master")]
    NoMaster,
}

/// Which hosts a command needs sessions to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reach {
    Masters,
    /// Masters and workers: every Kubernetes node.
    Nodes,
    /// Every host of the inventory (the storage and database hosts too).
    All,
}

/// Open sessions, the locks, the PKI; [`close`](Self::close) gives them back.
pub struct Access {
    pub state: StateDir,
    /// Loaded for a command that may write (loading may renew a leaf due within 30 days, as
    /// apply does); a read-only command never loads it.
    pki: Option<ClusterPki>,
    transport: Transport,
    /// Reached hosts in inventory order.
    sessions: Vec<(Target, NodeSession)>,
    /// Hosts that could not be reached, with why.
    pub unreachable: Vec<(String, String)>,
    lease: Option<ClusterLease>,
    _lock: Option<ClusterLock>,
}

impl Access {
    /// Takes the controller's lock, logs in to the hosts `reach` names and takes the lease on
    /// the masters (a majority must answer). A host that cannot be reached is listed in
    /// [`unreachable`](Self::unreachable); whether that is fatal is the command's call.
    pub async fn open(
        loaded: &LoadedInventory,
        opts: TransportOptions,
        reach: Reach,
        command: &str,
    ) -> Result<Access, AccessError> {
        Self::open_with(loaded, opts, reach, Some(command), true).await
    }

    /// The locks and sessions, and the PKI only if the state holds one: for `reset`, which must
    /// also take down a cluster that never finished (or one reset before).
    pub async fn open_any_pki(
        loaded: &LoadedInventory,
        opts: TransportOptions,
        reach: Reach,
        command: &str,
    ) -> Result<Access, AccessError> {
        Self::open_with(loaded, opts, reach, Some(command), false).await
    }

    /// The same without the lock or the lease, for a command that only reads (it can run while
    /// an apply does).
    pub async fn open_read_only(
        loaded: &LoadedInventory,
        opts: TransportOptions,
        reach: Reach,
    ) -> Result<Access, AccessError> {
        Self::open_with(loaded, opts, reach, None, true).await
    }

    async fn open_with(
        loaded: &LoadedInventory,
        opts: TransportOptions,
        reach: Reach,
        locking: Option<&str>,
        need_pki: bool,
    ) -> Result<Access, AccessError> {
        let inv = &loaded.inventory;
        let state = StateDir::for_cluster(&loaded.base_dir, &inv.cluster.name);
        let has_pki = state.pki_dir().join(crate::pki::paths::CA_CRT).exists();
        if need_pki && !has_pki {
            return Err(AccessError::NoPki { path: state.root().to_path_buf() });
        }
        state.create().map_err(|source| AccessError::State { path: state.root().to_path_buf(), source })?;
        let lock = match locking {
            Some(command) => Some(ClusterLock::acquire(&state.lock_file(), command)?),
            None => None,
        };
        let pki = match locking {
            Some(_) if has_pki => {
                let spec = crate::phases::pki::spec(inv)
                    .map_err(|e| AccessError::Pki { path: state.pki_dir(), message: e.0 })?;
                let (pki, _) = ClusterPki::load_or_create(&state.pki_dir(), &spec)
                    .map_err(|e| AccessError::Pki { path: state.pki_dir(), message: e.to_string() })?;
                Some(pki)
            }
            _ => None,
        };
        let wanted = |t: &Target| match reach {
            Reach::Masters => t.roles.contains(&Role::Master),
            Reach::Nodes => t.roles.contains(&Role::Master) || t.roles.contains(&Role::Worker),
            Reach::All => true,
        };
        let targets: Vec<Target> = target::hosts(loaded).into_iter().filter(wanted).collect();
        let masters = targets.iter().filter(|t| t.roles.contains(&Role::Master)).count();
        if masters == 0 {
            return Err(AccessError::NoMaster);
        }
        let transport =
            Transport::connect(target::bastion(loaded).as_ref(), &targets, opts).await.map_err(AccessError::Bastion)?;
        let opened = futures::future::join_all(targets.iter().map(|t| transport.open(t))).await;
        let (mut sessions, mut unreachable) = (Vec::new(), Vec::new());
        for (t, s) in targets.into_iter().zip(opened) {
            match s {
                Ok(s) => sessions.push((t, s)),
                Err(e) => unreachable.push((t.name.clone(), super::apply::one_line(&e.to_string()))),
            }
        }
        let mut access = Access { state, pki, transport, sessions, unreachable, lease: None, _lock: lock };
        let Some(command) = locking else { return Ok(access) };
        let me = LockHolder::me(command);
        let on: Vec<(&str, &NodeSession)> = access.masters().into_iter().map(|(t, s)| (t.name.as_str(), s)).collect();
        match ClusterLease::take(&on, masters, &me, std::time::Duration::from_secs(20)).await {
            Ok(lease) => access.lease = Some(lease),
            Err(e) => {
                access.close().await;
                return Err(e.into());
            }
        }
        Ok(access)
    }

    /// The reached masters, in inventory order.
    pub fn masters(&self) -> Vec<(&Target, &NodeSession)> {
        self.sessions.iter().filter(|(t, _)| t.roles.contains(&Role::Master)).map(|(t, s)| (t, s)).collect()
    }

    /// Every reached host, in inventory order.
    pub fn hosts(&self) -> Vec<(&Target, &NodeSession)> {
        self.sessions.iter().map(|(t, s)| (t, s)).collect()
    }

    /// The session to host `name`, if it was reached.
    pub fn session(&self, name: &str) -> Option<&NodeSession> {
        self.sessions.iter().find(|(t, _)| t.name == name).map(|(_, s)| s)
    }

    /// Masters of the inventory that could not be reached.
    pub fn unreachable_masters(&self, loaded: &LoadedInventory) -> Vec<String> {
        let masters: Vec<&str> = loaded
            .inventory
            .hosts
            .iter()
            .filter(|h| h.roles.contains(&Role::Master))
            .map(|h| h.name.as_str())
            .collect();
        self.unreachable.iter().filter(|(n, _)| masters.contains(&n.as_str())).map(|(n, _)| n.clone()).collect()
    }

    /// The cluster's PKI (commands opened with [`open`](Self::open)).
    pub fn pki(&self) -> &ClusterPki {
        self.pki.as_ref().expect("a read-only Access holds no PKI: open it with Access::open")
    }

    /// The cluster's PKI, if this Access loaded one.
    pub fn try_pki(&self) -> Option<&ClusterPki> {
        self.pki.as_ref()
    }

    /// The controller's admin client of the API server, on a master's 127.0.0.1.
    pub fn kube(&self, loaded: &LoadedInventory) -> Result<KubeClient, KubeError> {
        KubeClient::admin(self.pki(), loaded.inventory.cluster.control_plane_endpoint.port)
    }

    /// Releases the lease, logs out, then the controller's lock goes with `self`.
    pub async fn close(mut self) {
        if let Some(lease) = self.lease.take() {
            lease.release().await;
        }
        for (_, s) in self.sessions.drain(..) {
            s.close().await;
        }
        self.transport.close().await;
    }
}

/// A command that failed on a host: which, what it was for, and why.
#[derive(Debug, thiserror::Error)]
#[error("{host}: {what}: {message}")]
pub struct HostStepError {
    pub host: String,
    pub what: String,
    pub message: String,
}

/// Runs `command` with root rights on `s` within `deadline`; its stdout, or why it failed (the
/// tail of its stderr).
pub async fn sh(
    s: &NodeSession,
    what: &str,
    command: &str,
    deadline: std::time::Duration,
) -> Result<String, HostStepError> {
    let fail = |message: String| HostStepError { host: s.target.name.clone(), what: what.to_string(), message };
    let out = s.exec_privileged_within(command, None, deadline).await.map_err(|e| fail(e.to_string()))?;
    if !out.success() {
        let why = crate::sanitize::tail(&out.stderr_text(), 3);
        return Err(fail(if why.is_empty() { format!("exit status {}", out.status) } else { why }));
    }
    Ok(out.stdout_text())
}
