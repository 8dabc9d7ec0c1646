//! The backbone's volume sets from the DIGIT SDC prerequisites, and how the inventory's
//! `storage.volumes` entries change them.

use super::model::{Storage, StorageProfile, VolumeProtocol, VolumeSpec};
use super::values::ByteSize;
use crate::digit::Claim;

fn volume(name: &str, protocol: VolumeProtocol, count: u32, gib: u64) -> VolumeSpec {
    VolumeSpec { name: name.into(), protocol, count, size: ByteSize::gib(gib) }
}

/// Dev: Kafka 3x50 GB, ZooKeeper 3x5 GB, ES data 3x50 GB, ES master 3x5 GB, filestore 1x50 GB.
/// Prod: the same set at 100 GB / 10 GB. Block volumes go over iSCSI (the recommended SDC option),
/// the shared filestore over NFS.
pub fn profile_volumes(profile: StorageProfile) -> Vec<VolumeSpec> {
    let (big, small) = match profile {
        StorageProfile::Dev => (50, 5),
        StorageProfile::Prod => (100, 10),
    };
    use VolumeProtocol::{Iscsi, Nfs};
    vec![
        volume("kafka", Iscsi, 3, big),
        volume("zookeeper", Iscsi, 3, small),
        volume("es-data", Iscsi, 3, big),
        volume("es-master", Iscsi, 3, small),
        volume("filestore", Nfs, 1, big),
    ]
}

/// The volume sets DIGIT's claims ask for: one set per component, as many volumes as claims,
/// each the size of the component's largest request; ReadWriteMany claims over NFS, the rest
/// over iSCSI. Sets come in the order of the claims.
pub fn claim_volumes(claims: &[Claim]) -> Vec<VolumeSpec> {
    let mut sets: Vec<VolumeSpec> = Vec::new();
    for claim in claims {
        let size = claim_size(claim).unwrap_or(ByteSize(0));
        let protocol = if claim.shared { VolumeProtocol::Nfs } else { VolumeProtocol::Iscsi };
        match sets.iter_mut().find(|s| s.name == claim.component) {
            Some(set) => {
                set.count += 1;
                set.size = set.size.max(size);
            }
            None => sets.push(VolumeSpec { name: claim.component.clone(), protocol, count: 1, size }),
        }
    }
    sets
}

/// A claim's request as a size (`8Gi`, `500Mi`, ...), None when it is not one.
pub fn claim_size(claim: &Claim) -> Option<ByteSize> {
    claim.size.parse().ok()
}

impl Storage {
    /// The volume sets to provision: DIGIT's claims' when the inventory names a DIGIT checkout
    /// (else the profile's), with the inventory's entries replacing those of the same name
    /// (dropped when `count` is 0) and adding new ones.
    pub fn effective_volumes(&self) -> Vec<VolumeSpec> {
        let mut volumes = if self.digit_claims.is_empty() {
            profile_volumes(self.profile)
        } else {
            claim_volumes(&self.digit_claims)
        };
        for spec in &self.volumes {
            match volumes.iter_mut().find(|v| v.name == spec.name) {
                Some(existing) => *existing = spec.clone(),
                None => volumes.push(spec.clone()),
            }
        }
        volumes.retain(|v| v.count > 0);
        volumes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn storage(volumes: Vec<VolumeSpec>) -> Storage {
        serde_yaml_ng::from_str::<Storage>("{}")
            .map(|mut s| {
                s.volumes = volumes;
                s
            })
            .expect("empty storage section parses")
    }

    #[test]
    fn dev_profile_matches_the_sdc_prerequisites() {
        let v = storage(vec![]).effective_volumes();
        let total: u64 = v.iter().map(|v| v.size.bytes() * v.count as u64).sum();
        // 3x50 + 3x5 + 3x50 + 3x5 + 1x50 GiB
        assert_eq!(total, ByteSize::gib(380).bytes());
        assert_eq!(v.len(), 5);
    }

    #[test]
    fn entries_replace_drop_and_add() {
        let v = storage(vec![
            volume("kafka", VolumeProtocol::Iscsi, 3, 1),
            volume("filestore", VolumeProtocol::Nfs, 0, 1),
            volume("minio", VolumeProtocol::Nfs, 1, 2),
        ])
        .effective_volumes();
        assert_eq!(v.iter().find(|v| v.name == "kafka").map(|v| v.size), Some(ByteSize::gib(1)));
        assert!(v.iter().all(|v| v.name != "filestore"));
        assert!(v.iter().any(|v| v.name == "minio"));
    }
}
