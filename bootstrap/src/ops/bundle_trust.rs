//! Before a run touches any host: the offline bundle the inventory names is opened, its
//! `SHA256SUMS` checked against the signature by the key the inventory pins
//! (`packages.bundleKey`), and every file hashed against those sums. A bundle that fails is
//! refused here, so nothing of it (nor anything else) reaches a node. `--allow-unsigned-bundle`
//! lets a run go on without a good signature; the report then says so. The file hashes are
//! always checked: no flag skips them.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Serialize;

use crate::bundle::signature::{self, SignatureError, TrustedKey};
use crate::bundle::{Bundle, BundleError};
use crate::inventory::LoadedInventory;

/// The memo of files already hashed, in the cluster's state directory (see
/// [`Bundle::verify_remembered`]): a re-run stats them instead of reading 700 MB.
pub const MEMO: &str = "bundle-verified.json";

#[derive(Debug, thiserror::Error)]
pub enum BundleTrustError {
    #[error(transparent)]
    Bundle(#[from] BundleError),
    #[error(transparent)]
    Signature(#[from] SignatureError),
    #[error(
        "{}:{line}: packages.bundle names {}, but packages.bundleKey is not set, so nothing proves \
         who made the bundle. Pin the public key it was signed with (`bundleKey: {{file: KEY.pub}}` \
         or the key's `RW...` line; `groundwork bundle keygen` and `groundwork bundle sign` make \
         and use one), or pass --allow-unsigned-bundle to use it unchecked (the report says so)",
        inventory.display(),
        dir.display()
    )]
    NoKey { inventory: PathBuf, line: usize, dir: PathBuf },
    #[error("{}:{line}: packages.bundleKey: {source}", inventory.display())]
    Key { inventory: PathBuf, line: usize, source: SignatureError },
}

/// What the run knows about who made the bundle, for the report.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct BundleTrust {
    pub dir: PathBuf,
    /// The signing key's id (as minisign prints it) and the signature's trusted comment, when the
    /// signature was checked and good.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signed_by: Option<signature::Signed>,
    /// Why the signature was not checked or not good, when `--allow-unsigned-bundle` let the run
    /// go on anyway.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unchecked: Option<String>,
    /// The files checked against their sums, and their size.
    pub files: usize,
    pub bytes: u64,
}

/// Opens and checks the inventory's bundle, if it names one. `record`: keep the hashes' memo
/// (not in a plan, which writes nothing).
pub fn check(
    loaded: &LoadedInventory,
    state_root: &Path,
    allow_unsigned: bool,
    record: bool,
) -> Result<Option<(Arc<Bundle>, BundleTrust)>, BundleTrustError> {
    let packages = &loaded.inventory.packages;
    let Some(dir) = packages.bundle.as_ref().map(|p| loaded.resolve(p)) else {
        return Ok(None);
    };
    let bundle = Bundle::open(&dir)?;
    let (signed_by, unchecked) = match &packages.bundle_key {
        Some(key) => {
            let key = TrustedKey::read(key, &loaded.base_dir).map_err(|source| BundleTrustError::Key {
                inventory: loaded.file.clone(),
                line: loaded.map.locate_value("packages.bundleKey").line,
                source,
            })?;
            match signature::check(&dir, &key) {
                Ok(signed) => (Some(signed), None),
                Err(e) if allow_unsigned => (None, Some(e.to_string())),
                Err(e) => return Err(e.into()),
            }
        }
        None if allow_unsigned => (None, Some("the inventory pins no key (packages.bundleKey)".to_string())),
        None => {
            let line = loaded.map.locate_value("packages.bundle").line;
            return Err(BundleTrustError::NoKey { inventory: loaded.file.clone(), line, dir });
        }
    };
    let verified = bundle.verify_remembered(&state_root.join(MEMO), record)?;
    let trust = BundleTrust { dir, signed_by, unchecked, files: verified.files, bytes: verified.bytes };
    Ok(Some((Arc::new(bundle), trust)))
}

/// `bundle sign`: the bundle is opened and every file hashed first (a bundle whose files do not
/// match its sums is never signed), then `SHA256SUMS` is signed with the secret key in
/// `key_file`. The trusted comment names the bundle and its Kubernetes version.
pub fn sign(
    dir: &Path,
    key_file: &Path,
    password: Option<&crate::secrets::Secret>,
) -> Result<(signature::Signed, crate::bundle::Verified), BundleTrustError> {
    let bundle = Bundle::open(dir)?;
    let verified = bundle.verify()?;
    let manifest = bundle.manifest();
    let now = time::OffsetDateTime::now_utc();
    let comment = format!(
        "groundwork bundle {} (Kubernetes {}), {} files, signed {:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        manifest.name,
        manifest.kubernetes_version,
        verified.files,
        now.year(),
        u8::from(now.month()),
        now.day(),
        now.hour(),
        now.minute(),
        now.second()
    );
    Ok((signature::sign(dir, key_file, password, &comment)?, verified))
}

/// `bundle verify`: the signature by `key` and every file's sum, as `apply` checks them.
pub fn verify(dir: &Path, key: &TrustedKey) -> Result<(signature::Signed, crate::bundle::Verified), BundleTrustError> {
    let bundle = Bundle::open(dir)?;
    let signed = signature::check(dir, key)?;
    Ok((signed, bundle.verify()?))
}
