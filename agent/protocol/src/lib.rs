//! The protocol between the groundwork controller and `groundwork-agent`, over the stdin and
//! stdout of one SSH exec channel, one JSON document per line:
//!
//! 1. the agent starts and writes a [`Hello`] with its protocol version;
//! 2. the controller writes [`Request`]s; the agent answers each with a [`Response`] of the same id;
//! 3. the controller closes stdin; the agent exits 0.
//!
//! Anything the agent prints outside this (diagnostics) goes to stderr. Bump
//! [`PROTOCOL_VERSION`] whenever a type here changes shape; each side refuses a mismatch.

use serde::{Deserialize, Serialize};

pub mod facts;
pub mod tasks;

pub use facts::Facts;
pub use tasks::{Ensure, EnsureAll, Report, Task};

pub const PROTOCOL_VERSION: u32 = 3;

/// First line the agent writes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    pub protocol: u32,
    pub agent_version: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Request {
    pub id: u64,
    /// Flattened: a request reads `{"id":1,"action":"facts"}` plus the action's own fields.
    #[serde(flatten)]
    pub action: Action,
}

/// What the controller asks of the agent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Action {
    /// Gather the node's facts.
    Facts,
    /// Make one idempotent change (or, dry-run, report whether it would change anything).
    Ensure(Ensure),
    /// Several, in order, in one round trip; stops at the first that fails.
    EnsureAll(EnsureAll),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Response {
    pub id: u64,
    #[serde(flatten)]
    pub outcome: Outcome,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Facts(Box<Facts>),
    Ensured(Report),
    /// The reports of an `ensure_all`, in order: all of them, or those before the one that failed.
    EnsuredAll {
        reports: Vec<Report>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<String>,
    },
    /// The action failed; `message` says why in words an operator can act on.
    Error {
        message: String,
    },
}

/// Encodes one protocol line (JSON plus `\n`).
pub fn encode_line<T: Serialize>(value: &T) -> String {
    let mut line = serde_json::to_string(value).expect("protocol types always serialise");
    line.push('\n');
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_and_responses_round_trip_as_single_lines() {
        let req = Request { id: 7, action: Action::Facts };
        let line = encode_line(&req);
        assert_eq!(line, "{\"id\":7,\"action\":\"facts\"}\n");
        assert_eq!(serde_json::from_str::<Request>(&line).unwrap(), req);

        let ensure = Request {
            id: 8,
            action: Action::Ensure(Ensure { dry_run: true, task: Task::Hostname { name: "master-1".into() } }),
        };
        let line = encode_line(&ensure);
        assert_eq!(
            line,
            "{\"id\":8,\"action\":\"ensure\",\"dry_run\":true,\"task\":{\"kind\":\"hostname\",\"name\":\"master-1\"}}\n"
        );
        assert_eq!(serde_json::from_str::<Request>(&line).unwrap(), ensure);

        let resp = Response { id: 7, outcome: Outcome::Error { message: "no".into() } };
        let back: Response = serde_json::from_str(&encode_line(&resp)).unwrap();
        assert_eq!(back, resp);
    }
}
