//! Per-host progress on the terminal while hosts are worked on; nothing when stderr is not a
//! terminal or the output is meant for machines.

use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::Duration;

use groundwork::ops::facts::{Progress, Stage};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

pub struct HostProgress {
    bar: ProgressBar,
    failed: Mutex<Vec<String>>,
}

impl HostProgress {
    pub fn new(hosts: usize, verb: &str, enabled: bool) -> Self {
        let target = if enabled && std::io::stderr().is_terminal() {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        };
        let bar = ProgressBar::with_draw_target(Some(hosts as u64), target);
        bar.set_style(
            ProgressStyle::with_template("{spinner} {prefix} [{bar:30}] {pos}/{len} hosts  {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        bar.set_prefix(verb.to_string());
        bar.enable_steady_tick(Duration::from_millis(120));
        HostProgress { bar, failed: Mutex::new(Vec::new()) }
    }

    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

impl Progress for HostProgress {
    fn stage(&self, host: &str, stage: Stage) {
        let what = match stage {
            Stage::Connecting => "connecting",
            Stage::Uploading => "checking the agent",
            Stage::Gathering => "gathering facts",
            Stage::Done => {
                self.bar.inc(1);
                return;
            }
            Stage::Failed => {
                self.bar.inc(1);
                let mut failed = self.failed.lock().unwrap_or_else(|p| p.into_inner());
                failed.push(host.to_string());
                self.bar.set_message(format!("failed: {}", failed.join(", ")));
                return;
            }
        };
        if self.failed.lock().map(|f| f.is_empty()).unwrap_or(true) {
            self.bar.set_message(format!("{host}: {what}"));
        }
    }
}
