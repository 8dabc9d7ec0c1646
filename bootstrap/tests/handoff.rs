//! `groundwork handoff -i FILE` as an operator meets it, before any cluster exists: it says the
//! kubeconfig is not there yet and writes everything else; a second run changes nothing; no
//! password reaches stdout, stderr or the trace log; `--run-deployer` names what is missing.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const APP_PASSWORD: &str = "cli-test-app-password-5e1b";
const CHAP_PASSWORD: &str = "cli-test-chap-password-a03c";

const INVENTORY: &str = "\
apiVersion: groundwork/v1alpha1
kind: Cluster
cluster:
  name: handoff-test
  nodeNetwork: 192.168.60.0/24
ssh:
  keyFile: id_test
hosts:
  - {name: master-1, address: 192.168.60.11, roles: [master]}
  - {name: worker-1, address: 192.168.60.21, roles: [worker]}
  - {name: worker-2, address: 192.168.60.22, roles: [worker]}
  - {name: worker-3, address: 192.168.60.23, roles: [worker]}
  - {name: worker-4, address: 192.168.60.24, roles: [worker]}
  - {name: storage-1, address: 192.168.60.31, roles: [storage]}
  - {name: db-1, address: 192.168.60.41, roles: [database]}
storage:
  iscsi:
    chap: {user: digit, password: {file: chap.password}}
database:
  databases:
    - {name: egov, owner: egov_owner}
  users:
    - {name: egov_app, database: egov, password: {file: app.password}}
handoff:
  directory: out
  deployer: helm
  digit:
    source: DIGIT_SOURCE
    environments:
      - {name: dev, domain: dev.digit.test.example}
      - {name: uat, domain: uat.digit.test.example, tenantId: pb}
";

/// DIGIT's own deployment, unmodified, next to the repository.
fn digit_source() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/digit/ccrs/devops/deploy-as-code")
}

struct Fixture {
    dir: tempfile::TempDir,
}

impl Fixture {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join("id_test"), "not a real key; only its existence is checked\n").expect("key");
        std::fs::write(dir.path().join("app.password"), format!("{APP_PASSWORD}\n")).expect("app password");
        std::fs::write(dir.path().join("chap.password"), format!("{CHAP_PASSWORD}\n")).expect("chap password");
        let inventory = INVENTORY.replace("DIGIT_SOURCE", &digit_source().display().to_string());
        std::fs::write(dir.path().join("inventory.yaml"), inventory).expect("inventory");
        Fixture { dir }
    }
    fn inventory(&self) -> PathBuf {
        self.dir.path().join("inventory.yaml")
    }
    fn out(&self) -> PathBuf {
        self.dir.path().join("out/handoff-test")
    }
    fn run(&self, extra: &[&str], path_var: Option<&Path>) -> Output {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_groundwork"));
        cmd.arg("-vv").args(["handoff", "-i"]).arg(self.inventory()).args(extra).env("RUST_LOG", "trace");
        if let Some(p) = path_var {
            cmd.env("PATH", p);
        }
        cmd.output().expect("groundwork runs")
    }
}

fn text(out: &Output) -> (String, String) {
    (String::from_utf8_lossy(&out.stdout).into(), String::from_utf8_lossy(&out.stderr).into())
}

fn owner_password(f: &Fixture) -> String {
    let file = f.dir.path().join(".groundwork/handoff-test/secrets/db-egov_owner");
    std::fs::read_to_string(file).expect("generated owner password").trim().to_string()
}

#[test]
fn handoff_without_a_cluster_writes_everything_else_and_says_so() {
    let f = Fixture::new();
    let first = f.run(&[], None);
    let (stdout, stderr) = text(&first);
    assert!(first.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("no admin kubeconfig"), "{stdout}");
    assert!(stdout.contains("NEXT-STEPS.md"), "{stdout}");
    assert!(!f.out().join("kubeconfig").exists());
    for file in ["NEXT-STEPS.md", "manifests/secrets.yaml", "digit/helmfile/uat/env.yaml", "manifests/storage.yaml"] {
        assert!(f.out().join(file).exists(), "{file} written");
    }
    let secrets = std::fs::read_to_string(f.out().join("digit/helmfile/dev/env-secrets.yaml")).expect("secrets");
    let owner = owner_password(&f);
    assert_eq!(owner.len(), 32);
    assert!(secrets.contains(APP_PASSWORD) && secrets.contains(&owner), "the files do hold the passwords");
    for password in [APP_PASSWORD, CHAP_PASSWORD, owner.as_str()] {
        assert!(!stdout.contains(password) && !stderr.contains(password), "a password was printed");
    }

    let second = f.run(&[], None);
    let (stdout, stderr) = text(&second);
    assert!(second.status.success(), "{stderr}");
    let rewritten = stdout.lines().filter(|l| l.split_whitespace().nth(1) == Some("written")).count();
    assert_eq!(rewritten, 0, "nothing rewritten on a second run:\n{stdout}");
    assert!(stdout.contains("0 of "), "{stdout}");
    assert_eq!(owner_password(&f), owner, "the generated password is kept");
}

#[test]
fn strict_fails_while_digits_placeholders_remain_and_names_each() {
    let f = Fixture::new();
    let out = f.run(&["--strict"], None);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    let line = format!("{}:111: <filestore_s3_bucket>", f.out().join("digit/helmfile/uat/env.yaml").display());
    assert!(stderr.contains(&line), "{stderr}");
    assert!(f.out().join("digit/helmfile/uat/env.yaml").exists(), "the files are written all the same");
    let json = f.run(&["-o", "json"], None);
    let json: serde_json::Value = serde_json::from_slice(&json.stdout).expect("json");
    assert!(json["placeholders"].as_array().is_some_and(|p| p.iter().any(|p| p["text"] == "<assets_s3_bucket>")));
}

#[test]
fn json_output_lists_every_file() {
    let f = Fixture::new();
    let out = f.run(&["-o", "json"], None);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    let json: serde_json::Value = serde_json::from_str(&stdout).expect("json on stdout");
    let files = json["files"].as_array().expect("files");
    assert!(files.iter().any(|f| f["path"] == "manifests/storage.yaml" && f["status"] == "written"));
    assert_eq!(json["deploy"]["deployer"], "helmfile");
}

#[test]
fn run_deployer_without_a_cluster_or_programs_names_what_is_missing() {
    let f = Fixture::new();
    let out = f.run(&["--run-deployer"], None);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("run `groundwork apply` first"), "{stderr}");

    // With a kubeconfig in the state directory, an empty PATH: the missing programs are named.
    let state = f.dir.path().join(".groundwork/handoff-test");
    std::fs::write(state.join("admin.conf"), "apiVersion: v1\nkind: Config\n").expect("kubeconfig");
    let empty = f.dir.path().join("empty-path");
    std::fs::create_dir_all(&empty).expect("dir");
    let out = f.run(&["--run-deployer"], Some(&empty));
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("`kubectl`, `helmfile`, `helm` not installed"), "{stderr}");
    assert!(stderr.contains("NEXT-STEPS.md"), "{stderr}");
    assert!(stdout.contains("kubeconfig") && f.out().join("kubeconfig").exists(), "{stdout}");
}
