//! `groundwork report` on the cluster the apply test built: every lab host reached and judged
//! against its baseline, the API server's version, a PersistentVolume with its claim, the
//! certificates' expiries and the journal's phases, each compared with what the cluster's own
//! tools say (kubectl and kubeadm on master-1, `hostname` in each container, the journal file),
//! never with groundwork. The page is then opened in a real headless Chromium and its
//! screenshot read by tesseract: every host's name must be visible. A host that cannot be
//! reached is shown as such and the rest still renders. Changes nothing on the cluster but a
//! PersistentVolume and its claim of its own, removed at the end.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use groundwork_lab_tests::{Lab, ensure_program, text};

const INV: &str = "inventory/lab.yaml";
const PV: &str = "gw-report-pv";
const PVC: &str = "gw-report-claim";

fn kubectl(lab: &Lab, args: &str) -> String {
    let out = lab.kubectl(args);
    assert!(out.status.success(), "kubectl {args}: {}", text(&out.stderr));
    text(&out.stdout)
}

/// A PersistentVolume pre-bound to a claim of the same test, both Bound.
fn claimed_volume(lab: &Lab) {
    let manifests = format!(
        "apiVersion: v1\nkind: PersistentVolume\nmetadata: {{name: {PV}}}\nspec:\n  capacity: {{storage: 1Gi}}\n  \
         accessModes: [ReadWriteOnce]\n  persistentVolumeReclaimPolicy: Retain\n  storageClassName: gw-report\n  \
         hostPath: {{path: /tmp/{PV}}}\n  claimRef: {{namespace: default, name: {PVC}}}\n---\n\
         apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata: {{name: {PVC}, namespace: default}}\nspec:\n  \
         accessModes: [ReadWriteOnce]\n  storageClassName: gw-report\n  volumeName: {PV}\n  \
         resources: {{requests: {{storage: 1Gi}}}}\n"
    );
    let out = lab.kubectl_apply(&manifests);
    assert!(out.status.success(), "the test's volume and claim: {}", text(&out.stderr));
    let started = Instant::now();
    while kubectl(lab, &format!("get pv {PV} -o jsonpath={{.status.phase}}")).trim() != "Bound" {
        assert!(started.elapsed() < Duration::from_secs(90), "{PV} is not Bound after 90 s");
        std::thread::sleep(Duration::from_secs(2));
    }
}

fn remove_claimed_volume(lab: &Lab) {
    let _ = lab.kubectl(&format!("delete pvc {PVC} -n default --ignore-not-found --wait=false"));
    let _ = lab.kubectl(&format!("delete pv {PV} --ignore-not-found --wait=false"));
}

/// Days left on master-1's API server certificate, as kubeadm says (`364d` in RESIDUAL TIME).
fn kubeadm_apiserver_days(lab: &Lab) -> i64 {
    let out = lab.sh_in("master-1", "kubeadm certs check-expiration");
    let listing = text(&out.stdout);
    assert!(out.status.success(), "kubeadm certs check-expiration: {}{listing}", text(&out.stderr));
    listing
        .lines()
        .find(|l| l.split_whitespace().next() == Some("apiserver"))
        .and_then(|l| l.split_whitespace().find_map(|w| w.strip_suffix('d').and_then(|d| d.parse().ok())))
        .unwrap_or_else(|| panic!("no apiserver line with days left in:\n{listing}"))
}

/// What a person sees of `page`: Chromium's screenshot, read by tesseract.
fn seen(page: &Path, dir: &Path) -> String {
    let shot = dir.join("screenshot.png");
    let out = Command::new("chromium")
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars"])
        .args(["--force-device-scale-factor=2", "--window-size=1100,1900"])
        .arg(format!("--user-data-dir={}", dir.join("chromium-profile").display()))
        .arg(format!("--screenshot={}", shot.display()))
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("chromium runs");
    assert!(out.status.success() && shot.is_file(), "chromium's screenshot: {}", text(&out.stderr));
    let ocr = Command::new("tesseract").arg(&shot).arg("-").output().expect("tesseract runs");
    assert!(ocr.status.success(), "tesseract: {}", text(&ocr.stderr));
    text(&ocr.stdout)
}

