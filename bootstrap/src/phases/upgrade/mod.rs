//! The phases of `groundwork upgrade`: the cluster to the Kubernetes version of the inventory's
//! bundle, the way kubeadm's documentation does it by hand. The runner is apply's (dry-run is the
//! plan, the journal, the lock and lease, interrupts); only the phases differ.
//!
//! 1. `upgrade-preflight` (first master, a gate): the versions that run, read from the API (the
//!    API servers' images, every kubelet), checked against the skew policy (`skew`); every node
//!    must be Ready, since nodes are drained one at a time onto the others; then an etcd snapshot
//!    onto the controller (the state's `backups/etcd`), the way back.
//! 2. `upgrade-stage` (every node, at once): the new bundle's binaries and images uploaded and the
//!    images imported into containerd; nothing installed yet.
//! 3. `upgrade-etcd` (masters, one at a time): etcd's binaries when the bundle's differ; a member
//!    whose binary changed restarts and the cluster must be healthy before the next.
//! 4. `upgrade-control-plane` (masters, one at a time): the new kubeadm, then `kubeadm upgrade
//!    apply` on the first master and `kubeadm upgrade node` on the others, then the node's kubelet.
//! 5. `upgrade-workers` (one at a time): the new kubeadm, `kubeadm upgrade node`, the kubelet.
//!
//! A node's kubelet: the node cordoned (noted by an annotation, so a node the operator had cordoned
//! stays cordoned) and drained (PodDisruptionBudgets honoured, within the drain timeout, what
//! blocks reported), the new kubelet and kubectl installed, the kubelet restarted, the node Ready
//! at the new version, uncordoned. Every step checks first, so an interrupted upgrade goes on
//! where it stopped and a finished one changes nothing.

pub mod skew;

use futures::FutureExt;
use futures::future::BoxFuture;
use groundwork_protocol::Task;

use super::bundle::{bundle, remote_path, stage, wanted};
use super::kubeadm::ADMIN_KUBECTL;
use super::{Change, Cluster, ErrorKind, Node, Phase, Scope, StepError};
use crate::bundle::{Artifact, ArtifactKind, Bundle};
use crate::kube::NodeStatus;
use skew::{Running, Version};

/// Set on a node groundwork cordoned for its upgrade: only such a node is uncordoned afterwards.
pub const CORDONED: &str = "groundwork.io/upgrade-cordoned";
const KUBEADM: &str = "/usr/local/bin/kubeadm";

pub const PREFLIGHT: &str = "upgrade-preflight";
const STAGE: &str = "upgrade-stage";
const ETCD: &str = "upgrade-etcd";
const CONTROL_PLANE: &str = "upgrade-control-plane";
const WORKERS: &str = "upgrade-workers";

/// The upgrade's phases, after the identity check.
pub fn phases() -> &'static [Phase] {
    static PHASES: std::sync::OnceLock<Vec<Phase>> = std::sync::OnceLock::new();
    PHASES.get_or_init(|| {
        let identity = super::all().iter().find(|p| p.name == super::identity::NAME).expect("identity phase");
        // The new bundle's apt repository replaces the old one's on every host, as apply would
        // (else the next apply finds the repository of the bundle the cluster left behind).
        let repository = super::all()
            .iter()
            .find(|p| p.name == super::package_repository::NAME)
            .expect("package-repository phase");
        vec![
            *identity,
            *repository,
            Phase {
                name: PREFLIGHT,
                about: "the running versions against the skew policy; every node Ready",
                scope: Scope::FirstMaster,
                serial: false,
                critical: true,
                after_all: &[],
                gate: true,
                run: preflight,
            },
            Phase {
                name: STAGE,
                about: "the new bundle's binaries and images onto every node (nothing installed yet)",
                scope: Scope::KubernetesNodes,
                serial: false,
                critical: true,
                after_all: &[],
                gate: false,
                run: stage_node,
            },
            Phase {
                name: ETCD,
                about: "etcd's binaries when the bundle's differ, one member at a time, healthy in between",
                scope: Scope::Masters,
                serial: true,
                critical: true,
                after_all: &[STAGE],
                gate: false,
                run: upgrade_etcd,
            },
            Phase {
                name: CONTROL_PLANE,
                about: "kubeadm upgrade apply (first master) or node, then drain, kubelet, uncordon: one master at a time",
                scope: Scope::Masters,
                serial: true,
                critical: true,
                after_all: &[STAGE, ETCD],
                gate: false,
                run: upgrade_master,
            },
            Phase {
                name: WORKERS,
                about: "kubeadm upgrade node, drain, kubelet, uncordon: one worker at a time",
                scope: Scope::WorkersOnly,
                serial: true,
                critical: false,
                after_all: &[CONTROL_PLANE],
                gate: false,
                run: upgrade_worker,
            },
        ]
    })
}

