//! The report's parts only the hosts can tell: each host's facts against its baseline (what
//! `facts` and `check` do), the API server's version, nodes and PersistentVolumes, and the nodes'
//! certificates (what `certs check` reads). It only reads: no lock, no lease, nothing changed.
//! A host that cannot be reached is marked so with the reason; the rest goes on.

use std::sync::Arc;

use super::data::{HostEntry, HostSummary, KubernetesInfo, Live, NodeCertificates, NodeRow, Reach, Versions};
use crate::inventory::LoadedInventory;
use crate::kube::{KubeClient, VolumeStatus};
use crate::ops::access::{Access, Reach as AccessReach};
use crate::ops::check::{CheckSettings, evaluate};
use crate::ops::facts::{FactsOptions, HostReport, HostResult, NoProgress, gather};

/// Everything asked of the hosts.
pub struct Gathered {
    /// Why the facts could not be gathered at all (None: they were, host by host).
    pub facts_problem: Option<String>,
    pub kubernetes: Live<KubernetesInfo>,
    pub persistent_volumes: Live<Vec<VolumeStatus>>,
    pub node_certificates: Live<NodeCertificates>,
}

/// Asks the hosts, filling `bastion` and `hosts` in place (reach and baseline).
pub async fn gather_live(
    loaded: &LoadedInventory,
    opts: &FactsOptions,
    bastion: &mut Option<HostEntry>,
    hosts: &mut [HostEntry],
    now: i64,
    (warn_days, fail_days): (i64, i64),
) -> Gathered {
    let facts = gather(loaded, opts, Arc::new(NoProgress));
    let cluster = cluster(loaded, opts, now, warn_days, fail_days);
    let (facts, (kubernetes, persistent_volumes, node_certificates)) = futures::join!(facts, cluster);
    let facts_problem = match facts {
        Ok(reports) => {
            apply_facts(loaded, &reports, bastion, hosts);
            None
        }
        Err(e) => Some(crate::sanitize::line(&e.to_string())),
    };
    Gathered { facts_problem, kubernetes, persistent_volumes, node_certificates }
}

/// Each host's facts and its findings against its baseline, into its entry.
fn apply_facts(
    loaded: &LoadedInventory,
    reports: &[HostReport],
    bastion: &mut Option<HostEntry>,
    hosts: &mut [HostEntry],
) {
    let check = evaluate(&loaded.inventory, reports, &CheckSettings::default());
    let is_bastion = |roles: &[String]| roles.len() == 1 && roles[0] == "bastion";
    let entries = bastion.iter_mut().chain(hosts.iter_mut());
    for entry in entries {
        let bastion_entry = is_bastion(&entry.roles);
        let Some(report) = reports.iter().find(|r| r.name == entry.name && is_bastion(&r.roles) == bastion_entry)
        else {
            continue;
        };
        entry.reach = match &report.result {
            HostResult::Facts(h) => Reach::Reached(Box::new(summary(h))),
            HostResult::Failed { error } => Reach::Unreachable { reason: crate::sanitize::line(error) },
        };
        if let Some(c) = check.hosts.iter().find(|c| c.name == entry.name && is_bastion(&c.roles) == bastion_entry) {
            entry.baseline = c.findings.clone();
        }
    }
}

fn summary(h: &crate::ops::facts::HostFacts) -> HostSummary {
    let f = &h.facts;
    let root = f.filesystems.iter().find(|fs| fs.path == "/");
    let i = &f.installed;
    HostSummary {
        hostname: f.hostname.clone(),
        os: if f.os.pretty_name.is_empty() {
            format!("{} {}", f.os.id, f.os.version_id)
        } else {
            f.os.pretty_name.clone()
        },
        kernel: f.kernel.clone(),
        architecture: f.architecture.clone(),
        cpus: f.cpu.count,
        memory_bytes: f.memory.total_bytes,
        root_total_bytes: root.map(|r| r.total_bytes),
        root_available_bytes: root.map(|r| r.available_bytes),
        clock_skew_ms: h.clock_skew_ms,
        versions: Versions {
            containerd: i.containerd.clone(),
            runc: i.runc.clone(),
            kubelet: i.kubelet.clone(),
            kubeadm: i.kubeadm.clone(),
            kubectl: i.kubectl.clone(),
        },
        servers: i.servers.clone(),
    }
}

type ClusterParts = (Live<KubernetesInfo>, Live<Vec<VolumeStatus>>, Live<NodeCertificates>);

