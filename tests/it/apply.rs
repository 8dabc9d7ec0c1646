//! `groundwork apply` on the lab: from bare nodes to a real kubeadm cluster (3 masters behind the
//! local endpoint, 4 workers, external etcd, bridge CNI), then a re-run that changes nothing.
//! Checked from outside with the cluster's own tools (kubectl and etcdctl on a master, through
//! docker), never through groundwork. tests/run runs this binary alone, after the others.

use std::time::{Duration, Instant};

use groundwork_lab_tests::{Lab, text};

fn kubectl(lab: &Lab, args: &str) -> String {
    let out = lab.docker(&[
        "exec",
        &lab.container("master-1"),
        "sh",
        "-c",
        &format!("kubectl --kubeconfig /etc/kubernetes/admin.conf {args}"),
    ]);
    assert!(out.status.success(), "kubectl {args}: {}", text(&out.stderr));
    text(&out.stdout)
}

#[test]
fn apply_makes_a_ready_ha_cluster_and_a_second_apply_changes_nothing() {
    let lab = Lab::require();
    let started = Instant::now();
    let out = lab.groundwork(&["apply", "-i", "inventory/lab.yaml", "-o", "json"]);
    let first_took = started.elapsed();
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "apply failed:\n{stderr}\n{}", text(&out.stdout));
    let report = lab.json(&out);
    assert!(report["stopped"].is_null(), "{}", report["stopped"]);
    eprintln!("first apply: {} s", first_took.as_secs());

    // Every node registered and Ready, as the API server says.
    let nodes = kubectl(
        &lab,
        "get nodes -o jsonpath='{range .items[*]}{.metadata.name} {.status.conditions[?(@.type==\"Ready\")].status}{\"\\n\"}{end}'",
    );
    for h in lab.inventory.hosts.iter().filter(|h| h.name.starts_with("master") || h.name.starts_with("worker")) {
        assert!(nodes.lines().any(|l| l == format!("{} True", h.name)), "{} not Ready:\n{nodes}", h.name);
    }
    assert_eq!(nodes.lines().count(), 7, "3 masters and 4 workers:\n{nodes}");
    let masters = kubectl(&lab, "get nodes -l node-role.kubernetes.io/control-plane -o name");
    assert_eq!(masters.lines().count(), 3, "{masters}");

    // etcd: three members, all healthy, outside kubeadm (external).
    let health = lab.docker(&[
        "exec",
        &lab.container("master-2"),
        "sh",
        "-c",
        "ETCDCTL_API=3 etcdctl --endpoints=https://127.0.0.1:2379 --cacert=/etc/kubernetes/pki/etcd/ca.crt \
         --cert=/etc/kubernetes/pki/apiserver-etcd-client.crt --key=/etc/kubernetes/pki/apiserver-etcd-client.key \
         endpoint health --cluster",
    ]);
    let said = format!("{}{}", text(&health.stdout), text(&health.stderr));
    assert_eq!(said.matches("is healthy").count(), 3, "{said}");

    // The secrets never show: the bootstrap token and the CA key.
    let state = lab.root.join("inventory/.groundwork/gwlab/pki");
    let token = std::fs::read_to_string(state.join("bootstrap-token")).unwrap_or_default();
    let secret = token.lines().next().unwrap_or_default().split('.').nth(1).unwrap_or("no-token").to_string();
    assert!(secret.len() == 16, "a bootstrap token is kept in the state directory");
    let ca_key = std::fs::read_to_string(state.join("ca.key")).unwrap();
    let ca_key_body = ca_key.lines().nth(1).unwrap();
    let all_output = format!("{stderr}{}", text(&out.stdout));
    assert!(!all_output.contains(&secret) && !all_output.contains(ca_key_body), "a secret leaked into the output");

    // A second apply verifies and changes nothing.
    let started = Instant::now();
    let again = lab.groundwork(&["apply", "-i", "inventory/lab.yaml", "-o", "json"]);
    let second_took = started.elapsed();
    assert!(again.status.success(), "{}", text(&again.stderr));
    let report = lab.json(&again);
    let changed: Vec<String> = report["phases"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| {
            p["hosts"].as_array().unwrap().iter().filter_map(move |h| {
                let n = h["changes"].as_array().map_or(0, Vec::len);
                (n > 0).then(|| format!("{} {}: {}", p["name"], h["host"], h["changes"]))
            })
        })
        .collect();
    assert!(changed.is_empty(), "the second apply changed things:\n{}", changed.join("\n"));
    eprintln!("second apply: {} ms", second_took.as_millis());
    assert!(second_took < Duration::from_secs(60), "a no-op apply is quick: {second_took:?}");

    // And a plan of the finished cluster shows nothing to do.
    let plan = lab.groundwork(&["plan", "-i", "inventory/lab.yaml"]);
    assert!(plan.status.success(), "{}", text(&plan.stderr));
    assert!(text(&plan.stdout).contains("plan: 0 change(s)"), "{}", text(&plan.stdout));
}
