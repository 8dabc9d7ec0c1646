//! The PostgreSQL host outside the cluster: which roles and databases the inventory wants and
//! with which passwords (`roles`), the server settings worked out from the host's facts
//! (`tuning`), the SQL that makes roles and databases so (`sql`), and a client that speaks to
//! the server through an SSH tunnel (`client`).

pub mod client;
pub mod roles;
pub mod sql;
pub mod tuning;

use crate::inventory::Inventory;
use crate::inventory::model::{Database, Host, Role};

/// The database host the inventory names (or its only `database` host) and its section.
pub fn host(inv: &Inventory) -> Option<(&Host, &Database)> {
    let db = inv.database.as_ref()?;
    let host = inv.section_host(db.host.as_deref(), Role::Database)?;
    Some((host, db))
}

/// Debian's name for a server cluster's systemd unit.
pub fn service(version: u32) -> String {
    format!("postgresql@{version}-main")
}

/// Where Debian keeps the cluster's configuration.
pub fn config_dir(version: u32) -> String {
    format!("/etc/postgresql/{version}/main")
}
