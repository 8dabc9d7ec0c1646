//! By hand, not in tests/run (README, "The Vagrant lab": under TCG a kubeadm control plane takes
//! far longer than CI can give it): a single-node kubeadm cluster in a VM
//! (`tests/vagrant/kubelet.yaml`: master-1 with the worker role, storage-1, the bastion), built by a
//! whole `groundwork apply` from bare VMs; then the handoff's PersistentVolumes, and a pod that
//! mounts a groundwork iSCSI volume (LIO on LVM, CHAP from the handoff's Secret) and the NFS export
//! (kernel nfsd) through the kubelet and writes to both; a second pod, once the first is gone,
//! reads both back.
//!
//! ```sh
//! vagrant/lab down -i tests/vagrant/inventory.yaml        # one VM lab at a time (same networks)
//! GWVM_SIZES=laptop vagrant/lab up -i tests/vagrant/kubelet.yaml
//! cargo nextest run --workspace -E 'binary(vm_kubelet)' --run-ignored only --no-capture
//! ```

use std::process::Output;
use std::time::{Duration, Instant};

use groundwork_lab_tests::{Lab, changes, text};

const INVENTORY: &str = "tests/vagrant/kubelet.yaml";
const KUBECTL: &str = "kubectl --kubeconfig /etc/kubernetes/admin.conf";
/// Any image of the bundle with a shell: kube-proxy's is Debian minbase.
const IMAGE: &str = "registry.k8s.io/kube-proxy:v1.33.3";

fn kubectl(lab: &Lab, args: &str) -> Output {
    lab.sudo_script("master-1", &format!("{KUBECTL} {args}\n"))
}

fn kubectl_ok(lab: &Lab, args: &str) -> String {
    let out = kubectl(lab, args);
    assert!(out.status.success(), "kubectl {args}: {}{}", text(&out.stdout), text(&out.stderr));
    text(&out.stdout)
}

/// `kubectl apply` of `yaml`, given on the script's stdin (the CHAP Secret stays off command lines).
fn kubectl_apply(lab: &Lab, yaml: &str) {
    let out = lab.sudo_script("master-1", &format!("{KUBECTL} apply -f - <<'GWEOF'\n{yaml}\nGWEOF\n"));
    assert!(out.status.success(), "kubectl apply: {}{}", text(&out.stdout), text(&out.stderr));
}

/// Waits (up to `secs`) for pod `name` to end, which it must do successfully.
fn wait_succeeded(lab: &Lab, name: &str, secs: u64) {
    let until = Instant::now() + Duration::from_secs(secs);
    loop {
        let phase = text(&kubectl(lab, &format!("get pod {name} -o jsonpath='{{.status.phase}}'")).stdout);
        match phase.trim() {
            "Succeeded" => return,
            "Failed" => panic!("pod {name} failed:\n{}", text(&kubectl(lab, &format!("describe pod {name}")).stdout)),
            _ if Instant::now() > until => {
                panic!(
                    "pod {name} still {phase:?} after {secs} s:\n{}",
                    text(&kubectl(lab, &format!("describe pod {name}")).stdout)
                )
            }
            _ => std::thread::sleep(Duration::from_secs(5)),
        }
    }
}

fn pod(name: &str, script: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}, namespace: default}}\nspec:\n  restartPolicy: Never\n  \
         containers:\n  - name: c\n    image: '{IMAGE}'\n    imagePullPolicy: Never\n    command: [sh, -c, '{script}']\n    \
         volumeMounts: [{{name: lun, mountPath: /iscsi}}, {{name: export, mountPath: /nfs}}]\n  \
         volumes:\n  - {{name: lun, persistentVolumeClaim: {{claimName: gw-iscsi}}}}\n  \
         - {{name: export, persistentVolumeClaim: {{claimName: gw-nfs}}}}\n"
    )
}

fn claim(name: &str, volume: &str, mode: &str) -> String {
    format!(
        "apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata: {{name: {name}, namespace: default}}\n\
         spec: {{accessModes: [{mode}], volumeName: {volume}, storageClassName: groundwork-static, \
         resources: {{requests: {{storage: 1Gi}}}}}}\n"
    )
}

