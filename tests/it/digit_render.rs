//! What `groundwork handoff` writes for DIGIT, rendered with DIGIT's real deployment source
//! (`../shared/digit/ccrs/devops/deploy-as-code`) by a real Helm engine (`tests/digit/render.py`,
//! helm-python-sdk in a venv `tests/digit/setup` makes), as helmfile would for each environment of
//! the example inventory. Not a lab test: no containers, no hosts.
//!
//! Checked per environment: the state files render (but for a known defect of DIGIT's own, shown
//! to happen with DIGIT's unmodified files too), every installed release renders, the values
//! groundwork owns hold no `<placeholder>`, every claim the charts make is bound to exactly one of
//! groundwork's PersistentVolumes that fits it, and no object of groundwork's manifests is rendered
//! by a release as well. Then `--strict`, a second run that changes nothing, and a negative check
//! that DIGIT's own example files fail where they should (the render really runs the templates).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use serde_json::Value as Json;
use serde_yaml_ng::Value as Yaml;

use groundwork_lab_tests::digit::{
    Site, assert_none, is_placeholder, leaves, python, quantity, root, yaml_docs, yaml_file, yget, ystr,
};
use groundwork_lab_tests::text;

const ENVIRONMENTS: &[&str] = &["dev", "uat", "prod"];
const STATIC_CLASS: &str = "groundwork-static";
/// DIGIT's defect, not groundwork's: line 56's `{{- if hasKey .Values "monitoring" }}` has no
/// `{{ end }}`. helmfile stops there too.
const MONITORING_ERROR: &str =
    "charts/monitoring/monitoring-helmfile.yaml: parse error at (state/templates/state.yaml:349): unexpected EOF";
/// The values groundwork sets in DIGIT's files (a trailing `*`: every value under the key).
const OWNED: &[&str] = &[
    "global.domain",
    "configmaps.egov-config.data.db-host",
    "configmaps.egov-config.data.db-name",
    "configmaps.egov-config.data.db-url",
    "configmaps.egov-config.data.db-otel-url",
    "configmaps.egov-config.data.es-host",
    "configmaps.egov-config.data.es-indexer-host",
    "configmaps.egov-config.data.kafka-brokers",
    "configmaps.egov-config.data.egov-services-fqdn-name",
    "configmaps.egov-config.data.egov-state-level-tenant-id",
    "configmaps.egov-config.data.state-level-tenant-id",
    "configmaps.egov-config.data.host-map",
    "secrets.db.*",
    "secrets.elasticsearch.password",
    "secrets.kafka.clusterID",
    "secrets.novu.*",
];
/// Kinds without a namespace (compared by kind and name).
const CLUSTER_SCOPED: &[&str] = &[
    "Namespace",
    "PersistentVolume",
    "StorageClass",
    "ClusterRole",
    "ClusterRoleBinding",
    "CustomResourceDefinition",
    "ValidatingWebhookConfiguration",
    "MutatingWebhookConfiguration",
    "IngressClass",
    "PriorityClass",
    "APIService",
    "CSIDriver",
    "ClusterIssuer",
    "RuntimeClass",
    "VolumeSnapshotClass",
];

/// DIGIT's deployment source (`digit-helmfile.yaml` and the charts), beside the repository.
fn deploy_as_code() -> PathBuf {
    let dir = root().join("../shared/digit/ccrs/devops/deploy-as-code");
    assert!(
        dir.join("digit-helmfile.yaml").is_file(),
        "{} has no digit-helmfile.yaml: DIGIT's deployment source is expected at ../shared/digit (see its README.md)",
        dir.display()
    );
    dir.canonicalize().expect("deploy-as-code")
}

/// A scratch directory for one test, emptied first (left afterwards, to look at).
fn scratch(name: &str) -> PathBuf {
    groundwork_lab_tests::digit::scratch("digit-render", name)
}

/// The example inventory in a directory of its own, with what it references stubbed: the DIGIT
/// checkout (the real one), an SSH key, the offline bundle, the CNI manifest, a database password.
trait RenderSite {
    fn stub(name: &str) -> Site;
    fn env_files(&self, env: &str) -> (PathBuf, PathBuf);
}

