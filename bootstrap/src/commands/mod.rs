//! One file per subcommand: arguments in, a call into `groundwork::ops`, output and exit code out.

pub mod apply;
pub mod bundle;
pub mod certs;
pub mod check;
pub mod connect_args;
pub mod db;
pub mod etcd;
pub mod facts;
pub mod handoff;
pub mod kubeconfig;
pub mod progress;
pub mod schema;
pub mod signals;
pub mod state;
pub mod table;
pub mod upgrade;
pub mod validate;

use std::path::Path;

use groundwork::inventory::{self, LoadError, LoadedInventory};

/// Loads the inventory for a command that acts on hosts; an invalid one is shown as `validate`
/// shows it, and nothing is touched.
pub fn load_inventory(path: &Path) -> anyhow::Result<LoadedInventory> {
    match inventory::load(path) {
        Ok(loaded) => Ok(loaded),
        Err(LoadError::Invalid { source_text, diagnostics, path }) => {
            for d in &diagnostics {
                eprintln!("{}", d.render(&source_text));
            }
            anyhow::bail!("{} is not valid (see above); nothing was done", path.display())
        }
        Err(e) => Err(e.into()),
    }
}

pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread().enable_all().build()?)
}

/// Process exit codes shared by every command.
pub mod exit {
    pub const OK: u8 = 0;
    /// The operation ran and found problems (invalid inventory, failed check).
    pub const FAILED: u8 = 1;
    /// Stopped by Ctrl-C or SIGTERM (128 + SIGINT, as shells report it).
    pub const INTERRUPTED: u8 = 130;
}
