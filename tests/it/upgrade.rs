//! `groundwork upgrade` on the lab: the cluster built from bare hosts at v1.33.0 (the shared
//! v1.33.0 release as a lab bundle, `GWLAB_K8S_VERSION=v1.33.0 tests/lab/bundle`), a Deployment of
//! 2 replicas with a PodDisruptionBudget serving, then upgraded to v1.33.3 (the lab's own bundle).
//! kubeadm runs the same steps for a patch upgrade as for a minor one; the minor-version skew rules
//! are unit tests (`phases::upgrade::skew`), since no other minor release could be had here.
//!
//! The upgrade is interrupted (SIGINT) as soon as its journal says the first worker is done; the
//! same command run again goes on from there (that worker not redone) and finishes.
//!
//! Checked from outside groundwork: the Deployment's ready replicas polled every second on master-1
//! with its own admin.conf throughout (never 0), every node's kubelet and every API server's image
//! at v1.33.3, `kubelet --version` on each host, nothing left cordoned. Then: a second upgrade
//! changes nothing, the old inventory is refused by both upgrade (a downgrade) and apply (a version
//! change is not apply's), and nothing changes meanwhile.
//!
//! Starts with `groundwork reset` of the cluster the earlier tests built, which is the reset's proof:
//! every master and worker bare (no kubeadm, kubelet or etcd files, units, KUBE-/CNI- chains, hosts
//! block or bridge), a file on an NFS export, bytes in an iSCSI volume and a PostgreSQL row written
//! before it are still there after the cluster is built again from scratch (at v1.33.0, under a
//! scratch state directory). Ends with `tests/lab/lab reset`: it runs last (see tests/run).

use std::path::Path;

use groundwork_lab_tests::{Lab, changes, text};

const OLD: &str = "v1.33.0";
const NEW: &str = "v1.33.3";
const POLL_LOG: &str = "/root/gw-upgrade-polls";
const POLL_STOP: &str = "/root/gw-upgrade-polls.stop";

fn kubectl(lab: &Lab, args: &str) -> std::process::Output {
    lab.sh_in("master-1", &format!("kubectl --kubeconfig /etc/kubernetes/admin.conf {args}"))
}

fn groundwork_json(lab: &Lab, args: &[&str]) -> (bool, serde_json::Value, String) {
    let out = lab.groundwork(args);
    let report = if out.stdout.is_empty() {
        serde_json::Value::Null
    } else {
        groundwork_lab_tests::report_json(&out.stdout, &text(&out.stderr))
    };
    (out.status.success(), report, format!("{}\n{}", text(&out.stdout), text(&out.stderr)))
}

const WORKLOAD: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: gw-web, namespace: default}
spec:
  replicas: 2
  selector: {matchLabels: {app: gw-web}}
  template:
    metadata: {labels: {app: gw-web}}
    spec:
      terminationGracePeriodSeconds: 1
      affinity:
        podAntiAffinity:
          preferredDuringSchedulingIgnoredDuringExecution:
            - weight: 100
              podAffinityTerm: {topologyKey: kubernetes.io/hostname, labelSelector: {matchLabels: {app: gw-web}}}
      containers:
        - {name: web, image: 'registry.k8s.io/pause:3.10', imagePullPolicy: Never}
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata: {name: gw-web, namespace: default}
spec:
  minAvailable: 1
  selector: {matchLabels: {app: gw-web}}
"#;

/// The Deployment's ready replicas every second, from master-1, in the background.
fn start_polling(lab: &Lab) {
    let script = format!(
        "rm -f {POLL_LOG} {POLL_STOP}; while [ ! -e {POLL_STOP} ]; do \
           if r=$(kubectl --kubeconfig /etc/kubernetes/admin.conf --request-timeout=3s get deployment gw-web \
                  -o jsonpath='{{.status.readyReplicas}}' 2>/dev/null); then echo \"ok ${{r:-0}}\"; else echo unanswered; fi >> {POLL_LOG}; \
           sleep 1; done"
    );
    let out = lab.docker(&["exec", "-d", &lab.container("master-1"), "sh", "-c", &script]);
    assert!(out.status.success(), "starting the poller: {}", text(&out.stderr));
}

