//! `check`: every host against its role's baseline, and the cluster as a whole (reachable, unique
//! identities, clock skew). Pure: it judges facts already gathered, so it is tested without hosts.

use std::collections::BTreeMap;

use groundwork_protocol::facts::{Facts, FeatureState};
use serde::Serialize;

use super::facts::{HostReport, HostResult};
use crate::inventory::baseline::{Baseline, BaselineRole};
use crate::inventory::values::ByteSize;
use crate::inventory::{Inventory, Role};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Pass,
    Warn,
    Fail,
}

#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Finding {
    pub check: &'static str,
    pub status: Status,
    pub measured: String,
    pub required: String,
    /// What to do about it, when it is not a pass.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub advice: Option<String>,
}

#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct HostCheck {
    pub name: String,
    pub roles: Vec<String>,
    pub findings: Vec<Finding>,
}

#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct CheckReport {
    /// How the baselines in force differ from the deployment guide (empty when they do not).
    pub baseline_relaxations: Vec<String>,
    pub hosts: Vec<HostCheck>,
    pub cluster: Vec<Finding>,
}

impl CheckReport {
    pub fn all_findings(&self) -> impl Iterator<Item = &Finding> {
        self.hosts.iter().flat_map(|h| &h.findings).chain(&self.cluster)
    }
    pub fn count(&self, status: Status) -> usize {
        self.all_findings().filter(|f| f.status == status).count()
    }
    pub fn passed(&self) -> bool {
        self.count(Status::Fail) == 0
    }
}

#[derive(Debug, Clone)]
pub struct CheckSettings {
    /// Largest host clock offset from the controller that still passes.
    pub max_clock_skew_ms: i64,
    /// A master is being replaced (`node remove`): an even number of masters is passing through,
    /// a warning rather than a failure.
    pub replacing_master: bool,
}

impl Default for CheckSettings {
    fn default() -> Self {
        CheckSettings { max_clock_skew_ms: 2000, replacing_master: false }
    }
}

/// Share of the baseline memory a host must show: MemTotal leaves out what firmware and kernel
/// reserve (typically 2-4 %), so a "16 GB" VM reports a little less than 16 GiB.
const MEMORY_TOLERANCE: f64 = 0.95;

/// Distributions groundwork installs on (apt); the others are refused up front.
const SUPPORTED_OS: [(&str, &str); 4] = [("debian", "12"), ("debian", "13"), ("ubuntu", "22.04"), ("ubuntu", "24.04")];

fn finding(check: &'static str, status: Status, measured: impl Into<String>, required: impl Into<String>) -> Finding {
    Finding { check, status, measured: measured.into(), required: required.into(), advice: None }
}

impl Finding {
    fn advise(mut self, advice: impl Into<String>) -> Self {
        if self.status != Status::Pass {
            self.advice = Some(advice.into());
        }
        self
    }
}

fn baseline_role(role: &str) -> Option<BaselineRole> {
    match role {
        "bastion" => Some(BaselineRole::Bastion),
        "master" => Some(BaselineRole::Master),
        "worker" => Some(BaselineRole::Worker),
        "storage" => Some(BaselineRole::Storage),
        "database" => Some(BaselineRole::Database),
        "registry" => Some(BaselineRole::Registry),
        _ => None,
    }
}

/// A host with several roles must meet the largest value of each.
fn combined_baseline(inv: &Inventory, roles: &[String]) -> Option<Baseline> {
    roles.iter().filter_map(|r| baseline_role(r)).map(|r| inv.baselines.effective(r)).reduce(|a, b| Baseline {
        min_memory: a.min_memory.max(b.min_memory),
        recommended_memory: a.recommended_memory.max(b.recommended_memory),
        min_cpus: a.min_cpus.max(b.min_cpus),
        min_disk: a.min_disk.max(b.min_disk),
    })
}

/// Who may already listen on a role's port: what groundwork itself installs there (a re-run).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Owner {
    Kubernetes,
    Servers(&'static [&'static str]),
}

