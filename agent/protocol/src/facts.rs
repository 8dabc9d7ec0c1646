//! What the agent learns about a node. Sizes are bytes; absent knowledge is `None` (or an empty
//! list), never a made-up value, so the controller can tell "unknown" from "zero".

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Facts {
    pub hostname: String,
    pub os: Os,
    /// `uname -r`.
    pub kernel: String,
    /// `uname -m`, e.g. `x86_64`.
    pub architecture: String,
    pub cpu: Cpu,
    pub memory: Memory,
    /// Block devices from /sys/block (whole disks; loop and ram devices left out).
    pub disks: Vec<Disk>,
    /// The file systems holding `/` and `/var` (one entry when they are the same).
    pub filesystems: Vec<Filesystem>,
    pub interfaces: Vec<Interface>,
    pub default_route: Option<DefaultRoute>,
    /// /sys/class/dmi/id/product_uuid (absent in containers and on some hypervisors).
    pub product_uuid: Option<String>,
    /// /etc/machine-id.
    pub machine_id: Option<String>,
    /// The agent's clock when it finished gathering, in milliseconds since the Unix epoch.
    pub time_unix_ms: i64,
    /// How long gathering took, so the controller can tell when the request arrived (NTP-style
    /// clock offset: ((arrived - sent) + (finished - received)) / 2).
    pub gather_ms: u64,
    pub cgroup: Cgroup,
    pub kernel_features: KernelFeatures,
    /// TCP ports something listens on (from /proc/net/tcp and tcp6).
    pub listening_tcp_ports: Vec<u16>,
    /// Versions of what groundwork installs, when already present.
    pub installed: Installed,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Os {
    /// `ID` from /etc/os-release, e.g. `debian`.
    pub id: String,
    /// `VERSION_ID`, e.g. `12`.
    pub version_id: String,
    /// `VERSION_CODENAME`, e.g. `bookworm`.
    pub codename: Option<String>,
    /// `PRETTY_NAME`.
    pub pretty_name: String,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Cpu {
    /// Logical CPUs this node can use.
    pub count: u32,
    pub model: String,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Memory {
    /// MemTotal.
    pub total_bytes: u64,
    /// MemAvailable.
    pub available_bytes: u64,
    /// SwapTotal; kubelet wants 0 (or swap configured for it).
    pub swap_total_bytes: u64,
    /// Active swap devices from /proc/swaps.
    pub swap_devices: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Disk {
    /// Kernel name, e.g. `vda`, `sda`, `nvme0n1`.
    pub name: String,
    pub size_bytes: u64,
    /// From /sys/block/NAME/queue/rotational; None when unknown.
    pub rotational: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Filesystem {
    /// Mount point asked about (`/` or `/var`).
    pub path: String,
    /// The mount point that actually holds it.
    pub mount_point: String,
    pub fs_type: String,
    pub total_bytes: u64,
    pub available_bytes: u64,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Interface {
    pub name: String,
    /// Lower-case `aa:bb:cc:dd:ee:ff`; None for interfaces without one.
    pub mac: Option<String>,
    /// Addresses with prefix length, e.g. `10.78.0.11/24`.
    pub addresses: Vec<String>,
    pub up: bool,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct DefaultRoute {
    pub interface: String,
    pub gateway: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Cgroup {
    /// 1 (legacy or hybrid) or 2 (unified).
    pub version: u8,
    /// True when PID 1 is systemd (kubelet and containerd should then use the systemd driver).
    pub systemd_init: bool,
}

/// How a kernel feature is available.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum FeatureState {
    /// Compiled into the kernel, or its module is loaded: usable now.
    Available,
    /// A module exists under /lib/modules for this kernel and can be loaded.
    Loadable,
    /// Neither: it cannot be had without another kernel.
    #[default]
    Missing,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct KernelFeatures {
    /// False when the kernel cannot load modules at all (no /proc/modules).
    pub modules_supported: bool,
    pub overlay: FeatureState,
    pub br_netfilter: FeatureState,
    /// net.ipv4.ip_forward is 1.
    pub ip_forward: bool,
    pub nfs_client: FeatureState,
    pub nfs_server: FeatureState,
    pub iscsi_initiator: FeatureState,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Installed {
    pub containerd: Option<String>,
    pub runc: Option<String>,
    pub kubelet: Option<String>,
    pub kubeadm: Option<String>,
    pub kubectl: Option<String>,
    /// The backbone's servers present on the host: `tgt`, `lio` (targetcli), `nfs-ganesha`,
    /// `nfs-kernel-server`, `postgresql`. Their ports being in use is then a re-run, not a clash.
    #[serde(default)]
    pub servers: Vec<String>,
}
