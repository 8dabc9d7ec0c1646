//! The API server as the controller sees it: through a node's SSH session to that node's
//! endpoint (127.0.0.1:PORT: a master's own API server, or a worker's local load balancer),
//! authenticated with the controller's admin certificate from the cluster PKI.

use super::{Cluster, Node, StepError};
use crate::kube::{KubeClient, NodeStatus, node_statuses};

/// Every node as the API server reports it, asked through `via`. None when no API server answers
/// there yet (before kubeadm init).
pub async fn nodes_via(cluster: &Cluster, via: &Node) -> Result<Option<Vec<NodeStatus>>, StepError> {
    let pki = cluster.pki().await?;
    let client = KubeClient::admin(&pki, cluster.api_port()).map_err(|e| StepError::new(e.to_string()))?;
    match client.get_json(&via.session, "/api/v1/nodes").await {
        Ok(list) => Ok(Some(node_statuses(&list))),
        // Nothing listens there yet: the direct-tcpip channel is refused.
        Err(crate::kube::KubeError::Tunnel { .. }) => Ok(None),
        Err(e) => Err(StepError::new(e.to_string())),
    }
}

/// Asked through the first master (its own API server).
pub async fn nodes(cluster: &Cluster) -> Result<Option<Vec<NodeStatus>>, StepError> {
    let first = cluster.first_master().ok_or_else(|| StepError::new("no master in the inventory"))?;
    let via = cluster.node(&first.name)?.clone();
    nodes_via(cluster, &via).await
}