impl Owner {
    fn installed(self, f: &Facts) -> bool {
        match self {
            Owner::Kubernetes => f.installed.kubeadm.is_some() || f.installed.kubelet.is_some(),
            Owner::Servers(names) => f.installed.servers.iter().any(|s| names.contains(&s.as_str())),
        }
    }
}

/// TCP ports a role's services will listen on, and what owns them once installed.
fn required_ports(roles: &[String]) -> Vec<(u16, &'static str, Owner)> {
    use Owner::{Kubernetes, Servers};
    let mut ports = Vec::new();
    for r in roles {
        match r.as_str() {
            "master" => ports.extend([
                (6443, "kube-apiserver", Kubernetes),
                (2379, "etcd client", Kubernetes),
                (2380, "etcd peer", Kubernetes),
                (10250, "kubelet", Kubernetes),
                (10257, "kube-controller-manager", Kubernetes),
                (10259, "kube-scheduler", Kubernetes),
            ]),
            "worker" => ports.extend([(10250, "kubelet", Kubernetes), (10256, "kube-proxy health", Kubernetes)]),
            "storage" => ports.extend([
                (3260, "iSCSI", Servers(&["tgt", "lio"])),
                (2049, "NFS", Servers(&["nfs-ganesha", "nfs-kernel-server"])),
            ]),
            "database" => ports.push((5432, "PostgreSQL", Servers(&["postgresql"]))),
            _ => {}
        }
    }
    ports.sort();
    ports.dedup_by_key(|p| p.0);
    ports
}

fn has_role(roles: &[String], role: Role) -> bool {
    roles.iter().any(|r| r == role.as_str())
}

