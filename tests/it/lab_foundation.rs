//! The lab itself, from outside: every host answers through the bastion and only through it,
//! internal hosts install packages through the bastion's proxy, and `up` is idempotent.

use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use groundwork_lab_tests::{Lab, file_digest, text};

#[test]
fn every_host_answers_through_the_bastion_with_its_own_name() {
    let lab = Lab::require();
    assert!(lab.inventory.hosts.len() >= 9, "3 masters, >=4 workers, storage, database");
    for host in &lab.inventory.hosts {
        let out = lab.ssh(&host.name, "hostname; cat /etc/machine-id");
        assert!(out.status.success(), "{}: {}", host.name, text(&out.stderr));
        let stdout = text(&out.stdout);
        let mut lines = stdout.lines();
        assert_eq!(lines.next(), Some(host.name.as_str()));
        assert_eq!(lines.next().map(str::len), Some(32), "{}: a machine-id of its own", host.name);
    }
}

#[test]
fn machine_ids_are_unique() {
    let lab = Lab::require();
    let mut ids: Vec<String> = lab
        .inventory
        .hosts
        .iter()
        .map(|h| text(&lab.ssh(&h.name, "cat /etc/machine-id").stdout).trim().to_string())
        .collect();
    let n = ids.len();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), n, "every host needs its own machine-id");
}

#[test]
fn hosts_are_not_reachable_directly_from_this_machine() {
    let lab = Lab::require();
    for host in &lab.inventory.hosts {
        let addr: SocketAddr = format!("{}:22", host.address).parse().expect("lab addresses are IPs");
        let result = TcpStream::connect_timeout(&addr, Duration::from_secs(2));
        assert!(result.is_err(), "{} ({addr}) must only be reachable through the bastion", host.name);
    }
    // ... while the bastion is, on loopback only.
    let bastion = lab.inventory.bastion.as_ref().expect("the lab has a bastion");
    let addr: SocketAddr = format!("{}:{}", bastion.address, bastion.port).parse().unwrap();
    TcpStream::connect_timeout(&addr, Duration::from_secs(2)).expect("bastion answers on loopback");
    let published = text(&lab.docker(&["port", &lab.container("bastion"), "22/tcp"]).stdout);
    assert_eq!(published.trim(), format!("127.0.0.1:{}", bastion.port), "published on loopback only");
}

#[test]
fn internal_hosts_have_no_route_out() {
    // Docker gives every host a default route to the segment's first address, but on an internal
    // network nothing holds that address: no router, so nothing leaves the segment. Checked by
    // asking for the gateway on the segment itself, never by sending anything off the machine.
    let lab = Lab::require();
    let internal = text(&lab.docker(&["network", "inspect", "-f", "{{.Internal}}", "gwlab-int"]).stdout);
    assert_eq!(internal.trim(), "true");
    let out = lab.ssh(
        "worker-1",
        "gw=$(ip -4 route show default | awk '{print $3}'); echo \"gateway=$gw\"; \
         ping -c 2 -W 1 \"$gw\" >/dev/null 2>&1 && echo answers || echo silent",
    );
    let stdout = text(&out.stdout);
    assert!(stdout.starts_with("gateway=10.78.0."), "{stdout}");
    assert!(stdout.ends_with("silent\n"), "the default gateway must not exist: {stdout}");
}

#[test]
fn apt_on_an_internal_host_works_through_the_bastion_proxy() {
    let lab = Lab::require();
    let proxy = groundwork_lab_tests::LAB_APT_PROXY;
    // Download (not install) a package, so the host stays as fresh as it was.
    let cmd = format!(
        "set -e; cd /tmp; apt-get -q -o Acquire::http::Proxy={proxy} update >/dev/null; \
         rm -f hello_*.deb; apt-get -q -o Acquire::http::Proxy={proxy} download hello >/dev/null; \
         dpkg-deb -f hello_*.deb Package; rm -f hello_*.deb; dpkg -s hello >/dev/null 2>&1 && echo installed || echo not-installed"
    );
    let out = lab.ssh("worker-1", &cmd);
    assert!(out.status.success(), "apt through {proxy}: {}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "hello\nnot-installed\n");
}

#[test]
fn second_up_changes_nothing() {
    let lab = Lab::require();
    let snapshot = || {
        let ids = text(&lab.docker(&["ps", "-aq", "--no-trunc", "--filter", "label=io.groundwork.lab=gwlab"]).stdout);
        let mut ids: Vec<&str> = ids.lines().collect();
        ids.sort();
        let started: Vec<String> =
            ids.iter().map(|id| text(&lab.docker(&["inspect", "-f", "{{.State.StartedAt}}", id]).stdout)).collect();
        let files: Vec<Vec<u8>> = ["known_hosts", "ssh_config"]
            .iter()
            .map(|f| file_digest(&lab.state.join(f)))
            .chain([file_digest(&lab.inventory_path)])
            .collect();
        (ids.join(","), started, files)
    };
    let before = snapshot();
    let out = lab.script(&["up"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("lab up: nothing to change"), "{}", text(&out.stdout));
    assert_eq!(before, snapshot(), "containers, boot times and generated files are unchanged");
}

#[test]
fn known_hosts_holds_the_keys_the_hosts_present() {
    let lab = Lab::require();
    let known = std::fs::read_to_string(lab.state.join("known_hosts")).unwrap();
    for host in &lab.inventory.hosts {
        let out = lab.docker(&[
            "exec",
            &lab.container(&host.name),
            "cat",
            "/etc/ssh/gwlab-hostkeys/ssh_host_ed25519_key.pub",
        ]);
        let key: Vec<&str> = std::str::from_utf8(&out.stdout).unwrap().split_whitespace().take(2).collect();
        let line = format!("{} {}", host.address, key.join(" "));
        assert!(known.lines().any(|l| l == line), "known_hosts lacks {line}");
    }
}
