//! The inventory file's types. Doc comments here become the JSON Schema's descriptions, which
//! editors show as hover help, so they are written for the operator editing the file.

use std::collections::BTreeMap;
use std::path::PathBuf;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::values::{ByteSize, Cidr, SecretRef};

/// A groundwork inventory: the hosts of one cluster and everything groundwork does to them.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schemars(title = "groundwork inventory")]
pub struct Inventory {
    /// Version of this file format.
    pub api_version: ApiVersion,
    /// Always `Cluster`.
    pub kind: Kind,
    /// Cluster-wide Kubernetes settings.
    pub cluster: ClusterSettings,
    /// SSH settings every host uses unless it overrides them.
    #[serde(default)]
    pub ssh: SshDefaults,
    /// The jump host through which every node is reached. Omit it to reach nodes directly.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bastion: Option<Bastion>,
    /// The hosts of the cluster and their roles.
    pub hosts: Vec<Host>,
    /// Minimum hardware per role; the deployment guide's values unless a profile or override says otherwise.
    #[serde(default)]
    pub baselines: Baselines,
    /// Where packages, binaries and images come from.
    #[serde(default)]
    pub packages: Packages,
    /// NFS and iSCSI volumes for the stateful backbone (Kafka, ZooKeeper, Elasticsearch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage: Option<Storage>,
    /// The PostgreSQL host outside the cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database: Option<Database>,
    /// A container registry inside the site for the workloads' images, which every node uses as
    /// a mirror of the registries it lists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registry: Option<Registry>,
    /// What groundwork hands to the service deployer when the cluster is ready.
    #[serde(default)]
    pub handoff: Handoff,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
pub enum ApiVersion {
    #[serde(rename = "groundwork/v1alpha1")]
    V1alpha1,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
pub enum Kind {
    Cluster,
}

/// Cluster-wide Kubernetes settings.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClusterSettings {
    /// Cluster name: lower-case letters, digits and `-`, at most 63 characters.
    pub name: String,
    /// Kubernetes version to install, e.g. `v1.33.3`.
    #[serde(default = "default_kubernetes_version")]
    pub kubernetes_version: String,
    /// Network from which every node gets its pods' addresses.
    #[serde(rename = "podCIDR", default = "default_pod_cidr")]
    pub pod_cidr: Cidr,
    /// Network of Service cluster IPs.
    #[serde(rename = "serviceCIDR", default = "default_service_cidr")]
    pub service_cidr: Cidr,
    /// Network the hosts' addresses are on; pod and service networks must not overlap it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_network: Option<Cidr>,
    /// The one address every node and client uses to reach the API servers.
    #[serde(default)]
    pub control_plane_endpoint: ControlPlaneEndpoint,
    /// Pod network plugin.
    #[serde(default)]
    pub cni: Cni,
    /// The plugin's manifest for `cni: calico` or `flannel` (e.g. Calico's `calico.yaml` or
    /// Flannel's `kube-flannel.yml` of the release you run), a file beside the inventory; its
    /// images must be in the bundle or the nodes' registry mirror. groundwork sets the pod CIDR in it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cni_manifest: Option<PathBuf>,
    /// Where etcd runs.
    #[serde(default)]
    pub etcd: EtcdMode,
    /// Kubelet settings that differ from Kubernetes' defaults.
    #[serde(default)]
    pub kubelet: KubeletSettings,
    /// API server settings that differ from kubeadm's defaults. A change is applied on a re-run,
    /// one master at a time, each API server ready again before the next.
    #[serde(default)]
    pub api_server: ApiServerSettings,
    /// Extra flags for every external etcd member (`cluster.etcd: external`), without the leading
    /// `--`, e.g. `{quota-backend-bytes: "4294967296"}`. They are on etcd's command line: never a
    /// secret here. A change restarts the members one at a time, the cluster healthy in between.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub etcd_extra_args: BTreeMap<String, String>,
    /// A snapshot of etcd on every master by a systemd timer (`cluster.etcd: external`), kept on
    /// the master itself: the controller's `groundwork etcd backup` is the copy off the cluster.
    /// Absent: no timer (one installed before is removed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etcd_backup: Option<EtcdBackup>,
}

/// `cluster.etcdBackup`: local etcd snapshots on each master.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EtcdBackup {
    /// Directory on each master (mode 0700: a snapshot holds every Secret of the cluster).
    #[serde(default = "default_etcd_backup_directory")]
    pub directory: PathBuf,
    /// systemd calendar expression, e.g. `daily` or `*-*-* 01:30`.
    #[serde(default = "default_backup_schedule")]
    pub schedule: String,
    /// Number of snapshots kept on each master.
    #[serde(default = "default_backup_retention")]
    pub keep: u32,
}

