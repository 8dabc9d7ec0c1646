//! The handoff files: golden copies byte for byte (`GROUNDWORK_BLESS=1` rewrites them), every
//! file parses, manifests read back into k8s-openapi types, DIGIT's files have exactly the key
//! paths DIGIT reads, modes, a second run that changes nothing, and no password anywhere but in
//! the secrets files.

use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::{Endpoints, Namespace, PersistentVolume, Secret as KubeSecret, Service};
use k8s_openapi::api::storage::v1::StorageClass;
use serde::de::DeserializeOwned;

use super::*;
use crate::inventory::Inventory;
use crate::inventory::values::SecretRef;

const APP_PASSWORD: &str = "fixture-app-password-9f2c";
const OWNER_PASSWORD: &str = "fixture-owner-password-41d7";
const CHAP_PASSWORD: &str = "fixture-chap-password-77aa";
const KUBECONFIG_TEXT: &str = "apiVersion: v1\nkind: Config\nclusters: []\n";

fn secret(dir: &Path, name: &str, value: &str) -> Secret {
    std::fs::write(dir.join(name), value).expect("secret fixture");
    crate::secrets::resolve(&SecretRef::File(name.into()), dir, name).expect("secret resolves")
}

fn plan() -> VolumePlan {
    let text = "apiVersion: groundwork/v1alpha1\nkind: Cluster\ncluster: {name: golden}\n\
                hosts:\n  - {name: m1, address: 10.0.0.1, roles: [master]}\n  - {name: s1, address: 10.0.0.9, roles: [storage]}\n\
                storage: {}\n";
    let inv: Inventory = serde_yaml_ng::from_str(text).expect("test inventory parses");
    VolumePlan::of(&inv).expect("a volume plan")
}

/// A full set of inputs: storage with CHAP, a database, a kubeconfig, two environments, GitOps,
/// and sops configured with a program that does not exist (so the files stay plain text).
fn inputs(secrets_dir: &Path) -> HandoffInputs {
    std::fs::write(secrets_dir.join("admin.conf"), KUBECONFIG_TEXT).expect("kubeconfig fixture");
    HandoffInputs {
        cluster: "golden".into(),
        domain: "digit.example.gov.in".into(),
        namespace: "egov".into(),
        environments: vec!["dev".into(), "uat".into()],
        deployer: Deployer::Helm,
        volumes: Some(plan()),
        iscsi_chap: Some(Credentials { user: "digit".into(), password: secret(secrets_dir, "chap", CHAP_PASSWORD) }),
        database: Some(DatabaseFacts {
            address: "10.0.0.31".into(),
            port: 5433,
            database: "egov".into(),
            owner: Credentials { user: "egov_owner".into(), password: secret(secrets_dir, "owner", OWNER_PASSWORD) },
            app: Credentials { user: "egov_app".into(), password: secret(secrets_dir, "app", APP_PASSWORD) },
        }),
        kubeconfig: Some(secrets_dir.join("admin.conf")),
        gitops: Some(GitOpsTarget {
            repository: "https://git.example.gov.in/digit/deploy.git".into(),
            path: "charts/digit".into(),
            revision: "main".into(),
        }),
        sops: Some(SopsSettings {
            age_recipient: "age1examplerecipientxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx".into(),
            program: "/nonexistent/sops".into(),
            memo_dir: None,
        }),
    }
}

struct Written {
    _dir: tempfile::TempDir,
    out: PathBuf,
    outcome: HandoffOutcome,
    inputs: HandoffInputs,
}

fn write_fixture() -> Written {
    let dir = tempfile::tempdir().expect("temp dir");
    let secrets_dir = dir.path().join("in");
    std::fs::create_dir_all(&secrets_dir).expect("input dir");
    let inputs = inputs(&secrets_dir);
    let out = dir.path().join("out");
    let outcome = write_all(&inputs, &out).expect("handoff written");
    Written { _dir: dir, out, outcome, inputs }
}

fn files_under(root: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("readable dir") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                stack.push(path);
            } else if let Ok(rel) = path.strip_prefix(root) {
                found.push(rel.to_path_buf());
            }
        }
    }
    found.sort();
    found
}

