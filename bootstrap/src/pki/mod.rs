//! The cluster's PKI, generated and kept by the controller.
//!
//! Everything lives in one directory (the state directory's `pki/`, 0700) whose layout mirrors
//! kubeadm's `/etc/kubernetes/pki`, so files can be pushed to the nodes as they are:
//!
//! | file | what |
//! | --- | --- |
//! | `ca.crt`, `ca.key` | cluster CA, CN `kubernetes`, 10 years |
//! | `front-proxy-ca.crt`, `.key` | front proxy CA, CN `front-proxy-ca` |
//! | `sa.key`, `sa.pub` | service-account token signing key pair |
//! | `etcd/ca.crt`, `.key` | etcd CA, CN `etcd-ca` |
//! | `etcd/NAME/server.crt`, `.key` | etcd member NAME's serving certificate |
//! | `etcd/NAME/peer.crt`, `.key` | etcd member NAME's peer certificate |
//! | `apiserver-etcd-client.crt`, `.key` | the API server's client certificate for etcd |
//! | `etcd/healthcheck-client.crt`, `.key` | client certificate the controller's etcdctl uses |
//! | `groundwork-admin.crt`, `.key` | the controller's own cluster-admin client certificate |
//! | `bootstrap-token` | the kubeadm join token and its creation time ([`BootstrapToken`]) |
//!
//! Every key is ECDSA P-256 (ring cannot generate RSA keys), stored as PKCS#8 (`PRIVATE KEY`),
//! which kubeadm, the Kubernetes components, etcd and OpenSSL all read; kubeadm must be told
//! `encryptionAlgorithm: ECDSA-P256` (ClusterConfiguration v1beta4) so the certificates it makes
//! itself match. [`ClusterPki::load_or_create`] is idempotent: what exists is loaded and checked,
//! only what is missing (or a leaf that no longer matches the spec) is generated.

mod ca;
mod certs;
pub mod fingerprint;
mod kubeconfig;
mod store;
#[cfg(test)]
mod tests;
mod token;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};

use time::OffsetDateTime;

pub use certs::discovery_hash;
pub use kubeconfig::admin_kubeconfig;
pub use store::{CERT_MODE, DIR_MODE, KEY_MODE};
pub use token::{BootstrapToken, TOKEN_TTL};

/// Paths of the PKI's files, relative to the PKI directory (and to `/etc/kubernetes/pki`).
pub mod paths {
    pub const CA_CRT: &str = "ca.crt";
    pub const CA_KEY: &str = "ca.key";
    pub const FRONT_PROXY_CA_CRT: &str = "front-proxy-ca.crt";
    pub const FRONT_PROXY_CA_KEY: &str = "front-proxy-ca.key";
    pub const SA_KEY: &str = "sa.key";
    pub const SA_PUB: &str = "sa.pub";
    pub const ETCD_CA_CRT: &str = "etcd/ca.crt";
    pub const ETCD_CA_KEY: &str = "etcd/ca.key";
    pub const APISERVER_ETCD_CLIENT_CRT: &str = "apiserver-etcd-client.crt";
    pub const APISERVER_ETCD_CLIENT_KEY: &str = "apiserver-etcd-client.key";
    pub const ETCD_HEALTHCHECK_CLIENT_CRT: &str = "etcd/healthcheck-client.crt";
    pub const ETCD_HEALTHCHECK_CLIENT_KEY: &str = "etcd/healthcheck-client.key";
    pub const ADMIN_CRT: &str = "groundwork-admin.crt";
    pub const ADMIN_KEY: &str = "groundwork-admin.key";
    /// Where an etcd member's files go on its host (kubeadm's layout).
    /// The site registry's server certificate (and `.key`).
    pub const REGISTRY_BASE: &str = "registry/server";
    pub const ETCD_SERVER_CRT: &str = "etcd/server.crt";
    pub const ETCD_SERVER_KEY: &str = "etcd/server.key";
    pub const ETCD_PEER_CRT: &str = "etcd/peer.crt";
    pub const ETCD_PEER_KEY: &str = "etcd/peer.key";
    pub const BOOTSTRAP_TOKEN: &str = "bootstrap-token";