/// The target: the bundle's version, which the inventory must name too.
async fn target(cluster: &Cluster) -> Result<(std::sync::Arc<Bundle>, Version), StepError> {
    let bundle = bundle(cluster).await?;
    let wanted = &cluster.inventory.cluster.kubernetes_version;
    if bundle.kubernetes_version() != wanted {
        return Err(StepError(
            format!(
                "cluster.kubernetesVersion is {wanted} but the bundle ({}) carries {}: set both to the version to upgrade to",
                bundle.dir().display(),
                bundle.kubernetes_version()
            ),
            ErrorKind::Refused,
        ));
    }
    let v = Version::parse(wanted).ok_or_else(|| StepError::new(format!("`{wanted}` is not a Kubernetes version")))?;
    Ok((bundle, v))
}

/// What runs, from the API: the API servers' image tags (their mirror pods) and the kubelets.
async fn running(cluster: &Cluster) -> Result<(Running, Vec<NodeStatus>), StepError> {
    let first = first_master(cluster)?;
    let pki = cluster.pki().await?;
    let client = crate::kube::KubeClient::admin(&pki, cluster.api_port()).map_err(|e| StepError::new(e.to_string()))?;
    let api = |path: &'static str| {
        let (client, first) = (&client, &first);
        async move { client.get_json(&first.session, path).await.map_err(|e| StepError::new(e.to_string())) }
    };
    let nodes = crate::kube::node_statuses(&api("/api/v1/nodes").await?);
    let pods = api("/api/v1/namespaces/kube-system/pods?labelSelector=component%3Dkube-apiserver").await?;
    let mut api_servers = Vec::new();
    for pod in pods["items"].as_array().into_iter().flatten() {
        let node = pod["spec"]["nodeName"].as_str().unwrap_or_default().to_string();
        let image = pod["spec"]["containers"][0]["image"].as_str().unwrap_or_default();
        let tag = image.rsplit_once(':').map(|(_, t)| t).unwrap_or_default();
        let v = Version::parse(tag).ok_or_else(|| {
            StepError::new(format!("{node}: the API server's image `{image}` carries no version tag"))
        })?;
        api_servers.push((node, v));
    }
    let kubelets =
        nodes.iter().filter_map(|n| Some((n.name.clone(), Version::parse(n.kubelet_version.as_deref()?)?))).collect();
    Ok((Running { api_servers, kubelets }, nodes))
}

fn first_master(cluster: &Cluster) -> Result<std::sync::Arc<Node>, StepError> {
    let first = cluster.first_master().ok_or_else(|| StepError::new("no master in the inventory"))?;
    Ok(cluster.node(&first.name)?.clone())
}

