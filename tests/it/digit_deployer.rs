//! What `groundwork handoff` writes for DIGIT's Go deployer (`handoff.digit.flow: deployer`, the
//! digit-lts flow of egovernments/DIGIT-DevOps), rendered by a real Helm engine
//! (`tests/digit/render.py --deployer`, helm-python-sdk in the venv `tests/digit/setup` makes) the
//! way the deployer runs Helm: `helm template -f <env>.yaml --set name=<chart> [-f
//! <chart dir>/<chart>-values.yaml] .`. Not a lab test: no containers, no hosts.
//!
//! DIGIT-DevOps has no licence, so nothing of it is copied: the test writes a small checkout of
//! its own in the *shapes* DIGIT-DevOps' digit-lts charts have (each shape names the repository
//! path and commit it was read from). What the shapes pin down: the charts make their own
//! PersistentVolumes, one per replica, each pre-bound to the claim the StatefulSet's
//! volumeClaimTemplate makes, on `persistence.iscsi.targetPortal` and the replica's entry of the
//! IQN list `persistence.iscsi.iqn`, with `lun: 0` written in the template; the service's section
//! of the environment file (`.Values[<name>]`) is merged over the chart's values first.
//!
//! Checked: the PersistentVolumes the charts render from groundwork's file sit on groundwork's
//! volumes (IQN of `<component>-<replica>`, LUN, portal, size) and bind the StatefulSets' claims;
//! groundwork's own manifests have no PersistentVolume for them; the operator's environment file
//! keeps its own lines; a tgt target is refused.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value as Json;
use serde_yaml_ng::Value as Yaml;

use groundwork::storage::{VolumeAccess, VolumePlan};
use groundwork_lab_tests::digit::{
    CLUSTER, Site, assert_none, is_placeholder, leaves, python, quantity, root, write, yaml_docs, yaml_file, yget, ystr,
};
use groundwork_lab_tests::text;

/// groundwork's volume components and the digit-lts charts that mount them (the contract of
/// bootstrap/src/handoff/digit_deployer.rs).
const CHARTS: [(&str, &str); 4] = [
    ("kafka", "kafka-v2"),
    ("zookeeper", "zookeeper-v2"),
    ("es-data", "elasticsearch-data-v1"),
    ("es-master", "elasticsearch-master-v1"),
];
/// `dev` has the operator's own file in the checkout; `qa` has none (groundwork generates it).
const ENVIRONMENTS: [(&str, &str); 2] =
    [("dev", "dev.digit.sdc.example.gov.in"), ("qa", "qa.digit.sdc.example.gov.in")];
/// The digit-lts-shaped checkout's directory in a site's.
const CHECKOUT: &str = "DIGIT-DevOps";
/// The keys groundwork sets in the environment file (below each chart: `persistence.*`).
const EGOV_CONFIG: [&str; 7] =
    ["db-host", "db-name", "db-url", "egov-services-fqdn-name", "es-host", "es-indexer-host", "kafka-brokers"];
const PERSISTENCE: [&str; 3] = ["enabled", "iscsi", "dataDirSize"];
/// Volume sources a PersistentVolume template of the charts can render (each `if`-guarded).
const SOURCES: [&str; 6] = ["iscsi", "awsElasticBlockStore", "azureDisk", "cinder", "nfs", "hostPath"];

// ---------------------------------------------------------------------------------------------
// The digit-lts-shaped checkout. Shapes from the research notes on egovernments/DIGIT-DevOps
// (commit ids are the stored versions read; which one is the digit-lts tip is not known).
// ---------------------------------------------------------------------------------------------