/// The ready counts of the polls the API answered, and how many it did not answer.
fn stop_polling(lab: &Lab) -> (Vec<u32>, usize) {
    let out =
        lab.sh_in("master-1", &format!("touch {POLL_STOP}; sleep 2; cat {POLL_LOG}; rm -f {POLL_LOG} {POLL_STOP}"));
    let log = text(&out.stdout);
    let answered = log.lines().filter_map(|l| l.strip_prefix("ok ")).map(|n| n.trim().parse().unwrap_or(0)).collect();
    (answered, log.lines().filter(|l| *l == "unanswered").count())
}

fn node_versions(lab: &Lab) -> Vec<(String, String)> {
    let out = kubectl(
        lab,
        "get nodes -o jsonpath='{range .items[*]}{.metadata.name} {.status.nodeInfo.kubeletVersion}{\"\\n\"}{end}'",
    );
    text(&out.stdout).lines().filter_map(|l| l.split_once(' ').map(|(n, v)| (n.to_string(), v.to_string()))).collect()
}

fn inventories(lab: &Lab, dir: &Path) -> (String, String) {
    let new = lab.inventory_copy(dir, |t| t);
    let old_text = std::fs::read_to_string(&new)
        .unwrap()
        .replace(&format!("kubernetesVersion: {NEW}"), &format!("kubernetesVersion: {OLD}"))
        .replace(&format!("{}/bundle\n", lab.state.display()), &format!("{}/bundle-{OLD}\n", lab.state.display()));
    assert!(old_text.contains(&format!("bundle-{OLD}")), "the inventory copy names no bundle to swap:\n{old_text}");
    let old = dir.join("inventory-old.yaml");
    std::fs::write(&old, old_text).unwrap();
    (old.display().to_string(), new.display().to_string())
}

