//! The effective SSH settings of each machine groundwork logs in to: the host's overrides over the
//! inventory's defaults, with paths resolved. Pure: nothing is read or connected here.

use std::path::PathBuf;

use crate::inventory::values::SecretRef;
use crate::inventory::{Inventory, LoadedInventory, Role, SshOverride};

/// One machine to log in to: a cluster host or the bastion.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    /// Inventory name (`bastion` for the bastion).
    pub name: String,
    pub address: String,
    pub port: u16,
    pub user: String,
    pub key_file: Option<PathBuf>,
    pub key_passphrase: Option<SecretRef>,
    pub use_agent: bool,
    /// Run privileged commands through sudo (always false for root).
    pub sudo: bool,
    pub sudo_password: Option<SecretRef>,
    pub roles: Vec<Role>,
}

impl Target {
    /// `address:port`, bracketing IPv6 addresses.
    pub fn socket_label(&self) -> String {
        if self.address.contains(':') {
            format!("[{}]:{}", self.address, self.port)
        } else {
            format!("{}:{}", self.address, self.port)
        }
    }
}

fn effective(
    inv: &Inventory,
    loaded: &LoadedInventory,
    name: &str,
    address: &str,
    port: u16,
    o: &SshOverride,
    roles: Vec<Role>,
) -> Target {
    let d = &inv.ssh;
    let user = o.user.clone().unwrap_or_else(|| d.user.clone());
    Target {
        name: name.to_string(),
        address: address.to_string(),
        port,
        key_file: o.key_file.as_ref().or(d.key_file.as_ref()).map(|p| loaded.resolve(p)),
        key_passphrase: o.key_passphrase.clone().or_else(|| d.key_passphrase.clone()),
        use_agent: o.use_agent.unwrap_or(d.use_agent),
        sudo: user != "root" && o.sudo.unwrap_or(d.sudo),
        sudo_password: o.sudo_password.clone().or_else(|| d.sudo_password.clone()),
        user,
        roles,
    }
}

/// The bastion's target, if the inventory has one.
pub fn bastion(loaded: &LoadedInventory) -> Option<Target> {
    let inv = &loaded.inventory;
    inv.bastion.as_ref().map(|b| effective(inv, loaded, "bastion", &b.address, b.port, &b.ssh, vec![]))
}

/// Every cluster host's target, in inventory order.
pub fn hosts(loaded: &LoadedInventory) -> Vec<Target> {
    let inv = &loaded.inventory;
    inv.hosts
        .iter()
        .map(|h| {
            let port = h.ssh.port.unwrap_or(inv.ssh.port);
            effective(inv, loaded, &h.name, &h.address, port, &h.ssh, h.roles.clone())
        })
        .collect()
}

/// The known_hosts file: the inventory's, else `~/.ssh/known_hosts`.
pub fn known_hosts_file(loaded: &LoadedInventory) -> PathBuf {
    match &loaded.inventory.ssh.known_hosts {
        Some(p) => loaded.resolve(p),
        None => crate::inventory::resolve_path(&loaded.base_dir, std::path::Path::new("~/.ssh/known_hosts")),
    }
}