fn default_etcd_backup_directory() -> PathBuf {
    "/var/backups/groundwork-etcd".into()
}

/// API server settings (kubeadm's `ClusterConfiguration.apiServer`).
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ApiServerSettings {
    /// Extra kube-apiserver flags, without the leading `--`, e.g. `{event-ttl: 2h}`; they replace
    /// kubeadm's value of the same flag. They are on the API server's command line: never a secret here.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub extra_args: BTreeMap<String, String>,
}

/// Kubelet settings (the cluster's KubeletConfiguration, set at `kubeadm init`).
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KubeletSettings {
    /// Hard eviction thresholds replacing the kubelet's defaults, e.g.
    /// `{memory.available: 100Mi, nodefs.available: 10%, imagefs.available: 15%}`. Set them all:
    /// a signal left out has no threshold.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub eviction_hard: BTreeMap<String, String>,
    /// Disk usage (percent of the image filesystem) above which unused images are removed
    /// (Kubernetes' default: 85); `100` never removes images for disk usage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_gc_high_threshold_percent: Option<u8>,
    /// Disk usage image removal brings it down to (default: 80); below the high threshold.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_gc_low_threshold_percent: Option<u8>,
}

fn default_kubernetes_version() -> String {
    "v1.33.3".into()
}
fn default_pod_cidr() -> Cidr {
    Cidr("10.244.0.0/16".parse().expect("constant CIDR"))
}
fn default_service_cidr() -> Cidr {
    Cidr("10.96.0.0/12".parse().expect("constant CIDR"))
}

/// The one address every node and client uses to reach the API servers.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ControlPlaneEndpoint {
    /// `localProxy`: a load balancer on every node in front of all API servers (no extra address needed);
    /// `external`: a load balancer you run, at `address`; `vip`: a keepalived virtual IP at `address`.
    #[serde(default)]
    pub mode: EndpointMode,
    /// Address of the external load balancer or the virtual IP (modes `external` and `vip`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// API server port behind the endpoint.
    #[serde(default = "default_api_port")]
    pub port: u16,
}

impl Default for ControlPlaneEndpoint {
    fn default() -> Self {
        ControlPlaneEndpoint { mode: EndpointMode::default(), address: None, port: default_api_port() }
    }
}

fn default_api_port() -> u16 {
    6443
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum EndpointMode {
    #[default]
    LocalProxy,
    External,
    Vip,
}

/// Pod network plugin. `bridge` (routed bridge with host-local IPAM) works fully offline;
/// `calico` and `flannel` need their images in the package source.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum Cni {
    #[default]
    Bridge,
    Calico,
    Flannel,
}

impl Cni {
    pub fn as_str(self) -> &'static str {
        match self {
            Cni::Bridge => "bridge",
            Cni::Calico => "calico",
            Cni::Flannel => "flannel",
        }
    }
}

/// `external`: a 3-member etcd cluster on the masters as a systemd service (the default);
/// `stacked`: kubeadm runs etcd as a static pod on each master.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum EtcdMode {
    #[default]
    External,
    Stacked,
}

/// SSH settings for every host unless the host overrides them.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SshDefaults {
    /// Login user.
    #[serde(default = "default_ssh_user")]
    pub user: String,
    /// SSH port on the hosts.
    #[serde(default = "default_ssh_port")]
    pub port: u16,
    /// Private key file (OpenSSH or PEM), relative to the inventory; `~` is your home.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_file: Option<PathBuf>,
    /// Passphrase of the key file, if it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_passphrase: Option<SecretRef>,
    /// Use the keys of the running ssh-agent (`SSH_AUTH_SOCK`).
    #[serde(default)]
    pub use_agent: bool,
    /// Run commands through `sudo` (needed when `user` is not root).
    #[serde(default)]
    pub sudo: bool,
    /// Password for `sudo`, if it asks for one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sudo_password: Option<SecretRef>,
    /// known_hosts file used to verify every host key (default `~/.ssh/known_hosts`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub known_hosts: Option<PathBuf>,
}

