//! Day 2 on the cluster the apply test built: `etcd backup` and `etcd restore` (a ConfigMap
//! deleted after the backup is back after the restore, one made after it is gone, every node
//! Ready, three started members), a damaged snapshot refused before anything changes, and
//! `kubeconfig --user` (a view user lists pods and cannot delete them; revoked, it lists nothing).
//!
//! Checked from outside groundwork: kubectl on master-1 with its own admin.conf, `sha256sum`, the
//! bundle's own etcdutl run here on the copied snapshot, etcdctl on the masters, and the user's
//! kubeconfig used by kubectl on a worker.

use groundwork_lab_tests::{Lab, text};

const MASTERS: [&str; 3] = ["master-1", "master-2", "master-3"];

fn kubectl(lab: &Lab, args: &str) -> std::process::Output {
    lab.sh_in("master-1", &format!("kubectl --kubeconfig /etc/kubernetes/admin.conf {args}"))
}

fn ok(out: std::process::Output, what: &str) -> String {
    assert!(out.status.success(), "{what}: {}\n{}", text(&out.stdout), text(&out.stderr));
    text(&out.stdout)
}

fn run(lab: &Lab, args: &[&str]) -> serde_json::Value {
    let out = lab.groundwork(args);
    assert!(out.status.success(), "groundwork {args:?}: {}\n{}", text(&out.stdout), text(&out.stderr));
    lab.json(&out)
}