#[test]
fn the_files_match_the_golden_copies_byte_for_byte() {
    let w = write_fixture();
    let golden = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/handoff");
    let written = files_under(&w.out);
    if std::env::var_os("GROUNDWORK_BLESS").is_some() {
        let _ = std::fs::remove_dir_all(&golden);
        for rel in &written {
            let target = golden.join(rel);
            std::fs::create_dir_all(target.parent().expect("parent")).expect("golden dir");
            std::fs::copy(w.out.join(rel), target).expect("golden copy");
        }
    }
    assert_eq!(files_under(&golden), written, "the set of files changed; rerun with GROUNDWORK_BLESS=1 and review");
    for rel in &written {
        let want = std::fs::read(golden.join(rel)).expect("golden file");
        let got = std::fs::read(w.out.join(rel)).expect("written file");
        assert!(
            want == got,
            "{} differs from its golden copy; rerun with GROUNDWORK_BLESS=1 and review the diff",
            rel.display()
        );
    }
}

#[test]
fn every_file_is_listed_and_every_yaml_file_parses() {
    let w = write_fixture();
    let listed: Vec<PathBuf> = w.outcome.files.iter().map(|f| f.path.clone()).collect();
    assert_eq!(listed, files_under(&w.out));
    for rel in &listed {
        if rel.extension().is_some_and(|e| e == "yaml") || rel == Path::new(KUBECONFIG) {
            let text = std::fs::read_to_string(w.out.join(rel)).expect("utf-8");
            for doc in serde_yaml_ng::Deserializer::from_str(&text) {
                serde_yaml_ng::Value::deserialize(doc).unwrap_or_else(|e| panic!("{}: {e}", rel.display()));
            }
        }
    }
}

use serde::Deserialize;

fn documents(path: &Path) -> Vec<serde_yaml_ng::Value> {
    let text = std::fs::read_to_string(path).expect("utf-8");
    serde_yaml_ng::Deserializer::from_str(&text).map(|d| serde_yaml_ng::Value::deserialize(d).expect("yaml")).collect()
}

/// Reads `doc` as `T` and checks that writing it back gives the same document: nothing in the
/// file is unknown to k8s-openapi.
fn round_trip<T: DeserializeOwned + serde::Serialize>(doc: &serde_yaml_ng::Value) -> T {
    let typed: T = serde_yaml_ng::from_value(doc.clone()).expect("deserializes into the k8s-openapi type");
    let back = serde_yaml_ng::to_value(&typed).expect("serializes");
    assert_eq!(&back, doc, "round trip through k8s-openapi changed the object");
    typed
}

#[test]
fn manifests_deserialize_into_k8s_openapi_types() {
    let w = write_fixture();
    let mut kinds = Vec::new();
    for file in [kubernetes::STORAGE, kubernetes::DATABASE, kubernetes::SECRETS] {
        for doc in documents(&w.out.join(file)) {
            let kind = doc["kind"].as_str().expect("kind").to_string();
            match kind.as_str() {
                "StorageClass" => drop(round_trip::<StorageClass>(&doc)),
                "PersistentVolume" => {
                    let pv = round_trip::<PersistentVolume>(&doc);
                    let spec = pv.spec.expect("spec");
                    assert!(spec.iscsi.is_some() || spec.nfs.is_some());
                }
                "Namespace" => drop(round_trip::<Namespace>(&doc)),
                "Service" => drop(round_trip::<Service>(&doc)),
                "Endpoints" => {
                    let ep = round_trip::<Endpoints>(&doc);
                    let subset = &ep.subsets.expect("subsets")[0];
                    assert_eq!(subset.addresses.as_ref().expect("addresses")[0].ip, "10.0.0.31");
                    assert_eq!(subset.ports.as_ref().expect("ports")[0].port, 5433);
                }
                "Secret" => drop(round_trip::<KubeSecret>(&doc)),
                other => panic!("unexpected kind {other}"),
            }
            kinds.push(kind);
        }
    }
    let plan = plan();
    assert_eq!(kinds.iter().filter(|k| *k == "PersistentVolume").count(), plan.volumes.len());
    assert_eq!(kinds.iter().filter(|k| *k == "StorageClass").count(), 2);
}

