//! Encrypting the secrets files with sops for an age recipient, and the `.sops.yaml` creation
//! rules that let the operator edit them later (`sops edit FILE`) with the same settings.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde::Serialize;
use sha2::{Digest, Sha256};

use super::{DIGIT_SECRETS_REGEX, HandoffError, MANIFEST_SECRETS_REGEX, SopsSettings, yaml};

#[derive(Serialize)]
struct Config {
    creation_rules: Vec<Rule>,
}

#[derive(Serialize)]
struct Rule {
    path_regex: &'static str,
    encrypted_regex: &'static str,
    age: String,
}

/// `.sops.yaml`: the Kubernetes Secret manifest encrypts `data`/`stringData`, DIGIT's secrets
/// files their `secrets` subtree (as DIGIT's own files are encrypted).
pub fn creation_rules(age_recipient: &str) -> Result<String, HandoffError> {
    let rules = vec![
        Rule {
            path_regex: r"manifests/secrets\.yaml$",
            encrypted_regex: MANIFEST_SECRETS_REGEX,
            age: age_recipient.into(),
        },
        Rule { path_regex: r"-secrets\.yaml$", encrypted_regex: DIGIT_SECRETS_REGEX, age: age_recipient.into() },
    ];
    yaml::document(".sops.yaml", &Config { creation_rules: rules })
}

/// `plain` encrypted by sops; the plain text goes through a pipe, never to disk.
pub fn encrypt(
    settings: &SopsSettings,
    plain: &[u8],
    encrypted_regex: &str,
    path: &Path,
) -> Result<Vec<u8>, HandoffError> {
    let failed = |message: String| HandoffError::Sops { path: path.to_path_buf(), message };
    let mut child = Command::new(&settings.program)
        .args(["--encrypt", "--age", &settings.age_recipient, "--encrypted-regex", encrypted_regex])
        .args(["--input-type", "yaml", "--output-type", "yaml", "/dev/stdin"])
        // Away from any .sops.yaml of the operator's that could add keys or rules.
        .current_dir("/")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| failed(format!("cannot run {}: {e}", settings.program.display())))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(plain).map_err(|e| failed(format!("cannot pass the file to sops: {e}")))?;
    }
    let output = child.wait_with_output().map_err(|e| failed(e.to_string()))?;
    if !output.status.success() {
        return Err(failed(String::from_utf8_lossy(&output.stderr).trim().to_string()));
    }
    Ok(output.stdout)
}

/// sops output differs on every run (fresh data keys and IVs), so whether an encrypted file is
/// current is decided by a fingerprint of what went in, kept in the state directory.
pub fn fingerprint(settings: &SopsSettings, plain: &[u8], encrypted_regex: &str) -> String {
    let mut hash = Sha256::new();
    for part in [settings.age_recipient.as_bytes(), encrypted_regex.as_bytes(), plain] {
        hash.update((part.len() as u64).to_be_bytes());
        hash.update(part);
    }
    hex::encode(hash.finalize())
}

pub fn memo_file(memo_dir: &Path, relative: &Path) -> PathBuf {
    let flat = relative.display().to_string().replace('/', "%");
    memo_dir.join(format!("{flat}.sha256"))
}
