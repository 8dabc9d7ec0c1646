//! The report gathered offline from an inventory and a state directory written here (a journal,
//! certificates with their keys, generated passwords), and the page rendered from it.

use super::data::{Reach, ReportData};
use super::html::render;
use crate::ops::check::{Finding, Status};

const OWNER_PASSWORD: &str = "state-owner-password-7d1f0c";
const APP_PASSWORD: &str = "inventory-app-password-91be";
const CHAP_PASSWORD: &str = "chap-password-5a77e2";

const INVENTORY: &str = "\
apiVersion: groundwork/v1alpha1
kind: Cluster
cluster:
  name: report-test
  nodeNetwork: 192.168.70.0/24
  controlPlaneEndpoint: {mode: vip, address: 192.168.70.5}
ssh:
  keyFile: id_test
bastion:
  address: 203.0.113.7
hosts:
  - {name: master-1, address: 192.168.70.11, roles: [master]}
  - {name: master-2, address: 192.168.70.12, roles: [master]}
  - {name: master-3, address: 192.168.70.13, roles: [master]}
  - {name: worker-1, address: 192.168.70.21, roles: [worker]}
  - {name: worker-2, address: 192.168.70.22, roles: [worker]}
  - {name: storage-1, address: 192.168.70.31, roles: [storage, registry]}
  - {name: db-1, address: 192.168.70.41, roles: [database]}
storage:
  iscsi:
    chap: {user: digit, password: {file: chap.password}}
  volumes:
    - {name: kafka, protocol: iscsi, count: 2, size: 20Gi}
    - {name: filestore, protocol: nfs, count: 1, size: 5Gi}
registry: {}
database:
  databases:
    - {name: egov, owner: egov_owner}
  users:
    - {name: egov_app, database: egov, password: {file: app.password}}
";

const HOSTS: [&str; 7] = ["master-1", "master-2", "master-3", "worker-1", "worker-2", "storage-1", "db-1"];

struct Fixture {
    dir: tempfile::TempDir,
    /// The body lines of the state's private key.
    key_lines: Vec<String>,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    std::fs::write(p.join("id_test"), "not a real key; only its existence is checked\n").unwrap();
    std::fs::write(p.join("chap.password"), format!("{CHAP_PASSWORD}\n")).unwrap();
    std::fs::write(p.join("app.password"), format!("{APP_PASSWORD}\n")).unwrap();
    std::fs::write(p.join("inventory.yaml"), INVENTORY).unwrap();
    let state = p.join(".groundwork/report-test");
    std::fs::create_dir_all(state.join("secrets")).unwrap();
    std::fs::write(state.join("secrets/db-egov_owner"), OWNER_PASSWORD).unwrap();
    // A CA in the state's PKI, its key beside it.
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(vec![]).unwrap();
    params.distinguished_name.push(rcgen::DnType::CommonName, "kubernetes");
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::days(1);
    params.not_after = now + time::Duration::days(3650);
    let cert = params.self_signed(&key).unwrap();
    std::fs::create_dir_all(state.join("pki")).unwrap();
    std::fs::write(state.join("pki/ca.crt"), cert.pem()).unwrap();
    let key_pem = key.serialize_pem();
    std::fs::write(state.join("pki/ca.key"), &key_pem).unwrap();
    let key_lines = key_pem.lines().filter(|l| !l.starts_with("-----") && l.len() >= 16).map(str::to_string).collect();
    // The journal of an apply: two phases, one failure.
    let journal = serde_json::json!({"phases": {
        "etcd": {
            "master-1": {"status": "done", "at": 1_780_000_100, "took_ms": 4200, "changes": 3},
            "master-2": {"status": "done", "at": 1_780_000_101, "took_ms": 5100, "changes": 3},
        },
        "prepare-os": {
            "worker-1": {"status": "done", "at": 1_780_000_050, "took_ms": 61_000, "changes": 9},
            "worker-2": {"status": "failed", "at": 1_780_000_055, "took_ms": 900, "changes": 0,
                         "error": "apt-get: unable to locate package <b>x</b>"},
        },
    }});
    std::fs::write(state.join("journal.json"), serde_json::to_vec(&journal).unwrap()).unwrap();
    Fixture { dir, key_lines }
}

