//! The handoff: the files the service deployer needs once the cluster exists, written into one
//! directory per cluster. Everything is rendered in memory first (a map from relative path to
//! bytes and mode), then each file is written atomically only when its bytes differ, so a second
//! run with the same inputs changes nothing and says so file by file.
//!
//! One module per kind of output: `kubernetes` (typed k8s-openapi objects), `digit_helmfile` and
//! `digit_deployer` (DIGIT's two configuration shapes), `gitops` (ArgoCD and Flux), `next_steps`
//! (NEXT-STEPS.md and the command `--run-deployer` runs), `sops` (encrypting the secrets files).

mod digit_config;
mod digit_deployer;
mod digit_helmfile;
mod gitops;
mod kubernetes;
pub mod next_steps;
pub mod programs;
mod sops;
mod writer;
mod yaml;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::digit::yaml_text::{EditError, YamlText};
use crate::digit::{Claim, DigitSource};
use crate::inventory::{Deployer, DigitFlow};
use crate::secrets::Secret;
use crate::storage::VolumePlan;

pub use kubernetes::DB_SECRET as DB_SECRET_NAME;
pub use next_steps::DeployScript;
pub use writer::write_all;

/// Everything the handoff files are made from; `ops::handoff` builds it from the inventory and
/// the state directory, tests build it by hand.
#[derive(Debug, Clone)]
pub struct HandoffInputs {
    pub cluster: String,
    /// Namespace of the services (and of the `db` Secret and `db-service`).
    pub namespace: String,
    /// dev, uat, prod, ...: one set of DIGIT and GitOps files each.
    pub environments: Vec<String>,
    /// The deployer NEXT-STEPS.md and `--run-deployer` use.
    pub deployer: Deployer,
    /// The storage host's volumes, when the inventory has a `storage` section.
    pub volumes: Option<VolumePlan>,
    /// CHAP credentials the iSCSI PersistentVolumes log in with.
    pub iscsi_chap: Option<Credentials>,
    pub database: Option<DatabaseFacts>,
    /// The admin kubeconfig; copied when it exists (it does once the control plane is up).
    pub kubeconfig: Option<PathBuf>,
    pub gitops: Option<GitOpsTarget>,
    pub sops: Option<SopsSettings>,
    /// The operator's DIGIT checkout and what each environment needs; without it no DIGIT
    /// environment files are written (groundwork writes only what DIGIT renders as it is).
    pub digit: Option<DigitInputs>,
    /// The site registry, when the inventory has one.
    pub registry: Option<RegistryFacts>,
}

/// The site registry as the deployer needs to know it: where it is and which names it serves.
#[derive(Debug, Clone, Serialize)]
pub struct RegistryFacts {
    /// `address:port` as the nodes reach it.
    pub address: String,
    /// Registries every node pulls through it (images keep their names: `docker.io/library/x`).
    pub mirrors: Vec<String>,
    /// The cluster CA that signed its certificate (PEM).
    #[serde(skip)]
    pub ca_pem: String,
}

/// `handoff.digit`, resolved: the checkout read, the claims of its stateful charts, and per
/// environment the site's settings and the secrets groundwork generated for it.
#[derive(Debug, Clone)]
pub struct DigitInputs {
    pub flow: DigitFlow,
    pub source: DigitSource,
    pub claims: Vec<Claim>,
    pub environments: Vec<DigitEnvironmentInputs>,
}

#[derive(Debug, Clone)]
pub struct DigitEnvironmentInputs {
    pub name: String,
    pub domain: String,
    pub tenant_id: String,
    pub cert_issuer: Option<String>,
    pub generated: GeneratedSecrets,
}

/// Secrets DIGIT needs that nobody has to choose: made once per environment and kept in the
/// state directory, so every handoff writes the same ones.
#[derive(Debug, Clone)]
pub struct GeneratedSecrets {
    pub elasticsearch_password: Secret,
    /// KRaft's cluster id: 16 random bytes, base64url without padding (22 characters).
    pub kafka_cluster_id: Secret,
    pub novu_jwt_secret: Secret,
    /// Exactly 32 characters, as Novu requires.
    pub novu_store_encryption_key: Secret,
    pub novu_secret_key: Secret,
}

/// A `<placeholder>` of DIGIT's left in a written file: the site still has to fill it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct PlaceholderLeft {
    /// Relative to the output directory.
    pub file: PathBuf,
    pub line: usize,
    pub text: String,
}

/// A user name and its password.
#[derive(Debug, Clone)]
pub struct Credentials {
    pub user: String,
    pub password: Secret,
}