/// The service-name helper every digit-lts backbone template starts from (shape of
/// deploy-as-code/helm/charts/backbone-services/kafka-v2/templates/_helpers.tpl @95608e5 and
/// backbone-services/elasticsearch/templates/_helpers.tpl @e469e13): the environment file's
/// section named after the service (`name`, which the deployer sets, else the chart's name) is
/// merged over a copy of `.Values`, and the result is merged into the root context in place.
const HELPERS: &str = r#"{{/* The service: `name` or the chart's. Merges .Values[service] over .Values, in place. */}}
{{- define "name" -}}
{{- $section := index .Values (tpl (default .Chart.Name .Values.name) .) | default dict -}}
{{- $merged := mustMergeOverwrite (deepCopy .Values) $section -}}
{{- with mustMergeOverwrite . (dict "Values" $merged) -}}
{{- default .Chart.Name .Values.name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
"#;

/// One PersistentVolume per replica (shape of kafka-v2/templates/persistentvolume.yaml @c18e542,
/// zookeeper-v2 @ddea65a, elasticsearch @e469e13, the "variant A" that reads a scalar
/// `persistence.iscsi.targetPortal` and a list `persistence.iscsi.iqn`): named and pre-bound to
/// `<claim template>-<service>-<ordinal>` in `.Values.namespace`, capacity the quoted
/// `persistence.dataDirSize`, no storageClassName, each backend `if`-guarded. In the iscsi block
/// `lun: 0`, `fsType: 'ext4'` and `readOnly: true` are written in the template, as DIGIT's are.
fn pv_template(claim_template: &str, reclaim: &str) -> String {
    r#"{{- $service := include "name" . -}}
{{- if .Values.persistence.enabled }}
{{- $v := .Values }}
{{- range $idx := until (int $v.replicas) }}
---
apiVersion: v1
kind: PersistentVolume
metadata:
  name: CLAIM-{{ $service }}-{{ $idx }}
  labels:
    app: {{ $service }}
    {{- with $v.persistence.aws }}
    topology.kubernetes.io/zone: {{ (index . $idx).zone }}
    {{- end }}
spec:
  accessModes:
    - ReadWriteOnce
  capacity:
    storage: {{ $v.persistence.dataDirSize | quote }}
  claimRef:
    namespace: {{ $v.namespace }}
    name: CLAIM-{{ $service }}-{{ $idx }}
  persistentVolumeReclaimPolicy: RECLAIM
  {{- with $v.persistence.aws }}
  awsElasticBlockStore:
    volumeID: {{ (index . $idx).volumeId }}
    fsType: ext4
  {{- end }}
  {{- with $v.persistence.iscsi }}
  iscsi:
    targetPortal: {{ .targetPortal }}
    iqn: {{ index .iqn $idx }}
    lun: 0
    fsType: 'ext4'
    readOnly: true
  {{- end }}
{{- end }}
{{- end }}
"#
    .replace("RECLAIM", reclaim)
    .replace("CLAIM", claim_template)
}

/// The StatefulSet (shapes of kafka-v2/templates/statefulset.yaml @17bd41f, zookeeper-v2 @36f0312,
/// elasticsearch @d56b731): no merge header of its own, it calls the `name` helper first and then
/// reads the (merged) `.Values`; one volumeClaimTemplate, requesting `size` (a values path).
fn statefulset_template(claim_template: &str, mount: &str, size: &str) -> String {
    r#"{{- $service := include "name" . -}}
apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: {{ $service }}
  namespace: {{ .Values.namespace }}
  labels:
    app: {{ $service }}
spec:
  serviceName: {{ $service }}-headless
  replicas: {{ .Values.replicas }}
  selector:
    matchLabels:
      app: {{ $service }}
  template:
    metadata:
      labels:
        app: {{ $service }}
    spec:
      containers:
        - name: {{ $service }}
          image: "{{ .Values.image.repository }}:{{ .Values.image.tag }}"
          volumeMounts:
            - name: CLAIM
              mountPath: MOUNT
      {{- if not .Values.persistence.enabled }}
      volumes:
        - name: CLAIM
          emptyDir: {}
      {{- end }}
  {{- if .Values.persistence.enabled }}
  volumeClaimTemplates:
    - metadata:
        name: CLAIM
      spec:
        accessModes: [ReadWriteOnce]
        resources:
          requests:
            storage: {{ SIZE | quote }}
  {{- end }}
"#
    .replace("CLAIM", claim_template)
    .replace("MOUNT", mount)
    .replace("SIZE", size)
}

/// The Service named after the service, in its namespace (kafka-v2/templates/service.yaml
/// @17bd41f: port 9092 `broker`; the elasticsearch Service, read from the iFix-DevOps copy
/// @76c509a: 9200 http, 9300 transport).
fn service_template(ports: &[(&str, u16)]) -> String {
    let mut t = String::from(
        "{{- $service := include \"name\" . -}}\napiVersion: v1\nkind: Service\nmetadata:\n  name: {{ $service }}\n  namespace: {{ .Values.namespace }}\nspec:\n  selector:\n    app: {{ $service }}\n  ports:\n",
    );
    for (name, port) in ports {
        t.push_str(&format!("    - name: {name}\n      port: {port}\n"));
    }
    t
}

/// A chart directory under `deploy-as-code/helm/charts/backbone-services/`.
struct ChartShape {
    dir: &'static str,
    values: &'static str,
    /// Extra `<service>-values.yaml` files (the deployer's index maps each to its service).
    service_values: &'static [(&'static str, &'static str)],
    claim_template: &'static str,
    mount: &'static str,
    /// The values path the volumeClaimTemplate requests.
    size: &'static str,
    reclaim: &'static str,
    ports: &'static [(&'static str, u16)],
}

const CHART_SHAPES: [ChartShape; 3] = [
    // kafka-v2/values.yaml @3283be6 (namespace kafka-cluster); statefulset @17bd41f (replicas 3,
    // dataDirSize 50Gi, cp-kafka 5.2.2, mount /opt/kafka-data); PV reclaim Recycle.
    ChartShape {
        dir: "kafka-v2",
        values: "namespace: kafka-cluster\nreplicas: 3\nimage:\n  repository: confluentinc/cp-kafka\n  tag: 5.2.2\npersistence:\n  enabled: false\n  dataDirSize: 50Gi\n",
        service_values: &[],
        claim_template: "kafka-data",
        mount: "/opt/kafka-data",
        size: ".Values.persistence.dataDirSize",
        reclaim: "Recycle",
        ports: &[("broker", 9092)],
    },
    // zookeeper-v2/values.yaml @5b6c23f (namespace zookeeper-cluster); statefulset @36f0312
    // (replicas 1 in values.yaml, dataDirSize 5Gi, mount /var/lib/zookeeper/); PV reclaim Retain @ddea65a.
    ChartShape {
        dir: "zookeeper-v2",
        values: "namespace: zookeeper-cluster\nreplicas: 1\nimage:\n  repository: zookeeper\n  tag: 3.5.5\npersistence:\n  enabled: false\n  dataDirSize: 5Gi\n",
        service_values: &[],
        claim_template: "zookeeper-data",
        mount: "/var/lib/zookeeper/",
        size: ".Values.persistence.dataDirSize",
        reclaim: "Retain",
        ports: &[("client", 2181)],
    },
    // elasticsearch/ @e469e13 (values: namespace es-cluster, replicas 3, elasticsearch 6.4.2),
    // serving elasticsearch-data-v1 and -master-v1 through `<service>-values.yaml` files; the
    // claim template es-storage requests volumeClaimTemplate.resources.requests.storage (25Gi
    // data, 2Gi master; @d56b731), not dataDirSize; master values @b9519fa have no dataDirSize.
    ChartShape {
        dir: "elasticsearch",
        values: "namespace: es-cluster\nreplicas: 3\nimage:\n  repository: docker.elastic.co/elasticsearch/elasticsearch-oss\n  tag: 6.4.2\nclusterName: elasticsearch-v1\npersistence:\n  enabled: false\nvolumeClaimTemplate:\n  accessModes: [ReadWriteOnce]\n  resources:\n    requests:\n      storage: 30Gi\n",
        service_values: &[
            (
                "elasticsearch-data-v1",
                "roles:\n  data: \"true\"\n  master: \"false\"\nvolumeClaimTemplate:\n  resources:\n    requests:\n      storage: 25Gi\n",
            ),
            (
                "elasticsearch-master-v1",
                "roles:\n  data: \"false\"\n  master: \"true\"\nvolumeClaimTemplate:\n  resources:\n    requests:\n      storage: 2Gi\n",
            ),
        ],
        claim_template: "es-storage",
        mount: "/usr/share/elasticsearch/data",
        size: ".Values.volumeClaimTemplate.resources.requests.storage",
        reclaim: "Retain",
        ports: &[("http", 9200), ("transport", 9300)],
    },
];

