//! groundwork's own transport against the lab: through the bastion with russh, host keys verified,
//! the agent uploaded and run, facts that match what the lab knows, `check` and its report.
//! These tests never change the lab; each uses its own copy of the inventory and known_hosts.

use groundwork_lab_tests::{Lab, host, text};

#[test]
fn facts_match_what_the_lab_knows() {
    let lab = Lab::require();
    let out = lab.groundwork(&["facts", "-i", "inventory/lab.yaml", "-o", "json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let report = lab.json(&out);
    assert_eq!(
        report["hosts"].as_array().map(Vec::len),
        Some(lab.inventory.hosts.len() + 1),
        "every host and the bastion"
    );
    assert_eq!(host(&report, "bastion")["roles"][0], "bastion");
    for h in &lab.inventory.hosts {
        let r = host(&report, &h.name);
        let f = &r["facts"];
        assert_eq!(f["hostname"], h.name.as_str(), "{}", h.name);
        let addresses: Vec<&str> = f["interfaces"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|i| i["addresses"].as_array().unwrap().iter().filter_map(|a| a.as_str()))
            .collect();
        assert!(addresses.iter().any(|a| a.starts_with(&format!("{}/", h.address))), "{}: {addresses:?}", h.name);
        let nproc = text(&lab.docker(&["exec", &lab.container(&h.name), "nproc"]).stdout);
        assert_eq!(f["cpu"]["count"].as_u64().unwrap().to_string(), nproc.trim(), "{}", h.name);
        let machine_id = text(&lab.docker(&["exec", &lab.container(&h.name), "cat", "/etc/machine-id"]).stdout);
        assert_eq!(f["machine_id"], machine_id.trim(), "{}", h.name);
        assert!(f["memory"]["total_bytes"].as_u64().unwrap() > 1 << 30);
        assert_eq!(f["os"]["id"], "debian");
    }
}

#[test]
fn check_passes_on_the_lab_with_the_lab_profile_shown() {
    let lab = Lab::require();
    let out = lab.groundwork(&["check", "-i", "inventory/lab.yaml"]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", text(&out.stderr));
    assert!(stdout.contains("baseline profile `lab` is in force"), "{stdout}");
    assert!(stdout.contains("check passed: 10 hosts"), "{stdout}");
}

#[test]
fn check_fails_readably_when_a_baseline_exceeds_the_hosts_memory() {
    let lab = Lab::require();
    let dir = lab.scratch("big-baseline");
    let inv = lab.inventory_copy(&dir, |t| {
        t.replace(
            "baselines:\n  profile: lab\n",
            "baselines:\n  profile: lab\n  overrides:\n    worker: {minMemory: 512Gi}\n",
        )
    });
    let out = lab.groundwork(&["check", "-i", inv.to_str().unwrap()]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    for w in ["worker-1", "worker-2", "worker-3", "worker-4"] {
        let row = stdout.lines().find(|l| l.starts_with(&format!("{w} (worker)")) && l.contains(" memory "));
        let row = row.unwrap_or_else(|| panic!("no memory row for {w}:\n{stdout}"));
        assert!(row.contains("FAIL") && row.contains("512Gi"), "{row}");
    }
    assert!(stdout.contains("worker   512Gi RAM"), "the override is printed: {stdout}");
    assert!(
        stdout.contains("check FAILED: 4 failure(s) on 4 host(s) (worker-1, worker-2, worker-3, worker-4)"),
        "{stdout}"
    );
    assert!(
        stdout.lines().any(|l| l.starts_with("master-1 (master)") && l.contains(" memory ") && l.contains("pass")),
        "{stdout}"
    );
}

/// Replaces the key recorded for `address` in the copy's known_hosts with `line`'s key (or drops it).
fn rewrite_known_hosts(dir: &std::path::Path, address: &str, replacement: Option<&str>) {
    let path = dir.join("known_hosts");
    let text = std::fs::read_to_string(&path).unwrap();
    let kept: Vec<String> = text
        .lines()
        .filter_map(|l| {
            if l.split(' ').next() == Some(address) {
                replacement.map(|key| format!("{address} {key}"))
            } else {
                Some(l.to_string())
            }
        })
        .collect();
    std::fs::write(&path, kept.join("\n") + "\n").unwrap();
}

#[test]
fn a_changed_host_key_is_refused_even_with_accept_new() {
    let lab = Lab::require();
    let dir = lab.scratch("changed-key");
    let inv = lab.inventory_copy(&dir, |t| t);
    // Another valid ed25519 key recorded for worker-2: what a man in the middle would present.
    let impostor = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAILM+rvN+ot98qgEN796jTiQfszSaVFn5R1GsBtr6uvUB";
    rewrite_known_hosts(&dir, "10.78.0.102", Some(impostor));
    let before = std::fs::read_to_string(dir.join("known_hosts")).unwrap();
    for extra in [&[][..], &["--accept-new"][..]] {
        let mut args = vec!["facts", "-i", inv.to_str().unwrap(), "-o", "json"];
        args.extend_from_slice(extra);
        let out = lab.groundwork(&args);
        assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
        let report = lab.json(&out);
        let error = host(&report, "worker-2")["error"].as_str().unwrap_or_default().to_string();
        assert!(error.contains("HOST KEY CHANGED for worker-2 (10.78.0.102)"), "{error}");
        assert!(error.contains("ssh-keygen -R"), "{error}");
        assert!(host(&report, "worker-1")["facts"].is_object(), "the others go on: {}", host(&report, "worker-1"));
    }
    assert_eq!(before, std::fs::read_to_string(dir.join("known_hosts")).unwrap(), "a changed key is never recorded");
}

#[test]
fn an_unknown_host_key_is_refused_with_its_fingerprint_then_accepted_on_request() {
    let lab = Lab::require();
    let dir = lab.scratch("unknown-key");
    let inv = lab.inventory_copy(&dir, |t| t);
    rewrite_known_hosts(&dir, "10.78.0.101", None);
    let fingerprint = text(
        &std::process::Command::new("ssh-keygen")
            .args(["-lf"])
            .arg(lab.state.join("hostkeys/worker-1/ssh_host_ed25519_key.pub"))
            .output()
            .unwrap()
            .stdout,
    );
    let fingerprint = fingerprint.split_whitespace().nth(1).unwrap().to_string();

    let out = lab.groundwork(&["facts", "-i", inv.to_str().unwrap(), "-o", "json"]);
    assert_eq!(out.status.code(), Some(1));
    let error = host(&lab.json(&out), "worker-1")["error"].as_str().unwrap_or_default().to_string();
    assert!(
        error.contains(&format!("host key of worker-1 (10.78.0.101) is not known: ssh-ed25519 {fingerprint}")),
        "{error}"
    );
    assert!(error.contains("--accept-new"), "{error}");

    let out = lab.groundwork(&["facts", "-i", inv.to_str().unwrap(), "-o", "json", "--accept-new"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = lab.groundwork(&["facts", "-i", inv.to_str().unwrap(), "-o", "json"]);
    assert!(out.status.success(), "recorded: {}", text(&out.stderr));
    let known = std::fs::read_to_string(dir.join("known_hosts")).unwrap();
    assert_eq!(known.lines().filter(|l| l.starts_with("10.78.0.101 ")).count(), 1, "{known}");
}

#[test]
fn an_unknown_bastion_is_refused_before_any_host_is_touched() {
    let lab = Lab::require();
    let dir = lab.scratch("unknown-bastion");
    let inv = lab.inventory_copy(&dir, |t| t);
    rewrite_known_hosts(&dir, "[127.0.0.1]:2222", None);
    let out = lab.groundwork(&["facts", "-i", inv.to_str().unwrap()]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("cannot reach the bastion: host key of bastion ([127.0.0.1]:2222) is not known"),
        "{stderr}"
    );
}

fn sudo_inventory(lab: &Lab, name: &str, password_file: &str) -> std::path::PathBuf {
    let dir = lab.scratch(name);
    std::fs::write(
        dir.join("sudo-password"),
        std::fs::read(password_file).unwrap_or_else(|_| password_file.as_bytes().to_vec()),
    )
    .unwrap();
    lab.inventory_copy(&dir, |t| {
        t.replace(
            "ssh:\n  user: root\n",
            &format!(
                "ssh:\n  user: ops\n  sudo: true\n  sudoPassword: {{file: {}}}\n",
                dir.join("sudo-password").display()
            ),
        )
    })
}

#[test]
fn a_sudo_user_gets_root_and_its_password_never_shows() {
    let lab = Lab::require();
    let password_file = lab.state.join("secrets/ops-sudo-password");
    let password = std::fs::read_to_string(&password_file).unwrap().trim().to_string();
    let inv = sudo_inventory(&lab, "sudo", password_file.to_str().unwrap());
    let out = std::process::Command::new(lab.groundwork_bin())
        .args(["facts", "-vv", "-o", "json", "-i"])
        .arg(&inv)
        .env("RUST_LOG", "trace")
        .output()
        .unwrap();
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.len() > 1000, "trace logging was on");
    // russh's own debug and trace events (they can carry channel data) are capped at info.
    let russh_debug: Vec<&str> =
        stderr.lines().filter(|l| (l.contains("DEBUG") || l.contains("TRACE")) && l.contains("russh")).collect();
    assert!(russh_debug.is_empty(), "russh logged below info: {:?}", &russh_debug[..russh_debug.len().min(3)]);
    assert!(!stdout.contains(&password) && !stderr.contains(&password), "the sudo password leaked into the output");
    let report = lab.json(&out);
    // product_uuid aside, /etc/machine-id is world-readable; the agent's own path is root's:
    // the agent ran from /var/lib/groundwork/bin, which only root can write.
    assert!(host(&report, "master-1")["facts"].is_object(), "{stdout}");

    // The same session really is root through sudo.
    let loaded = groundwork::inventory::load(&inv).unwrap();
    let target = groundwork::transport::target::hosts(&loaded).into_iter().find(|t| t.name == "worker-1").unwrap();
    let bastion = groundwork::transport::target::bastion(&loaded);
    let opts = groundwork::ops::facts::transport_options(&loaded, false);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (user, root) = rt.block_on(async {
        let t = groundwork::transport::Transport::connect(bastion.as_ref(), &[], opts).await.unwrap();
        let s = t.open(&target).await.unwrap();
        assert!(matches!(s.privilege(), groundwork::transport::Privilege::SudoWithPassword(_)));
        let user = s.exec("id -un", None).await.unwrap().stdout_text();
        let root = s.exec_privileged("id -un", None).await.unwrap().stdout_text();
        (user, root)
    });
    assert_eq!((user.trim(), root.trim()), ("ops", "root"));
}

#[test]
fn a_wrong_sudo_password_is_a_clear_error() {
    let lab = Lab::require();
    let inv = sudo_inventory(&lab, "sudo-wrong", "not-the-password\n");
    let out = lab.groundwork(&["facts", "-o", "json", "-i", inv.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let error = host(&lab.json(&out), "worker-1")["error"].as_str().unwrap_or_default().to_string();
    assert!(error.contains("worker-1: sudo refused the password for user ops"), "{error}");
    assert!(!text(&out.stdout).contains("not-the-password") && !text(&out.stderr).contains("not-the-password"));
}

fn facts_ok(lab: &Lab, inv: &std::path::Path, envs: &[(&str, &str)]) -> (serde_json::Value, String) {
    let mut cmd = std::process::Command::new(lab.groundwork_bin());
    cmd.args(["facts", "-o", "json", "-i"]).arg(inv);
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "{all}");
    (lab.json(&out), all)
}

#[test]
fn a_pem_key_works() {
    let lab = Lab::require();
    let dir = lab.scratch("pem");
    let key = lab.state.join("ssh/id_rsa_pem");
    assert!(std::fs::read_to_string(&key).unwrap().starts_with("-----BEGIN RSA PRIVATE KEY-----"), "PEM format");
    let inv = lab.inventory_copy(&dir, |t| {
        t.replace(&format!("{}/ssh/id_ed25519", lab.state.display()), &key.display().to_string())
    });
    let (report, _) = facts_ok(&lab, &inv, &[]);
    assert!(host(&report, "database-1")["facts"].is_object());
}

#[test]
fn an_encrypted_key_takes_its_passphrase_from_the_environment_and_never_shows_it() {
    let lab = Lab::require();
    let dir = lab.scratch("encrypted");
    let key = dir.join("id_encrypted");
    std::fs::copy(lab.state.join("ssh/id_ed25519"), &key).unwrap();
    let passphrase = "grape-ladder-4417";
    let status =
        std::process::Command::new("ssh-keygen").args(["-q", "-p", "-N", passphrase, "-f"]).arg(&key).status().unwrap();
    assert!(status.success());
    let inv = lab.inventory_copy(&dir, |t| {
        t.replace(
            &format!("  keyFile: {}/ssh/id_ed25519\n", lab.state.display()),
            &format!("  keyFile: {}\n  keyPassphrase: {{env: GW_TEST_PASSPHRASE}}\n", key.display()),
        )
    });
    let (report, all) = facts_ok(&lab, &inv, &[("GW_TEST_PASSPHRASE", passphrase), ("RUST_LOG", "trace")]);
    assert!(host(&report, "worker-2")["facts"].is_object());
    assert!(!all.contains(passphrase), "the passphrase leaked");

    // Without it, and with no terminal to ask on, the error says what to set.
    let out = std::process::Command::new(lab.groundwork_bin())
        .args(["facts", "-i"])
        .arg(&inv)
        .env_remove("GW_TEST_PASSPHRASE")
        .output()
        .unwrap();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr.contains("GW_TEST_PASSPHRASE is not set"), "{stderr}");
}

#[test]
fn the_ssh_agent_logs_in_when_there_is_no_key_file() {
    let lab = Lab::require();
    let dir = lab.scratch("agent");
    let sock = dir.join("agent.sock");
    let agent = std::process::Command::new("ssh-agent").arg("-D").arg("-a").arg(&sock).spawn().expect("ssh-agent");
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let _agent = Kill(agent);
    for _ in 0..50 {
        if sock.exists() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let added = std::process::Command::new("ssh-add")
        .arg(lab.state.join("ssh/id_ed25519"))
        .env("SSH_AUTH_SOCK", &sock)
        .output()
        .unwrap();
    assert!(added.status.success(), "{}", text(&added.stderr));
    let inv = lab.inventory_copy(&dir, |t| {
        t.replace(&format!("  keyFile: {}/ssh/id_ed25519\n", lab.state.display()), "  useAgent: true\n")
    });
    assert!(!std::fs::read_to_string(&inv).unwrap().contains("keyFile"));
    let (report, _) = facts_ok(&lab, &inv, &[("SSH_AUTH_SOCK", sock.to_str().unwrap())]);
    assert!(host(&report, "master-3")["facts"].is_object());
}

#[test]
fn without_a_bastion_hosts_are_reached_directly() {
    // The only lab machine this host can reach directly is the bastion itself: an inventory with
    // no bastion section whose one host is the bastion exercises the direct path.
    let lab = Lab::require();
    let dir = lab.scratch("direct");
    std::fs::copy(lab.state.join("known_hosts"), dir.join("known_hosts")).unwrap();
    let inv = dir.join("inventory.yaml");
    std::fs::write(
        &inv,
        format!(
            "apiVersion: groundwork/v1alpha1\nkind: Cluster\ncluster: {{name: direct}}\n\
             ssh: {{keyFile: {}/ssh/id_ed25519, knownHosts: known_hosts}}\n\
             hosts:\n  - {{name: bastion, address: 127.0.0.1, roles: [master], ssh: {{port: 2222}}}}\n\
             baselines: {{profile: lab}}\n",
            lab.state.display()
        ),
    )
    .unwrap();
    let out = lab.groundwork(&["facts", "-o", "json", "-i", inv.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let report = lab.json(&out);
    assert_eq!(report["hosts"].as_array().unwrap().len(), 1);
    assert_eq!(host(&report, "bastion")["facts"]["hostname"], "bastion");
}