/// The PostgreSQL host and the two roles DIGIT uses: the application role for queries, the
/// database owner for Flyway's migrations (they create and alter tables).
#[derive(Debug, Clone)]
pub struct DatabaseFacts {
    /// Address of the database host as the nodes see it.
    pub address: String,
    pub port: u16,
    pub database: String,
    pub owner: Credentials,
    pub app: Credentials,
}

/// Where a GitOps controller finds the chart and the values files.
#[derive(Debug, Clone)]
pub struct GitOpsTarget {
    pub repository: String,
    pub path: String,
    pub revision: String,
}

#[derive(Debug, Clone)]
pub struct SopsSettings {
    pub age_recipient: String,
    /// The `sops` program (a bare name is looked up on PATH).
    pub program: PathBuf,
    /// Where fingerprints of the encrypted files' plain text are kept (the state directory):
    /// sops encrypts with fresh randomness, so only the plain text tells whether a file changed.
    pub memo_dir: Option<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
pub enum HandoffError {
    #[error("cannot read the admin kubeconfig {}: {source}", path.display())]
    Kubeconfig { path: PathBuf, source: std::io::Error },
    #[error("cannot write {}: {source}", path.display())]
    Write { path: PathBuf, source: std::io::Error },
    #[error("cannot write {what} as YAML: {message}")]
    Serialize { what: String, message: String },
    #[error("sops could not encrypt {}: {message}", path.display())]
    Sops { path: PathBuf, message: String },
    #[error(
        "handoff.environments: `{0}` is not an environment name; use lower-case letters, digits and `-` (e.g. dev, uat, prod)"
    )]
    BadEnvironment(String),
    #[error("handoff.environments is empty; name at least one environment, e.g. `environments: [dev]`")]
    NoEnvironment,
    #[error("cannot fill in DIGIT's {}: {message}", file.display())]
    DigitEdit { file: PathBuf, message: String },
    #[error(
        "DIGIT's Go-deployer charts mount LUN 0 of each IQN (lun: 0 is written in their persistent-volume templates), but tgt serves the first disk at LUN 1; set storage.iscsi.target: lio (LUN 0), or change the charts' lun"
    )]
    DeployerLun,
}

/// Whether a file was (re)written or already had the wanted bytes and mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum FileStatus {
    Written,
    Unchanged,
}

#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct WrittenFile {
    /// Relative to the output directory.
    pub path: PathBuf,
    pub status: FileStatus,
    /// Permission bits, e.g. 0o600.
    pub mode: u32,
    /// Holds secrets (mode 0600; encrypted when sops is configured and installed).
    pub secret: bool,
    pub encrypted: bool,
}

/// What `write_all` did: every file, and what the operator should know (kubeconfig not there
/// yet, secrets left unencrypted, ...).
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct HandoffOutcome {
    pub directory: PathBuf,
    pub files: Vec<WrittenFile>,
    pub notes: Vec<String>,
    /// The command `--run-deployer` runs (also in NEXT-STEPS.md).
    pub deploy: DeployScript,
    /// DIGIT's placeholders the site still has to fill (`--strict` fails while any remain).
    pub placeholders: Vec<PlaceholderLeft>,
}

impl HandoffOutcome {
    pub fn next_steps(&self) -> PathBuf {
        self.directory.join(NEXT_STEPS)
    }
    pub fn changed(&self) -> usize {
        self.files.iter().filter(|f| f.status == FileStatus::Written).count()
    }
}

pub const NEXT_STEPS: &str = "NEXT-STEPS.md";
pub const KUBECONFIG: &str = "kubeconfig";
pub const REGISTRY: &str = "registry.yaml";
pub const REGISTRY_CA: &str = "registry-ca.crt";

/// How a rendered file is to be written.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Content {
    Plain,
    /// Secret values: mode 0600, and encrypted with sops for the keys matching this regex when
    /// sops is configured and installed.
    Secret {
        encrypted_regex: &'static str,
    },
    /// The kubeconfig: mode 0600, never encrypted (kubectl reads it as it is).
    Private,
}

#[derive(Debug, Clone)]
struct RenderedFile {
    bytes: Vec<u8>,
    content: Content,
}

impl RenderedFile {
    fn mode(&self) -> u32 {
        match self.content {
            Content::Plain => 0o644,
            Content::Secret { .. } | Content::Private => 0o600,
        }
    }
}

/// Everything to write, by path relative to the output directory.
#[derive(Debug, Default)]
struct Rendered {
    files: BTreeMap<PathBuf, RenderedFile>,
    notes: Vec<String>,
    placeholders: Vec<PlaceholderLeft>,
}

impl Rendered {
    fn add(&mut self, path: impl Into<PathBuf>, bytes: impl Into<Vec<u8>>, content: Content) {
        self.files.insert(path.into(), RenderedFile { bytes: bytes.into(), content });
    }

