//! The protocol loop: greet, then answer each request line with one response line, until EOF.

use std::io::{BufRead, Write};

use groundwork_protocol::{Action, Hello, Outcome, PROTOCOL_VERSION, Request, Response, encode_line};

pub fn serve(input: impl BufRead, mut output: impl Write) -> std::io::Result<()> {
    let hello = Hello { protocol: PROTOCOL_VERSION, agent_version: env!("CARGO_PKG_VERSION").to_string() };
    output.write_all(encode_line(&hello).as_bytes())?;
    output.flush()?;
    for line in input.lines() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let response = answer(&line);
        output.write_all(encode_line(&response).as_bytes())?;
        output.flush()?;
    }
    Ok(())
}

fn answer(line: &str) -> Response {
    match serde_json::from_str::<Request>(line) {
        Ok(Request { id, action }) => Response { id, outcome: perform(action) },
        Err(e) => {
            // Tell an unknown action from a malformed line: the former means versions differ.
            let value: Option<serde_json::Value> = serde_json::from_str(line).ok();
            let id = value.as_ref().and_then(|v| v["id"].as_u64()).unwrap_or(0);
            let message = match value.as_ref().and_then(|v| v["action"].as_str()) {
                Some(action) => format!(
                    "unknown action `{action}`: this agent ({}) is older or newer than the controller",
                    env!("CARGO_PKG_VERSION")
                ),
                None => format!("unreadable request ({e})"),
            };
            Response { id, outcome: Outcome::Error { message } }
        }
    }
}

fn perform(action: Action) -> Outcome {
    match action {
        Action::Facts => Outcome::Facts(Box::new(crate::facts::gather())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(input: &str) -> Vec<serde_json::Value> {
        let mut out = Vec::new();
        serve(input.as_bytes(), &mut out).unwrap();
        String::from_utf8(out).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
    }

    #[test]
    fn greets_then_answers_each_line_even_after_a_bad_one() {
        let lines = run("garbage\n{\"id\":3,\"action\":\"teleport\"}\n{\"id\":4,\"action\":\"facts\"}\n");
        assert_eq!(lines[0]["protocol"], PROTOCOL_VERSION);
        assert!(lines[1]["error"]["message"].as_str().unwrap().starts_with("unreadable request"));
        assert_eq!(lines[2]["id"], 3);
        assert!(lines[2]["error"]["message"].as_str().unwrap().contains("unknown action `teleport`"));
        assert_eq!(lines[3]["id"], 4);
        assert!(lines[3]["facts"]["hostname"].is_string());
        assert_eq!(lines.len(), 4);
    }
}
