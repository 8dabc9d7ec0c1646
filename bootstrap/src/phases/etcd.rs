//! etcd: the cluster's external etcd, one member per master as a systemd service, TLS for clients
//! and peers, and healthy with every member before kubeadm is asked to use it. With
//! `cluster.etcd: stacked` this phase does nothing and kubeadm runs etcd itself.

use std::time::Duration;

use futures::FutureExt;
use futures::future::BoxFuture;
use groundwork_protocol::Task;

use super::node::file;
use super::{Change, Cluster, Node, StepError};
use crate::playbooks;

const UNIT: &str = "/etc/systemd/system/etcd.service";

pub fn run<'a>(cluster: &'a Cluster, node: &'a Node) -> BoxFuture<'a, Result<Vec<Change>, StepError>> {
    async move {
        if !cluster.external_etcd() {
            return Ok(vec![]);
        }
        let initial_cluster = cluster
            .masters()
            .iter()
            .map(|m| format!("{}=https://{}:2380", m.name, m.address))
            .collect::<Vec<_>>()
            .join(",");
        let unit = playbooks::render(
            "etcd.service",
            &serde_json::json!({
                "name": node.name(),
                "address": node.address(),
                "cluster": cluster.inventory.cluster.name,
                "initial_cluster": initial_cluster,
                "extra_args": cluster.inventory.cluster.etcd_extra_args,
            }),
        )?;
        let mut changes = node.ensure_all(vec![file(UNIT, unit, 0o644)]).await?;
        if node.dry_run() {
            if !node.test("systemctl is-active -q etcd").await? {
                changes.push(Change::new("start etcd"));
            }
            return Ok(changes);
        }
        let service = |restart| Task::Service { name: "etcd".into(), enabled: true, running: true, restart };
        if !changes.is_empty() && node.test("systemctl is-active -q etcd").await? {
            // A running member whose unit changed: one member at a time, the cluster healthy
            // again (every member answering) before the next, so quorum is never at stake.
            let turn = cluster.rolling_turn("etcd", node).await?;
            let outcome = async {
                node.ensure_all(vec![service(true)]).await?;
                wait_healthy(cluster, node).await
            }
            .await;
            changes.push(turn.finish("restarted etcd", outcome)?);
            return Ok(changes);
        }
        // A first start is not rolled: a new member waits for its peers to form the cluster.
        changes.extend(node.ensure_all(vec![service(false)]).await?);
        wait_healthy(cluster, node).await?;
        Ok(changes)
    }
    .boxed()
}

/// Every member of the cluster answers (asked from this member), within a minute.
pub(super) async fn wait_healthy(cluster: &Cluster, node: &Node) -> Result<(), StepError> {
    let want = cluster.masters().len();
    let mut last = String::new();
    for _ in 0..30 {
        let h = crate::etcd::health(&node.session).await?;
        if h.all_answered && h.healthy == want {
            return Ok(());
        }
        last = format!("{} of {want} members healthy: {}", h.healthy, super::node::tail(&h.complaint, 3));
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    Err(StepError::new(format!("{}: etcd is not healthy after 60 s ({last})", node.name())))
}