#[test]
fn persistent_volumes_use_the_volume_plan_names_iqns_and_exports() {
    let w = write_fixture();
    let plan = plan();
    let pvs: Vec<PersistentVolume> = documents(&w.out.join(kubernetes::STORAGE))
        .into_iter()
        .filter(|d| d["kind"] == "PersistentVolume")
        .map(|d| serde_yaml_ng::from_value(d).expect("pv"))
        .collect();
    for (pv, planned) in pvs.iter().zip(&plan.volumes) {
        assert_eq!(pv.metadata.name.as_deref(), Some(planned.name.as_str()));
        let spec = pv.spec.as_ref().expect("spec");
        match &planned.access {
            crate::storage::VolumeAccess::Iscsi { iqn, lun, portal } => {
                let iscsi = spec.iscsi.as_ref().expect("iscsi");
                assert_eq!((&iscsi.iqn, iscsi.lun, &iscsi.target_portal), (iqn, *lun as i32, portal));
                assert_eq!(iscsi.chap_auth_session, Some(true));
            }
            crate::storage::VolumeAccess::Nfs { server, path } => {
                let nfs = spec.nfs.as_ref().expect("nfs");
                assert_eq!((&nfs.server, Path::new(&nfs.path)), (server, path.as_path()));
            }
        }
    }
}

#[test]
fn the_db_secret_maps_the_app_role_and_the_owner_for_flyway() {
    let w = write_fixture();
    let docs = documents(&w.out.join(kubernetes::SECRETS));
    let db: KubeSecret = serde_yaml_ng::from_value(docs[0].clone()).expect("secret");
    assert_eq!(db.metadata.name.as_deref(), Some("db"));
    assert_eq!(db.metadata.namespace.as_deref(), Some("egov"));
    let data = db.string_data.expect("stringData");
    let keys: Vec<&str> = data.keys().map(String::as_str).collect();
    assert_eq!(keys, ["flyway-password", "flyway-username", "password", "username"]);
    assert_eq!(data["username"], "egov_app");
    assert_eq!(data["password"], APP_PASSWORD);
    assert_eq!(data["flyway-username"], "egov_owner");
    assert_eq!(data["flyway-password"], OWNER_PASSWORD);
}

/// Every leaf's key path, `a.b.c`, with `[]` for a sequence.
fn key_paths(value: &serde_yaml_ng::Value, prefix: &str, out: &mut BTreeSet<String>) {
    match value {
        serde_yaml_ng::Value::Mapping(m) => {
            for (k, v) in m {
                let key = k.as_str().expect("string keys");
                let path = if prefix.is_empty() { key.to_string() } else { format!("{prefix}.{key}") };
                key_paths(v, &path, out);
            }
        }
        serde_yaml_ng::Value::Sequence(items) => {
            for item in items {
                key_paths(item, &format!("{prefix}[]"), out);
            }
        }
        _ => {
            out.insert(prefix.to_string());
        }
    }
}

fn paths_of(path: &Path) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let docs = documents(path);
    assert_eq!(docs.len(), 1, "{} is one document", path.display());
    key_paths(&docs[0], "", &mut out);
    out
}

fn set(paths: &[&str]) -> BTreeSet<String> {
    paths.iter().map(|p| p.to_string()).collect()
}

const EGOV_CONFIG: [&str; 7] =
    ["db-host", "db-name", "db-url", "egov-services-fqdn-name", "es-host", "es-indexer-host", "kafka-brokers"];
const DB_SECRETS: [&str; 4] = ["username", "password", "flywayUsername", "flywayPassword"];

#[test]
fn the_helmfile_files_have_exactly_digits_key_paths() {
    let w = write_fixture();
    for env in ["dev", "uat"] {
        let mut want = set(&["global.domain", "postgresql.enabled"]);
        want.extend(EGOV_CONFIG.iter().map(|k| format!("configmaps.egov-config.data.{k}")));
        assert_eq!(paths_of(&w.out.join(helmfile_dir(env)).join("env.yaml")), want);
        let want: BTreeSet<String> = DB_SECRETS.iter().map(|k| format!("secrets.db.{k}")).collect();
        assert_eq!(paths_of(&w.out.join(helmfile_dir(env)).join("env-secrets.yaml")), want);
    }
    let values = &documents(&w.out.join("digit/helmfile/dev/env.yaml"))[0];
    let data = &values["configmaps"]["egov-config"]["data"];
    assert_eq!(data["db-url"], "jdbc:postgresql://db-service.egov:5432/egov");
    assert_eq!(values["postgresql"]["enabled"], false);
    assert_eq!(values["global"]["domain"], "digit.example.gov.in");
}