/// An operator's `deploy-as-code/helm/environments/dev.yaml`, in the shape of the lts-era
/// environment files (egov-demo-sample.yaml @9f308ea, digit-lts.yaml @002cf12): DIGIT's
/// placeholders where groundwork fills in, the site's own settings and comments elsewhere, the
/// SDC iSCSI sample commented out.
const OPERATOR_DEV: &str = r#"# dev: the site's DIGIT environment for the Go deployer.
# Maintained by the DIGIT team; groundwork fills in the cluster's addresses.
global:
  domain: <domain_name>
  setup: fullsetup
  containerRegistry: egovio   # the site's mirror later

cluster-configs:
  namespaces:
    create: true
    values: [backbone, egov, es-cluster, kafka-cluster, zookeeper-cluster, monitoring]
  root-ingress:
    cert-issuer: letsencrypt-prod
  configmaps:
    egov-config:
      namespace: [egov, monitoring]
      data:
        db-host: <db_host>
        db-name: <db_name>
        db-url: jdbc:postgresql://<db_host>:5432/<db_name>
        domain: <domain_name>
        egov-services-fqdn-name: https://<domain_name>/
        egov-state-level-tenant-id: pb
        es-host: elasticsearch-data-v1.es-cluster
        es-indexer-host: http://elasticsearch-data-v1.es-cluster:9200/
        kafka-brokers: kafka-v2.kafka-cluster:9092
        timezone: Asia/Kolkata   # the state's
        sms-enabled: "true"
    egov-service-host:
      namespace: [egov]
      data:
        egov-user: http://egov-user.egov:8080/

# --- backbone ---
kafka-v2:
  image:
    tag: "5.4.1"
  heapOptions: "-Xms1G -Xmx1G"
  # SDC (iSCSI):
  # persistence:
  #   enabled: true
  #   iscsi:
  #     targetPortal: "10.67.49.8:3260"
  #     iqn: [iqn-0, iqn-1, iqn-2]

zookeeper-v2:
  heapOptions: "-Xms512m -Xmx512m"

elasticsearch-data-v1:
  image:
    tag: 6.6.2
  esJavaOpts: "-Xms2g -Xmx2g"

elasticsearch-master-v1:
  replicas: 3
  image:
    tag: 6.6.2

# --- services ---
egov-user:
  replicas: 2   # two for dev too
  memory_limits: 512Mi
  heap: "-Xmx192m -Xms192m"
"#;

/// The same file as an operator who started from digit-lts.yaml @002cf12 has it: the backbone's
/// volumes in the AWS form (`persistence: {enabled: true, aws: [{volumeId, zone}] x3}`).
fn operator_dev_with_aws() -> String {
    let aws = |prefix: &str| {
        format!(
            "  persistence:\n    enabled: true\n    aws:\n{}",
            (0..3)
                .map(|i| format!("      - volumeId: vol-{prefix}{i}\n        zone: ap-south-1a\n"))
                .collect::<String>()
        )
    };
    OPERATOR_DEV
        .replace("  heapOptions: \"-Xms1G -Xmx1G\"\n", &format!("  heapOptions: \"-Xms1G -Xmx1G\"\n{}", aws("0ka")))
        .replace("  esJavaOpts: \"-Xms2g -Xmx2g\"\n", &format!("  esJavaOpts: \"-Xms2g -Xmx2g\"\n{}", aws("0ed")))
}

// ---------------------------------------------------------------------------------------------
// Running groundwork and Helm
// ---------------------------------------------------------------------------------------------

/// A scratch directory for one test, emptied first (left afterwards, to look at).
fn scratch(name: &str) -> PathBuf {
    groundwork_lab_tests::digit::scratch("digit-deployer", name)
}

/// The example inventory in a directory of its own, switched to the deployer flow over a
/// digit-lts-shaped checkout the test writes, with what else it references stubbed.
trait DeployerSite {
    /// `operator_dev`: the operator's dev.yaml in the checkout; `target`: lio or tgt.
    fn stub(name: &str, operator_dev: &str, target: &str) -> Site;
    /// The DIGIT-DevOps checkout root (`handoff.digit.source`).
    fn checkout(&self) -> PathBuf;
    /// groundwork's `<env>.yaml` for the deployer.
    fn env_file(&self, env: &str) -> PathBuf;
    /// groundwork's volumes, as its library plans them for this inventory.
    fn plan(&self) -> VolumePlan;
    /// The deployer's chart index over the checkout.
    fn charts(&self) -> BTreeMap<String, PathBuf>;
}

impl DeployerSite for Site {
    fn stub(name: &str, operator_dev: &str, target: &str) -> Site {
        let dir = scratch(name);
        let checkout = dir.join(CHECKOUT);
        write_checkout(&checkout, operator_dev);

        let environments = ENVIRONMENTS
            .iter()
            .map(|(env, domain)| format!("      - {{name: {env}, domain: {domain}, tenantId: pg}}\n"))
            .collect::<String>();
        let replacements = [
            ("flow: helmfile ", "flow: deployer ".to_string()),
            (
                "source: ../../Citizen-Complaint-Resolution-System/devops/deploy-as-code",
                format!("source: {}", checkout.display()),
            ),
            // The profile's volumes as they are: dev (kafka 3x50Gi, zookeeper 3x5Gi, es-data 3x50Gi, es-master 3x5Gi).
            ("profile: prod ", "profile: dev  ".to_string()),
            ("    - {name: kafka, protocol: iscsi, count: 3, size: 200Gi}\n", String::new()),
            (
                "  volumes:                            # changes to",
                "  # volumes:                          # changes to".to_string(),
            ),
            ("    target: lio ", format!("    target: {target} ")),
            (
                "      - {name: dev, domain: dev.digit.sdc.example.gov.in, tenantId: pg}\n      - {name: uat, domain: uat.digit.sdc.example.gov.in, tenantId: pg}\n      - {name: prod, domain: digit.sdc.example.gov.in, tenantId: pg, certIssuer: letsencrypt-prod}\n",
                environments,
            ),
        ];
        Site::example(dir, |example| {
            let mut text = example;
            for (from, to) in replacements {
                assert!(text.contains(from), "the example inventory has changed: no {from:?}");
                text = text.replacen(from, &to, 1);
            }
            text
        })
    }