#[test]
fn etcd_backup_and_restore_bring_the_cluster_back_to_the_snapshot() {
    let lab = Lab::require();
    let inv = lab.inventory_path.display().to_string();
    let dir = lab.scratch("etcd-backup");
    let dir_arg = dir.display().to_string();
    let _ = kubectl(&lab, "delete configmap gw-drill gw-after --ignore-not-found");
    let stamp = format!("{}", std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos());
    ok(kubectl(&lab, &format!("create configmap gw-drill --from-literal=stamp={stamp}")), "create gw-drill");

    // Two backups with --keep 1: one snapshot is left, and it is whole.
    run(&lab, &["etcd", "backup", "-i", &inv, "--dir", &dir_arg, "--keep", "1", "-o", "json"]);
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let backup = run(&lab, &["etcd", "backup", "-i", &inv, "--dir", &dir_arg, "--keep", "1", "-o", "json"]);
    assert_eq!(backup["removed"].as_array().map(Vec::len), Some(1), "{backup}");
    let snapshot = std::path::PathBuf::from(backup["file"].as_str().unwrap());
    let snapshots: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".db"))
        .collect();
    assert_eq!(snapshots.len(), 1, "{snapshots:?}");
    let sum = ok(std::process::Command::new("sha256sum").arg(&snapshot).output().unwrap(), "sha256sum of the snapshot");
    assert_eq!(sum.split_whitespace().next(), backup["info"]["sha256"].as_str(), "{backup}");
    let sums_file = std::fs::read_to_string(format!("{}.sha256", snapshot.display())).unwrap();
    assert_eq!(sums_file.split_whitespace().next(), backup["info"]["sha256"].as_str());
    let mode = std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&snapshot).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600, "the snapshot holds every Secret");
    let status = ok(
        std::process::Command::new(lab.state.join("bundle/bin/etcdutl"))
            .args(["snapshot", "status", "-w", "json"])
            .arg(&snapshot)
            .output()
            .unwrap(),
        "etcdutl snapshot status here",
    );
    let status: serde_json::Value = serde_json::from_str(status.trim()).unwrap();
    assert_eq!(status["revision"], backup["info"]["status"]["revision"]);
    for m in MASTERS {
        let left = lab.sh_in(m, "ls /var/lib/groundwork/etcd-backup 2>/dev/null");
        assert_eq!(text(&left.stdout).trim(), "", "{m} keeps a copy of the snapshot");
    }

    // After the backup: gw-drill deleted, gw-after made.
    ok(kubectl(&lab, "delete configmap gw-drill"), "delete gw-drill");
    ok(kubectl(&lab, "create configmap gw-after --from-literal=x=1"), "create gw-after");

    // A damaged copy (its checksum file says otherwise) is refused before anything changes.
    let damaged = dir.join("damaged.db");
    let mut bytes = std::fs::read(&snapshot).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&damaged, &bytes).unwrap();
    std::fs::copy(format!("{}.sha256", snapshot.display()), format!("{}.sha256", damaged.display())).unwrap();
    let refused =
        lab.groundwork(&["etcd", "restore", "-i", &inv, "--snapshot", &damaged.display().to_string(), "--yes"]);
    assert!(!refused.status.success());
    assert!(text(&refused.stderr).contains("does not match its checksum file"), "{}", text(&refused.stderr));
    ok(kubectl(&lab, "get configmap gw-after"), "the cluster is untouched after the refusal");

    // Without --yes and without a terminal: refused, nothing changed.
    let unconfirmed = lab.groundwork(&["etcd", "restore", "-i", &inv, "--snapshot", &snapshot.display().to_string()]);
    assert!(!unconfirmed.status.success());
    assert!(text(&unconfirmed.stderr).contains("pass --yes"), "{}", text(&unconfirmed.stderr));

    let restored = run(
        &lab,
        &["etcd", "restore", "-i", &inv, "--snapshot", &snapshot.display().to_string(), "--yes", "-o", "json"],
    );
    println!("restore took {} ms", restored["took_ms"]);
    let drill = ok(kubectl(&lab, "get configmap gw-drill -o jsonpath={.data.stamp}"), "gw-drill after the restore");
    assert_eq!(drill.trim(), stamp, "the ConfigMap deleted after the backup is back, with its data");
    let after = kubectl(&lab, "get configmap gw-after");
    assert!(!after.status.success(), "the ConfigMap made after the backup is gone: {}", text(&after.stdout));

    let nodes = ok(kubectl(&lab, "get nodes --no-headers"), "nodes");
    let expected = lab
        .inventory
        .hosts
        .iter()
        .filter(|h| h.roles.iter().any(|r| matches!(r.as_str(), "master" | "worker")))
        .count();
    let ready = nodes.lines().filter(|l| l.split_whitespace().nth(1) == Some("Ready")).count();
    assert_eq!(ready, expected, "every node Ready after the restore:\n{nodes}");
    let members = ok(
        lab.sh_in(
            "master-2",
            "ETCDCTL_API=3 etcdctl --endpoints=https://127.0.0.1:2379 --cacert=/etc/kubernetes/pki/etcd/ca.crt \
             --cert=/etc/kubernetes/pki/apiserver-etcd-client.crt --key=/etc/kubernetes/pki/apiserver-etcd-client.key \
             endpoint health --cluster",
        ),
        "etcd health",
    );
    assert_eq!(members.matches("is healthy").count(), 3, "{members}");
    let token = restored["cluster_token"].as_str().unwrap();
    for m in MASTERS {
        let kept = lab.sh_in(m, "ls -d /var/lib/etcd.before-restore-* && ls /var/lib/groundwork/etcd-restore 2>/dev/null; ls /etc/kubernetes/manifests");
        let listing = text(&kept.stdout);
        assert!(listing.contains("/var/lib/etcd.before-restore-"), "{m} keeps its old data: {listing}");
        assert!(listing.contains("kube-apiserver.yaml"), "{m}'s API server is back: {listing}");
        assert!(!listing.contains("done-"), "{m}: restore leftovers: {listing}");
    }
    assert!(token.starts_with("gwlab-restore-"), "{token}");
    ok(kubectl(&lab, "delete configmap gw-drill"), "clean up");
}

