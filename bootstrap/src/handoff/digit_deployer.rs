//! DIGIT's Go-deployer flow (DIGIT-DevOps, digit-lts): `deploy-as-code/helm/environments/<env>.yaml`
//! (cluster-wide settings under `cluster-configs:`, and the backbone charts' iSCSI volumes) and
//! `<env>-secrets.yaml` (`cluster-configs.secrets`). The operator's own files are filled in line
//! by line when the checkout has them; otherwise groundwork writes a file of its keys alone.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_yaml_ng::Value;

use super::digit_config::{Backbone, ConfigMapData, ConfigMaps, DbSecrets, Global, SecretsSection, egov_config};
use super::{
    Content, DIGIT_SECRETS_REGEX, DigitEnvironmentInputs, DigitInputs, HandoffError, HandoffInputs, Rendered,
    deployer_file, yaml,
};
use crate::digit::yaml_text::{YamlText, scalar};
use crate::storage::{PlannedVolume, VolumeAccess, VolumePlan};

/// The deployer's backbone charts and their namespaces.
const BACKBONE: Backbone = Backbone {
    es_host: "elasticsearch-data-v1.es-cluster",
    es_indexer_url: "http://elasticsearch-data-v1.es-cluster:9200/",
    kafka_brokers: "kafka-v2.kafka-cluster:9092",
};

/// groundwork's volume components and the DIGIT charts that mount them.
pub const CHARTS: [(&str, &str); 4] = [
    ("kafka", "kafka-v2"),
    ("zookeeper", "zookeeper-v2"),
    ("es-data", "elasticsearch-data-v1"),
    ("es-master", "elasticsearch-master-v1"),
];

#[derive(Serialize)]
struct EnvFile {
    global: Global,
    #[serde(rename = "cluster-configs")]
    cluster_configs: ClusterConfigs,
    /// One entry per backbone chart with iSCSI volumes, keyed by chart name.
    #[serde(flatten)]
    charts: BTreeMap<String, Chart>,
}

#[derive(Serialize)]
struct ClusterConfigs {
    configmaps: ConfigMaps,
}

#[derive(Serialize)]
struct Chart {
    /// As many replicas as groundwork made volumes, so that no LUN is left idle (zookeeper-v2's
    /// chart defaults to 1).
    replicas: usize,
    persistence: Persistence,
}

#[derive(Serialize)]
struct Persistence {
    enabled: bool,
    iscsi: Iscsi,
    /// The PersistentVolumes' capacity in the charts' templates.
    #[serde(rename = "dataDirSize")]
    data_dir_size: String,
}

#[derive(Serialize)]
struct Iscsi {
    #[serde(rename = "targetPortal")]
    target_portal: String,
    /// One IQN per replica, replica 0 first.
    iqn: Vec<String>,
}

#[derive(Serialize)]
struct SecretsFile {
    #[serde(rename = "cluster-configs")]
    cluster_configs: ClusterSecrets,
}

#[derive(Serialize)]
struct ClusterSecrets {
    secrets: SecretsSection,
}

/// The deployer flow's files. Its charts render their own PersistentVolumes from these values
/// (`persistence.iscsi.targetPortal` and one IQN per replica) with `lun: 0` written in the
/// template, so a tgt target (first disk at LUN 1) is refused rather than mounted wrong.
pub fn render(inputs: &HandoffInputs, digit: &DigitInputs, out: &mut Rendered) -> Result<(), HandoffError> {
    if let Some(plan) = &inputs.volumes
        && plan.iscsi().any(|v| matches!(v.access, VolumeAccess::Iscsi { lun, .. } if lun != 0))
    {
        return Err(HandoffError::DeployerLun);
    }
    for env in &digit.environments {
        render_environment(inputs, digit, env, out)?;
    }
    Ok(())
}

fn render_environment(
    inputs: &HandoffInputs,
    digit: &DigitInputs,
    env: &DigitEnvironmentInputs,
    out: &mut Rendered,
) -> Result<(), HandoffError> {
    let file = EnvFile {
        global: Global { domain: env.domain.clone() },
        cluster_configs: ClusterConfigs {
            configmaps: ConfigMaps { egov_config: ConfigMapData { data: egov_config(inputs, &env.domain, &BACKBONE) } },
        },
        charts: inputs.volumes.as_ref().map(iscsi_charts).unwrap_or_default(),
    };
    let secrets = inputs.database.as_ref().map(|db| SecretsFile {
        cluster_configs: ClusterSecrets { secrets: SecretsSection { db: DbSecrets::of(db) } },
    });
    let generated_values = yaml::document("the deployer's environment file", &file)?;
    let generated_secrets = match &secrets {
        Some(s) => Some(yaml::document("the deployer's secrets file", s)?),
        None => None,
    };
    let (values, secrets_text) = match operator_files(&digit.source.root, &env.name) {
        Some((values_file, secrets_file)) => {
            let values = fill_in(&values_file, &generated_values, env, inputs)?.text();
            let secrets = match (&generated_secrets, secrets_file) {
                (Some(generated), Some(file)) => Some(fill_in(&file, generated, env, inputs)?.text()),
                (generated, _) => generated.clone(),
            };
            (values, secrets)
        }
        None => {
            out.notes.push(format!(
                "no helm/environments/{}.yaml in the DIGIT checkout: digit/deployer/{}.yaml holds groundwork's keys alone",
                env.name, env.name
            ));
            (generated_values, generated_secrets)
        }
    };
    out.add_digit_file(deployer_file(&env.name, false), &YamlText::parse(&values), Content::Plain);
    if let Some(secrets) = secrets_text {
        let secrets = YamlText::parse(&secrets);
        out.add_digit_file(
            deployer_file(&env.name, true),
            &secrets,
            Content::Secret { encrypted_regex: DIGIT_SECRETS_REGEX },
        );
    }
    Ok(())
}