    /// `etcd/NAME/server` or `etcd/NAME/peer` (without extension) in the controller's directory.
    pub fn etcd_member_base(name: &str, kind: &str) -> String {
        format!("etcd/{name}/{kind}")
    }
}

/// Common name of the controller's admin client certificate.
pub const ADMIN_CN: &str = "groundwork-admin";
/// Group of the admin client certificate. Since Kubernetes 1.29 kubeadm's own admin.conf uses
/// `kubeadm:cluster-admins`, bound to cluster-admin by a ClusterRoleBinding that `kubeadm init`
/// creates; `system:masters` is still the API server's built-in super-user group (no binding
/// needed, cannot be revoked by RBAC), which the controller wants from the first call on.
pub const ADMIN_GROUP: &str = "system:masters";

#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{what}: {reason}")]
    Invalid { what: String, reason: String },
    #[error(
        "{} is present without {}: restore it, or remove both to make a new one (every certificate \
         signed by the old one must then be replaced on every node)",
        have.display(),
        missing.display()
    )]
    Incomplete { have: PathBuf, missing: PathBuf },
    #[error("cannot generate {what}: {source}")]
    Crypto { what: String, source: rcgen::Error },
    #[error(
        "{leaf} must be made ({why}) but this state does not hold the key of the CA that signs it \
         (a state adopted from masters that never held it): restore the state that built the cluster \
         (`groundwork state restore`) or rotate that CA"
    )]
    NoCaKey { leaf: String, why: String },
    #[error("etcd member `{name}`: {reason}")]
    Member { name: String, reason: String },
    #[error("the system's random number generator failed")]
    Random,
}

impl PkiError {
    fn io(path: &Path, source: std::io::Error) -> Self {
        PkiError::Io { path: path.to_path_buf(), source }
    }
    fn invalid(what: impl fmt::Display, reason: impl Into<String>) -> Self {
        PkiError::Invalid { what: what.to_string(), reason: reason.into() }
    }
    fn crypto(what: impl Into<String>) -> impl FnOnce(rcgen::Error) -> Self {
        let what = what.into();
        move |source| PkiError::Crypto { what, source }
    }
}

/// What the PKI must contain besides the fixed CAs and clients.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PkiSpec {
    /// The etcd members (the masters, for external etcd): name (also the certificates' CN and a
    /// DNS SAN) and IP address.
    pub etcd_members: Vec<(String, IpAddr)>,
    /// The site registry's host, when the inventory has one: its server certificate names it.
    pub registry: Option<RegistryServer>,
}

/// The registry's host: its name and its address (an IP or a DNS name), both in the certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryServer {
    pub name: String,
    pub address: String,
}

impl PkiSpec {
    fn validate(&self) -> Result<(), PkiError> {
        let mut seen = BTreeSet::new();
        for (name, _) in &self.etcd_members {
            let err = |reason: &str| PkiError::Member { name: name.clone(), reason: reason.into() };
            if !is_hostname(name) {
                return Err(err("not a lowercase DNS name (a-z, 0-9, '-', '.')"));
            }
            // etcd/NAME/ is a directory next to etcd/ca.crt and friends.
            if ["ca.crt", "ca.key", "healthcheck-client.crt", "healthcheck-client.key"].contains(&name.as_str()) {
                return Err(err("collides with a file of the etcd/ directory"));
            }
            if !seen.insert(name.as_str()) {
                return Err(err("listed twice"));
            }
        }
        Ok(())
    }
}

fn is_hostname(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        })
}

/// The DER of the first certificate in `pem` (which must be a certificate block).
pub fn certificate_der(pem: &str) -> Result<Vec<u8>, String> {
    certs::parse_pem(pem, "CERTIFICATE")
}

/// A certificate's serial number (hex) and expiry (Unix time), read from its PEM.
pub fn serial_and_expiry(cert_pem: &str) -> Result<(String, i64), PkiError> {
    use x509_parser::prelude::{FromDer, X509Certificate};
    let der = certs::parse_pem(cert_pem, "CERTIFICATE").map_err(|r| PkiError::invalid("certificate", r))?;
    let (_, cert) = X509Certificate::from_der(&der).map_err(|e| PkiError::invalid("certificate", e.to_string()))?;
    Ok((cert.raw_serial_as_string(), cert.validity().not_after.timestamp()))
}

