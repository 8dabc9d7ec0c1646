//! What a report holds: everything the page shows, gathered once, serialisable as it is
//! (`groundwork report -o json`). Nothing here is ever a secret: passwords and keys are named by
//! where they are kept, never read.

use serde::Serialize;

use crate::kube::VolumeStatus;
use crate::ops::certs::CertInfo;
use crate::ops::check::{Finding, Status};

#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct ReportData {
    /// Unix time the report was made.
    pub generated_at: i64,
    /// `groundwork VERSION`.
    pub generated_by: String,
    pub inventory_file: String,
    pub state_dir: String,
    /// Made from the inventory and the state alone (`--offline`).
    pub offline: bool,
    /// Sections (or parts of them) that were not gathered, and why: the page says so at its top.
    pub not_gathered: Vec<NotGathered>,
    pub cluster: ClusterSummary,
    pub bastion: Option<HostEntry>,
    /// In inventory order.
    pub hosts: Vec<HostEntry>,
    pub kubernetes: Live<KubernetesInfo>,
    pub volumes: Volumes,
    pub database: Option<DatabaseInfo>,
    pub registry: Option<RegistryInfo>,
    pub certificates: Certificates,
    pub last_apply: LastApply,
}

/// A part of the report that needs the hosts: gathered, or why not.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
#[serde(tag = "status", content = "data", rename_all = "snake_case")]
pub enum Live<T> {
    Gathered(T),
    NotGathered { reason: String },
}

impl<T> Live<T> {
    pub fn not(reason: impl Into<String>) -> Live<T> {
        Live::NotGathered { reason: reason.into() }
    }

    pub fn gathered(&self) -> Option<&T> {
        match self {
            Live::Gathered(t) => Some(t),
            Live::NotGathered { .. } => None,
        }
    }
}

#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct NotGathered {
    pub section: String,
    pub reason: String,
}

#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct ClusterSummary {
    pub name: String,
    /// `cluster.kubernetesVersion`: what the inventory asks for.
    pub kubernetes_version: String,
    pub cni: String,
    /// `external` (etcd on the masters as a service) or `stacked`.
    pub etcd: String,
    pub pod_cidr: String,
    pub service_cidr: String,
    pub node_network: Option<String>,
    pub endpoint: Endpoint,
    /// `packages.source`, and the bundle when there is one.
    pub packages: String,
    pub etcd_backup: Option<String>,
}

#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Endpoint {
    /// `localProxy`, `external` or `vip`.
    pub mode: String,
    pub address: Option<String>,
    pub port: u16,
    /// What a person reads: where the API server is reached and how.
    pub description: String,
}

#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct HostEntry {
    pub name: String,
    pub address: String,
    /// `bastion` for the bastion.
    pub roles: Vec<String>,
    pub reach: Reach,
    /// The host against its roles' baseline (`groundwork check`'s findings); empty when not asked.
    pub baseline: Vec<Finding>,
}

impl HostEntry {
    pub fn has_role(&self, role: &str) -> bool {
        self.roles.iter().any(|r| r == role)
    }

    /// The worst of the baseline's findings, when there are any.
    pub fn baseline_status(&self) -> Option<Status> {
        self.baseline.iter().map(|f| f.status).max()
    }
}

#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Reach {
    /// Offline, or the facts could not be gathered from any host (see `not_gathered`).
    NotAsked,
    Reached(Box<HostSummary>),
    Unreachable {
        reason: String,
    },
}

/// What a reached host is, from its facts.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct HostSummary {
    pub hostname: String,
    pub os: String,
    pub kernel: String,
    pub architecture: String,
    pub cpus: u32,
    pub memory_bytes: u64,
    pub root_total_bytes: Option<u64>,
    pub root_available_bytes: Option<u64>,
    pub clock_skew_ms: i64,
    pub versions: Versions,
    /// The backbone's servers present (`tgt`, `nfs-ganesha`, `postgresql`, ...).
    pub servers: Vec<String>,
}

