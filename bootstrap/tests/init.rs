//! `groundwork init` as an operator uses it: from flags, and answering its questions on a real
//! terminal (a pty from util-linux's `script`); what it writes validates, and it never replaces a file.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

fn groundwork(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_groundwork")).args(args).stdin(Stdio::null()).output().expect("groundwork runs")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn validates(path: &Path) {
    let out = groundwork(&["validate", "-i", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}{}", text(&out.stdout), text(&out.stderr));
}

#[test]
fn from_flags_it_writes_an_inventory_that_validates_and_never_replaces_one() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("site.yaml");
    let p = path.to_str().unwrap();
    let out = groundwork(&[
        "init",
        "-i",
        p,
        "--name",
        "sdc-1",
        "--bastion",
        "bastion.example.org:2222",
        "--masters",
        "172.16.10.11,172.16.10.12,172.16.10.13",
        "--workers",
        "172.16.10.21,172.16.10.22,172.16.10.23,172.16.10.24",
        "--storage",
        "172.16.10.31",
        "--database",
        "172.16.10.41",
        "--user",
        "deploy",
        "--key",
        "keys/id_ed25519",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    validates(&path);
    let written = std::fs::read_to_string(&path).unwrap();
    for want in ["name: sdc-1", "port: 2222", "nodeNetwork: 172.16.10.0/24", "sudo: true", "roles: [database]"] {
        assert!(written.contains(want), "no `{want}` in:\n{written}");
    }
    let loaded = groundwork::inventory::load_checking(&path, groundwork::inventory::LocalFiles::Reported).unwrap();
    assert_eq!(loaded.inventory.hosts.len(), 9);

    // Never replaced, and the refusal says so.
    let out = groundwork(&["init", "-i", p, "--no-bastion", "--masters", "10.0.0.1", "--workers", "10.0.0.2"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("never replaces a file"), "{}", text(&out.stderr));
    assert_eq!(std::fs::read_to_string(&path).unwrap(), written);

    // Without a terminal, what only the operator knows must come as flags.
    let other = dir.path().join("other.yaml");
    let out = groundwork(&["init", "-i", other.to_str().unwrap(), "--no-bastion"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("--masters is needed"), "{}", text(&out.stderr));
    assert!(!other.exists(), "a refused init wrote a file");
}

#[test]
fn on_a_terminal_it_asks_for_what_the_flags_leave_out() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("asked.yaml");
    let command = format!("{} init -i {}", env!("CARGO_BIN_EXE_groundwork"), path.display());
    let mut child = Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("util-linux script runs");
    // Name, bastion, masters, workers, storage (none), database, SSH user.
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"asked\n10.20.0.2\n10.20.0.11\n10.20.0.21, 10.20.0.22\n\n10.20.0.41\nops\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let said = text(&out.stdout);
    assert!(out.status.success(), "{said}{}", text(&out.stderr));
    for question in ["Cluster name [digit]", "Bastion address", "Masters' addresses", "SSH user [root]"] {
        assert!(said.contains(question), "not asked `{question}`: {said}");
    }
    validates(&path);
    let written = std::fs::read_to_string(&path).unwrap();
    for want in [
        "name: asked",
        "address: 10.20.0.2",
        "{name: worker-2, address: 10.20.0.22, roles: [worker]}",
        "user: ops",
        "roles: [database]",
    ] {
        assert!(written.contains(want), "no `{want}` in:\n{written}");
    }
    assert!(!written.contains("roles: [storage]"), "{written}");
}
