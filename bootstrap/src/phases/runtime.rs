//! container-runtime: containerd configured for the cgroup driver the node actually uses, the
//! pause image named as the sandbox, and the bundle's images imported.

use futures::FutureExt;
use futures::future::BoxFuture;
use groundwork_protocol::Task;

use super::bundle::{IMAGE_NAMESPACE, bundle, remote_path};
use super::node::file;
use super::{Change, Cluster, Node, StepError};
use crate::bundle::ArtifactKind;
use crate::playbooks;
use crate::registry;

/// Where containerd looks for CNI plugins: Debian's containernetworking-plugins for the bridge
/// network; upstream's /opt/cni/bin for Calico and Flannel, whose installers put their plugins
/// there (the `cni` phase links Debian's standard plugins in beside them).
pub fn cni_bin_dir(cni: crate::inventory::Cni) -> &'static str {
    match cni {
        crate::inventory::Cni::Bridge => super::cni_manifest::DEBIAN_PLUGINS,
        _ => super::cni_manifest::UPSTREAM_PLUGINS,
    }
}

/// The cgroup driver the node actually uses: systemd's when systemd is init (kubeadm's default),
/// cgroupfs otherwise. containerd and the kubelet are told the same.
pub fn cgroup_driver(node: &Node) -> &'static str {
    if node.facts.cgroup.systemd_init { "systemd" } else { "cgroupfs" }
}

pub fn run<'a>(cluster: &'a Cluster, node: &'a Node) -> BoxFuture<'a, Result<Vec<Change>, StepError>> {
    async move {
        let bundle = bundle(cluster).await?;
        let sandbox = bundle
            .images()
            .into_iter()
            .find(|i| i.contains("/pause:"))
            .ok_or_else(|| StepError::new("the bundle carries no pause image (registry.k8s.io/pause:TAG)"))?;
        let driver = cgroup_driver(node);
        if node.dry_run() && node.facts.installed.containerd.is_none() {
            // Nothing to compare with before the packages phase has run.
            return Ok(vec![Change::new(format!(
                "configure containerd ({driver} cgroups, sandbox {sandbox}) and import the bundle's images"
            ))]);
        }
        let config = playbooks::render(
            "containerd-config.toml",
            &serde_json::json!({
                "sandbox_image": sandbox,
                "cgroup_driver": driver,
                "systemd_cgroup": driver == "systemd",
                "cni_bin_dir": cni_bin_dir(cluster.inventory.cluster.cni),
                "hosts_dir": crate::registry::CONTAINERD_HOSTS_DIR,
            }),
        )?;
        let mut changes =
            node.ensure_service_with("containerd", vec![file("/etc/containerd/config.toml", config, 0o644)]).await?;
        // Read by containerd at every pull: no restart for these.
        changes.extend(site_registry(cluster, node).await?);
        let images = bundle.of_kind(ArtifactKind::Images);
        for a in images.filter(|a| a.is_for(node.target.roles.iter().map(|r| r.as_str()))) {
            changes.extend(
                node.ensure_all(vec![Task::ImportImages {
                    archive: remote_path(a),
                    namespace: IMAGE_NAMESPACE.into(),
                    images: a.images.clone(),
                }])
                .await?,
            );
        }
        Ok(changes)
    }
    .boxed()
}

/// With a site registry: the cluster CA and one `hosts.toml` per mirrored registry (and one for
/// the registry's own address), so that every pull of those names goes through it.
async fn site_registry(cluster: &Cluster, node: &Node) -> Result<Vec<Change>, StepError> {
    let Some((host, settings)) = registry::site(&cluster.inventory) else { return Ok(vec![]) };
    let pki = match cluster.pki().await {
        Ok(p) => p,
        Err(e) if cluster.dry_run => return Ok(vec![Change::new(e.0)]),
        Err(e) => return Err(e),
    };
    let address = registry::address(host, settings);
    let Some(password) = super::registry::password_of(cluster, settings)? else {
        return Ok(vec![Change::new(
            "write containerd's hosts.toml for the site registry (its password is not made yet)",
        )]);
    };
    let authorization = registry::basic_auth(&settings.user, password.expose());
    let mut files = vec![file(registry::NODE_CA, pki.ca_cert_pem().to_string(), 0o644)];
    for upstream in settings.mirrors.iter().map(|m| Some(m.as_str())).chain([None]) {
        let dir = registry::hosts_dir(upstream.unwrap_or(&address));
        // 0600: the file carries the registry's credentials (and so shows no diff).
        files.push(file(&format!("{dir}/hosts.toml"), registry::hosts_toml(upstream, &address, &authorization), 0o600));
    }
    node.ensure_all(files).await
}
