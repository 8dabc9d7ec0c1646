//! The iSCSI targets with the kernel's LIO target (`storage.iscsi.target: lio`), for storage
//! hosts whose kernel has it. What exists is read from configfs (/sys/kernel/config/target), the
//! kernel's own view; what is missing is created with `targetcli`; CHAP credentials are written
//! straight into configfs from stdin, so the secret is on no command line. `targetcli saveconfig`
//! persists it and rtslib's unit restores it at boot.
//!
//! The container lab's kernel has no LIO, so this path is not exercised by its tests (tgt is);
//! the Vagrant lab's VMs have it (../shared/LAB-NOTES.md).

use super::storage_server::{backing_path, chap};
use super::{Change, Cluster, Node, StepError};
use crate::inventory::{BackingKind, Role};
use crate::storage::{VolumeAccess, VolumePlan};
use crate::transport::shell_quote;

const CONFIGFS: &str = "/sys/kernel/config/target";

pub async fn targets(cluster: &Cluster, node: &Node, plan: &VolumePlan) -> Result<Vec<Change>, StepError> {
    let inv = &cluster.inventory;
    let storage = inv.storage.as_ref().expect("a volume plan comes from a storage section");
    if !node
        .test(&format!(
            // The fabric's directory (…/iscsi) appears at the first target made; the module
            // and the core's directory say that LIO is there.
            "test -d {CONFIGFS}/iscsi || {{ modprobe iscsi_target_mod 2>/dev/null && test -d {CONFIGFS}/core; }}"
        ))
        .await?
    {
        return Err(StepError::new(format!(
            "{}: the kernel has no LIO iSCSI target (iscsi_target_mod, configfs {CONFIGFS}); \
             set `storage.iscsi.target: tgt` (userspace) or use a kernel with LIO",
            node.name()
        )));
    }
    let initiators: Vec<String> =
        inv.hosts_with(Role::Worker).map(|(_, h)| VolumePlan::initiator_name(inv, &h.name)).collect();
    let (store, kind) = match storage.backing_store.kind {
        BackingKind::File => ("fileio", "file_or_dev"),
        BackingKind::Lvm => ("block", "dev"),
    };
    let mut changes = vec![];
    let mut commands = vec![];
    for v in plan.iscsi() {
        let VolumeAccess::Iscsi { iqn, lun, .. } = &v.access else { continue };
        let tpg = format!("{CONFIGFS}/iscsi/{iqn}/tpgt_1");
        let has = |path: String| async move { node.test(&format!("test -e {}", shell_quote(&path))).await };
        // configfs names a fileio store's HBA directory fileio_N, an iblock one iblock_N.
        let hba = if store == "fileio" { "fileio" } else { "iblock" };
        if !node.test(&format!("ls -d {CONFIGFS}/core/{hba}_*/{} >/dev/null 2>&1", shell_quote(&v.name))).await? {
            commands.push(format!(
                "/backstores/{store} create name={} {kind}={}",
                v.name,
                backing_path(cluster, plan, v)
            ));
            changes.push(Change::new(format!("create LIO backstore {}", v.name)));
        }
        if !has(format!("{CONFIGFS}/iscsi/{iqn}")).await? {
            commands.push(format!("/iscsi create {iqn}"));
            changes.push(Change::new(format!("create iSCSI target {iqn}")));
        }
        if !has(format!("{tpg}/lun/lun_{lun}")).await? {
            commands.push(format!("/iscsi/{iqn}/tpg1/luns create /backstores/{store}/{} lun={lun}", v.name));
        }
        // Only the ACLs' initiators get in, and only with CHAP.
        commands.push(format!(
            "/iscsi/{iqn}/tpg1 set attribute authentication={} generate_node_acls=0 demo_mode_write_protect=1",
            u8::from(storage.iscsi.chap.is_some())
        ));
        for initiator in &initiators {
            if !has(format!("{tpg}/acls/{initiator}")).await? {
                commands.push(format!("/iscsi/{iqn}/tpg1/acls create {initiator}"));
                changes.push(Change::new(format!("allow {initiator} on {iqn}")));
            }
        }
    }
    if node.dry_run() {
        return Ok(changes);
    }
    for c in &commands {
        node.sh("targetcli", &format!("targetcli {c}")).await?;
    }
    changes.extend(chap_credentials(cluster, node, plan, &initiators).await?);
    if !changes.is_empty() {
        node.sh("targetcli saveconfig", "targetcli saveconfig").await?;
    }
    if !node.test("systemctl is-enabled -q rtslib-fb-targetctl").await? {
        node.sh("enabling rtslib-fb-targetctl", "systemctl enable rtslib-fb-targetctl").await?;
        changes.push(Change::new("enabled rtslib-fb-targetctl (restores the targets at boot)"));
    }
    Ok(changes)
}

/// Each ACL's CHAP user and secret, compared with and written into configfs; the values go
/// over stdin.
async fn chap_credentials(
    cluster: &Cluster,
    node: &Node,
    plan: &VolumePlan,
    initiators: &[String],
) -> Result<Vec<Change>, StepError> {
    let Some((user, secret)) = chap(cluster)? else { return Ok(vec![]) };
    let mut changes = vec![];
    for v in plan.iscsi() {
        let VolumeAccess::Iscsi { iqn, .. } = &v.access else { continue };
        for initiator in initiators {
            let auth = shell_quote(&format!("{CONFIGFS}/iscsi/{iqn}/tpgt_1/acls/{initiator}/auth"));
            let script = format!(
                "IFS= read -r u; IFS= read -r p; \
                 if [ \"$(cat {auth}/userid)\" = \"$u\" ] && [ \"$(cat {auth}/password)\" = \"$p\" ]; then exit 0; fi; \
                 printf %s \"$u\" > {auth}/userid && printf %s \"$p\" > {auth}/password && exit 3"
            );
            let input = format!("{user}\n{}\n", secret.expose());
            let out = node.session.exec_privileged(&script, Some(input.as_bytes())).await?;
            match out.status {
                0 => {}
                3 => changes.push(Change::new(format!("set CHAP credentials for {initiator} on {iqn}"))),
                _ => {
                    return Err(StepError::new(format!(
                        "{}: setting CHAP for {initiator} on {iqn} failed: {}",
                        node.name(),
                        out.stderr_text().trim()
                    )));
                }
            }
        }
    }
    Ok(changes)
}
