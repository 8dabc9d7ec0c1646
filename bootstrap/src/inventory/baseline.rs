//! Hardware baselines per role: the deployment guide's values, the named `lab` profile, and
//! per-role overrides. Whatever relaxes the guide is described so that it can be printed.

use super::model::{BaselineOverride, BaselineProfile, Baselines, RoleBaselines};
use super::values::ByteSize;

/// The role a baseline applies to; the bastion is not a cluster host but has a baseline too.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum BaselineRole {
    Bastion,
    Master,
    Worker,
    Storage,
    Database,
    Registry,
}

impl BaselineRole {
    pub const ALL: [BaselineRole; 6] = [
        BaselineRole::Bastion,
        BaselineRole::Master,
        BaselineRole::Worker,
        BaselineRole::Storage,
        BaselineRole::Database,
        BaselineRole::Registry,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            BaselineRole::Bastion => "bastion",
            BaselineRole::Master => "master",
            BaselineRole::Worker => "worker",
            BaselineRole::Storage => "storage",
            BaselineRole::Database => "database",
            BaselineRole::Registry => "registry",
        }
    }
}

/// The values a node of one role is checked against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Baseline {
    pub min_memory: ByteSize,
    pub recommended_memory: ByteSize,
    pub min_cpus: u32,
    pub min_disk: ByteSize,
}

impl Baseline {
    const fn new(min_mem_mib: u64, rec_mem_mib: u64, cpus: u32, disk_gib: u64) -> Self {
        Baseline {
            min_memory: ByteSize(min_mem_mib << 20),
            recommended_memory: ByteSize(rec_mem_mib << 20),
            min_cpus: cpus,
            min_disk: ByteSize(disk_gib << 30),
        }
    }

    fn with(self, o: &BaselineOverride) -> Self {
        let min_memory = o.min_memory.unwrap_or(self.min_memory);
        Baseline {
            min_memory,
            // An override of the minimum alone must not leave a recommendation below it.
            recommended_memory: o.recommended_memory.unwrap_or(self.recommended_memory.max(min_memory)),
            min_cpus: o.min_cpus.unwrap_or(self.min_cpus),
            min_disk: o.min_disk.unwrap_or(self.min_disk),
        }
    }
}

impl std::fmt::Display for Baseline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} RAM", self.min_memory)?;
        if self.recommended_memory > self.min_memory {
            write!(f, " ({} recommended)", self.recommended_memory)?;
        }
        write!(f, ", {} vCPU, {} disk", self.min_cpus, self.min_disk)
    }
}

/// The deployment guide's baselines: bastion 2 GB / 1 vCPU, masters 2 GB (4 GB recommended) /
/// 2 vCPU, workers 16 GB / 4 vCPU. The guide is silent on disk and on the storage and database
/// hosts (nor the registry's); those values are groundwork's own and say so in the README.
pub fn deployment_guide(role: BaselineRole) -> Baseline {
    match role {
        BaselineRole::Bastion => Baseline::new(2048, 2048, 1, 10),
        BaselineRole::Master => Baseline::new(2048, 4096, 2, 20),
        BaselineRole::Worker => Baseline::new(16384, 16384, 4, 50),
        BaselineRole::Storage => Baseline::new(2048, 4096, 2, 20),
        BaselineRole::Database => Baseline::new(4096, 8192, 2, 20),
        // The images of DIGIT's services and their backbone take tens of GB.
        BaselineRole::Registry => Baseline::new(1024, 2048, 1, 50),
    }
}

/// The `lab` profile: enough for the container lab on one 2-core machine. Masters keep the
/// 2 vCPU and ~1.7 GB that kubeadm's own preflight insists on.
fn lab(role: BaselineRole) -> Baseline {
    match role {
        BaselineRole::Bastion => Baseline::new(256, 256, 1, 2),
        BaselineRole::Master => Baseline::new(1700, 1700, 2, 5),
        BaselineRole::Worker => Baseline::new(512, 512, 1, 5),
        BaselineRole::Storage => Baseline::new(256, 256, 1, 2),
        BaselineRole::Database => Baseline::new(512, 512, 1, 2),
        BaselineRole::Registry => Baseline::new(256, 256, 1, 2),
    }
}

fn override_for(o: &RoleBaselines, role: BaselineRole) -> Option<&BaselineOverride> {
    match role {
        BaselineRole::Bastion => o.bastion.as_ref(),
        BaselineRole::Master => o.master.as_ref(),
        BaselineRole::Worker => o.worker.as_ref(),
        BaselineRole::Storage => o.storage.as_ref(),
        BaselineRole::Database => o.database.as_ref(),
        BaselineRole::Registry => o.registry.as_ref(),
    }
}

impl Baselines {
    /// The baseline a node of `role` is checked against.
    pub fn effective(&self, role: BaselineRole) -> Baseline {
        let base = match self.profile {
            BaselineProfile::DeploymentGuide => deployment_guide(role),
            BaselineProfile::Lab => lab(role),
        };
        match override_for(&self.overrides, role) {
            Some(o) => base.with(o),
            None => base,
        }
    }

    /// Lines describing every way the baselines in force differ from the deployment guide;
    /// empty when the guide's values apply. Printed by every command that checks hardware.
    pub fn relaxations(&self) -> Vec<String> {
        let mut lines = Vec::new();
        if self.profile == BaselineProfile::Lab {
            lines.push(
                "baseline profile `lab` is in force: nodes are checked against lab values, not the deployment guide's"
                    .to_string(),
            );
        }
        for role in BaselineRole::ALL {
            let effective = self.effective(role);
            let guide = deployment_guide(role);
            if effective != guide {
                let source = if override_for(&self.overrides, role).is_some() { "override" } else { "lab profile" };
                lines.push(format!("  {:<8} {effective}  ({source}; deployment guide: {guide})", role.as_str()));
            }
        }
        lines
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guide_values_apply_by_default_and_nothing_is_reported() {
        let b = Baselines::default();
        assert_eq!(b.effective(BaselineRole::Worker).min_memory, ByteSize::gib(16));
        assert_eq!(b.effective(BaselineRole::Worker).min_cpus, 4);
        assert_eq!(b.effective(BaselineRole::Master).recommended_memory, ByteSize::gib(4));
        assert!(b.relaxations().is_empty());
    }

    #[test]
    fn lab_profile_and_overrides_are_reported() {
        let mut b = Baselines { profile: BaselineProfile::Lab, ..Default::default() };
        let text = b.relaxations().join("\n");
        assert!(text.contains("`lab`"), "{text}");
        assert!(text.contains("worker"), "{text}");

        b.profile = BaselineProfile::DeploymentGuide;
        b.overrides.worker = Some(BaselineOverride { min_cpus: Some(2), ..Default::default() });
        let text = b.relaxations().join("\n");
        assert!(text.contains("override"), "{text}");
        assert_eq!(b.effective(BaselineRole::Worker).min_cpus, 2);
        assert_eq!(b.effective(BaselineRole::Worker).min_memory, ByteSize::gib(16));
    }
}
