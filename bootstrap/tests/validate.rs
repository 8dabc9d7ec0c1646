//! `groundwork validate` as an operator meets it: located errors with a fix, warnings, a summary.
//! The README's three examples of located errors are the first three tests here.

use std::path::{Path, PathBuf};
use std::process::Command;

use groundwork::inventory::{self, LoadError, Severity};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A minimal valid inventory in a temporary directory, with a key file that exists.
struct Fixture {
    dir: PathBuf,
}

const BASE: &str = "\
apiVersion: groundwork/v1alpha1
kind: Cluster
cluster:
  name: test
  nodeNetwork: 192.168.50.0/24
ssh:
  keyFile: id_test
hosts:
  - {name: master-1, address: 192.168.50.11, roles: [master]}
  - {name: master-2, address: 192.168.50.12, roles: [master]}
  - {name: master-3, address: 192.168.50.13, roles: [master]}
  - {name: worker-1, address: 192.168.50.21, roles: [worker]}
  - {name: worker-2, address: 192.168.50.22, roles: [worker]}
  - {name: worker-3, address: 192.168.50.23, roles: [worker]}
  - {name: worker-4, address: 192.168.50.24, roles: [worker]}
";

impl Fixture {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("gw-validate-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("id_test"), "not a real key; only its existence is checked\n").unwrap();
        Fixture { dir }
    }
    fn write(&self, text: &str) -> PathBuf {
        let p = self.dir.join("inventory.yaml");
        std::fs::write(&p, text).unwrap();
        p
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn run_validate(path: &Path) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_groundwork")).args(["validate", "-i"]).arg(path).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

fn errors_of(path: &Path) -> Vec<inventory::Diagnostic> {
    match inventory::load(path) {
        Err(LoadError::Invalid { diagnostics, .. }) => diagnostics,
        Ok(_) => panic!("{} should be invalid", path.display()),
        Err(e) => panic!("{e}"),
    }
}

#[test]
fn example_1_misspelt_key_names_line_column_and_the_right_key() {
    let f = Fixture::new("typo");
    let p = f.write(&BASE.replace("{name: worker-2, address:", "{name: worker-2, adress:"));
    let (code, _, err) = run_validate(&p);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("error: hosts[4].adress: unknown key `adress` in `hosts[4]`"), "{err}");
    assert!(err.contains("inventory.yaml:13:"), "line of the typo: {err}");
    assert!(err.contains("did you mean `address`?"), "{err}");
    assert!(err.contains("nothing was changed"), "{err}");
}

#[test]
fn example_2_overlapping_networks_point_at_the_second_network() {
    let f = Fixture::new("cidr");
    let p = f.write(&BASE.replace(
        "  nodeNetwork: 192.168.50.0/24\n",
        "  nodeNetwork: 192.168.50.0/24\n  serviceCIDR: 10.244.128.0/20\n",
    ));
    let (code, _, err) = run_validate(&p);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("cluster.serviceCIDR: 10.244.128.0/20 overlaps cluster.podCIDR (10.244.0.0/16)"), "{err}");
    assert!(err.contains("inventory.yaml:6:16"), "{err}");
    assert!(err.contains("help: pod, service and node networks must be disjoint"), "{err}");
}

#[test]
fn example_3_even_masters_and_inline_secret() {
    let f = Fixture::new("even");
    let text = BASE
        .replace("  - {name: master-3, address: 192.168.50.13, roles: [master]}\n", "")
        .replace("  keyFile: id_test\n", "  keyFile: id_test\n  sudoPassword: hunter2\n");
    let p = f.write(&text);
    let (code, _, err) = run_validate(&p);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("ssh.sudoPassword: secrets are never written in the inventory"), "{err}");
    assert!(!err.contains("hunter2"), "a secret written inline must not be echoed: {err}");
    // The inline secret stops deserialisation; fix it and the topology error shows.
    let p = f.write(&text.replace("  sudoPassword: hunter2\n", "  sudoPassword: {env: GW_TEST_SUDO}\n"));
    let (code, _, err) = run_validate(&p);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("2 masters: etcd needs an odd number to keep quorum"), "{err}");
    assert!(err.contains("use 1 or 3 masters"), "{err}");
}

