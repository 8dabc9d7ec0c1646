//! Who made the bundle: `SHA256SUMS` signed in minisign's format (Ed25519 over the BLAKE2b-512 of
//! the file, and a trusted comment under a second signature), so that an operator can check it
//! with `minisign -Vm SHA256SUMS -p KEY.pub` as well as groundwork does. `SHA256SUMS` holds every
//! file's sum and [`super::Bundle::open`] cross-checks it with `manifest.json`, so a good
//! signature over it covers every byte of the bundle once [`super::Bundle::verify`] has hashed the
//! files.
//!
//! The `minisign` crate is its format's reference implementation (by minisign's author): keys made
//! with `minisign -G` sign here, and keys made here sign with `minisign -S`.

use std::path::{Path, PathBuf};

use minisign::{KeyPair, PublicKey, PublicKeyBox, SecretKey, SecretKeyBox, SignatureBox};

use super::SUMS;
use crate::secrets::Secret;

/// The signature's file, beside `SHA256SUMS` (minisign's own default name for it).
pub const SIGNATURE: &str = "SHA256SUMS.minisig";

#[derive(Debug, thiserror::Error)]
pub enum SignatureError {
    #[error(
        "the bundle {} is not signed (it has no {SIGNATURE}), and the inventory expects a signature by \
         key {expected} (packages.bundleKey). Sign it where it was built (`groundwork bundle sign \
         --key FILE`), or pass --allow-unsigned-bundle to use it unchecked (the report says so)",
        dir.display()
    )]
    Missing { dir: PathBuf, expected: String },
    #[error(
        "{}: signed by key {found}, but the inventory trusts key {expected} (packages.bundleKey): this \
         is not a bundle the site trusts. Use the bundle signed with the site's key, or pin the key \
         that signed this one if it is yours",
        path.display()
    )]
    OtherKey { path: PathBuf, found: String, expected: String },
    #[error(
        "{}: the signature by key {key} does not match {SUMS}: the bundle was changed after it was \
         signed. Do not use it: copy it again from the operator's media",
        path.display()
    )]
    Invalid { path: PathBuf, key: String },
    #[error("{}: not a minisign signature ({reason}); sign the bundle again", path.display())]
    Malformed { path: PathBuf, reason: String },
    #[error("`{text}` is not a minisign public key ({reason}): give the key's second line, `RW...`")]
    PublicKey { text: String, reason: String },
    #[error("{}: {reason}", path.display())]
    SecretKey { path: PathBuf, reason: String },
    #[error("cannot read {}: {source}", path.display())]
    Read { path: PathBuf, source: std::io::Error },
    #[error("cannot write {}: {source}", path.display())]
    Write { path: PathBuf, source: std::io::Error },
}

/// A public key the site trusts, and its id as minisign prints it (16 hex digits).
#[derive(Clone)]
pub struct TrustedKey {
    key: PublicKey,
    id: String,
}

impl std::fmt::Debug for TrustedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TrustedKey({})", self.id)
    }
}

impl TrustedKey {
    /// From minisign's base64 form (`RW...`, the second line of a `.pub` file), or a whole `.pub`
    /// file's text.
    pub fn parse(text: &str) -> Result<TrustedKey, SignatureError> {
        let line = text.lines().map(str::trim).find(|l| !l.is_empty() && !l.starts_with("untrusted comment:"));
        let bad = |reason: String| SignatureError::PublicKey { text: text.trim().to_string(), reason };
        let key =
            PublicKey::from_base64(line.ok_or_else(|| bad("it is empty".into()))?).map_err(|e| bad(e.to_string()))?;
        Ok(TrustedKey { id: key_id(key.keynum()), key })
    }

    /// The key an inventory pins (`packages.bundleKey`), read from its file if it names one.
    pub fn read(key: &crate::inventory::BundleKey, base_dir: &Path) -> Result<TrustedKey, SignatureError> {
        match key {
            crate::inventory::BundleKey::Inline(text) => TrustedKey::parse(text),
            crate::inventory::BundleKey::File { file } => {
                let path = crate::inventory::resolve_path(base_dir, file);
                let text = std::fs::read_to_string(&path).map_err(|source| SignatureError::Read { path, source })?;
                TrustedKey::parse(&text)
            }
        }
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    /// The key in minisign's base64 form, for an inventory's `packages.bundleKey`.
    pub fn to_base64(&self) -> String {
        self.key.to_base64()
    }
}

/// A good signature: by which key, with what trusted comment.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
pub struct Signed {
    pub key_id: String,
    pub trusted_comment: String,
}

/// minisign prints key ids as the 8 bytes read little-endian, in upper-case hex without leading
/// zeros (`%PRIX64`): printed the same way, an operator can compare the two by eye.
fn key_id(keynum: &[u8]) -> String {
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&keynum[..8]);
    format!("{:X}", u64::from_le_bytes(bytes))
}

