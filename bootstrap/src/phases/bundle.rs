//! bundle: Kubernetes' binaries and images from the offline bundle, the way an air-gapped site
//! gets them. The controller checks the bundle before the run (`ops::bundle_trust`), uploads each artifact a node needs
//! through the bastion (skipped when the node already has it with the same checksum), and
//! installs it. Nothing the bundle carries is ever downloaded on a node.

use std::sync::Arc;

use futures::FutureExt;
use futures::future::BoxFuture;
use groundwork_protocol::Task;

use super::node::file;
use super::{Change, Cluster, Node, StepError};
use crate::bundle::{Artifact, ArtifactKind, Bundle};
use crate::playbooks;

/// Where uploaded artifacts are kept on a node (so a re-run can compare checksums).
pub const REMOTE_DIR: &str = "/var/lib/groundwork/bundle";
/// containerd's namespace for Kubernetes' images.
pub const IMAGE_NAMESPACE: &str = "k8s.io";

/// The inventory's bundle, as the run checked it before it began.
pub async fn bundle(cluster: &Cluster) -> Result<Arc<Bundle>, StepError> {
    cluster.bundle.clone().ok_or_else(|| {
        StepError::new("the inventory names no offline bundle (packages.bundle): Kubernetes' binaries come from one")
    })
}

pub fn remote_path(a: &Artifact) -> String {
    format!("{REMOTE_DIR}/{}", a.path)
}

/// The artifacts of `bundle` this node gets (binaries and image archives, by its roles).
pub fn wanted<'b>(bundle: &'b Bundle, node: &Node) -> Vec<&'b Artifact> {
    bundle
        .artifacts()
        .iter()
        .filter(|a| {
            a.is_for(node.target.roles.iter().map(|r| r.as_str()))
                && matches!(a.kind, ArtifactKind::Binary | ArtifactKind::Images)
        })
        .collect()
}

/// Uploads what the node lacks of `wanted` into [`REMOTE_DIR`]; installs nothing.
pub async fn stage(bundle: &Bundle, node: &Node, wanted: &[&Artifact]) -> Result<Vec<Change>, StepError> {
    let locals: Vec<std::path::PathBuf> = wanted.iter().map(|a| bundle.path_of(a)).collect();
    let files: Vec<(&std::path::Path, String, String)> =
        wanted.iter().zip(&locals).map(|(a, l)| (l.as_path(), remote_path(a), a.sha256.clone())).collect();
    let uploaded = node.upload_all(&files).await?;
    Ok(wanted
        .iter()
        .zip(&uploaded)
        .filter(|(_, up)| **up)
        .map(|(a, _)| Change::new(format!("upload {} ({} MiB)", a.path, a.size / (1024 * 1024))))
        .collect())
}

/// The installed kubelet's version (`v1.33.3`), if there is one.
pub async fn installed_kubelet(node: &Node) -> Result<Option<String>, StepError> {
    let out = node.session.exec_privileged("/usr/local/bin/kubelet --version 2>/dev/null || true", None).await?;
    Ok(out.stdout_text().split_whitespace().find(|w| w.starts_with('v')).map(str::to_string))
}

/// A node of the cluster (it has joined) whose kubelet runs another version than the bundle's
/// must be upgraded, not have its binaries swapped under a running kubelet.
async fn refuse_version_change(bundle: &Bundle, node: &Node) -> Result<(), StepError> {
    if !node.test("test -f /etc/kubernetes/kubelet.conf").await? {
        return Ok(());
    }
    match installed_kubelet(node).await? {
        Some(running) if running != bundle.kubernetes_version() => Err(StepError(
            format!(
                "{}: runs kubelet {running} and the bundle carries {}: a version change is an upgrade (drain, \
                 kubeadm upgrade, kubelet restart, one node at a time), which apply does not do; run \
                 `groundwork upgrade -i INVENTORY` (nothing was changed)",
                node.name(),
                bundle.kubernetes_version()
            ),
            super::ErrorKind::Refused,
        )),
        _ => Ok(()),
    }
}

pub fn run<'a>(cluster: &'a Cluster, node: &'a Node) -> BoxFuture<'a, Result<Vec<Change>, StepError>> {
    async move {
        let bundle = bundle(cluster).await?;
        refuse_version_change(&bundle, node).await?;
        let mut tasks = Vec::new();
        let wanted = wanted(&bundle, node);
        let mut changes = stage(&bundle, node, &wanted).await?;
        for a in &wanted {
            if let (ArtifactKind::Binary, Some(to)) = (&a.kind, &a.install_to) {
                tasks.push(Task::Install {
                    source: remote_path(a),
                    path: to.clone(),
                    mode: 0o755,
                    sha256: a.sha256.clone(),
                });
            }
        }
        let empty = serde_json::json!({});
        tasks.push(file("/etc/systemd/system/kubelet.service", playbooks::render("kubelet.service", &empty)?, 0o644));
        tasks.push(file(
            "/etc/systemd/system/kubelet.service.d/10-kubeadm.conf",
            playbooks::render("kubelet-kubeadm.conf", &empty)?,
            0o644,
        ));
        if node.dry_run() && !changes.is_empty() {
            // The binaries are not there to compare yet: say what would be installed.
            changes.push(Change::new("install kubeadm, kubelet, kubectl from the bundle"));
            return Ok(changes);
        }
        changes.extend(node.ensure_all(tasks).await?);
        Ok(changes)
    }
    .boxed()
}
