//! The phases of `apply`, in order. A phase is a name, the hosts it concerns, and what it wants
//! on each host; the runner (`ops::apply`) gives it dry-run, parallelism, the journal, progress
//! and error collection, so a phase file holds only what is particular to its step (k0sctl's
//! phase manager and kubeadm's workflow phases are the models).
//!
//! Every phase is idempotent: it compares before it changes, so a second run reports no change,
//! and with `dry_run` it only reports what it would change (that is `groundwork plan`).

mod api;
mod bundle;
mod cni;
mod cni_manifest;
mod database;
mod endpoint;
pub mod etcd;
mod etcd_backup;
pub mod identity;
mod kubeadm;
mod node;
mod package_repository;
mod packages;
pub(crate) mod pki;
mod prepare_os;
mod ready;
pub(crate) mod registry;
mod rolling;
mod runtime;
mod storage_clients;
mod storage_lio;
mod storage_server;
mod taints;
pub mod upgrade;

use std::collections::BTreeMap;
use std::sync::Arc;

use futures::future::BoxFuture;

use crate::inventory::{EndpointMode, EtcdMode, Inventory, Role};
use crate::state::StateDir;

pub use database::backup_unit;
pub use kubeadm::{ADMIN_KUBECTL, write_admin_kubeconfig};
pub use node::{AgentSource, Change, ErrorKind, Node, StepError, tail};

/// Which hosts a phase runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Every host of the inventory.
    AllHosts,
    /// Masters and workers.
    KubernetesNodes,
    Masters,
    FirstMaster,
    /// Masters after the first, one at a time.
    OtherMasters,
    Workers,
    /// Workers that are not also masters: the hosts that join as workers.
    WorkersOnly,
    /// The host serving the backbone's volumes.
    Storage,
    /// The PostgreSQL host.
    Database,
    /// The site registry's host.
    Registry,
    /// Nothing on hosts: the controller's own work (e.g. the PKI).
    Controller,
}

pub type RunFn = for<'a> fn(&'a Cluster, &'a Node) -> BoxFuture<'a, Result<Vec<Change>, StepError>>;

#[derive(Clone, Copy)]
pub struct Phase {
    pub name: &'static str,
    pub about: &'static str,
    pub scope: Scope,
    /// Hosts one after another instead of all at once (control-plane joins).
    pub serial: bool,
    /// A failure on any host stops the run after this phase: later phases need it everywhere.
    pub critical: bool,
    /// Phases that must have finished on every one of their hosts before this one starts on any
    /// host. Otherwise each host goes through its phases in order without waiting for the others.
    pub after_all: &'static [&'static str],
    /// Every later phase, on every host, waits for this one to finish everywhere (a check that
    /// must pass before anything changes).
    pub gate: bool,
    pub run: RunFn,
}

