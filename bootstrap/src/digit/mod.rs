//! The operator's DIGIT deployment source (a checkout of DIGIT's `deploy-as-code`), read for the
//! handoff: its environment files, its helmfile releases and the volume claims its stateful
//! charts will make. Nothing here writes; `handoff` turns it into files.

pub mod claims;
pub mod helmfile;
pub mod yaml_text;

use std::path::{Path, PathBuf};

use serde_yaml_ng::Value;

pub use claims::Claim;

/// DIGIT's top helmfile, in `deploy-as-code/`.
pub const TOP_HELMFILE: &str = "digit-helmfile.yaml";
/// DIGIT's environment files, relative to `deploy-as-code/`.
pub const ENV_VALUES: &str = "charts/environments/env.yaml";
pub const ENV_SECRETS: &str = "charts/environments/env-secrets.yaml";

#[derive(Debug, thiserror::Error)]
pub enum DigitError {
    #[error(
        "{}: no DIGIT deployment here (looked for {TOP_HELMFILE} in it and in devops/deploy-as-code/, and for the Go deployer's helm/environments/); point handoff.digit.source at your checkout of DIGIT's deploy-as-code",
        path.display()
    )]
    NotFound { path: PathBuf },
    #[error("cannot read {}: {source}", path.display())]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{}: not YAML groundwork can read: {message}", path.display())]
    Parse { path: PathBuf, message: String },
}

/// The `helm/environments` directory of a DIGIT-DevOps (digit-lts) checkout at `path` (the
/// repository or its `deploy-as-code`), where the Go deployer reads `<env>.yaml`.
pub fn deployer_environments(path: &Path) -> Result<PathBuf, DigitError> {
    [path.join("deploy-as-code/helm/environments"), path.join("helm/environments")]
        .into_iter()
        .find(|p| p.is_dir())
        .ok_or_else(|| DigitError::NotFound { path: path.to_path_buf() })
}

/// A DIGIT checkout, as found on disk.
#[derive(Debug, Clone)]
pub struct DigitSource {
    /// The `deploy-as-code` directory (holds `digit-helmfile.yaml`).
    pub root: PathBuf,
    pub env_text: String,
    pub secrets_text: String,
}

impl DigitSource {
    /// Opens `path`: the deploy-as-code directory itself or a repository holding
    /// `devops/deploy-as-code`.
    pub fn open(path: &Path) -> Result<DigitSource, DigitError> {
        let root = [path.to_path_buf(), path.join("devops/deploy-as-code")]
            .into_iter()
            .find(|p| p.join(TOP_HELMFILE).is_file())
            .ok_or_else(|| DigitError::NotFound { path: path.to_path_buf() })?;
        // Absolute and without `..`: NEXT-STEPS.md's commands name it, from any directory.
        let root = std::fs::canonicalize(&root).map_err(|source| DigitError::Read { path: root.clone(), source })?;
        let read = |rel: &str| {
            let file = root.join(rel);
            std::fs::read_to_string(&file).map_err(|source| DigitError::Read { path: file, source })
        };
        Ok(DigitSource { env_text: read(ENV_VALUES)?, secrets_text: read(ENV_SECRETS)?, root })
    }

    /// env-secrets.yaml, then env.yaml merged over it (the order of DIGIT's helmfiles).
    pub fn environment_values(&self) -> Result<Value, DigitError> {
        let parse = |text: &str, rel: &str| {
            serde_yaml_ng::from_str::<Value>(text)
                .map_err(|e| DigitError::Parse { path: self.root.join(rel), message: e.to_string() })
        };
        let mut values = parse(&self.secrets_text, ENV_SECRETS)?;
        claims::merge(&mut values, &parse(&self.env_text, ENV_VALUES)?);
        Ok(values)
    }

    pub fn releases(&self) -> Result<Vec<helmfile::Release>, DigitError> {
        helmfile::releases(&self.root)
    }

    /// The claims of the installed stateful releases, with the operator's values.
    pub fn claims(&self) -> Result<Vec<Claim>, DigitError> {
        claims::claims(&self.releases()?, &self.environment_values()?)
    }
}