#[test]
fn a_view_user_lists_pods_cannot_delete_them_and_revoked_lists_nothing() {
    let lab = Lab::require();
    let inv = lab.inventory_path.display().to_string();
    let dir = lab.scratch("users");
    let out = dir.join("viewer.kubeconfig");
    let issued = run(
        &lab,
        &[
            "kubeconfig",
            "-i",
            &inv,
            "--user",
            "viewer@egov.org",
            "--group",
            "auditors",
            "--role",
            "view",
            "--out",
            &out.display().to_string(),
            "-o",
            "json",
        ],
    );
    assert_eq!(issued["binding"], "ClusterRoleBinding groundwork:user:viewer@egov.org");
    let mode = std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&out).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600);
    let config = std::fs::read_to_string(&out).unwrap();
    let put = lab.docker_with_stdin(
        &["exec", "-i", &lab.container("worker-1"), "sh", "-c", "umask 077; cat > /root/viewer.kubeconfig"],
        &config,
    );
    assert!(put.status.success());
    let as_viewer = |args: &str| lab.sh_in("worker-1", &format!("kubectl --kubeconfig /root/viewer.kubeconfig {args}"));

    let whoami = ok(as_viewer("auth whoami -o json"), "whoami");
    let whoami: serde_json::Value = serde_json::from_str(&whoami).unwrap();
    assert_eq!(whoami["status"]["userInfo"]["username"], "viewer@egov.org");
    let groups = whoami["status"]["userInfo"]["groups"].to_string();
    assert!(groups.contains("auditors"), "{groups}");

    let pods = ok(as_viewer("get pods -n kube-system -o name"), "a viewer lists pods");
    let pod = pods.lines().next().expect("kube-system has pods").trim().to_string();
    let delete = as_viewer(&format!("delete -n kube-system {pod} --wait=false"));
    assert!(!delete.status.success(), "a viewer deleted {pod}");
    assert!(text(&delete.stderr).contains("forbidden"), "{}", text(&delete.stderr));
    let secrets = as_viewer("get secrets -n kube-system");
    assert!(!secrets.status.success(), "view does not read Secrets");
    ok(kubectl(&lab, &format!("get -n kube-system {pod}")), "the pod is still there");

    let revoked = run(&lab, &["kubeconfig", "-i", &inv, "--user", "viewer@egov.org", "--revoke", "-o", "json"]);
    assert_eq!(revoked["deleted"], serde_json::json!(["ClusterRoleBinding groundwork:user:viewer@egov.org"]));
    let after = as_viewer("get pods -n kube-system");
    assert!(!after.status.success(), "revoked, the user still lists pods");
    assert!(text(&after.stderr).contains("forbidden"), "{}", text(&after.stderr));

    // A namespaced editor: a RoleBinding in that namespace only.
    ok(
        kubectl(
            &lab,
            "create namespace gw-team --dry-run=client -o yaml | kubectl --kubeconfig /etc/kubernetes/admin.conf apply -f -",
        ),
        "namespace",
    );
    let issued = run(
        &lab,
        &[
            "kubeconfig",
            "-i",
            &inv,
            "--user",
            "dev1",
            "--role",
            "edit",
            "--namespace",
            "gw-team",
            "--out",
            &dir.join("dev1").display().to_string(),
            "-o",
            "json",
        ],
    );
    assert_eq!(issued["binding"], "RoleBinding gw-team/groundwork:user:dev1");
    let can = ok(kubectl(&lab, "auth can-i create deployments -n gw-team --as dev1"), "can-i in gw-team");
    assert_eq!(can.trim(), "yes");
    let cannot = kubectl(&lab, "auth can-i create deployments -n default --as dev1");
    assert_eq!(text(&cannot.stdout).trim(), "no");
    let revoked = run(&lab, &["kubeconfig", "-i", &inv, "--user", "dev1", "--revoke", "-o", "json"]);
    assert_eq!(revoked["deleted"], serde_json::json!(["RoleBinding gw-team/groundwork:user:dev1"]));
    ok(kubectl(&lab, "delete namespace gw-team --wait=false"), "clean up");
}

/// (host, path) -> not_after, from `certs check -o json --all`.
fn expiries(lab: &Lab, extra: &[&str]) -> (bool, std::collections::BTreeMap<(String, String), i64>, serde_json::Value) {
    let inv = lab.inventory_path.display().to_string();
    let mut args = vec!["certs", "check", "-i", inv.as_str(), "-o", "json", "--all"];
    args.extend(extra);
    let out = lab.groundwork(&args);
    let report = lab.json(&out);
    let map = report["certificates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                (c["host"].as_str().unwrap().to_string(), c["path"].as_str().unwrap().to_string()),
                c["not_after"].as_i64().unwrap(),
            )
        })
        .collect();
    (out.status.success(), map, report)
}

