//! cni: the pod network. With `cni: bridge` (works offline) each node gets a bridge with host-local
//! addresses from the pod CIDR the controller-manager gave it, plus routes to every other node's
//! pod CIDR through that node, re-applied at boot by a small unit. Calico and Flannel are
//! inventory options for sites whose bundle or registry has their images (`cni_manifest`).

use std::collections::BTreeMap;

use futures::FutureExt;
use futures::future::BoxFuture;

use super::node::file;
use super::{Change, Cluster, Node, StepError};
use crate::inventory::Cni;
use crate::playbooks;

/// How long a registered node may wait for the controller-manager to give it a pod CIDR.
const POD_CIDR_WAIT: std::time::Duration = std::time::Duration::from_secs(300);

/// Node name -> pod CIDR, as the API server has them; None before kubeadm init.
async fn pod_cidrs(cluster: &Cluster) -> Result<Option<BTreeMap<String, String>>, StepError> {
    if cluster.dry_run && !cluster.state.pki_dir().join("ca.crt").exists() {
        return Ok(None);
    }
    Ok(super::api::nodes(cluster)
        .await?
        .map(|nodes| nodes.into_iter().filter_map(|n| n.pod_cidr.map(|c| (n.name, c))).collect()))
}

pub fn run<'a>(cluster: &'a Cluster, node: &'a Node) -> BoxFuture<'a, Result<Vec<Change>, StepError>> {
    async move {
        if cluster.inventory.cluster.cni != Cni::Bridge {
            return super::cni_manifest::run(cluster, node).await;
        }
        let Some(mut cidrs) = pod_cidrs(cluster).await? else {
            return Ok(vec![Change::new("configure the pod network (after kubeadm init)")]);
        };
        // The controller-manager gives a node its pod CIDR a little after the node registers:
        // at once on a server, minutes later on a slow machine (a VM under emulation showed it).
        let deadline = std::time::Instant::now() + POD_CIDR_WAIT;
        while !cidrs.contains_key(node.name()) && !node.dry_run() && std::time::Instant::now() < deadline {
            tokio::time::sleep(std::time::Duration::from_secs(3)).await;
            cidrs = pod_cidrs(cluster).await?.unwrap_or_default();
        }
        let Some(own) = cidrs.get(node.name()) else {
            if node.dry_run() {
                return Ok(vec![Change::new("configure the pod network (after this node joins)")]);
            }
            return Err(StepError::new(format!(
                "{}: the API server gave this node no pod CIDR in {} s (is it registered, and the \
                 controller-manager running? kubectl get node {}; kubectl -n kube-system get pods)",
                node.name(),
                POD_CIDR_WAIT.as_secs(),
                node.name()
            )));
        };
        let routes: Vec<_> = cluster
            .inventory
            .hosts
            .iter()
            .filter(|h| h.name != node.name())
            .filter_map(|h| cidrs.get(&h.name).map(|c| serde_json::json!({"cidr": c, "via": h.address})))
            .collect();
        let conflist = playbooks::render("cni-bridge.conflist", &serde_json::json!({"pod_cidr": own}))?;
        let script = playbooks::render(
            "pod-routes.sh",
            &serde_json::json!({
                "routes": routes,
                "own_cidr": own,
                "cluster_cidr": cluster.inventory.cluster.pod_cidr.0.to_string(),
            }),
        )?;
        let unit = playbooks::render("groundwork-pod-routes.service", &serde_json::json!({}))?;
        node.ensure_service_with(
            "groundwork-pod-routes",
            vec![
                file("/etc/cni/net.d/10-groundwork.conflist", conflist, 0o644),
                file("/etc/groundwork/pod-routes.sh", script, 0o755),
                file("/etc/systemd/system/groundwork-pod-routes.service", unit, 0o644),
            ],
        )
        .await
    }
    .boxed()
}
