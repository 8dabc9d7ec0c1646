//! `controlPlaneEndpoint.mode: vip` on the lab's cluster (built by the apply test, which runs
//! first): keepalived on the masters from an inventory copy that asks for a virtual IP, then the
//! API answers through that address, the address moves when its master freezes and comes back
//! when it returns. The cluster itself was built behind the local proxy, so the API server's
//! certificate does not name the VIP: kubectl checks it against the name `kubernetes` instead.

use std::time::{Duration, Instant};

use groundwork_lab_tests::{Lab, changes, text};

const VIP: &str = "10.78.0.10";
const MASTERS: [&str; 3] = ["master-1", "master-2", "master-3"];

fn holder(lab: &Lab) -> Vec<&'static str> {
    MASTERS
        .iter()
        .copied()
        .filter(|m| {
            // A frozen container cannot answer `docker exec`; it holds nothing that matters.
            let out = lab.sh_in(m, "ip -4 -o addr show dev eth0");
            text(&out.stdout).contains(&format!(" {VIP}/32 "))
        })
        .collect()
}

fn api_through_vip(lab: &Lab) -> Result<(), String> {
    let out = lab.sh_in(
        "worker-1",
        &format!(
            "kubectl --kubeconfig /etc/kubernetes/kubelet.conf --server https://{VIP}:6443 --tls-server-name kubernetes \
             --request-timeout=4s get node worker-1 -o name"
        ),
    );
    if out.status.success() { Ok(()) } else { Err(text(&out.stderr)) }
}

fn within(secs: u64, what: &str, mut check: impl FnMut() -> Result<(), String>) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        match check() {
            Ok(()) => return,
            Err(e) if Instant::now() > deadline => panic!("{what} within {secs} s: {e}"),
            Err(_) => std::thread::sleep(Duration::from_millis(500)),
        }
    }
}

fn held_by(lab: &Lab, master: &str) -> Result<(), String> {
    let h = holder(lab);
    if h == [master] { Ok(()) } else { Err(format!("the VIP is held by {h:?}")) }
}

/// keepalived stopped and disabled again on every master, whatever the test did.
struct Cleanup<'a>(&'a Lab);

impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        let _ = self.0.docker(&["unpause", &self.0.container("master-1")]);
        for m in MASTERS {
            self.0.sh_in(m, "systemctl disable --now keepalived 2>/dev/null; true");
        }
    }
}

#[test]
fn a_keepalived_vip_fronts_the_api_servers_and_moves_when_its_master_freezes() {
    let lab = Lab::require();
    let dir = lab.scratch("vip");
    let inventory =
        lab.inventory_copy(&dir, |t| t.replace("    mode: localProxy", &format!("    mode: vip\n    address: {VIP}")));
    let inv = inventory.to_str().unwrap();
    let _cleanup = Cleanup(&lab);
    // A second checkout of the same cluster: it takes the cluster's identity first (else refused).
    let adopted = lab.groundwork(&["state", "adopt", "-i", inv]);
    assert!(adopted.status.success(), "{}", text(&adopted.stderr));

    let out = lab.groundwork(&["apply", "-i", inv, "--only", "packages,endpoint", "-o", "json"]);
    assert!(out.status.success(), "{}\n{}", text(&out.stderr), text(&out.stdout));
    within(20, "the VIP on master-1 (the highest priority)", || held_by(&lab, "master-1"));
    within(20, "the API through the VIP", || api_through_vip(&lab));

    assert!(lab.docker(&["pause", &lab.container("master-1")]).status.success());
    within(20, "the VIP moved to master-2", || held_by(&lab, "master-2"));
    within(20, "the API through the VIP with master-1 frozen", || api_through_vip(&lab));
    assert!(lab.docker(&["unpause", &lab.container("master-1")]).status.success());
    within(30, "the VIP back on master-1", || held_by(&lab, "master-1"));

    let again = lab.groundwork(&["apply", "-i", inv, "--only", "packages,endpoint", "-o", "json"]);
    assert!(again.status.success(), "{}", text(&again.stderr));
    let report = lab.json(&again);
    let changed = changes(&report);
    assert!(changed.is_empty(), "a second run changed: {changed:?}");
}