/// A private key in PEM. Debug never shows it; [`KeyPem::expose_secret`] does.
#[derive(Clone, PartialEq, Eq)]
pub struct KeyPem(String);

impl KeyPem {
    pub fn expose_secret(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for KeyPem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("KeyPem(<redacted>)")
    }
}

/// A certificate and its private key, both PEM.
#[derive(Clone, PartialEq, Eq)]
pub struct CertAndKey {
    cert_pem: String,
    key: KeyPem,
}

impl CertAndKey {
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }
    pub fn key(&self) -> &KeyPem {
        &self.key
    }
}

impl fmt::Debug for CertAndKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CertAndKey")
            .field("cert_pem", &format_args!("<{} bytes>", self.cert_pem.len()))
            .field("key", &self.key)
            .finish()
    }
}

/// A file to push to a node: `path` relative to `/etc/kubernetes/pki`. Debug shows the path,
/// mode and size, never the content (it may be a key).
#[derive(Clone, PartialEq, Eq)]
pub struct PkiFile {
    pub path: String,
    pub content: Vec<u8>,
    pub mode: u32,
}

impl fmt::Debug for PkiFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PkiFile")
            .field("path", &self.path)
            .field("mode", &format_args!("{:o}", self.mode))
            .field("content", &format_args!("<{} bytes>", self.content.len()))
            .finish()
    }
}

#[derive(Debug, Clone)]
struct EtcdMember {
    ip: IpAddr,
    server: CertAndKey,
    peer: CertAndKey,
}

/// The loaded PKI. Debug shows no key.
#[derive(Debug, Clone)]
pub struct ClusterPki {
    dir: PathBuf,
    ca: CertAndKey,
    front_proxy_ca: CertAndKey,
    etcd_ca_cert: String,
    /// None when the state does not hold it (adopted from masters of an external etcd, which
    /// never receive it): etcd certificates are then checked, never made.
    etcd_ca_key: Option<KeyPem>,
    sa_key: KeyPem,
    sa_pub: String,
    admin: CertAndKey,
    apiserver_etcd_client: CertAndKey,
    /// None when the etcd CA's key is not held and the state has no such certificate.
    etcd_healthcheck_client: Option<CertAndKey>,
    etcd_members: BTreeMap<String, EtcdMember>,
    registry: Option<CertAndKey>,
    discovery_hash: String,
}

impl ClusterPki {
    /// Loads the PKI in `dir`, generating what is missing, and says what it generated (or
    /// replaced, with why) as relative paths. Idempotent: a second call creates nothing.
    ///
    /// CAs and the service-account key are never replaced: a CA certificate without its key, or
    /// a key that does not match, is an error. A leaf certificate is replaced (with a new key)
    /// when it no longer matches the spec (SANs, subject, usages), is not signed by its current
    /// CA, does not match its key, cannot be read, or expires within 30 days.
    pub fn load_or_create(dir: &Path, spec: &PkiSpec) -> Result<(ClusterPki, Vec<String>), PkiError> {
        Self::load_or_create_at(dir, spec, OffsetDateTime::now_utc())
    }

