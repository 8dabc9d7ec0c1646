//! storage-server: the backbone's volumes on the storage host. iSCSI volumes are sparse files (or
//! LVM logical volumes) behind one tgt target each, with CHAP and an ACL of the workers' initiator
//! names; NFS volumes, and the share the default StorageClass makes dynamic volumes in, are
//! directories exported to the node network by nfs-ganesha (userspace) or the kernel's nfsd. Names, IQNs and paths come from `storage::VolumePlan`, which the handoff
//! uses too.

use futures::FutureExt;
use futures::future::BoxFuture;
use groundwork_protocol::Task;

use super::node::file;
use super::{Change, Cluster, Node, StepError};
use crate::inventory::values::ByteSize;
use crate::inventory::{BackingKind, IscsiTarget, NfsServer, Role};
use crate::os_packages;
use crate::playbooks;
use crate::secrets::Secret;
use crate::storage::{PlannedVolume, VolumeAccess, VolumePlan};
use crate::transport::shell_quote;

const TGT_CONFIG: &str = "/etc/tgt/conf.d/groundwork.conf";
/// The CHAP user and secret for the agent's `tgt_account` (root only).
const TGT_CHAP: &str = "/etc/tgt/groundwork-chap";
const TGT_DROP_IN: &str = "/etc/systemd/system/tgt.service.d/groundwork.conf";
const GANESHA_CONFIG: &str = "/etc/ganesha/ganesha.conf";
const KERNEL_EXPORTS: &str = "/etc/exports.d/groundwork.exports";

pub fn run<'a>(cluster: &'a Cluster, node: &'a Node) -> BoxFuture<'a, Result<Vec<Change>, StepError>> {
    async move {
        let Some(plan) = VolumePlan::of(&cluster.inventory) else { return Ok(vec![]) };
        let storage = cluster.inventory.storage.as_ref().expect("a volume plan comes from a storage section");
        let mut changes = super::package_repository::install(cluster, node, packages(cluster, &plan)).await?;
        if plan.iscsi().next().is_some() {
            changes.extend(backing_stores(cluster, node, &plan).await?);
            changes.extend(match storage.iscsi.target {
                IscsiTarget::Tgt => tgt_targets(cluster, node, &plan).await?,
                IscsiTarget::Lio => super::storage_lio::targets(cluster, node, &plan).await?,
            });
        }
        changes.extend(nfs_exports(cluster, node, &plan).await?);
        Ok(changes)
    }
    .boxed()
}

/// Every package the storage host needs for this inventory.
fn packages(cluster: &Cluster, plan: &VolumePlan) -> Vec<String> {
    let inv = &cluster.inventory;
    let storage = inv.storage.as_ref().expect("checked by the caller");
    let mut lists: Vec<&[&str]> = vec![];
    if plan.iscsi().next().is_some() {
        lists.push(if storage.iscsi.target == IscsiTarget::Tgt {
            os_packages::ISCSI_TGT
        } else {
            os_packages::ISCSI_LIO
        });
        if storage.backing_store.kind == BackingKind::Lvm {
            lists.push(os_packages::LVM);
        }
    }
    // Always an NFS server: the default StorageClass's dynamic volumes live on it.
    lists.push(match storage.nfs.server {
        NfsServer::Ganesha => os_packages::NFS_GANESHA,
        NfsServer::Kernel => os_packages::NFS_KERNEL,
    });
    os_packages::owned(&lists)
}

/// What each iSCSI volume is stored in: a sparse file, or a logical volume of the inventory's
/// volume group. Grown when the inventory asks for more; never shrunk.
async fn backing_stores(cluster: &Cluster, node: &Node, plan: &VolumePlan) -> Result<Vec<Change>, StepError> {
    let storage = cluster.inventory.storage.as_ref().expect("checked by the caller");
    match storage.backing_store.kind {
        BackingKind::File => {
            let files = plan
                .iscsi()
                .map(|v| Task::SparseFile {
                    path: plan.backing_file(v).display().to_string(),
                    size: v.size.bytes(),
                    mode: 0o600,
                })
                .collect();
            node.ensure_all(files).await
        }
        BackingKind::Lvm => {
            let vg = storage.backing_store.volume_group.as_deref().unwrap_or_default();
            logical_volumes(node, vg, plan).await
        }
    }
}

