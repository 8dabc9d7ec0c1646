//! The backbone's volumes as they exist on the storage host: names, sizes, iSCSI IQNs and LUNs,
//! NFS export paths. One place decides them, so that the storage phases that create the volumes
//! and the handoff that points PersistentVolumes and DIGIT's files at them always agree.

use std::path::PathBuf;

use crate::digit::Claim;
use crate::inventory::Inventory;
use crate::inventory::model::{IscsiTarget, Role, VolumeProtocol};
use crate::inventory::values::ByteSize;

/// iSCSI's registered port.
pub const ISCSI_PORT: u16 = 3260;
/// The LUN a volume's disk gets: tgt keeps LUN 0 for the target's own controller device, so
/// the first backing store is LUN 1; LIO numbers a target's LUNs from 0.
pub fn iscsi_lun(target: IscsiTarget) -> u32 {
    match target {
        IscsiTarget::Tgt => 1,
        IscsiTarget::Lio => 0,
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumePlan {
    /// The storage host's inventory name and address (as seen from the nodes).
    pub host: String,
    pub address: String,
    /// Where backing files and NFS exports live on the storage host.
    pub directory: PathBuf,
    pub volumes: Vec<PlannedVolume>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedVolume {
    /// `<component>-<index>`, e.g. `kafka-0`.
    pub name: String,
    /// The backbone component, e.g. `kafka`.
    pub component: String,
    pub index: u32,
    pub size: ByteSize,
    pub access: VolumeAccess,
    /// The DIGIT claim this volume is for (its PersistentVolume is pre-bound to it); None when
    /// the inventory names no DIGIT checkout or no chart claims this volume.
    pub claim: Option<Claim>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VolumeAccess {
    Iscsi { iqn: String, lun: u32, portal: String },
    Nfs { server: String, path: PathBuf },
}

impl VolumePlan {
    /// The volumes of the inventory's `storage` section, or None when it has none (or no
    /// storage host, which `validate` reports).
    pub fn of(inv: &Inventory) -> Option<VolumePlan> {
        let storage = inv.storage.as_ref()?;
        let host = inv.section_host(storage.host.as_deref(), Role::Storage)?;
        let directory = storage.backing_store.directory.clone();
        let iqn_prefix = Self::iqn_prefix(inv);
        let mut volumes = Vec::new();
        for set in storage.effective_volumes() {
            for index in 0..set.count {
                let name = format!("{}-{index}", set.name);
                let access = match set.protocol {
                    VolumeProtocol::Iscsi => VolumeAccess::Iscsi {
                        iqn: format!("{iqn_prefix}:{name}"),
                        lun: iscsi_lun(storage.iscsi.target),
                        portal: format!("{}:{ISCSI_PORT}", host.address),
                    },
                    VolumeProtocol::Nfs => {
                        VolumeAccess::Nfs { server: host.address.clone(), path: directory.join("nfs").join(&name) }
                    }
                };
                // The index-th claim of the component, in the claims' (sorted) order.
                let claim =
                    storage.digit_claims.iter().filter(|c| c.component == set.name).nth(index as usize).cloned();
                volumes.push(PlannedVolume { name, component: set.name.clone(), index, size: set.size, access, claim });
            }
        }
        Some(VolumePlan { host: host.name.clone(), address: host.address.clone(), directory, volumes })
    }

    pub fn iscsi(&self) -> impl Iterator<Item = &PlannedVolume> {
        self.volumes.iter().filter(|v| matches!(v.access, VolumeAccess::Iscsi { .. }))
    }

    pub fn nfs(&self) -> impl Iterator<Item = &PlannedVolume> {
        self.volumes.iter().filter(|v| matches!(v.access, VolumeAccess::Nfs { .. }))
    }

    /// The IQN prefix every name of this cluster's iSCSI volumes and initiators starts with.
    pub fn iqn_prefix(inv: &Inventory) -> String {
        inv.storage
            .as_ref()
            .and_then(|s| s.iscsi.iqn_prefix.clone())
            .unwrap_or_else(|| format!("iqn.2026-01.io.groundwork:{}", inv.cluster.name))
    }

    /// A node's iSCSI initiator name: unique per node and known in advance, so that the targets'
    /// ACLs can name exactly the cluster's workers.
    pub fn initiator_name(inv: &Inventory, node: &str) -> String {
        format!("{}:node:{node}", Self::iqn_prefix(inv))
    }

    /// The NFS export the default StorageClass (csi-driver-nfs) makes dynamic volumes in.
    pub fn dynamic_nfs_path(&self) -> PathBuf {
        self.directory.join("nfs").join("dynamic")
    }

    /// The backing file of an iSCSI volume (kind `file`).
    pub fn backing_file(&self, volume: &PlannedVolume) -> PathBuf {
        self.directory.join("iscsi").join(format!("{}.img", volume.name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inventory(storage: &str) -> Inventory {
        let text = format!(
            "apiVersion: groundwork/v1alpha1\nkind: Cluster\ncluster: {{name: lab}}\n\
             hosts:\n  - {{name: m1, address: 10.0.0.1, roles: [master]}}\n  - {{name: s1, address: 10.0.0.9, roles: [storage]}}\n\
             storage: {storage}\n"
        );
        serde_yaml_ng::from_str(&text).expect("test inventory parses")
    }

    #[test]
    fn the_dev_profile_becomes_thirteen_volumes_with_iqns_and_one_export() {
        let plan = VolumePlan::of(&inventory("{iscsi: {target: tgt}}")).expect("a plan");
        assert_eq!(plan.address, "10.0.0.9");
        assert_eq!(plan.iscsi().count(), 12);
        let kafka0 = plan.volumes.iter().find(|v| v.name == "kafka-0").expect("kafka-0");
        assert_eq!(
            kafka0.access,
            VolumeAccess::Iscsi {
                iqn: "iqn.2026-01.io.groundwork:lab:kafka-0".into(),
                lun: 1,
                portal: "10.0.0.9:3260".into()
            }
        );
        let nfs: Vec<_> = plan.nfs().collect();
        assert_eq!(nfs.len(), 1);
        assert_eq!(
            nfs[0].access,
            VolumeAccess::Nfs { server: "10.0.0.9".into(), path: "/srv/groundwork/nfs/filestore-0".into() }
        );
        assert_eq!(plan.backing_file(kafka0), PathBuf::from("/srv/groundwork/iscsi/kafka-0.img"));
    }

    #[test]
    fn lio_volumes_are_at_lun_0() {
        let plan = VolumePlan::of(&inventory("{iscsi: {target: lio}}")).expect("plan");
        assert!(matches!(plan.volumes[0].access, VolumeAccess::Iscsi { lun: 0, .. }));
    }

    #[test]
    fn an_iqn_prefix_from_the_inventory_is_used() {
        let plan = VolumePlan::of(&inventory("{iscsi: {iqnPrefix: 'iqn.2001-04.in.gov.sdc:digit'}}")).expect("plan");
        let VolumeAccess::Iscsi { iqn, .. } = &plan.volumes[0].access else { panic!("iscsi first") };
        assert_eq!(iqn, "iqn.2001-04.in.gov.sdc:digit:kafka-0");
    }
}