    pub(crate) fn load_or_create_at(
        dir: &Path,
        spec: &PkiSpec,
        now: OffsetDateTime,
    ) -> Result<(ClusterPki, Vec<String>), PkiError> {
        spec.validate()?;
        store::ensure_dir(dir)?;
        store::ensure_dir(&dir.join("etcd"))?;
        let mut created = Vec::new();

        let ca = ca::load_or_create(dir, "ca", "kubernetes", now, &mut created)?;
        let front_proxy_ca = ca::load_or_create(dir, "front-proxy-ca", "front-proxy-ca", now, &mut created)?;
        // The etcd CA's certificate without its key: a state adopted from the masters of an
        // external etcd (the key never leaves the controller that made it).
        let etcd_ca_cert_only = dir.join(paths::ETCD_CA_CRT).exists() && !dir.join(paths::ETCD_CA_KEY).exists();
        let (etcd_ca_keyed, etcd_ca_cert) = if etcd_ca_cert_only {
            (None, Some(ca::load_cert_only(dir, "etcd/ca", now)?))
        } else {
            (Some(ca::load_or_create(dir, "etcd/ca", "etcd-ca", now, &mut created)?), None)
        };
        let etcd_signer = match (&etcd_ca_keyed, &etcd_ca_cert) {
            (Some(ca), _) => ca::Signer::Key(ca),
            (None, Some(cert)) => ca::Signer::CertOnly(cert),
            (None, None) => unreachable!("one of the two is loaded above"),
        };
        let (sa_key, sa_pub) = ca::load_or_create_sa(dir, &mut created)?;

        let leaf = |spec: certs::LeafSpec, issuer: ca::Signer<'_>, created: &mut Vec<String>| {
            certs::ensure(dir, &spec, issuer, now, created)
        };
        let admin = leaf(
            certs::LeafSpec::client("groundwork-admin", ADMIN_CN, &[ADMIN_GROUP]),
            ca::Signer::Key(&ca),
            &mut created,
        )?;
        let apiserver_etcd_client = leaf(
            certs::LeafSpec::client("apiserver-etcd-client", "kube-apiserver-etcd-client", &[]),
            etcd_signer,
            &mut created,
        )?;
        // Only the controller ever had it: without the etcd CA's key it is left out.
        let healthcheck = certs::LeafSpec::client("etcd/healthcheck-client", "kube-etcd-healthcheck-client", &[]);
        let etcd_healthcheck_client = if etcd_ca_cert_only && !dir.join(format!("{}.crt", healthcheck.base)).exists() {
            None
        } else {
            Some(leaf(healthcheck, etcd_signer, &mut created)?)
        };

        let mut etcd_members = BTreeMap::new();
        for (name, ip) in &spec.etcd_members {
            store::ensure_dir(&dir.join("etcd").join(name))?;
            let dns = [name.clone(), "localhost".to_string()];
            let server = leaf(
                certs::LeafSpec::server_and_client(
                    &paths::etcd_member_base(name, "server"),
                    name,
                    &dns,
                    &[*ip, IpAddr::V4(Ipv4Addr::LOCALHOST), IpAddr::V6(Ipv6Addr::LOCALHOST)],
                ),
                etcd_signer,
                &mut created,
            )?;
            let peer = leaf(
                certs::LeafSpec::server_and_client(
                    &paths::etcd_member_base(name, "peer"),
                    name,
                    &dns,
                    &[*ip, IpAddr::V4(Ipv4Addr::LOCALHOST)],
                ),
                etcd_signer,
                &mut created,
            )?;
            etcd_members.insert(name.clone(), EtcdMember { ip: *ip, server, peer });
        }

        // Signed by the cluster CA, which every node already trusts (containerd is told so).
        let registry = match &spec.registry {
            Some(r) => {
                let (mut dns, mut ips) = (vec![r.name.clone()], Vec::new());
                match r.address.parse::<IpAddr>() {
                    Ok(ip) => ips.push(ip),
                    Err(_) => dns.push(r.address.clone()),
                }
                store::ensure_dir(&dir.join("registry"))?;
                let spec = certs::LeafSpec::server(paths::REGISTRY_BASE, &r.name, &dns, &ips);
                Some(leaf(spec, ca::Signer::Key(&ca), &mut created)?)
            }
            None => None,
        };

