//! Fingerprints that name a cluster: the SHA-256 of the DER of its CA certificates and of its
//! service-account public key (for a certificate, what `openssl x509 -noout -fingerprint -sha256`
//! prints). Compared between the state directory and the masters before anything is written.

use std::collections::BTreeMap;
use std::path::Path;

use sha2::{Digest, Sha256};

use super::certs::parse_pem;
use super::{PkiError, paths, store};

/// The files whose fingerprints are the cluster's identity, relative to the PKI directory (and
/// to `/etc/kubernetes/pki` on a master). All four are public.
pub const IDENTITY_FILES: [&str; 4] = [paths::CA_CRT, paths::SA_PUB, paths::FRONT_PROXY_CA_CRT, paths::ETCD_CA_CRT];

/// `sha256:<hex>` of the DER inside `pem` (a certificate, or `sa.pub`'s public key). Bytes that
/// are not such a PEM get `sha256-raw:<hex>` of the bytes themselves, which never equals a
/// readable file's fingerprint.
pub fn fingerprint(path: &str, pem: &[u8]) -> String {
    let label = if path == paths::SA_PUB { "PUBLIC KEY" } else { "CERTIFICATE" };
    match std::str::from_utf8(pem).ok().and_then(|text| parse_pem(text, label).ok()) {
        Some(der) => format!("sha256:{}", hex::encode(Sha256::digest(der))),
        None => format!("sha256-raw:{}", hex::encode(Sha256::digest(pem))),
    }
}

/// The fingerprints of the identity files present in `dir`.
pub fn of_dir(dir: &Path) -> Result<BTreeMap<String, String>, PkiError> {
    let mut found = BTreeMap::new();
    for f in IDENTITY_FILES {
        if let Some(bytes) = store::read_opt(&dir.join(f))? {
            found.insert(f.to_string(), fingerprint(f, &bytes));
        }
    }
    Ok(found)
}

/// A fingerprint shortened for messages: 16 hex digits tell clusters apart.
pub fn short(fp: &str) -> String {
    match fp.split_once(':') {
        Some((kind, hex)) => format!("{kind}:{}", &hex[..hex.len().min(16)]),
        None => fp.chars().take(23).collect(),
    }
}