impl RenderSite for Site {
    fn stub(name: &str) -> Site {
        Site::example(scratch(name), |example| {
            let source = "source: ../../Citizen-Complaint-Resolution-System/devops/deploy-as-code";
            assert!(example.contains(source), "the example inventory has changed: {source}");
            example.replace(source, &format!("source: {}", deploy_as_code().display()))
        })
    }

    fn env_files(&self, env: &str) -> (PathBuf, PathBuf) {
        let dir = self.handoff().join("digit/helmfile").join(env);
        (dir.join("env-secrets.yaml"), dir.join("env.yaml"))
    }
}

/// render.py's report for one pair of environment files; each release's YAML goes to `emit`.
fn render(what: &str, secrets: &Path, env: &Path, emit: &Path) -> Json {
    let started = Instant::now();
    let out = Command::new(python())
        .arg(root().join("tests/digit/render.py"))
        .arg(deploy_as_code())
        .args([secrets, env, emit])
        .output()
        .expect("render.py runs");
    assert!(out.status.success(), "{what}: render.py failed:\n{}", text(&out.stderr));
    let report: Json = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{what}: render.py's report is not JSON ({e}): {}", text(&out.stdout)));
    eprintln!("{what}: rendered {} releases in {:.1?}", releases(&report).count(), started.elapsed());
    report
}

fn releases(report: &Json) -> impl Iterator<Item = &Json> {
    report["releases"].as_array().into_iter().flatten()
}

fn installed(report: &Json) -> impl Iterator<Item = &Json> {
    releases(report).filter(|r| r["installed"] == true)
}

fn str_of<'a>(v: &'a Json, key: &str) -> &'a str {
    v[key].as_str().unwrap_or_default()
}

fn state_file_errors(report: &Json) -> Vec<String> {
    report["errors"].as_array().into_iter().flatten().map(|e| e.as_str().unwrap_or_default().to_string()).collect()
}

/// The values groundwork owns in an environment's two files (env-secrets.yaml, then env.yaml),
/// each by its dotted key; a key that is missing or empty is given as empty.
fn owned_values(secrets: &Path, env: &Path) -> Vec<(String, String)> {
    let files = [yaml_file(secrets), yaml_file(env)];
    let mut out = Vec::new();
    for key in OWNED {
        let (path, all) = match key.strip_suffix(".*") {
            Some(p) => (p, true),
            None => (*key, false),
        };
        let parts: Vec<&str> = path.split('.').collect();
        // env.yaml is merged over env-secrets.yaml: the later file wins.
        let node = files.iter().rev().find_map(|f| yget(f, &parts));
        match node {
            None => out.push((path.to_string(), String::new())),
            Some(n) if all => {
                let mut found = Vec::new();
                leaves(n, path, &mut found);
                if found.is_empty() {
                    out.push((path.to_string(), String::new()));
                }
                out.extend(found);
            }
            Some(n) => leaves(n, path, &mut out),
        }
    }
    out
}

/// "key = value" for every owned value that is empty or holds a `<placeholder>`.
fn unfilled(owned: &[(String, String)]) -> Vec<String> {
    owned
        .iter()
        .filter(|(_, v)| v.trim().is_empty() || is_placeholder(v))
        .map(|(k, v)| format!("{k} = {v:?}"))
        .collect()
}

/// (kind, namespace, name); the namespace is empty for cluster-scoped kinds.
type ObjectKey = (String, String, String);

fn object_key(kind: &str, namespace: &str, name: &str) -> ObjectKey {
    let namespace = if CLUSTER_SCOPED.contains(&kind) { "" } else { namespace };
    (kind.to_string(), namespace.to_string(), name.to_string())
}

/// Every object of groundwork's manifests, by key, with the file it is in.
fn groundwork_objects(handoff: &Path) -> BTreeMap<ObjectKey, String> {
    let mut objects = BTreeMap::new();
    for file in ["manifests/storage.yaml", "manifests/database.yaml", "manifests/secrets.yaml"] {
        for doc in yaml_docs(&handoff.join(file)) {
            let kind = ystr(&doc, &["kind"]);
            let namespace = yget(&doc, &["metadata", "namespace"]).and_then(Yaml::as_str).unwrap_or("default");
            let key = object_key(kind, namespace, ystr(&doc, &["metadata", "name"]));
            assert!(objects.insert(key.clone(), file.to_string()).is_none(), "{key:?} twice in groundwork's manifests");
        }
    }
    objects
}

