//! `state backup` / `state restore`: the whole state directory (PKI, secrets, identity, journal,
//! admin kubeconfig) as a tar archive encrypted with age, to a passphrase (scrypt) or to X25519
//! recipients. Losing the operator's machine must not mean losing the cluster's keys.
//!
//! The archive holds `groundwork-backup.json` (format, cluster, when) and `state/<path>` for each
//! file; lock files and temporary files are left out. A restore reads and checks the whole archive
//! before it writes anything, writes it into a fresh directory beside the state (0700 directories,
//! 0600 files, synced), then renames it into place entry by entry; an existing state is refused
//! unless `force`, and then kept aside, not deleted.

use std::io::{Read, Write};
use std::path::{Component, Path, PathBuf};

use age::secrecy::SecretString;
use serde::{Deserialize, Serialize};

use super::StateDir;

const MANIFEST: &str = "groundwork-backup.json";
const FORMAT: u32 = 1;
/// A state directory is a few dozen small files; anything near this is not one.
const MAX_ARCHIVE: u64 = 64 * 1024 * 1024;
/// Decrypting a passphrase archive made on a faster machine may take longer than age's default
/// limit allows: accept up to 2^22 (a few seconds) rather than refuse the operator's own backup.
const MAX_SCRYPT_WORK: u8 = 22;

/// How a backup is encrypted.
pub enum BackupKey {
    Passphrase(SecretString),
    /// `age1...` public keys; restore with the matching identity file.
    Recipients(Vec<String>),
}

/// How a restore decrypts.
pub enum RestoreKey {
    Passphrase(SecretString),
    /// An age identity file (`AGE-SECRET-KEY-1...` lines).
    IdentityFile(PathBuf),
}

#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{} already exists: choose another name or remove it first", .0.display())]
    OutputExists(PathBuf),
    #[error("there is no state to back up in {}", .0.display())]
    NoState(PathBuf),
    #[error("`{0}` is not an age recipient (an X25519 public key starting with `age1`)")]
    BadRecipient(String),
    #[error("an empty passphrase is not accepted")]
    EmptyPassphrase,
    #[error("cannot encrypt: {0}")]
    Encrypt(String),
    #[error("cannot decrypt {}: the passphrase is wrong", .0.display())]
    WrongPassphrase(PathBuf),
    #[error("cannot decrypt {}: it was encrypted with a passphrase; restore without --identity", .0.display())]
    WantsPassphrase(PathBuf),
    #[error("cannot decrypt {}: it was encrypted to recipients; restore with --identity FILE", .0.display())]
    WantsIdentity(PathBuf),
    #[error("cannot decrypt {}: no identity in {} matches its recipients", file.display(), identities.display())]
    NoMatchingIdentity { file: PathBuf, identities: PathBuf },
    #[error("cannot read the age identity file {}: {reason}", path.display())]
    BadIdentity { path: PathBuf, reason: String },
    #[error("{} is not a groundwork state backup: {reason}", path.display())]
    NotABackup { path: PathBuf, reason: String },
    #[error("{} is the state of cluster `{found}`, not of `{want}` (the inventory's cluster.name)", path.display())]
    OtherCluster { path: PathBuf, found: String, want: String },
    #[error(
        "{} already holds a state ({what}): restoring would replace it. Back it up first \
         (`groundwork state backup`), then restore with --force (the old state is kept aside)",
        path.display()
    )]
    StateExists { path: PathBuf, what: String },
}

#[derive(Debug, Serialize, Deserialize)]
struct Manifest {
    format: u32,
    cluster: String,
    created_unix: u64,
}

/// What a backup or restore did, for the operator.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct ArchiveSummary {
    pub cluster: String,
    pub files: Vec<String>,
    pub archive: PathBuf,
    /// A restore with `force`: where the replaced state was moved.
    pub replaced_kept_in: Option<PathBuf>,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ArchiveError + '_ {
    move |source| ArchiveError::Io { path: path.to_path_buf(), source }
}