impl Default for SshDefaults {
    fn default() -> Self {
        SshDefaults {
            user: default_ssh_user(),
            port: default_ssh_port(),
            key_file: None,
            key_passphrase: None,
            use_agent: false,
            sudo: false,
            sudo_password: None,
            known_hosts: None,
        }
    }
}

fn default_ssh_user() -> String {
    "root".into()
}
fn default_ssh_port() -> u16 {
    22
}

/// Per-host SSH settings; anything left out comes from the top-level `ssh` section.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SshOverride {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_file: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_passphrase: Option<SecretRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub use_agent: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sudo: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sudo_password: Option<SecretRef>,
}

/// The jump host. Only its SSH port needs to be reachable from where groundwork runs.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Bastion {
    /// Address (IP or DNS name) as seen from where groundwork runs.
    pub address: String,
    /// SSH port of the bastion.
    #[serde(default = "default_ssh_port")]
    pub port: u16,
    /// Settings that differ from the top-level `ssh` section.
    #[serde(default)]
    pub ssh: SshOverride,
}

/// One host of the cluster.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Host {
    /// Host name; becomes the Kubernetes node name (lower-case letters, digits, `-` and `.`).
    pub name: String,
    /// Address (IP or DNS name) as seen from the bastion.
    pub address: String,
    /// What the host is for.
    pub roles: Vec<Role>,
    /// Settings that differ from the top-level `ssh` section.
    #[serde(default)]
    pub ssh: SshOverride,
    /// Kubernetes node labels.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum Role {
    Master,
    Worker,
    Storage,
    Database,
    /// The site's container registry (see the `registry` section).
    Registry,
}

impl Role {
    pub const ALL: [Role; 5] = [Role::Master, Role::Worker, Role::Storage, Role::Database, Role::Registry];
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Master => "master",
            Role::Worker => "worker",
            Role::Storage => "storage",
            Role::Database => "database",
            Role::Registry => "registry",
        }
    }
}

/// Minimum hardware per role.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Baselines {
    /// `deploymentGuide` (the default) or `lab`, a named relaxation for test labs that is
    /// printed whenever it is in force.
    #[serde(default)]
    pub profile: BaselineProfile,
    /// Values that replace the profile's, per role; printed whenever in force.
    #[serde(default)]
    pub overrides: RoleBaselines,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum BaselineProfile {
    #[default]
    DeploymentGuide,
    Lab,
}

/// Per-role baseline values that replace the profile's.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RoleBaselines {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bastion: Option<BaselineOverride>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub master: Option<BaselineOverride>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worker: Option<BaselineOverride>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage: Option<BaselineOverride>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database: Option<BaselineOverride>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registry: Option<BaselineOverride>,
}

/// Baseline values; anything left out keeps the profile's value.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BaselineOverride {
    /// Memory below which the check fails.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_memory: Option<ByteSize>,
    /// Memory below which the check warns.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recommended_memory: Option<ByteSize>,
    /// vCPUs below which the check fails.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_cpus: Option<u32>,
    /// Size of the root file system below which the check fails.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_disk: Option<ByteSize>,
}

/// Where OS packages, Kubernetes binaries and images come from.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Packages {
    /// `online`: the distribution's and upstream repositories; `proxy`: the same through an HTTP
    /// proxy (`proxy`); `mirror`: a local mirror of them (`mirror`); `bundle`: everything from the
    /// offline bundle (`bundle`), nothing downloaded on any node.
    #[serde(default)]
    pub source: PackageSource,
    /// HTTP proxy the nodes use for package downloads, e.g. `http://10.0.0.2:3142`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy: Option<String>,
    /// Base URL of a local mirror of the distribution's repository.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mirror: Option<String>,
    /// Offline bundle directory (manifest, SHA256 sums, binaries, images), relative to the inventory.
    /// Artifacts the bundle holds are always taken from it, whatever `source` says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bundle: Option<PathBuf>,
    /// The public key the bundle must be signed with (minisign's format): the key itself, the
    /// second line of its `.pub` file (`RW...`), or `{file: PATH}` naming that file. `apply`
    /// refuses a bundle without a good signature by this key unless `--allow-unsigned-bundle`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bundle_key: Option<BundleKey>,
}

