//! DIGIT's Go deployer shape: `deploy-as-code/helm/environments/<env>.yaml` (cluster-wide
//! settings under `cluster-configs:`, and the backbone charts' iSCSI volumes) and
//! `<env>-secrets.yaml` (`cluster-configs.secrets`).

use std::collections::BTreeMap;

use serde::Serialize;

use super::digit_config::{Backbone, ConfigMapData, ConfigMaps, DbSecrets, Global, SecretsSection, egov_config};
use super::{
    Content, DIGIT_SECRETS_REGEX, DigitEnvironmentInputs, DigitInputs, HandoffError, HandoffInputs, Rendered,
    deployer_file, yaml,
};
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
    persistence: Persistence,
}

#[derive(Serialize)]
struct Persistence {
    enabled: bool,
    iscsi: Iscsi,
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
        render_environment(inputs, env, out)?;
    }
    Ok(())
}

fn render_environment(
    inputs: &HandoffInputs,
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
    let values = yaml::document("the deployer's environment file", &file)?;
    let secrets = match &inputs.database {
        Some(db) => Some(yaml::document(
            "the deployer's secrets file",
            &SecretsFile { cluster_configs: ClusterSecrets { secrets: SecretsSection { db: DbSecrets::of(db) } } },
        )?),
        None => None,
    };
    out.add(deployer_file(&env.name, false), values, Content::Plain);
    if let Some(secrets) = secrets {
        out.add(deployer_file(&env.name, true), secrets, Content::Secret { encrypted_regex: DIGIT_SECRETS_REGEX });
    }
    Ok(())
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
        for v in volumes {
            if let VolumeAccess::Iscsi { iqn, portal: p, .. } = &v.access {
                portal.get_or_insert_with(|| p.clone());
                iqns.push(iqn.clone());
            }
        }
        if let Some(target_portal) = portal {
            let persistence = Persistence { enabled: true, iscsi: Iscsi { target_portal, iqn: iqns } };
            charts.insert(chart.to_string(), Chart { persistence });
        }
    }
    charts
}