fn preflight<'a>(cluster: &'a Cluster, node: &'a Node) -> BoxFuture<'a, Result<Vec<Change>, StepError>> {
    async move {
        let (_, target) = target(cluster).await?;
        let (running, nodes) = running(cluster).await?;
        let plan = skew::plan(&running, target).map_err(|e| StepError(format!("{e} (nothing was changed)"), ErrorKind::Refused))?;
        let inventory_nodes: Vec<String> = cluster.hosts_for(Scope::KubernetesNodes);
        let not_ready: Vec<&str> = inventory_nodes
            .iter()
            .filter(|n| !nodes.iter().any(|s| &s.name == *n && s.ready))
            .map(String::as_str)
            .collect();
        if !not_ready.is_empty() {
            return Err(StepError(
                format!(
                    "not Ready: {}. An upgrade drains the nodes one at a time onto the others: bring {} back (or remove \
                     it from the inventory) first; nothing was changed",
                    not_ready.join(", "),
                    if not_ready.len() == 1 { "it" } else { "them" }
                ),
                ErrorKind::Refused,
            ));
        }
        if plan.nothing_to_do() {
            node.note(format!("every node already runs {target}"));
            return Ok(vec![]);
        }
        node.note(format!(
            "{} to {target}: {} API server(s) and {} kubelet(s) to upgrade",
            plan.from,
            plan.api_servers_behind.len(),
            plan.kubelets_behind.len()
        ));
        // The way back if the upgrade goes wrong: the cluster's state as it was, on the controller.
        if !cluster.external_etcd() {
            node.note("no etcd snapshot taken: with stacked etcd kubeadm keeps its own backup under /etc/kubernetes/tmp");
            return Ok(vec![]);
        }
        // A resumed upgrade: some node already runs the target. The first run's snapshot, taken
        // before anything changed, stays the way back; one of a half-upgraded cluster is not.
        let at_target = |v: &Version| *v == target;
        if running.api_servers.iter().any(|(_, v)| at_target(v)) || running.kubelets.iter().any(|(_, v)| at_target(v)) {
            node.note("resuming: no new etcd snapshot (the one taken before the upgrade began is the way back)");
            return Ok(vec![]);
        }
        if node.dry_run() {
            return Ok(vec![Change::new("an etcd snapshot onto the controller before anything changes")]);
        }
        let dir = cluster.state.root().join("backups/etcd");
        let (file, info) = crate::etcd::snapshot::take(&node.session, &cluster.inventory.cluster.name, &dir)
            .await
            .map_err(|e| StepError::new(format!("the etcd snapshot before the upgrade failed, nothing was changed: {e}")))?;
        Ok(vec![Change::new(format!(
            "etcd snapshot before the upgrade: {} (revision {}, sha256 {})",
            file.display(),
            info.status.revision,
            info.sha256
        ))])
    }
    .boxed()
}

fn stage_node<'a>(cluster: &'a Cluster, node: &'a Node) -> BoxFuture<'a, Result<Vec<Change>, StepError>> {
    async move {
        let (bundle, _) = target(cluster).await?;
        let wanted = wanted(&bundle, node);
        let mut changes = stage(&bundle, node, &wanted).await?;
        if node.dry_run() && !changes.is_empty() {
            changes.push(Change::new("import the new images into containerd"));
            return Ok(changes);
        }
        let imports = wanted
            .iter()
            .filter(|a| a.kind == ArtifactKind::Images)
            .map(|a| Task::ImportImages {
                archive: remote_path(a),
                namespace: super::bundle::IMAGE_NAMESPACE.into(),
                images: a.images.clone(),
            })
            .collect();
        changes.extend(node.ensure_all(imports).await?);
        Ok(changes)
    }
    .boxed()
}

/// The install task of the staged binary `name`.
fn install(bundle: &Bundle, name: &str) -> Result<Task, StepError> {
    let a: &Artifact = bundle
        .artifact(name)
        .filter(|a| a.kind == ArtifactKind::Binary)
        .ok_or_else(|| StepError::new(format!("the bundle carries no binary `{name}`")))?;
    let to = a.install_to.clone().unwrap_or_else(|| format!("/usr/local/bin/{name}"));
    Ok(Task::Install { source: remote_path(a), path: to, mode: 0o755, sha256: a.sha256.clone() })
}

/// The bundle's binaries `names` installed. A plan compares the installed files with the bundle's
/// sums instead: the staged copies it would compare against are not uploaded in a plan.
async fn ensure_installed(node: &Node, bundle: &Bundle, names: &[&str]) -> Result<Vec<Change>, StepError> {
    let tasks = names.iter().map(|n| install(bundle, n)).collect::<Result<Vec<_>, _>>()?;
    if !node.dry_run() {
        return node.ensure_all(tasks).await;
    }
    let mut changes = Vec::new();
    for task in tasks {
        if let Task::Install { path, sha256, .. } = task
            && !node.test(&format!("echo '{sha256}  {path}' | sha256sum -c --status")).await?
        {
            changes.push(Change::new(format!("install {path} from the bundle")));
        }
    }
    Ok(changes)
}