/// One LVM logical volume per iSCSI volume, created or extended to its size. The volume group's
/// free space is checked for all of them first, so that a group too small fails before anything
/// is made rather than halfway through the list.
async fn logical_volumes(node: &Node, vg: &str, plan: &VolumePlan) -> Result<Vec<Change>, StepError> {
    let q = shell_quote(vg);
    let group = node
        .sh("vgs", &format!("vgs --noheadings --nosuffix --units b -o vg_free,vg_extent_size {q} 2>/dev/null || true"))
        .await?;
    let mut numbers = group.split_whitespace().filter_map(|n| n.parse::<u64>().ok());
    let (Some(free), Some(extent)) = (numbers.next(), numbers.next()) else {
        return Err(StepError::new(format!(
            "{}: the volume group {vg} (storage.backingStore.volumeGroup) does not exist:              make it on a disk for the volumes (pvcreate DISK; vgcreate {vg} DISK), or use backingStore.kind: file",
            node.name()
        )));
    };
    let listed = node
        .sh("lvs", &format!("lvs --noheadings --nosuffix --units b -o lv_name,lv_size {q} 2>/dev/null || true"))
        .await?;
    let have = |name: &str| {
        listed.lines().find_map(|l| {
            let mut f = l.split_whitespace();
            (f.next() == Some(name)).then(|| f.next().and_then(|n| n.parse::<u64>().ok())).flatten()
        })
    };
    // LVM allocates whole extents.
    let rounded = |bytes: u64| bytes.div_ceil(extent.max(1)) * extent.max(1);
    let work: Vec<(&PlannedVolume, Option<u64>)> =
        plan.iscsi().map(|v| (v, have(&v.name))).filter(|(v, had)| had.is_none_or(|h| h < v.size.bytes())).collect();
    let needed: u64 = work.iter().map(|(v, had)| rounded(v.size.bytes()).saturating_sub(had.unwrap_or(0))).sum();
    if needed > free {
        let what: Vec<String> = work
            .iter()
            .map(|(v, had)| match had {
                Some(h) => format!("{} {} -> {}", v.name, ByteSize(*h), v.size),
                None => format!("{} {}", v.name, v.size),
            })
            .collect();
        return Err(StepError::new(format!(
            "{}: the volume group {vg} has {} free, the volumes need {} more ({}):              add a disk to it (vgextend {vg} DISK) or make storage.volumes smaller; nothing was created",
            node.name(),
            ByteSize(free),
            ByteSize(needed),
            what.join(", ")
        )));
    }
    let mut changes = vec![];
    for (v, had) in work {
        let lv = format!("{vg}/{}", v.name);
        let size = v.size.bytes();
        let summary = match had {
            Some(h) => {
                if !node.dry_run() {
                    node.sh("lvextend", &format!("lvextend -L {size}b {}", shell_quote(&lv))).await?;
                }
                format!("extend logical volume {lv} from {h} to {size} bytes")
            }
            None => {
                if !node.dry_run() {
                    let name = shell_quote(&v.name);
                    node.sh("lvcreate", &format!("lvcreate -y -L {size}b -n {name} {q}")).await?;
                }
                format!("create logical volume {lv} ({size} bytes)")
            }
        };
        changes.push(Change::new(summary));
    }
    Ok(changes)
}

