//! `-o json` everywhere, in one versioned shape: the committed schema is the one the types make,
//! every command that reports something takes `-o json`, and what the commands print without a
//! cluster (validate, init, import, facts/check/plan against hosts that refuse, bundle keygen)
//! matches the schema. The lab tests check every report they read the same way
//! (`groundwork_lab_tests::report_json`).

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn groundwork(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_groundwork"))
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .expect("groundwork runs")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn schema() -> serde_json::Value {
    serde_json::from_str(&groundwork::ops::output::schema_json()).unwrap()
}

/// The report on stdout, checked against the schema; returns it.
fn report(out: &Output, command: &str, kind: &str) -> serde_json::Value {
    let value: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{command}: not JSON ({e}): {}\n{}", text(&out.stdout), text(&out.stderr)));
    let validator = jsonschema::validator_for(&schema()).expect("the schema compiles");
    let errors: Vec<String> = validator.iter_errors(&value).map(|e| format!("{e} at {}", e.instance_path)).collect();
    assert!(errors.is_empty(), "{command}: the report does not match the schema:\n{}\n{value:#}", errors.join("\n"));
    assert_eq!(value["schema"], "groundwork.report/v1");
    assert_eq!(value["command"], command);
    assert_eq!(value["kind"], kind);
    value
}

#[test]
fn committed_report_schema_matches_the_types() {
    let committed = std::fs::read_to_string(repo().join("schema/report.json")).expect("schema/report.json exists");
    assert!(
        committed == groundwork::ops::output::schema_json(),
        "schema/report.json is stale: run `cargo run -p groundwork -- schema --report > schema/report.json`"
    );
}

/// The envelope's fields sit beside each report's own: no report may have a field of the same name.
#[test]
fn no_report_has_a_field_the_envelope_uses() {
    let schema = schema();
    let defs = schema["$defs"].as_object().unwrap();
    let variants = schema["oneOf"].as_array().unwrap();
    assert!(variants.len() >= 20, "one variant per kind of report: {}", variants.len());
    for v in variants {
        let name = v["$ref"].as_str().unwrap().trim_start_matches("#/$defs/");
        let fields = defs[name]["properties"].as_object().unwrap_or_else(|| panic!("{name} has no properties"));
        for taken in ["schema", "groundwork", "command", "kind"] {
            assert!(!fields.contains_key(taken), "{name} has a field `{taken}` that the envelope uses");
        }
    }
}

/// Subcommand paths from `groundwork [PATH] --help` (its "Commands:" section), recursively.
fn leaf_commands(dir: &Path, path: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
    let mut args: Vec<&str> = path.iter().map(String::as_str).collect();
    args.push("--help");
    let help = text(&groundwork(dir, &args).stdout);
    let subs: Vec<String> = help
        .split("Commands:")
        .nth(1)
        .map(|rest| {
            rest.lines()
                .skip(1)
                .take_while(|l| l.starts_with("  "))
                .filter_map(|l| l.split_whitespace().next().map(str::to_string))
                .filter(|s| s != "help")
                .collect()
        })
        .unwrap_or_default();
    if subs.is_empty() {
        out.push(path.clone());
    }
    for s in subs {
        path.push(s);
        leaf_commands(dir, path, out);
        path.pop();
    }
}

#[test]
fn every_command_that_reports_takes_output_json() {
    let dir = tempfile::tempdir().unwrap();
    let mut leaves = Vec::new();
    leaf_commands(dir.path(), &mut Vec::new(), &mut leaves);
    assert!(leaves.len() > 25, "found only {leaves:?}");
    // Their output is the artifact itself (a schema, a script, man pages).
    let exempt = [vec!["schema"], vec!["completions"], vec!["man"]];
    for leaf in leaves.iter().filter(|l| !exempt.iter().any(|e| e == *l)) {
        let mut args: Vec<&str> = leaf.iter().map(String::as_str).collect();
        args.push("--help");
        let help = text(&groundwork(dir.path(), &args).stdout);
        assert!(help.contains("-o, --output <FORMAT>"), "groundwork {} has no -o/--output:\n{help}", leaf.join(" "));
        assert!(help.contains("json"), "groundwork {}: -o json is not offered:\n{help}", leaf.join(" "));
    }
}

/// The static agent `tests/run` builds first; facts, check and plan need one to exist (here it is
/// never uploaded: the hosts refuse the connection).
fn agent() -> PathBuf {
    let agent = repo().join("target/x86_64-unknown-linux-musl/release-agent/groundwork-agent");
    assert!(
        agent.is_file(),
        "{} is missing: cargo build -p groundwork-agent --profile release-agent --target x86_64-unknown-linux-musl",
        agent.display()
    );
    agent
}

#[test]
fn reports_made_without_a_cluster_match_the_schema() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let key = Command::new("ssh-keygen").args(["-q", "-t", "ed25519", "-N", "", "-f"]).arg(d.join("key")).status();
    assert!(key.expect("ssh-keygen runs").success());

    let init_site = |extra: &[&str]| {
        let mut args = vec!["init", "-i", "site.yaml", "--no-bastion", "--masters", "127.0.0.1"];
        args.extend(["--workers", "127.0.0.2", "--key", "key"]);
        args.extend_from_slice(extra);
        groundwork(d, &args)
    };
    let out = init_site(&[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    std::fs::remove_file(d.join("site.yaml")).unwrap();
    let out = init_site(&["-o", "json"]);
    let init = report(&out, "init", "init");
    assert_eq!(init["summary"]["cluster"], "digit");

    let out = groundwork(d, &["validate", "-i", "site.yaml", "-o", "json"]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(report(&out, "validate", "validation")["valid"], true);
    std::fs::write(d.join("bad.yaml"), "apiVersion: groundwork/v1alpha1\nkind: Cluster\nclustr: {}\n").unwrap();
    let out = groundwork(d, &["validate", "-i", "bad.yaml", "-o", "json"]);
    assert_eq!(out.status.code(), Some(1));
    let invalid = report(&out, "validate", "validation");
    assert_eq!(invalid["valid"], false);
    assert!(
        invalid["diagnostics"][0]["line"].is_u64() || invalid["diagnostics"][0]["location"].is_object(),
        "{invalid}"
    );

    // Hosts that refuse (port 1 on loopback): every command still reports, in the same shape.
    let site =
        std::fs::read_to_string(d.join("site.yaml")).unwrap().replacen("  user: root", "  user: root\n  port: 1", 1);
    std::fs::write(d.join("site.yaml"), site).unwrap();
    let agent = agent();
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_groundwork"))
            .args(args)
            .current_dir(d)
            .env("GROUNDWORK_AGENT", &agent)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    let out = run(&["facts", "-i", "site.yaml", "--accept-new", "-o", "json"]);
    assert_eq!(out.status.code(), Some(1), "no host answered");
    let facts = report(&out, "facts", "facts");
    assert!(facts["hosts"][0]["error"].as_str().unwrap().contains("cannot connect"), "{facts}");
    let out = run(&["check", "-i", "site.yaml", "--accept-new", "-o", "json"]);
    assert_eq!(out.status.code(), Some(1));
    report(&out, "check", "check");
    let out = run(&["plan", "-i", "site.yaml", "--accept-new", "-o", "json", "--log-file", "audit.log"]);
    assert_eq!(out.status.code(), Some(1));
    let plan = report(&out, "plan", "apply");
    assert_eq!(plan["dry_run"], true);
    assert_eq!(plan["phases"][0]["hosts"][0]["kind"], "transport", "{plan}");

    // The audit log: one JSON object per line, the run's start and end, each host's phase outcome.
    let log = std::fs::read_to_string(d.join("audit.log")).expect("--log-file writes the log");
    let events: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("a log line is not JSON ({e}): {l}")))
        .collect();
    assert!(events.iter().all(|e| e["timestamp"].is_string() && e["level"].is_string()), "{log}");
    assert!(events.iter().any(|e| e["message"] == "groundwork started"), "{log}");
    for host in ["master-1", "worker-1"] {
        assert!(
            events.iter().any(|e| e["phase"] == "connect" && e["host"] == host && e["outcome"] == "failed"),
            "no connect outcome for {host}:\n{log}"
        );
    }
    assert!(events.last().is_some_and(|e| e["message"] == "groundwork finished"), "{log}");
    let mode = std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(d.join("audit.log")).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600, "the log is private");

    let out = groundwork(d, &["bundle", "keygen", "--key", "bundle.key", "--unencrypted", "-o", "json"]);
    let key = report(&out, "bundle keygen", "bundle-key");
    assert_eq!(key["encrypted"], false);
    assert!(key["public_key"].as_str().unwrap().starts_with("RW"), "{key}");
    let secret = std::fs::read_to_string(d.join("bundle.key")).unwrap();
    assert!(!text(&out.stdout).contains(secret.lines().last().unwrap()), "the secret key is not printed");
}
