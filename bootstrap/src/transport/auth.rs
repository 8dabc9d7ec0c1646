//! Logging in: private key files (OpenSSH or PEM, decrypted once and cached, passphrase from the
//! inventory's secret or a prompt) and the running ssh-agent.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use russh::client::Handle;
use russh::keys::agent::AgentIdentity;
use russh::keys::agent::client::AgentClient;
use russh::keys::{PrivateKey, PrivateKeyWithHashAlg};
use tokio::sync::Mutex;

use super::TransportError;
use super::host_keys::Verifier;
use super::target::Target;
use crate::secrets::{self, Secret};

pub struct Credentials {
    base_dir: PathBuf,
    /// Decrypted keys by path: a passphrase is asked for at most once.
    keys: Mutex<HashMap<PathBuf, Arc<PrivateKey>>>,
}

impl Credentials {
    pub fn new(base_dir: &Path) -> Self {
        Credentials { base_dir: base_dir.to_path_buf(), keys: Mutex::new(HashMap::new()) }
    }

    /// Decrypts every target's key file now, asking for passphrases before any connection (and
    /// any progress display) starts; a wrong passphrase fails here once, not once per host.
    pub async fn preload(&self, targets: &[&Target]) -> Result<(), TransportError> {
        for t in targets {
            if let Some(path) = &t.key_file {
                self.key(t, path).await?;
            }
        }
        Ok(())
    }

    async fn key(&self, target: &Target, path: &Path) -> Result<Arc<PrivateKey>, TransportError> {
        let mut keys = self.keys.lock().await;
        if let Some(k) = keys.get(path) {
            return Ok(k.clone());
        }
        let key_error = |message: String| TransportError::Key { path: path.to_path_buf(), message };
        let key = match russh::keys::load_secret_key(path, None) {
            Ok(k) => k,
            Err(russh::keys::Error::KeyIsEncrypted) => {
                let passphrase = self.passphrase(target, path)?;
                russh::keys::load_secret_key(path, Some(passphrase.expose()))
                    .map_err(|e| key_error(format!("cannot decrypt it ({e}); is the passphrase right?")))?
            }
            Err(e) => return Err(key_error(format!("cannot load it: {e}"))),
        };
        let key = Arc::new(key);
        keys.insert(path.to_path_buf(), key.clone());
        Ok(key)
    }

    fn passphrase(&self, target: &Target, path: &Path) -> Result<Secret, TransportError> {
        let what = format!("passphrase of {}", path.display());
        if let Some(r) = &target.key_passphrase {
            return Ok(secrets::resolve(r, &self.base_dir, &what)?);
        }
        if std::io::stdin().is_terminal() {
            let typed = rpassword::prompt_password(format!("Passphrase for {}: ", path.display())).map_err(|e| {
                TransportError::Key { path: path.to_path_buf(), message: format!("prompt failed: {e}") }
            })?;
            return Ok(Secret::from_prompt(typed, &what));
        }
        Err(TransportError::Key {
            path: path.to_path_buf(),
            message: "it is encrypted and there is no terminal to ask for the passphrase: set \
                      ssh.keyPassphrase: {env: VARIABLE} in the inventory"
                .into(),
        })
    }

    /// Tries the key file, then the ssh-agent, as the target's user.
    pub async fn authenticate(&self, handle: &mut Handle<Verifier>, target: &Target) -> Result<(), TransportError> {
        let mut tried = Vec::new();
        if let Some(path) = &target.key_file {
            let key = self.key(target, path).await?;
            let hash = handle.best_supported_rsa_hash().await.ok().flatten().flatten();
            let result = handle.authenticate_publickey(&target.user, PrivateKeyWithHashAlg::new(key, hash)).await?;
            if result.success() {
                return Ok(());
            }
            tried.push(format!("key {}", path.display()));
        }
        if target.use_agent {
            match agent_login(handle, target).await {
                Ok(true) => return Ok(()),
                Ok(false) => tried.push("the ssh-agent's keys".into()),
                Err(e) => tried.push(format!("ssh-agent ({e})")),
            }
        }
        Err(TransportError::AuthFailed {
            host: target.name.clone(),
            user: target.user.clone(),
            tried: tried.join(", "),
        })
    }
}

async fn agent_login(handle: &mut Handle<Verifier>, target: &Target) -> Result<bool, String> {
    let mut agent = AgentClient::connect_env().await.map_err(|e| format!("cannot reach it via SSH_AUTH_SOCK: {e}"))?;
    let identities = agent.request_identities().await.map_err(|e| e.to_string())?;
    let hash = handle.best_supported_rsa_hash().await.ok().flatten().flatten();
    for identity in identities {
        let AgentIdentity::PublicKey { key, .. } = identity else { continue };
        match handle.authenticate_publickey_with(&target.user, key, hash, &mut agent).await {
            Ok(r) if r.success() => return Ok(true),
            Ok(_) => continue,
            Err(e) => return Err(e.to_string()),
        }
    }
    Ok(false)
}
