//! DIGIT's Helmfile shape (DIGIT 2.9 LTS and later): per environment, `env.yaml` and
//! `env-secrets.yaml`, the two files `deploy-as-code/digit-helmfile.yaml` reads for its `env`
//! environment from `deploy-as-code/charts/environments/`.

use serde::Serialize;

use super::digit_config::{Backbone, ConfigMapData, ConfigMaps, DbSecrets, Global, SecretsSection, egov_config};
use super::{Content, DIGIT_SECRETS_REGEX, HandoffError, HandoffInputs, Rendered, helmfile_dir, yaml};

/// The backbone helmfile's releases, in its `backbone` namespace.
const BACKBONE: Backbone = Backbone {
    es_host: "elasticsearch-data.backbone",
    es_indexer_url: "http://elasticsearch-data.backbone:9200/",
    kafka_brokers: "kafka-kraft-controller-headless.backbone:9092",
};

pub const VALUES: &str = "env.yaml";
pub const SECRETS: &str = "env-secrets.yaml";
/// The helmfile environment both files belong to.
pub const HELMFILE_ENVIRONMENT: &str = "env";

#[derive(Serialize)]
pub struct EnvValues {
    pub global: Global,
    pub configmaps: ConfigMaps,
    /// The database runs on its own host; the backbone's in-cluster PostgreSQL stays off.
    pub postgresql: Enabled,
}

#[derive(Serialize)]
pub struct Enabled {
    pub enabled: bool,
}

/// The values of `env.yaml` (also the GitOps values files: they say the same).
pub fn values(inputs: &HandoffInputs) -> EnvValues {
    EnvValues {
        global: Global { domain: inputs.domain.clone() },
        configmaps: ConfigMaps { egov_config: ConfigMapData { data: egov_config(inputs, &BACKBONE) } },
        postgresql: Enabled { enabled: false },
    }
}

pub fn render(inputs: &HandoffInputs, out: &mut Rendered) -> Result<(), HandoffError> {
    let values = yaml::document("env.yaml", &values(inputs))?;
    let secrets = match &inputs.database {
        Some(db) => Some(yaml::document(
            "env-secrets.yaml",
            &SecretsFile { secrets: SecretsSection { db: DbSecrets::of(db) } },
        )?),
        None => None,
    };
    for env in &inputs.environments {
        out.add(helmfile_dir(env).join(VALUES), values.clone(), Content::Plain);
        if let Some(secrets) = &secrets {
            out.add(
                helmfile_dir(env).join(SECRETS),
                secrets.clone(),
                Content::Secret { encrypted_regex: DIGIT_SECRETS_REGEX },
            );
        }
    }
    Ok(())
}

#[derive(Serialize)]
struct SecretsFile {
    secrets: SecretsSection,
}