#[test]
fn certs_check_lists_every_expiry_and_renew_moves_them_with_the_cluster_working() {
    let lab = Lab::require();
    let inv = lab.inventory_path.display().to_string();
    let (passed, before, report) = expiries(&lab, &[]);
    assert!(passed, "{report}");
    for (host, path) in [
        ("master-1", "/etc/kubernetes/pki/apiserver.crt"),
        ("master-1", "/etc/kubernetes/pki/etcd/server.crt"),
        ("master-2", "/etc/kubernetes/admin.conf"),
        ("worker-1", "/var/lib/kubelet/pki/kubelet-client-current.pem"),
        ("controller", "state pki/groundwork-admin.crt"),
        ("controller", "state pki/ca.crt"),
    ] {
        assert!(before.contains_key(&(host.to_string(), path.to_string())), "{host} {path} not listed: {report}");
    }
    // Checked independently: the expiry openssl reads on master-1 is the one reported.
    let openssl =
        lab.sh_in("master-1", "openssl x509 -noout -enddate -in /etc/kubernetes/pki/apiserver.crt -dateopt iso_8601");
    let openssl = text(&openssl.stdout);
    let reported = before[&("master-1".to_string(), "/etc/kubernetes/pki/apiserver.crt".to_string())];
    let date = std::process::Command::new("date")
        .args(["-u", "-d", &format!("@{reported}"), "+%Y-%m-%d %H:%M:%SZ"])
        .output()
        .unwrap();
    assert_eq!(openssl.trim(), format!("notAfter={}", text(&date.stdout).trim()));
    // Thresholds decide the verdict and the exit code: a 400-day warning warns, a 400-day floor fails.
    let (passed, _, warned) = expiries(&lab, &["--warn-days", "400"]);
    assert!(passed, "warnings alone exit 0");
    assert!(warned["certificates"].as_array().unwrap().iter().any(|c| c["health"] == "warn"));
    let (passed, _, failed) = expiries(&lab, &["--fail-days", "400"]);
    assert!(!passed, "a certificate under --fail-days must fail the check");
    assert!(failed["certificates"].as_array().unwrap().iter().any(|c| c["health"] == "fail"));

    std::thread::sleep(std::time::Duration::from_secs(2));
    let renewed = lab.groundwork(&["certs", "renew", "-i", &inv, "-o", "json"]);
    assert!(renewed.status.success(), "certs renew: {}\n{}", text(&renewed.stdout), text(&renewed.stderr));
    let renewed = lab.json(&renewed);
    assert_eq!(renewed["masters"].as_array().map(Vec::len), Some(3), "{renewed}");
    println!("certs renew took {} ms", renewed["took_ms"]);
    let (passed, after, report) = expiries(&lab, &[]);
    assert!(passed, "{report}");
    for (host, path) in [
        ("master-1", "/etc/kubernetes/pki/apiserver.crt"),
        ("master-3", "/etc/kubernetes/pki/apiserver-etcd-client.crt"),
        ("master-2", "/etc/kubernetes/pki/etcd/peer.crt"),
        ("master-2", "/etc/kubernetes/admin.conf"),
        ("controller", "state pki/groundwork-admin.crt"),
    ] {
        let key = (host.to_string(), path.to_string());
        assert!(after[&key] > before[&key], "{host} {path}: {} -> {}", before[&key], after[&key]);
    }
    let key = ("controller".to_string(), "state pki/ca.crt".to_string());
    assert_eq!(after[&key], before[&key], "the CA is not renewed");

    // The cluster works on its new certificates: nodes Ready, etcd healthy, the controller's new
    // admin certificate accepted (a backup goes through the API server's etcd and the API).
    let nodes = ok(kubectl(&lab, "get nodes --no-headers"), "nodes");
    assert_eq!(nodes.lines().filter(|l| l.split_whitespace().nth(1) == Some("Ready")).count(), 7, "{nodes}");
    let health = ok(
        lab.sh_in(
            "master-3",
            "ETCDCTL_API=3 etcdctl --endpoints=https://127.0.0.1:2379 --cacert=/etc/kubernetes/pki/etcd/ca.crt \
             --cert=/etc/kubernetes/pki/apiserver-etcd-client.crt --key=/etc/kubernetes/pki/apiserver-etcd-client.key \
             endpoint health --cluster",
        ),
        "etcd health",
    );
    assert_eq!(health.matches("is healthy").count(), 3, "{health}");
    let user = lab.groundwork(&[
        "kubeconfig",
        "-i",
        &inv,
        "--user",
        "after-renew",
        "--out",
        &lab.scratch("renew").join("k").display().to_string(),
    ]);
    assert!(user.status.success(), "the API with the renewed admin certificate: {}", text(&user.stderr));
    let _ = lab.groundwork(&["kubeconfig", "-i", &inv, "--user", "after-renew", "--revoke"]);
}