#[test]
fn the_cluster_upgrades_from_v1_33_0_to_v1_33_3_while_a_workload_keeps_serving() {
    let lab = Lab::require();
    assert!(
        lab.state.join(format!("bundle-{OLD}/manifest.json")).is_file(),
        "the {OLD} lab bundle is missing: GWLAB_K8S_VERSION={OLD} tests/lab/bundle (tests/run builds it)"
    );
    let _bare_again = ResetAtTheEnd(&lab);
    let kept = reset_the_built_cluster(&lab);
    let dir = lab.scratch("upgrade");
    let (old, new) = inventories(&lab, &dir);

    let (ok, _, out) = groundwork_json(&lab, &["apply", "-i", &old, "-o", "json"]);
    assert!(ok, "apply at {OLD} on the reset hosts: {out}");
    kept.still_there(&lab);
    let before = node_versions(&lab);
    assert_eq!(before.len(), 7, "{before:?}");
    assert!(before.iter().all(|(_, v)| v == OLD), "{before:?}");

    let applied = lab.kubectl_apply(WORKLOAD);
    assert!(applied.status.success(), "{}", text(&applied.stderr));
    let rollout = kubectl(&lab, "rollout status deployment gw-web --timeout=120s");
    assert!(rollout.status.success(), "{}", text(&rollout.stderr));

    // A plan first: it names the work and changes nothing.
    let (ok, plan, out) = groundwork_json(&lab, &["upgrade", "-i", &new, "--plan", "-o", "json"]);
    assert!(ok, "upgrade --plan: {out}");
    let planned = changes(&plan);
    assert!(
        planned.iter().any(|(p, _, c)| p == "upgrade-control-plane" && c.contains("kubeadm upgrade apply")),
        "{planned:?}"
    );
    assert!(node_versions(&lab).iter().all(|(_, v)| v == OLD), "the plan changed something");

    start_polling(&lab);
    let started = std::time::Instant::now();
    // Interrupted once the first worker is done: SIGINT, exit 130, the report says so.
    let (first_worker, interrupted) = interrupt_after_the_first_worker(&lab, &dir, &new);
    assert_eq!(interrupted["interrupted"], "SIGINT", "{interrupted}");
    // The same command goes on from there and finishes.
    let (ok, report, out) = groundwork_json(&lab, &["upgrade", "-i", &new, "--to", NEW, "-o", "json"]);
    let took = started.elapsed();
    let (polls, unanswered) = stop_polling(&lab);
    assert!(ok, "the upgrade run again after the SIGINT: {out}");
    let resumed = report["phases"].as_array().unwrap().iter().find(|p| p["name"] == "upgrade-workers").unwrap();
    let again = resumed["hosts"].as_array().unwrap().iter().find(|h| h["host"] == first_worker.as_str()).unwrap();
    assert!(
        again["done_before"] == true && again["changes"].as_array().is_some_and(Vec::is_empty),
        "{first_worker}, done before the SIGINT, is not redone: {again}"
    );
    println!(
        "upgrade took {:.0} s (interrupted after {first_worker}, then resumed); {} polls answered, {unanswered} not",
        took.as_secs_f64(),
        polls.len()
    );
    assert!(polls.len() >= 30, "too few answered polls to say anything: {polls:?}");
    assert!(polls.iter().all(|r| *r >= 1), "the workload had no ready replica at some point: {polls:?}");

    // The way back first: a snapshot on the controller before anything changed (the first run's;
    // the resumed run takes none of a half-upgraded cluster). What was done: both runs' changes.
    let mut done = changes(&interrupted);
    done.extend(changes(&report));
    let notes = report["phases"].to_string();
    assert!(notes.contains("resuming: no new etcd snapshot"), "{notes}");
    let snapshot = done
        .iter()
        .find(|(p, _, c)| p == "upgrade-preflight" && c.starts_with("etcd snapshot before the upgrade"))
        .unwrap_or_else(|| panic!("no etcd snapshot before the upgrade: {done:?}"));
    let snapshots = std::fs::read_dir(dir.join(".groundwork/gwlab/backups/etcd")).unwrap().count();
    assert_eq!(snapshots, 3, "the snapshot, its .sha256 and .json: {snapshot:?}");

    // One master, then one worker at a time: each drained and back before the next.
    for host in ["master-1", "master-2", "master-3", "worker-1", "worker-2", "worker-3", "worker-4"] {
        assert!(done.iter().any(|(_, h, c)| h == host && c.contains(&format!("Ready at {NEW}"))), "{host}: {done:?}");
    }
    let after = node_versions(&lab);
    assert!(after.len() == 7 && after.iter().all(|(_, v)| v == NEW), "{after:?}");
    let images = kubectl(
        &lab,
        "-n kube-system get pods -l component=kube-apiserver -o jsonpath='{.items[*].spec.containers[0].image}'",
    );
    let images = text(&images.stdout);
    assert_eq!(images.split_whitespace().filter(|i| i.ends_with(&format!(":{NEW}"))).count(), 3, "{images}");
    for host in ["master-1", "worker-4"] {
        let v = lab.sh_in(host, "/usr/local/bin/kubelet --version");
        assert!(text(&v.stdout).contains(NEW), "{host}: {}", text(&v.stdout));
    }
    let cordoned =
        kubectl(&lab, "get nodes -o jsonpath='{range .items[*]}{.metadata.name} {.spec.unschedulable}{\"\\n\"}{end}'");
    let cordoned = text(&cordoned.stdout);
    assert_eq!(cordoned.lines().count(), 7, "{cordoned}");
    assert!(!cordoned.contains("true"), "left cordoned: {cordoned}");
    let annotations = text(&kubectl(&lab, "get nodes -o jsonpath='{.items[*].metadata.annotations}'").stdout);
    assert!(!annotations.contains("upgrade-cordoned"), "groundwork's mark left behind: {annotations}");
    let ready = kubectl(&lab, "get deployment gw-web -o jsonpath='{.status.readyReplicas}'");
    assert_eq!(text(&ready.stdout).trim(), "2");

    // Done is done: a second run changes nothing.
    let (ok, again, out) = groundwork_json(&lab, &["upgrade", "-i", &new, "-o", "json"]);
    assert!(ok, "second upgrade: {out}");
    assert!(changes(&again).is_empty(), "a second upgrade changed: {:?}", changes(&again));
    // ... and apply finds the cluster as the inventory says (its kubeadm files at the new version).
    let (ok, applied, out) = groundwork_json(&lab, &["apply", "-i", &new, "-o", "json"]);
    assert!(ok, "apply after the upgrade: {out}");
    assert!(changes(&applied).is_empty(), "apply after the upgrade changed: {:?}", changes(&applied));

    // The old version is refused both ways, before anything changes.
    let (ok, _, out) = groundwork_json(&lab, &["upgrade", "-i", &old, "-o", "json"]);
    assert!(!ok && out.contains("cannot be downgraded"), "{out}");
    let (ok, _, out) = groundwork_json(&lab, &["apply", "-i", &old, "-o", "json"]);
    assert!(!ok && out.contains("groundwork upgrade"), "{out}");
    assert!(node_versions(&lab).iter().all(|(_, v)| v == NEW));

    // Last, the reset that also wipes: the volumes and PostgreSQL's cluster go with it.
    let (ok, report, out) =
        groundwork_json(&lab, &["reset", "-i", &new, "--yes", "--wipe-volumes", "--wipe-database", "-o", "json"]);
    assert!(ok, "reset --wipe-volumes --wipe-database: {out}");
    assert!(report["kept"].as_array().is_some_and(Vec::is_empty), "{report}");
    let gone = lab.sh_in("storage-1", "ls /srv/groundwork /etc/tgt/conf.d/groundwork.conf 2>&1");
    assert!(text(&gone.stdout).matches("No such file").count() == 2, "{}", text(&gone.stdout));
    let clusters = text(&lab.sh_in("database-1", "pg_lsclusters -h").stdout);
    assert!(!clusters.contains("main"), "{clusters}");
}

