//! Ctrl-C and SIGTERM for commands that change the cluster: the first asks the run to stop
//! (nothing new starts; running steps get the grace period; the journal, the report and the lock
//! are then written and released as usual); a second one aborts at once. Aborting is safe: the
//! journal is written as each step finishes and the locks are flocks the kernel releases.

use groundwork::ops::interrupt::StopHandle;
use tokio::signal::unix::{SignalKind, signal};

/// Spawns the listener on the current runtime.
pub fn stop_on_signals(handle: StopHandle, grace_secs: u64) {
    let (Ok(mut int), Ok(mut term)) = (signal(SignalKind::interrupt()), signal(SignalKind::terminate())) else {
        tracing::warn!("cannot listen for Ctrl-C/SIGTERM: an interrupt ends the run at once");
        return;
    };
    tokio::spawn(async move {
        let mut asked = 0;
        loop {
            let name = tokio::select! {
                _ = int.recv() => "SIGINT",
                _ = term.recv() => "SIGTERM",
            };
            asked += 1;
            if asked == 1 {
                eprintln!(
                    "\n{name}: stopping — no new step starts; steps already running get up to {grace_secs} s to \
                     finish, then the journal and the report are written and the lock released. \
                     Press Ctrl-C again to abort at once."
                );
                handle.stop(name);
            } else {
                eprintln!("\n{name} again: aborting now (the journal holds every step that finished)");
                std::process::exit(i32::from(super::exit::INTERRUPTED));
            }
        }
    });
}