    fn checkout(&self) -> PathBuf {
        self.dir.join(CHECKOUT)
    }

    fn env_file(&self, env: &str) -> PathBuf {
        self.handoff().join("digit/deployer").join(format!("{env}.yaml"))
    }

    fn plan(&self) -> VolumePlan {
        let loaded = groundwork::inventory::load(&self.inventory)
            .unwrap_or_else(|e| panic!("the inventory does not load: {e:?}"));
        VolumePlan::of(&loaded.inventory).expect("the inventory has storage")
    }

    fn charts(&self) -> BTreeMap<String, PathBuf> {
        chart_index(&self.checkout().join("deploy-as-code/helm"))
    }
}

fn write_checkout(checkout: &Path, operator_dev: &str) {
    let helm = checkout.join("deploy-as-code/helm");
    write(&helm.join("environments/dev.yaml"), operator_dev);
    for shape in &CHART_SHAPES {
        let dir = helm.join("charts/backbone-services").join(shape.dir);
        write(
            &dir.join("Chart.yaml"),
            &format!("apiVersion: v1\nname: {}\nversion: 0.1.0\nappVersion: \"1.0\"\n", shape.dir),
        );
        write(&dir.join("values.yaml"), shape.values);
        for (service, values) in shape.service_values {
            write(&dir.join(format!("{service}-values.yaml")), values);
        }
        write(&dir.join("templates/_helpers.tpl"), HELPERS);
        write(
            &dir.join("templates/statefulset.yaml"),
            &statefulset_template(shape.claim_template, shape.mount, shape.size),
        );
        write(&dir.join("templates/persistentvolume.yaml"), &pv_template(shape.claim_template, shape.reclaim));
        write(&dir.join("templates/service.yaml"), &service_template(shape.ports));
    }
}

/// The Go deployer's chart index (pkg/cmd/deployer/deployer.go @012cf78, `buildIndex`): walking
/// the tree, a file `values.yaml` maps its directory's name to the directory, a file
/// `X-values.yaml` maps `X`; the last one found wins.
fn chart_index(root: &Path) -> BTreeMap<String, PathBuf> {
    let mut index = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let mut entries: Vec<PathBuf> =
            std::fs::read_dir(&dir).into_iter().flatten().flatten().map(|e| e.path()).collect();
        entries.sort();
        for path in entries {
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_string();
            if path.is_dir() {
                stack.push(path);
            } else if name == "values.yaml" {
                let service = dir.file_name().and_then(|n| n.to_str()).unwrap_or_default();
                index.insert(service.to_string(), dir.clone());
            } else if let Some(service) = name.strip_suffix("-values.yaml") {
                index.insert(service.to_string(), dir.clone());
            }
        }
    }
    index
}

/// One chart rendered as the deployer renders it for `service` with the environment file `env`.
struct Render {
    service: String,
    documents: Vec<Json>,
    errors: Vec<String>,
}

fn render(charts: &BTreeMap<String, PathBuf>, service: &str, env: &Path, extra: &[&Path]) -> Render {
    let dir = charts.get(service).unwrap_or_else(|| panic!("the chart index has no {service}: {charts:?}"));
    let mut values: Vec<PathBuf> = vec![env.to_path_buf()];
    values.extend(extra.iter().map(|p| p.to_path_buf()));
    let own = dir.join(format!("{service}-values.yaml"));
    if own.is_file() {
        values.push(own);
    }
    let out = Command::new(python())
        .arg(root().join("tests/digit/render.py"))
        .arg("--deployer")
        .arg(dir)
        .arg(service)
        .args(&values)
        .output()
        .expect("render.py runs");
    assert!(out.status.success(), "{service}: render.py failed:\n{}", text(&out.stderr));
    let report: Json = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{service}: render.py's output is not JSON ({e}): {}", text(&out.stdout)));
    Render {
        service: service.to_string(),
        documents: report["documents"].as_array().cloned().unwrap_or_default(),
        errors: report["errors"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|e| e.as_str().unwrap_or_default().into())
            .collect(),
    }
}

impl Render {
    fn of_kind(&self, kind: &str) -> impl Iterator<Item = &Json> {
        self.documents.iter().filter(move |d| d["kind"] == kind)
    }
}

// ---------------------------------------------------------------------------------------------
// Values
// ---------------------------------------------------------------------------------------------

fn s(v: &Json) -> &str {
    v.as_str().unwrap_or_default()
}

/// Whether a dotted key path is one groundwork sets (or lies below one).
fn owned(path: &str) -> bool {
    let mut keys = vec!["global.domain".to_string()];
    keys.extend(EGOV_CONFIG.iter().map(|k| format!("cluster-configs.configmaps.egov-config.data.{k}")));
    for (_, chart) in CHARTS {
        keys.extend(PERSISTENCE.iter().map(|p| format!("{chart}.persistence.{p}")));
    }
    keys.iter().any(|k| path == k || path.starts_with(&format!("{k}.")) || path.starts_with(&format!("{k}[")))
}

/// Each line of a block-style YAML file with the dotted key path it sets or continues (None for
/// blank and comment-only lines).
fn line_paths(text: &str) -> Vec<(&str, Option<String>)> {
    let mut stack: Vec<(usize, String)> = Vec::new();
    text.lines()
        .map(|line| {
            let trimmed = line.trim_start();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                return (line, None);
            }
            let indent = line.len() - trimmed.len();
            let key = trimmed
                .split_once(':')
                .map(|(k, _)| k)
                .filter(|k| !k.starts_with('-') && k.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)));
            if let Some(key) = key {
                while stack.last().is_some_and(|(i, _)| *i >= indent) {
                    stack.pop();
                }
                stack.push((indent, key.to_string()));
            }
            (line, Some(stack.iter().map(|(_, k)| k.as_str()).collect::<Vec<_>>().join(".")))
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Checks
// ---------------------------------------------------------------------------------------------

