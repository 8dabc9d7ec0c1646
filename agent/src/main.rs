//! groundwork-agent: the small static binary the controller uploads to every node and runs over
//! the SSH channel. `serve` speaks the JSON-lines protocol of `groundwork-protocol` on
//! stdin/stdout; diagnostics go to stderr.

mod facts;
mod serve;
mod tasks;

use groundwork_protocol::PROTOCOL_VERSION;

fn main() -> std::process::ExitCode {
    match std::env::args().nth(1).as_deref() {
        Some("serve") => match serve::serve(std::io::stdin().lock(), std::io::stdout().lock()) {
            Ok(()) => std::process::ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("groundwork-agent: {e}");
                std::process::ExitCode::FAILURE
            }
        },
        // tgt.service runs this before `tgt-admin -e` (groundwork's drop-in), so that tgt-admin
        // finds the CHAP account and never puts its secret on tgtadm's command line.
        Some("tgt-account") => match std::env::args().nth(2) {
            // No file: the inventory has no CHAP (any more); nothing to make.
            Some(file) if !std::path::Path::new(&file).exists() => std::process::ExitCode::SUCCESS,
            Some(file) => match tasks::tgt::ensure(&file, &[], false) {
                Ok(report) => {
                    println!("{}", report.summary);
                    std::process::ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("groundwork-agent: {e}");
                    std::process::ExitCode::FAILURE
                }
            },
            None => {
                eprintln!("usage: groundwork-agent tgt-account FILE");
                std::process::ExitCode::from(2)
            }
        },
        Some("--version" | "version") => {
            println!("{{\"agent\":\"{}\",\"protocol\":{PROTOCOL_VERSION}}}", env!("CARGO_PKG_VERSION"));
            std::process::ExitCode::SUCCESS
        }
        _ => {
            eprintln!(
                "usage: groundwork-agent serve | version | tgt-account FILE\n(run by the groundwork controller over SSH, not by hand)"
            );
            std::process::ExitCode::from(2)
        }
    }
}
