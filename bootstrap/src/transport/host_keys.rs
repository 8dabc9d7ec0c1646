//! Host key verification against a known_hosts file, for the bastion and every node.
//!
//! A known key passes; a changed key is refused, always; an unknown key is refused with its
//! fingerprint and the way to accept it, or recorded when the operator said `--accept-new`
//! (trust on first use). Like OpenSSH, a host whose keys are recorded is asked only for those
//! key types, so a server that also has a newer key type is not mistaken for a changed one.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use russh::client::Handler;
use russh::keys::{Algorithm, HashAlg, PublicKey, PublicKeyOrCertificate};

/// What the host presented, judged against the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Known,
    /// Unknown, recorded because of `--accept-new`.
    Learned {
        key_type: String,
        fingerprint: String,
    },
    Unknown {
        key_type: String,
        fingerprint: String,
    },
    Changed {
        key_type: String,
        fingerprint: String,
        line: usize,
    },
    /// The host presented a certificate; groundwork trusts plain keys only.
    Certificate,
    Unreadable(String),
}

#[derive(Debug)]
pub struct HostKeyPolicy {
    pub file: PathBuf,
    pub accept_new: bool,
    /// Appends to the file are serialised: many nodes may be learned at once.
    learn_lock: Mutex<()>,
}

impl HostKeyPolicy {
    pub fn new(file: PathBuf, accept_new: bool) -> Self {
        HostKeyPolicy { file, accept_new, learn_lock: Mutex::new(()) }
    }

    /// The name a host has in known_hosts: `addr` on port 22, else `[addr]:port`.
    pub fn entry_name(address: &str, port: u16) -> String {
        if port == 22 { address.to_string() } else { format!("[{address}]:{port}") }
    }

    fn recorded(&self, address: &str, port: u16) -> Result<Vec<(usize, PublicKey)>, String> {
        russh::keys::known_hosts::known_host_keys_path(address, port, &self.file)
            .map_err(|e| format!("cannot read known_hosts file {}: {e}", self.file.display()))
    }

    /// Key algorithms to offer when connecting: those recorded for the host, or None (any).
    pub fn preferred_algorithms(&self, address: &str, port: u16) -> Option<Vec<Algorithm>> {
        let recorded = self.recorded(address, port).ok()?;
        let mut algorithms = Vec::new();
        for (_, key) in recorded {
            let alg = key.algorithm();
            let rsa = alg.clone().is_rsa();
            let variants = if rsa {
                vec![Algorithm::Rsa { hash: Some(HashAlg::Sha512) }, Algorithm::Rsa { hash: Some(HashAlg::Sha256) }]
            } else {
                vec![alg]
            };
            for v in variants {
                if !algorithms.contains(&v) {
                    algorithms.push(v);
                }
            }
        }
        (!algorithms.is_empty()).then_some(algorithms)
    }

    pub fn judge(&self, address: &str, port: u16, key: &PublicKey) -> Verdict {
        let recorded = match self.recorded(address, port) {
            Ok(r) => r,
            Err(e) => return Verdict::Unreadable(e),
        };
        let key_type = key.algorithm().as_str().to_string();
        let fingerprint = key.fingerprint(HashAlg::Sha256).to_string();
        if recorded.iter().any(|(_, k)| k.key_data() == key.key_data()) {
            return Verdict::Known;
        }
        if let Some((line, _)) = recorded.iter().find(|(_, k)| k.algorithm() == key.algorithm()) {
            return Verdict::Changed { key_type, fingerprint, line: *line };
        }
        if !recorded.is_empty() {
            // Keys of other types are recorded, and we asked only for those: the host no longer
            // has them. That is a changed identity, not a new host.
            let line = recorded[0].0;
            return Verdict::Changed { key_type, fingerprint, line };
        }
        if !self.accept_new {
            return Verdict::Unknown { key_type, fingerprint };
        }
        let _guard = self.learn_lock.lock().unwrap_or_else(|p| p.into_inner());
        // Another task may have learned this host meanwhile.
        if let Ok(now) = self.recorded(address, port)
            && now.iter().any(|(_, k)| k.key_data() == key.key_data())
        {
            return Verdict::Known;
        }
        match russh::keys::known_hosts::learn_known_hosts_path(address, port, key, &self.file) {
            Ok(()) => Verdict::Learned { key_type, fingerprint },
            Err(e) => Verdict::Unreadable(format!("cannot record the key in {}: {e}", self.file.display())),
        }
    }
}

/// The russh handler for one connection: judges the host key and keeps the verdict, so that a
/// refused connection can be explained precisely.
pub struct Verifier {
    policy: Arc<HostKeyPolicy>,
    address: String,
    port: u16,
    verdict: Arc<Mutex<Option<Verdict>>>,
}

impl Verifier {
    pub fn new(policy: Arc<HostKeyPolicy>, address: &str, port: u16) -> (Self, Arc<Mutex<Option<Verdict>>>) {
        let verdict = Arc::new(Mutex::new(None));
        (Verifier { policy, address: address.to_string(), port, verdict: verdict.clone() }, verdict)
    }
}

