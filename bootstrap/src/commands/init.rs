//! `groundwork init -i FILE`: a first, commented inventory from flags, or from answers to
//! questions on a terminal when flags are left out. Never replaces a file.

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use groundwork::inventory::LocalFiles;
use groundwork::ops::init::{self, InitSpec};
use groundwork::ops::output::{Body, InitOutput};
use groundwork::ops::validate::validate;

use super::output::{OutputArg, print_json};

#[derive(Debug, clap::Args)]
pub struct InitArgs {
    /// The inventory file to write (it must not exist).
    #[arg(short, long, value_name = "FILE")]
    pub inventory: PathBuf,
    /// The cluster's name.
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
    /// The bastion as this machine reaches it: ADDRESS or ADDRESS:PORT.
    #[arg(long, value_name = "ADDRESS")]
    pub bastion: Option<String>,
    /// Reach the hosts directly, without a bastion.
    #[arg(long, conflicts_with = "bastion")]
    pub no_bastion: bool,
    /// The masters' addresses as the bastion reaches them, comma-separated (1 or 3).
    #[arg(long, value_name = "ADDR,...", value_delimiter = ',')]
    pub masters: Vec<String>,
    /// The workers' addresses, comma-separated.
    #[arg(long, value_name = "ADDR,...", value_delimiter = ',')]
    pub workers: Vec<String>,
    /// The storage host's address (NFS and iSCSI volumes for the backbone).
    #[arg(long, value_name = "ADDR")]
    pub storage: Option<String>,
    /// The PostgreSQL host's address.
    #[arg(long, value_name = "ADDR")]
    pub database: Option<String>,
    /// The SSH user on every host (not root: commands go through sudo).
    #[arg(long, value_name = "USER")]
    pub user: Option<String>,
    /// The SSH private key (default ~/.ssh/id_ed25519).
    #[arg(long, value_name = "FILE")]
    pub key: Option<PathBuf>,
    #[command(flatten)]
    pub output: OutputArg,
}

pub fn run(args: InitArgs) -> anyhow::Result<ExitCode> {
    if args.inventory.exists() {
        return Err(init::InitError::Exists(args.inventory).into());
    }
    let mut ask = Asker::new();
    let name = match args.name {
        Some(n) => n,
        None => ask.optional("Cluster name", "digit")?,
    };
    let bastion = match (args.bastion, args.no_bastion) {
        (Some(b), _) => Some(b),
        (None, true) => None,
        (None, false) => Some(ask.required("--bastion", "Bastion address (as this machine reaches it)")?),
    };
    let masters = list(args.masters, || ask.required("--masters", "Masters' addresses, comma-separated (1 or 3)"))?;
    let workers = list(args.workers, || ask.required("--workers", "Workers' addresses, comma-separated (4 to 6)"))?;
    let storage = match args.storage {
        Some(s) => Some(s),
        None => ask.maybe("Storage host's address (empty: none)")?,
    };
    let database = match args.database {
        Some(d) => Some(d),
        None => ask.maybe("PostgreSQL host's address (empty: none)")?,
    };
    let user = match args.user {
        Some(u) => u,
        None => ask.optional("SSH user", "root")?,
    };
    let spec = InitSpec { name, bastion, masters, workers, storage, database, user, key: args.key };
    let text = init::render(&spec, &args.inventory)?;
    init::write_new(&args.inventory, &text)?;
    if args.output.json() {
        let (_, summary) = validate(&args.inventory, LocalFiles::Reported)?;
        print_json("init", Body::Init(InitOutput { inventory: args.inventory, summary }));
        return Ok(ExitCode::SUCCESS);
    }
    println!("wrote {}; next: groundwork validate -i {0}", args.inventory.display());
    Ok(ExitCode::SUCCESS)
}

fn list(given: Vec<String>, ask: impl FnOnce() -> anyhow::Result<String>) -> anyhow::Result<Vec<String>> {
    let given: Vec<String> = given.into_iter().map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect();
    if !given.is_empty() {
        return Ok(given);
    }
    Ok(ask()?.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect())
}

/// Questions on the terminal for what the flags left out; without a terminal, a value the flags
/// must give is an error naming the flag, and an optional one takes its default.
struct Asker {
    terminal: bool,
}

impl Asker {
    fn new() -> Self {
        Asker { terminal: std::io::stdin().is_terminal() && std::io::stderr().is_terminal() }
    }

    fn line(&mut self, prompt: &str) -> anyhow::Result<String> {
        eprint!("{prompt}: ");
        std::io::stderr().flush()?;
        let mut answer = String::new();
        std::io::stdin().lock().read_line(&mut answer)?;
        Ok(answer.trim().to_string())
    }

    fn required(&mut self, flag: &str, prompt: &str) -> anyhow::Result<String> {
        if !self.terminal {
            anyhow::bail!("{flag} is needed (or run groundwork init on a terminal to be asked)");
        }
        loop {
            let a = self.line(prompt)?;
            if !a.is_empty() {
                return Ok(a);
            }
        }
    }

    fn optional(&mut self, prompt: &str, default: &str) -> anyhow::Result<String> {
        if !self.terminal {
            return Ok(default.to_string());
        }
        let a = self.line(&format!("{prompt} [{default}]"))?;
        Ok(if a.is_empty() { default.to_string() } else { a })
    }

    fn maybe(&mut self, prompt: &str) -> anyhow::Result<Option<String>> {
        if !self.terminal {
            return Ok(None);
        }
        let a = self.line(prompt)?;
        Ok((!a.is_empty()).then_some(a))
    }
}
