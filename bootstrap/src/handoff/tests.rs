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
use crate::digit::DigitSource;
use crate::inventory::values::SecretRef;
use crate::inventory::{DigitFlow, Inventory};

const APP_PASSWORD: &str = "fixture-app-password-9f2c";
const OWNER_PASSWORD: &str = "fixture-owner-password-41d7";
const CHAP_PASSWORD: &str = "fixture-chap-password-77aa";
const KUBECONFIG_TEXT: &str = "apiVersion: v1\nkind: Config\nclusters: []\n";

fn secret(dir: &Path, name: &str, value: &str) -> Secret {
    std::fs::write(dir.join(name), value).expect("secret fixture");
    crate::secrets::resolve(&SecretRef::File(name.into()), dir, name).expect("secret resolves")
}

/// DIGIT's own deployment, as ../shared/digit holds it (unmodified).
fn digit_source() -> DigitSource {
    DigitSource::open(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/digit/ccrs/devops/deploy-as-code"))
        .expect("DIGIT's checkout in ../shared/digit")
}

/// The volume plan: DIGIT's claims, served by a LIO target (LUN 0) unless `target` says tgt.
fn plan_with(target: &str, claims: bool) -> VolumePlan {
    let text = format!(
        "apiVersion: groundwork/v1alpha1\nkind: Cluster\ncluster: {{name: golden}}\n\
         hosts:\n  - {{name: m1, address: 10.0.0.1, roles: [master]}}\n  - {{name: s1, address: 10.0.0.9, roles: [storage]}}\n\
         storage: {{iscsi: {{target: {target}}}}}\n"
    );
    let mut inv: Inventory = serde_yaml_ng::from_str(&text).expect("test inventory parses");
    if claims && let Some(storage) = inv.storage.as_mut() {
        storage.digit_claims = digit_source().claims().expect("claims");
    }
    VolumePlan::of(&inv).expect("a volume plan")
}

fn plan() -> VolumePlan {
    plan_with("lio", true)
}

const GENERATED: &str = "fixture-generated-secret-";

fn environment(dir: &Path, name: &str, domain: &str) -> DigitEnvironmentInputs {
    let g = |what: &str| secret(dir, &format!("{name}-{what}"), &format!("{GENERATED}{name}-{what}"));
    DigitEnvironmentInputs {
        name: name.into(),
        domain: domain.into(),
        tenant_id: "pb".into(),
        cert_issuer: (name == "uat").then(|| "sdc-ca".to_string()),
        generated: GeneratedSecrets {
            elasticsearch_password: g("es"),
            kafka_cluster_id: g("kafka"),
            novu_jwt_secret: g("jwt"),
            novu_store_encryption_key: g("store"),
            novu_secret_key: g("novu"),
        },
    }
}

/// A full set of inputs: DIGIT's checkout with two environments, storage with CHAP, a
/// database, a kubeconfig, GitOps, and sops configured with a program that does not exist (so
/// the files stay plain text).
fn inputs(secrets_dir: &Path) -> HandoffInputs {
    std::fs::write(secrets_dir.join("admin.conf"), KUBECONFIG_TEXT).expect("kubeconfig fixture");
    let source = digit_source();
    let claims = source.claims().expect("claims");
    HandoffInputs {
        cluster: "golden".into(),
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
            repository: "https://git.example.gov.in/digit/ccrs.git".into(),
            path: "devops/deploy-as-code".into(),
            revision: "main".into(),
        }),
        sops: Some(SopsSettings {
            age_recipient: "age1examplerecipientxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx".into(),
            program: "/nonexistent/sops".into(),
            memo_dir: None,
        }),
        digit: Some(DigitInputs {
            flow: DigitFlow::Helmfile,
            source,
            claims,
            environments: vec![
                environment(secrets_dir, "dev", "dev.digit.example.gov.in"),
                environment(secrets_dir, "uat", "uat.digit.example.gov.in"),
            ],
        }),
        registry: Some(RegistryFacts {
            address: "10.0.0.30:5000".into(),
            mirrors: vec!["docker.io".into(), "registry.k8s.io".into()],
            ca_pem: "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n".into(),
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
    // NEXT-STEPS.md names the DIGIT checkout by its absolute path, which is this checkout's.
    let next_steps = w.out.join(NEXT_STEPS);
    let text = std::fs::read_to_string(&next_steps).expect("next steps");
    std::fs::write(&next_steps, text.replace(&digit_source().root.display().to_string(), "/srv/digit/deploy-as-code"))
        .expect("rewritten");
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
                    assert!(spec.claim_ref.is_some(), "every PersistentVolume is pre-bound");
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
    assert_eq!(kinds.iter().filter(|k| *k == "StorageClass").count(), 1, "the default class, nothing to download");
}

#[test]
fn each_claim_of_digits_charts_gets_one_volume_pre_bound_with_its_size_and_class() {
    let w = write_fixture();
    let plan = plan();
    let pvs: Vec<PersistentVolume> = documents(&w.out.join(kubernetes::STORAGE))
        .into_iter()
        .filter(|d| d["kind"] == "PersistentVolume")
        .map(|d| serde_yaml_ng::from_value(d).expect("pv"))
        .collect();
    let claims = digit_source().claims().expect("claims");
    assert_eq!(pvs.len(), claims.len());
    let mut luns = BTreeSet::new();
    for claim in &claims {
        let bound: Vec<&PersistentVolume> = pvs
            .iter()
            .filter(|pv| {
                let r = pv.spec.as_ref().and_then(|s| s.claim_ref.as_ref()).expect("claimRef");
                r.namespace.as_deref() == Some(&claim.namespace) && r.name.as_deref() == Some(&claim.name)
            })
            .collect();
        assert_eq!(bound.len(), 1, "{}/{}", claim.namespace, claim.name);
        let spec = bound[0].spec.as_ref().expect("spec");
        let class = claim.storage_class.clone().unwrap_or_else(|| kubernetes::STATIC_CLASS.to_string());
        assert_eq!(spec.storage_class_name.as_deref(), Some(class.as_str()), "{}", claim.name);
        assert_eq!(spec.capacity.as_ref().expect("capacity")["storage"].0, claim.size, "{}", claim.name);
        let iscsi = spec.iscsi.as_ref().expect("block claims are iSCSI");
        assert!(luns.insert((iscsi.iqn.clone(), iscsi.lun)), "LUN behind two PVs: {}", iscsi.iqn);
        assert_eq!(iscsi.chap_auth_session, Some(true));
        let planned = plan.volumes.iter().find(|v| v.claim.as_ref() == Some(claim)).expect("planned");
        assert_eq!(bound[0].metadata.name.as_deref(), Some(planned.name.as_str()));
    }
    assert!(claims.iter().any(|c| c.storage_class.as_deref() == Some("gp3")), "pgadmin's class is kept");
}

#[test]
fn the_secrets_manifest_holds_only_the_chap_secret_digit_renders_the_db_secret() {
    let w = write_fixture();
    let docs = documents(&w.out.join(kubernetes::SECRETS));
    let names: Vec<&str> = docs.iter().filter_map(|d| d["metadata"]["name"].as_str()).collect();
    assert_eq!(names, ["iscsi-chap"]);
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

/// Every line of DIGIT's file whose text differs in the written one.
fn changed_lines(original: &str, written: &str) -> Vec<String> {
    assert_eq!(original.lines().count(), written.lines().count(), "no line added or removed");
    original.lines().zip(written.lines()).filter(|(a, b)| a != b).map(|(_, b)| b.to_string()).collect()
}

#[test]
fn digits_own_files_keep_every_key_and_line_and_get_groundworks_values() {
    let w = write_fixture();
    let source = digit_source();
    let original_values: serde_yaml_ng::Value = serde_yaml_ng::from_str(&source.env_text).expect("DIGIT's env.yaml");
    let original_secrets: serde_yaml_ng::Value = serde_yaml_ng::from_str(&source.secrets_text).expect("secrets");
    for (env, domain) in [("dev", "dev.digit.example.gov.in"), ("uat", "uat.digit.example.gov.in")] {
        let dir = w.out.join(helmfile_dir(env));
        let values_text = std::fs::read_to_string(dir.join("env.yaml")).expect("env.yaml");
        let secrets_text = std::fs::read_to_string(dir.join("env-secrets.yaml")).expect("env-secrets.yaml");
        let (mut want, mut got) = (BTreeSet::new(), BTreeSet::new());
        key_paths(&original_values, "", &mut want);
        key_paths(&documents(&dir.join("env.yaml"))[0], "", &mut got);
        assert_eq!(got, want, "{env}: env.yaml has DIGIT's keys, no more, no fewer");
        let (mut want, mut got) = (BTreeSet::new(), BTreeSet::new());
        key_paths(&original_secrets, "", &mut want);
        key_paths(&documents(&dir.join("env-secrets.yaml"))[0], "", &mut got);
        assert_eq!(got, want, "{env}: env-secrets.yaml keeps DIGIT's keys");
        // Only lines groundwork owns changed; comments stay on them.
        let changed = changed_lines(&source.env_text, &values_text);
        assert!(changed.len() < 30, "{env}: {changed:#?}");
        assert!(changed.iter().any(|l| l.contains("## Add db-host name")), "comments are kept: {changed:#?}");
        changed_lines(&source.secrets_text, &secrets_text);

        let values = &documents(&dir.join("env.yaml"))[0];
        let data = &values["configmaps"]["egov-config"]["data"];
        assert_eq!(values["global"]["domain"], domain);
        assert_eq!(data["db-host"], "db-service.egov");
        assert_eq!(data["db-url"], "jdbc:postgresql://db-service.egov:5432/egov");
        assert_eq!(data["db-otel-url"], "jdbc:otel:postgresql://db-service.egov:5432/egov");
        assert_eq!(data["es-indexer-host"], "https://elasticsearch-data.backbone:9200/");
        assert_eq!(data["kafka-brokers"], "kafka-kraft-controller-headless.backbone:9092");
        assert_eq!(data["host-map"], format!("{{'pb':'https://{domain}/'}}").as_str());
        assert_eq!(data["state-level-tenant-id"], "pb");
        let origin = &values["ingress-nginx"]["controller"]["addHeaders"]["Access-Control-Allow-Origin"];
        assert_eq!(origin, format!("https://{domain}").as_str(), "placeholders inside strings are filled");
        let issuer = if env == "uat" { "sdc-ca" } else { "letsencrypt-prod" };
        assert_eq!(values["root-ingress"]["cert-issuer"], issuer);
        assert_eq!(values["egov-user"]["egov-state-level-tenant-id"], "pb");

        let secrets = &documents(&dir.join("env-secrets.yaml"))[0]["secrets"];
        assert_eq!(secrets["db"]["username"], "egov_app");
        assert_eq!(secrets["db"]["password"], APP_PASSWORD);
        assert_eq!(secrets["db"]["flywayUsername"], "egov_owner");
        assert_eq!(secrets["db"]["flywayPassword"], OWNER_PASSWORD);
        assert_eq!(secrets["kafka"]["clusterID"], format!("{GENERATED}{env}-kafka").as_str());
        assert_eq!(secrets["elasticsearch"]["password"], format!("{GENERATED}{env}-es").as_str());
        assert_eq!(secrets["novu"]["storeEncryptionKey"], format!("{GENERATED}{env}-store").as_str());
        // The operator's own keys are theirs.
        assert_eq!(
            secrets["egov-enc-service"]["master_salt"],
            original_secrets["secrets"]["egov-enc-service"]["master_salt"]
        );
    }
}

#[test]
fn the_placeholders_left_are_listed_with_file_and_line() {
    let w = write_fixture();
    let listed: Vec<String> =
        w.outcome.placeholders.iter().map(|p| format!("{}:{} {}", p.file.display(), p.line, p.text)).collect();
    assert!(listed.contains(&"digit/helmfile/dev/env.yaml:111 <filestore_s3_bucket>".to_string()), "{listed:#?}");
    assert!(listed.iter().all(|p| !p.contains("<domain_name>") && !p.contains("<db_")), "{listed:#?}");
    let next_steps = std::fs::read_to_string(w.out.join(NEXT_STEPS)).expect("next steps");
    assert!(next_steps.contains("- `digit/helmfile/uat/env.yaml` line 111: `<filestore_s3_bucket>`"), "{next_steps}");
}

#[test]
fn the_go_deployer_flow_writes_chart_values_and_no_persistent_volumes() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut inputs = inputs(dir.path());
    inputs.volumes = Some(plan_with("lio", false));
    if let Some(d) = inputs.digit.as_mut() {
        d.flow = DigitFlow::Deployer;
    }
    let out = dir.path().join("out");
    write_all(&inputs, &out).expect("written");
    let env = &documents(&out.join(deployer_file("dev", false)))[0];
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
    let storage = documents(&out.join(kubernetes::STORAGE));
    assert!(storage.iter().all(|d| d["kind"] != "PersistentVolume"), "the charts make their own PersistentVolumes");

    inputs.volumes = Some(plan_with("tgt", false));
    let err = write_all(&inputs, &out).expect_err("tgt's LUN 1 is refused");
    assert!(err.to_string().contains("storage.iscsi.target: lio"), "{err}");
}

#[test]
fn the_go_deployer_flow_fills_the_operators_files_and_lists_the_placeholders_of_both() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut inputs = inputs(dir.path());
    inputs.volumes = Some(plan_with("lio", false));
    let checkout = dir.path().join("DIGIT-DevOps");
    let envs = checkout.join("deploy-as-code/helm/environments");
    std::fs::create_dir_all(&envs).expect("checkout");
    std::fs::write(
        envs.join("dev.yaml"),
        "# the site's\nglobal:\n  domain: <domain_name>\nsms:\n  url: <sms_gateway_url>\n",
    )
    .expect("dev.yaml");
    std::fs::write(
        envs.join("dev-secrets.yaml"),
        "cluster-configs:\n  secrets:\n    sms:\n      password: <sms_password>\n",
    )
    .expect("dev-secrets.yaml");
    if let Some(d) = inputs.digit.as_mut() {
        d.flow = DigitFlow::Deployer;
        d.source.root = checkout;
    }
    let out = dir.path().join("out");
    let outcome = write_all(&inputs, &out).expect("written");
    let values = std::fs::read_to_string(out.join(deployer_file("dev", false))).expect("dev.yaml");
    assert!(values.starts_with("# the site's\nglobal:\n  domain: dev.digit.example.gov.in\n"), "{values}");
    let listed: Vec<String> =
        outcome.placeholders.iter().map(|p| format!("{}:{} {}", p.file.display(), p.line, p.text)).collect();
    assert!(listed.contains(&"digit/deployer/dev.yaml:5 <sms_gateway_url>".to_string()), "{listed:#?}");
    assert!(listed.contains(&"digit/deployer/dev-secrets.yaml:4 <sms_password>".to_string()), "{listed:#?}");
}

#[test]
fn the_argocd_application_runs_digits_helmfile_from_the_repository() {
    let w = write_fixture();
    let app = &documents(&w.out.join(gitops::argocd_file("uat")))[0];
    assert_eq!(app["kind"], "Application");
    let source = &app["spec"]["source"];
    assert_eq!(source["repoURL"], "https://git.example.gov.in/digit/ccrs.git");
    assert_eq!(source["path"], "devops/deploy-as-code");
    assert_eq!(source["targetRevision"], "uat", "one branch per environment");
    assert_eq!(source["plugin"]["name"], "helmfile");
    assert_eq!(source["plugin"]["env"][0]["value"], "digit-helmfile.yaml");
    assert_eq!(app["spec"]["destination"]["namespace"], "egov");
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
    assert_eq!(secret_files.len(), 3, "the CHAP Secret manifest and 2 DIGIT secrets files: {secret_files:?}");
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
    for password in [APP_PASSWORD, OWNER_PASSWORD, CHAP_PASSWORD, &format!("{GENERATED}dev-es")] {
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
    assert_eq!(encrypted.len(), 3);
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
    assert_eq!(written.len(), 2, "the two DIGIT secrets files, nothing else: {written:?}");
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
    assert!(!paths.iter().any(|p| p == KUBECONFIG || p.starts_with("gitops")), "{paths:?}");
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
    let root = digit_source().root.display().to_string();
    let out = dir.path().join("out");
    let helm = write_all(&inputs, &out).expect("helm").deploy;
    assert_eq!(
        helm.deploy,
        [
            format!("cp digit/helmfile/dev/env.yaml digit/helmfile/dev/env-secrets.yaml {root}/charts/environments/"),
            format!("helmfile -f {root}/digit-helmfile.yaml -e env apply"),
        ]
    );
    assert_eq!(helm.programs, ["kubectl", "helmfile", "helm"]);
    assert!(helm.variables.is_empty());
    assert!(helm.shell().starts_with("set -e\nexport KUBECONFIG=\"$PWD/kubeconfig\"\n"));
    inputs.deployer = Deployer::Argocd;
    let argo = write_all(&inputs, &out).expect("argocd").deploy;
    assert_eq!(argo.deploy, ["kubectl apply -f gitops/dev/argocd-application.yaml"]);
    inputs.deployer = Deployer::Flux;
    let flux = write_all(&inputs, &out).expect("flux").deploy;
    assert!(flux.blocked.as_deref().is_some_and(|b| b.contains("Flux has no helmfile support")), "{flux:?}");
    let next_steps = std::fs::read_to_string(out.join(NEXT_STEPS)).expect("next steps");
    assert!(next_steps.contains("Flux has no helmfile support"), "{next_steps}");
    inputs.digit = None;
    inputs.deployer = Deployer::Helm;
    let none = write_all(&inputs, &out).expect("no digit").deploy;
    assert!(none.blocked.as_deref().is_some_and(|b| b.contains("handoff.digit")), "{none:?}");
}

#[test]
fn quantities_are_exact() {
    use crate::inventory::values::ByteSize;
    assert_eq!(kubernetes::quantity(ByteSize::gib(50)).0, "50Gi");
    assert_eq!(kubernetes::quantity(ByteSize::mib(1536)).0, "1536Mi");
    assert_eq!(kubernetes::quantity(ByteSize(1000)).0, "1000");
}