/// Files of the state directory worth keeping (relative paths, sorted): not locks, not temporaries.
fn state_files(root: &Path) -> Result<Vec<PathBuf>, ArchiveError> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), ArchiveError> {
        for entry in std::fs::read_dir(dir).map_err(io(dir))? {
            let entry = entry.map_err(io(dir))?;
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.ends_with(".lock") || name.ends_with(".tmp") || name.starts_with(".restore") {
                continue;
            }
            let kind = entry.file_type().map_err(io(&path))?;
            if kind.is_dir() {
                walk(root, &path, out)?;
            } else if kind.is_file() {
                out.push(path.strip_prefix(root).expect("under root").to_path_buf());
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    walk(root, root, &mut out)?;
    out.sort();
    Ok(out)
}

/// Writes the encrypted archive of `state` (cluster `cluster`) to `out` (0600, atomically).
pub fn backup(state: &StateDir, cluster: &str, out: &Path, key: &BackupKey) -> Result<ArchiveSummary, ArchiveError> {
    backup_with(state, cluster, out, key, None)
}

fn backup_with(
    state: &StateDir,
    cluster: &str,
    out: &Path,
    key: &BackupKey,
    scrypt_work: Option<u8>,
) -> Result<ArchiveSummary, ArchiveError> {
    let files = state_files(state.root()).map_err(|_| ArchiveError::NoState(state.root().to_path_buf()))?;
    if !files.iter().any(|f| f.starts_with("pki")) {
        return Err(ArchiveError::NoState(state.root().to_path_buf()));
    }
    if out.exists() {
        return Err(ArchiveError::OutputExists(out.to_path_buf()));
    }
    let encryptor = encryptor(key, scrypt_work)?;
    let created_unix = super::journal::now_secs();
    let mut tar = tar::Builder::new(Vec::new());
    let manifest = serde_json::to_vec_pretty(&Manifest { format: FORMAT, cluster: cluster.into(), created_unix })
        .expect("serialises");
    append(&mut tar, MANIFEST, &manifest, created_unix, out)?;
    for f in &files {
        let path = state.root().join(f);
        let content = std::fs::read(&path).map_err(io(&path))?;
        append(&mut tar, &format!("state/{}", f.display()), &content, created_unix, out)?;
    }
    let plain = tar.into_inner().map_err(io(out))?;

    let dir = out.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let mut tmp = tempfile::Builder::new().prefix(".groundwork-backup").tempfile_in(dir).map_err(io(out))?;
    // tempfile creates 0600; the archive is encrypted, but its size and name say enough.
    {
        let mut w = encryptor.wrap_output(tmp.as_file_mut()).map_err(io(out))?;
        w.write_all(&plain).map_err(io(out))?;
        w.finish().map_err(io(out))?;
    }
    tmp.as_file().sync_all().map_err(io(out))?;
    tmp.persist_noclobber(out).map_err(|e| {
        if e.error.kind() == std::io::ErrorKind::AlreadyExists {
            ArchiveError::OutputExists(out.to_path_buf())
        } else {
            ArchiveError::Io { path: out.to_path_buf(), source: e.error }
        }
    })?;
    Ok(ArchiveSummary {
        cluster: cluster.into(),
        files: files.iter().map(|f| f.display().to_string()).collect(),
        archive: out.to_path_buf(),
        replaced_kept_in: None,
    })
}

fn append(
    tar: &mut tar::Builder<Vec<u8>>,
    name: &str,
    content: &[u8],
    mtime: u64,
    out: &Path,
) -> Result<(), ArchiveError> {
    let mut header = tar::Header::new_gnu();
    header.set_size(content.len() as u64);
    header.set_mode(0o600);
    header.set_mtime(mtime);
    header.set_entry_type(tar::EntryType::Regular);
    tar.append_data(&mut header, name, content).map_err(io(out))
}

fn encryptor(key: &BackupKey, scrypt_work: Option<u8>) -> Result<age::Encryptor, ArchiveError> {
    match key {
        BackupKey::Passphrase(p) => {
            use age::secrecy::ExposeSecret;
            if p.expose_secret().is_empty() {
                return Err(ArchiveError::EmptyPassphrase);
            }
            let mut recipient = age::scrypt::Recipient::new(p.clone());
            if let Some(w) = scrypt_work {
                recipient.set_work_factor(w);
            }
            age::Encryptor::with_recipients(std::iter::once(&recipient as &dyn age::Recipient))
                .map_err(|e| ArchiveError::Encrypt(e.to_string()))
        }
        BackupKey::Recipients(list) => {
            let parsed: Vec<age::x25519::Recipient> = list
                .iter()
                .map(|r| r.trim().parse::<age::x25519::Recipient>().map_err(|_| ArchiveError::BadRecipient(r.clone())))
                .collect::<Result<_, _>>()?;
            if parsed.is_empty() {
                return Err(ArchiveError::BadRecipient(String::new()));
            }
            age::Encryptor::with_recipients(parsed.iter().map(|r| r as &dyn age::Recipient))
                .map_err(|e| ArchiveError::Encrypt(e.to_string()))
        }
    }
}

/// Whether `state` holds anything a restore would replace, and what.
pub fn existing_content(state: &StateDir) -> Option<String> {
    let found: Vec<&str> = ["pki", "secrets", "identity.json", "admin.conf"]
        .into_iter()
        .filter(|e| state.root().join(e).exists())
        .collect();
    (!found.is_empty()).then(|| found.join(", "))
}

/// Decrypts and checks `from` (the state of `cluster`), then puts it in place of `state`.
pub fn restore(
    state: &StateDir,
    cluster: &str,
    from: &Path,
    key: &RestoreKey,
    force: bool,
) -> Result<ArchiveSummary, ArchiveError> {
    let entries = read_archive(from, cluster, key)?;
    if let Some(what) = existing_content(state)
        && !force
    {
        return Err(ArchiveError::StateExists { path: state.root().to_path_buf(), what });
    }
    let root = state.root();
    state.create().map_err(io(root))?;
    let staging = root.join(format!(".restore.{}", std::process::id()));
    let result = (|| {
        write_tree(&staging, &entries)?;
        swap_in(root, &staging, force)
    })();
    let _ = std::fs::remove_dir_all(&staging);
    let replaced_kept_in = result?;
    Ok(ArchiveSummary {
        cluster: cluster.into(),
        files: entries.iter().map(|(p, _)| p.display().to_string()).collect(),
        archive: from.to_path_buf(),
        replaced_kept_in,
    })
}

/// The archive's state files (relative path, content), checked: its manifest names `cluster`,
/// every path is a plain relative path, nothing but regular files.
fn read_archive(from: &Path, cluster: &str, key: &RestoreKey) -> Result<Vec<(PathBuf, Vec<u8>)>, ArchiveError> {
    let not = |reason: &str| ArchiveError::NotABackup { path: from.to_path_buf(), reason: reason.into() };
    let file = std::fs::File::open(from).map_err(io(from))?;
    let decryptor = age::Decryptor::new(std::io::BufReader::new(file)).map_err(|_| not("not an age file"))?;
    let plain = match key {
        RestoreKey::Passphrase(p) => {
            if !decryptor.is_scrypt() {
                return Err(ArchiveError::WantsIdentity(from.to_path_buf()));
            }
            let mut identity = age::scrypt::Identity::new(p.clone());
            identity.set_max_work_factor(MAX_SCRYPT_WORK);
            decryptor
                .decrypt(std::iter::once(&identity as &dyn age::Identity))
                .map_err(|_| ArchiveError::WrongPassphrase(from.to_path_buf()))?
        }
        RestoreKey::IdentityFile(path) => {
            if decryptor.is_scrypt() {
                return Err(ArchiveError::WantsPassphrase(from.to_path_buf()));
            }
            let bad = |reason: String| ArchiveError::BadIdentity { path: path.clone(), reason };
            let identities = age::IdentityFile::from_file(path.display().to_string())
                .map_err(|e| bad(e.to_string()))?
                .into_identities()
                .map_err(|e| bad(e.to_string()))?;
            decryptor.decrypt(identities.iter().map(|i| i.as_ref() as &dyn age::Identity)).map_err(|e| match e {
                age::DecryptError::NoMatchingKeys => {
                    ArchiveError::NoMatchingIdentity { file: from.to_path_buf(), identities: path.clone() }
                }
                other => not(&format!("cannot decrypt: {other}")),
            })?
        }
    };
    let mut bytes = Vec::new();
    plain.take(MAX_ARCHIVE + 1).read_to_end(&mut bytes).map_err(|e| not(&format!("cannot decrypt: {e}")))?;
    if bytes.len() as u64 > MAX_ARCHIVE {
        return Err(not("larger than any state directory"));
    }

    let mut manifest: Option<Manifest> = None;
    let mut files = Vec::new();
    let mut archive = tar::Archive::new(bytes.as_slice());
    for entry in archive.entries().map_err(|e| not(&e.to_string()))? {
        let mut entry = entry.map_err(|e| not(&e.to_string()))?;
        if entry.header().entry_type() != tar::EntryType::Regular {
            return Err(not("it holds something other than regular files"));
        }
        let path = entry.path().map_err(|e| not(&e.to_string()))?.into_owned();
        let mut content = Vec::new();
        entry.read_to_end(&mut content).map_err(|e| not(&e.to_string()))?;
        if path == Path::new(MANIFEST) {
            manifest = Some(serde_json::from_slice(&content).map_err(|_| not("its manifest is unreadable"))?);
            continue;
        }
        let relative = path.strip_prefix("state").map_err(|_| not("it holds a file outside state/"))?;
        if relative.as_os_str().is_empty() || !relative.components().all(|c| matches!(c, Component::Normal(_))) {
            return Err(not("it holds a path that is not a plain relative path"));
        }
        files.push((relative.to_path_buf(), content));
    }
    let manifest = manifest.ok_or_else(|| not("it has no manifest"))?;
    if manifest.format != FORMAT {
        return Err(not(&format!("format {} is not one this groundwork reads ({FORMAT})", manifest.format)));
    }
    if manifest.cluster != cluster {
        return Err(ArchiveError::OtherCluster {
            path: from.to_path_buf(),
            found: manifest.cluster,
            want: cluster.into(),
        });
    }
    if !files.iter().any(|(p, _)| p.starts_with("pki")) {
        return Err(not("it holds no PKI"));
    }
    Ok(files)
}

fn write_tree(staging: &Path, entries: &[(PathBuf, Vec<u8>)]) -> Result<(), ArchiveError> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    std::fs::DirBuilder::new().mode(0o700).create(staging).map_err(io(staging))?;
    for (relative, content) in entries {
        let path = staging.join(relative);
        let mut dir = staging.to_path_buf();
        for c in relative.parent().into_iter().flat_map(|p| p.components()) {
            dir.push(c);
            if !dir.is_dir() {
                std::fs::DirBuilder::new().mode(0o700).create(&dir).map_err(io(&dir))?;
            }
        }
        let mut f =
            std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&path).map_err(io(&path))?;
        f.write_all(content).map_err(io(&path))?;
        f.sync_all().map_err(io(&path))?;
    }
    Ok(())
}