#[test]
fn the_go_deployer_files_have_exactly_digits_key_paths() {
    let w = write_fixture();
    let mut want = set(&["global.domain"]);
    want.extend(EGOV_CONFIG.iter().map(|k| format!("cluster-configs.configmaps.egov-config.data.{k}")));
    for chart in ["kafka-v2", "zookeeper-v2", "elasticsearch-data-v1", "elasticsearch-master-v1"] {
        for leaf in ["enabled", "iscsi.targetPortal", "iscsi.iqn[]"] {
            want.insert(format!("{chart}.persistence.{leaf}"));
        }
    }
    assert_eq!(paths_of(&w.out.join(deployer_file("dev", false))), want);
    let want: BTreeSet<String> = DB_SECRETS.iter().map(|k| format!("cluster-configs.secrets.db.{k}")).collect();
    assert_eq!(paths_of(&w.out.join(deployer_file("uat", true))), want);
    let env = &documents(&w.out.join(deployer_file("dev", false)))[0];
    let kafka = &env["kafka-v2"]["persistence"]["iscsi"];
    assert_eq!(kafka["targetPortal"], "10.0.0.9:3260");
    let iqns: Vec<&str> = kafka["iqn"].as_sequence().expect("list").iter().filter_map(|v| v.as_str()).collect();
    assert_eq!(
        iqns,
        [
            "iqn.2026-01.io.groundwork:golden:kafka-0",
            "iqn.2026-01.io.groundwork:golden:kafka-1",
            "iqn.2026-01.io.groundwork:golden:kafka-2"
        ]
    );
}

#[test]
fn gitops_objects_point_at_the_repository_and_path() {
    let w = write_fixture();
    let app = &documents(&w.out.join(gitops::argocd_file("uat")))[0];
    assert_eq!(app["kind"], "Application");
    assert_eq!(app["spec"]["source"]["repoURL"], "https://git.example.gov.in/digit/deploy.git");
    assert_eq!(app["spec"]["source"]["path"], "charts/digit");
    assert_eq!(app["spec"]["source"]["targetRevision"], "main");
    assert_eq!(app["spec"]["source"]["helm"]["valueFiles"][0], "values-uat.yaml");
    assert_eq!(app["spec"]["destination"]["namespace"], "egov");
    let release = &documents(&w.out.join(gitops::helmrelease_file("uat")))[0];
    assert_eq!(release["kind"], "HelmRelease");
    assert_eq!(release["spec"]["chart"]["spec"]["chart"], "./charts/digit");
    assert_eq!(release["spec"]["chart"]["spec"]["valuesFiles"][0], "charts/digit/values-uat.yaml");
    let sync = documents(&w.out.join(gitops::flux_sync_file("uat")));
    assert_eq!(sync[0]["kind"], "GitRepository");
    assert_eq!(sync[0]["spec"]["ref"]["branch"], "main");
    assert_eq!(sync[1]["kind"], "Kustomization");
    assert_eq!(sync[1]["spec"]["path"], "./clusters/golden/uat");
}

#[test]
fn the_kubeconfig_and_secrets_files_are_0600_the_rest_0644_the_directory_0700() {
    let w = write_fixture();
    let mode = |p: &Path| std::fs::metadata(p).expect("exists").permissions().mode() & 0o777;
    assert_eq!(mode(&w.out), 0o700);
    assert_eq!(std::fs::read_to_string(w.out.join(KUBECONFIG)).expect("copied"), KUBECONFIG_TEXT);
    for f in &w.outcome.files {
        let want = if f.secret || f.path == Path::new(KUBECONFIG) { 0o600 } else { 0o644 };
        assert_eq!(mode(&w.out.join(&f.path)), want, "{}", f.path.display());
    }
    let secret_files: Vec<_> = w.outcome.files.iter().filter(|f| f.secret).map(|f| f.path.clone()).collect();
    assert_eq!(secret_files.len(), 5, "db Secret manifest and 2 x 2 DIGIT secrets files: {secret_files:?}");
}

