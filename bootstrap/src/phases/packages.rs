//! packages: what every Kubernetes node installs from the inventory's package source
//! (distribution repositories, a proxy, a mirror, or the bundle's own repository). Kubernetes' own binaries come from the
//! offline bundle (phase `bundle`), never from here.

use futures::FutureExt;
use futures::future::BoxFuture;

use super::{Change, Cluster, Node, StepError};
use crate::inventory::EndpointMode;
use crate::os_packages;

pub fn run<'a>(cluster: &'a Cluster, node: &'a Node) -> BoxFuture<'a, Result<Vec<Change>, StepError>> {
    async move {
        let names = match cluster.inventory.cluster.control_plane_endpoint.mode {
            EndpointMode::LocalProxy => os_packages::owned(&[os_packages::NODE, os_packages::LOCAL_PROXY]),
            EndpointMode::Vip if node.target.roles.contains(&crate::inventory::Role::Master) => {
                os_packages::owned(&[os_packages::NODE, os_packages::VIP])
            }
            _ => os_packages::owned(&[os_packages::NODE]),
        };
        super::package_repository::install(cluster, node, names).await
    }
    .boxed()
}