/// A groundwork volume as the checks need it.
struct Planned {
    iqn: String,
    lun: u64,
    portal: String,
    bytes: u128,
}

fn planned(plan: &VolumePlan) -> BTreeMap<String, Planned> {
    plan.iscsi()
        .filter_map(|v| match &v.access {
            VolumeAccess::Iscsi { iqn, lun, portal } => Some((
                v.name.clone(),
                Planned {
                    iqn: iqn.clone(),
                    lun: u64::from(*lun),
                    portal: portal.clone(),
                    bytes: v.size.bytes().into(),
                },
            )),
            VolumeAccess::Nfs { .. } => None,
        })
        .collect()
}

/// The checks of one chart's render against groundwork's volumes of `component`: the rendered
/// StatefulSet's replicas decide how many PersistentVolumes there must be; PV `i` is the claim
/// replica `i` makes, on groundwork's volume `<component>-i`. Returns the problems, and the IQNs
/// the PVs use.
fn chart_problems(
    env: &str,
    component: &str,
    r: &Render,
    volumes: &BTreeMap<String, Planned>,
) -> (Vec<String>, Vec<String>) {
    let at = format!("{env}: {}", r.service);
    let mut problems: Vec<String> = r.errors.iter().map(|e| format!("{at}: helm template: {e}")).collect();
    let mut iqns = Vec::new();
    let sets: Vec<&Json> = r.of_kind("StatefulSet").filter(|d| d["metadata"]["name"] == r.service.as_str()).collect();
    let [sts] = sets.as_slice() else {
        problems.push(format!("{at}: {} StatefulSets named {}, not one", sets.len(), r.service));
        return (problems, iqns);
    };
    let replicas = sts["spec"]["replicas"].as_u64().unwrap_or(1);
    let namespace = s(&sts["metadata"]["namespace"]);
    let templates = sts["spec"]["volumeClaimTemplates"].as_array().cloned().unwrap_or_default();
    let [template] = templates.as_slice() else {
        problems.push(format!("{at}: StatefulSet has {} volumeClaimTemplates, not one", templates.len()));
        return (problems, iqns);
    };
    let request = s(&template["spec"]["resources"]["requests"]["storage"]);
    let pvs: Vec<&Json> = r.of_kind("PersistentVolume").collect();
    if pvs.len() as u64 != replicas {
        problems.push(format!("{at}: {} PersistentVolumes rendered for {replicas} replicas", pvs.len()));
    }
    let pv_names: BTreeSet<&str> = pvs.iter().map(|pv| s(&pv["metadata"]["name"])).collect();
    if pv_names.len() != pvs.len() {
        problems.push(format!("{at}: PersistentVolume names repeat: {pv_names:?}"));
    }
    for i in 0..replicas {
        // The claim the StatefulSet controller makes for replica i.
        let claim = format!("{}-{}-{i}", s(&template["metadata"]["name"]), r.service);
        let bound: Vec<&&Json> = pvs
            .iter()
            .filter(|pv| {
                pv["spec"]["claimRef"]["name"] == claim.as_str() && pv["spec"]["claimRef"]["namespace"] == namespace
            })
            .collect();
        let [pv] = bound.as_slice() else {
            problems
                .push(format!("{at}: {} PersistentVolumes bound to claim {namespace}/{claim}, not one", bound.len()));
            continue;
        };
        let name = s(&pv["metadata"]["name"]);
        let spec = &pv["spec"];
        let reclaim = s(&spec["persistentVolumeReclaimPolicy"]);
        if !["Retain", "Recycle", "Delete"].contains(&reclaim) {
            problems.push(format!("{at}: PV {name} has persistentVolumeReclaimPolicy {reclaim:?}"));
        }
        let sources: Vec<&str> = SOURCES.iter().copied().filter(|k| !spec[*k].is_null()).collect();
        if sources != ["iscsi"] {
            problems.push(format!("{at}: PersistentVolume {name} has volume sources {sources:?}, not just iscsi"));
        }
        let volume_name = format!("{component}-{i}");
        let Some(volume) = volumes.get(&volume_name) else {
            problems.push(format!("{at}: replica {i} has no groundwork volume {volume_name}"));
            continue;
        };
        let iscsi = &spec["iscsi"];
        iqns.push(s(&iscsi["iqn"]).to_string());
        if s(&iscsi["iqn"]) != volume.iqn {
            problems.push(format!("{at}: PV {name} iqn {} is not {volume_name}'s {}", iscsi["iqn"], volume.iqn));
        }
        if iscsi["lun"].as_u64() != Some(volume.lun) {
            problems.push(format!("{at}: PV {name} lun {} is not {volume_name}'s LUN {}", iscsi["lun"], volume.lun));
        }
        if s(&iscsi["targetPortal"]) != volume.portal {
            problems.push(format!("{at}: PV {name} portal {} is not {}", iscsi["targetPortal"], volume.portal));
        }
        let capacity = s(&spec["capacity"]["storage"]);
        if quantity(capacity) != Some(volume.bytes) {
            problems
                .push(format!("{at}: PV {name} capacity {capacity:?} is not {volume_name}'s {} bytes", volume.bytes));
        }
        match (quantity(request), quantity(capacity)) {
            (Some(want), Some(have)) if have >= want => {}
            _ => problems.push(format!("{at}: claim {claim} requests {request:?}, PV {name} holds {capacity:?}")),
        }
        let (pv_class, claim_class) = (s(&spec["storageClassName"]), s(&template["spec"]["storageClassName"]));
        if pv_class != claim_class {
            problems.push(format!("{at}: PV {name} class {pv_class:?}, claim template class {claim_class:?}"));
        }
    }
    (problems, iqns)
}

