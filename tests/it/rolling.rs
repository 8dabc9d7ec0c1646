//! Rolling changes on the cluster the apply test built: an inventory that changes etcd's and the
//! API servers' flags is applied while a worker polls the API through its local endpoint every
//! 200 ms; the API must answer throughout (never two failed polls in a row), and the report must
//! show the members and API servers restarted one master at a time. The original inventory is
//! then applied again, rolling back the same way. Checked from outside: the flags on the running
//! processes' command lines, the polls' own log.
//!
//! Also here (same cluster, one test at a time): a master given the worker role loses kubeadm's
//! control-plane taint and a pod is scheduled on it; the role taken away puts the taint back.

use std::time::Duration;

use groundwork_lab_tests::{ApiPoller, Lab, changes, text, worst_outage};

const MASTERS: [&str; 3] = ["master-1", "master-2", "master-3"];
const ETCD_FLAG: &str = "--quota-backend-bytes=4294967296";
const API_FLAG: &str = "--event-ttl=2h";

/// `HH:MM:SS.mmm` as milliseconds of the day.
fn ms_of_day(clock: &str) -> u64 {
    let (hms, ms) = clock.split_once('.').unwrap();
    let p: Vec<u64> = hms.split(':').map(|x| x.parse().unwrap()).collect();
    ((p[0] * 60 + p[1]) * 60 + p[2]) * 1000 + ms.parse::<u64>().unwrap()
}

/// The (host, start, end) of every rolling restart a phase reported, in start order; asserted
/// not to overlap.
fn one_at_a_time(report: &serde_json::Value, phase: &str, what: &str) -> Vec<String> {
    let mut turns: Vec<(u64, u64, String)> = changes(report)
        .into_iter()
        .filter(|(p, _, c)| p == phase && c.starts_with(what))
        .map(|(_, host, c)| {
            let span = c.split_once("one at a time (").unwrap().1.split(' ').next().unwrap().to_string();
            let (from, to) = span.split_once('-').unwrap();
            (ms_of_day(from), ms_of_day(to), host)
        })
        .collect();
    turns.sort();
    for w in turns.windows(2) {
        assert!(w[0].1 <= w[1].0, "{phase}: {} restarted before {} was healthy again: {turns:?}", w[1].2, w[0].2);
    }
    turns.into_iter().map(|t| t.2).collect()
}

fn flags_on(lab: &Lab, master: &str, process: &str) -> String {
    let out = lab.sh_in(master, &format!("tr '\\0' ' ' < /proc/$(pgrep -xo {process})/cmdline"));
    text(&out.stdout)
}

/// `HH:MM:SS.mmm` (UTC) of seconds since the epoch, as the report's turns are written.
fn clock(t: f64) -> String {
    let ms = (t * 1000.0) as u64 % 86_400_000;
    format!("{:02}:{:02}:{:02}.{:03}", ms / 3_600_000, ms / 60_000 % 60, ms / 1000 % 60, ms % 1000)
}

/// Applies `inventory` while polling; asserts the API answered throughout. Returns the report.
fn apply_polled(lab: &Lab, inventory: &str) -> serde_json::Value {
    let poller = ApiPoller::start(lab, "worker-1", "rolling");
    std::thread::sleep(Duration::from_secs(1));
    let out = lab.groundwork(&["apply", "-i", inventory, "-o", "json"]);
    let polls = poller.stop();
    assert!(out.status.success(), "apply -i {inventory}:\n{}\n{}", text(&out.stderr), text(&out.stdout));
    let report = lab.json(&out);
    let failed: Vec<String> = polls.iter().filter(|p| !p.1).map(|p| clock(p.0)).collect();
    eprintln!(
        "{inventory}: {} polls from {} to {}, {} failed ({failed:?}), at most {} in a row",
        polls.len(),
        polls.first().map(|p| clock(p.0)).unwrap_or_default(),
        polls.last().map(|p| clock(p.0)).unwrap_or_default(),
        failed.len(),
        worst_outage(&polls)
    );
    for (phase, host, change) in changes(&report) {
        if change.contains("one at a time") {
            eprintln!("  {phase} {host}: {change}");
        }
    }
    assert!(polls.len() >= 10, "the poller ran: {polls:?}");
    assert!(worst_outage(&polls) <= 1, "the API was unavailable for more than one poll in a row (failed polls above)");
    report
}

/// The original inventory applied again and the copy removed, whatever the test did.
struct Revert<'a>(&'a Lab, std::path::PathBuf);

impl Drop for Revert<'_> {
    fn drop(&mut self) {
        std::fs::remove_file(&self.1).ok();
        if std::thread::panicking() {
            let _ = self.0.groundwork(&["apply", "-i", "inventory/lab.yaml"]);
        }
    }
}

/// `inventory/NAME`: the lab inventory with `from` replaced by `to`, beside the original so that
/// it shares the cluster's state directory; removed (and the original applied again, if the test
/// failed) when the guard drops.
fn edited_inventory<'a>(lab: &'a Lab, name: &str, from: &str, to: &str) -> Revert<'a> {
    let path = lab.root.join("inventory").join(name);
    let original = std::fs::read_to_string(&lab.inventory_path).unwrap();
    let changed = original.replace(from, to);
    assert_ne!(changed, original, "the lab inventory has no {from:?}");
    std::fs::write(&path, changed).unwrap();
    Revert(lab, path)
}