impl Handler for Verifier {
    type Error = russh::Error;

    async fn check_server_key(&mut self, key: &PublicKeyOrCertificate) -> Result<bool, Self::Error> {
        let verdict = match key {
            PublicKeyOrCertificate::PublicKey { key, .. } => self.policy.judge(&self.address, self.port, key),
            PublicKeyOrCertificate::Certificate(_) => Verdict::Certificate,
        };
        let accept = matches!(verdict, Verdict::Known | Verdict::Learned { .. });
        *self.verdict.lock().unwrap_or_else(|p| p.into_inner()) = Some(verdict);
        Ok(accept)
    }
}

/// Explains a refused verdict to the operator, with the exact way out.
pub fn explain(verdict: &Verdict, host: &str, address: &str, port: u16, file: &Path) -> Option<String> {
    let entry = HostKeyPolicy::entry_name(address, port);
    let file = file.display();
    match verdict {
        Verdict::Known | Verdict::Learned { .. } => None,
        Verdict::Unknown { key_type, fingerprint } => Some(format!(
            "host key of {host} ({entry}) is not known: {key_type} {fingerprint}. Compare it with the host's own \
             (`ssh-keygen -lf /etc/ssh/ssh_host_{}_key.pub` on its console), then run again with --accept-new \
             to record it in {file}",
            key_type.trim_start_matches("ssh-").split('-').next().unwrap_or("ed25519")
        )),
        Verdict::Changed { key_type, fingerprint, line } => Some(format!(
            "HOST KEY CHANGED for {host} ({entry}): it now presents {key_type} {fingerprint}, which does not match \
             {file} line {line}. Someone may be intercepting the connection; groundwork refuses it, also with \
             --accept-new. If the host was reinstalled, remove the old key \
             (`ssh-keygen -R '{entry}' -f {file}`) and run again with --accept-new"
        )),
        Verdict::Certificate => {
            Some(format!("{host} ({entry}) presented a host certificate; groundwork verifies plain host keys only"))
        }
        Verdict::Unreadable(e) => Some(format!("{host}: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(text: &str) -> PublicKey {
        PublicKey::from_openssh(text).expect("test key parses")
    }

    const A: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl";
    const B: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAILM+rvN+ot98qgEN796jTiQfszSaVFn5R1GsBtr6uvUB";

    fn policy(name: &str, content: &str, accept_new: bool) -> HostKeyPolicy {
        let file = std::env::temp_dir().join(format!("gw-kh-{}-{name}", std::process::id()));
        std::fs::write(&file, content).unwrap();
        HostKeyPolicy::new(file, accept_new)
    }

    #[test]
    fn known_changed_unknown() {
        let p = policy("kcu", &format!("10.0.0.1 {A}\n[10.0.0.2]:2222 {A}\n"), false);
        assert_eq!(p.judge("10.0.0.1", 22, &key(A)), Verdict::Known);
        assert_eq!(p.judge("10.0.0.2", 2222, &key(A)), Verdict::Known);
        assert!(matches!(p.judge("10.0.0.1", 22, &key(B)), Verdict::Changed { line: 1, .. }));
        assert!(matches!(p.judge("10.0.0.3", 22, &key(B)), Verdict::Unknown { .. }));
        // The same address on another port is another entry.
        assert!(matches!(p.judge("10.0.0.1", 2222, &key(A)), Verdict::Unknown { .. }));
        let _ = std::fs::remove_file(&p.file);
    }

    #[test]
    fn accept_new_records_unknown_keys_but_never_changed_ones() {
        let p = policy("tofu", &format!("10.0.0.1 {A}\n"), true);
        assert!(matches!(p.judge("10.0.0.9", 22, &key(B)), Verdict::Learned { .. }));
        assert_eq!(p.judge("10.0.0.9", 22, &key(B)), Verdict::Known);
        assert!(matches!(p.judge("10.0.0.1", 22, &key(B)), Verdict::Changed { .. }));
        let text = std::fs::read_to_string(&p.file).unwrap();
        assert_eq!(text.lines().count(), 2, "{text}");
        let _ = std::fs::remove_file(&p.file);
    }

    #[test]
    fn explanations_name_the_fingerprint_and_the_way_out() {
        let v = Verdict::Unknown { key_type: "ssh-ed25519".into(), fingerprint: "SHA256:abc".into() };
        let text = explain(&v, "master-1", "10.0.0.1", 22, Path::new("/kh")).unwrap();
        assert!(
            text.contains("SHA256:abc") && text.contains("--accept-new") && text.contains("ssh_host_ed25519_key.pub")
        );
        let v = Verdict::Changed { key_type: "ssh-ed25519".into(), fingerprint: "SHA256:abc".into(), line: 3 };
        let text = explain(&v, "master-1", "10.0.0.1", 2222, Path::new("/kh")).unwrap();
        assert!(text.contains("HOST KEY CHANGED") && text.contains("line 3") && text.contains("[10.0.0.1]:2222"));
    }
}