fn host_findings(inv: &Inventory, roles: &[String], f: &Facts, skew_ms: i64, settings: &CheckSettings) -> Vec<Finding> {
    let mut out = Vec::new();
    let Some(b) = combined_baseline(inv, roles) else { return out };
    let cluster_node = has_role(roles, Role::Master) || has_role(roles, Role::Worker);

    let cpus = f.cpu.count;
    out.push(
        finding(
            "cpu",
            if cpus >= b.min_cpus { Status::Pass } else { Status::Fail },
            format!("{cpus} vCPU"),
            format!("{} vCPU", b.min_cpus),
        )
        .advise("give the host more vCPUs, or put it in a role with a smaller baseline"),
    );

    let mem = f.memory.total_bytes as f64;
    let status = if mem < b.min_memory.bytes() as f64 * MEMORY_TOLERANCE {
        Status::Fail
    } else if mem < b.recommended_memory.bytes() as f64 * MEMORY_TOLERANCE {
        Status::Warn
    } else {
        Status::Pass
    };
    let required = if b.recommended_memory > b.min_memory {
        format!("{} ({} recommended)", b.min_memory, b.recommended_memory)
    } else {
        b.min_memory.to_string()
    };
    out.push(
        finding("memory", status, ByteSize(f.memory.total_bytes).to_string(), required)
            .advise("add memory to the host (it is checked at 95% of the baseline, for what firmware reserves)"),
    );

    match f.filesystems.iter().find(|fs| fs.path == "/") {
        Some(root) => {
            let ok = root.total_bytes >= b.min_disk.bytes();
            out.push(
                finding(
                    "disk",
                    if ok { Status::Pass } else { Status::Fail },
                    format!("/ {} ({} free)", ByteSize(root.total_bytes), ByteSize(root.available_bytes)),
                    format!("{} on /", b.min_disk),
                )
                .advise("grow the root file system"),
            );
        }
        None => out.push(finding("disk", Status::Fail, "/ not reported", format!("{} on /", b.min_disk))),
    }
    if let Some(var) = f.filesystems.iter().find(|fs| fs.path == "/var") {
        let low = var.available_bytes < ByteSize::gib(2).bytes().min(var.total_bytes / 10);
        out.push(
            finding(
                "free /var",
                if low { Status::Warn } else { Status::Pass },
                ByteSize(var.available_bytes).to_string(),
                "2Gi or 10%",
            )
            .advise("images and logs go to /var: free some space"),
        );
    }

    if roles.iter().any(|r| r == "bastion") {
        return out; // the bastion only forwards: no OS, swap or port requirements
    }

    let os_ok = SUPPORTED_OS.iter().any(|(id, v)| f.os.id == *id && f.os.version_id == *v);
    out.push(
        finding(
            "os",
            if os_ok { Status::Pass } else { Status::Fail },
            f.os.pretty_name.clone(),
            "Debian 12/13, Ubuntu 22.04/24.04",
        )
        .advise("groundwork installs with apt on these releases only"),
    );

    if cluster_node {
        let swap = f.memory.swap_total_bytes;
        out.push(
            finding(
                "swap",
                if swap == 0 { Status::Pass } else { Status::Warn },
                if swap == 0 { "off".into() } else { ByteSize(swap).to_string() },
                "off",
            )
            .advise("kubelet expects swap off; `apply` turns it off and removes it from fstab"),
        );
        let kf = &f.kernel_features;
        for (name, state) in [("overlay", kf.overlay), ("br_netfilter", kf.br_netfilter)] {
            let status = match state {
                FeatureState::Available | FeatureState::Loadable => Status::Pass,
                FeatureState::Missing => Status::Fail,
            };
            out.push(
                finding(
                    if name == "overlay" { "kernel overlay" } else { "kernel br_netfilter" },
                    status,
                    state_word(state),
                    "built in or loadable",
                )
                .advise(format!("containerd and the pod network need {name}; use a kernel that has it")),
            );
        }
        let v = f.cgroup.version;
        out.push(
            finding("cgroup", if v == 2 { Status::Pass } else { Status::Warn }, format!("v{v}"), "v2")
                .advise("cgroup v1 works but is in maintenance mode in Kubernetes; boot with cgroup v2 when you can"),
        );
    }
    if let Some(storage) = &inv.storage {
        if has_role(roles, Role::Worker) && f.kernel_features.iscsi_initiator == FeatureState::Missing {
            out.push(
                finding("kernel iscsi", Status::Warn, "missing", "iscsi_tcp")
                    .advise("iSCSI volumes will be configured on this worker, not logged in: its kernel lacks iSCSI"),
            );
        }
        if has_role(roles, Role::Storage)
            && let Some(finding) = volume_space(storage, f)
        {
            out.push(finding);
        }
        if has_role(roles, Role::Storage) && f.kernel_features.nfs_server == FeatureState::Missing {
            let kernel_server = storage.nfs.server == crate::inventory::NfsServer::Kernel;
            out.push(if kernel_server {
                finding("kernel nfsd", Status::Fail, "missing", "nfsd (storage.nfs.server: kernel)")
                    .advise("the kernel has no nfsd: set storage.nfs.server: ganesha, or use a kernel with nfsd")
            } else {
                finding("kernel nfsd", Status::Pass, "missing", "none (nfs-ganesha is userspace)")
            });
        }
    }

    // A port held by what groundwork installs there is a re-run; anything else is in the way.
    let ports = required_ports(roles);
    let busy = |owned: bool| -> Vec<String> {
        ports
            .iter()
            .filter(|(p, _, owner)| f.listening_tcp_ports.contains(p) && owner.installed(f) == owned)
            .map(|(p, what, _)| format!("{p} ({what})"))
            .collect()
    };
    let (ours, theirs) = (busy(true), busy(false));
    let required = ports.iter().map(|(p, _, _)| p.to_string()).collect::<Vec<_>>().join(",");
    let measured = match (theirs.is_empty(), ours.is_empty()) {
        (true, true) => "free".to_string(),
        (true, false) => format!("in use by what groundwork installed: {}", ours.join(", ")),
        (false, _) => format!("in use: {}", theirs.join(", ")),
    };
    let status = if theirs.is_empty() { Status::Pass } else { Status::Fail };
    out.push(
        finding("ports", status, measured, format!("free: {required}"))
            .advise("stop what listens there, or use another host"),
    );

    let skew = skew_ms.abs();
    out.push(
        finding(
            "clock",
            if skew <= settings.max_clock_skew_ms { Status::Pass } else { Status::Fail },
            format!("{skew_ms:+} ms"),
            format!("within {} ms", settings.max_clock_skew_ms),
        )
        .advise("sync the host's clock (chrony or systemd-timesyncd); etcd and TLS need agreeing clocks"),
    );
    out
}

