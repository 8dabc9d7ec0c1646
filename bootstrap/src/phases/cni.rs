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
        let Some(cidrs) = pod_cidrs(cluster).await? else {
            return Ok(vec![Change::new("configure the pod network (after kubeadm init)")]);
        };
        let Some(own) = cidrs.get(node.name()) else {
            if node.dry_run() {
                return Ok(vec![Change::new("configure the pod network (after this node joins)")]);
            }
            return Err(StepError::new(format!(
                "{}: the API server gives this node no pod CIDR (is it registered? kubectl get node {})",
                node.name(),
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