/// The masters' etcd backup timer (`cluster.etcdBackup` in the lab's inventory), and the plans of
/// `etcd restore`, `certs renew`, `reset` and `kubeconfig`: they name their steps and change nothing.
#[test]
fn the_masters_snapshot_etcd_on_a_timer_and_the_day2_plans_change_nothing() {
    let lab = Lab::require();
    let inv = lab.inventory_path.display().to_string();
    for m in MASTERS {
        let timer = lab.sh_in(
            m,
            "systemctl is-enabled groundwork-etcd-backup.timer && systemctl is-active groundwork-etcd-backup.timer",
        );
        assert_eq!(text(&timer.stdout).split_whitespace().collect::<Vec<_>>(), ["enabled", "active"], "{m}");
    }
    // The timer's service, run now: a snapshot with its checksum, as `etcd backup` writes them.
    let dir = "/var/backups/groundwork-etcd";
    ok(lab.sh_in("master-2", "systemctl start groundwork-etcd-backup.service"), "the backup service");
    let listing = ok(
        lab.sh_in(
            "master-2",
            &format!("stat -c %a {dir} && cd {dir} && sha256sum -c --quiet *.db.sha256 && ls -t *.db | head -1"),
        ),
        "the master's snapshots",
    );
    let mut lines = listing.lines();
    assert_eq!(lines.next(), Some("700"), "{listing}");
    let newest = lines.next().expect("a snapshot").trim().to_string();
    assert!(newest.starts_with("gwlab-etcd-") && newest.ends_with("-master-2.db"), "{newest}");
    let status = ok(lab.sh_in("master-2", &format!("etcdutl snapshot status {dir}/{newest} -w json")), "etcdutl");
    assert!(status.contains("\"revision\""), "{status}");

    // Copied off the master, `etcd restore --plan` accepts it and changes nothing.
    let here = lab.scratch("timer-snapshot");
    for f in [newest.clone(), format!("{newest}.sha256")] {
        let cp = lab.docker(&["cp", &format!("{}:{dir}/{f}", lab.container("master-2")), &here.display().to_string()]);
        assert!(cp.status.success(), "docker cp {f}: {}", text(&cp.stderr));
    }
    let plan = run(
        &lab,
        &[
            "etcd",
            "restore",
            "-i",
            &inv,
            "--snapshot",
            &here.join(&newest).display().to_string(),
            "--plan",
            "-o",
            "json",
        ],
    );
    let steps = plan["steps"].to_string();
    assert!(steps.contains("park the control plane") && steps.contains("master-3"), "{plan}");
    let plan = run(&lab, &["certs", "renew", "-i", &inv, "--plan", "-o", "json"]);
    assert_eq!(plan["steps"].as_array().map(Vec::len), Some(4), "the state's leaves, then each master: {plan}");
    let plan = run(&lab, &["reset", "-i", &inv, "--plan", "-o", "json"]);
    assert_eq!(plan["dry_run"], true);
    assert_eq!(plan["hosts"].as_array().map(Vec::len), Some(7), "every master and worker: {plan}");
    assert!(plan["identity_moved_to"].is_null(), "{plan}");
    assert!(lab.root.join("inventory/.groundwork/gwlab/pki/ca.crt").is_file(), "a plan moves nothing");
    let plan =
        run(&lab, &["kubeconfig", "-i", &inv, "--user", "planned@egov.org", "--role", "edit", "--plan", "-o", "json"]);
    assert!(plan["steps"][0].as_str().unwrap().contains("ClusterRole edit"), "{plan}");
    assert!(!lab.root.join("inventory/.groundwork/gwlab/users/planned@egov.org.kubeconfig").exists());
    let bindings = ok(kubectl(&lab, "get clusterrolebindings -o name"), "bindings");
    assert!(!bindings.contains("planned@egov.org"), "a plan binds nothing: {bindings}");
    let members = lab.sh_in("master-1", "test -d /var/lib/etcd/member && systemctl is-active -q kubelet etcd");
    assert!(members.status.success(), "a plan resets nothing");
}