    /// A DIGIT environment file, with the placeholders left in it recorded for NEXT-STEPS.md
    /// and `--strict`.
    fn add_digit_file(&mut self, path: PathBuf, file: &YamlText, content: Content) {
        self.placeholders.extend(file.placeholders().into_iter().map(|p| PlaceholderLeft {
            file: path.clone(),
            line: p.line,
            text: p.text,
        }));
        self.add(path, file.text(), content);
    }
}

impl HandoffError {
    /// An edit of the operator's DIGIT file `file` that could not be made.
    fn digit_edit(file: PathBuf) -> impl FnOnce(EditError) -> HandoffError {
        move |e| HandoffError::DigitEdit { file, message: e.to_string() }
    }
}

/// Keys of DIGIT's secrets files that sops encrypts (the whole `secrets` subtree), and of a
/// Kubernetes Secret manifest.
const DIGIT_SECRETS_REGEX: &str = "^(secrets)$";
const MANIFEST_SECRETS_REGEX: &str = "^(data|stringData)$";

/// Renders every file for `inputs`; `encrypting` tells NEXT-STEPS.md whether the secrets files
/// will be sops-encrypted.
fn render(inputs: &HandoffInputs, encrypting: bool) -> Result<Rendered, HandoffError> {
    check_environments(&inputs.environments)?;
    let mut out = Rendered::default();
    copy_kubeconfig(inputs, &mut out)?;
    kubernetes::render(inputs, &mut out)?;
    match &inputs.digit {
        Some(digit) if digit.flow == DigitFlow::Helmfile => digit_helmfile::render(inputs, digit, &mut out)?,
        Some(digit) => digit_deployer::render(inputs, digit, &mut out)?,
        None => out.notes.push(
            "no handoff.digit: no DIGIT environment files are written; set handoff.digit.source to your checkout of DIGIT's deploy-as-code"
                .into(),
        ),
    }
    gitops::render(inputs, &mut out)?;
    if let Some(r) = &inputs.registry {
        let about = "# The site registry (written by groundwork handoff). Every node pulls the mirrors' images\n\
                     # through it under their own names; load images with `groundwork images push --from DIR`.\n";
        let body = serde_yaml_ng::to_string(r)
            .map_err(|e| HandoffError::Serialize { what: REGISTRY.into(), message: e.to_string() })?;
        out.add(REGISTRY, format!("{about}{body}"), Content::Plain);
        out.add(REGISTRY_CA, r.ca_pem.clone(), Content::Plain);
    }
    if let Some(sops) = &inputs.sops {
        out.add(".sops.yaml", sops::creation_rules(&sops.age_recipient)?, Content::Plain);
    }
    if inputs.database.is_none() {
        out.notes.push(
            "no `database` section: the DIGIT files have no db-* keys and no db Secret is written; \
             DIGIT needs a PostgreSQL database"
                .into(),
        );
    }
    let files: Vec<(PathBuf, bool)> =
        out.files.iter().map(|(p, f)| (p.clone(), matches!(f.content, Content::Secret { .. }))).collect();
    out.add(NEXT_STEPS, next_steps::render(inputs, &files, &out.placeholders, encrypting), Content::Plain);
    Ok(out)
}

fn check_environments(environments: &[String]) -> Result<(), HandoffError> {
    if environments.is_empty() {
        return Err(HandoffError::NoEnvironment);
    }
    for env in environments {
        let label = !env.is_empty()
            && env.len() <= 63
            && env.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            && !env.starts_with('-')
            && !env.ends_with('-');
        if !label {
            return Err(HandoffError::BadEnvironment(env.clone()));
        }
    }
    Ok(())
}

fn copy_kubeconfig(inputs: &HandoffInputs, out: &mut Rendered) -> Result<(), HandoffError> {
    let Some(path) = &inputs.kubeconfig else {
        out.notes.push("no admin kubeconfig: the cluster does not exist yet (run `groundwork apply`)".into());
        return Ok(());
    };
    match std::fs::read(path) {
        Ok(bytes) => {
            out.add(KUBECONFIG, bytes, Content::Private);
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            out.notes.push(format!(
                "no admin kubeconfig at {}: the cluster does not exist yet (run `groundwork apply`); skipped",
                path.display()
            ));
            Ok(())
        }
        Err(source) => Err(HandoffError::Kubeconfig { path: path.clone(), source }),
    }
}

/// The one file name per environment that DIGIT's Go deployer reads.
fn deployer_file(env: &str, secrets: bool) -> PathBuf {
    let name = if secrets { format!("{env}-secrets.yaml") } else { format!("{env}.yaml") };
    Path::new("digit/deployer").join(name)
}

fn helmfile_dir(env: &str) -> PathBuf {
    Path::new("digit/helmfile").join(env)
}

#[cfg(test)]
mod tests;