fn offline(f: &Fixture) -> ReportData {
    let loaded = crate::inventory::load(&f.dir.path().join("inventory.yaml")).expect("the fixture loads");
    tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(super::gather(&loaded, None))
}

/// The `<svg>…</svg>` of a page.
fn picture(page: &str) -> &str {
    let start = page.find("<svg").expect("an svg");
    let end = page.find("</svg>").expect("its end");
    &page[start..end]
}

#[test]
fn offline_data_comes_from_the_inventory_and_the_state_and_says_what_was_not_asked() {
    let f = fixture();
    let data = offline(&f);
    assert!(data.offline);
    assert_eq!(data.hosts.iter().map(|h| h.name.as_str()).collect::<Vec<_>>(), HOSTS);
    assert!(data.hosts.iter().all(|h| matches!(h.reach, Reach::NotAsked)));
    assert_eq!(data.bastion.as_ref().map(|b| b.address.as_str()), Some("203.0.113.7:22"));
    assert!(data.not_gathered.iter().any(|n| n.section == "Kubernetes" && n.reason.contains("--offline")));
    // The journal in apply's order (prepare-os before etcd), with its failure.
    let phases: Vec<&str> = data.last_apply.phases.iter().map(|p| p.phase.as_str()).collect();
    assert_eq!(phases, ["prepare-os", "etcd"]);
    assert_eq!(data.last_apply.phases[0].failed(), 1);
    assert_eq!(data.last_apply.phases[1].longest_ms(), 5100);
    // The state's CA, judged.
    assert_eq!(data.certificates.state.len(), 1);
    let ca = &data.certificates.state[0];
    assert!(ca.is_ca && ca.subject == "kubernetes" && ca.days_left >= 3649, "{ca:?}");
    // Volumes as planned; passwords by where they are kept.
    // The inventory's sets replace the profile's of the same name.
    let size = |name: &str| data.volumes.planned.iter().find(|v| v.name == name).map(|v| v.size.as_str());
    assert_eq!((size("kafka-1"), size("kafka-2"), size("filestore-0")), (Some("20Gi"), None, Some("5Gi")));
    assert!(data.volumes.planned.iter().find(|v| v.name == "kafka-0").is_some_and(|v| v.access.starts_with("iSCSI ")));
    let db = data.database.as_ref().expect("database");
    assert_eq!(db.host, "db-1");
    let owner = db.roles.iter().find(|r| r.name == "egov_owner").unwrap();
    assert_eq!(owner.password, "stored in the state directory's secrets/db-egov_owner");
    let app = db.roles.iter().find(|r| r.name == "egov_app").unwrap();
    assert!(app.password.contains("app.password"), "{}", app.password);
    assert!(data.registry.as_ref().is_some_and(|r| r.host == "storage-1" && r.password.contains("first apply")));
}

#[test]
fn the_page_has_every_section_and_names_every_host_in_its_picture() {
    let f = fixture();
    let data = offline(&f);
    let page = render(&data);
    assert!(page.starts_with("<!DOCTYPE html>"));
    for section in [
        "1. The cluster",
        "2. Hosts against their baselines",
        "3. Versions",
        "4. Volumes and what claims them",
        "5. The database",
        "6. Certificate expiries",
        "7. The last apply: phases and times",
    ] {
        assert!(page.contains(&format!("<h2>{section}</h2>")), "no section {section}");
    }
    let svg = picture(&page);
    for host in HOSTS.iter().chain(&["bastion"]) {
        assert!(svg.contains(&format!(">{host}</text>")), "{host} is not named in the picture");
    }
    assert!(svg.contains("virtual IP 192.168.70.5:6443"), "the endpoint is drawn");
    assert!(svg.contains("node network 192.168.70.0/24"), "the node network is drawn");
    // Offline, plainly said, and no host claims to have been reached.
    assert!(page.contains("Not gathered") && page.contains("--offline"));
    assert!(!page.contains("class=\"ok\">reached"));
    // Self-contained: nothing fetched, no script.
    for outside in ["<script", "src=", "href=", "@import", "url("] {
        assert!(!page.contains(outside), "the page holds {outside}");
    }
    // The journal's failure, its markup escaped.
    assert!(page.contains("1 FAILED") && page.contains("unable to locate package &lt;b&gt;x&lt;/b&gt;"));
}

