//! What both of DIGIT's configuration shapes say the same way: the `egov-config` ConfigMap's
//! data and the `db` secrets. Only the backbone's in-cluster addresses differ between the two.

use std::collections::BTreeMap;

use serde::Serialize;

use super::kubernetes::{DB_SERVICE, DB_SERVICE_PORT};
use super::{DatabaseFacts, HandoffInputs};

/// Where DIGIT's backbone charts put Elasticsearch and Kafka.
pub struct Backbone {
    pub es_host: &'static str,
    pub es_indexer_url: &'static str,
    pub kafka_brokers: &'static str,
}

/// `configmaps.egov-config.data`: sorted keys, so the file is the same on every run.
pub fn egov_config(inputs: &HandoffInputs, domain: &str, backbone: &Backbone) -> BTreeMap<String, String> {
    let mut data = BTreeMap::from([
        ("egov-services-fqdn-name".to_string(), format!("https://{domain}/")),
        ("es-host".to_string(), backbone.es_host.to_string()),
        ("es-indexer-host".to_string(), backbone.es_indexer_url.to_string()),
        ("kafka-brokers".to_string(), backbone.kafka_brokers.to_string()),
    ]);
    if let Some(db) = &inputs.database {
        let host = db_host(&inputs.namespace);
        data.insert("db-url".into(), format!("jdbc:postgresql://{host}:{DB_SERVICE_PORT}/{}", db.database));
        data.insert("db-host".into(), host);
        data.insert("db-name".into(), db.database.clone());
    }
    data
}

/// The services reach PostgreSQL through `db-service`, so moving the database changes one
/// Endpoints object, not every environment file.
pub fn db_host(namespace: &str) -> String {
    format!("{DB_SERVICE}.{namespace}")
}

/// `secrets.db` in both shapes: the application role, and the owner for Flyway's migrations.
#[derive(Serialize)]
pub struct DbSecrets {
    pub username: String,
    pub password: String,
    #[serde(rename = "flywayUsername")]
    pub flyway_username: String,
    #[serde(rename = "flywayPassword")]
    pub flyway_password: String,
}

impl DbSecrets {
    pub fn of(db: &DatabaseFacts) -> Self {
        DbSecrets {
            username: db.app.user.clone(),
            password: db.app.password.expose().to_string(),
            flyway_username: db.owner.user.clone(),
            flyway_password: db.owner.password.expose().to_string(),
        }
    }
}

#[derive(Serialize)]
pub struct SecretsSection {
    pub db: DbSecrets,
}

#[derive(Serialize)]
pub struct Global {
    pub domain: String,
}

#[derive(Serialize)]
pub struct ConfigMaps {
    #[serde(rename = "egov-config")]
    pub egov_config: ConfigMapData,
}

#[derive(Serialize)]
pub struct ConfigMapData {
    pub data: BTreeMap<String, String>,
}
