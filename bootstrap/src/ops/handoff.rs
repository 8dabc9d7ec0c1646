//! `handoff`: gather what the deployer needs from the inventory and the state directory (volume
//! plan, database roles and their passwords, the admin kubeconfig) and write the handoff files
//! into `<inventory dir>/<handoff.directory>/<cluster name>/`; optionally run the deployer.

use std::path::PathBuf;
use std::process::Command;

use crate::database::{
    self,
    roles::{LoginRole, RoleError, RoleKind, login_roles},
};
use crate::digit::DigitSource;
use crate::handoff::{
    self, Credentials, DatabaseFacts, DigitEnvironmentInputs, DigitInputs, GeneratedSecrets, GitOpsTarget,
    HandoffError, HandoffInputs, HandoffOutcome, RegistryFacts, SopsSettings, programs,
};
use crate::inventory::{DatabaseAccess, DigitEnvironment, DigitFlow, LoadedInventory};
use crate::secrets::{self, SecretError};
use crate::state::StateDir;
use crate::state::secrets_store::{self, Generated};
use crate::storage::VolumePlan;

#[derive(Debug, thiserror::Error)]
pub enum HandoffOpError {
    #[error(transparent)]
    Write(#[from] HandoffError),
    #[error("{0}; fix it in the inventory or the environment and run `groundwork handoff` again")]
    Secret(#[from] SecretError),
    #[error(transparent)]
    Roles(#[from] RoleError),
    #[error(transparent)]
    Lock(#[from] crate::state::LockError),
    #[error("cannot create the state directory {}: {source}", path.display())]
    State { path: PathBuf, source: std::io::Error },
    #[error(
        "handoff.sops.ageRecipient: `{0}` is not an age public key; it starts with `age1` (see `age-keygen -y KEYFILE`)"
    )]
    BadAgeRecipient(String),
    #[error("handoff.digit.source: {0}")]
    Digit(#[from] crate::digit::DigitError),
    #[error("cannot keep a secret generated for DIGIT: {0}")]
    Generated(#[from] crate::state::secrets_store::SecretStoreError),
}

/// The handoff directory of the inventory's cluster.
pub fn output_dir(loaded: &LoadedInventory) -> PathBuf {
    let inv = &loaded.inventory;
    loaded.resolve(&inv.handoff.directory).join(&inv.cluster.name)
}

fn state_dir(loaded: &LoadedInventory) -> StateDir {
    StateDir::for_cluster(&loaded.base_dir, &loaded.inventory.cluster.name)
}

/// `groundwork handoff`: the handoff files, written while holding the controller's cluster lock
/// (apply's last phase writes them under apply's own lock). The lock file is enough here: these
/// files live on the controller, next to the state, and nothing on the cluster changes.
pub fn handoff_locked(loaded: &LoadedInventory) -> Result<HandoffOutcome, HandoffOpError> {
    let state = state_dir(loaded);
    state.create().map_err(|source| HandoffOpError::State { path: state.root().to_path_buf(), source })?;
    let _lock = crate::state::ClusterLock::acquire(&state.lock_file(), "groundwork handoff")?;
    handoff(loaded)
}

/// Writes every handoff file for the inventory's cluster (what `groundwork handoff` and the last
/// phase of `apply` do). Unchanged files are left alone; the outcome lists each file.
pub fn handoff(loaded: &LoadedInventory) -> Result<HandoffOutcome, HandoffOpError> {
    let (inputs, notes) = inputs(loaded)?;
    let mut outcome = handoff::write_all(&inputs, &output_dir(loaded))?;
    outcome.notes.extend(notes);
    for f in &outcome.files {
        tracing::debug!(file = %f.path.display(), status = ?f.status, "handoff file");
    }
    Ok(outcome)
}

/// The handoff's inputs, and notes on what the inventory leaves out.
pub fn inputs(loaded: &LoadedInventory) -> Result<(HandoffInputs, Vec<String>), HandoffOpError> {
    let inv = &loaded.inventory;
    let state = state_dir(loaded);
    let mut notes = Vec::new();
    let sops = match &inv.handoff.sops {
        Some(s) if !s.age_recipient.starts_with("age1") => {
            return Err(HandoffOpError::BadAgeRecipient(s.age_recipient.clone()));
        }
        Some(s) => Some(SopsSettings {
            age_recipient: s.age_recipient.clone(),
            program: "sops".into(),
            memo_dir: Some(state.root().join("handoff-sops")),
        }),
        None => None,
    };
    let iscsi_chap = match inv.storage.as_ref().and_then(|s| s.iscsi.chap.as_ref()) {
        Some(chap) => Some(Credentials {
            user: chap.user.clone(),
            password: secrets::resolve(&chap.password, &loaded.base_dir, "storage.iscsi.chap.password")?,
        }),
        None => None,
    };
    let inputs = HandoffInputs {
        cluster: inv.cluster.name.clone(),
        namespace: inv.handoff.namespace.clone(),
        environments: inv.handoff.environment_names(),
        deployer: inv.handoff.deployer,
        volumes: VolumePlan::of(inv),
        iscsi_chap,
        database: database_facts(loaded, &state, &mut notes)?,
        kubeconfig: Some(state.kubeconfig_file()),
        gitops: inv.handoff.gitops.as_ref().map(|g| GitOpsTarget {
            repository: g.repository.clone(),
            path: g.path.clone(),
            revision: g.revision.clone(),
        }),
        sops,
        digit: digit_inputs(loaded, &state)?,
        registry: registry_facts(loaded, &state),
    };
    Ok((inputs, notes))
}

/// The site registry, once the cluster CA exists (`apply` makes it before the registry).
fn registry_facts(loaded: &LoadedInventory, state: &StateDir) -> Option<RegistryFacts> {
    let (host, settings) = crate::registry::site(&loaded.inventory)?;
    let ca_pem = std::fs::read_to_string(state.pki_dir().join("ca.crt")).ok()?;
    Some(RegistryFacts { address: crate::registry::address(host, settings), mirrors: settings.mirrors.clone(), ca_pem })
}

/// `handoff.digit` resolved: the checkout read again (the inventory's claims came from the same
/// files), each environment's settings, and its generated secrets from the state directory.
fn digit_inputs(loaded: &LoadedInventory, state: &StateDir) -> Result<Option<DigitInputs>, HandoffOpError> {
    let inv = &loaded.inventory;
    let Some(digit) = &inv.handoff.digit else { return Ok(None) };
    let path = loaded.resolve(&digit.source);
    let source = match digit.flow {
        DigitFlow::Helmfile => DigitSource::open(&path)?,
        DigitFlow::Deployer => DigitSource { root: path, env_text: String::new(), secrets_text: String::new() },
    };
    let claims = inv.storage.as_ref().map(|s| s.digit_claims.clone()).unwrap_or_default();
    let settings: Vec<DigitEnvironment> = if digit.environments.is_empty() {
        inv.handoff
            .environments
            .iter()
            .map(|name| DigitEnvironment {
                name: name.clone(),
                domain: inv.handoff.domain_or_default(&inv.cluster.name),
                tenant_id: "pg".into(),
                cert_issuer: None,
            })
            .collect()
    } else {
        digit.environments.clone()
    };
    state.create().map_err(|source| HandoffOpError::State { path: state.root().to_path_buf(), source })?;
    let mut environments = Vec::new();
    for env in settings {
        let secret = |what: &str, kind| secrets_store::generated(state, &format!("digit-{}-{what}", env.name), kind);
        let generated = GeneratedSecrets {
            elasticsearch_password: secret("elasticsearch-password", Generated::Password)?,
            kafka_cluster_id: secret("kafka-cluster-id", Generated::KafkaClusterId)?,
            novu_jwt_secret: secret("novu-jwt-secret", Generated::Password)?,
            novu_store_encryption_key: secret("novu-store-encryption-key", Generated::Password)?,
            novu_secret_key: secret("novu-secret-key", Generated::Password)?,
        };
        environments.push(DigitEnvironmentInputs {
            name: env.name,
            domain: env.domain,
            tenant_id: env.tenant_id,
            cert_issuer: env.cert_issuer,
            generated,
        });
    }
    Ok(Some(DigitInputs { flow: digit.flow, source, claims, environments }))
}

/// The first database of the inventory, its owner (Flyway's role) and the first read-write user
/// of it (the services' role; the owner when there is none), with the passwords the database
/// phase gives them (`database::roles`).
fn database_facts(
    loaded: &LoadedInventory,
    state: &StateDir,
    notes: &mut Vec<String>,
) -> Result<Option<DatabaseFacts>, HandoffOpError> {
    let inv = &loaded.inventory;
    let Some((host, db)) = database::host(inv) else { return Ok(None) };
    let Some(spec) = db.databases.first() else {
        notes.push("database.databases is empty: DIGIT's files name no database; add one, e.g. {name: egov, owner: egov_owner}".into());
        return Ok(None);
    };
    if db.databases.len() > 1 {
        notes.push(format!("DIGIT is pointed at database `{}`, the first of database.databases", spec.name));
    }
    state.create().map_err(|source| HandoffOpError::State { path: state.root().to_path_buf(), source })?;
    let roles = login_roles(inv, &loaded.base_dir, state)?;
    let credentials = |r: &LoginRole| Credentials { user: r.name.clone(), password: r.password.clone() };
    let owner = roles
        .iter()
        .find(|r| r.name == spec.owner && r.kind == RoleKind::Owner)
        .map(credentials)
        .expect("login_roles lists every database's owner");
    let app = match roles.iter().find(|r| r.database == spec.name && r.kind == RoleKind::App(DatabaseAccess::Readwrite))
    {
        Some(r) => credentials(r),
        None => {
            notes.push(format!(
                "no read-write user of database `{}` in database.users: the services log in as its owner `{}`",
                spec.name, spec.owner
            ));
            owner.clone()
        }
    };
    Ok(Some(DatabaseFacts {
        address: host.address.clone(),
        port: db.postgresql.port,
        database: spec.name.clone(),
        owner,
        app,
    }))
}

#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    #[error("cannot run the deployer: {reason}. See {}", next_steps.display())]
    Blocked { reason: String, next_steps: PathBuf },
    #[error(
        "cannot run the deployer: the cluster does not exist yet (no kubeconfig in the handoff directory); run `groundwork apply` first"
    )]
    NoCluster,
    #[error("cannot run the deployer: {} not installed (not on PATH); install {} or run the commands in {} yourself", list(missing), if missing.len() == 1 { "it" } else { "them" }, next_steps.display())]
    MissingPrograms { missing: Vec<String>, next_steps: PathBuf },
    #[error("cannot run the deployer: set {} first (see {})", list(missing), next_steps.display())]
    MissingVariables { missing: Vec<String>, next_steps: PathBuf },
    #[error("cannot start sh: {0}")]
    Spawn(std::io::Error),
    #[error("the deployer failed ({status}); see its output above and {}", next_steps.display())]
    Failed { status: String, next_steps: PathBuf },
}

fn list(items: &[String]) -> String {
    items.iter().map(|i| format!("`{i}`")).collect::<Vec<_>>().join(", ")
}

/// Runs the commands of NEXT-STEPS.md's deploy section (`outcome.deploy`) from the handoff
/// directory, with the deployer's output going to ours; refuses with the missing program,
/// variable or cluster named before running anything.
pub fn run_deployer(outcome: &HandoffOutcome) -> Result<(), DeployError> {
    let script = &outcome.deploy;
    let next_steps = outcome.next_steps();
    if let Some(reason) = &script.blocked {
        return Err(DeployError::Blocked { reason: reason.clone(), next_steps });
    }
    if !outcome.directory.join(handoff::KUBECONFIG).exists() {
        return Err(DeployError::NoCluster);
    }
    let missing: Vec<String> =
        script.programs.iter().filter(|p| programs::find(std::path::Path::new(p)).is_none()).cloned().collect();
    if !missing.is_empty() {
        return Err(DeployError::MissingPrograms { missing, next_steps });
    }
    let missing: Vec<String> = script.variables.iter().filter(|v| std::env::var_os(v).is_none()).cloned().collect();
    if !missing.is_empty() {
        return Err(DeployError::MissingVariables { missing, next_steps });
    }
    let status = Command::new("sh")
        .arg("-c")
        .arg(script.shell())
        .current_dir(&outcome.directory)
        .status()
        .map_err(DeployError::Spawn)?;
    if status.success() { Ok(()) } else { Err(DeployError::Failed { status: status.to_string(), next_steps }) }
}