/// Checks `dir/SHA256SUMS.minisig` against `dir/SHA256SUMS` with the trusted key.
pub fn check(dir: &Path, trusted: &TrustedKey) -> Result<Signed, SignatureError> {
    let path = dir.join(SIGNATURE);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(SignatureError::Missing { dir: dir.to_path_buf(), expected: trusted.id.clone() });
        }
        Err(source) => return Err(SignatureError::Read { path, source }),
    };
    let signature = SignatureBox::from_string(&text)
        .map_err(|e| SignatureError::Malformed { path: path.clone(), reason: e.to_string() })?;
    let found = key_id(signature.keynum());
    if found != trusted.id {
        return Err(SignatureError::OtherKey { path, found, expected: trusted.id.clone() });
    }
    let sums_path = dir.join(SUMS);
    let sums = std::fs::File::open(&sums_path).map_err(|source| SignatureError::Read { path: sums_path, source })?;
    // Legacy (not prehashed) signatures are refused, as minisign itself does by default.
    minisign::verify(&trusted.key, &signature, std::io::BufReader::new(sums), true, false, false)
        .map_err(|_| SignatureError::Invalid { path: path.clone(), key: found.clone() })?;
    let trusted_comment =
        signature.trusted_comment().map_err(|e| SignatureError::Malformed { path, reason: e.to_string() })?;
    Ok(Signed { key_id: found, trusted_comment })
}

/// Signs `dir/SHA256SUMS` with the secret key in `key_file` (minisign's format; `password` for an
/// encrypted key), writing `dir/SHA256SUMS.minisig`, which is checked before it is kept.
pub fn sign(
    dir: &Path,
    key_file: &Path,
    password: Option<&Secret>,
    trusted_comment: &str,
) -> Result<Signed, SignatureError> {
    let secret = read_secret_key(key_file, password)?;
    let public = public_of(&secret, key_file)?;
    let sums_path = dir.join(SUMS);
    let sums =
        std::fs::File::open(&sums_path).map_err(|source| SignatureError::Read { path: sums_path.clone(), source })?;
    let signature = minisign::sign(
        Some(&public),
        &secret,
        std::io::BufReader::new(sums),
        Some(trusted_comment),
        Some("signature of a groundwork offline bundle's SHA256SUMS"),
    )
    .map_err(|e| SignatureError::SecretKey { path: key_file.to_path_buf(), reason: e.to_string() })?;
    write_atomically(&dir.join(SIGNATURE), signature.to_string().as_bytes(), 0o644)?;
    let trusted = TrustedKey { id: key_id(public.keynum()), key: public };
    check(dir, &trusted)
}

/// The public key of the secret key in `key_file`.
pub fn public_key_of(key_file: &Path, password: Option<&Secret>) -> Result<TrustedKey, SignatureError> {
    let key = public_of(&read_secret_key(key_file, password)?, key_file)?;
    Ok(TrustedKey { id: key_id(key.keynum()), key })
}

/// The public half of the secret key read from `key_file`.
fn public_of(secret: &SecretKey, key_file: &Path) -> Result<PublicKey, SignatureError> {
    PublicKey::from_secret_key(secret)
        .map_err(|e| SignatureError::SecretKey { path: key_file.to_path_buf(), reason: e.to_string() })
}

/// The Ed25519 seed of the secret key in `key_file`, for its OpenPGP form (`openpgp`). minisign's
/// decrypted secret key serialises as algorithm ids (6 bytes), KDF salt (32) and limits (16), key
/// id (8), then libsodium's 64-byte secret key: the 32-byte seed and the public key.
pub fn openpgp_key(key_file: &Path, password: Option<&Secret>) -> Result<super::openpgp::OpenPgpKey, SignatureError> {
    const SEED_AT: usize = 2 + 2 + 2 + 32 + 8 + 8 + 8;
    let secret = read_secret_key(key_file, password)?;
    let bytes = zeroize::Zeroizing::new(secret.to_bytes());
    let public = public_of(&secret, key_file)?;
    let seed: [u8; 32] = bytes[SEED_AT..SEED_AT + 32].try_into().expect("32 bytes");
    let id = key_id(public.keynum());
    let key = super::openpgp::OpenPgpKey::from_seed(&seed, &format!("groundwork bundle key {id}"));
    // The seed's own public key must be the one minisign has: else the layout was misread.
    if public_key_bytes(&public) != key.public_key() {
        return Err(SignatureError::SecretKey {
            path: key_file.to_path_buf(),
            reason: "its Ed25519 key could not be read for apt's OpenPGP signature (unexpected layout)".into(),
        });
    }
    Ok(key)
}

