//! endpoint: the control-plane endpoint every node uses. With `localProxy` (the default), every
//! node, masters included, runs HAProxy on 127.0.0.1:6444 in front of all API servers
//! (Kubespray's localhost proxy pattern), so one endpoint, `127.0.0.1:6444`, serves the whole
//! cluster, survives any one master going down, and already answers on a master that is still
//! joining (its own API server does not run yet). The API servers keep their own port (6443).
//! With `external` or `vip`, the operator's load balancer or VIP is the endpoint and nothing is
//! installed here.

use futures::FutureExt;
use futures::future::BoxFuture;

use super::node::file;
use super::{Change, Cluster, Node, StepError};
use crate::inventory::EndpointMode;
use crate::playbooks;

/// Where every node's local load balancer listens (the API servers listen on the inventory's
/// `controlPlaneEndpoint.port`, 6443 by default, on every address).
pub const LOCAL_PROXY_PORT: u16 = 6444;

pub fn run<'a>(cluster: &'a Cluster, node: &'a Node) -> BoxFuture<'a, Result<Vec<Change>, StepError>> {
    async move {
        if cluster.inventory.cluster.control_plane_endpoint.mode != EndpointMode::LocalProxy {
            return Ok(vec![]);
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
        node.ensure_service_with("haproxy", vec![file("/etc/haproxy/haproxy.cfg", config, 0o644)]).await
    }
    .boxed()
}