#[test]
fn the_report_of_the_lab_cluster_matches_what_the_cluster_says_and_a_person_sees_every_host() {
    let lab = Lab::require();
    ensure_program("chromium", &["chromium"]);
    ensure_program("tesseract", &["tesseract-ocr", "tesseract-ocr-eng"]);
    let dir = lab.scratch("report");
    claimed_volume(&lab);

    let started = Instant::now();
    let out = lab.groundwork(&["report", "-i", INV, "--out", dir.to_str().unwrap(), "-o", "json"]);
    println!("groundwork report of the lab cluster: {:.1} s", started.elapsed().as_secs_f64());
    let data = lab.json(&out);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(data["offline"], false);
    assert_eq!(data["not_gathered"].as_array().map(Vec::len), Some(0), "everything gathered: {}", data["not_gathered"]);

    // Every host reached, its hostname the container's own, judged against its baseline.
    let hosts = data["hosts"].as_array().expect("hosts");
    for h in &lab.inventory.hosts {
        let entry = hosts.iter().find(|e| e["name"] == h.name.as_str()).unwrap_or_else(|| panic!("no {}", h.name));
        assert_eq!(entry["reach"]["state"], "reached", "{}: {}", h.name, entry["reach"]);
        let hostname = text(&lab.sh_in(&h.name, "hostname").stdout).trim().to_string();
        assert_eq!(entry["reach"]["hostname"], hostname.as_str(), "{}", h.name);
        let baseline = entry["baseline"].as_array().expect("baseline");
        assert!(!baseline.is_empty(), "{} has no baseline findings", h.name);
        assert!(baseline.iter().all(|f| ["pass", "warn", "fail"].contains(&f["status"].as_str().unwrap_or(""))));
    }
    assert_eq!(data["bastion"]["reach"]["state"], "reached", "{}", data["bastion"]);

    // The Kubernetes version and nodes as kubectl says.
    let version: serde_json::Value = serde_json::from_str(&kubectl(&lab, "version -o json")).expect("kubectl version");
    let k = &data["kubernetes"]["data"];
    assert_eq!(data["kubernetes"]["status"], "gathered", "{}", data["kubernetes"]);
    assert_eq!(k["server_version"], version["serverVersion"]["gitVersion"]);
    let nodes: Vec<&str> = k["nodes"].as_array().unwrap().iter().filter_map(|n| n["name"].as_str()).collect();
    let kubectl_nodes = kubectl(&lab, "get nodes -o jsonpath={.items[*].metadata.name}");
    let mut expected: Vec<&str> = kubectl_nodes.split_whitespace().collect();
    let mut got = nodes.clone();
    expected.sort();
    got.sort();
    assert_eq!(got, expected);

    // The volumes and their claims, the test's own among them.
    let pvs = data["volumes"]["persistent_volumes"]["data"].as_array().expect("persistent volumes gathered");
    let mine = pvs.iter().find(|p| p["name"] == PV).unwrap_or_else(|| panic!("{PV} not in {pvs:?}"));
    assert_eq!(mine["claim"], format!("default/{PVC}").as_str());
    assert_eq!((mine["phase"].as_str(), mine["capacity"].as_str()), (Some("Bound"), Some("1Gi")));
    let kubectl_pvs = kubectl(&lab, "get pv -o jsonpath={.items[*].metadata.name}");
    assert_eq!(pvs.len(), kubectl_pvs.split_whitespace().count(), "every PersistentVolume: {kubectl_pvs}");

    // Certificate expiries: the state's, every node's, the API server's as kubeadm counts.
    assert!(
        data["certificates"]["state"].as_array().is_some_and(|c| c.iter().any(|c| c["path"] == "state pki/ca.crt"))
    );
    let node_certs = data["certificates"]["nodes"]["data"]["certificates"].as_array().expect("nodes' certificates");
    for h in lab.inventory.hosts.iter().filter(|h| h.roles.iter().any(|r| matches!(r.as_str(), "master" | "worker"))) {
        assert!(node_certs.iter().any(|c| c["host"] == h.name.as_str()), "no certificate of {}", h.name);
    }
    let apiserver = node_certs
        .iter()
        .find(|c| c["host"] == "master-1" && c["path"] == "/etc/kubernetes/pki/apiserver.crt")
        .expect("master-1's apiserver.crt");
    let days = apiserver["days_left"].as_i64().expect("days");
    let kubeadm_days = kubeadm_apiserver_days(&lab);
    assert!((days - kubeadm_days).abs() <= 1, "report: {days} days, kubeadm: {kubeadm_days}");

    // The journal's phases, host by host, as the file holds them.
    let journal: serde_json::Value =
        serde_json::from_slice(&std::fs::read(lab.cluster_state().join("journal.json")).expect("journal")).unwrap();
    let phases = data["last_apply"]["phases"].as_array().expect("phases");
    let on_file = journal["phases"].as_object().expect("journal phases");
    assert_eq!(phases.len(), on_file.len());
    for p in phases {
        let name = p["phase"].as_str().unwrap();
        let hosts_on_file = on_file[name].as_object().expect("phase in the journal");
        assert_eq!(p["hosts"].as_array().unwrap().len(), hosts_on_file.len(), "{name}");
        for h in p["hosts"].as_array().unwrap() {
            let e = &hosts_on_file[h["host"].as_str().unwrap()];
            assert_eq!((&h["took_ms"], &h["at"], &h["status"]), (&e["took_ms"], &e["at"], &e["status"]), "{name}");
        }
    }
    assert!(phases.iter().any(|p| p["phase"] == "init"), "the apply's phases are there");
    remove_claimed_volume(&lab);

    // The page, as a person sees it; and its PDF.
    let html = std::fs::read_to_string(dir.join("report.html")).expect("report.html");
    for secret in groundwork_lab_tests::lab_secrets(&lab) {
        assert!(!html.contains(&secret.1), "{} is in the page", secret.0);
    }
    let pdf = std::fs::read(dir.join("report.pdf")).expect("report.pdf");
    assert!(pdf.starts_with(b"%PDF"));
    let page = seen(&dir.join("report.html"), &dir).to_lowercase();
    let missing: Vec<&str> =
        lab.inventory.hosts.iter().map(|h| h.name.as_str()).filter(|n| !page.contains(n)).collect();
    assert!(missing.is_empty(), "not visible on the page: {missing:?}\nwhat tesseract read:\n{page}");
    assert!(page.contains("bastion"), "{page}");
}