/// The raw 32-byte Ed25519 public key of a minisign public key (its serialisation: algorithm id
/// (2 bytes), key id (8), key (32)).
fn public_key_bytes(key: &PublicKey) -> [u8; 32] {
    key.to_bytes()[10..42].try_into().expect("minisign public keys are 42 bytes")
}

/// A new key pair: the secret key in `key_file` (mode 0600; encrypted with `password` as
/// `minisign -G` does, or not encrypted as `minisign -G -W` does), the public key in
/// `key_file.pub`. Refuses to overwrite either.
pub fn generate(key_file: &Path, password: Option<&Secret>) -> Result<TrustedKey, SignatureError> {
    let public_file = pub_file(key_file);
    for path in [key_file, public_file.as_path()] {
        if path.exists() {
            return Err(SignatureError::SecretKey {
                path: path.to_path_buf(),
                reason: "exists already; a key is never overwritten: choose another name or remove it".into(),
            });
        }
    }
    let pair = match password {
        Some(p) => KeyPair::generate_encrypted_keypair(Some(p.expose().to_string())),
        None => KeyPair::generate_unencrypted_keypair(),
    }
    .map_err(|e| SignatureError::SecretKey { path: key_file.to_path_buf(), reason: e.to_string() })?;
    let fail = |e: minisign::PError| SignatureError::SecretKey { path: key_file.to_path_buf(), reason: e.to_string() };
    let secret_box = pair.sk.to_box(Some("groundwork bundle signing key")).map_err(fail)?;
    let public_box: PublicKeyBox = pair.pk.to_box().map_err(fail)?;
    write_atomically(key_file, secret_box.to_string().as_bytes(), 0o600)?;
    write_atomically(&public_file, public_box.to_string().as_bytes(), 0o644)?;
    Ok(TrustedKey { id: key_id(pair.pk.keynum()), key: pair.pk })
}

/// `KEY.pub` beside `KEY` (minisign's own convention is a separate `-p` file; this keeps them
/// together).
pub fn pub_file(key_file: &Path) -> PathBuf {
    let mut name = key_file.as_os_str().to_os_string();
    name.push(".pub");
    PathBuf::from(name)
}

fn read_secret_key(key_file: &Path, password: Option<&Secret>) -> Result<SecretKey, SignatureError> {
    let text = std::fs::read_to_string(key_file)
        .map_err(|source| SignatureError::Read { path: key_file.to_path_buf(), source })?;
    let fail = |reason: String| SignatureError::SecretKey { path: key_file.to_path_buf(), reason };
    let secret_box = SecretKeyBox::from_string(&with_checksum(&text)).map_err(|e| fail(e.to_string()))?;
    match SecretKey::from_unencrypted_box(secret_box.clone()) {
        Ok(key) => Ok(key),
        // Only "it might be encrypted" sends it to the password: any other reason is the key's.
        Err(e) if !e.to_string().contains("encrypted") => Err(fail(e.to_string())),
        Err(_) => {
            // Encrypted (scrypt): a password, never prompted for here (the crate would prompt on
            // stdout, which may carry a JSON report).
            let password = password.ok_or_else(|| {
                fail("the key is encrypted: give its password in GROUNDWORK_BUNDLE_KEY_PASSWORD".into())
            })?;
            SecretKey::from_box(secret_box, Some(password.expose().to_string())).map_err(|e| {
                fail(format!("{e} (is it a minisign secret key, and GROUNDWORK_BUNDLE_KEY_PASSWORD its password?)"))
            })
        }
    }
}