fn state_word(s: FeatureState) -> &'static str {
    match s {
        FeatureState::Available => "available",
        FeatureState::Loadable => "loadable",
        FeatureState::Missing => "missing",
    }
}

/// Groups host names by a value they should not share; returns the values held by more than one.
fn duplicates<'a>(items: impl Iterator<Item = (&'a str, String)>) -> Vec<(String, Vec<&'a str>)> {
    let mut by_value: BTreeMap<String, Vec<&str>> = BTreeMap::new();
    for (host, value) in items {
        by_value.entry(value).or_default().push(host);
    }
    by_value.into_iter().filter(|(_, hosts)| hosts.len() > 1).collect()
}

fn uniqueness(check: &'static str, what: &str, values: Vec<(&str, String)>, hosts: usize) -> Finding {
    if values.is_empty() {
        return finding(check, Status::Warn, format!("{what} not readable on any host"), "unique per host")
            .advise(format!("kubeadm tells nodes apart by {what}; make it visible or make sure cloned hosts differ"));
    }
    // A host may show several values (one MAC per interface): count hosts, not values.
    let seen = values.iter().map(|(h, _)| *h).collect::<std::collections::BTreeSet<_>>().len();
    let dups = duplicates(values.into_iter());
    if dups.is_empty() {
        let missing = hosts - seen;
        let measured = if missing == 0 {
            format!("{seen} unique")
        } else {
            format!("{seen} unique, {missing} host(s) without one")
        };
        finding(check, Status::Pass, measured, "unique per host")
    } else {
        let listed: Vec<String> = dups.iter().map(|(v, h)| format!("{v} on {}", h.join(", "))).collect();
        finding(check, Status::Fail, format!("shared: {}", listed.join("; ")), "unique per host")
            .advise("cloned hosts share identities: regenerate them (machine-id: `systemd-machine-id-setup`; MAC/UUID in the hypervisor)")
    }
}