#[test]
fn a_name_with_markup_is_escaped_everywhere_it_appears() {
    let f = fixture();
    let mut data = offline(&f);
    let hostile = "<script>alert('owned')</script>";
    data.hosts[3].name = hostile.to_string();
    data.hosts[3].address = "\"><img src=x onerror=alert(1)>".to_string();
    data.cluster.name = "</title><script>x()</script>".to_string();
    let page = render(&data);
    assert!(!page.contains("<script"), "markup from the data reached the page");
    assert!(!page.contains("<img"), "markup from the data reached the page");
    let escaped = "&lt;script&gt;alert(&#39;owned&#39;)&lt;/script&gt;";
    assert!(picture(&page).contains(escaped), "the name is drawn, escaped");
    assert!(page.matches(escaped).count() >= 2, "and listed among the hosts, escaped");
}

#[test]
fn an_unreachable_host_is_shown_as_such_with_its_reason_and_the_rest_renders() {
    let f = fixture();
    let mut data = offline(&f);
    data.offline = false;
    data.not_gathered.clear();
    data.hosts[4].reach = Reach::Unreachable { reason: "worker-2: connection refused by 192.168.70.22:22".into() };
    let pass =
        |check| Finding { check, status: Status::Pass, measured: "ok".into(), required: "ok".into(), advice: None };
    data.hosts[0].baseline = vec![pass("memory"), Finding { status: Status::Fail, ..pass("cpus") }];
    data.hosts[0].reach = Reach::Reached(Box::new(super::data::HostSummary {
        hostname: "master-1".into(),
        os: "Debian GNU/Linux 12 (bookworm)".into(),
        kernel: "6.1.0-28-amd64".into(),
        architecture: "x86_64".into(),
        cpus: 1,
        memory_bytes: 2 << 30,
        root_total_bytes: Some(20 << 30),
        root_available_bytes: Some(5 << 30),
        clock_skew_ms: 3,
        versions: super::data::Versions { kubelet: Some("v1.33.3".into()), ..Default::default() },
        servers: vec![],
    }));
    let json = serde_json::to_value(&data).expect("the data serialises");
    assert_eq!(json["hosts"][0]["reach"]["state"], "reached");
    assert_eq!(json["hosts"][0]["reach"]["kernel"], "6.1.0-28-amd64");
    assert_eq!(json["hosts"][4]["reach"]["state"], "unreachable");
    let page = render(&data);
    assert!(page.contains("<td>v1.33.3</td>"), "the reached host's versions are listed");
    assert!(page.contains("cpus FAIL"), "the failing finding is named");
    let svg = picture(&page);
    let box_of = |name: &str| {
        let at = svg.find(&format!(">{name}</text>")).unwrap();
        let start = svg[..at].rfind("<g class=\"host").unwrap();
        &svg[start..at]
    };
    assert!(box_of("worker-2").starts_with("<g class=\"host fail\""), "{}", box_of("worker-2"));
    assert!(svg.contains("UNREACHABLE"));
    assert!(page.contains("connection refused by 192.168.70.22:22"), "the reason is on the page");
    assert!(page.contains("1 of 2 checks pass"), "the baseline's result is shown");
    assert!(box_of("worker-1").starts_with("<g class=\"host unknown\""));
    assert!(page.contains("7. The last apply"), "the rest renders");
}

#[test]
fn no_secret_reaches_the_page_or_the_json() {
    let f = fixture();
    let data = offline(&f);
    let page = render(&data);
    let json = serde_json::to_string(&data).unwrap();
    assert!(!f.key_lines.is_empty());
    let secrets = [OWNER_PASSWORD, APP_PASSWORD, CHAP_PASSWORD].map(String::from);
    for s in secrets.iter().chain(&f.key_lines) {
        assert!(!page.contains(s.as_str()), "a secret is in the page");
        assert!(!json.contains(s.as_str()), "a secret is in the JSON");
    }
    assert!(!page.contains("PRIVATE KEY"));
    assert!(page.contains("secrets/db-egov_owner"), "where the password is kept is said");
}