/// minisign 0.11's `minisign -G -W` writes an unencrypted secret key with an all-zero checksum,
/// which the `minisign` crate refuses as corrupted; its checksum (BLAKE2b-256 of the algorithm,
/// the key id and the key, as the crate computes it) is filled in first. Any other key text is
/// returned as it is.
fn with_checksum(text: &str) -> String {
    use base64::Engine as _;
    use blake2::Digest as _;
    const KDF_AT: usize = 2;
    const KEYNUM_AT: usize = 54;
    const SK_AT: usize = 62;
    const CHK_AT: usize = 126;
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut lines: Vec<&str> = text.lines().collect();
    let Some(index) = lines.iter().position(|l| l.starts_with("RW")) else { return text.to_string() };
    let Ok(mut bytes) = b64.decode(lines[index].trim()) else { return text.to_string() };
    if bytes.len() != CHK_AT + 32 || bytes[KDF_AT..KDF_AT + 2] != [0, 0] || bytes[CHK_AT..].iter().any(|b| *b != 0) {
        return text.to_string();
    }
    let mut hash = blake2::Blake2b256::new();
    hash.update(&bytes[..2]);
    hash.update(&bytes[KEYNUM_AT..SK_AT]);
    hash.update(&bytes[SK_AT..CHK_AT]);
    let checksum = hash.finalize();
    bytes[CHK_AT..].copy_from_slice(&checksum);
    let encoded = b64.encode(&bytes);
    lines[index] = &encoded;
    let mut out = lines.join("\n");
    out.push('\n');
    out
}

