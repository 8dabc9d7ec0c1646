//! `groundwork db backup|restore -i INV`: the PostgreSQL host's backups, on demand.

use std::process::ExitCode;

use groundwork::ops::db;
use groundwork::ops::output::{Body, DatabaseDumps};

use super::connect_args::ConnectArgs;
use super::output::{OutputArg, print_json};

#[derive(Debug, clap::Args)]
pub struct DbArgs {
    #[command(subcommand)]
    pub action: DbAction,
}

#[derive(Debug, clap::Subcommand)]
pub enum DbAction {
    /// Back up every database now (the same job the backup timer runs), keeping the inventory's retention.
    Backup {
        #[command(flatten)]
        connect: ConnectArgs,
        #[command(flatten)]
        output: OutputArg,
    },
    /// Restore one database from a dump in the backup directory (its newest, unless --file names one).
    Restore {
        #[command(flatten)]
        connect: ConnectArgs,
        /// The database to restore (from `database.databases`).
        #[arg(long, value_name = "NAME")]
        database: String,
        /// A dump's file name in the backup directory (default: the newest of that database).
        #[arg(long, value_name = "FILE")]
        file: Option<String>,
        #[command(flatten)]
        output: OutputArg,
    },
}

pub fn run(args: DbArgs) -> anyhow::Result<ExitCode> {
    match args.action {
        DbAction::Backup { connect, output } => {
            let loaded = super::load_inventory(&connect.inventory)?;
            let opts = connect.facts_options(&loaded).transport;
            let dumps = super::runtime()?.block_on(db::backup(&loaded, opts))?;
            if output.json() {
                print_json("db backup", Body::DatabaseDumps(DatabaseDumps { dumps }));
                return Ok(ExitCode::SUCCESS);
            }
            for d in &dumps {
                println!("backed up {:<16} {} ({} bytes)", d.database, d.path.display(), d.bytes);
            }
            Ok(ExitCode::SUCCESS)
        }
        DbAction::Restore { connect, database, file, output } => {
            let loaded = super::load_inventory(&connect.inventory)?;
            let opts = connect.facts_options(&loaded).transport;
            let dump = super::runtime()?.block_on(db::restore(&loaded, opts, &database, file.as_deref()))?;
            if output.json() {
                print_json("db restore", Body::DatabaseDumps(DatabaseDumps { dumps: vec![dump] }));
                return Ok(ExitCode::SUCCESS);
            }
            println!("restored {} from {} ({} bytes)", dump.database, dump.path.display(), dump.bytes);
            Ok(ExitCode::SUCCESS)
        }
    }
}