/// groundwork's keys in a written environment file: filled in, and consistent.
fn env_file_problems(env: &str, domain: &str, file: &Yaml, volumes: &BTreeMap<String, Planned>) -> Vec<String> {
    let mut problems = Vec::new();
    if ystr(file, &["global", "domain"]) != domain {
        problems.push(format!("{env}: global.domain is {:?}, not {domain}", ystr(file, &["global", "domain"])));
    }
    let data = |k: &str| ystr(file, &["cluster-configs", "configmaps", "egov-config", "data", k]).to_string();
    for key in EGOV_CONFIG {
        let v = data(key);
        if v.trim().is_empty() || v.contains('<') {
            problems.push(format!("{env}: egov-config data.{key} is {v:?}"));
        }
    }
    if data("egov-services-fqdn-name") != format!("https://{domain}/") {
        problems.push(format!("{env}: egov-services-fqdn-name is {:?}", data("egov-services-fqdn-name")));
    }
    let url = data("db-url");
    if !(url.contains(&data("db-host")) && url.ends_with(&format!("/{}", data("db-name")))) {
        problems.push(format!(
            "{env}: db-url {url:?} is not db-host {:?} / db-name {:?}",
            data("db-host"),
            data("db-name")
        ));
    }
    for (component, chart) in CHARTS {
        let p = |k: &[&str]| yget(file, &[&[chart, "persistence"], k].concat()).cloned().unwrap_or(Yaml::Null);
        let mine: Vec<&Planned> = (0..).map_while(|i| volumes.get(&format!("{component}-{i}"))).collect();
        if p(&["enabled"]) != Yaml::Bool(true) {
            problems.push(format!("{env}: {chart}.persistence.enabled is {:?}", p(&["enabled"])));
        }
        let iqns: Vec<String> = p(&["iscsi", "iqn"])
            .as_sequence()
            .map(|s| s.iter().map(|v| v.as_str().unwrap_or_default().to_string()).collect())
            .unwrap_or_default();
        let want: Vec<String> = mine.iter().map(|v| v.iqn.clone()).collect();
        if iqns != want {
            problems.push(format!("{env}: {chart}.persistence.iscsi.iqn is {iqns:?}, groundwork's are {want:?}"));
        }
        let portal = p(&["iscsi", "targetPortal"]);
        if mine.first().is_none_or(|v| portal.as_str() != Some(v.portal.as_str())) {
            problems.push(format!("{env}: {chart}.persistence.iscsi.targetPortal is {portal:?}"));
        }
        let size = p(&["dataDirSize"]);
        if mine.first().is_none_or(|v| size.as_str().and_then(quantity) != Some(v.bytes)) {
            problems.push(format!("{env}: {chart}.persistence.dataDirSize is {size:?}"));
        }
    }
    problems
}

/// The operator's file is kept: each of its lines that does not set one of groundwork's keys is in
/// the written file, in order (comments included), and each of its values groundwork does not own
/// is unchanged. A value holding one of DIGIT's `<placeholders>` groundwork may fill in (e.g.
/// `egov-config.data.domain: <domain_name>`); it must then hold none.
fn kept_problems(operator: &str, written: &str) -> Vec<String> {
    let mut problems = Vec::new();
    let mut lines = written.lines().map(str::trim_end);
    for (line, path) in line_paths(operator) {
        if path.as_deref().is_some_and(owned) || is_placeholder(line) {
            continue;
        }
        let line = line.trim_end();
        if !lines.any(|l| l == line) {
            problems.push(format!("the operator's line {line:?} ({path:?}) is not kept (in order)"));
            break;
        }
    }
    let (mut before, mut after) = (BTreeMap::new(), BTreeMap::new());
    leaves(&serde_yaml_ng::from_str(operator).expect("the operator's file"), "", &mut before);
    leaves(&serde_yaml_ng::from_str(written).expect("the written file"), "", &mut after);
    for (key, value) in before.iter().filter(|(k, _)| !owned(k)) {
        if is_placeholder(value) {
            if after.get(key).is_none_or(|v| is_placeholder(v) || v.is_empty()) {
                problems.push(format!("the operator's {key} = {value:?} is not filled in: {:?}", after.get(key)));
            }
        } else if after.get(key) != Some(value) {
            problems.push(format!("the operator's {key} = {value:?} became {:?}", after.get(key)));
        }
    }
    problems
}

/// Renders every chart for every environment and checks it; returns the problems.
fn deployer_problems(site: &Site) -> Vec<String> {
    let plan = site.plan();
    let volumes = planned(&plan);
    let charts = site.charts();
    let mut problems = Vec::new();
    for (env, _) in ENVIRONMENTS {
        let mut used: BTreeMap<String, String> = BTreeMap::new();
        for (component, chart) in CHARTS {
            let r = render(&charts, chart, &site.env_file(env), &[]);
            let (p, iqns) = chart_problems(env, component, &r, &volumes);
            problems.extend(p);
            for iqn in iqns {
                if let Some(other) = used.insert(iqn.clone(), chart.to_string()) {
                    problems.push(format!("{env}: IQN {iqn} is used by {other} and {chart}"));
                }
            }
        }
    }
    problems
}

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

