//! Per-host progress on the terminal while hosts are worked on: how many are done, and which are
//! still pending at what stage (so a slow host is named while it is awaited). Nothing when stderr
//! is not a terminal or the output is meant for machines.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::sync::{Mutex, Once};
use std::time::Duration;

use groundwork::ops::facts::{Progress, Stage};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

pub struct HostProgress {
    bar: ProgressBar,
    pending: Mutex<BTreeMap<String, &'static str>>,
    /// The bar is drawn from the first host event on, never before: a passphrase prompt that
    /// comes earlier must stay visible.
    started: Once,
    visible: bool,
}

/// Pending hosts are named one by one up to this many; beyond, they are counted.
const NAMED: usize = 4;

impl HostProgress {
    pub fn new(hosts: usize, verb: &str, enabled: bool) -> Self {
        let bar = ProgressBar::with_draw_target(Some(hosts as u64), ProgressDrawTarget::hidden());
        bar.set_style(
            ProgressStyle::with_template("{spinner} {prefix} [{bar:30}] {pos}/{len} hosts  {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        bar.set_prefix(verb.to_string());
        let visible = enabled && std::io::stderr().is_terminal();
        HostProgress { bar, pending: Mutex::new(BTreeMap::new()), started: Once::new(), visible }
    }

    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

impl Progress for HostProgress {
    fn stage(&self, host: &str, stage: Stage) {
        self.started.call_once(|| {
            if self.visible {
                self.bar.set_draw_target(ProgressDrawTarget::stderr());
                self.bar.enable_steady_tick(Duration::from_millis(120));
            }
        });
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        match stage {
            Stage::Connecting => pending.insert(host.to_string(), "connecting"),
            Stage::Uploading => pending.insert(host.to_string(), "starting the agent"),
            Stage::Gathering => pending.insert(host.to_string(), "gathering facts"),
            Stage::Done | Stage::Failed => {
                self.bar.inc(1);
                pending.remove(host)
            }
        };
        let message = if pending.len() <= NAMED {
            let named: Vec<String> = pending.iter().map(|(h, s)| format!("{h} {s}")).collect();
            if named.is_empty() { String::new() } else { format!("waiting for {}", named.join(", ")) }
        } else {
            format!("{} hosts in progress", pending.len())
        };
        self.bar.set_message(message);
    }
}