/// A bundle signing key: written out, or in a file (relative to the inventory).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(untagged, deny_unknown_fields)]
pub enum BundleKey {
    Inline(String),
    File { file: PathBuf },
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum PackageSource {
    #[default]
    Online,
    Proxy,
    Mirror,
    Bundle,
}

/// Volumes for the stateful backbone, served by the storage host.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Storage {
    /// Name of the host that serves the volumes (default: the only host with role `storage`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// Default volume set: `dev` or `prod` (DIGIT SDC prerequisites).
    #[serde(default)]
    pub profile: StorageProfile,
    /// What the volumes are stored in on the storage host.
    #[serde(default)]
    pub backing_store: BackingStore,
    /// iSCSI target settings.
    #[serde(default)]
    pub iscsi: IscsiSettings,
    /// NFS server settings.
    #[serde(default)]
    pub nfs: NfsSettings,
    /// Changes to the profile's volumes: an entry with a profile volume's name replaces it
    /// (set `count: 0` to drop it); other names are added.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub volumes: Vec<VolumeSpec>,
    /// The claims DIGIT's stateful charts make (read from `handoff.digit.source` when the
    /// inventory is loaded); when there are any, they decide the volume sets, not the profile.
    #[serde(skip)]
    #[schemars(skip)]
    pub digit_claims: Vec<crate::digit::Claim>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum StorageProfile {
    #[default]
    Dev,
    Prod,
}

/// Files in a directory (sparse) or logical volumes in an LVM volume group.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BackingStore {
    #[serde(default)]
    pub kind: BackingKind,
    /// Directory holding the volume files (kind `file`) and NFS exports.
    #[serde(default = "default_storage_directory")]
    pub directory: PathBuf,
    /// LVM volume group (kind `lvm`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume_group: Option<String>,
}

impl Default for BackingStore {
    fn default() -> Self {
        BackingStore { kind: BackingKind::default(), directory: default_storage_directory(), volume_group: None }
    }
}

fn default_storage_directory() -> PathBuf {
    "/srv/groundwork".into()
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum BackingKind {
    #[default]
    File,
    Lvm,
}

/// iSCSI target settings.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct IscsiSettings {
    /// Target implementation: `lio` (kernel, `targetcli`) or `tgt` (userspace).
    #[serde(default)]
    pub target: IscsiTarget,
    /// IQN prefix of the targets (default `iqn.2026-01.io.groundwork:<cluster name>`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iqn_prefix: Option<String>,
    /// CHAP credentials every initiator must present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chap: Option<Chap>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum IscsiTarget {
    #[default]
    Lio,
    Tgt,
}

/// CHAP credentials.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Chap {
    pub user: String,
    pub password: SecretRef,
}

/// NFS server settings.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NfsSettings {
    /// `kernel` (nfs-kernel-server, needs nfsd) or `ganesha` (userspace nfs-ganesha).
    #[serde(default)]
    pub server: NfsServer,
    /// Network allowed to mount the exports (default: `cluster.nodeNetwork`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_network: Option<Cidr>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum NfsServer {
    #[default]
    Kernel,
    Ganesha,
}

/// A set of equal volumes for one backbone component.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct VolumeSpec {
    /// Component name, e.g. `kafka`; volumes are named `<name>-0`, `<name>-1`, ...
    pub name: String,
    /// How workers reach the volumes.
    pub protocol: VolumeProtocol,
    /// Number of volumes (one per replica).
    pub count: u32,
    /// Size of each volume.
    pub size: ByteSize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum VolumeProtocol {
    Iscsi,
    Nfs,
}

/// The PostgreSQL host outside the cluster.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Database {
    /// Name of the database host (default: the only host with role `database`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// PostgreSQL server settings.
    #[serde(default)]
    pub postgresql: PostgresSettings,
    /// Databases to create, each with its owner role.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub databases: Vec<DatabaseSpec>,
    /// Login roles to create.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub users: Vec<DatabaseUser>,
    /// Scheduled backups (none when left out).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup: Option<DatabaseBackup>,
}

/// PostgreSQL server settings.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PostgresSettings {
    /// Major version, e.g. 15.
    #[serde(default = "default_postgres_version")]
    pub version: u32,
    /// `distribution` (the OS's packages), `pgdg` (the PostgreSQL project's repository) or `bundle`.
    #[serde(default)]
    pub source: PostgresSource,
    /// Data directory (default: the package's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_directory: Option<PathBuf>,
    /// Port PostgreSQL listens on.
    #[serde(default = "default_postgres_port")]
    pub port: u16,
}