fn upgrade_etcd<'a>(cluster: &'a Cluster, node: &'a Node) -> BoxFuture<'a, Result<Vec<Change>, StepError>> {
    async move {
        if !cluster.external_etcd() {
            return Ok(vec![]);
        }
        let (bundle, _) = target(cluster).await?;
        let tools: Vec<&str> = ["etcdctl", "etcdutl"].into_iter().filter(|n| bundle.artifact(n).is_some()).collect();
        let mut changes = ensure_installed(node, &bundle, &tools).await?;
        let server = ensure_installed(node, &bundle, &["etcd"]).await?;
        if server.is_empty() || node.dry_run() {
            changes.extend(server);
            if node.dry_run() && !changes.is_empty() {
                changes.push(Change::new("restart etcd (one member at a time)"));
            }
            return Ok(changes);
        }
        changes.extend(server);
        let turn = cluster.rolling_turn("etcd", node).await?;
        let outcome = async {
            node.ensure_all(vec![Task::Service { name: "etcd".into(), enabled: true, running: true, restart: true }])
                .await?;
            super::etcd::wait_healthy(cluster, node).await
        }
        .await;
        changes.push(turn.finish("restarted etcd on its new binary", outcome)?);
        Ok(changes)
    }
    .boxed()
}

fn upgrade_master<'a>(cluster: &'a Cluster, node: &'a Node) -> BoxFuture<'a, Result<Vec<Change>, StepError>> {
    async move {
        let (bundle, target) = target(cluster).await?;
        let mut changes = ensure_installed(node, &bundle, &["kubeadm"]).await?;
        let first = cluster.first_master().is_some_and(|m| m.name == node.name());
        let manifest_at_target = node
            .test(&format!("grep -q 'kube-apiserver:{target}' /etc/kubernetes/manifests/kube-apiserver.yaml"))
            .await?;
        // The first master also uploads the cluster's new configuration: done only when that says so.
        let config_at_target = !first
            || node
                .test(&format!(
                    "{ADMIN_KUBECTL} -n kube-system get configmap kubeadm-config \
                     -o jsonpath='{{.data.ClusterConfiguration}}' | grep -q 'kubernetesVersion: {target}'"
                ))
                .await?;
        if !(manifest_at_target && config_at_target) {
            let what = if first { format!("kubeadm upgrade apply {target}") } else { "kubeadm upgrade node".into() };
            if !node.dry_run() {
                let skip = skip_flags(cluster).await?;
                let command = if first {
                    format!("{KUBEADM} upgrade apply {target} --yes {skip}")
                } else {
                    format!("{KUBEADM} upgrade node {skip}")
                };
                node.sh(&what, &command).await?;
            }
            changes.push(Change::new(what));
        }
        // groundwork's own copies of the kubeadm configuration, at the new version.
        changes.extend(super::kubeadm::refresh_configs(cluster, node).await?);
        changes.extend(upgrade_kubelet(cluster, node, &bundle, target).await?);
        Ok(changes)
    }
    .boxed()
}

fn upgrade_worker<'a>(cluster: &'a Cluster, node: &'a Node) -> BoxFuture<'a, Result<Vec<Change>, StepError>> {
    async move {
        let (bundle, target) = target(cluster).await?;
        let mut changes = ensure_installed(node, &bundle, &["kubeadm"]).await?;
        if !kubelet_at(node, &bundle).await? {
            if !node.dry_run() {
                let skip = skip_flags(cluster).await?;
                node.sh("kubeadm upgrade node", &format!("{KUBEADM} upgrade node {skip}")).await?;
            }
            changes.push(Change::new("kubeadm upgrade node"));
        }
        changes.extend(upgrade_kubelet(cluster, node, &bundle, target).await?);
        Ok(changes)
    }
    .boxed()
}

/// kubeadm upgrade's flags for what the cluster was built without: CoreDNS when the bundle
/// carries no image of it (as `init` skipped it, the upgrade must neither check nor install it).
/// The images come from the bundle, imported already: nothing is pulled either way.
async fn skip_flags(cluster: &Cluster) -> Result<String, StepError> {
    let skipped = super::kubeadm::skip_phases(cluster).await?;
    if skipped.is_empty() {
        return Ok(String::new());
    }
    let mut flags = format!("--skip-phases={}", skipped.join(","));
    if skipped.contains(&"addon/coredns") {
        flags.push_str(" --ignore-preflight-errors=CoreDNSUnsupportedPlugins,CoreDNSMigration");
    }
    Ok(flags)
}