/// `groundwork upgrade` in the background, sent SIGINT as soon as its journal says a worker is
/// done; the worker, and the interrupted run's report.
fn interrupt_after_the_first_worker(lab: &Lab, dir: &Path, inventory: &str) -> (String, serde_json::Value) {
    let (mut child, stdout, stderr) = lab.spawn_groundwork(&["upgrade", "-i", inventory, "--to", NEW, "-o", "json"]);
    let journal = dir.join(".groundwork/gwlab/journal.json");
    let done_worker = || -> Option<String> {
        let j: serde_json::Value = serde_json::from_slice(&std::fs::read(&journal).ok()?).ok()?;
        let hosts = j["phases"]["upgrade-workers"].as_object()?;
        hosts.iter().find(|(_, e)| e["status"] == "done").map(|(h, _)| h.clone())
    };
    let until = std::time::Instant::now() + std::time::Duration::from_secs(1200);
    let worker = loop {
        if let Some(w) = done_worker() {
            break w;
        }
        if child.try_wait().unwrap().is_some() || std::time::Instant::now() > until {
            let _ = child.kill();
            panic!("the upgrade ended or stalled before a worker was done: {}", text(&stderr.join().unwrap()));
        }
        std::thread::sleep(std::time::Duration::from_millis(500));
    };
    let kill = std::process::Command::new("kill").args(["-s", "INT", &child.id().to_string()]).status().unwrap();
    assert!(kill.success());
    let status = child.wait().unwrap();
    let report: serde_json::Value = serde_json::from_slice(&stdout.join().unwrap()).unwrap_or_default();
    assert_eq!(status.code(), Some(130), "exit after SIGINT: {}", text(&stderr.join().unwrap()));
    (worker, report)
}

/// What the cluster's stateful services wrote before the reset: a file on an NFS export, bytes in
/// an iSCSI volume's backing file, a row in PostgreSQL.
struct KeptData {
    nfs: String,
    iscsi_sum: String,
}

const ISCSI_FILE: &str = "/srv/groundwork/iscsi/kafka-0.img";
const NFS_FILE: &str = "/srv/groundwork/nfs/filestore-0/gw-reset-marker";
const PSQL: &str = "runuser -u postgres -- psql -d egov -tAc";

