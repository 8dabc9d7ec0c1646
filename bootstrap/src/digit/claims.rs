//! The PersistentVolumeClaims DIGIT's stateful releases make, computed from the operator's own
//! values the way the charts compute them. One entry per chart shape groundwork knows; the
//! tests render the same releases with real Helm and check these names, sizes and classes
//! against what Helm produced.

use std::path::Path;

use serde_yaml_ng::Value;

use super::DigitError;
use super::helmfile::{Release, ValuesItem};

/// A claim a chart will create, and what groundwork needs to bind a volume to it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Claim {
    pub namespace: String,
    pub name: String,
    /// The request, as the chart writes it (`8Gi`).
    pub size: String,
    /// The class the chart sets (`""`: none); None: the cluster's default class.
    pub storage_class: Option<String>,
    /// ReadWriteMany claims get NFS, the rest iSCSI.
    pub shared: bool,
    /// The volume set the claim belongs to in `storage.volumes` (`kafka`, `es-data`, ...).
    pub component: String,
    pub release: String,
}

/// How a chart names things: by a values key, or by Helm's `fullname` rule of Bitnami charts.
#[derive(Clone, Copy)]
enum Name {
    /// `default .Chart.Name .Values.<key>` after the chart merged `.Values[<chart name>]` over
    /// its values (the helper DIGIT's charts carry).
    Hoisted(&'static str),
    /// Bitnami's fullname (`fullnameOverride`, else the release name when it contains the chart
    /// name, else `<release>-<chart>`), with a suffix.
    BitnamiFullname(&'static str),
    /// A values key.
    Value(&'static str),
    /// `<chart name><suffix>`.
    ChartSuffix(&'static str),
}

#[derive(Clone, Copy)]
enum Shape {
    /// A StatefulSet's `volumeClaimTemplates`: claims `<template>-<statefulset>-<ordinal>`.
    StatefulSet { statefulset: Name, template: &'static str, replicas: &'static str },
    /// A PersistentVolumeClaim the chart renders itself.
    Claim { name: Name },
}

struct ChartClaims {
    chart: &'static str,
    component: &'static str,
    shape: Shape,
    enabled: &'static [&'static str],
    /// A non-empty value here means the chart uses an existing claim and makes none.
    existing_claim: Option<&'static str>,
    size: &'static str,
    /// Keys tried in order; `-` means "" (no class), empty or missing: the default class.
    class: &'static [&'static str],
    access: &'static str,
    /// Values key of the objects' namespace (DIGIT's charts set it themselves).
    namespace: Option<&'static str>,
    hoisted: bool,
}

/// DIGIT's Elasticsearch charts (master and data nodes share the shape): a StatefulSet named by
/// the hoisted `name`, claims from `volumeClaimTemplate`, objects in `.Values.namespace`.
const fn elasticsearch(chart: &'static str, component: &'static str) -> ChartClaims {
    ChartClaims {
        chart,
        component,
        shape: Shape::StatefulSet { statefulset: Name::Hoisted("name"), template: "es-storage", replicas: "replicas" },
        enabled: &["persistence.enabled"],
        existing_claim: None,
        size: "volumeClaimTemplate.resources.requests.storage",
        class: &["volumeClaimTemplate.storageClassName"],
        access: "volumeClaimTemplate.accessModes",
        namespace: Some("namespace"),
        hoisted: true,
    }
}

/// The stateful chart shapes of DIGIT's backbone (charts/backbone-services and the auxiliary
/// pgAdmin), by the chart's own name (Chart.yaml `name`).
const CATALOG: &[ChartClaims] = &[
    ChartClaims {
        chart: "kafka",
        component: "kafka",
        shape: Shape::StatefulSet {
            statefulset: Name::BitnamiFullname("-controller"),
            template: "data",
            replicas: "controller.replicaCount",
        },
        enabled: &["controller.persistence.enabled"],
        existing_claim: Some("controller.persistence.existingClaim"),
        size: "controller.persistence.size",
        class: &["controller.persistence.storageClass", "global.storageClass"],
        access: "controller.persistence.accessModes",
        namespace: None,
        hoisted: false,
    },
    ChartClaims {
        chart: "kafka",
        component: "kafka-broker",
        shape: Shape::StatefulSet {
            statefulset: Name::BitnamiFullname("-broker"),
            template: "data",
            replicas: "broker.replicaCount",
        },
        enabled: &["broker.persistence.enabled"],
        existing_claim: Some("broker.persistence.existingClaim"),
        size: "broker.persistence.size",
        class: &["broker.persistence.storageClass", "global.storageClass"],
        access: "broker.persistence.accessModes",
        namespace: None,
        hoisted: false,
    },
    elasticsearch("elasticsearch", "es-master"),
    elasticsearch("elasticsearch-data", "es-data"),
    ChartClaims {
        chart: "novu",
        component: "novu-mongodb",
        shape: Shape::Claim { name: Name::Value("mongodb.name") },
        enabled: &["mongodb.persistence.enabled"],
        existing_claim: None,
        size: "mongodb.persistence.size",
        class: &["mongodb.persistence.storageClassName"],
        access: "mongodb.persistence.accessModes",
        namespace: None,
        hoisted: false,
    },
    ChartClaims {
        chart: "pgadmin",
        component: "pgadmin",
        shape: Shape::Claim { name: Name::ChartSuffix("-data") },
        enabled: &["persistence.enabled"],
        existing_claim: Some("persistence.existingClaim"),
        size: "persistence.dataDirSize",
        class: &["persistence.storageClassName"],
        access: "persistence.accessMode",
        namespace: Some("namespace"),
        hoisted: true,
    },
];

/// The claims of every installed release whose chart groundwork knows, given the environment
/// values (DIGIT's env-secrets.yaml and env.yaml merged); sorted by namespace and name.
pub fn claims(releases: &[Release], environment: &Value) -> Result<Vec<Claim>, DigitError> {
    let mut out = Vec::new();
    for release in releases.iter().filter(|r| r.installed) {
        let Some(chart_dir) = &release.chart else { continue };
        let chart_name = chart_name(chart_dir)?;
        let shapes: Vec<&ChartClaims> = CATALOG.iter().filter(|c| c.chart == chart_name).collect();
        if shapes.is_empty() {
            continue;
        }
        let base = values(release, chart_dir, environment)?;
        for shape in shapes {
            let values = if shape.hoisted { hoist(&base, &chart_name) } else { base.clone() };
            out.extend(claims_of(shape, release, &chart_name, &values));
        }
    }
    out.sort();
    Ok(out)
}

fn claims_of(shape: &ChartClaims, release: &Release, chart: &str, values: &Value) -> Vec<Claim> {
    if !shape.enabled.iter().all(|key| truthy(lookup(values, key))) {
        return vec![];
    }
    if let Some(key) = shape.existing_claim
        && lookup(values, key).and_then(Value::as_str).is_some_and(|s| !s.is_empty())
    {
        return vec![];
    }
    let size = lookup(values, shape.size).map(scalar_string).unwrap_or_default();
    let storage_class = shape
        .class
        .iter()
        .find_map(|key| lookup(values, key).map(scalar_string).filter(|s| !s.is_empty()))
        .map(|s| if s == "-" { String::new() } else { s });
    let shared = match lookup(values, shape.access) {
        Some(Value::Sequence(modes)) => modes.iter().any(|m| m.as_str() == Some("ReadWriteMany")),
        Some(Value::String(mode)) => mode == "ReadWriteMany",
        _ => false,
    };
    let namespace = shape
        .namespace
        .and_then(|key| lookup(values, key).and_then(Value::as_str))
        .filter(|s| !s.is_empty())
        .unwrap_or(&release.namespace)
        .to_string();
    let claim = |name: String| Claim {
        namespace: namespace.clone(),
        name,
        size: size.clone(),
        storage_class: storage_class.clone(),
        shared,
        component: shape.component.to_string(),
        release: release.name.clone(),
    };
    match shape.shape {
        Shape::StatefulSet { statefulset, template, replicas } => {
            let sts = name(statefulset, release, chart, values);
            let count = lookup(values, replicas).map(scalar_string).and_then(|s| s.parse::<u32>().ok()).unwrap_or(1);
            (0..count).map(|i| claim(format!("{template}-{sts}-{i}"))).collect()
        }
        Shape::Claim { name: rule } => vec![claim(name(rule, release, chart, values))],
    }
}

fn name(rule: Name, release: &Release, chart: &str, values: &Value) -> String {
    match rule {
        Name::Hoisted(key) | Name::Value(key) => {
            let fallback = if matches!(rule, Name::Value(_)) { release.name.as_str() } else { chart };
            lookup(values, key).and_then(Value::as_str).filter(|s| !s.is_empty()).unwrap_or(fallback).to_string()
        }
        Name::ChartSuffix(suffix) => format!("{chart}{suffix}"),
        Name::BitnamiFullname(suffix) => {
            let base = match lookup(values, "fullnameOverride").and_then(Value::as_str).filter(|s| !s.is_empty()) {
                Some(full) => full.to_string(),
                None => {
                    let chart = lookup(values, "nameOverride")
                        .and_then(Value::as_str)
                        .filter(|s| !s.is_empty())
                        .unwrap_or(chart);
                    if release.name.contains(chart) {
                        release.name.clone()
                    } else {
                        format!("{}-{chart}", release.name)
                    }
                }
            };
            let mut full: String = base.chars().take(63).collect();
            while full.ends_with('-') {
                full.pop();
            }
            format!("{full}{suffix}")
        }
    }
}

/// The values a release's chart sees: its values.yaml, then the release's values list in order
/// (files, the environment values, inline maps), each merged over the last as Helm does.
fn values(release: &Release, chart_dir: &Path, environment: &Value) -> Result<Value, DigitError> {
    let mut merged = read_yaml(&chart_dir.join("values.yaml"))?.unwrap_or(Value::Null);
    for item in &release.values {
        let layer = match item {
            ValuesItem::File(path) => match read_yaml(path)? {
                Some(v) => v,
                None => continue,
            },
            ValuesItem::EnvironmentValues => environment.clone(),
            ValuesItem::Inline(v) => v.clone(),
        };
        merge(&mut merged, &layer);
    }
    Ok(merged)
}

/// DIGIT's charts merge `.Values[<chart name>]` (or `.Values[.Values.name]`) over their values
/// at render time, so an environment file's `elasticsearch:` block is read by that chart.
fn hoist(values: &Value, chart: &str) -> Value {
    let key = lookup(values, "name").and_then(Value::as_str).filter(|s| !s.is_empty()).unwrap_or(chart);
    let mut out = values.clone();
    if let Some(overrides) = values.get(key).filter(|v| v.is_mapping()) {
        merge(&mut out, overrides);
    }
    out
}

/// Helm's merge: maps key by key, anything else replaced (a null removes the key in Helm; kept
/// as null here, which reads as missing).
pub fn merge(base: &mut Value, over: &Value) {
    match (base, over) {
        (Value::Mapping(b), Value::Mapping(o)) => {
            for (k, v) in o {
                match b.get_mut(k) {
                    Some(existing) => merge(existing, v),
                    None => {
                        b.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (b, o) => *b = o.clone(),
    }
}

fn lookup<'a>(values: &'a Value, dotted: &str) -> Option<&'a Value> {
    dotted.split('.').try_fold(values, |node, key| node.get(key)).filter(|v| !v.is_null())
}

fn truthy(value: Option<&Value>) -> bool {
    match value {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => s == "true",
        Some(_) => true,
        // The charts' `if .Values.x.enabled` is false for a missing key.
        None => false,
    }
}

fn scalar_string(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        _ => String::new(),
    }
}

fn chart_name(dir: &Path) -> Result<String, DigitError> {
    let file = dir.join("Chart.yaml");
    let chart = read_yaml(&file)?.ok_or_else(|| DigitError::Parse { path: file.clone(), message: "missing".into() })?;
    Ok(chart.get("name").and_then(Value::as_str).unwrap_or_default().to_string())
}

fn read_yaml(path: &Path) -> Result<Option<Value>, DigitError> {
    match std::fs::read_to_string(path) {
        Ok(text) => serde_yaml_ng::from_str(&text)
            .map(Some)
            .map_err(|e| DigitError::Parse { path: path.to_path_buf(), message: e.to_string() }),
        // helmfile's missingFileHandler: Warn skips a values file that is not there.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(DigitError::Read { path: path.to_path_buf(), source }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digit::DigitSource;

    /// DIGIT's deployment as `../shared/digit` holds it (the tests crate renders the same
    /// releases with real Helm; these figures are what Helm rendered).
    #[test]
    fn the_backbone_claims_of_digits_own_checkout() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/digit/ccrs/devops/deploy-as-code");
        let claims = DigitSource::open(&root).expect("DIGIT's checkout in ../shared").claims().expect("claims");
        let got: Vec<String> = claims
            .iter()
            .map(|c| format!("{}/{} {} {:?} {}", c.namespace, c.name, c.size, c.storage_class, c.component))
            .collect();
        assert_eq!(
            got,
            [
                "backbone/data-kafka-kraft-controller-0 8Gi None kafka",
                "backbone/data-kafka-kraft-controller-1 8Gi None kafka",
                "backbone/data-kafka-kraft-controller-2 8Gi None kafka",
                "backbone/es-storage-elasticsearch-data-0 25Gi None es-data",
                "backbone/es-storage-elasticsearch-data-1 25Gi None es-data",
                "backbone/es-storage-elasticsearch-data-2 25Gi None es-data",
                "backbone/es-storage-elasticsearch-master-0 2Gi None es-master",
                "backbone/es-storage-elasticsearch-master-1 2Gi None es-master",
                "backbone/es-storage-elasticsearch-master-2 2Gi None es-master",
                "backbone/pgadmin-data 5Gi Some(\"gp3\") pgadmin",
                "novu/novu-mongodb 8Gi None novu-mongodb",
            ]
        );
    }

    #[test]
    fn an_environment_block_named_after_the_chart_changes_its_claims() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/digit/ccrs/devops/deploy-as-code");
        let source = DigitSource::open(&root).expect("checkout");
        let mut env = source.environment_values().expect("values");
        let extra: Value = serde_yaml_ng::from_str(
            "elasticsearch-data: {replicas: 2, volumeClaimTemplate: {storageClassName: fast, resources: {requests: {storage: 40Gi}}}}",
        )
        .expect("yaml");
        merge(&mut env, &extra);
        let claims = claims(&source.releases().expect("releases"), &env).expect("claims");
        let data: Vec<&Claim> = claims.iter().filter(|c| c.component == "es-data").collect();
        assert_eq!(data.len(), 2);
        assert_eq!(data[0].size, "40Gi");
        assert_eq!(data[0].storage_class.as_deref(), Some("fast"));
    }
}