/// The installed kubelet and kubectl are the bundle's.
async fn kubelet_at(node: &Node, bundle: &Bundle) -> Result<bool, StepError> {
    let sum = |n: &str| bundle.artifact(n).map(|a| a.sha256.clone()).unwrap_or_default();
    node.test(&format!(
        "echo '{}  /usr/local/bin/kubelet\n{}  /usr/local/bin/kubectl' | sha256sum -c --status",
        sum("kubelet"),
        sum("kubectl")
    ))
    .await
}

/// kubectl with the cluster's admin.conf on the first master.
async fn kubectl(cluster: &Cluster, what: &str, args: &str) -> Result<String, StepError> {
    first_master(cluster)?.sh(what, &format!("{ADMIN_KUBECTL} {args}")).await
}

async fn node_status(cluster: &Cluster, name: &str) -> Result<NodeStatus, StepError> {
    let first = first_master(cluster)?;
    let pki = cluster.pki().await?;
    let client = crate::kube::KubeClient::admin(&pki, cluster.api_port()).map_err(|e| StepError::new(e.to_string()))?;
    let n = client
        .get_json(&first.session, &format!("/api/v1/nodes/{name}"))
        .await
        .map_err(|e| StepError::new(e.to_string()))?;
    Ok(crate::kube::node_status(&n))
}

async fn upgrade_kubelet(
    cluster: &Cluster,
    node: &Node,
    bundle: &Bundle,
    target: Version,
) -> Result<Vec<Change>, StepError> {
    let name = node.name();
    let status = node_status(cluster, name).await?;
    let ours = status.annotations.contains_key(CORDONED);
    let installed = kubelet_at(node, bundle).await?;
    let at_target = installed && status.kubelet_version.as_deref() == Some(&target.to_string()) && status.ready;
    if at_target && !ours {
        return Ok(vec![]);
    }
    if node.dry_run() {
        return Ok(vec![Change::new(format!(
            "drain, kubelet and kubectl {target}, restart the kubelet, Ready, uncordon"
        ))]);
    }
    let mut changes = Vec::new();
    if !at_target {
        if !status.unschedulable {
            kubectl(cluster, "annotate", &format!("annotate node {name} {CORDONED}=true --overwrite")).await?;
        }
        let timeout = cluster.drain_timeout.as_secs();
        let drained = kubectl(
            cluster,
            "drain",
            &format!("drain {name} --ignore-daemonsets --delete-emptydir-data --timeout={timeout}s"),
        )
        .await;
        if let Err(e) = drained {
            return Err(StepError::new(format!(
                "{name}: the drain did not finish within {timeout} s ({}). The node stays cordoned. See what blocks \
                 (a PodDisruptionBudget that allows no disruption, a pod without a controller), fix it, and run \
                 upgrade again (it goes on from here); --drain-timeout gives it longer",
                e.0.trim_start_matches(&format!("{}: drain failed ", first_master(cluster)?.name()))
            )));
        }
        changes.push(Change::new("cordoned and drained"));
        changes.extend(ensure_installed(node, bundle, &["kubelet", "kubectl"]).await?);
        node.sh("restart the kubelet", "systemctl daemon-reload && systemctl restart kubelet").await?;
        wait_ready_at(cluster, name, target).await?;
        changes.push(Change::new(format!("kubelet restarted; Ready at {target}")));
    }
    if node_status(cluster, name).await?.annotations.contains_key(CORDONED) {
        kubectl(cluster, "uncordon", &format!("uncordon {name}")).await?;
        kubectl(cluster, "annotate", &format!("annotate node {name} {CORDONED}-")).await?;
        changes.push(Change::new("uncordoned"));
    }
    Ok(changes)
}

async fn wait_ready_at(cluster: &Cluster, name: &str, target: Version) -> Result<(), StepError> {
    let want = target.to_string();
    let mut last = String::new();
    for _ in 0..90 {
        match node_status(cluster, name).await {
            Ok(s) if s.ready && s.kubelet_version.as_deref() == Some(want.as_str()) => return Ok(()),
            Ok(s) => last = format!("Ready {}, kubelet {}", s.ready, s.kubelet_version.unwrap_or_default()),
            Err(e) => last = e.0,
        }
        tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    }
    Err(StepError::new(format!("{name}: not Ready at {want} 180 s after the kubelet restarted ({last})")))
}
