//! storage-clients: every worker ready to use the backbone's volumes. open-iscsi with the node's
//! own initiator name (the one the targets' ACLs list) and the CHAP settings; the NFS client.
//! Then the volumes are checked from the worker: with the kernel's initiator (discovery and a
//! login per target) where the kernel has iSCSI, otherwise from userspace with libiscsi and
//! libnfs, and the report says "configured, not logged in" - never a silent skip.

use futures::FutureExt;
use futures::future::BoxFuture;
use groundwork_protocol::facts::FeatureState;

use super::node::{file, tail};
use super::storage_server::chap;
use super::{Change, Cluster, Node, StepError};
use crate::os_packages;
use crate::playbooks;
use crate::secrets::Secret;
use crate::storage::{ISCSI_PORT, VolumeAccess, VolumePlan};
use crate::transport::shell_quote;

const INITIATOR_NAME_FILE: &str = "/etc/iscsi/initiatorname.iscsi";
const ISCSID_CONFIG: &str = "/etc/iscsi/iscsid.conf";

pub fn run<'a>(cluster: &'a Cluster, node: &'a Node) -> BoxFuture<'a, Result<Vec<Change>, StepError>> {
    async move {
        let Some(plan) = VolumePlan::of(&cluster.inventory) else { return Ok(vec![]) };
        let kernel = &node.facts.kernel_features;
        let kernel_iscsi = kernel.iscsi_initiator != FeatureState::Missing;
        let kernel_nfs = kernel.nfs_client != FeatureState::Missing;
        let has_iscsi = plan.iscsi().next().is_some();
        let has_nfs = plan.nfs().next().is_some();

        let mut lists: Vec<&[&str]> = vec![];
        if has_iscsi {
            lists.push(os_packages::ISCSI_CLIENT);
            if !kernel_iscsi {
                // libiscsi's tools check the targets where the kernel cannot.
                lists.push(os_packages::ISCSI_USERSPACE);
            }
        }
        if has_nfs {
            lists.push(os_packages::NFS_CLIENT);
            if !kernel_nfs {
                lists.push(os_packages::NFS_USERSPACE);
            }
        }
        let mut changes = super::package_repository::install(cluster, node, os_packages::owned(&lists)).await?;

        if has_iscsi {
            let chap = chap(cluster)?;
            changes.extend(initiator(cluster, node, chap.as_ref(), kernel_iscsi).await?);
            if !node.dry_run() {
                if kernel_iscsi {
                    changes.extend(log_in(node, &plan).await?);
                } else {
                    let seen = userspace_iscsi_check(cluster, node, &plan, chap.as_ref()).await?;
                    node.note(format!(
                        "iSCSI configured, not logged in: the kernel lacks iSCSI (iscsi_tcp); \
                         {seen} of {} targets checked from userspace (libiscsi)",
                        plan.iscsi().count()
                    ));
                }
            }
        }
        if has_nfs && !node.dry_run() {
            let seen = nfs_check(node, &plan, kernel_nfs).await?;
            if !kernel_nfs {
                node.note(format!(
                    "NFS client configured, nothing mounted: the kernel lacks NFS; {seen} export(s) checked from userspace (libnfs)"
                ));
            }
        }
        Ok(changes)
    }
    .boxed()
}

/// The node's initiator name and iscsid's CHAP settings; iscsid itself only where the kernel
/// can do iSCSI (it cannot start without the kernel's transport).
async fn initiator(
    cluster: &Cluster,
    node: &Node,
    chap: Option<&(String, Secret)>,
    kernel_iscsi: bool,
) -> Result<Vec<Change>, StepError> {
    let name = VolumePlan::initiator_name(&cluster.inventory, node.name());
    let config = playbooks::render(
        "iscsid.conf",
        &serde_json::json!({
            "chap_user": chap.map(|c| c.0.clone()),
            "chap_password": chap.map(|c| c.1.expose().to_string()),
        }),
    )?;
    let files = vec![
        file(
            INITIATOR_NAME_FILE,
            format!("# groundwork: this node's iSCSI initiator name\nInitiatorName={name}\n"),
            0o644,
        ),
        // 0600: it holds the CHAP secret.
        file(ISCSID_CONFIG, config, 0o600),
    ];
    if kernel_iscsi { node.ensure_service_with("iscsid", files).await } else { node.ensure_all(files).await }
}

/// Discovery, then a login to every target that has no session yet, and a logout again: the
/// login proves CHAP and the ACL; attaching volumes is the kubelet's job when a pod needs one.
async fn log_in(node: &Node, plan: &VolumePlan) -> Result<Vec<Change>, StepError> {
    let portal = shell_quote(&format!("{}:{ISCSI_PORT}", plan.address));
    let known = node.sh("iscsiadm -m node", "iscsiadm -m node 2>/dev/null || true").await?;
    let sessions = node.sh("iscsiadm -m session", "iscsiadm -m session 2>/dev/null || true").await?;
    let mut changes = vec![];
    let iqns: Vec<&str> = plan
        .iscsi()
        .filter_map(|v| if let VolumeAccess::Iscsi { iqn, .. } = &v.access { Some(iqn.as_str()) } else { None })
        .collect();
    if iqns.iter().any(|iqn| !known.contains(iqn)) {
        node.sh("iSCSI discovery", &format!("iscsiadm -m discovery -t sendtargets -p {portal}")).await?;
        changes.push(Change::new(format!("discovered the iSCSI targets on {}", plan.address)));
    }
    for iqn in iqns.into_iter().filter(|iqn| !sessions.contains(iqn)) {
        let t = shell_quote(iqn);
        node.sh(&format!("iSCSI login to {iqn}"), &format!("iscsiadm -m node -T {t} -p {portal} --login")).await?;
        node.sh(&format!("iSCSI logout from {iqn}"), &format!("iscsiadm -m node -T {t} -p {portal} --logout")).await?;
    }
    Ok(changes)
}