pub fn backing_path(cluster: &Cluster, plan: &VolumePlan, v: &PlannedVolume) -> String {
    let storage = cluster.inventory.storage.as_ref().expect("checked by the caller");
    match storage.backing_store.kind {
        BackingKind::File => plan.backing_file(v).display().to_string(),
        BackingKind::Lvm => {
            format!("/dev/{}/{}", storage.backing_store.volume_group.as_deref().unwrap_or_default(), v.name)
        }
    }
}

/// The CHAP credentials from the inventory, if it has any.
pub fn chap(cluster: &Cluster) -> Result<Option<(String, Secret)>, StepError> {
    let Some(chap) = cluster.inventory.storage.as_ref().and_then(|s| s.iscsi.chap.as_ref()) else { return Ok(None) };
    let secret = crate::secrets::resolve(&chap.password, &cluster.base_dir, "storage.iscsi.chap.password")
        .map_err(|e| StepError::new(e.to_string()))?;
    // tgt's config and iscsid.conf are whitespace-separated: a blank would split the secret;
    // tgtd's management protocol separates its parameters with commas.
    let bad = |s: &str| s.chars().any(|c| c.is_whitespace() || c == ',');
    if bad(secret.expose()) || bad(&chap.user) {
        return Err(StepError::new(
            "storage.iscsi.chap: the user and password must not contain blanks or commas (iSCSI configuration files and tgtd split on them)",
        ));
    }
    Ok(Some((chap.user.clone(), secret)))
}

/// One tgt target per volume, then every target live in tgtd (checked, not assumed: a failed
/// earlier run may have written the file without loading it).
async fn tgt_targets(cluster: &Cluster, node: &Node, plan: &VolumePlan) -> Result<Vec<Change>, StepError> {
    let inv = &cluster.inventory;
    let chap = chap(cluster)?;
    let initiators: Vec<String> =
        inv.hosts_with(Role::Worker).map(|(_, h)| VolumePlan::initiator_name(inv, &h.name)).collect();
    let targets: Vec<_> = plan
        .iscsi()
        .map(|v| {
            let VolumeAccess::Iscsi { iqn, .. } = &v.access else { unreachable!("iscsi() yields iSCSI volumes") };
            serde_json::json!({"iqn": iqn, "name": v.name, "size": v.size.bytes(), "backing": backing_path(cluster, plan, v)})
        })
        .collect();
    let config = playbooks::render(
        "tgt-targets.conf",
        &serde_json::json!({
            "targets": targets,
            "initiators": initiators,
            "chap_user": chap.as_ref().map(|c| c.0.clone()),
            "chap_password": chap.as_ref().map(|c| c.1.expose().to_string()),
        }),
    )?;
    // 0600: the file holds the CHAP secret (and the agent shows no diff of such files). tgtd is
    // never restarted for a change: that would drop every volume in use; --update below applies
    // it to the targets no initiator is logged in to.
    let mut files = vec![file(TGT_CONFIG, config, 0o600)];
    if let Some((user, secret)) = &chap {
        // tgt-admin passes an account's secret to tgtadm's command line when tgtd lacks the
        // account: the agent makes it first (over tgtd's socket, from this root-only file), on
        // every apply and, through the drop-in, whenever tgt starts, before tgt-admin runs.
        files.push(file(TGT_CHAP, format!("{user}\n{}\n", secret.expose()), 0o600));
        files.push(file(
            TGT_DROP_IN,
            playbooks::render(
                "tgt-groundwork.conf",
                &serde_json::json!({
                    "agent": crate::agent::REMOTE_PATH, "chap_file": TGT_CHAP,
                }),
            )?,
            0o644,
        ));
    }
    files.push(Task::Service { name: "tgt".into(), enabled: true, running: true, restart: false });
    let mut changes = node.ensure_all(files).await?;
    if chap.is_some() {
        let iqns = plan
            .iscsi()
            .filter_map(|v| if let VolumeAccess::Iscsi { iqn, .. } = &v.access { Some(iqn.clone()) } else { None })
            .collect();
        changes.extend(node.ensure_all(vec![Task::TgtAccount { file: TGT_CHAP.into(), targets: iqns }]).await?);
    }
    if node.dry_run() {
        return Ok(changes);
    }
    let shown = node.sh("tgt-admin --show", "tgt-admin --show").await?;
    let loaded =
        |iqn: &str| shown.lines().any(|l| l.trim_start().starts_with("Target ") && l.trim_end().ends_with(iqn));
    let missing = plan.iscsi().filter(|v| matches!(&v.access, VolumeAccess::Iscsi { iqn, .. } if !loaded(iqn))).count();
    if missing > 0 || !changes.is_empty() {
        // --update leaves targets with logged-in initiators alone; they pick the change up once idle.
        node.sh("tgt-admin --update ALL", "tgt-admin --update ALL").await?;
        if missing > 0 {
            changes.push(Change::new(format!("loaded {missing} iSCSI target(s) into tgtd")));
        }
    }
    Ok(changes)
}