#[test]
fn the_digit_lts_charts_render_their_volumes_on_groundworks_iscsi_luns() {
    let site = Site::stub("lio", OPERATOR_DEV, "lio");
    let outcome = site.handoff_json();
    let plan = site.plan();
    let volumes = planned(&plan);

    // groundwork's volumes are the dev profile's, as the contract says (the charts' PVs are checked
    // against the plan below; this pins the plan).
    let kafka0 = volumes.get("kafka-0").expect("groundwork plans kafka-0");
    assert_eq!(kafka0.iqn, format!("iqn.2026-01.io.groundwork:{CLUSTER}:kafka-0"));
    assert_eq!((kafka0.lun, kafka0.portal.as_str(), kafka0.bytes), (0, "172.16.10.31:3260", 50u128 << 30));
    for (component, count, gib) in [("kafka", 3, 50u128), ("zookeeper", 3, 5), ("es-data", 3, 50), ("es-master", 3, 5)]
    {
        let of: Vec<&Planned> = volumes
            .iter()
            .filter(|(n, _)| n.rsplit_once('-').is_some_and(|(c, _)| c == component))
            .map(|(_, v)| v)
            .collect();
        assert_eq!(of.len(), count, "groundwork's {component} volumes: {:?}", volumes.keys());
        assert!(of.iter().all(|v| v.bytes == gib << 30), "groundwork's {component} volumes are not {gib}Gi");
    }

    // groundwork's storage.yaml leaves the PersistentVolumes to the charts.
    let storage = yaml_docs(&site.handoff().join("manifests/storage.yaml"));
    let pvs: Vec<&str> = storage
        .iter()
        .filter(|d| ystr(d, &["kind"]) == "PersistentVolume")
        .map(|d| ystr(d, &["metadata", "name"]))
        .collect();
    assert!(pvs.is_empty(), "manifests/storage.yaml has PersistentVolumes the charts make too: {pvs:?}");

    // The files: groundwork's keys filled in; dev is the operator's file, kept; qa is generated.
    let mut problems = Vec::new();
    for (env, domain) in ENVIRONMENTS {
        let file = site.env_file(env);
        problems.extend(env_file_problems(env, domain, &yaml_file(&file), &volumes));
        let secrets = site.handoff().join(format!("digit/deployer/{env}-secrets.yaml"));
        if !secrets.is_file() {
            problems.push(format!("{env}: no {} (the inventory has a database)", secrets.display()));
        }
    }
    let written = std::fs::read_to_string(site.env_file("dev")).expect("dev.yaml");
    problems.extend(kept_problems(OPERATOR_DEV, &written).into_iter().map(|p| format!("dev: {p}")));
    assert_none("groundwork's deployer files", &problems);

    // The charts, rendered as the deployer renders them.
    let mut problems = deployer_problems(&site);
    // The host names groundwork points DIGIT at are Services the charts render (or groundwork's).
    let charts = site.charts();
    let mut services: BTreeSet<(String, String)> = BTreeSet::new();
    for (_, chart) in CHARTS {
        for svc in render(&charts, chart, &site.env_file("dev"), &[]).of_kind("Service") {
            services.insert((s(&svc["metadata"]["namespace"]).into(), s(&svc["metadata"]["name"]).into()));
        }
    }
    for doc in yaml_docs(&site.handoff().join("manifests/database.yaml")) {
        if ystr(&doc, &["kind"]) == "Service" {
            services.insert((ystr(&doc, &["metadata", "namespace"]).into(), ystr(&doc, &["metadata", "name"]).into()));
        }
    }
    let dev = yaml_file(&site.env_file("dev"));
    for key in ["db-host", "es-host", "es-indexer-host", "kafka-brokers"] {
        let value = ystr(&dev, &["cluster-configs", "configmaps", "egov-config", "data", key]);
        for host in value.split(',') {
            let host = host.trim().trim_start_matches("http://").split(['/', ':']).next().unwrap_or_default();
            let mut parts = host.splitn(3, '.');
            let service = (parts.next().unwrap_or_default().to_string(), parts.next().unwrap_or_default().to_string());
            if !services.contains(&(service.1.clone(), service.0.clone())) {
                problems.push(format!(
                    "dev: {key} = {value:?}: no Service {}/{} is rendered or handed off",
                    service.1, service.0
                ));
            }
        }
    }
    assert_none("the digit-lts charts rendered with groundwork's files", &problems);

    let deploy = &outcome["deploy"];
    eprintln!("deploy commands: {deploy}");
}

/// The checks can fail, and the volumes come from groundwork's values: the operator's own file
/// renders no volume, and a replica more than groundwork has volumes for is caught.
#[test]
fn the_checks_fail_without_groundworks_values_or_with_a_replica_too_many() {
    let site = Site::stub("negative", OPERATOR_DEV, "lio");
    site.handoff_json();
    let volumes = planned(&site.plan());
    let charts = site.charts();
    let operator = site.checkout().join("deploy-as-code/helm/environments/dev.yaml");
    let kafka = render(&charts, "kafka-v2", &operator, &[]);
    assert!(kafka.errors.is_empty(), "the operator's own file does not render: {:?}", kafka.errors);
    assert_eq!(kafka.of_kind("PersistentVolume").count(), 0, "the operator's own file renders PersistentVolumes");
    let (problems, _) = chart_problems("dev", "kafka", &kafka, &volumes);
    assert!(
        problems.iter().any(|p| p.contains("volumeClaimTemplates")),
        "the operator's own file (persistence off) passes the checks: {problems:?}"
    );

    let more = site.dir.join("four-replicas.yaml");
    write(&more, "kafka-v2:\n  replicas: 4\n");
    let four = render(&charts, "kafka-v2", &site.env_file("dev"), &[&more]);
    let (problems, _) = chart_problems("dev", "kafka", &four, &volumes);
    assert!(!problems.is_empty(), "four Kafka replicas on groundwork's three volumes pass the checks");
    eprintln!("four replicas on three volumes: {problems:?}");
}

/// Every iSCSI volume groundwork makes for a chart is mounted by one of its replicas (else the
/// storage host serves LUNs nothing uses). zookeeper-v2's values.yaml has `replicas: 1`
/// (@36f0312) and the lts env files do not set it.
#[test]
fn every_volume_groundwork_makes_is_mounted_by_a_replica() {
    let site = Site::stub("mounted", OPERATOR_DEV, "lio");
    site.handoff_json();
    let volumes = planned(&site.plan());
    let charts = site.charts();
    let mut problems = Vec::new();
    for (env, _) in ENVIRONMENTS {
        for (component, chart) in CHARTS {
            let r = render(&charts, chart, &site.env_file(env), &[]);
            let mounted: BTreeSet<&str> =
                r.of_kind("PersistentVolume").map(|pv| s(&pv["spec"]["iscsi"]["iqn"])).collect();
            for (name, v) in volumes.iter().filter(|(n, _)| n.rsplit_once('-').is_some_and(|(c, _)| c == component)) {
                if !mounted.contains(v.iqn.as_str()) {
                    problems.push(format!(
                        "{env}: groundwork's volume {name} ({}) is mounted by no replica of {chart}",
                        v.iqn
                    ));
                }
            }
        }
    }
    assert_none("groundwork's volumes left unused by the charts", &problems);
}