#[test]
fn valid_inventory_prints_a_summary_and_the_lab_profile() {
    let f = Fixture::new("valid");
    let p = f.write(&format!("{BASE}baselines:\n  profile: lab\n"));
    let (code, out, err) = run_validate(&p);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("valid"), "{out}");
    assert!(out.contains("master    3 (master-1, master-2, master-3)"), "{out}");
    assert!(out.contains("baseline profile `lab` is in force"), "{out}");
    assert!(out.contains("worker   512Mi RAM, 1 vCPU"), "{out}");
}

#[test]
fn every_finding_is_located_in_the_file() {
    let f = Fixture::new("many");
    let text = BASE
        .replace("address: 192.168.50.22", "address: 192.168.50.21")
        .replace("name: worker-3", "name: worker-1")
        .replace("keyFile: id_test", "keyFile: missing_key")
        .replace("  nodeNetwork: 192.168.50.0/24\n", "  nodeNetwork: 192.168.50.0/24\n  podCIDR: 192.168.0.0/16\n");
    let p = f.write(&text);
    let d = errors_of(&p);
    let find = |needle: &str| {
        d.iter().find(|d| d.message.contains(needle)).unwrap_or_else(|| panic!("no finding with `{needle}` in {d:#?}"))
    };
    let dup_addr = find("address `192.168.50.21` is used twice");
    assert_eq!((dup_addr.location.line, dup_addr.path.as_str()), (14, "hosts[4].address"));
    assert!(dup_addr.help.as_deref().unwrap().contains("line 13"));
    assert_eq!(find("host name `worker-1` is used twice").location.line, 15);
    assert_eq!(find("key file").location.line, 8);
    let overlap = find("overlaps cluster.podCIDR");
    assert_eq!(overlap.path, "cluster.nodeNetwork");
    assert!(d.iter().all(|d| d.location.line >= 1 && d.location.column >= 1));
}

#[test]
fn warnings_do_not_fail_validation() {
    let f = Fixture::new("warn");
    let text = BASE.replace("  - {name: master-2, address: 192.168.50.12, roles: [master]}\n  - {name: master-3, address: 192.168.50.13, roles: [master]}\n", "");
    let p = f.write(&text);
    let loaded = inventory::load(&p).expect("one master is allowed");
    let w: Vec<_> =
        loaded.warnings.iter().filter(|w| w.severity == Severity::Warning).map(|w| w.message.as_str()).collect();
    assert!(w.iter().any(|m| m.contains("one master")), "{w:?}");
}

#[test]
fn sections_need_hosts_with_their_role() {
    let f = Fixture::new("roles");
    let p = f.write(&format!("{BASE}storage:\n  profile: dev\ndatabase:\n  host: worker-1\n"));
    let d = errors_of(&p);
    assert!(d.iter().any(|d| d.path == "storage" && d.message == "no host has role `storage`"), "{d:#?}");
    assert!(
        d.iter().any(|d| d.path == "database.host" && d.message.contains("does not have role `database`")),
        "{d:#?}"
    );
}

#[test]
fn wrong_types_and_values_are_explained() {
    let f = Fixture::new("types");
    let p = f.write(&BASE.replace("  keyFile: id_test\n", "  keyFile: id_test\n  port: twenty-two\n"));
    let d = errors_of(&p);
    assert_eq!(d[0].path, "ssh.port");
    assert!(d[0].message.starts_with("expected u16, found string"), "{:?}", d[0]);
    assert_eq!(d[0].location.line, 8);

    let p = f.write(&BASE.replace("roles: [worker]}\n  - {name: worker-4", "roles: [wroker]}\n  - {name: worker-4"));
    let d = errors_of(&p);
    assert!(d[0].help.as_deref().unwrap().starts_with("did you mean `worker`?"), "{:?}", d[0]);
}

