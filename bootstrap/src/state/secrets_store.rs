//! Passwords groundwork generates itself (database roles whose inventory entry names none):
//! made once from the operating system's CSPRNG, kept in `<state dir>/secrets/` with mode 0600,
//! and read back on every later run so the database and the handoff files keep agreeing.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use base64::Engine;
use ring::rand::{SecureRandom, SystemRandom};

use super::StateDir;
use crate::inventory::values::SecretRef;
use crate::secrets::{self, Secret, SecretError};

/// 24 random bytes are 32 URL-safe base64 characters: no quoting trouble in YAML, JDBC or shells.
const PASSWORD_BYTES: usize = 24;

#[derive(Debug, thiserror::Error)]
pub enum SecretStoreError {
    #[error("database role name `{0}` cannot name a password file; use letters, digits, `_` and `-`")]
    BadRole(String),
    #[error("cannot keep a generated password in {}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
    #[error("the system random number generator failed")]
    Random,
    #[error(transparent)]
    Read(#[from] SecretError),
}

/// The password of database role `role`: the one kept in the state directory, or a new one
/// generated and kept there now.
pub fn db_password(state: &StateDir, role: &str) -> Result<Secret, SecretStoreError> {
    let (dir, file) = db_file(state, role)?;
    if !file.exists() {
        create_once(&dir, &file, &generate()?)?;
    }
    // The file path is already complete: an empty base keeps a relative state directory relative.
    Ok(secrets::resolve(&SecretRef::File(file), Path::new(""), &format!("password of database role {role}"))?)
}

/// Keeps `password` (taken from the running cluster by `state adopt`) as role `role`'s, unless the
/// state already holds one; says whether it did.
pub fn keep_db_password(state: &StateDir, role: &str, password: &str) -> Result<bool, SecretStoreError> {
    let (dir, file) = db_file(state, role)?;
    if file.exists() {
        return Ok(false);
    }
    create_once(&dir, &file, password)?;
    Ok(true)
}

fn db_file(state: &StateDir, role: &str) -> Result<(PathBuf, PathBuf), SecretStoreError> {
    if role.is_empty() || !role.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
        return Err(SecretStoreError::BadRole(role.to_string()));
    }
    let dir = state.root().join("secrets");
    let file = dir.join(format!("db-{role}"));
    Ok((dir, file))
}

/// Writes a new password to a temporary file and links it into place; linking fails when the
/// file exists, so two concurrent runs agree on the first password and neither sees half a file.
fn create_once(dir: &Path, file: &Path, password: &str) -> Result<(), SecretStoreError> {
    let io = |source| SecretStoreError::Io { path: file.to_path_buf(), source };
    std::fs::create_dir_all(dir).map_err(io)?;
    super::set_mode(dir, 0o700).map_err(io)?;
    let tmp =
        dir.join(format!(".{}.{}.tmp", file.file_name().and_then(|n| n.to_str()).unwrap_or("db"), std::process::id()));
    {
        let mut f =
            std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&tmp).map_err(io)?;
        f.write_all(password.as_bytes()).map_err(io)?;
        f.write_all(b"\n").map_err(io)?;
        f.sync_all().map_err(io)?;
    }
    let linked = std::fs::hard_link(&tmp, file);
    let _ = std::fs::remove_file(&tmp);
    match linked {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(io(e)),
    }
}

fn generate() -> Result<String, SecretStoreError> {
    random_base64(PASSWORD_BYTES)
}

/// `bytes` random bytes as URL-safe base64 without padding.
fn random_base64(bytes: usize) -> Result<String, SecretStoreError> {
    let mut buf = vec![0u8; bytes];
    SystemRandom::new().fill(&mut buf).map_err(|_| SecretStoreError::Random)?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(buf))
}

/// What a generated secret looks like.
#[derive(Debug, Clone, Copy)]
pub enum Generated {
    /// 32 URL-safe characters.
    Password,
    /// A Kafka KRaft cluster id: 16 bytes, 22 URL-safe characters.
    KafkaClusterId,
}

/// The secret `name` (e.g. `digit-dev-elasticsearch-password`): the one kept in the state
/// directory, or a new one generated and kept there now.
pub fn generated(state: &StateDir, name: &str, kind: Generated) -> Result<Secret, SecretStoreError> {
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
        return Err(SecretStoreError::BadRole(name.to_string()));
    }
    let dir = state.root().join("secrets");
    let file = dir.join(name);
    if !file.exists() {
        let value = match kind {
            Generated::Password => generate()?,
            Generated::KafkaClusterId => random_base64(16)?,
        };
        create_once(&dir, &file, &value)?;
    }
    Ok(secrets::resolve(&SecretRef::File(file), Path::new(""), name)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn state(name: &str) -> (tempfile::TempDir, StateDir) {
        let dir = tempfile::tempdir().expect("temp dir");
        let state = StateDir::for_cluster(dir.path(), name);
        (dir, state)
    }

    #[test]
    fn a_password_is_generated_once_kept_0600_and_read_back() {
        let (_dir, state) = state("c1");
        let first = db_password(&state, "egov_app").expect("generated");
        let kafka = generated(&state, "digit-dev-kafka-cluster-id", Generated::KafkaClusterId).expect("made");
        assert_eq!(kafka.expose().len(), 22);
        let again = generated(&state, "digit-dev-kafka-cluster-id", Generated::KafkaClusterId).expect("read");
        assert_eq!(kafka.expose(), again.expose());
        assert_eq!(first.expose().len(), 32);
        assert!(first.expose().chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));
        let again = db_password(&state, "egov_app").expect("read back");
        assert_eq!(first.expose(), again.expose());
        let file = state.root().join("secrets/db-egov_app");
        assert_eq!(std::fs::metadata(&file).expect("kept").permissions().mode() & 0o777, 0o600);
        let dir_mode = std::fs::metadata(state.root().join("secrets")).expect("dir").permissions().mode();
        assert_eq!(dir_mode & 0o777, 0o700);
        assert!(!format!("{first:?} {first}").contains(first.expose()), "never printed");
    }

    #[test]
    fn roles_get_different_passwords() {
        let (_dir, state) = state("c2");
        let a = db_password(&state, "owner").expect("a");
        let b = db_password(&state, "app").expect("b");
        assert_ne!(a.expose(), b.expose());
    }

    #[test]
    fn an_adopted_password_is_kept_and_never_replaces_one() {
        let (_dir, state) = state("c4");
        assert!(keep_db_password(&state, "app", "from-the-cluster").unwrap());
        assert!(!keep_db_password(&state, "app", "another").unwrap());
        assert_eq!(db_password(&state, "app").unwrap().expose(), "from-the-cluster");
    }

    #[test]
    fn a_role_that_is_not_a_file_name_is_refused() {
        let (_dir, state) = state("c3");
        assert!(matches!(db_password(&state, "../x"), Err(SecretStoreError::BadRole(_))));
    }
}