#[derive(Debug, Clone, Default, Serialize, schemars::JsonSchema)]
pub struct Versions {
    pub containerd: Option<String>,
    pub runc: Option<String>,
    pub kubelet: Option<String>,
    pub kubeadm: Option<String>,
    pub kubectl: Option<String>,
}

#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct KubernetesInfo {
    /// The API server's own version (`/version`'s gitVersion).
    pub server_version: Option<String>,
    /// The master it was asked through.
    pub asked_via: String,
    pub nodes: Vec<NodeRow>,
}

#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct NodeRow {
    pub name: String,
    pub ready: bool,
    pub kubelet_version: Option<String>,
    pub unschedulable: bool,
    pub taints: Vec<String>,
}

#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Volumes {
    /// The storage host (inventory name and address), when the inventory has a storage section.
    pub storage_host: Option<String>,
    /// The volumes the inventory makes on the storage host.
    pub planned: Vec<PlannedVolumeRow>,
    /// The cluster's PersistentVolumes, from the API server.
    pub persistent_volumes: Live<Vec<VolumeStatus>>,
}

#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct PlannedVolumeRow {
    pub name: String,
    pub size: String,
    /// `iSCSI IQN` or `NFS SERVER:PATH`.
    pub access: String,
    /// `namespace/name` of the DIGIT claim it is made for, when known.
    pub claim: Option<String>,
}

#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct DatabaseInfo {
    pub host: String,
    pub address: String,
    pub postgresql_version: u32,
    pub port: u16,
    pub source: String,
    pub data_directory: Option<String>,
    pub databases: Vec<(String, String)>,
    pub roles: Vec<DatabaseRole>,
    pub backup: Option<String>,
}

#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct DatabaseRole {
    pub name: String,
    pub database: String,
    /// `owner`, `readwrite` or `readonly`.
    pub access: String,
    /// Where the password is kept (never the password).
    pub password: String,
}

#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct RegistryInfo {
    pub host: String,
    pub address: String,
    pub port: u16,
    pub mirrors: Vec<String>,
    pub user: String,
    /// Where the password is kept (never the password).
    pub password: String,
}

#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Certificates {
    pub warn_days: i64,
    pub fail_days: i64,
    /// The state's PKI on this machine (always read).
    pub state: Vec<CertInfo>,
    /// Those on the masters and workers.
    pub nodes: Live<NodeCertificates>,
}

#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct NodeCertificates {
    pub certificates: Vec<CertInfo>,
    /// Nodes not reached, with why.
    pub unreachable: Vec<(String, String)>,
}

/// The journal: per phase, per host, the last recorded outcome.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct LastApply {
    /// Why there is nothing to show (no journal yet, or one that cannot be read).
    pub problem: Option<String>,
    /// In the order apply runs them.
    pub phases: Vec<PhaseRow>,
}

#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct PhaseRow {
    pub phase: String,
    pub hosts: Vec<PhaseHost>,
}

#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct PhaseHost {
    pub host: String,
    /// `done` or `failed`.
    pub status: String,
    /// Unix time it finished.
    pub at: u64,
    pub took_ms: u64,
    pub changes: usize,
    pub error: Option<String>,
}

impl PhaseRow {
    pub fn failed(&self) -> usize {
        self.hosts.iter().filter(|h| h.status != "done").count()
    }
    /// The latest finish among its hosts.
    pub fn finished(&self) -> u64 {
        self.hosts.iter().map(|h| h.at).max().unwrap_or(0)
    }
    /// The longest any host took (hosts run a phase in parallel).
    pub fn longest_ms(&self) -> u64 {
        self.hosts.iter().map(|h| h.took_ms).max().unwrap_or(0)
    }
    pub fn changes(&self) -> usize {
        self.hosts.iter().map(|h| h.changes).sum()
    }
}