#[test]
fn the_shipped_examples_validate_and_name_what_this_machine_lacks() {
    // The example's key, secret, CNI manifest and bundle files live on the operator's machine:
    // `validate` checks the file and warns about them, so a newcomer's first command succeeds.
    let example = repo().join("inventory/sdc-example.yaml");
    let (code, out, err) = run_validate(&example);
    assert_eq!(code, 0, "the example does not validate:\n{out}{err}");
    for missing in
        ["cluster.cniManifest", "ssh.keyFile", "packages.bundle:", "packages.bundleKey", "database.users[0].password"]
    {
        assert!(
            err.contains(&format!("warning: {missing}")) && err.contains("on this machine"),
            "no warning for {missing}: {err}"
        );
    }
    assert!(err.contains("`plan` and `apply` refuse"), "{err}");
    // What runs against hosts needs them: the same file is refused by `validate --here` and by
    // the loader every connecting command uses, naming each missing file.
    let out = Command::new(env!("CARGO_BIN_EXE_groundwork"))
        .args(["validate", "--here", "-i"])
        .arg(&example)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let d = errors_of(&example);
    let errors: Vec<_> = d.iter().filter(|d| d.is_error()).collect();
    assert_eq!(errors.len(), 5, "{errors:#?}");
    assert!(errors.iter().all(|e| e.message.contains("does not exist")), "{errors:#?}");
    // The lab's inventory is written by `tests/lab/lab up`; its files are there once the lab is.
    let (code, out, err) = run_validate(&repo().join("inventory/lab.yaml"));
    assert_eq!(code, 0, "inventory/lab.yaml does not validate:\n{out}{err}");
}

#[test]
fn extra_args_must_be_flags_with_one_word_values_and_not_groundworks_own() {
    let f = Fixture::new("extra-args");
    let good = BASE.replace(
        "  nodeNetwork: 192.168.50.0/24\n",
        "  nodeNetwork: 192.168.50.0/24\n  apiServer:\n    extraArgs: {event-ttl: 2h}\n  etcdExtraArgs: {quota-backend-bytes: \"4294967296\"}\n",
    );
    inventory::load(&f.write(&good)).unwrap_or_else(|e| panic!("valid extra args refused: {e}"));

    let bad = BASE.replace(
        "  nodeNetwork: 192.168.50.0/24\n",
        "  nodeNetwork: 192.168.50.0/24\n  apiServer:\n    extraArgs: {--event-ttl: 2h, audit-log-path: \"/var/log/a b\"}\n  \
         etcdExtraArgs: {data-dir: /tmp/x}\n",
    );
    let d = errors_of(&f.write(&bad));
    let said = |path: &str, text: &str| d.iter().any(|d| d.path == path && d.message.contains(text));
    assert!(said("cluster.apiServer.extraArgs.--event-ttl", "is not a flag name"), "{d:#?}");
    assert!(said("cluster.apiServer.extraArgs.audit-log-path", "blanks"), "{d:#?}");
    assert!(said("cluster.etcdExtraArgs.data-dir", "set by groundwork itself"), "{d:#?}");

    let stacked = good.replace("  apiServer:", "  etcd: stacked\n  apiServer:");
    let d = errors_of(&f.write(&stacked));
    assert!(d.iter().any(|d| d.path == "cluster.etcdExtraArgs" && d.message.contains("external etcd only")), "{d:#?}");
}

#[test]
fn a_registry_section_names_its_host_and_mirrors_as_images_spell_them() {
    let f = Fixture::new("registry");
    let with_registry = |registry: &str| {
        format!("{BASE}  - {{name: store-1, address: 192.168.50.31, roles: [registry]}}\nregistry:\n{registry}")
    };
    let p = f.write(&with_registry("  mirrors: [docker.io, registry.k8s.io, registry.example.org:5000]\n"));
    assert!(inventory::load(&p).is_ok(), "a valid registry section is refused: {:?}", inventory::load(&p).err());
    let p = f.write(&with_registry("  host: worker-1\n  mirrors: [https://docker.io, quay.io, quay.io]\n"));
    let errors: Vec<String> = errors_of(&p).iter().map(|d| format!("{}: {}", d.path, d.message)).collect();
    assert!(errors.iter().any(|e| e == "registry.host: host `worker-1` does not have role `registry`"), "{errors:?}");
    assert!(
        errors.iter().any(|e| e == "registry.mirrors[0]: `https://docker.io` is not a registry host name"),
        "{errors:?}"
    );
    assert!(errors.iter().any(|e| e == "registry.mirrors[2]: `quay.io` is listed twice"), "{errors:?}");
    let (code, _, err) = run_validate(&p);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("inventory.yaml:"), "located: {err}");
    assert!(err.contains("without a scheme or path"), "the fix is said: {err}");
}
