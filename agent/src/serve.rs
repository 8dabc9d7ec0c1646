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
        Action::Ensure(e) => match crate::tasks::ensure(e) {
            Ok(report) => Outcome::Ensured(report),
            Err(message) => Outcome::Error { message },
        },
        Action::EnsureAll(all) => {
            let mut reports = Vec::new();
            for task in all.tasks {
                match crate::tasks::ensure(groundwork_protocol::Ensure { dry_run: all.dry_run, task }) {
                    Ok(report) => reports.push(report),
                    Err(message) => return Outcome::EnsuredAll { reports, error: Some(message) },
                }
            }
            Outcome::EnsuredAll { reports, error: None }
        }
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

    #[test]
    fn a_batch_stops_at_its_first_failure_and_keeps_the_reports_before_it() {
        let t = crate::tasks::testdir::TempDir::new("serve-batch");
        let dir = t.path("d");
        let line = serde_json::json!({"id": 9, "action": "ensure_all", "tasks": [
            {"kind": "directory", "path": dir, "mode": 0o755},
            {"kind": "directory", "path": "relative", "mode": 0o755},
            {"kind": "directory", "path": t.path("never"), "mode": 0o755}]})
        .to_string();
        let lines = run(&format!("{line}\n"));
        let answer = &lines[1]["ensured_all"];
        assert_eq!(answer["reports"].as_array().unwrap().len(), 1, "{answer}");
        assert_eq!(answer["reports"][0]["changed"], true);
        assert_eq!(answer["error"], "directory path `relative` is not absolute");
        assert!(dir.is_dir() && !t.path("never").exists());
    }

    #[test]
    fn answers_an_ensure_request() {
        let dir = std::env::temp_dir().join(format!("groundwork-agent-serve-{}", std::process::id()));
        let path = dir.join("etc/x.conf");
        let file = |dry: bool| {
            serde_json::json!({"id": 5, "action": "ensure", "dry_run": dry, "task":
                {"kind": "file", "path": path, "content": "x = 1\n", "mode": 0o644}})
            .to_string()
        };
        let input = format!(
            "{}\n{}\n{}\n",
            file(true),
            r#"{"id":6,"action":"ensure","task":{"kind":"directory","path":"relative","mode":493}}"#,
            file(false)
        );
        let lines = run(&input);
        let shown = path.display();
        assert_eq!(
            lines[1],
            serde_json::json!({"id": 5, "ensured": {"changed": true, "summary": format!("{shown}: would be created"),
            "diff": format!("--- {shown}\n+++ {shown}\n@@ -0,0 +1,1 @@\n+x = 1\n")}})
        );
        assert_eq!(
            lines[2],
            serde_json::json!({"id": 6, "error": {"message": "directory path `relative` is not absolute"}})
        );
        assert_eq!(lines[3]["ensured"]["summary"], format!("{shown}: created"));
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "x = 1\n");
        let again = run(&format!("{}\n", file(false)));
        assert_eq!(
            again[1],
            serde_json::json!({"id": 5, "ensured": {"changed": false, "summary": format!("{shown} is up to date")}})
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