/// A PersistentVolume of groundwork's storage.yaml, as the checks need it.
struct Volume {
    name: String,
    claim: Option<(String, String)>,
    capacity: String,
    class: String,
    /// iSCSI (portal, iqn, lun) or NFS (server, path): where the data is.
    backing: String,
}

fn volumes(handoff: &Path) -> Vec<Volume> {
    yaml_docs(&handoff.join("manifests/storage.yaml"))
        .iter()
        .filter(|d| ystr(d, &["kind"]) == "PersistentVolume")
        .map(|d| {
            let spec = yget(d, &["spec"]).cloned().unwrap_or(Yaml::Null);
            let claim = yget(&spec, &["claimRef"])
                .map(|c| (ystr(c, &["namespace"]).to_string(), ystr(c, &["name"]).to_string()));
            let backing = if let Some(i) = yget(&spec, &["iscsi"]) {
                let lun = yget(i, &["lun"]).map(|l| format!("{l:?}")).unwrap_or_default();
                format!("iscsi {} {} lun {lun}", ystr(i, &["targetPortal"]), ystr(i, &["iqn"]))
            } else if let Some(n) = yget(&spec, &["nfs"]) {
                format!("nfs {}:{}", ystr(n, &["server"]), ystr(n, &["path"]))
            } else {
                format!("other {:?}", yget(&spec, &["local"]).or(yget(&spec, &["hostPath"])))
            };
            Volume {
                name: ystr(d, &["metadata", "name"]).to_string(),
                claim,
                capacity: ystr(&spec, &["capacity", "storage"]).to_string(),
                class: ystr(&spec, &["storageClassName"]).to_string(),
                backing,
            }
        })
        .collect()
}

/// Checks of groundwork's PersistentVolumes on their own: each pre-bound, to a claim of its own,
/// on a LUN or export of its own.
fn volume_problems(volumes: &[Volume]) -> Vec<String> {
    let mut problems = Vec::new();
    let mut claims: BTreeMap<&(String, String), &str> = BTreeMap::new();
    let mut backings: BTreeMap<&str, &str> = BTreeMap::new();
    for v in volumes {
        match &v.claim {
            None => problems.push(format!("PersistentVolume {} has no spec.claimRef", v.name)),
            Some(c) if c.0.is_empty() || c.1.is_empty() => {
                problems.push(format!("PersistentVolume {}: claimRef without namespace or name: {c:?}", v.name))
            }
            Some(c) => {
                if let Some(other) = claims.insert(c, &v.name) {
                    problems.push(format!(
                        "PersistentVolumes {other} and {} are both bound to claim {}/{}",
                        v.name, c.0, c.1
                    ));
                }
            }
        }
        if let Some(other) = backings.insert(&v.backing, &v.name) {
            problems.push(format!("PersistentVolumes {other} and {} are the same volume ({})", v.name, v.backing));
        }
        if quantity(&v.capacity).is_none() {
            problems.push(format!("PersistentVolume {}: capacity {:?} is not a quantity", v.name, v.capacity));
        }
    }
    problems
}

