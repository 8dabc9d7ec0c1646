//! packages: what every Kubernetes node installs from the inventory's package source
//! (distribution repositories, a proxy or a mirror). Kubernetes' own binaries come from the
//! offline bundle (phase `bundle`), never from here.

use futures::FutureExt;
use futures::future::BoxFuture;
use groundwork_protocol::Task;

use super::{Change, Cluster, Node, StepError};
use crate::inventory::{EndpointMode, PackageSource};
use crate::os_packages;

pub fn run<'a>(cluster: &'a Cluster, node: &'a Node) -> BoxFuture<'a, Result<Vec<Change>, StepError>> {
    async move {
        let p = &cluster.inventory.packages;
        let names = match cluster.inventory.cluster.control_plane_endpoint.mode {
            EndpointMode::LocalProxy => os_packages::owned(&[os_packages::NODE, os_packages::LOCAL_PROXY]),
            EndpointMode::Vip if node.target.roles.contains(&crate::inventory::Role::Master) => {
                os_packages::owned(&[os_packages::NODE, os_packages::VIP])
            }
            _ => os_packages::owned(&[os_packages::NODE]),
        };
        let task = Task::Packages {
            names,
            proxy: if p.source == PackageSource::Proxy { p.proxy.clone() } else { None },
            mirror: if p.source == PackageSource::Mirror { p.mirror.clone() } else { None },
        };
        node.ensure_all(vec![task]).await
    }
    .boxed()
}
