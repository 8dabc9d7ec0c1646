//! groundwork-agent: the small static binary the controller uploads to every node and runs over
//! the SSH channel. It gathers facts and performs idempotent actions, speaking a versioned
//! JSON-lines protocol on stdin/stdout. This first version only identifies itself; facts and
//! actions arrive with the transport.

/// Bumped whenever a request or response changes shape; the controller refuses a mismatch.
const PROTOCOL_VERSION: u32 = 1;

fn main() -> std::process::ExitCode {
    match std::env::args().nth(1).as_deref() {
        Some("--version" | "version") => {
            println!("{{\"agent\":\"{}\",\"protocol\":{PROTOCOL_VERSION}}}", env!("CARGO_PKG_VERSION"));
            std::process::ExitCode::SUCCESS
        }
        _ => {
            eprintln!("usage: groundwork-agent version\n(run by the groundwork controller over SSH, not by hand)");
            std::process::ExitCode::from(2)
        }
    }
}