        let discovery_hash = discovery_hash(ca.pem.cert_pem())?;
        let pki = ClusterPki {
            dir: dir.to_path_buf(),
            ca: ca.pem,
            front_proxy_ca: front_proxy_ca.pem,
            etcd_ca_cert: match (&etcd_ca_keyed, &etcd_ca_cert) {
                (Some(ca), _) => ca.pem.cert_pem.clone(),
                (None, cert) => cert.as_ref().map(|c| c.cert_pem.clone()).unwrap_or_default(),
            },
            etcd_ca_key: etcd_ca_keyed.as_ref().map(|ca| ca.pem.key.clone()),
            sa_key,
            sa_pub,
            admin,
            apiserver_etcd_client,
            etcd_healthcheck_client,
            etcd_members,
            registry,
            discovery_hash,
        };
        Ok((pki, created))
    }

    /// The PKI directory on the controller.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
    /// Absolute path on the controller of a file given relative to the PKI directory (see [`paths`]).
    pub fn path(&self, relative: &str) -> PathBuf {
        self.dir.join(relative)
    }
    pub fn ca_cert_pem(&self) -> &str {
        self.ca.cert_pem()
    }
    pub fn front_proxy_ca_cert_pem(&self) -> &str {
        self.front_proxy_ca.cert_pem()
    }
    pub fn etcd_ca_cert_pem(&self) -> &str {
        &self.etcd_ca_cert
    }
    pub fn sa_pub_pem(&self) -> &str {
        &self.sa_pub
    }
    /// The controller's cluster-admin client certificate (CN `groundwork-admin`, O `system:masters`).
    pub fn admin(&self) -> &CertAndKey {
        &self.admin
    }
    /// etcd client certificate for the controller's health checks (etcdctl); None in a state
    /// that does not hold the etcd CA's key.
    pub fn etcd_healthcheck_client(&self) -> Option<&CertAndKey> {
        self.etcd_healthcheck_client.as_ref()
    }
    pub fn apiserver_etcd_client(&self) -> &CertAndKey {
        &self.apiserver_etcd_client
    }
    /// `sha256:<hex>` of the cluster CA's public key, for `kubeadm join --discovery-token-ca-cert-hash`.
    pub fn discovery_hash(&self) -> &str {
        &self.discovery_hash
    }
    /// The etcd members the PKI has certificates for, by name.
    pub fn etcd_members(&self) -> impl Iterator<Item = (&str, IpAddr)> {
        self.etcd_members.iter().map(|(n, m)| (n.as_str(), m.ip))
    }
    pub fn has_etcd_member(&self, name: &str) -> bool {
        self.etcd_members.contains_key(name)
    }

    /// A kubeconfig for the controller itself (the admin client certificate).
    pub fn admin_kubeconfig(&self, cluster_name: &str, server_url: &str) -> Result<String, PkiError> {
        admin_kubeconfig(
            cluster_name,
            server_url,
            self.ca.cert_pem(),
            self.admin.cert_pem(),
            self.admin.key().expose_secret(),
        )
    }

    /// Makes groundwork's own leaf certificates anew (the controller's admin client, the API
    /// server's etcd client, etcd's health-check client, every etcd member's server and peer
    /// certificates), whatever time they have left; the CAs and the service-account key stay.
    /// The old files are moved under `keep` first (nothing is deleted). Refused before anything
    /// moves when a CA key they need is not held.
    pub fn renew_leaves(dir: &Path, spec: &PkiSpec, keep: &Path) -> Result<(ClusterPki, Vec<String>), PkiError> {
        if !dir.join(paths::ETCD_CA_KEY).exists() {
            return Err(PkiError::NoCaKey { leaf: "etcd certificates".into(), why: "renewing them was asked".into() });
        }
        let mut bases =
            vec!["groundwork-admin".to_string(), "apiserver-etcd-client".into(), "etcd/healthcheck-client".into()];
        for (name, _) in &spec.etcd_members {
            bases.push(paths::etcd_member_base(name, "server"));
            bases.push(paths::etcd_member_base(name, "peer"));
        }
        for base in &bases {
            for ext in ["crt", "key"] {
                let from = dir.join(format!("{base}.{ext}"));
                if from.exists() {
                    let to = keep.join(format!("{base}.{ext}"));
                    store::ensure_dir(to.parent().unwrap_or(keep))?;
                    std::fs::rename(&from, &to).map_err(|e| PkiError::io(&from, e))?;
                }
            }
        }
        Self::load_or_create(dir, spec)
    }

    /// A person's client certificate: CN `user`, organizations `groups` (Kubernetes reads them as
    /// the user's groups), signed here by the cluster CA, valid `days`. The key is made here and
    /// goes only into what the caller writes (the user's kubeconfig); no node ever sees it.
    pub fn user_client(&self, user: &str, groups: &[String], days: u32) -> Result<CertAndKey, PkiError> {
        let key = rcgen::KeyPair::from_pem(self.ca.key().expose_secret())
            .map_err(|e| PkiError::invalid(paths::CA_KEY, e.to_string()))?;
        let issuer = rcgen::Issuer::from_ca_cert_pem(self.ca.cert_pem(), key).map_err(PkiError::crypto("ca.crt"))?;
        let orgs: Vec<&str> = groups.iter().map(String::as_str).collect();
        let spec = certs::LeafSpec::client(&format!("users/{user}"), user, &orgs);
        certs::generate(&spec, &issuer, OffsetDateTime::now_utc(), time::Duration::days(i64::from(days)))
    }

    /// A kubeconfig for a person, from [`user_client`](Self::user_client)'s certificate.
    pub fn user_kubeconfig(
        &self,
        cluster_name: &str,
        server_url: &str,
        user: &str,
        namespace: Option<&str>,
        client: &CertAndKey,
    ) -> Result<String, PkiError> {
        kubeconfig::user_kubeconfig(
            cluster_name,
            server_url,
            self.ca.cert_pem(),
            user,
            namespace,
            client.cert_pem(),
            client.key().expose_secret(),
        )
    }

    /// What every master needs in `/etc/kubernetes/pki` before kubeadm runs: the cluster and
    /// front-proxy CAs with their keys (kubeadm signs the API server's and the front-proxy
    /// client's certificates with them), the service-account key pair, the etcd CA's certificate
    /// and the API server's etcd client certificate. The etcd CA key stays on the controller
    /// (for stacked etcd, add [`ClusterPki::etcd_ca_key_file`]). The same for every master:
    /// `name` only shows in logs.
    pub fn files_for_master(&self, name: &str) -> Vec<PkiFile> {
        tracing::debug!("pki: files for master {name}");
        vec![
            cert_file(paths::CA_CRT, self.ca.cert_pem()),
            key_file(paths::CA_KEY, self.ca.key()),
            cert_file(paths::FRONT_PROXY_CA_CRT, self.front_proxy_ca.cert_pem()),
            key_file(paths::FRONT_PROXY_CA_KEY, self.front_proxy_ca.key()),
            key_file(paths::SA_KEY, &self.sa_key),
            cert_file(paths::SA_PUB, &self.sa_pub),
            cert_file(paths::ETCD_CA_CRT, &self.etcd_ca_cert),
            cert_file(paths::APISERVER_ETCD_CLIENT_CRT, self.apiserver_etcd_client.cert_pem()),
            key_file(paths::APISERVER_ETCD_CLIENT_KEY, self.apiserver_etcd_client.key()),
        ]
    }

    /// `etcd/ca.key`: only for stacked etcd, where kubeadm makes each member's certificates
    /// itself. None when this state does not hold it.
    pub fn etcd_ca_key_file(&self) -> Option<PkiFile> {
        self.etcd_ca_key.as_ref().map(|k| key_file(paths::ETCD_CA_KEY, k))
    }

    /// What etcd member `name` needs: `etcd/ca.crt`, and its own `etcd/server.{crt,key}` and
    /// `etcd/peer.{crt,key}` (kubeadm's names). Empty (and a warning logged) if the PKI was not
    /// made with `name` among [`PkiSpec::etcd_members`]; see [`ClusterPki::has_etcd_member`].
    pub fn files_for_etcd_member(&self, name: &str) -> Vec<PkiFile> {
        let Some(m) = self.etcd_members.get(name) else {
            tracing::warn!("pki: {name} is not an etcd member of this PKI: no etcd certificates for it");
            return Vec::new();
        };
        vec![
            cert_file(paths::ETCD_CA_CRT, &self.etcd_ca_cert),
            cert_file(paths::ETCD_SERVER_CRT, m.server.cert_pem()),
            key_file(paths::ETCD_SERVER_KEY, m.server.key()),
            cert_file(paths::ETCD_PEER_CRT, m.peer.cert_pem()),
            key_file(paths::ETCD_PEER_KEY, m.peer.key()),
        ]
    }

    /// The site registry's server certificate and key (None without a registry in the spec).
    pub fn registry_server(&self) -> Option<&CertAndKey> {
        self.registry.as_ref()
    }

    /// What a worker needs: the cluster CA's certificate.
    pub fn files_for_worker(&self) -> Vec<PkiFile> {
        vec![cert_file(paths::CA_CRT, self.ca.cert_pem())]
    }
}

fn cert_file(path: &str, pem: &str) -> PkiFile {
    PkiFile { path: path.to_string(), content: pem.as_bytes().to_vec(), mode: CERT_MODE }
}

fn key_file(path: &str, key: &KeyPem) -> PkiFile {
    PkiFile { path: path.to_string(), content: key.expose_secret().as_bytes().to_vec(), mode: KEY_MODE }
}