#[test]
fn a_second_run_changes_nothing_and_says_so() {
    let w = write_fixture();
    assert!(w.outcome.files.iter().all(|f| f.status == FileStatus::Written));
    let before: Vec<Vec<u8>> =
        w.outcome.files.iter().map(|f| std::fs::read(w.out.join(&f.path)).expect("file")).collect();
    let again = write_all(&w.inputs, &w.out).expect("second run");
    assert!(again.files.iter().all(|f| f.status == FileStatus::Unchanged), "{:?}", again.files);
    let after: Vec<Vec<u8>> = again.files.iter().map(|f| std::fs::read(w.out.join(&f.path)).expect("file")).collect();
    assert_eq!(before, after);
    // A changed mode alone is put right.
    let env = w.out.join("digit/helmfile/dev/env-secrets.yaml");
    std::fs::set_permissions(&env, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let third = write_all(&w.inputs, &w.out).expect("third run");
    assert_eq!(third.changed(), 1);
}

#[test]
fn no_password_appears_outside_the_secrets_files() {
    let w = write_fixture();
    let report = format!("{:?}\n{}\n{:?}", w.outcome, serde_json::to_string(&w.outcome).expect("json"), w.inputs);
    for password in [APP_PASSWORD, OWNER_PASSWORD, CHAP_PASSWORD] {
        assert!(!report.contains(password), "a password is in the outcome or the inputs' Debug");
        for f in &w.outcome.files {
            let text = std::fs::read_to_string(w.out.join(&f.path)).expect("utf-8");
            if !f.secret {
                assert!(!text.contains(password), "a password is in {}", f.path.display());
            }
        }
    }
}

#[test]
fn a_missing_sops_is_reported_and_the_secrets_stay_plain_0600() {
    let w = write_fixture();
    assert!(w.outcome.notes.iter().any(|n| n.contains("/nonexistent/sops is not installed")), "{:?}", w.outcome.notes);
    assert!(w.outcome.files.iter().all(|f| !f.encrypted));
    assert!(w.out.join(".sops.yaml").exists());
}

/// A stand-in for sops: prints a marker and a checksum of its input, never the input itself.
fn fake_sops(dir: &Path) -> PathBuf {
    let path = dir.join("fake-sops");
    std::fs::write(
        &path,
        "#!/bin/sh\necho 'sops: {encrypted: true}'\necho \"sum: $(cksum < /dev/stdin | cut -d' ' -f1)\"\n",
    )
    .expect("script");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    path
}

#[test]
fn with_sops_the_secrets_files_are_encrypted_and_rewritten_only_when_their_plain_text_changes() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut inputs = inputs(dir.path());
    let memo = dir.path().join("memo");
    inputs.sops = Some(SopsSettings {
        age_recipient: "age1fake".into(),
        program: fake_sops(dir.path()),
        memo_dir: Some(memo.clone()),
    });
    let out = dir.path().join("out");
    let first = write_all(&inputs, &out).expect("written");
    let encrypted: Vec<_> = first.files.iter().filter(|f| f.encrypted).collect();
    assert_eq!(encrypted.len(), 5);
    for f in &encrypted {
        let text = std::fs::read_to_string(out.join(&f.path)).expect("file");
        assert!(text.starts_with("sops: {encrypted: true}"), "{}", f.path.display());
        assert!(!text.contains(APP_PASSWORD));
    }
    let next_steps = std::fs::read_to_string(out.join(NEXT_STEPS)).expect("next steps");
    assert!(next_steps.contains("sops -d manifests/secrets.yaml | kubectl apply -f -"), "{next_steps}");
    let again = write_all(&inputs, &out).expect("second run");
    assert_eq!(again.changed(), 0, "{:?}", again.files);
    if let Some(db) = inputs.database.as_mut() {
        db.app.password = secret(dir.path(), "app2", "another-app-password");
    }
    let changed = write_all(&inputs, &out).expect("third run");
    let written: Vec<String> = changed
        .files
        .iter()
        .filter(|f| f.status == FileStatus::Written)
        .map(|f| f.path.display().to_string())
        .collect();
    assert_eq!(written.len(), 5, "the five secrets files, nothing else: {written:?}");
}