/// Renames each top-level entry of `staging` into `root`; with `force`, what it replaces is
/// moved into a `.replaced-<time>` directory beside the state first (returned).
fn swap_in(root: &Path, staging: &Path, force: bool) -> Result<Option<PathBuf>, ArchiveError> {
    let mut kept: Option<PathBuf> = None;
    let name = root.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let aside = root.with_file_name(format!(".{name}.replaced-{}", super::journal::now_secs()));
    let mut entries: Vec<_> =
        std::fs::read_dir(staging).map_err(io(staging))?.collect::<Result<_, _>>().map_err(io(staging))?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let target = root.join(entry.file_name());
        if target.exists() {
            if !force && !is_cache(&entry.file_name()) {
                return Err(ArchiveError::StateExists { path: root.to_path_buf(), what: target.display().to_string() });
            }
            if kept.is_none() {
                use std::os::unix::fs::DirBuilderExt;
                std::fs::DirBuilder::new().mode(0o700).create(&aside).map_err(io(&aside))?;
                kept = Some(aside.clone());
            }
            let moved = aside.join(entry.file_name());
            std::fs::rename(&target, &moved).map_err(io(&target))?;
        }
        std::fs::rename(entry.path(), &target).map_err(io(&target))?;
    }
    std::fs::File::open(root).and_then(|d| d.sync_all()).map_err(io(root))?;
    Ok(kept)
}

