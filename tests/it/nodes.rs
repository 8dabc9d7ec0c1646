//! `groundwork node remove` on the cluster the apply test built, and the node added back by
//! `apply`: worker-4 out and in again; master-3 out and in again (its etcd member removed, then a
//! new one joining the running cluster), while a worker polls the API through its local endpoint
//! (never two failed polls in a row). A removal that would leave etcd without quorum (a member
//! stopped by hand) is refused with nothing changed; a storage host is refused; a plan changes
//! nothing.
//!
//! Checked from outside groundwork: kubectl on master-1 with its own admin.conf, etcdctl on the
//! masters, the removed host's files, units and iptables, and what the other hosts hold about it
//! (/etc/hosts, HAProxy's list, every API server's --etcd-servers, pod routes, tgt's ACLs).

use std::time::Instant;

use groundwork_lab_tests::{ApiPoller, Lab, leftovers, text, worst_outage};

const INV: &str = "inventory/lab.yaml";
const MASTERS: [&str; 3] = ["master-1", "master-2", "master-3"];

fn kubectl(lab: &Lab, args: &str) -> String {
    let out = lab.sh_in("master-1", &format!("kubectl --kubeconfig /etc/kubernetes/admin.conf {args}"));
    assert!(out.status.success(), "kubectl {args}: {}", text(&out.stderr));
    text(&out.stdout)
}

fn etcdctl(lab: &Lab, on: &str, args: &str) -> String {
    let out = lab.sh_in(
        on,
        &format!(
            "ETCDCTL_API=3 etcdctl --endpoints=https://127.0.0.1:2379 --cacert=/etc/kubernetes/pki/etcd/ca.crt \
             --cert=/etc/kubernetes/pki/apiserver-etcd-client.crt --key=/etc/kubernetes/pki/apiserver-etcd-client.key {args}"
        ),
    );
    format!("{}{}", text(&out.stdout), text(&out.stderr))
}

fn ready_nodes(lab: &Lab) -> Vec<String> {
    kubectl(lab, "get nodes --no-headers")
        .lines()
        .filter(|l| l.split_whitespace().nth(1) == Some("Ready"))
        .map(|l| l.split_whitespace().next().unwrap().to_string())
        .collect()
}

fn groundwork_ok(lab: &Lab, args: &[&str]) -> String {
    let out = lab.groundwork(args);
    let all = format!("{}\n{}", text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "groundwork {args:?}:\n{all}");
    all
}

/// The cluster as the apply test left it, whatever this test did.
struct AddBack<'a>(&'a Lab);

impl Drop for AddBack<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let _ = self.0.sh_in("master-2", "systemctl start etcd");
            let _ = self.0.groundwork(&["apply", "-i", INV]);
        }
    }
}

