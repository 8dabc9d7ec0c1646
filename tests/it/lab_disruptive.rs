//! Tests that change the lab for a moment (a stopped host, a removed agent). tests/run runs this
//! binary alone, after every other test, one test at a time.

use std::time::{Duration, Instant};

use groundwork_lab_tests::{Lab, host, text};

#[test]
fn a_stopped_host_is_reported_while_the_others_succeed() {
    let lab = Lab::require();
    let c = lab.container("worker-4");
    assert!(lab.docker(&["stop", "-t", "1", &c]).status.success());
    let started = Instant::now();
    let out = lab.groundwork(&["facts", "-i", "inventory/lab.yaml", "-o", "json", "--connect-timeout", "5"]);
    let took = started.elapsed();
    // Bring it back before asserting, so that a failure here leaves the lab whole.
    assert!(lab.docker(&["start", &c]).status.success());
    lab.wait_for_ssh("worker-4");

    assert_eq!(out.status.code(), Some(1), "one host failed");
    let report = lab.json(&out);
    let error = host(&report, "worker-4")["error"].as_str().unwrap_or_default().to_string();
    assert!(error.starts_with("worker-4: "), "{error}");
    assert!(error.contains("10.78.0.104:22"), "the reason names the address: {error}");
    for h in lab.inventory.hosts.iter().filter(|h| h.name != "worker-4") {
        assert!(host(&report, &h.name)["facts"].is_object(), "{} must succeed: {}", h.name, host(&report, &h.name));
    }
    assert!(took < Duration::from_secs(40), "bounded by the per-host deadline and retries: {took:?}");
}

#[test]
fn the_agent_is_uploaded_once_and_only_when_it_differs() {
    let lab = Lab::require();
    let facts = || {
        let out = lab.groundwork(&["facts", "-i", "inventory/lab.yaml", "-o", "json"]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        lab.json(&out)
    };
    let uploaded = |r: &serde_json::Value, name: &str| host(r, name)["agent_uploaded"].as_bool().unwrap();
    facts();
    // A node whose agent is gone, and one whose agent was tampered with, get it again.
    assert!(
        lab.docker(&["exec", &lab.container("worker-3"), "rm", "-f", "/var/lib/groundwork/bin/groundwork-agent"])
            .status
            .success()
    );
    assert!(
        lab.docker(&[
            "exec",
            &lab.container("master-2"),
            "sh",
            "-c",
            "echo tampered >> /var/lib/groundwork/bin/groundwork-agent"
        ])
        .status
        .success()
    );
    let second = facts();
    assert!(uploaded(&second, "worker-3") && uploaded(&second, "master-2"));
    assert!(!uploaded(&second, "worker-1") && !uploaded(&second, "bastion"));
    let third = facts();
    for h in third["hosts"].as_array().unwrap() {
        assert_eq!(h["agent_uploaded"], false, "{}", h["name"]);
    }
    let leftovers =
        text(&lab.docker(&["exec", &lab.container("worker-3"), "ls", "-a", "/var/lib/groundwork/bin"]).stdout);
    assert_eq!(
        leftovers.split_whitespace().filter(|f| !f.starts_with('.') || f.len() > 2).collect::<Vec<_>>(),
        vec!["groundwork-agent"],
        "no temporary files left"
    );
}

/// What broke CI once: containers that outlived the state directory they were made from (a new
/// checkout, or `.lab/` removed) presented host keys that the new known_hosts did not hold.
#[test]
fn a_host_made_from_another_lab_state_is_replaced_and_trusted_again() {
    let lab = Lab::require();
    let name = "worker-4";
    let key_of = |lab: &Lab| {
        text(
            &lab.docker(&["exec", &lab.container(name), "cat", "/etc/ssh/gwlab-hostkeys/ssh_host_ed25519_key.pub"])
                .stdout,
        )
    };
    let old_key = key_of(&lab);
    std::fs::remove_dir_all(lab.state.join("hostkeys").join(name)).expect("remove the host's identity from the state");

    let out = lab.script(&["up"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let said = text(&out.stdout);
    assert!(said.contains(&format!("removed gwlab-{name}: it was made from another lab state")), "{said}");
    assert!(said.contains(&format!("container gwlab-{name}")), "{said}");
    assert_ne!(key_of(&lab), old_key, "the host has the new identity");

    // OpenSSH with strict checking against the rewritten known_hosts, and groundwork too.
    let out = lab.ssh(name, "hostname");
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).trim(), name);
    let out = lab.groundwork(&["facts", "-i", "inventory/lab.yaml", "-o", "json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let again = lab.script(&["up"]);
    assert!(text(&again.stdout).contains("lab up: nothing to change"), "{}", text(&again.stdout));
}