/// What a refused or new apply leaves in a state directory: replaced without --force.
fn is_cache(name: &std::ffi::OsStr) -> bool {
    name == "journal.json" || name == "bundle-verified.json"
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn pass(s: &str) -> SecretString {
        SecretString::from(s.to_string())
    }

    fn a_state(dir: &Path) -> StateDir {
        let state = StateDir::for_cluster(dir, "c1");
        state.create().unwrap();
        super::super::write_atomic(&state.pki_dir().join("ca.key"), b"KEY-MATERIAL-123", 0o600).unwrap();
        super::super::write_atomic(&state.pki_dir().join("etcd/ca.crt"), b"cert", 0o644).unwrap();
        super::super::write_atomic(&state.root().join("secrets/db-x"), b"pw", 0o600).unwrap();
        std::fs::write(state.lock_file(), b"").unwrap();
        state
    }

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn a_passphrase_backup_restores_the_same_files_with_private_modes_and_leaves_locks_out() {
        let src = tempfile::tempdir().unwrap();
        let state = a_state(src.path());
        let out = src.path().join("backup.age");
        let summary = backup_with(&state, "c1", &out, &BackupKey::Passphrase(pass("correct horse")), Some(10)).unwrap();
        assert_eq!(summary.files, vec!["pki/ca.key", "pki/etcd/ca.crt", "secrets/db-x"]);
        assert_eq!(mode(&out), 0o600);
        let raw = std::fs::read(&out).unwrap();
        assert!(!raw.windows(12).any(|w| w == b"KEY-MATERIAL"), "encrypted");
        // Not overwritten.
        assert!(matches!(
            backup_with(&state, "c1", &out, &BackupKey::Passphrase(pass("x")), Some(10)),
            Err(ArchiveError::OutputExists(_))
        ));

        let dst = tempfile::tempdir().unwrap();
        let target = StateDir::for_cluster(dst.path(), "c1");
        let wrong = restore(&target, "c1", &out, &RestoreKey::Passphrase(pass("wrong")), false).unwrap_err();
        assert!(matches!(wrong, ArchiveError::WrongPassphrase(_)), "{wrong}");
        assert!(wrong.to_string().contains("passphrase is wrong"));
        assert!(!target.pki_dir().exists(), "nothing written on a wrong passphrase");
        let other = restore(
            &StateDir::for_cluster(dst.path(), "c2"),
            "c2",
            &out,
            &RestoreKey::Passphrase(pass("correct horse")),
            false,
        );
        assert!(matches!(other, Err(ArchiveError::OtherCluster { .. })));

        restore(&target, "c1", &out, &RestoreKey::Passphrase(pass("correct horse")), false).unwrap();
        assert_eq!(std::fs::read(target.pki_dir().join("ca.key")).unwrap(), b"KEY-MATERIAL-123");
        assert_eq!(std::fs::read(target.root().join("secrets/db-x")).unwrap(), b"pw");
        assert!(!target.lock_file().exists());
        assert_eq!(mode(&target.pki_dir().join("etcd/ca.crt")), 0o600);
        assert_eq!(mode(&target.pki_dir().join("etcd")), 0o700);
        assert_eq!(mode(target.root()), 0o700);
        assert!(
            std::fs::read_dir(target.root()).unwrap().all(|e| !e
                .unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with(".restore"))
        );

        // An existing state is kept unless told, and then moved aside.
        let again = restore(&target, "c1", &out, &RestoreKey::Passphrase(pass("correct horse")), false).unwrap_err();
        assert!(matches!(again, ArchiveError::StateExists { .. }), "{again}");
        let forced = restore(&target, "c1", &out, &RestoreKey::Passphrase(pass("correct horse")), true).unwrap();
        let kept = forced.replaced_kept_in.expect("old state kept");
        assert!(kept.join("pki/ca.key").exists());
    }

    #[test]
    fn a_recipient_backup_needs_its_identity() {
        let src = tempfile::tempdir().unwrap();
        let state = a_state(src.path());
        let identity = age::x25519::Identity::generate();
        let out = src.path().join("b.age");
        backup(&state, "c1", &out, &BackupKey::Recipients(vec![identity.to_public().to_string()])).unwrap();
        let dst = tempfile::tempdir().unwrap();
        let target = StateDir::for_cluster(dst.path(), "c1");
        assert!(matches!(
            restore(&target, "c1", &out, &RestoreKey::Passphrase(pass("x")), false),
            Err(ArchiveError::WantsIdentity(_))
        ));
        let other = src.path().join("other.key");
        use age::secrecy::ExposeSecret;
        std::fs::write(&other, age::x25519::Identity::generate().to_string().expose_secret()).unwrap();
        assert!(matches!(
            restore(&target, "c1", &out, &RestoreKey::IdentityFile(other), false),
            Err(ArchiveError::NoMatchingIdentity { .. })
        ));
        let mine = src.path().join("mine.key");
        std::fs::write(&mine, identity.to_string().expose_secret()).unwrap();
        restore(&target, "c1", &out, &RestoreKey::IdentityFile(mine), false).unwrap();
        assert_eq!(std::fs::read(target.pki_dir().join("ca.key")).unwrap(), b"KEY-MATERIAL-123");
        assert!(matches!(
            backup(&state, "c1", &src.path().join("c.age"), &BackupKey::Recipients(vec!["age1nope".into()])),
            Err(ArchiveError::BadRecipient(_))
        ));
    }
}
