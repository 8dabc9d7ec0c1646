//! DIGIT's Helmfile flow: per environment, the operator's own `charts/environments/env.yaml` and
//! `env-secrets.yaml`, with what groundwork knows filled in and everything else kept line for
//! line (comments, order, the operator's keys). They replace DIGIT's two files for that
//! environment, so `diff` against the checkout shows exactly what groundwork set.

use super::kubernetes::DB_SERVICE_PORT;
use super::{Content, DIGIT_SECRETS_REGEX, DigitEnvironmentInputs, DigitInputs, HandoffError, HandoffInputs, Rendered};
use super::{digit_config::db_host, helmfile_dir};
use crate::digit::Claim;
use crate::digit::yaml_text::{YamlText, scalar};

pub const VALUES: &str = "env.yaml";
pub const SECRETS: &str = "env-secrets.yaml";
/// The helmfile environment DIGIT's helmfiles define (the only one).
pub const HELMFILE_ENVIRONMENT: &str = "env";

/// One value groundwork sets: the file, the key path and the value.
struct Setting {
    secrets: bool,
    path: Vec<&'static str>,
    value: String,
}

pub fn render(inputs: &HandoffInputs, digit: &DigitInputs, out: &mut Rendered) -> Result<(), HandoffError> {
    for env in &digit.environments {
        let (values, secrets) = environment_files(inputs, digit, env)?;
        let dir = helmfile_dir(&env.name);
        out.add_digit_file(dir.join(VALUES), &values, Content::Plain);
        out.add_digit_file(dir.join(SECRETS), &secrets, Content::Secret { encrypted_regex: DIGIT_SECRETS_REGEX });
    }
    Ok(())
}

/// The two files of `env`: DIGIT's own, edited (every value groundwork sets read back).
pub fn environment_files(
    inputs: &HandoffInputs,
    digit: &DigitInputs,
    env: &DigitEnvironmentInputs,
) -> Result<(YamlText, YamlText), HandoffError> {
    let source = &digit.source;
    let mut values = YamlText::parse(&source.env_text);
    let mut secrets = YamlText::parse(&source.secrets_text);
    for (placeholder, value) in substitutions(inputs, env) {
        values.replace_in_values(placeholder, &value);
        secrets.replace_in_values(placeholder, &value);
    }
    let (secret_settings, value_settings): (Vec<Setting>, Vec<Setting>) =
        settings(inputs, &digit.claims, env).into_iter().partition(|s| s.secrets);
    let edits = |settings: Vec<Setting>| -> Vec<(Vec<&'static str>, String)> {
        settings.into_iter().map(|s| (s.path, scalar(&s.value))).collect()
    };
    values
        .set_all(&edits(value_settings))
        .map_err(HandoffError::digit_edit(source.root.join(crate::digit::ENV_VALUES)))?;
    secrets
        .set_all(&edits(secret_settings))
        .map_err(HandoffError::digit_edit(source.root.join(crate::digit::ENV_SECRETS)))?;
    Ok((values, secrets))
}

