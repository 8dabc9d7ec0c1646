//! Kernel features groundwork relies on, told apart as available now, loadable, or missing; and
//! the cgroup setup. Some kernels (and every container on a kernel without CONFIG_MODULES) cannot
//! load modules at all, so `modprobe` is never assumed.

use std::path::Path;

use groundwork_protocol::facts::{Cgroup, FeatureState, KernelFeatures};

use super::{read, read_value};

/// What is known about the running kernel's modules.
pub struct ModuleIndex {
    pub modules_supported: bool,
    loaded: String,
    builtin: String,
    available: String,
    filesystems: String,
}

impl ModuleIndex {
    pub fn read(release: &str) -> Self {
        let dir = format!("/lib/modules/{release}");
        ModuleIndex {
            modules_supported: Path::new("/proc/modules").exists(),
            loaded: read("/proc/modules").unwrap_or_default(),
            builtin: read(&format!("{dir}/modules.builtin")).unwrap_or_default(),
            available: read(&format!("{dir}/modules.dep")).unwrap_or_default(),
            filesystems: read("/proc/filesystems").unwrap_or_default(),
        }
    }

    /// `module` is the module's name (`iscsi_tcp`); `evidence` is a /proc/sys path or a file
    /// system name that exists only when the feature is in the running kernel.
    pub fn state(&self, module: &str, evidence: Option<&str>) -> FeatureState {
        let file = format!("/{module}.ko");
        let loaded = self.loaded.lines().any(|l| l.split_whitespace().next() == Some(module));
        let builtin = self.builtin.lines().any(|l| l.trim_end().ends_with(&file));
        let evident = match evidence {
            Some(p) if p.starts_with('/') => Path::new(p).exists(),
            Some(fs) => self.filesystems.lines().any(|l| l.split_whitespace().last() == Some(fs)),
            None => false,
        };
        if loaded || builtin || evident {
            FeatureState::Available
        } else if self.modules_supported
            && self
                .available
                .lines()
                .any(|l| l.split(':').next().is_some_and(|m| m.ends_with(&file) || m.contains(&format!("{file}."))))
        {
            FeatureState::Loadable
        } else {
            FeatureState::Missing
        }
    }
}

pub fn features(release: &str) -> KernelFeatures {
    let idx = ModuleIndex::read(release);
    KernelFeatures {
        modules_supported: idx.modules_supported,
        overlay: idx.state("overlay", Some("overlay")),
        br_netfilter: idx.state("br_netfilter", Some("/proc/sys/net/bridge/bridge-nf-call-iptables")),
        ip_forward: read_value("/proc/sys/net/ipv4/ip_forward").is_some_and(|v| v == "1"),
        nfs_client: idx.state("nfs", Some("nfs")),
        nfs_server: idx.state("nfsd", Some("nfsd")),
        iscsi_initiator: idx.state("iscsi_tcp", Some("/sys/module/iscsi_tcp")),
    }
}

pub fn cgroup() -> Cgroup {
    Cgroup {
        version: if Path::new("/sys/fs/cgroup/cgroup.controllers").exists() { 2 } else { 1 },
        systemd_init: read_value("/proc/1/comm").is_some_and(|c| c == "systemd")
            || Path::new("/run/systemd/system").exists(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index(supported: bool, loaded: &str, builtin: &str, dep: &str, fs: &str) -> ModuleIndex {
        ModuleIndex {
            modules_supported: supported,
            loaded: loaded.into(),
            builtin: builtin.into(),
            available: dep.into(),
            filesystems: fs.into(),
        }
    }

    #[test]
    fn builtin_loaded_loadable_missing() {
        let i = index(
            true,
            "br_netfilter 32768 0 - Live 0x0\n",
            "kernel/fs/overlayfs/overlay.ko\n",
            "kernel/drivers/scsi/iscsi_tcp.ko.xz: kernel/drivers/scsi/libiscsi.ko.xz\n",
            "nodev\tsysfs\n",
        );
        assert_eq!(i.state("overlay", None), FeatureState::Available);
        assert_eq!(i.state("br_netfilter", None), FeatureState::Available);
        assert_eq!(i.state("iscsi_tcp", None), FeatureState::Loadable);
        assert_eq!(i.state("nfsd", Some("nfsd")), FeatureState::Missing);
    }

    #[test]
    fn without_module_support_only_what_is_built_in_counts() {
        let i = index(false, "", "", "kernel/fs/nfsd/nfsd.ko: \n", "nodev\toverlay\n");
        assert_eq!(i.state("overlay", Some("overlay")), FeatureState::Available);
        assert_eq!(i.state("nfsd", Some("nfsd")), FeatureState::Missing);
    }
}