/// The phases after connect, facts and check (which the runner does itself), in order.
pub fn all() -> &'static [Phase] {
    static PHASES: &[Phase] = &[
        Phase {
            name: identity::NAME,
            about: "the masters' CA and service-account keys compared with the state's; refuse on a mismatch",
            scope: Scope::Masters,
            serial: false,
            critical: true,
            after_all: &[],
            gate: true,
            run: identity::run,
        },
        Phase {
            name: package_repository::NAME,
            about: "with packages.source bundle: the bundle's apt repository for the host's OS uploaded, the only package source",
            scope: Scope::AllHosts,
            serial: false,
            critical: false,
            after_all: &[],
            gate: false,
            run: package_repository::run,
        },
        Phase {
            name: "prepare-os",
            about: "swap off, kernel modules and sysctls, hostname and /etc/hosts",
            scope: Scope::KubernetesNodes,
            serial: false,
            critical: false,
            after_all: &[],
            gate: false,
            run: prepare_os::run,
        },
        Phase {
            name: "packages",
            about: "containerd, runc, CNI plugins and tools from the package source",
            scope: Scope::KubernetesNodes,
            serial: false,
            critical: false,
            after_all: &[],
            gate: false,
            run: packages::run,
        },
        Phase {
            name: "bundle",
            about: "kubeadm, kubelet, kubectl (and etcd on masters) from the offline bundle",
            scope: Scope::KubernetesNodes,
            serial: false,
            critical: false,
            after_all: &[],
            gate: false,
            run: bundle::run,
        },
        Phase {
            name: "container-runtime",
            about: "containerd configured for the node's cgroup driver, images imported",
            scope: Scope::KubernetesNodes,
            serial: false,
            critical: false,
            after_all: &[],
            gate: false,
            run: runtime::run,
        },
        Phase {
            name: "pki",
            about: "cluster, front-proxy and etcd CAs, certificates and keys pushed to the masters",
            scope: Scope::Masters,
            serial: false,
            critical: true,
            after_all: &[],
            gate: false,
            run: pki::run,
        },
        Phase {
            name: "etcd",
            about: "a 3-member external etcd on the masters, healthy before kubeadm",
            scope: Scope::Masters,
            serial: false,
            critical: true,
            after_all: &["pki"],
            gate: false,
            run: etcd::run,
        },
        Phase {
            name: "etcd-backup",
            about: "with cluster.etcdBackup: a timer on every master snapshotting its etcd member locally",
            scope: Scope::Masters,
            serial: false,
            critical: false,
            after_all: &[],
            gate: false,
            run: etcd_backup::run,
        },
        Phase {
            name: "endpoint",
            about: "the control-plane endpoint: a local load balancer on every node",
            scope: Scope::KubernetesNodes,
            serial: false,
            critical: false,
            after_all: &[],
            gate: false,
            run: endpoint::run,
        },
        Phase {
            name: "init",
            about: "kubeadm init on the first master",
            scope: Scope::FirstMaster,
            serial: true,
            critical: true,
            after_all: &["etcd"],
            gate: false,
            run: kubeadm::init,
        },
        Phase {
            name: "join-masters",
            about: "kubeadm join --control-plane on the other masters",
            scope: Scope::OtherMasters,
            serial: true,
            critical: false,
            after_all: &["init"],
            gate: false,
            run: kubeadm::join_master,
        },
        Phase {
            name: "apiserver",
            about: "the API servers' settings, changed one master at a time",
            scope: Scope::Masters,
            serial: false,
            critical: false,
            after_all: &["join-masters"],
            gate: false,
            run: kubeadm::api_server_settings,
        },
        Phase {
            name: taints::NAME,
            about: "kubeadm's control-plane taint: off a master that is also a worker, on every other master",
            scope: Scope::Masters,
            serial: false,
            critical: false,
            after_all: &["join-masters"],
            gate: false,
            run: taints::run,
        },
        Phase {
            name: "join-workers",
            about: "kubeadm join on every worker (a master that is also a worker joined as a master)",
            scope: Scope::WorkersOnly,
            serial: false,
            critical: false,
            after_all: &["init"],
            gate: false,
            run: kubeadm::join_worker,
        },
        Phase {
            name: "cni",
            about: "the pod network: a routed bridge with each node's pod CIDR",
            scope: Scope::KubernetesNodes,
            serial: false,
            critical: false,
            after_all: &["join-masters", "join-workers"],
            gate: false,
            run: cni::run,
        },
        Phase {
            name: "wait-ready",
            about: "every node Ready, asked of the API server",
            scope: Scope::KubernetesNodes,
            serial: false,
            critical: false,
            after_all: &["cni"],
            gate: false,
            run: ready::run,
        },
        Phase {
            name: "storage-server",
            about: "the backbone's volumes: iSCSI targets (LIO or tgt) and NFS exports on the storage host",
            scope: Scope::Storage,
            serial: false,
            critical: false,
            after_all: &[],
            gate: false,
            run: storage_server::run,
        },
        Phase {
            name: "storage-clients",
            about: "iSCSI initiator and NFS client on the workers, the volumes checked from each",
            scope: Scope::Workers,
            serial: false,
            critical: false,
            after_all: &["storage-server"],
            gate: false,
            run: storage_clients::run,
        },
        Phase {
            name: "database",
            about: "PostgreSQL on the database host: tuned, internal-only, roles, databases, backups",
            scope: Scope::Database,
            serial: false,
            critical: false,
            after_all: &[],
            gate: false,
            run: database::run,
        },
        Phase {
            name: registry::NAME,
            about: "the site's container registry: TLS from the cluster CA, credentials for every request",
            scope: Scope::Registry,
            serial: false,
            critical: false,
            after_all: &[],
            gate: false,
            run: registry::run,
        },
    ];
    PHASES
}

pub fn find(name: &str) -> Option<&'static Phase> {
    all().iter().find(|p| p.name == name)
}

/// Phase names the runner handles before the ones above.
pub const RUNNER_PHASES: [&str; 3] = ["connect", "facts", "check"];

/// The runner's last phase, after the ones above: the deployer's files, on the controller.
pub const FINAL_PHASES: [&str; 1] = ["handoff"];

/// Every phase name in order, for `--only`/`--skip-phases` and help texts.
pub fn names() -> Vec<&'static str> {
    RUNNER_PHASES.iter().copied().chain(all().iter().map(|p| p.name)).chain(FINAL_PHASES).collect()
}

/// `host:port` every node's kubelet and kube-proxy use for the API server.
pub fn endpoint_of(inventory: &Inventory) -> String {
    let ep = &inventory.cluster.control_plane_endpoint;
    match (ep.mode, &ep.address) {
        (EndpointMode::LocalProxy, _) | (_, None) => format!("127.0.0.1:{}", endpoint::LOCAL_PROXY_PORT),
        (_, Some(address)) => format!("{address}:{}", ep.port),
    }
}