/// One directory per NFS volume, exported read-write to the node network only.
async fn nfs_exports(cluster: &Cluster, node: &Node, plan: &VolumePlan) -> Result<Vec<Change>, StepError> {
    let inv = &cluster.inventory;
    let storage = inv.storage.as_ref().expect("checked by the caller");
    let network =
        storage.nfs.allowed_network.as_ref().or(inv.cluster.node_network.as_ref()).map(|c| c.to_string()).ok_or_else(
            || {
                StepError::new(
                    "NFS exports need a network to allow: set storage.nfs.allowedNetwork or cluster.nodeNetwork",
                )
            },
        )?;
    let mut exports = vec![];
    let mut dirs = vec![];
    for (i, v) in plan.nfs().enumerate() {
        let VolumeAccess::Nfs { path, .. } = &v.access else { unreachable!("nfs() yields NFS volumes") };
        // Pods write as whatever uid their image runs as; the export's network limit is the fence.
        dirs.push(Task::Directory { path: path.display().to_string(), mode: 0o777 });
        exports.push(serde_json::json!({"id": i + 1, "path": path}));
    }
    // And one for the default StorageClass's dynamic volumes (csi-driver-nfs makes subdirectories).
    let dynamic = plan.dynamic_nfs_path();
    dirs.push(Task::Directory { path: dynamic.display().to_string(), mode: 0o777 });
    exports.push(serde_json::json!({"id": exports.len() + 1, "path": dynamic}));
    let mut changes = node.ensure_all(dirs).await?;
    let values = serde_json::json!({"exports": exports, "network": network});
    match storage.nfs.server {
        NfsServer::Ganesha => {
            let config = playbooks::render("ganesha.conf", &values)?;
            changes.extend(
                node.ensure_all(vec![Task::Service {
                    name: "dbus".into(),
                    enabled: true,
                    running: true,
                    restart: false,
                }])
                .await?,
            );
            changes.extend(node.ensure_service_with("nfs-ganesha", vec![file(GANESHA_CONFIG, config, 0o644)]).await?);
        }
        NfsServer::Kernel => {
            if node.facts.kernel_features.nfs_server == groundwork_protocol::facts::FeatureState::Missing {
                return Err(StepError::new(format!(
                    "{}: the kernel has no nfsd; set `storage.nfs.server: ganesha` (userspace) or use a kernel with nfsd",
                    node.name()
                )));
            }
            let config = playbooks::render("nfs-exports", &values)?;
            let written = node.ensure_all(vec![file(KERNEL_EXPORTS, config, 0o644)]).await?;
            let reexport = !written.is_empty();
            changes.extend(written);
            changes.extend(
                node.ensure_all(vec![Task::Service {
                    name: "nfs-server".into(),
                    enabled: true,
                    running: true,
                    restart: false,
                }])
                .await?,
            );
            if reexport && !node.dry_run() {
                node.sh("exportfs -ra", "exportfs -ra").await?;
            }
        }
    }
    Ok(changes)
}
