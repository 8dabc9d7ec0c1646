//! taints: a master carries kubeadm's control-plane taint unless the inventory also makes it a
//! worker. kubeadm sets the taint at init and join (groundwork's configuration leaves it off a
//! master with the worker role); this phase keeps the cluster so when a master's roles change
//! later, or when a cluster was built before that. A taint added here evicts nothing already
//! running (NoSchedule): it only keeps new pods off.

use futures::FutureExt;
use futures::future::BoxFuture;

use super::kubeadm::ADMIN_KUBECTL;
use super::{Change, Cluster, Node, StepError};

pub const NAME: &str = "taints";
/// kubeadm's taint on control-plane nodes.
pub const CONTROL_PLANE_TAINT: &str = "node-role.kubernetes.io/control-plane:NoSchedule";

pub fn run<'a>(cluster: &'a Cluster, node: &'a Node) -> BoxFuture<'a, Result<Vec<Change>, StepError>> {
    async move {
        if cluster.dry_run && !cluster.state.pki_dir().join("ca.crt").exists() {
            return Ok(vec![]);
        }
        let name = node.name();
        // Through this master's own API server: it is up once the master has joined.
        let nodes = super::api::nodes_via(cluster, node).await?;
        let Some(status) = nodes.and_then(|ns| ns.into_iter().find(|n| n.name == name)) else {
            if node.dry_run() {
                return Ok(vec![]);
            }
            return Err(StepError::new(format!("{name} is not registered with the API server")));
        };
        let tainted = status.taints.iter().any(|t| t == CONTROL_PLANE_TAINT);
        let wanted = !cluster.takes_workloads(name);
        if tainted == wanted {
            return Ok(vec![]);
        }
        let (change, suffix) = if wanted {
            ("control-plane taint set (not a worker): new workloads are kept off", "")
        } else {
            ("control-plane taint removed (also a worker): workloads are scheduled here", "-")
        };
        if !node.dry_run() {
            node.sh("kubectl taint", &format!("{ADMIN_KUBECTL} taint node {name} {CONTROL_PLANE_TAINT}{suffix}"))
                .await?;
        }
        Ok(vec![Change::new(change)])
    }
    .boxed()
}