/// What every phase may read: the inventory, the nodes, and what earlier phases worked out.
pub struct Cluster {
    pub inventory: Inventory,
    pub state: StateDir,
    pub dry_run: bool,
    /// Connected nodes by name (hosts that could not be reached are absent).
    pub nodes: BTreeMap<String, Arc<Node>>,
    /// The inventory's directory: relative paths in it (secret files) are resolved from here.
    pub base_dir: std::path::PathBuf,
    /// The offline bundle the inventory names, opened and checked (signature and every file's
    /// sum) before the run touched any host: see `ops::bundle_trust`.
    pub bundle: Option<Arc<crate::bundle::Bundle>>,
    /// Cluster-wide results computed once (PKI, token, pod CIDRs), filled by phases.
    pub shared: tokio::sync::Mutex<Shared>,
    /// How long draining one node may take (upgrade).
    pub drain_timeout: std::time::Duration,
}

#[derive(Default)]
pub struct Shared {
    pub pki: Option<Arc<crate::pki::ClusterPki>>,
    /// The identity check's answer, computed once (see `identity::ensure`).
    pub identity: Arc<tokio::sync::OnceCell<identity::CheckResult>>,
    /// The etcd cluster that ran before this run's etcd phase (see `etcd::running_cluster`).
    pub etcd_running: Arc<tokio::sync::OnceCell<etcd::Running>>,
    /// One gate per rolling restart (by phase): see `rolling`.
    pub rolling: BTreeMap<&'static str, rolling::Gate>,
    /// Hosts whose copy of the bundle's apt repository this run has made ready (see
    /// `package_repository::ready`).
    pub repository_ready: std::collections::BTreeSet<String>,
}

impl Cluster {
    pub fn masters(&self) -> Vec<&crate::inventory::Host> {
        self.inventory.hosts.iter().filter(|h| h.roles.contains(&Role::Master)).collect()
    }
    pub fn workers(&self) -> Vec<&crate::inventory::Host> {
        self.inventory.hosts.iter().filter(|h| h.roles.contains(&Role::Worker)).collect()
    }
    /// A master that is also a worker: it takes workloads, so it carries no control-plane taint.
    pub fn takes_workloads(&self, name: &str) -> bool {
        self.inventory
            .hosts
            .iter()
            .any(|h| h.name == name && h.roles.contains(&Role::Master) && h.roles.contains(&Role::Worker))
    }
    pub fn first_master(&self) -> Option<&crate::inventory::Host> {
        self.masters().into_iter().next()
    }
    pub fn external_etcd(&self) -> bool {
        self.inventory.cluster.etcd == EtcdMode::External
    }
    pub fn api_port(&self) -> u16 {
        self.inventory.cluster.control_plane_endpoint.port
    }
    /// `host:port` every node's kubelet and kube-proxy use for the API server.
    pub fn endpoint(&self) -> String {
        endpoint_of(&self.inventory)
    }

    /// Which hosts a phase concerns, in inventory order.
    pub fn hosts_for(&self, scope: Scope) -> Vec<String> {
        let names = |hs: Vec<&crate::inventory::Host>| hs.into_iter().map(|h| h.name.clone()).collect::<Vec<_>>();
        match scope {
            Scope::AllHosts => names(self.inventory.hosts.iter().collect()),
            Scope::KubernetesNodes => names(
                self.inventory
                    .hosts
                    .iter()
                    .filter(|h| h.roles.iter().any(|r| matches!(r, Role::Master | Role::Worker)))
                    .collect(),
            ),
            Scope::Masters => names(self.masters()),
            Scope::FirstMaster => names(self.masters().into_iter().take(1).collect()),
            Scope::OtherMasters => names(self.masters().into_iter().skip(1).collect()),
            Scope::Workers => names(self.workers()),
            Scope::WorkersOnly => {
                names(self.workers().into_iter().filter(|h| !h.roles.contains(&Role::Master)).collect())
            }
            Scope::Storage => crate::storage::VolumePlan::of(&self.inventory).map(|p| p.host).into_iter().collect(),
            Scope::Database => {
                crate::database::host(&self.inventory).map(|(h, _)| h.name.clone()).into_iter().collect()
            }
            Scope::Registry => {
                crate::registry::site(&self.inventory).map(|(h, _)| h.name.clone()).into_iter().collect()
            }
            Scope::Controller => vec![],
        }
    }

    pub fn node(&self, name: &str) -> Result<&Arc<Node>, StepError> {
        self.nodes.get(name).ok_or_else(|| StepError::new(format!("{name} is not connected")))
    }

    pub async fn pki(&self) -> Result<Arc<crate::pki::ClusterPki>, StepError> {
        pki::cluster_pki(self).await
    }
}