#[test]
fn a_worker_and_a_master_are_removed_and_added_back_while_the_api_answers() {
    let lab = Lab::require();
    let _restore = AddBack(&lab);
    let all: Vec<String> = lab
        .inventory
        .hosts
        .iter()
        .filter(|h| h.roles.iter().any(|r| matches!(r.as_str(), "master" | "worker")))
        .map(|h| h.name.clone())
        .collect();
    assert_eq!(ready_nodes(&lab).len(), all.len(), "every node Ready before");

    // Refusals first: nothing changes.
    let storage = lab.groundwork(&["node", "remove", "storage-1", "-i", INV]);
    assert!(!storage.status.success());
    assert!(text(&storage.stderr).contains("not a Kubernetes node"), "{}", text(&storage.stderr));
    assert!(lab.sh_in("master-2", "systemctl stop etcd").status.success());
    let quorum = lab.groundwork(&["node", "remove", "master-3", "-i", INV]);
    assert!(lab.sh_in("master-2", "systemctl start etcd").status.success());
    let healthy = (0..30).any(|_| {
        std::thread::sleep(std::time::Duration::from_secs(2));
        etcdctl(&lab, "master-1", "endpoint health --cluster").matches("is healthy").count() == 3
    });
    assert!(healthy, "master-2's member is back");
    assert!(!quorum.status.success());
    assert!(text(&quorum.stderr).contains("without quorum"), "{}", text(&quorum.stderr));
    let plan = groundwork_ok(&lab, &["node", "remove", "master-3", "-i", INV, "--plan"]);
    assert!(plan.contains("remove master-3's etcd member"), "{plan}");
    assert_eq!(etcdctl(&lab, "master-1", "member list").lines().filter(|l| l.contains(", started,")).count(), 3);
    assert_eq!(ready_nodes(&lab).len(), all.len(), "the refusals and the plan changed nothing");

    let poller = ApiPoller::start(&lab, "worker-1", "nodes");

    // worker-4: out, then in again.
    let started = Instant::now();
    groundwork_ok(&lab, &["node", "remove", "worker-4", "-i", INV]);
    let removed_after = started.elapsed();
    assert!(!ready_nodes(&lab).contains(&"worker-4".to_string()));
    assert!(!kubectl(&lab, "get nodes -o name").contains("node/worker-4"));
    assert_eq!(leftovers(&lab, "worker-4"), "", "worker-4 is reset");
    let hosts = text(&lab.sh_in("worker-1", "cat /etc/hosts").stdout);
    assert!(!hosts.contains("worker-4") && hosts.contains("worker-3"), "{hosts}");
    let routes = text(&lab.sh_in("worker-1", "ip route").stdout);
    assert!(!routes.contains("via 10.78.0.104"), "worker-1 still routes to worker-4's pods:\n{routes}");
    let acl = text(&lab.sh_in("storage-1", "cat /etc/tgt/conf.d/groundwork.conf").stdout);
    assert!(acl.contains(":node:worker-3") && !acl.contains(":node:worker-4"), "tgt's ACLs:\n{acl}");

    // Still in the inventory: plan says the next apply joins it again.
    let plan = lab.groundwork(&["plan", "-i", INV, "-o", "json"]);
    assert_eq!(lab.json(&plan)["rejoining"][0][0], "worker-4", "{}", text(&plan.stdout));
    let again = Instant::now();
    groundwork_ok(&lab, &["apply", "-i", INV]);
    let added_after = again.elapsed();
    assert!(ready_nodes(&lab).contains(&"worker-4".to_string()), "worker-4 back");
    assert!(!lab.root.join("inventory/.groundwork/gwlab/removed.json").exists(), "a member again: no record");
    println!(
        "worker-4: removed in {:.1} s, added back in {:.1} s",
        removed_after.as_secs_f64(),
        added_after.as_secs_f64()
    );

    // master-3: out (its etcd member too), then in again (a new member joins the running cluster).
    let started = Instant::now();
    groundwork_ok(&lab, &["node", "remove", "master-3", "-i", INV]);
    let removed_after = started.elapsed();
    let members = etcdctl(&lab, "master-1", "member list");
    assert_eq!(members.lines().count(), 2, "{members}");
    assert!(!members.contains("10.78.0.13"), "{members}");
    assert_eq!(etcdctl(&lab, "master-1", "endpoint health --cluster").matches("is healthy").count(), 2);
    for m in ["master-1", "master-2"] {
        let manifest =
            text(&lab.sh_in(m, "grep -- --etcd-servers= /etc/kubernetes/manifests/kube-apiserver.yaml").stdout);
        assert!(!manifest.contains("10.78.0.13"), "{m}'s API server still names master-3's etcd: {manifest}");
    }
    let haproxy = text(&lab.sh_in("worker-1", "cat /etc/haproxy/haproxy.cfg").stdout);
    assert!(!haproxy.contains("10.78.0.13"), "{haproxy}");
    assert_eq!(leftovers(&lab, "master-3"), "", "master-3 is reset");

    let again = Instant::now();
    groundwork_ok(&lab, &["apply", "-i", INV]);
    let added_after = again.elapsed();
    let polls = poller.stop();
    println!(
        "master-3: removed in {:.1} s, added back in {:.1} s; {} polls, {} failed (at {:?}), at most {} in a row",
        removed_after.as_secs_f64(),
        added_after.as_secs_f64(),
        polls.len(),
        polls.iter().filter(|p| !p.1).count(),
        polls.iter().filter(|p| !p.1).map(|p| p.0).collect::<Vec<_>>(),
        worst_outage(&polls)
    );
    let members = etcdctl(&lab, "master-2", "member list");
    assert_eq!(members.lines().filter(|l| l.contains(", started,")).count(), 3, "{members}");
    assert_eq!(etcdctl(&lab, "master-3", "endpoint health --cluster").matches("is healthy").count(), 3);
    for m in MASTERS {
        let manifest =
            text(&lab.sh_in(m, "grep -- --etcd-servers= /etc/kubernetes/manifests/kube-apiserver.yaml").stdout);
        assert_eq!(manifest.matches(":2379").count(), 3, "{m}: {manifest}");
    }
    assert_eq!(ready_nodes(&lab).len(), all.len(), "every node Ready again");
    assert!(polls.len() >= 50, "the poller ran: {} polls", polls.len());
    assert!(worst_outage(&polls) <= 1, "the API was unavailable for more than one poll in a row");

    let rerun = lab.groundwork(&["apply", "-i", INV, "-o", "json"]);
    assert!(rerun.status.success(), "{}", text(&rerun.stderr));
    let changed = groundwork_lab_tests::changes(&lab.json(&rerun));
    assert!(changed.is_empty(), "a re-apply changes nothing: {changed:?}");
}
