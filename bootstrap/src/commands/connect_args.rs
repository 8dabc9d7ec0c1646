//! Arguments shared by every command that logs in to the hosts.

use std::path::PathBuf;
use std::time::Duration;

use std::sync::Arc;

use groundwork::inventory::LoadedInventory;
use groundwork::ops::facts::{FactsOptions, HostReport, gather, transport_options};

use super::progress::HostProgress;

#[derive(Debug, clap::Args)]
pub struct ConnectArgs {
    /// Inventory file.
    #[arg(short, long, value_name = "FILE", env = "GROUNDWORK_INVENTORY")]
    pub inventory: PathBuf,
    /// Record host keys not yet in known_hosts (trust on first use). Changed keys are refused regardless.
    #[arg(long)]
    pub accept_new: bool,
    /// The groundwork-agent binary to upload (default: next to groundwork, or where `cargo agent` builds it).
    #[arg(long, value_name = "PATH", env = "GROUNDWORK_AGENT")]
    pub agent: Option<PathBuf>,
    /// Seconds one host may take to connect and log in (per attempt).
    #[arg(long, value_name = "SECONDS", default_value_t = 20)]
    pub connect_timeout: u64,
    /// SSH handshakes in flight at once.
    #[arg(long, value_name = "N", default_value_t = 32)]
    pub parallel: usize,
}

impl ConnectArgs {
    /// Loads the inventory and gathers every host's facts, drawing progress (labelled `verb`)
    /// when `show_progress` and stderr is a terminal.
    pub fn gather(&self, verb: &str, show_progress: bool) -> anyhow::Result<(LoadedInventory, Vec<HostReport>)> {
        let loaded = super::load_inventory(&self.inventory)?;
        let opts = self.facts_options(&loaded);
        let hosts = loaded.inventory.hosts.len() + usize::from(loaded.inventory.bastion.is_some());
        let progress = Arc::new(HostProgress::new(hosts, verb, show_progress));
        let reports = super::runtime()?.block_on(gather(&loaded, &opts, progress.clone()));
        progress.finish();
        Ok((loaded, reports?))
    }

    pub fn facts_options(&self, loaded: &LoadedInventory) -> FactsOptions {
        let mut transport = transport_options(loaded, self.accept_new);
        transport.connect_timeout = Duration::from_secs(self.connect_timeout.max(1));
        transport.max_handshakes = self.parallel.max(1);
        FactsOptions { transport, agent: self.agent.clone(), agent_timeout: Duration::from_secs(60) }
    }
}