pub fn evaluate(inv: &Inventory, reports: &[HostReport], settings: &CheckSettings) -> CheckReport {
    let mut hosts = Vec::new();
    let mut reached: Vec<(&str, &Facts, i64)> = Vec::new();
    for r in reports {
        let findings = match &r.result {
            HostResult::Failed { error } => vec![finding("answered", Status::Fail, "no", "yes").advise(error.clone())],
            HostResult::Facts(h) => {
                reached.push((&r.name, &h.facts, h.clock_skew_ms));
                host_findings(inv, &r.roles, &h.facts, h.clock_skew_ms, settings)
            }
        };
        hosts.push(HostCheck { name: r.name.clone(), roles: r.roles.clone(), findings });
    }

    let mut cluster = Vec::new();
    let total = reports.len();
    let ok = reached.len();
    cluster.push(
        finding(
            "answered",
            if ok == total { Status::Pass } else { Status::Fail },
            format!("{ok} of {total} hosts"),
            "all",
        )
        .advise("see the hosts that did not answer above; groundwork goes on only when every host answers"),
    );
    let nodes: Vec<&(&str, &Facts, i64)> = reached.iter().filter(|(n, _, _)| *n != "bastion").collect();
    if nodes.is_empty() {
        return CheckReport { baseline_relaxations: inv.baselines.relaxations(), hosts, cluster };
    }
    cluster.push(uniqueness(
        "unique hostname",
        "hostname",
        nodes.iter().map(|(n, f, _)| (*n, f.hostname.clone())).collect(),
        nodes.len(),
    ));
    let macs: Vec<(&str, String)> = nodes
        .iter()
        // Interfaces with an address: the host's own NICs, not the veths a container runtime adds.
        .flat_map(|(n, f, _)| {
            f.interfaces.iter().filter(|i| !i.addresses.is_empty()).filter_map(move |i| i.mac.clone().map(|m| (*n, m)))
        })
        .filter(|(_, m)| m != "00:00:00:00:00:00")
        .collect();
    cluster.push(uniqueness("unique MAC", "MAC address", macs, nodes.len()));
    cluster.push(uniqueness(
        "unique product_uuid",
        "product_uuid",
        nodes.iter().filter_map(|(n, f, _)| f.product_uuid.clone().map(|u| (*n, u))).collect(),
        nodes.len(),
    ));
    cluster.push(uniqueness(
        "unique machine-id",
        "machine-id",
        nodes.iter().filter_map(|(n, f, _)| f.machine_id.clone().map(|u| (*n, u))).collect(),
        nodes.len(),
    ));
    if let Some((host, _, skew)) = reached.iter().max_by_key(|(_, _, s)| s.abs()) {
        let spread = reached.iter().map(|(_, _, s)| *s).max().unwrap_or(0)
            - reached.iter().map(|(_, _, s)| *s).min().unwrap_or(0);
        cluster.push(
            finding(
                "clock skew",
                if spread <= settings.max_clock_skew_ms && skew.abs() <= settings.max_clock_skew_ms {
                    Status::Pass
                } else {
                    Status::Fail
                },
                format!("largest {skew:+} ms ({host}), spread {spread} ms"),
                format!("within {} ms", settings.max_clock_skew_ms),
            )
            .advise("run a time sync service on every host"),
        );
    }
    let masters = inv.hosts_with(Role::Master).count();
    let status = match masters {
        1 => Status::Warn,
        n if n % 2 == 1 => Status::Pass,
        _ if settings.replacing_master => Status::Warn,
        _ => Status::Fail,
    };
    cluster.push(
        finding("masters", status, masters.to_string(), "odd (3 for HA)")
            .advise("use 3 masters for a highly available control plane"),
    );

    CheckReport { baseline_relaxations: inv.baselines.relaxations(), hosts, cluster }
}