/// The API server's view and the nodes' certificates, through one read-only login to the nodes.
async fn cluster(loaded: &LoadedInventory, opts: &FactsOptions, now: i64, warn: i64, fail: i64) -> ClusterParts {
    let access = match Access::open_read_only(loaded, opts.transport.clone(), AccessReach::Nodes).await {
        Ok(a) => a,
        Err(e) => {
            let why = crate::sanitize::line(&e.to_string());
            return (Live::not(why.clone()), Live::not(why.clone()), Live::not(why));
        }
    };
    let (certificates, unreachable) = crate::ops::certs::node_certificates(&access, now, warn, fail).await;
    let certs = Live::Gathered(NodeCertificates { certificates, unreachable });
    let port = loaded.inventory.cluster.control_plane_endpoint.port;
    let (kube, volumes) = match KubeClient::admin_read_only(&access.state.pki_dir(), port) {
        Ok(client) => api(&client, &access).await,
        Err(e) => {
            let why =
                format!("no client of the API server from the state's PKI: {}", crate::sanitize::line(&e.to_string()));
            (Live::not(why.clone()), Live::not(why))
        }
    };
    access.close().await;
    (kube, volumes, certs)
}

/// `/version`, the nodes and the PersistentVolumes, asked through the first master that answers.
async fn api(client: &KubeClient, access: &Access) -> (Live<KubernetesInfo>, Live<Vec<VolumeStatus>>) {
    let mut problems = Vec::new();
    for (t, s) in access.masters() {
        let nodes = match client.get_json(s, "/api/v1/nodes").await {
            Ok(list) => list,
            Err(e) => {
                problems.push(format!("{}: {}", t.name, crate::sanitize::line(&e.to_string())));
                continue;
            }
        };
        let server_version =
            client.get_json(s, "/version").await.ok().and_then(|v| v["gitVersion"].as_str().map(str::to_string));
        let nodes = crate::kube::node_statuses(&nodes)
            .into_iter()
            .map(|n| NodeRow {
                name: n.name,
                ready: n.ready,
                kubelet_version: n.kubelet_version,
                unschedulable: n.unschedulable,
                taints: n.taints,
            })
            .collect();
        let volumes = match client.get_json(s, "/api/v1/persistentvolumes").await {
            Ok(list) => Live::Gathered(crate::kube::volume_statuses(&list)),
            Err(e) => Live::NotGathered { reason: crate::sanitize::line(&e.to_string()) },
        };
        return (Live::Gathered(KubernetesInfo { server_version, asked_via: t.name.clone(), nodes }), volumes);
    }
    let why = if problems.is_empty() {
        "no master could be reached to ask the API server".to_string()
    } else {
        format!("the API server did not answer: {}", problems.join("; "))
    };
    (Live::NotGathered { reason: why.clone() }, Live::NotGathered { reason: why })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::facts::HostFacts;

    #[test]
    fn facts_land_on_their_host_the_bastion_apart_from_a_host_named_bastion() {
        let text = "apiVersion: groundwork/v1alpha1\nkind: Cluster\ncluster: {name: t}\nssh: {useAgent: true}\nbastion: {address: 203.0.113.1}\n\
                    hosts:\n  - {name: m1, address: 10.0.0.1, roles: [master]}\n  - {name: w1, address: 10.0.0.2, roles: [worker]}\n\
                    \x20 - {name: bastion, address: 10.0.0.3, roles: [registry]}\n  - {name: w2, address: 10.0.0.4, roles: [worker]}\n";
        let loaded = crate::inventory::load_str_checking(
            std::path::Path::new("inventory.yaml"),
            text.to_string(),
            crate::inventory::LocalFiles::Reported,
        )
        .expect("loads");
        let (mut bastion, mut hosts) = super::super::from_inventory::hosts(&loaded.inventory);
        let report = |name: &str, roles: &[&str], result| HostReport {
            name: name.into(),
            address: String::new(),
            roles: roles.iter().map(|r| r.to_string()).collect(),
            result,
        };
        let facts = || {
            HostResult::Facts(Box::new(HostFacts {
                facts: Default::default(),
                clock_skew_ms: 0,
                agent_uploaded: false,
                elapsed_ms: 0,
            }))
        };
        let reports = vec![
            report("bastion", &["bastion"], HostResult::Failed { error: "bastion: timed out".into() }),
            report("m1", &["master"], facts()),
            report("bastion", &["registry"], facts()),
            report("w2", &["worker"], HostResult::Failed { error: "w2: connection\nrefused".into() }),
        ];
        apply_facts(&loaded, &reports, &mut bastion, &mut hosts);
        let bastion = bastion.expect("bastion");
        assert!(matches!(&bastion.reach, Reach::Unreachable { reason } if reason == "bastion: timed out"));
        assert!(matches!(hosts[0].reach, Reach::Reached(_)) && !hosts[0].baseline.is_empty());
        assert!(matches!(hosts[1].reach, Reach::NotAsked) && hosts[1].baseline.is_empty(), "w1 had no report");
        assert!(matches!(hosts[2].reach, Reach::Reached(_)), "the host named bastion is not the bastion");
        assert!(matches!(&hosts[3].reach, Reach::Unreachable { reason } if reason == "w2: connection refused"));
        // An empty machine fails its baseline; an unreachable one fails `answered`.
        assert_eq!(hosts[0].baseline_status(), Some(crate::ops::check::Status::Fail));
        assert!(hosts[3].baseline.iter().any(|f| f.check == "answered" && f.status == crate::ops::check::Status::Fail));
    }
}