impl KeptData {
    fn write(lab: &Lab) -> KeptData {
        let nfs = format!("{:?}", std::time::SystemTime::now());
        let out = lab.sh_in(
            "storage-1",
            &format!(
                "echo '{nfs}' > {NFS_FILE} && printf 'groundwork reset drill' | dd of={ISCSI_FILE} bs=1 seek=1048576 \
                 conv=notrunc status=none && sha256sum {ISCSI_FILE}"
            ),
        );
        assert!(out.status.success(), "{}", text(&out.stderr));
        let iscsi_sum = text(&out.stdout).split_whitespace().next().unwrap().to_string();
        let sql = "create table if not exists gw_reset_drill (x text); insert into gw_reset_drill values ('kept')";
        let out = lab.sh_in("database-1", &format!("{PSQL} \"{sql}\""));
        assert!(out.status.success(), "{}", text(&out.stderr));
        KeptData { nfs, iscsi_sum }
    }

    fn still_there(&self, lab: &Lab) {
        let nfs = text(&lab.sh_in("storage-1", &format!("cat {NFS_FILE}")).stdout);
        assert_eq!(nfs.trim(), self.nfs, "the file on the NFS export");
        let sum = text(&lab.sh_in("storage-1", &format!("sha256sum {ISCSI_FILE}")).stdout);
        assert_eq!(sum.split_whitespace().next(), Some(self.iscsi_sum.as_str()), "the iSCSI volume's data");
        let rows = text(&lab.sh_in("database-1", &format!("{PSQL} 'select x from gw_reset_drill'")).stdout);
        assert_eq!(rows.trim(), "kept", "PostgreSQL's data");
    }
}

/// `groundwork reset` of the cluster the earlier tests built (the lab's own inventory and state):
/// every master and worker bare again, the volumes and PostgreSQL untouched, the cluster's
/// identity set aside in the state directory.
fn reset_the_built_cluster(lab: &Lab) -> KeptData {
    let kept = KeptData::write(lab);
    let inv = lab.inventory_path.display().to_string();
    let unconfirmed = lab.groundwork(&["reset", "-i", &inv]);
    assert!(!unconfirmed.status.success() && text(&unconfirmed.stderr).contains("pass --yes"));
    let started = std::time::Instant::now();
    let (ok, report, out) = groundwork_json(lab, &["reset", "-i", &inv, "--yes", "-o", "json"]);
    assert!(ok, "groundwork reset: {out}");
    println!("reset of the cluster took {:.1} s", started.elapsed().as_secs_f64());
    for host in ["master-1", "master-2", "master-3", "worker-1", "worker-2", "worker-3", "worker-4"] {
        assert_eq!(groundwork_lab_tests::leftovers(lab, host), "", "{host} after the reset");
    }
    let kept_hosts: Vec<&str> = report["kept"].as_array().unwrap().iter().filter_map(|k| k[0].as_str()).collect();
    assert_eq!(kept_hosts, ["storage-1", "database-1"], "{report}");
    let state = lab.root.join("inventory/.groundwork/gwlab");
    assert!(!state.join("pki").exists(), "the old cluster's PKI is set aside");
    let aside = std::path::PathBuf::from(report["identity_moved_to"].as_str().unwrap());
    assert!(aside.join("pki/ca.crt").is_file() && aside.starts_with(&state), "{}", aside.display());
    kept
}

/// The cluster belongs to the test's scratch state: the hosts are made bare again when the test
/// ends, passed or failed (a drop runs on a panic too), so that `tests/lab/lab run` or the next
/// `tests/run` is not refused by the identity check of a cluster no state directory of theirs built.
struct ResetAtTheEnd<'a>(&'a Lab);

impl Drop for ResetAtTheEnd<'_> {
    fn drop(&mut self) {
        let reset = self.0.script(&["reset"]);
        if !reset.status.success() {
            eprintln!("tests/lab/lab reset after the upgrade test failed: {}", text(&reset.stderr));
        }
    }
}