/// Every claim the environment's releases make is bound to exactly one fitting volume; every
/// volume is bound to a claim the environment makes.
fn claim_problems(env: &str, report: &Json, volumes: &[Volume]) -> Vec<String> {
    let mut problems = Vec::new();
    let mut claimed = BTreeSet::new();
    for release in installed(report) {
        for claim in release["claims"].as_array().into_iter().flatten() {
            let (namespace, name) = (str_of(claim, "namespace"), str_of(claim, "name"));
            let at = format!("{env}: release {}: claim {namespace}/{name}", str_of(release, "name"));
            claimed.insert((namespace.to_string(), name.to_string()));
            let bound: Vec<&Volume> = volumes
                .iter()
                .filter(|v| v.claim.as_ref().is_some_and(|(ns, n)| ns == namespace && n == name))
                .collect();
            let volume = match bound.as_slice() {
                [one] => one,
                [] => {
                    problems.push(format!("{at} is bound by no PersistentVolume of manifests/storage.yaml"));
                    continue;
                }
                many => {
                    let names: Vec<&str> = many.iter().map(|v| v.name.as_str()).collect();
                    problems.push(format!("{at} is bound by several PersistentVolumes: {names:?}"));
                    continue;
                }
            };
            let size = str_of(claim, "size");
            match (quantity(size), quantity(&volume.capacity)) {
                (Some(want), Some(have)) if have >= want => {}
                (Some(_), Some(_)) => problems.push(format!(
                    "{at} requests {size}, PersistentVolume {} holds only {}",
                    volume.name, volume.capacity
                )),
                _ => problems.push(format!(
                    "{at}: size {size:?} or {}'s capacity {:?} unreadable",
                    volume.name, volume.capacity
                )),
            }
            let class = claim["storageClassName"].as_str().unwrap_or(STATIC_CLASS);
            if volume.class != class {
                problems.push(format!(
                    "{at} wants storageClassName {class:?}, PersistentVolume {} has {:?}",
                    volume.name, volume.class
                ));
            }
        }
    }
    for v in volumes {
        if let Some(c) = &v.claim
            && !claimed.contains(c)
        {
            problems.push(format!(
                "{env}: PersistentVolume {} is bound to {}/{}, which no installed release claims",
                v.name, c.0, c.1
            ));
        }
    }
    problems
}

/// Objects a release renders that groundwork's manifests hold as well.
fn duplicate_problems(env: &str, report: &Json, ours: &BTreeMap<ObjectKey, String>) -> Vec<String> {
    let mut problems = Vec::new();
    for release in installed(report) {
        for o in release["objects"].as_array().into_iter().flatten() {
            let key = object_key(str_of(o, "kind"), str_of(o, "namespace"), str_of(o, "name"));
            if let Some(file) = ours.get(&key) {
                let (kind, namespace, name) = key;
                let object = if namespace.is_empty() { name } else { format!("{namespace}/{name}") };
                problems.push(format!(
                    "{env}: release {} renders {kind} {object} ({}), which groundwork's {file} has too",
                    str_of(release, "name"),
                    str_of(o, "template")
                ));
            }
        }
    }
    problems
}

/// The in-cluster hosts groundwork points DIGIT at (`service.namespace`) name Services that a
/// release renders or groundwork's database.yaml has.
fn service_problems(
    env: &str,
    report: &Json,
    owned: &[(String, String)],
    ours: &BTreeMap<ObjectKey, String>,
) -> Vec<String> {
    let mut services: BTreeSet<(String, String)> = installed(report)
        .flat_map(|r| r["objects"].as_array().into_iter().flatten())
        .filter(|o| str_of(o, "kind") == "Service")
        .map(|o| (str_of(o, "namespace").to_string(), str_of(o, "name").to_string()))
        .collect();
    services.extend(ours.keys().filter(|k| k.0 == "Service").map(|k| (k.1.clone(), k.2.clone())));
    let mut problems = Vec::new();
    for key in ["db-host", "es-host", "es-indexer-host", "kafka-brokers"] {
        let full = format!("configmaps.egov-config.data.{key}");
        let value = owned.iter().find(|(k, _)| *k == full).map(|(_, v)| v.as_str()).unwrap_or_default();
        for host in value.split(',') {
            let host = host.trim().trim_start_matches("https://").trim_start_matches("http://");
            let host = host.split(['/', ':']).next().unwrap_or_default();
            let mut parts = host.splitn(3, '.');
            let (Some(service), Some(namespace)) = (parts.next(), parts.next()) else {
                problems.push(format!("{env}: {full} = {value:?}: {host:?} is not service.namespace"));
                continue;
            };
            if !services.contains(&(namespace.to_string(), service.to_string())) {
                problems.push(format!(
                    "{env}: {full} = {value:?}: no Service {namespace}/{service} is rendered or handed off"
                ));
            }
        }
    }
    problems
}

