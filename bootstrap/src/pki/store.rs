//! Files of the PKI directory: read if present, written atomically with the right mode.

use std::fs::{self, OpenOptions};
use std::io::{ErrorKind, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use super::PkiError;

/// Mode of private keys and of the bootstrap token.
pub const KEY_MODE: u32 = 0o600;
/// Mode of certificates and public keys.
pub const CERT_MODE: u32 = 0o644;
/// Mode of the PKI directory and its subdirectories.
pub const DIR_MODE: u32 = 0o700;

/// Creates `dir` (and its parents) if needed and makes it 0700.
pub fn ensure_dir(dir: &Path) -> Result<(), PkiError> {
    fs::create_dir_all(dir).map_err(|e| PkiError::io(dir, e))?;
    fs::set_permissions(dir, fs::Permissions::from_mode(DIR_MODE)).map_err(|e| PkiError::io(dir, e))
}

/// The file's bytes, or `None` if it does not exist.
pub fn read_opt(path: &Path) -> Result<Option<Vec<u8>>, PkiError> {
    match fs::read(path) {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(PkiError::io(path, e)),
    }
}

/// Like [`read_opt`], for files that must be UTF-8 text (PEM).
pub fn read_text_opt(path: &Path) -> Result<Option<String>, PkiError> {
    match read_opt(path)? {
        None => Ok(None),
        Some(b) => String::from_utf8(b).map(Some).map_err(|_| PkiError::invalid(path.display(), "not UTF-8 text")),
    }
}

/// Writes `content` to `path` through a temporary file in the same directory, created with
/// `mode` from the start (a key is never readable by others, not even empty), synced, then
/// renamed over `path`. The parent directory is created 0700 if missing.
pub fn write_atomic(path: &Path, content: &[u8], mode: u32) -> Result<(), PkiError> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let dir = path.parent().ok_or_else(|| PkiError::invalid(path.display(), "has no parent directory"))?;
    if !dir.is_dir() {
        ensure_dir(dir)?;
    }
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let tmp = dir.join(format!(".{name}.{}.{}.tmp", std::process::id(), COUNTER.fetch_add(1, Ordering::Relaxed)));
    let result = (|| {
        let mut f = OpenOptions::new().write(true).create_new(true).mode(mode).open(&tmp)?;
        // The mode given to open() is filtered by the umask: set it exactly.
        f.set_permissions(fs::Permissions::from_mode(mode))?;
        f.write_all(content)?;
        f.sync_all()?;
        fs::rename(&tmp, path)?;
        // Make the rename itself durable.
        fs::File::open(dir)?.sync_all()
    })();
    if let Err(e) = result {
        let _ = fs::remove_file(&tmp);
        return Err(PkiError::io(path, e));
    }
    Ok(())
}