#[test]
fn etcd_and_api_server_flags_change_one_master_at_a_time_while_the_api_answers() {
    let lab = Lab::require();
    let _revert = edited_inventory(
        &lab,
        ".rolling-test.yaml",
        "  cni: bridge\n",
        "  cni: bridge\n  apiServer:\n    extraArgs: {event-ttl: 2h}\n  etcdExtraArgs: {quota-backend-bytes: \"4294967296\"}\n",
    );

    let report = apply_polled(&lab, "inventory/.rolling-test.yaml");
    let etcd = one_at_a_time(&report, "etcd", "restarted etcd");
    let api = one_at_a_time(&report, "apiserver", "regenerated the API server");
    eprintln!("etcd restarted in turn on {etcd:?}, API servers on {api:?}");
    assert_eq!(etcd.len(), 3, "{}", report["phases"]);
    assert_eq!(api.len(), 3, "{}", report["phases"]);
    for m in MASTERS {
        assert!(flags_on(&lab, m, "etcd").contains(ETCD_FLAG), "{m}: etcd runs without {ETCD_FLAG}");
        assert!(flags_on(&lab, m, "kube-apiserver").contains(API_FLAG), "{m}: the API server runs without {API_FLAG}");
    }

    // Back to the original, rolling too.
    let report = apply_polled(&lab, "inventory/lab.yaml");
    assert_eq!(one_at_a_time(&report, "etcd", "restarted etcd").len(), 3, "{}", report["phases"]);
    assert_eq!(one_at_a_time(&report, "apiserver", "regenerated the API server").len(), 3, "{}", report["phases"]);
    for m in MASTERS {
        assert!(!flags_on(&lab, m, "etcd").contains(ETCD_FLAG), "{m}: etcd still runs with {ETCD_FLAG}");
        assert!(!flags_on(&lab, m, "kube-apiserver").contains(API_FLAG), "{m}: still {API_FLAG}");
    }
    let again = lab.groundwork(&["apply", "-i", "inventory/lab.yaml", "-o", "json"]);
    assert!(again.status.success(), "{}", text(&again.stderr));
    assert!(changes(&lab.json(&again)).is_empty(), "reverted: a re-apply changes nothing");
}

fn kubectl(lab: &Lab, args: &str) -> String {
    let out = lab.sh_in("master-1", &format!("kubectl --kubeconfig /etc/kubernetes/admin.conf {args}"));
    assert!(out.status.success(), "kubectl {args}: {}", text(&out.stderr));
    text(&out.stdout)
}

fn taints_of(lab: &Lab, node: &str) -> String {
    kubectl(lab, &format!("get node {node} -o jsonpath='{{.spec.taints}}'"))
}

fn apply_taints(lab: &Lab, inventory: &str) -> Vec<(String, String, String)> {
    let out = lab.groundwork(&["apply", "-i", inventory, "--only", "taints", "-o", "json"]);
    assert!(out.status.success(), "apply -i {inventory} --only taints:\n{}\n{}", text(&out.stderr), text(&out.stdout));
    changes(&lab.json(&out))
}

/// A master given the worker role takes workloads (kubeadm's control-plane taint comes off), and
/// gets the taint back when the role is taken away again. The pod is placed by the scheduler
/// (a node selector, not `nodeName`, which would bypass taints).
#[test]
fn a_master_that_is_also_a_worker_takes_workloads() {
    let lab = Lab::require();
    let _revert = edited_inventory(
        &lab,
        ".taints-test.yaml",
        "{name: master-3, address: 10.78.0.13, roles: [master]}",
        "{name: master-3, address: 10.78.0.13, roles: [master, worker]}",
    );
    assert!(taints_of(&lab, "master-3").contains("node-role.kubernetes.io/control-plane"), "kubeadm taints a master");

    let made = apply_taints(&lab, "inventory/.taints-test.yaml");
    assert_eq!(made.len(), 1, "{made:?}");
    assert_eq!((made[0].0.as_str(), made[0].1.as_str()), ("taints", "master-3"), "{made:?}");
    assert!(!taints_of(&lab, "master-3").contains("control-plane"), "{}", taints_of(&lab, "master-3"));
    assert!(taints_of(&lab, "master-2").contains("control-plane"), "only master-3 changes");
    assert!(apply_taints(&lab, "inventory/.taints-test.yaml").is_empty(), "a second apply changes nothing");

    let pod = "apiVersion: v1
kind: Pod
metadata: {name: on-master-3, namespace: default}
spec:
  nodeSelector: {kubernetes.io/hostname: master-3}
  containers:
    - {name: pause, image: 'registry.k8s.io/pause:3.10', imagePullPolicy: Never}
";
    let out = lab.kubectl_apply(pod);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let waited = kubectl(&lab, "wait --for=condition=Ready pod/on-master-3 --timeout=120s");
    assert!(waited.contains("condition met"), "{waited}");
    assert_eq!(kubectl(&lab, "get pod on-master-3 -o jsonpath='{.spec.nodeName}'"), "master-3");
    kubectl(&lab, "delete pod on-master-3 --wait=true");

    // The role taken away again: the taint is back, so new workloads are kept off.
    let made = apply_taints(&lab, "inventory/lab.yaml");
    assert_eq!(made.iter().map(|c| c.1.as_str()).collect::<Vec<_>>(), ["master-3"], "{made:?}");
    assert!(taints_of(&lab, "master-3").contains("node-role.kubernetes.io/control-plane"), "the taint is back");
    assert!(apply_taints(&lab, "inventory/lab.yaml").is_empty(), "a second apply changes nothing");
}