#[test]
fn without_a_kubeconfig_or_database_the_rest_is_still_written() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut inputs = inputs(dir.path());
    inputs.kubeconfig = Some(dir.path().join("missing/admin.conf"));
    inputs.database = None;
    inputs.gitops = None;
    inputs.deployer = Deployer::Argocd;
    let outcome = write_all(&inputs, &dir.path().join("out")).expect("written");
    let paths: Vec<String> = outcome.files.iter().map(|f| f.path.display().to_string()).collect();
    assert!(
        !paths.iter().any(|p| p == KUBECONFIG || p.contains("env-secrets") || p.starts_with("gitops")),
        "{paths:?}"
    );
    assert!(paths.contains(&kubernetes::SECRETS.to_string()), "the CHAP Secret is still written");
    assert!(outcome.notes.iter().any(|n| n.contains("no admin kubeconfig")));
    assert!(outcome.notes.iter().any(|n| n.contains("no `database` section")));
    assert!(outcome.deploy.blocked.as_deref().is_some_and(|b| b.contains("handoff.gitops")));
}

#[test]
fn a_database_named_by_dns_gets_an_external_name_service() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut inputs = inputs(dir.path());
    if let Some(db) = inputs.database.as_mut() {
        db.address = "pg.sdc.example.gov.in".into();
    }
    let out = dir.path().join("out");
    write_all(&inputs, &out).expect("written");
    let docs = documents(&out.join(kubernetes::DATABASE));
    let kinds: Vec<&str> = docs.iter().filter_map(|d| d["kind"].as_str()).collect();
    assert_eq!(kinds, ["Namespace", "Service"]);
    let service: Service = serde_yaml_ng::from_value(docs[1].clone()).expect("service");
    let spec = service.spec.expect("spec");
    assert_eq!(spec.type_.as_deref(), Some("ExternalName"));
    assert_eq!(spec.external_name.as_deref(), Some("pg.sdc.example.gov.in"));
}

#[test]
fn a_bad_environment_name_names_the_field() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut inputs = inputs(dir.path());
    inputs.environments = vec!["Prod".into()];
    let err = write_all(&inputs, &dir.path().join("out")).expect_err("refused");
    assert!(err.to_string().contains("handoff.environments"), "{err}");
}

#[test]
fn the_deploy_script_for_each_deployer() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut inputs = inputs(dir.path());
    let out = dir.path().join("out");
    let helm = write_all(&inputs, &out).expect("helm").deploy;
    assert_eq!(helm.deploy.last().map(String::as_str), Some("helmfile -f digit-helmfile.yaml -e env apply"));
    assert_eq!(helm.programs, ["kubectl", "helmfile", "helm"]);
    assert_eq!(helm.variables, ["DIGIT_DEVOPS"]);
    assert!(helm.shell().starts_with("set -e\nexport KUBECONFIG=\"$PWD/kubeconfig\"\n"));
    inputs.deployer = Deployer::Digit;
    let go = write_all(&inputs, &out).expect("digit").deploy;
    assert_eq!(
        go.deploy.last().map(String::as_str),
        Some("go run main.go deploy -e dev -c 'kafka-v2,zookeeper-v2,elasticsearch-data-v1,elasticsearch-master-v1'")
    );
    inputs.deployer = Deployer::Flux;
    let flux = write_all(&inputs, &out).expect("flux").deploy;
    assert_eq!(flux.deploy, ["kubectl apply -f gitops/dev/flux-sync.yaml"]);
    let next_steps = std::fs::read_to_string(out.join(NEXT_STEPS)).expect("next steps");
    assert!(next_steps.contains("kubectl apply -f gitops/dev/flux-sync.yaml"));
}

#[test]
fn quantities_are_exact() {
    use crate::inventory::values::ByteSize;
    assert_eq!(kubernetes::quantity(ByteSize::gib(50)).0, "50Gi");
    assert_eq!(kubernetes::quantity(ByteSize::mib(1536)).0, "1536Mi");
    assert_eq!(kubernetes::quantity(ByteSize(1000)).0, "1000");
}