/// An operator who started from digit-lts.yaml has the backbone's volumes in the AWS form; the
/// PersistentVolumes rendered from groundwork's file must still be iSCSI only (the API refuses a
/// PersistentVolume with two sources).
#[test]
fn an_operators_aws_volumes_do_not_reach_the_rendered_persistent_volumes() {
    let operator = operator_dev_with_aws();
    let site = Site::stub("aws", &operator, "lio");
    site.handoff_json();
    assert_none("the digit-lts charts rendered over an operator's AWS volumes", &deployer_problems(&site));
}

/// A DIGIT-DevOps checkout is what the deployer flow's `source` names: loading the inventory
/// takes it without a warning (the warning is for a checkout without DIGIT's deployment).
#[test]
fn a_digit_lts_checkout_is_taken_without_a_warning() {
    let site = Site::stub("warning", OPERATOR_DEV, "lio");
    let out = site.groundwork(&["handoff"]);
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "groundwork handoff failed:\n{stderr}");
    let warning = stderr.lines().find(|l| l.contains("handoff.digit.source"));
    assert!(warning.is_none(), "a DIGIT-DevOps checkout draws a warning: {warning:?}\n{stderr}");
}

/// Lexically normalised (`a/b/../c` is `a/c`).
fn normal(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

/// The deploy commands (NEXT-STEPS.md, `--run-deployer`) point the Go deployer at the files they
/// copy and at the charts: it reads `<--helm-dir>/environments/<env>.yaml`, `--helm-dir` relative
/// to the directory it runs in, default `../../config-as-code` (deploy-as-code/deployer/cmd/deploy.go
/// @012cf78 and @ca1314f; forks default to `../../deploy-as-code/helm`), and indexes the charts
/// under `<helm-dir>/helm` (deployer.go @012cf78) or `<helm-dir>` itself (HCM-MOZ-IMPEL fork @b537a93).
#[test]
fn the_deploy_commands_point_the_deployer_at_the_copied_files() {
    let site = Site::stub("commands", OPERATOR_DEV, "lio");
    let outcome = site.handoff_json();
    let commands: Vec<&str> = outcome["deploy"]["deploy"].as_array().into_iter().flatten().map(s).collect();
    let words = |c: &str| c.split_whitespace().map(|w| w.trim_matches('\'').to_string()).collect::<Vec<String>>();
    let copied = commands
        .iter()
        .find(|c| c.starts_with("cp "))
        .map(|c| PathBuf::from(words(c).last().cloned().unwrap_or_default()))
        .unwrap_or_else(|| panic!("no cp among the deploy commands: {commands:?}"));
    let cd = commands
        .iter()
        .find_map(|c| c.strip_prefix("cd "))
        .map(|d| PathBuf::from(d.trim()))
        .unwrap_or_else(|| panic!("no cd among the deploy commands: {commands:?}"));
    let deploy = commands
        .iter()
        .find(|c| c.contains("main.go deploy"))
        .map(|c| words(c))
        .unwrap_or_else(|| panic!("no `go run main.go deploy` among the deploy commands: {commands:?}"));
    let helm_dir = deploy
        .iter()
        .position(|w| w == "--helm-dir")
        .and_then(|i| deploy.get(i + 1).cloned())
        .or_else(|| deploy.iter().find_map(|w| w.strip_prefix("--helm-dir=").map(str::to_string)))
        .unwrap_or_else(|| "../../config-as-code".to_string());
    let config_dir = normal(&cd.join(&helm_dir));
    let mut problems = Vec::new();
    if normal(&config_dir.join("environments")) != normal(&copied) {
        problems.push(format!(
            "the deployer runs in {} with --helm-dir {helm_dir}: it reads {}, the files are copied to {}",
            cd.display(),
            config_dir.join("environments/dev.yaml").display(),
            copied.display()
        ));
    }
    let services =
        deploy.iter().skip_while(|w| *w != "deploy").find(|w| w.contains("kafka-v2")).cloned().unwrap_or_default();
    let found = [config_dir.join("helm"), config_dir.clone()]
        .iter()
        .any(|root| services.split(',').all(|svc| chart_index(root).contains_key(svc)));
    if !found {
        problems.push(format!(
            "the charts {services:?} are under neither {}/helm nor {}",
            config_dir.display(),
            config_dir.display()
        ));
    }
    assert_none(&format!("the deploy commands {commands:?}"), &problems);
}

#[test]
fn a_tgt_target_is_refused_naming_lio() {
    let site = Site::stub("tgt", OPERATOR_DEV, "tgt");
    let out = site.groundwork(&["handoff"]);
    let stderr = text(&out.stderr);
    assert!(!out.status.success(), "handoff with storage.iscsi.target: tgt succeeded:\n{stderr}");
    assert!(
        stderr.contains("storage.iscsi.target: lio"),
        "the refusal does not name storage.iscsi.target: lio:\n{stderr}"
    );
    assert!(!site.env_file("dev").exists(), "a refused handoff wrote {}", site.env_file("dev").display());
}

#[test]
fn the_chart_index_and_line_paths_read_what_the_test_writes() {
    let dir = scratch("index");
    write_checkout(&dir, OPERATOR_DEV);
    let index = chart_index(&dir.join("deploy-as-code/helm"));
    for (_, chart) in CHARTS {
        assert!(index.contains_key(chart), "the chart index lacks {chart}: {index:?}");
    }
    assert_eq!(index["elasticsearch-data-v1"], index["elasticsearch-master-v1"]);
    let paths: BTreeMap<&str, Option<String>> = line_paths(OPERATOR_DEV).into_iter().collect();
    assert_eq!(paths["  domain: <domain_name>"].as_deref(), Some("global.domain"));
    assert_eq!(
        paths["        kafka-brokers: kafka-v2.kafka-cluster:9092"].as_deref(),
        Some("cluster-configs.configmaps.egov-config.data.kafka-brokers")
    );
    assert!(owned("kafka-v2.persistence.iscsi.iqn[2]") && !owned("kafka-v2.image.tag") && !owned("global.setup"));
    assert_eq!(quantity("50Gi"), Some(50 << 30));
}