#[test]
#[ignore = "by hand: GWVM_SIZES=laptop vagrant/lab up -i tests/vagrant/kubelet.yaml (README, \"The Vagrant lab\")"]
fn a_pod_mounts_groundworks_iscsi_and_nfs_volumes_through_the_kubelet() {
    let lab = Lab::require_vm(INVENTORY);
    let token = format!(
        "groundwork-{}",
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_nanos()
    );

    // 1. The whole apply from bare VMs: containerd, the bundle, kubeadm, the CNI, the volumes.
    let started = Instant::now();
    let out = lab.groundwork(&["apply", "-i", INVENTORY, "-o", "json"]);
    assert!(out.status.success(), "apply:\n{}\n{}", text(&out.stdout), text(&out.stderr));
    let applied = changes(&lab.json(&out));
    println!("vm kubelet: apply from bare VMs: {:.0} s, {} change(s)", started.elapsed().as_secs_f64(), applied.len());
    let nodes = kubectl_ok(&lab, "get nodes --no-headers");
    assert!(nodes.contains("master-1") && nodes.contains(" Ready "), "{nodes}");

    // 2. The handoff's manifests: the default StorageClass, a PersistentVolume per volume, the
    //    CHAP Secret the iSCSI volumes log in with.
    let handoff = lab.root.join(".vagrant-lab/handoff/gwvk/manifests");
    for file in ["storage.yaml", "secrets.yaml"] {
        let yaml = std::fs::read_to_string(handoff.join(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
        kubectl_apply(&lab, &yaml);
    }
    let pvs = kubectl_ok(
        &lab,
        "get pv -l app.kubernetes.io/managed-by=groundwork -o jsonpath='{range .items[*]}{.metadata.name} {.spec.iscsi.iqn}{.spec.nfs.path}{\"\\n\"}{end}'",
    );
    let named = |kind: &str| -> String {
        pvs.lines()
            .find(|l| if kind == "iscsi" { l.contains(" iqn.") } else { l.contains(" /") })
            .and_then(|l| l.split_whitespace().next())
            .unwrap_or_else(|| panic!("no {kind} PersistentVolume in the handoff:\n{pvs}"))
            .to_string()
    };
    let (lun, export) = (named("iscsi"), named("nfs"));
    kubectl_apply(
        &lab,
        &format!("{}---\n{}", claim("gw-iscsi", &lun, "ReadWriteOnce"), claim("gw-nfs", &export, "ReadWriteMany")),
    );

    // 3. A pod writes to both; once it is gone, another reads both back.
    let t = Instant::now();
    kubectl_apply(&lab, &pod("gw-writer", &format!("echo {token} >/iscsi/proof && echo {token} >/nfs/proof && sync")));
    wait_succeeded(&lab, "gw-writer", 1800);
    println!("vm kubelet: a pod wrote to its iSCSI and NFS volumes: {:.0} s", t.elapsed().as_secs_f64());
    kubectl_ok(&lab, "delete pod gw-writer --wait=true --timeout=600s");
    let t = Instant::now();
    kubectl_apply(&lab, &pod("gw-reader", "cat /iscsi/proof /nfs/proof"));
    wait_succeeded(&lab, "gw-reader", 1800);
    let read = kubectl_ok(&lab, "logs gw-reader");
    assert_eq!(read.lines().filter(|l| l.trim() == token).count(), 2, "the second pod read:\n{read}");
    println!("vm kubelet: a second pod read both back: {:.0} s", t.elapsed().as_secs_f64());

    // The kubelet logged in with the handoff's CHAP credentials: the session is on master-1.
    let sessions = text(&lab.sudo_script("master-1", "iscsiadm -m session 2>&1 || true\n").stdout);
    println!("vm kubelet: iSCSI sessions after the reader: {}", sessions.trim());
    kubectl_ok(&lab, "delete pod gw-reader --wait=true --timeout=600s");
}