/// Lists the portal's targets with libiscsi as this node's initiator, with CHAP; every volume's
/// target must be there with a LUN. The secret goes over stdin into the environment libiscsi
/// reads it from, never onto a command line. Returns how many targets were seen.
async fn userspace_iscsi_check(
    cluster: &Cluster,
    node: &Node,
    plan: &VolumePlan,
    chap: Option<&(String, Secret)>,
) -> Result<usize, StepError> {
    let initiator = shell_quote(&VolumePlan::initiator_name(&cluster.inventory, node.name()));
    let user = chap.map(|c| format!("{}@", c.0)).unwrap_or_default();
    let url = shell_quote(&format!("iscsi://{user}{}:{ISCSI_PORT}/", plan.address));
    let script =
        format!("IFS= read -r LIBISCSI_CHAP_PASSWORD; export LIBISCSI_CHAP_PASSWORD; iscsi-ls -i {initiator} -s {url}");
    let stdin = format!("{}\n", chap.map(|c| c.1.expose()).unwrap_or_default());
    let out = node.session.exec_privileged(&script, Some(stdin.as_bytes())).await?;
    let listed = out.stdout_text();
    if !out.success() {
        return Err(StepError::new(format!(
            "{}: the iSCSI targets on {} cannot be listed as {} (check CHAP and the ACL): {}",
            node.name(),
            plan.address,
            VolumePlan::initiator_name(&cluster.inventory, node.name()),
            tail(&format!("{listed}\n{}", out.stderr_text()), 3)
        )));
    }
    let targets = parse_iscsi_ls(&listed);
    let mut missing = vec![];
    for v in plan.iscsi() {
        let VolumeAccess::Iscsi { iqn, lun, .. } = &v.access else { continue };
        if !targets.iter().any(|(t, luns)| t == iqn && luns.contains(lun)) {
            missing.push(iqn.as_str());
        }
    }
    if !missing.is_empty() {
        return Err(StepError::new(format!(
            "{}: iSCSI target(s) not offered by {} (or without their LUN): {}",
            node.name(),
            plan.address,
            missing.join(", ")
        )));
    }
    Ok(plan.iscsi().count())
}

/// `iscsi-ls -s` output: "Target:IQN Portal:..." lines, each followed by "Lun:N ..." lines.
fn parse_iscsi_ls(text: &str) -> Vec<(String, Vec<u32>)> {
    let mut targets: Vec<(String, Vec<u32>)> = vec![];
    for line in text.lines().map(str::trim) {
        if let Some(rest) = line.strip_prefix("Target:") {
            let iqn = rest.split_whitespace().next().unwrap_or_default();
            targets.push((iqn.to_string(), vec![]));
        } else if let Some(rest) = line.strip_prefix("Lun:") {
            let n = rest.split_whitespace().next().and_then(|n| n.parse().ok());
            if let (Some(n), Some(last)) = (n, targets.last_mut()) {
                last.1.push(n);
            }
        }
    }
    targets
}

/// Every NFS export answers: listed with the kernel client's tools, or read with libnfs.
async fn nfs_check(node: &Node, plan: &VolumePlan, kernel_nfs: bool) -> Result<usize, StepError> {
    let mut seen = 0;
    for v in plan.nfs() {
        let VolumeAccess::Nfs { server, path } = &v.access else { continue };
        let path = path.display().to_string();
        let command = if kernel_nfs {
            format!("showmount -e {} | grep -q {}", shell_quote(server), shell_quote(&format!("^{path} ")))
        } else {
            format!("nfs-ls {} >/dev/null", shell_quote(&format!("nfs://{server}{path}")))
        };
        node.sh(&format!("checking the NFS export {server}:{path}"), &command).await?;
        seen += 1;
    }
    Ok(seen)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iscsi_ls_output_becomes_targets_with_luns() {
        let out = "Target:iqn.2026-01.io.groundwork:lab:kafka-0 Portal:10.78.0.21:3260,1\n\
                   Lun:0    Type:STORAGE_ARRAY_CONTROLLER (Size:0)\n\
                   Lun:1    Type:DIRECT_ACCESS (Size:50G)\n\
                   Target:iqn.2026-01.io.groundwork:lab:kafka-1 Portal:10.78.0.21:3260,1\n";
        let t = parse_iscsi_ls(out);
        assert_eq!(t.len(), 2);
        assert_eq!(t[0], ("iqn.2026-01.io.groundwork:lab:kafka-0".to_string(), vec![0, 1]));
        assert!(t[1].1.is_empty());
    }
}