/// The operator's `<env>.yaml` (and `<env>-secrets.yaml`, if there) in their DIGIT-DevOps checkout.
fn operator_files(root: &Path, env: &str) -> Option<(PathBuf, Option<PathBuf>)> {
    let dir = [root.join("deploy-as-code/helm/environments"), root.join("helm/environments")]
        .into_iter()
        .find(|d| d.join(format!("{env}.yaml")).is_file())?;
    let secrets = dir.join(format!("{env}-secrets.yaml"));
    Some((dir.join(format!("{env}.yaml")), secrets.is_file().then_some(secrets)))
}

/// The operator's file with every scalar of `generated` set at its key path (lists as one flow
/// sequence line) and read back, DIGIT's placeholders filled.
fn fill_in(
    file: &Path,
    generated: &str,
    env: &DigitEnvironmentInputs,
    inputs: &HandoffInputs,
) -> Result<YamlText, HandoffError> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| HandoffError::DigitEdit { file: file.to_path_buf(), message: e.to_string() })?;
    let mut edited = YamlText::parse(&text);
    for (placeholder, value) in super::digit_helmfile::substitutions(inputs, env) {
        edited.replace_in_values(placeholder, &value);
    }
    // The charts render a PersistentVolume source per cloud block present: with the iSCSI one
    // groundwork sets, an operator's `aws`/`azure`/`openstack` block would make each PV carry two
    // sources, which the API server refuses.
    for (_, chart) in CHARTS {
        for cloud in ["aws", "azure", "openstack"] {
            edited.remove(&[chart, "persistence", cloud]);
        }
    }
    let wanted: Value = serde_yaml_ng::from_str(generated).expect("groundwork's own YAML parses");
    let mut leaves = Vec::new();
    leaves_of(&wanted, &mut Vec::new(), &mut leaves);
    edited.set_all(&leaves).map_err(HandoffError::digit_edit(file.to_path_buf()))?;
    Ok(edited)
}

/// Every scalar or list of `value` with its key path; a list becomes one flow sequence.
fn leaves_of(value: &Value, path: &mut Vec<String>, out: &mut Vec<(Vec<String>, String)>) {
    match value {
        Value::Mapping(map) => {
            for (k, v) in map {
                path.push(k.as_str().unwrap_or_default().to_string());
                leaves_of(v, path, out);
                path.pop();
            }
        }
        Value::Sequence(items) => {
            let items: Vec<String> = items.iter().map(scalar_text).collect();
            out.push((path.clone(), format!("[{}]", items.join(", "))));
        }
        other => out.push((path.clone(), scalar_text(other))),
    }
}

fn scalar_text(value: &Value) -> String {
    match value {
        Value::String(s) => scalar(s),
        other => serde_yaml_ng::to_string(other).map(|t| t.trim_end().to_string()).unwrap_or_default(),
    }
}

/// The charts (of `CHARTS`) that have iSCSI volumes in the plan.
pub fn charts_with_volumes(plan: Option<&VolumePlan>) -> Vec<&'static str> {
    let charts = plan.map(iscsi_charts).unwrap_or_default();
    CHARTS.iter().filter(|(_, chart)| charts.contains_key(*chart)).map(|(_, chart)| *chart).collect()
}

fn iscsi_charts(plan: &VolumePlan) -> BTreeMap<String, Chart> {
    let mut charts = BTreeMap::new();
    for (component, chart) in CHARTS {
        let mut volumes: Vec<&PlannedVolume> = plan.iscsi().filter(|v| v.component == component).collect();
        volumes.sort_by_key(|v| v.index);
        let mut portal = None;
        let mut iqns = Vec::new();
        let size = volumes.iter().map(|v| v.size).max();
        for v in volumes {
            if let VolumeAccess::Iscsi { iqn, portal: p, .. } = &v.access {
                portal.get_or_insert_with(|| p.clone());
                iqns.push(iqn.clone());
            }
        }
        if let Some(target_portal) = portal {
            let data_dir_size = size.map(|s| super::kubernetes::quantity(s).0).unwrap_or_default();
            let replicas = iqns.len();
            let persistence = Persistence { enabled: true, iscsi: Iscsi { target_portal, iqn: iqns }, data_dir_size };
            charts.insert(chart.to_string(), Chart { replicas, persistence });
        }
    }
    charts
}