/// The `egov-config` ConfigMap the `configmaps` release rendered carries groundwork's values.
fn configmap_problems(env: &str, emit: &Path, owned: &[(String, String)]) -> Vec<String> {
    let path = emit.join("configmaps.yaml");
    let docs = yaml_docs(&path);
    let Some(config) =
        docs.iter().find(|d| ystr(d, &["kind"]) == "ConfigMap" && ystr(d, &["metadata", "name"]) == "egov-config")
    else {
        return vec![format!("{env}: release configmaps rendered no ConfigMap egov-config ({})", path.display())];
    };
    let mut problems = Vec::new();
    for (key, value) in owned {
        if let Some(data_key) = key.strip_prefix("configmaps.egov-config.data.") {
            let rendered = ystr(config, &["data", data_key]);
            if rendered != value {
                problems.push(format!(
                    "{env}: release configmaps: ConfigMap egov/egov-config data.{data_key} is {rendered:?}, env.yaml has {value:?}"
                ));
            }
        }
    }
    problems
}

#[test]
fn groundworks_environment_files_render_with_digits_charts_and_every_claim_has_its_volume() {
    let site = Site::stub("render");
    let started = Instant::now();
    site.handoff_json();
    let handoff = site.handoff();
    let ours = groundwork_objects(&handoff);
    let volumes = volumes(&handoff);
    assert!(!volumes.is_empty(), "manifests/storage.yaml has no PersistentVolume");
    assert_none("groundwork's PersistentVolumes", &volume_problems(&volumes));
    let class = ours.get(&object_key("StorageClass", "", STATIC_CLASS));
    assert!(class.is_some(), "manifests/storage.yaml has no StorageClass {STATIC_CLASS}: {:?}", ours.keys());
    assert!(
        !ours.contains_key(&object_key("Secret", "egov", "db")),
        "groundwork hands off Secret egov/db, which DIGIT's configmaps release renders"
    );

    let mut problems = Vec::new();
    for env in ENVIRONMENTS {
        let (secrets, env_yaml) = site.env_files(env);
        let owned = owned_values(&secrets, &env_yaml);
        problems
            .extend(unfilled(&owned).into_iter().map(|u| format!("{env}: groundwork's value {u} is not filled in")));

        let emit = site.dir.join("rendered").join(env);
        let report = render(env, &secrets, &env_yaml, &emit);
        let state_errors = state_file_errors(&report);
        if state_errors != [MONITORING_ERROR] {
            problems.push(format!(
                "{env}: state-file errors {state_errors:?}, expected only DIGIT's own {MONITORING_ERROR:?}"
            ));
        }
        let rendered: Vec<&str> = installed(&report).map(|r| str_of(r, "name")).collect();
        for want in ["kafka-kraft", "elasticsearch", "elasticsearch-data", "configmaps", "novu", "egov-user"] {
            if !rendered.contains(&want) {
                problems.push(format!("{env}: release {want} is not installed: {rendered:?}"));
            }
        }
        for release in installed(&report) {
            for e in release["errors"].as_array().into_iter().flatten() {
                problems.push(format!(
                    "{env}: release {} ({}): {}",
                    str_of(release, "name"),
                    str_of(release, "stateFile"),
                    e.as_str().unwrap_or_default()
                ));
            }
        }
        problems.extend(claim_problems(env, &report, &volumes));
        problems.extend(duplicate_problems(env, &report, &ours));
        problems.extend(service_problems(env, &report, &owned, &ours));
        problems.extend(configmap_problems(env, &emit, &owned));
    }
    eprintln!("handoff and three environments rendered and checked in {:.1?}", started.elapsed());
    assert_none("groundwork's handoff against DIGIT's charts", &problems);
}

