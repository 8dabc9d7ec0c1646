//! Every package groundwork installs from the operating system (Debian's names), in one place: the
//! phases install from these lists what the inventory asks for, and the offline bundle carries the
//! dependency closure of everything a role may need (`bundle packages`), whatever the inventory
//! chooses, so that one bundle serves any inventory on that OS release.

use crate::inventory::Role;

/// Every Kubernetes node. kubeadm's preflight wants conntrack, iptables, socat, ethtool and
/// ebtables; containerd's CRI needs the CNI plugins.
pub const NODE: &[&str] =
    &["containerd", "runc", "containernetworking-plugins", "iptables", "conntrack", "socat", "ethtool", "ebtables"];
/// The local load balancer in front of the API servers (`controlPlaneEndpoint.mode: localProxy`).
pub const LOCAL_PROXY: &[&str] = &["haproxy"];
/// The masters' virtual address (`mode: vip`).
pub const VIP: &[&str] = &["keepalived"];

/// The storage host's iSCSI target: tgt (userspace) or LIO (the kernel's, managed by targetcli).
pub const ISCSI_TGT: &[&str] = &["tgt"];
pub const ISCSI_LIO: &[&str] = &["targetcli-fb"];
/// `backingStore.kind: lvm`.
pub const LVM: &[&str] = &["lvm2"];
/// NFS servers: the kernel's, or NFS-Ganesha (which reaches systemd and its admin interface over D-Bus).
pub const NFS_KERNEL: &[&str] = &["nfs-kernel-server"];
pub const NFS_GANESHA: &[&str] = &["nfs-ganesha", "nfs-ganesha-vfs", "dbus"];

/// The workers' iSCSI initiator, and libiscsi's tools where the kernel has no initiator.
pub const ISCSI_CLIENT: &[&str] = &["open-iscsi"];
pub const ISCSI_USERSPACE: &[&str] = &["libiscsi-bin"];
/// The NFS client. showmount (and mount.nfs) find rpcbind's port by its name in /etc/services,
/// which netbase carries and minimal installs (debootstrap's minbase) lack.
pub const NFS_CLIENT: &[&str] = &["nfs-common", "netbase"];
/// libnfs's tools, where the kernel has no NFS client.
pub const NFS_USERSPACE: &[&str] = &["libnfs-utils"];

/// The site registry: Debian's `docker-registry` is the CNCF distribution registry.
pub const REGISTRY: &[&str] = &["docker-registry"];

/// PostgreSQL server and client of a major version.
pub fn postgresql(version: u32) -> Vec<String> {
    vec![format!("postgresql-{version}"), format!("postgresql-client-{version}")]
}

/// Everything a host of `role` may install, for any inventory (PostgreSQL at `postgresql_version`).
pub fn for_role(role: Role, postgresql_version: u32) -> Vec<String> {
    let lists: &[&[&str]] = match role {
        Role::Master => &[NODE, LOCAL_PROXY, VIP],
        Role::Worker => &[NODE, LOCAL_PROXY, ISCSI_CLIENT, ISCSI_USERSPACE, NFS_CLIENT, NFS_USERSPACE],
        Role::Storage => &[ISCSI_TGT, ISCSI_LIO, LVM, NFS_KERNEL, NFS_GANESHA],
        Role::Database => return postgresql(postgresql_version),
        Role::Registry => &[REGISTRY],
    };
    owned(lists)
}

/// The lists' names as owned strings, in order.
pub fn owned(lists: &[&[&str]]) -> Vec<String> {
    lists.iter().flat_map(|l| l.iter().map(|s| s.to_string())).collect()
}
