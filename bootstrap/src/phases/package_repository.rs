//! package-repository: with `packages.source: bundle`, the offline bundle's apt repository for the
//! host's OS release is uploaded to it (through the bastion, only files whose checksum differs,
//! only the packages its roles install, with the signed index and key), and the later phases
//! install from it alone (see [`task`]). Nothing is downloaded on the host. A host whose OS the
//! bundle has no repository for is refused, naming what the bundle has.

use futures::FutureExt;
use futures::future::BoxFuture;
use groundwork_protocol::Task;

use super::bundle::{REMOTE_DIR, bundle, remote_path};
use super::{Change, Cluster, Node, StepError};
use crate::bundle::ArtifactKind;
use crate::inventory::PackageSource;

pub const NAME: &str = "package-repository";

/// `debian-12`: the host's OS as bundles name their repositories.
fn os_id(node: &Node) -> String {
    format!("{}-{}", node.facts.os.id, node.facts.os.version_id)
}

/// The repository's directory in the bundle, and so under [`REMOTE_DIR`] on the host.
fn repository_dir(node: &Node) -> String {
    format!("apt/{}", os_id(node))
}

/// The packages task of a phase: from the inventory's package source, or, with `source: bundle`,
/// from the bundle's repository on the host alone.
pub fn task(cluster: &Cluster, node: &Node, names: Vec<String>) -> Task {
    let p = &cluster.inventory.packages;
    let from_bundle = p.source == PackageSource::Bundle;
    Task::Packages {
        names,
        proxy: if p.source == PackageSource::Proxy { p.proxy.clone() } else { None },
        mirror: if p.source == PackageSource::Mirror { p.mirror.clone() } else { None },
        repository: from_bundle.then(|| format!("{REMOTE_DIR}/{}", repository_dir(node))),
    }
}

pub fn run<'a>(cluster: &'a Cluster, node: &'a Node) -> BoxFuture<'a, Result<Vec<Change>, StepError>> {
    async move { ready(cluster, node).await }.boxed()
}

/// Installs `names` from the inventory's package source, the bundle's repository made ready
/// first: so a phase run alone (`apply --only database` on a bare host) finds it too.
pub async fn install(cluster: &Cluster, node: &Node, names: Vec<String>) -> Result<Vec<Change>, StepError> {
    let mut changes = ready(cluster, node).await?;
    changes.extend(node.ensure_all(vec![task(cluster, node, names)]).await?);
    Ok(changes)
}

/// With `packages.source: bundle`, the bundle's repository for this host, uploaded where it
/// differs; once per host and run (this phase, or the first phase that installs a package).
pub async fn ready(cluster: &Cluster, node: &Node) -> Result<Vec<Change>, StepError> {
    if cluster.inventory.packages.source != PackageSource::Bundle {
        return Ok(vec![]);
    }
    // A host goes through its phases one at a time: nothing else uploads to it meanwhile.
    if cluster.shared.lock().await.repository_ready.contains(node.name()) {
        return Ok(vec![]);
    }
    let changes = upload(cluster, node).await?;
    cluster.shared.lock().await.repository_ready.insert(node.name().to_string());
    Ok(changes)
}

async fn upload(cluster: &Cluster, node: &Node) -> Result<Vec<Change>, StepError> {
    {
        let bundle = bundle(cluster).await?;
        let prefix = format!("{}/", repository_dir(node));
        let in_repository: Vec<_> = bundle
            .artifacts()
            .iter()
            .filter(|a| matches!(a.kind, ArtifactKind::Deb | ArtifactKind::AptIndex) && a.path.starts_with(&prefix))
            .collect();
        if in_repository.is_empty() {
            let mut has: Vec<String> = bundle
                .artifacts()
                .iter()
                .filter(|a| a.kind == ArtifactKind::AptIndex)
                .filter_map(|a| a.path.strip_prefix("apt/")?.split('/').next().map(str::to_string))
                .collect();
            has.dedup();
            return Err(StepError::new(format!(
                "{} runs {} ({}), and the bundle has no packages for it ({}); add them where the bundle is built: \
                 `groundwork bundle packages --os {} --bundle DIR --key KEY`",
                node.name(),
                os_id(node),
                node.facts.os.pretty_name,
                if has.is_empty() { "it carries none".to_string() } else { format!("it has: {}", has.join(", ")) },
                os_id(node)
            )));
        }
        let roles: Vec<&str> = node.target.roles.iter().map(|r| r.as_str()).collect();
        let wanted: Vec<_> = in_repository.into_iter().filter(|a| a.is_for(roles.iter().copied())).collect();
        let locals: Vec<std::path::PathBuf> = wanted.iter().map(|a| bundle.path_of(a)).collect();
        let files: Vec<(&std::path::Path, String, String)> =
            wanted.iter().zip(&locals).map(|(a, l)| (l.as_path(), remote_path(a), a.sha256.clone())).collect();
        let uploaded = node.upload_all(&files).await?;
        let (count, bytes) =
            wanted.iter().zip(&uploaded).filter(|(_, up)| **up).fold((0, 0u64), |(n, b), (a, _)| (n + 1, b + a.size));
        Ok(if count == 0 {
            vec![]
        } else {
            vec![Change::new(format!(
                "{} of the bundle's {} files for {} uploaded ({} MiB)",
                count,
                wanted.len(),
                os_id(node),
                bytes / (1024 * 1024)
            ))]
        })
    }
}