#[test]
fn strict_names_the_placeholders_left_and_a_second_handoff_changes_nothing() {
    let site = Site::stub("strict");
    let first = site.handoff_json();
    let placeholders = first["placeholders"].as_array().cloned().unwrap_or_default();
    let handoff = site.handoff();
    let strict = site.groundwork(&["handoff", "--strict"]);
    let stderr = text(&strict.stderr);
    assert!(!strict.status.success(), "handoff --strict succeeded with placeholders left:\n{stderr}");
    for env in ENVIRONMENTS {
        let file = format!("digit/helmfile/{env}/env.yaml");
        let content = std::fs::read_to_string(handoff.join(&file)).expect("env.yaml");
        let line = content
            .lines()
            .position(|l| l.contains("<filestore_s3_bucket>"))
            .map(|i| i + 1)
            .unwrap_or_else(|| panic!("{env}: {file} has no <filestore_s3_bucket> (did DIGIT's env.yaml change?)"));
        let listed = placeholders
            .iter()
            .any(|p| p["file"] == file.as_str() && p["line"] == line && p["text"] == "<filestore_s3_bucket>");
        assert!(
            listed,
            "{env}: -o json's placeholders lack {{{file}, {line}, <filestore_s3_bucket>}}: {placeholders:#?}"
        );
        let named = format!("{file}:{line}: <filestore_s3_bucket>");
        assert!(stderr.contains(&named), "{env}: handoff --strict does not name {named}:\n{stderr}");
    }
    // Every placeholder -o json lists is really in the file, at that line.
    for p in &placeholders {
        let (file, line, want) = (str_of(p, "file"), p["line"].as_u64().unwrap_or(0) as usize, str_of(p, "text"));
        let content = std::fs::read_to_string(handoff.join(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
        let at = content.lines().nth(line.saturating_sub(1)).unwrap_or_default();
        assert!(line > 0 && at.contains(want), "placeholder {want} listed at {file}:{line}, which is {at:?}");
    }

    let before = digests(&handoff);
    let second = site.handoff_json();
    let changed: Vec<String> = second["files"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|f| f["status"] != "unchanged")
        .map(|f| format!("{}: {}", str_of(f, "path"), str_of(f, "status")))
        .collect();
    assert!(!second["files"].as_array().is_none_or(Vec::is_empty), "the second handoff lists no files: {second}");
    assert_none("the second handoff changed files", &changed);
    assert_eq!(before, digests(&handoff), "the second handoff rewrote files while reporting them unchanged");
}

/// Every file under `dir` with its content.
fn digests(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut all = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                all.insert(path.clone(), std::fs::read(&path).unwrap_or_default());
            }
        }
    }
    all
}

/// The render really runs DIGIT's templates and the checks can fail: DIGIT's own example files
/// stop the novu release (its template refuses the published `change-me` secrets), hit the same
/// monitoring defect, and leave placeholders in the values groundwork fills in.
#[test]
fn digits_own_example_files_fail_where_groundworks_do_not() {
    let dir = scratch("digit-own");
    let environments = deploy_as_code().join("charts/environments");
    let (secrets, env_yaml) = (environments.join("env-secrets.yaml"), environments.join("env.yaml"));
    let report = render("DIGIT's own files", &secrets, &env_yaml, &dir.join("rendered"));

    assert_eq!(
        state_file_errors(&report),
        [MONITORING_ERROR],
        "DIGIT's own files: the monitoring state file's defect is DIGIT's own"
    );
    let novu = installed(&report)
        .find(|r| r["name"] == "novu")
        .unwrap_or_else(|| panic!("DIGIT's own files: no installed release novu: {report}"));
    let errors = novu["errors"].to_string();
    assert!(
        errors.contains("change-me") && errors.contains("secrets.novu.jwtSecret"),
        "DIGIT's own files: release novu should refuse its example secrets, errors: {errors}"
    );
    let objects: usize = installed(&report).map(|r| r["objects"].as_array().map_or(0, Vec::len)).sum();
    assert!(objects > 100, "DIGIT's own files: only {objects} objects rendered");

    let owned = owned_values(&secrets, &env_yaml);
    let unfilled = unfilled(&owned);
    for key in ["global.domain", "configmaps.egov-config.data.db-host", "configmaps.egov-config.data.host-map"] {
        assert!(
            unfilled.iter().any(|u| u.starts_with(&format!("{key} = "))),
            "DIGIT's own files: {key} should hold a placeholder: {unfilled:?}"
        );
    }
    assert!(
        quantity("8Gi") == Some(8 << 30)
            && quantity("500Mi") == Some(500 << 20)
            && quantity("1.5G") == Some(1_500_000_000)
    );
    assert!(quantity("2Gi") > quantity("2G") && quantity("8x").is_none());
}
