//! endpoint: the control-plane endpoint every node uses. With `localProxy` (the default), every
//! node, masters included, runs HAProxy on 127.0.0.1:6444 in front of all API servers
//! (Kubespray's localhost proxy pattern), so one endpoint, `127.0.0.1:6444`, serves the whole
//! cluster, survives any one master going down, and already answers on a master that is still
//! joining (its own API server does not run yet). The API servers keep their own port (6443).
//! With `vip`, keepalived on the masters holds the inventory's address for the master whose API
//! server answers (workers need nothing). With `external`, the operator's load balancer is the
//! endpoint and nothing is installed here.

use std::time::Duration;

use futures::FutureExt;
use futures::future::BoxFuture;
use groundwork_protocol::Task;

use super::node::file;
use super::rolling::wait_until;
use super::{Change, Cluster, Node, StepError};
use crate::inventory::EndpointMode;
use crate::playbooks;

/// Where every node's local load balancer listens (the API servers listen on the inventory's
/// `controlPlaneEndpoint.port`, 6443 by default, on every address).
pub const LOCAL_PROXY_PORT: u16 = 6444;

pub fn run<'a>(cluster: &'a Cluster, node: &'a Node) -> BoxFuture<'a, Result<Vec<Change>, StepError>> {
    async move {
        match cluster.inventory.cluster.control_plane_endpoint.mode {
            EndpointMode::LocalProxy => {}
            EndpointMode::Vip => return virtual_ip(cluster, node).await,
            EndpointMode::External => return Ok(vec![]),
        }
        let masters: Vec<_> =
            cluster.masters().iter().map(|m| serde_json::json!({"name": m.name, "address": m.address})).collect();
        let config = playbooks::render(
            "haproxy.cfg",
            &serde_json::json!({
                "bind": "127.0.0.1",
                "port": LOCAL_PROXY_PORT,
                "api_port": cluster.api_port(),
                "masters": masters,
            }),
        )?;
        let files = vec![file("/etc/haproxy/haproxy.cfg", config, 0o644)];
        // It answers on its port again (a TCP accept: the API servers behind it may still be starting).
        let answers = format!("timeout 2 bash -c '</dev/tcp/127.0.0.1/{LOCAL_PROXY_PORT}'");
        // A reload: HAProxy's master process hands its listening socket to the new worker, so
        // the node's own endpoint never refuses a connection (a restart would, for a moment).
        rolling_service(cluster, node, "haproxy", "reload", files, &answers).await
    }
    .boxed()
}

/// keepalived on a master: the endpoint address held by the first master whose API server
/// answers, priorities in inventory order.
async fn virtual_ip(cluster: &Cluster, node: &Node) -> Result<Vec<Change>, StepError> {
    let masters = cluster.masters();
    let Some(rank) = masters.iter().position(|m| m.name == node.name()) else { return Ok(vec![]) };
    let vip =
        cluster.inventory.cluster.control_plane_endpoint.address.clone().ok_or_else(|| {
            StepError::new("cluster.controlPlaneEndpoint.address: mode vip needs the virtual IP address")
        })?;
    let interface = node
        .facts
        .interfaces
        .iter()
        .find(|i| i.addresses.iter().any(|a| a.split('/').next() == Some(node.address())))
        .map(|i| i.name.clone())
        .ok_or_else(|| StepError::new(format!("{}: no interface holds its address {}", node.name(), node.address())))?;
    let priority = 150 - 10 * rank as u32;
    let values = serde_json::json!({
        "name": node.name(),
        "vip": vip,
        "interface": interface,
        "address": node.address(),
        "peers": masters.iter().filter(|m| m.name != node.name()).map(|m| m.address.clone()).collect::<Vec<_>>(),
        "priority": priority,
        // Enough to fall below every healthy master's priority.
        "penalty": 10 * masters.len() as u32 + 10,
        "router_id": router_id(&cluster.inventory.cluster.name),
        "api_port": cluster.api_port(),
    });
    let files = vec![
        file("/etc/keepalived/check-apiserver.sh", playbooks::render("check-apiserver.sh", &values)?, 0o755),
        file("/etc/keepalived/keepalived.conf", playbooks::render("keepalived.conf", &values)?, 0o644),
    ];
    // Someone holds the address again: a TCP answer or refusal from it (nothing answers when
    // nobody holds it), so this works before the API servers run too.
    let held = format!(
        "out=$(timeout 2 bash -c '</dev/tcp/{vip}/{port}' 2>&1) || echo \"$out\" | grep -q 'Connection refused'",
        port = cluster.api_port()
    );
    rolling_service(cluster, node, "keepalived", "restart", files, &held).await
}

/// Files a service reads, then the service enabled and running. A running service whose files
/// changed is restarted (`how`: `restart` or `reload`) in its turn of the phase's roll (one node
/// at a time), then `healthy` must pass on the node before the next node's turn.
async fn rolling_service(
    cluster: &Cluster,
    node: &Node,
    service: &str,
    how: &str,
    files: Vec<Task>,
    healthy: &str,
) -> Result<Vec<Change>, StepError> {
    let unit = |restart| Task::Service { name: service.into(), enabled: true, running: true, restart };
    let mut changes = node.ensure_all(files).await?;
    if changes.is_empty() || node.dry_run() || !node.test(&format!("systemctl is-active -q {service}")).await? {
        let restart = !changes.is_empty();
        changes.extend(node.ensure_all(vec![unit(restart)]).await?);
        return Ok(changes);
    }
    let turn = cluster.rolling_turn("endpoint", node).await?;
    let outcome = async {
        node.sh(&format!("systemctl {how} {service}"), &format!("systemctl {how} {service}")).await?;
        wait_until(
            node,
            &format!("{service} healthy again"),
            Duration::from_secs(30),
            Duration::from_millis(200),
            healthy,
        )
        .await
    }
    .await;
    let done = if how == "reload" { "reloaded" } else { "restarted" };
    changes.push(turn.finish(&format!("{done} {service}"), outcome)?);
    Ok(changes)
}

/// A VRRP router id (1-255) of the cluster's own, so that two clusters on one segment differ.
fn router_id(cluster: &str) -> u32 {
    cluster.bytes().fold(7u32, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(b))) % 255 + 1
}