/// The values groundwork owns, per file. Secrets nobody has to choose come from the state
/// (generated once per environment).
fn settings(inputs: &HandoffInputs, claims: &[Claim], env: &DigitEnvironmentInputs) -> Vec<Setting> {
    let v = |path: Vec<&'static str>, value: String| Setting { secrets: false, path, value };
    let s = |path: Vec<&'static str>, value: String| Setting { secrets: true, path, value };
    let data = |key: &'static str| vec!["configmaps", "egov-config", "data", key];
    let url = format!("https://{}/", env.domain);
    let mut out = vec![
        v(vec!["global", "domain"], env.domain.clone()),
        v(data("egov-services-fqdn-name"), url.clone()),
        v(data("egov-state-level-tenant-id"), env.tenant_id.clone()),
        v(data("state-level-tenant-id"), env.tenant_id.clone()),
        v(data("host-map"), format!("{{'{}':'{url}'}}", env.tenant_id)),
    ];
    if let Some(issuer) = &env.cert_issuer {
        out.push(v(vec!["root-ingress", "cert-issuer"], issuer.clone()));
        out.push(v(vec!["ingress-nginx", "cert-issuer"], issuer.clone()));
    }
    if let Some(db) = &inputs.database {
        let host = db_host(&inputs.namespace);
        out.push(v(data("db-host"), host.clone()));
        out.push(v(data("db-name"), db.database.clone()));
        out.push(v(data("db-url"), format!("jdbc:postgresql://{host}:{DB_SERVICE_PORT}/{}", db.database)));
        out.push(v(data("db-otel-url"), format!("jdbc:otel:postgresql://{host}:{DB_SERVICE_PORT}/{}", db.database)));
        out.push(s(vec!["secrets", "db", "username"], db.app.user.clone()));
        out.push(s(vec!["secrets", "db", "password"], db.app.password.expose().to_string()));
        out.push(s(vec!["secrets", "db", "flywayUsername"], db.owner.user.clone()));
        out.push(s(vec!["secrets", "db", "flywayPassword"], db.owner.password.expose().to_string()));
    }
    for (key, value) in backbone_endpoints(claims) {
        out.push(v(data(key), value));
    }
    let g = &env.generated;
    out.push(s(vec!["secrets", "elasticsearch", "password"], g.elasticsearch_password.expose().to_string()));
    out.push(s(vec!["secrets", "kafka", "clusterID"], g.kafka_cluster_id.expose().to_string()));
    out.push(s(vec!["secrets", "novu", "jwtSecret"], g.novu_jwt_secret.expose().to_string()));
    out.push(s(vec!["secrets", "novu", "storeEncryptionKey"], g.novu_store_encryption_key.expose().to_string()));
    out.push(s(vec!["secrets", "novu", "novuSecretKey"], g.novu_secret_key.expose().to_string()));
    out
}

/// Kafka's brokers and Elasticsearch's data nodes as DIGIT's charts serve them: the headless
/// Service of the Kafka controllers and the Service named after the data StatefulSet (HTTPS:
/// DIGIT's Elasticsearch 8 has TLS on). Taken from the claims, which name both StatefulSets.
fn backbone_endpoints(claims: &[Claim]) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    let statefulset = |claim: &Claim, template: &str| {
        claim
            .name
            .strip_prefix(&format!("{template}-"))
            .and_then(|rest| rest.rsplit_once('-'))
            .map(|(s, _)| s.to_string())
    };
    if let Some(c) = claims.iter().find(|c| c.component == "kafka")
        && let Some(sts) = statefulset(c, "data")
    {
        out.push(("kafka-brokers", format!("{sts}-headless.{}:9092", c.namespace)));
    }
    if let Some(c) = claims.iter().find(|c| c.component == "es-data")
        && let Some(sts) = statefulset(c, "es-storage")
    {
        out.push(("es-host", format!("{sts}.{}", c.namespace)));
        out.push(("es-indexer-host", format!("https://{sts}.{}:9200/", c.namespace)));
    }
    out
}

/// DIGIT's `<placeholders>` groundwork can fill, wherever they appear (strings that combine
/// them, such as the CORS origin, included).
pub fn substitutions(inputs: &HandoffInputs, env: &DigitEnvironmentInputs) -> Vec<(&'static str, String)> {
    let mut out = vec![("<domain_name>", env.domain.clone()), ("<tenant_id>", env.tenant_id.clone())];
    if let Some(db) = &inputs.database {
        let host = db_host(&inputs.namespace);
        out.push(("<db_host_name>", format!("{host}:{DB_SERVICE_PORT}")));
        out.push(("<db_host>", host));
        out.push(("<db_name>", db.database.clone()));
        out.push(("<db_username>", db.app.user.clone()));
    }
    out
}
