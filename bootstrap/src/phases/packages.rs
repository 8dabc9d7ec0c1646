//! packages: what every Kubernetes node installs from the inventory's package source
//! (distribution repositories, a proxy or a mirror). Kubernetes' own binaries come from the
//! offline bundle (phase `bundle`), never from here.

use futures::FutureExt;
use futures::future::BoxFuture;
use groundwork_protocol::Task;

use super::{Change, Cluster, Node, StepError};
use crate::inventory::{EndpointMode, PackageSource};

/// Debian/Ubuntu package names. kubeadm's preflight wants conntrack, iptables, socat, ethtool
/// and ebtables; containerd's CRI needs the CNI plugins.
const NODE_PACKAGES: &[&str] =
    &["containerd", "runc", "containernetworking-plugins", "iptables", "conntrack", "socat", "ethtool", "ebtables"];
/// The local load balancer in front of the API servers (phase `endpoint`).
const LOCAL_PROXY_PACKAGES: &[&str] = &["haproxy"];

pub fn run<'a>(cluster: &'a Cluster, node: &'a Node) -> BoxFuture<'a, Result<Vec<Change>, StepError>> {
    async move {
        let p = &cluster.inventory.packages;
        let mut names: Vec<String> = NODE_PACKAGES.iter().map(|s| s.to_string()).collect();
        match cluster.inventory.cluster.control_plane_endpoint.mode {
            EndpointMode::LocalProxy => names.extend(LOCAL_PROXY_PACKAGES.iter().map(|s| s.to_string())),
            EndpointMode::Vip if node.target.roles.contains(&crate::inventory::Role::Master) => {
                names.push("keepalived".into())
            }
            _ => {}
        }
        let task = Task::Packages {
            names,
            proxy: if p.source == PackageSource::Proxy { p.proxy.clone() } else { None },
            mirror: if p.source == PackageSource::Mirror { p.mirror.clone() } else { None },
        };
        node.ensure_all(vec![task]).await
    }
    .boxed()
}