/// Whether the storage host's file system can hold every volume at its full size (what DIGIT's
/// charts claim, or `storage.volumes`): the backing files are sparse, so they fill as the
/// backbone writes. Only for backing files in a directory; the agent reports `/` and `/var`,
/// so the file system is the one of those holding the directory.
fn volume_space(storage: &crate::inventory::Storage, f: &Facts) -> Option<Finding> {
    if storage.backing_store.kind != crate::inventory::BackingKind::File {
        return None;
    }
    let needed: u64 = storage.effective_volumes().iter().map(|v| v.size.bytes() * u64::from(v.count)).sum();
    let dir = storage.backing_store.directory.display().to_string();
    let fs = f
        .filesystems
        .iter()
        .filter(|fs| dir == fs.path || dir.starts_with(&format!("{}/", fs.path.trim_end_matches('/'))))
        .max_by_key(|fs| fs.path.len())?;
    let status = if needed > fs.total_bytes {
        Status::Fail
    } else if needed > fs.available_bytes {
        Status::Warn
    } else {
        Status::Pass
    };
    let what = if storage.digit_claims.is_empty() { "the volumes" } else { "the volumes DIGIT's charts claim" };
    Some(
        finding(
            "volume space",
            status,
            format!("{} {} ({} free)", fs.mount_point, ByteSize(fs.total_bytes), ByteSize(fs.available_bytes)),
            format!("{} for {what} in {dir}", ByteSize(needed)),
        )
        .advise(
            "the volumes' backing files fill as the backbone writes: grow that file system, put backingStore.directory on a larger one, or use backingStore.kind: lvm",
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::facts::HostFacts;
    use groundwork_protocol::facts::{Filesystem, Interface, Os};

    fn inventory(extra: &str) -> Inventory {
        let text = format!(
            "apiVersion: groundwork/v1alpha1\nkind: Cluster\ncluster: {{name: t}}\nssh: {{useAgent: true}}\nhosts:\n\
             - {{name: m1, address: 10.0.0.1, roles: [master]}}\n- {{name: w1, address: 10.0.0.2, roles: [worker]}}\n{extra}"
        );
        serde_yaml_ng::from_str(&text).expect("test inventory")
    }

    fn facts(host: &str, mem_gib: u64, cpus: u32, mac: &str) -> Facts {
        Facts {
            hostname: host.into(),
            os: Os { id: "debian".into(), version_id: "12".into(), codename: None, pretty_name: "Debian 12".into() },
            cpu: groundwork_protocol::facts::Cpu { count: cpus, model: "x".into() },
            memory: groundwork_protocol::facts::Memory { total_bytes: mem_gib << 30, ..Default::default() },
            filesystems: vec![Filesystem {
                path: "/".into(),
                mount_point: "/".into(),
                fs_type: "ext4".into(),
                total_bytes: 100 << 30,
                available_bytes: 50 << 30,
            }],
            interfaces: vec![Interface {
                name: "eth0".into(),
                mac: Some(mac.into()),
                addresses: vec!["10.0.0.9/24".into()],
                up: true,
            }],
            machine_id: Some(format!("id-{host}")),
            kernel_features: groundwork_protocol::facts::KernelFeatures {
                overlay: FeatureState::Available,
                br_netfilter: FeatureState::Available,
                ..Default::default()
            },
            cgroup: groundwork_protocol::facts::Cgroup { version: 2, systemd_init: true },
            ..Default::default()
        }
    }

    fn report(name: &str, role: &str, f: Facts) -> HostReport {
        HostReport {
            name: name.into(),
            address: "x".into(),
            roles: vec![role.into()],
            result: HostResult::Facts(Box::new(HostFacts {
                facts: f,
                clock_skew_ms: 5,
                agent_uploaded: false,
                elapsed_ms: 1,
            })),
        }
    }

    fn status_of<'a>(r: &'a CheckReport, host: &str, check: &str) -> &'a Finding {
        r.hosts
            .iter()
            .find(|h| h.name == host)
            .and_then(|h| h.findings.iter().find(|f| f.check == check))
            .expect("finding")
    }

    #[test]
    fn guide_baselines_pass_and_fail() {
        let inv = inventory("");
        let r = evaluate(
            &inv,
            &[report("m1", "master", facts("m1", 4, 2, "aa")), report("w1", "worker", facts("w1", 8, 4, "bb"))],
            &CheckSettings::default(),
        );
        assert_eq!(status_of(&r, "m1", "memory").status, Status::Pass);
        let w = status_of(&r, "w1", "memory");
        assert_eq!(w.status, Status::Fail);
        assert_eq!((w.measured.as_str(), w.required.as_str()), ("8Gi", "16Gi"));
        assert!(!r.passed());
    }

    #[test]
    fn the_storage_host_must_hold_every_volume_at_full_size() {
        // The dev profile: 380 GiB of volumes; the facts' / has 100 GiB (50 free).
        let inv = inventory("- {name: s1, address: 10.0.0.9, roles: [storage]}\nstorage: {}\n");
        let r = evaluate(&inv, &[report("s1", "storage", facts("s1", 8, 4, "cc"))], &CheckSettings::default());
        let space = status_of(&r, "s1", "volume space");
        assert_eq!(space.status, Status::Fail, "{space:?}");
        assert!(space.required.starts_with("380Gi for the volumes in /srv/groundwork"), "{space:?}");
        // DIGIT's claims: 3x8 + 3x25 + 3x2 + 5 + 8 = 118 GiB: fits the disk, not its free space.
        let mut inv = inventory("- {name: s1, address: 10.0.0.9, roles: [storage]}\nstorage: {}\n");
        let root =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/digit/ccrs/devops/deploy-as-code");
        let claims = crate::digit::DigitSource::open(&root).expect("DIGIT's checkout").claims().expect("claims");
        inv.storage.as_mut().expect("storage").digit_claims = claims;
        let mut f = facts("s1", 8, 4, "cc");
        f.filesystems[0].total_bytes = 200 << 30;
        let r = evaluate(&inv, &[report("s1", "storage", f)], &CheckSettings::default());
        let space = status_of(&r, "s1", "volume space");
        assert_eq!(space.status, Status::Warn, "{space:?}");
        assert!(space.required.starts_with("118Gi for the volumes DIGIT's charts claim"), "{space:?}");
    }

    #[test]
    fn memory_tolerance_and_recommendation() {
        let inv = inventory("");
        // A "16 GB" VM showing 15.5 GiB passes; a master at 3 GiB is below the 4 GiB recommendation.
        let mut w = facts("w1", 0, 4, "bb");
        w.memory.total_bytes = (155 << 30) / 10;
        let r = evaluate(
            &inv,
            &[report("m1", "master", facts("m1", 3, 2, "aa")), report("w1", "worker", w)],
            &CheckSettings::default(),
        );
        assert_eq!(status_of(&r, "w1", "memory").status, Status::Pass);
        assert_eq!(status_of(&r, "m1", "memory").status, Status::Warn);
    }

    #[test]
    fn shared_identities_and_unreachable_hosts_fail_the_cluster() {
        let inv = inventory("baselines: {profile: lab}\n");
        let mut w = facts("w1", 16, 4, "aa");
        w.machine_id = Some("id-m1".into());
        let unreachable = HostReport {
            name: "w2".into(),
            address: "x".into(),
            roles: vec!["worker".into()],
            result: HostResult::Failed { error: "refused".into() },
        };
        let r = evaluate(
            &inv,
            &[report("m1", "master", facts("m1", 4, 2, "aa")), report("w1", "worker", w), unreachable],
            &CheckSettings::default(),
        );
        let c = |name: &str| r.cluster.iter().find(|f| f.check == name).unwrap();
        assert_eq!(c("unique MAC").status, Status::Fail);
        assert!(c("unique MAC").measured.contains("aa on m1, w1"));
        assert_eq!(c("unique machine-id").status, Status::Fail);
        assert_eq!(c("answered").measured, "2 of 3 hosts");
        assert_eq!(c("unique product_uuid").status, Status::Warn);
        assert!(r.baseline_relaxations.iter().any(|l| l.contains("lab")));
    }

    #[test]
    fn busy_ports_fail_unless_what_groundwork_installs_holds_them() {
        let inv = inventory("");
        let mut m = facts("m1", 4, 2, "aa");
        m.listening_tcp_ports = vec![22, 6443];
        let r = evaluate(&inv, &[report("m1", "master", m.clone())], &CheckSettings::default());
        assert_eq!(status_of(&r, "m1", "ports").status, Status::Fail);
        m.installed.kubeadm = Some("v1.33.3".into());
        let r = evaluate(&inv, &[report("m1", "master", m)], &CheckSettings::default());
        let ports = status_of(&r, "m1", "ports");
        assert_eq!(ports.status, Status::Pass);
        assert!(ports.measured.contains("6443 (kube-apiserver)"), "{}", ports.measured);

        // A database host on a re-run: PostgreSQL's port is PostgreSQL's; Kubernetes' would not do.
        let mut d = facts("d1", 4, 2, "cc");
        d.listening_tcp_ports = vec![5432];
        d.installed.kubeadm = Some("v1.33.3".into());
        let r = evaluate(&inv, &[report("d1", "database", d.clone())], &CheckSettings::default());
        assert_eq!(status_of(&r, "d1", "ports").status, Status::Fail);
        d.installed.servers = vec!["postgresql".into()];
        let r = evaluate(&inv, &[report("d1", "database", d)], &CheckSettings::default());
        assert_eq!(status_of(&r, "d1", "ports").status, Status::Pass);
    }
}