/// [`crate::state::write_atomic`], its error naming the file.
fn write_atomically(path: &Path, bytes: &[u8], mode: u32) -> Result<(), SignatureError> {
    crate::state::write_atomic(path, bytes, mode)
        .map_err(|source| SignatureError::Write { path: path.to_path_buf(), source })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bundle_dir() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(SUMS), "0123  bin/kubeadm\n").unwrap();
        dir
    }

    fn key(dir: &Path, name: &str, password: Option<&Secret>) -> (PathBuf, TrustedKey) {
        let file = dir.join(name);
        let trusted = generate(&file, password).unwrap();
        (file, trusted)
    }

    /// Made by `minisign -G -W` (minisign 0.11): a lab key, unencrypted, its checksum left zero.
    const MINISIGN_CLI_KEY: &str = "untrusted comment: minisign encrypted secret key\n\
        RWQAAEIyAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA6BTINHScCaRpPPYu7QChiVaXxvbB8CcETNiR1n1H5rfKK7SkFN9sbhqdwopalY/oTv1C2rd6ni6TQrPfhK/RN5Har7Ao3IAOAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n";
    const MINISIGN_CLI_PUB: &str = "RWToFMg0dJwJpBqdwopalY/oTv1C2rd6ni6TQrPfhK/RN5Har7Ao3IAO";

    /// minisign 0.11 writes `untrusted comment: minisign public key A2488019D40938F` for a key
    /// number whose little-endian value starts with a zero nibble (`%PRIX64`, no padding).
    #[test]
    fn key_ids_are_printed_as_minisign_prints_them() {
        let keynum = 0x0A24_8801_9D40_938Fu64.to_le_bytes();
        assert_eq!(key_id(&keynum), "A2488019D40938F");
        assert_eq!(key_id(&0xB731_6F88_58AC_D151u64.to_le_bytes()), "B7316F8858ACD151");
    }

    #[test]
    fn a_key_made_by_the_minisign_cli_without_a_password_signs() {
        let (bundle, keys) = (bundle_dir(), tempfile::tempdir().unwrap());
        let file = keys.path().join("cli.key");
        std::fs::write(&file, MINISIGN_CLI_KEY).unwrap();
        let signed = sign(bundle.path(), &file, None, "made with the CLI's key").unwrap();
        assert_eq!(signed.key_id, "A4099C7434C814E8");
        let trusted = TrustedKey::parse(MINISIGN_CLI_PUB).unwrap();
        assert_eq!(check(bundle.path(), &trusted).unwrap(), signed);
        assert_eq!(openpgp_key(&file, None).unwrap().public_key(), public_key_bytes(&trusted.key));
        // Other key texts pass through untouched.
        assert_eq!(with_checksum("not a key\n"), "not a key\n");
    }

    #[test]
    fn the_openpgp_form_is_the_same_ed25519_key() {
        let keys = tempfile::tempdir().unwrap();
        let password = Secret::from_prompt("correct horse".into(), "test");
        let (file, trusted) = key(keys.path(), "site.key", Some(&password));
        let pgp = openpgp_key(&file, Some(&password)).unwrap();
        assert_eq!(pgp.public_key(), public_key_bytes(&trusted.key));
        assert_eq!(pgp.fingerprint().len(), 40);
        assert!(openpgp_key(&file, None).is_err(), "an encrypted key needs its password");
    }

    #[test]
    fn a_signed_bundle_checks_with_its_key_and_names_it() {
        let (bundle, keys) = (bundle_dir(), tempfile::tempdir().unwrap());
        let (file, trusted) = key(keys.path(), "site.key", None);
        let signed = sign(bundle.path(), &file, None, "groundwork bundle v1.33.3").unwrap();
        assert_eq!(signed.key_id, trusted.id());
        // Upper-case hex of a 64-bit number, without leading zeros (as minisign prints it).
        assert!((1..=16).contains(&signed.key_id.len()), "{}", signed.key_id);
        assert!(signed.key_id.chars().all(|c| c.is_ascii_digit() || c.is_ascii_uppercase()), "{}", signed.key_id);
        assert_eq!(signed.trusted_comment, "groundwork bundle v1.33.3");
        // The pinned form is the .pub file's second line; the whole file parses too.
        let public = std::fs::read_to_string(pub_file(&file)).unwrap();
        assert!(public.starts_with("untrusted comment:"), "{public}");
        let line = public.lines().nth(1).unwrap();
        assert_eq!(TrustedKey::parse(line).unwrap().id(), trusted.id());
        assert_eq!(check(bundle.path(), &TrustedKey::parse(&public).unwrap()).unwrap(), signed);
        // The secret key is the owner's alone.
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o600);
    }

    #[test]
    fn a_changed_sums_file_another_key_and_no_signature_are_refused_by_name() {
        let (bundle, keys) = (bundle_dir(), tempfile::tempdir().unwrap());
        let (file, trusted) = key(keys.path(), "site.key", None);
        let (other_file, other) = key(keys.path(), "other.key", None);
        let missing = check(bundle.path(), &trusted).unwrap_err().to_string();
        assert!(missing.contains("not signed") && missing.contains(trusted.id()), "{missing}");
        assert!(missing.contains("--allow-unsigned-bundle"), "{missing}");

        sign(bundle.path(), &other_file, None, "not the site's").unwrap();
        let wrong = check(bundle.path(), &trusted).unwrap_err().to_string();
        assert!(wrong.contains(other.id()) && wrong.contains(trusted.id()), "names both keys: {wrong}");

        sign(bundle.path(), &file, None, "the site's").unwrap();
        std::fs::write(bundle.path().join(SUMS), "4567  bin/kubeadm\n").unwrap();
        let changed = check(bundle.path(), &trusted).unwrap_err().to_string();
        assert!(changed.contains("changed after it was signed"), "{changed}");

        std::fs::write(bundle.path().join(SIGNATURE), "untrusted comment: x\nnot base64\n").unwrap();
        let garbled = check(bundle.path(), &trusted).unwrap_err();
        assert!(matches!(garbled, SignatureError::Malformed { .. }), "{garbled}");
    }

    #[test]
    fn an_encrypted_key_needs_its_password_and_never_shows_it() {
        let (bundle, keys) = (bundle_dir(), tempfile::tempdir().unwrap());
        let password = Secret::from_prompt("correct horse battery staple".into(), "the test key");
        let (file, trusted) = key(keys.path(), "site.key", Some(&password));
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(!text.contains("correct horse"), "{text}");

        let without = sign(bundle.path(), &file, None, "x").unwrap_err().to_string();
        assert!(without.contains("GROUNDWORK_BUNDLE_KEY_PASSWORD"), "{without}");
        let wrong = Secret::from_prompt("wrong".into(), "the test key");
        let refused = sign(bundle.path(), &file, Some(&wrong), "x").unwrap_err().to_string();
        assert!(!refused.contains("wrong") || refused.contains("Wrong password"), "{refused}");
        assert!(!bundle.path().join(SIGNATURE).exists(), "nothing written without the key");
        let signed = sign(bundle.path(), &file, Some(&password), "x").unwrap();
        assert_eq!(signed.key_id, trusted.id());
        assert_eq!(public_key_of(&file, Some(&password)).unwrap().id(), trusted.id());
    }

    #[test]
    fn keys_are_never_overwritten_and_bad_public_keys_are_named() {
        let keys = tempfile::tempdir().unwrap();
        let (file, _) = key(keys.path(), "site.key", None);
        let again = generate(&file, None).unwrap_err().to_string();
        assert!(again.contains("never overwritten"), "{again}");
        let bad = TrustedKey::parse("RWQnot-a-key").unwrap_err().to_string();
        assert!(bad.contains("RWQnot-a-key") && bad.contains("RW..."), "{bad}");
    }
}