#[test]
fn a_host_that_cannot_be_reached_is_shown_so_and_the_rest_of_the_report_renders() {
    let lab = Lab::require();
    let dir = lab.scratch("report-unreachable");
    // A worker nobody runs, on the lab's network.
    let inventory = lab.inventory_copy(&dir, |t| {
        t.replace(
            "  - {name: worker-4, address: 10.78.0.104, roles: [worker]}\n",
            "  - {name: worker-4, address: 10.78.0.104, roles: [worker]}\n  - {name: worker-9, address: 10.78.0.199, roles: [worker]}\n",
        )
    });
    let out_dir = dir.join("out");
    let out = lab.groundwork(&[
        "report",
        "-i",
        inventory.to_str().unwrap(),
        "--accept-new",
        "--connect-timeout",
        "5",
        "--out",
        out_dir.to_str().unwrap(),
        "-o",
        "json",
    ]);
    let data = lab.json(&out);
    assert!(out.status.success(), "one host does not fail the report: {}", text(&out.stderr));
    let hosts = data["hosts"].as_array().expect("hosts");
    let gone = hosts.iter().find(|h| h["name"] == "worker-9").expect("worker-9 listed");
    assert_eq!(gone["reach"]["state"], "unreachable", "{gone}");
    assert!(gone["reach"]["reason"].as_str().is_some_and(|r| !r.is_empty()));
    for h in &lab.inventory.hosts {
        let e = hosts.iter().find(|e| e["name"] == h.name.as_str()).expect("listed");
        assert_eq!(e["reach"]["state"], "reached", "{}: {}", h.name, e["reach"]);
    }
    let html = std::fs::read_to_string(out_dir.join("report.html")).expect("report.html");
    assert!(html.contains("UNREACHABLE") && html.contains("7. The last apply"), "the rest renders");
}