impl Default for PostgresSettings {
    fn default() -> Self {
        PostgresSettings {
            version: default_postgres_version(),
            source: PostgresSource::default(),
            data_directory: None,
            port: default_postgres_port(),
        }
    }
}

fn default_postgres_version() -> u32 {
    15
}
fn default_postgres_port() -> u16 {
    5432
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum PostgresSource {
    #[default]
    Distribution,
    Pgdg,
    Bundle,
}

/// The site's registry: the CNCF distribution registry from the OS's packages, TLS from the
/// cluster's CA, basic authentication; containerd on every node pulls the `mirrors` through it.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Registry {
    /// Name of the host that serves it (default: the only host with role `registry`). To serve it
    /// from the bastion, list the bastion under `hosts` too, with role `registry`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// HTTPS port.
    #[serde(default = "default_registry_port")]
    pub port: u16,
    /// Registries whose images the nodes pull from this one instead (an image pushed as
    /// `docker.io/library/nginx:1.27` is pulled by that name).
    #[serde(default = "default_registry_mirrors")]
    pub mirrors: Vec<String>,
    /// The user that pushes and pulls.
    #[serde(default = "default_registry_user")]
    pub user: String,
    /// Its password; generated once and kept in groundwork's state (0600) when left out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<SecretRef>,
}

fn default_registry_port() -> u16 {
    5000
}
fn default_registry_mirrors() -> Vec<String> {
    ["docker.io", "registry.k8s.io", "quay.io", "ghcr.io"].map(String::from).to_vec()
}
fn default_registry_user() -> String {
    "groundwork".into()
}

/// A database and the role that owns it.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DatabaseSpec {
    pub name: String,
    /// Owner role; created if it does not exist.
    pub owner: String,
}

/// A login role with access to one database.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DatabaseUser {
    pub name: String,
    /// The database (from `databases`) this role may use.
    pub database: String,
    /// `readwrite` or `readonly`.
    #[serde(default)]
    pub access: DatabaseAccess,
    /// Password; generated once and kept in groundwork's state (0600) when left out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<SecretRef>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum DatabaseAccess {
    #[default]
    Readwrite,
    Readonly,
}

/// Scheduled `pg_dump` backups on the database host.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DatabaseBackup {
    /// Directory on the database host.
    #[serde(default = "default_backup_directory")]
    pub directory: PathBuf,
    /// systemd calendar expression, e.g. `daily` or `*-*-* 02:30`.
    #[serde(default = "default_backup_schedule")]
    pub schedule: String,
    /// Number of backups kept per database.
    #[serde(default = "default_backup_retention")]
    pub keep: u32,
}

fn default_backup_directory() -> PathBuf {
    "/var/backups/groundwork".into()
}
fn default_backup_schedule() -> String {
    "daily".into()
}
fn default_backup_retention() -> u32 {
    7
}

/// What groundwork writes for the service deployer: `groundwork handoff` (and the last phase of
/// `apply`) writes it into `<directory>/<cluster name>/`, with a NEXT-STEPS.md that says what to run.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Handoff {
    /// Output directory, relative to the inventory; the files go into a subdirectory named
    /// after the cluster.
    #[serde(default = "default_handoff_directory")]
    pub directory: PathBuf,
    /// Which deployer NEXT-STEPS.md (and `groundwork handoff --run-deployer`) uses: `helm`
    /// (DIGIT's Helmfile, 2.9 LTS and later), `digit` (DIGIT's Go deployer), `argocd` or `flux`.
    /// The files for every deployer are written either way.
    #[serde(default)]
    pub deployer: Deployer,
    /// Namespace the services are deployed into.
    #[serde(default = "default_namespace")]
    pub namespace: String,
    /// Domain DIGIT is served at (DIGIT's `global.domain`), e.g. `digit.sdc.example.gov.in`.
    /// Default: `<cluster name>.internal`, which only resolves where you make it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    /// Environments to write DIGIT and GitOps files for (lower-case letters, digits and `-`),
    /// e.g. `[dev, uat, prod]`.
    #[serde(default = "default_environments")]
    pub environments: Vec<String>,
    /// The Git repository an ArgoCD Application or Flux objects deploy from (none are written
    /// when left out).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gitops: Option<GitOps>,
    /// Encrypt the secrets files with sops for this age recipient (written in plain text, mode
    /// 0600, when left out or when `sops` is not installed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sops: Option<Sops>,
    /// The operator's DIGIT deployment: which flow, where its checkout is, and what each
    /// environment needs that only the site knows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digit: Option<DigitHandoff>,
}

