//! One file per subcommand: arguments in, a call into `groundwork::ops`, output and exit code out.

pub mod apply;
pub mod bundle;
pub mod certs;
pub mod check;
pub mod connect_args;
pub mod db;
pub mod docs;
pub mod etcd;
pub mod facts;
pub mod handoff;
pub mod images;
pub mod import;
pub mod init;
pub mod kubeconfig;
pub mod logging;
pub mod node;
pub mod output;
pub mod progress;
pub mod report;
pub mod reset;
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
    load_inventory_checking(path, inventory::LocalFiles::Required)
}

/// [`load_inventory`], with the local files it names required or only reported.
pub fn load_inventory_checking(path: &Path, local: inventory::LocalFiles) -> anyhow::Result<LoadedInventory> {
    match inventory::load_checking(path, local) {
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

/// A day-2 command's `--plan`: the steps `plan` returns, as lines or JSON; nothing changes.
pub fn print_plan(
    connect: &connect_args::ConnectArgs,
    json: bool,
    command: &str,
    plan: impl for<'a> FnOnce(
        &'a LoadedInventory,
        groundwork::transport::TransportOptions,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = anyhow::Result<Vec<String>>> + 'a>>,
) -> anyhow::Result<std::process::ExitCode> {
    let loaded = load_inventory(&connect.inventory)?;
    let transport = connect.facts_options(&loaded).transport;
    let steps = runtime()?.block_on(plan(&loaded, transport))?;
    show_plan(command, steps, json)
}

/// A plan's steps on stdout, as lines or JSON.
pub fn show_plan(command: &str, steps: Vec<String>, json: bool) -> anyhow::Result<std::process::ExitCode> {
    if json {
        output::print_json(
            &format!("{command} --plan"),
            groundwork::ops::output::Body::Steps(groundwork::ops::output::Steps { steps }),
        );
    } else {
        println!("plan: what `groundwork {command}` would do (nothing was changed)");
        for s in steps {
            println!("  - {s}");
        }
    }
    Ok(std::process::ExitCode::from(exit::OK))
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
