//! The login roles the inventory asks for: each database's owner (Flyway migrates as it) and the
//! application roles, with their passwords from the inventory or generated once and kept in
//! groundwork's state. The database phase and the handoff both take them from here.

use std::path::Path;

use crate::inventory::Inventory;
use crate::inventory::model::DatabaseAccess;
use crate::secrets::{self, Secret};
use crate::state::StateDir;
use crate::state::secrets_store;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RoleKind {
    /// Owns `database` (and its `public` schema): migrations run as this role.
    Owner,
    /// Uses `database` with this access.
    App(DatabaseAccess),
}

#[derive(Debug, Clone)]
pub struct LoginRole {
    pub name: String,
    pub database: String,
    pub kind: RoleKind,
    pub password: Secret,
}

#[derive(Debug, thiserror::Error)]
pub enum RoleError {
    #[error("{0}")]
    Secret(#[from] secrets::SecretError),
    #[error("{0}")]
    Store(#[from] secrets_store::SecretStoreError),
}

/// Every login role, owners first, each with its password.
pub fn login_roles(inv: &Inventory, base_dir: &Path, state: &StateDir) -> Result<Vec<LoginRole>, RoleError> {
    let Some(db) = inv.database.as_ref() else { return Ok(vec![]) };
    let mut roles = Vec::new();
    for d in &db.databases {
        if roles.iter().any(|r: &LoginRole| r.name == d.owner) {
            continue;
        }
        let password = secrets_store::db_password(state, &d.owner)?;
        roles.push(LoginRole { name: d.owner.clone(), database: d.name.clone(), kind: RoleKind::Owner, password });
    }
    for (i, u) in db.users.iter().enumerate() {
        let password = match &u.password {
            Some(r) => secrets::resolve(r, base_dir, &format!("database.users[{i}].password"))?,
            None => secrets_store::db_password(state, &u.name)?,
        };
        roles.push(LoginRole {
            name: u.name.clone(),
            database: u.database.clone(),
            kind: RoleKind::App(u.access),
            password,
        });
    }
    Ok(roles)
}