/// `handoff.digit`: groundwork reads DIGIT's own environment files from `source` and writes,
/// per environment, files DIGIT renders as they are.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DigitHandoff {
    /// `helmfile` (DIGIT's current deployment, `digit-helmfile.yaml`) or `deployer` (the
    /// digit-lts Go deployer).
    #[serde(default)]
    pub flow: DigitFlow,
    /// The operator's checkout of DIGIT's deploy-as-code (or the repository holding
    /// `devops/deploy-as-code`), relative to the inventory.
    pub source: PathBuf,
    /// One entry per DIGIT environment (the guide sets up dev, uat and prod); replaces
    /// `handoff.environments` and `handoff.domain`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub environments: Vec<DigitEnvironment>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum DigitFlow {
    #[default]
    Helmfile,
    Deployer,
}

/// What one DIGIT environment needs that only the site knows.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DigitEnvironment {
    /// dev, uat, prod, ...
    pub name: String,
    /// DIGIT's `global.domain` for this environment, e.g. `uat.digit.sdc.example.gov.in`.
    pub domain: String,
    /// The state-level tenant id (DIGIT's `<tenant_id>`), e.g. `pb`.
    #[serde(default = "default_tenant")]
    pub tenant_id: String,
    /// cert-manager ClusterIssuer for the ingress certificates (default: what DIGIT's file says).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert_issuer: Option<String>,
}

fn default_tenant() -> String {
    "pg".into()
}

impl Handoff {
    /// The environment names: `digit.environments` when given, else `environments`.
    pub fn environment_names(&self) -> Vec<String> {
        match &self.digit {
            Some(d) if !d.environments.is_empty() => d.environments.iter().map(|e| e.name.clone()).collect(),
            _ => self.environments.clone(),
        }
    }
}

impl Default for Handoff {
    fn default() -> Self {
        Handoff {
            directory: default_handoff_directory(),
            deployer: Deployer::default(),
            namespace: default_namespace(),
            domain: None,
            environments: default_environments(),
            gitops: None,
            sops: None,
            digit: None,
        }
    }
}

impl Handoff {
    /// `domain`, or its default for cluster `cluster_name`.
    pub fn domain_or_default(&self, cluster_name: &str) -> String {
        self.domain.clone().unwrap_or_else(|| format!("{cluster_name}.internal"))
    }
}

fn default_handoff_directory() -> PathBuf {
    "handoff".into()
}
fn default_namespace() -> String {
    "egov".into()
}
fn default_environments() -> Vec<String> {
    vec!["dev".into()]
}

/// Where the GitOps controller finds the Helm chart and the values files groundwork writes.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GitOps {
    /// Clone URL, e.g. `https://git.sdc.example.gov.in/digit/deploy.git`.
    pub repository: String,
    /// Directory of the Helm chart in the repository; each environment's values file is
    /// committed next to it as `values-<environment>.yaml`.
    #[serde(default = "default_gitops_path")]
    pub path: String,
    /// Branch to follow.
    #[serde(default = "default_gitops_revision")]
    pub revision: String,
}

fn default_gitops_path() -> String {
    ".".into()
}
fn default_gitops_revision() -> String {
    "main".into()
}

/// sops settings for the secrets files.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Sops {
    /// age public key the secrets are encrypted for (`age1...`); its private key decrypts them.
    pub age_recipient: String,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum Deployer {
    #[default]
    Helm,
    Digit,
    Argocd,
    Flux,
}

impl Inventory {
    pub fn hosts_with(&self, role: Role) -> impl Iterator<Item = (usize, &Host)> {
        self.hosts.iter().enumerate().filter(move |(_, h)| h.roles.contains(&role))
    }

    /// The host a section names (`storage.host`, `database.host`), else the first with `role`.
    pub fn section_host(&self, named: Option<&str>, role: Role) -> Option<&Host> {
        match named {
            Some(name) => self.hosts.iter().find(|h| h.name == name),
            None => self.hosts_with(role).map(|(_, h)| h).next(),
        }
    }
}
