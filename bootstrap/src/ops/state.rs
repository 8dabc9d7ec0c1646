//! `groundwork state adopt|backup|restore`: the state directory as the cluster's identity.
//!
//! `adopt` takes a running cluster's PKI and secrets from its masters (verified identical on all
//! of them) into a new state directory, so that a controller without `.groundwork/` (a fresh
//! checkout, a second operator's machine) can manage the cluster without replacing its keys.
//! What the state holds, and what adopt does with each:
//!
//! | state | adopt |
//! |---|---|
//! | `pki/ca.*`, `front-proxy-ca.*`, `sa.*`, `apiserver-etcd-client.*`, `etcd/ca.crt` | taken from the masters, identical on all |
//! | `pki/etcd/ca.key` | taken when the masters hold it (stacked etcd); with external etcd it never left the controller that built the cluster: not recoverable, so etcd certificates can be checked, not made (a new master needs the original state) |
//! | `pki/etcd/<master>/{server,peer}.*` | taken from each master's `etcd/{server,peer}.*` |
//! | `pki/groundwork-admin.*`, `admin.conf` | made anew from the adopted CA (the controller's own credentials) |
//! | `pki/etcd/healthcheck-client.*` | made when the etcd CA key is held, else left out (unused by the phases) |
//! | `pki/bootstrap-token` | taken from the first master's kubeadm configuration, its age from its Secret; when that Secret is gone (expired) a new one is made by the next apply |
//! | `secrets/db-<role>` | taken from the handoff's `db` Secret in the cluster (`<namespace>/db`) for the roles it names; any other generated password is not recoverable (PostgreSQL keeps only verifiers): said, and the next apply would set a new one |
//! | `identity.json` | the fingerprints, and the cluster's uid from the API server |
//! | `journal.json`, `bundle-verified.json`, `handoff-sops/` | records and caches, rebuilt by the next run |

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use base64::Engine;
use serde::Serialize;

use crate::inventory::{LoadedInventory, Role};
use crate::kube::{KubeClient, KubeError};
use crate::phases::identity::read_files;
use crate::pki::{BootstrapToken, CERT_MODE, ClusterPki, KEY_MODE, fingerprint, paths};
use crate::state::archive::{self, ArchiveError, ArchiveSummary, BackupKey, RestoreKey};
use crate::state::identity::{Fingerprints, Identity};
use crate::state::{ClusterLock, LockError, StateDir, secrets_store};
use crate::transport::{NodeSession, Transport, TransportError, TransportOptions, target};

#[derive(Debug, thiserror::Error)]
pub enum StateOpError {
    #[error(transparent)]
    Lock(#[from] LockError),
    #[error(transparent)]
    Archive(#[from] ArchiveError),
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
    #[error(
        "{} already holds a PKI (cluster CA {fingerprint}): adopt fills a new state directory only. \
         `groundwork plan -i INVENTORY` compares it with the cluster",
        path.display()
    )]
    AlreadyHasPki { path: PathBuf, fingerprint: String },
    #[error("the inventory has no master")]
    NoMaster,
    #[error("{host}: {source}")]
    Transport { host: String, source: TransportError },
    #[error("{host}: cannot read its PKI: {message}")]
    Read { host: String, message: String },
    #[error(
        "the masters hold no cluster PKI (no /etc/kubernetes/pki/ca.crt): nothing to adopt; `groundwork apply` builds a new cluster"
    )]
    NothingToAdopt,
    #[error("refused: the masters do not hold the same PKI, so groundwork cannot tell which is the cluster's: {0}")]
    Differ(String),
    #[error("the PKI taken from the masters is not usable: {0}")]
    Pki(String),
    #[error("the API server did not answer through {host} with the adopted credentials: {source}")]
    Api { host: String, source: KubeError },
}

/// What adopt did with one part of the state.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct AdoptItem {
    pub what: String,
    pub outcome: String,
    /// The operator must act (something could not be recovered).
    pub attention: bool,
}

#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct AdoptReport {
    pub state_dir: PathBuf,
    pub fingerprints: Fingerprints,
    pub cluster_uid: Option<String>,
    pub items: Vec<AdoptItem>,
}

/// Files every master holds alike (relative to /etc/kubernetes/pki).
const SHARED: [&str; 10] = [
    paths::CA_CRT,
    paths::CA_KEY,
    paths::FRONT_PROXY_CA_CRT,
    paths::FRONT_PROXY_CA_KEY,
    paths::SA_KEY,
    paths::SA_PUB,
    paths::ETCD_CA_CRT,
    paths::ETCD_CA_KEY,
    paths::APISERVER_ETCD_CLIENT_CRT,
    paths::APISERVER_ETCD_CLIENT_KEY,
];
/// Each etcd member's own (external etcd), kept under `etcd/<master>/` in the state.
const MEMBER: [(&str, &str); 4] = [
    (paths::ETCD_SERVER_CRT, "server.crt"),
    (paths::ETCD_SERVER_KEY, "server.key"),
    (paths::ETCD_PEER_CRT, "peer.crt"),
    (paths::ETCD_PEER_KEY, "peer.key"),
];
const INIT_CONFIG_DIR: &str = "/etc/kubernetes/groundwork";
const INIT_CONFIG: &str = "kubeadm-init.yaml";

fn state_of(loaded: &LoadedInventory) -> StateDir {
    StateDir::for_cluster(&loaded.base_dir, &loaded.inventory.cluster.name)
}

fn lock(state: &StateDir, command: &str) -> Result<ClusterLock, StateOpError> {
    state.create().map_err(|source| StateOpError::Io { path: state.root().to_path_buf(), source })?;
    Ok(ClusterLock::acquire(&state.lock_file(), command)?)
}

/// Takes the cluster's PKI and secrets from its masters into the (new) state directory.
pub async fn adopt(loaded: &LoadedInventory, opts: TransportOptions) -> Result<AdoptReport, StateOpError> {
    let state = state_of(loaded);
    if state.pki_dir().join(paths::CA_CRT).exists() {
        let fingerprint = fingerprint::of_dir(&state.pki_dir())
            .ok()
            .and_then(|f| f.get(paths::CA_CRT).map(|f| fingerprint::short(f)))
            .unwrap_or_default();
        return Err(StateOpError::AlreadyHasPki { path: state.root().to_path_buf(), fingerprint });
    }
    let _lock = lock(&state, "groundwork state adopt")?;
    let masters: Vec<_> = target::hosts(loaded).into_iter().filter(|t| t.roles.contains(&Role::Master)).collect();
    if masters.is_empty() {
        return Err(StateOpError::NoMaster);
    }
    let transport = Transport::connect(target::bastion(loaded).as_ref(), &masters, opts)
        .await
        .map_err(|source| StateOpError::Transport { host: "bastion".into(), source })?;
    let result = async {
        let mut sessions = Vec::new();
        for t in &masters {
            let s =
                transport.open(t).await.map_err(|source| StateOpError::Transport { host: t.name.clone(), source })?;
            sessions.push((t.name.clone(), s));
        }
        let report = adopt_from(loaded, &state, &sessions).await;
        for (_, s) in sessions {
            s.close().await;
        }
        report
    }
    .await;
    transport.close().await;
    result
}

async fn adopt_from(
    loaded: &LoadedInventory,
    state: &StateDir,
    sessions: &[(String, NodeSession)],
) -> Result<AdoptReport, StateOpError> {
    let inv = &loaded.inventory;
    let external_etcd = inv.cluster.etcd == crate::inventory::EtcdMode::External;
    let mut names: Vec<&str> = SHARED.to_vec();
    names.extend(MEMBER.iter().map(|(remote, _)| *remote));
    let reads =
        futures::future::join_all(sessions.iter().map(|(_, s)| read_files(s, crate::phases::pki::REMOTE_DIR, &names)))
            .await;
    let mut held: BTreeMap<String, BTreeMap<String, Vec<u8>>> = BTreeMap::new();
    for ((name, _), r) in sessions.iter().zip(reads) {
        let files = r.map_err(|e| StateOpError::Read { host: name.clone(), message: e.0 })?;
        held.insert(name.clone(), files);
    }
    if held.values().all(|f| !f.contains_key(paths::CA_CRT)) {
        return Err(StateOpError::NothingToAdopt);
    }
    let shared = identical(&held)?;
    let mut items = Vec::new();
    let all = sessions.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>().join(", ");

    // The PKI, assembled beside the state and renamed into place once it loads and checks.
    let staging = state.root().join(format!(".pki.adopt.{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&staging);
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |e: crate::pki::PkiError| StateOpError::Pki(format!("{}: {e}", path.display()))
    };
    let write = |relative: &str, content: &[u8]| {
        let mode = if relative.ends_with(".key") { KEY_MODE } else { CERT_MODE };
        let path = staging.join(relative);
        crate::state::write_atomic(&path, content, mode).map_err(|source| StateOpError::Io { path, source })
    };
    for (file, content) in &shared {
        write(file, content)?;
    }
    items.push(AdoptItem {
        what: "cluster, front-proxy and etcd CA certificates; CA and service-account keys; the API server's etcd client certificate".into(),
        outcome: format!("taken from the masters, identical on {all}: {}", shared.keys().cloned().collect::<Vec<_>>().join(", ")),
        attention: false,
    });
    if external_etcd {
        for (master, files) in &held {
            for (remote, local) in MEMBER {
                if let Some(content) = files.get(remote) {
                    write(&format!("etcd/{master}/{local}"), content)?;
                }
            }
        }
        items.push(AdoptItem {
            what: "etcd member certificates".into(),
            outcome: "taken from each master's etcd/server.* and etcd/peer.*".into(),
            attention: false,
        });
        if !shared.contains_key(paths::ETCD_CA_KEY) {
            items.push(AdoptItem {
                what: "etcd CA key".into(),
                outcome: "not recoverable: with external etcd it never left the controller that built the cluster. \
                          etcd certificates are checked, not made: adding a master or renewing them needs that \
                          controller's state (`groundwork state restore`)"
                    .into(),
                attention: true,
            });
        }
    }
    let spec = crate::phases::pki::spec(inv).map_err(|e| StateOpError::Pki(e.0))?;
    let (pki, created) = ClusterPki::load_or_create(&staging, &spec).map_err(io(&staging))?;
    let made: Vec<String> = created.iter().map(|c| c.split(' ').next().unwrap_or(c).to_string()).collect();
    let expected = ["groundwork-admin.crt", "etcd/healthcheck-client.crt"];
    let unexpected: Vec<&String> = made.iter().filter(|c| !expected.contains(&c.as_str())).collect();
    items.push(AdoptItem {
        what: "the controller's admin client certificate".into(),
        outcome: "made anew, signed by the adopted cluster CA".into(),
        attention: false,
    });
    if !unexpected.is_empty() {
        items.push(AdoptItem {
            what: "certificates the masters lacked or held out of date".into(),
            outcome: format!(
                "made: {}; the next apply puts them on the masters",
                unexpected.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
            ),
            attention: true,
        });
    }

    // The API server, asked with the adopted CA and the new admin certificate through the
    // first master's own SSH session.
    let (first, via) = &sessions[0];
    let client = KubeClient::admin(&pki, inv.cluster.control_plane_endpoint.port)
        .map_err(|source| StateOpError::Api { host: first.clone(), source })?;
    let api = |path: String| {
        let client = &client;
        async move { client.get_json(via, &path).await }
    };
    let ns = api("/api/v1/namespaces/kube-system".into())
        .await
        .map_err(|source| StateOpError::Api { host: first.clone(), source })?;
    let cluster_uid = ns["metadata"]["uid"].as_str().map(str::to_string);

    // The bootstrap token: the first master's kubeadm configuration holds it.
    let config = read_files(via, INIT_CONFIG_DIR, &[INIT_CONFIG])
        .await
        .map_err(|e| StateOpError::Read { host: first.clone(), message: e.0 })?;
    let token = config.get(INIT_CONFIG).and_then(|c| token_in_config(&String::from_utf8_lossy(c)));
    let token_item = match token {
        None => "not found in the first master's kubeadm configuration: the next apply makes a new one".to_string(),
        Some(token) => {
            let id = token.split('.').next().unwrap_or_default().to_string();
            match api(format!("/api/v1/namespaces/kube-system/secrets/bootstrap-token-{id}")).await {
                Ok(secret) => match secret_field(&secret, "expiration").and_then(|e| expiry_unix(&e)) {
                    Some(expires) => {
                        let created = expires.saturating_sub(crate::pki::TOKEN_TTL.as_secs());
                        BootstrapToken::save(&staging, &token, created).map_err(io(&staging))?;
                        format!("taken from {first}'s kubeadm configuration (id {id}), its age from its Secret")
                    }
                    None => format!("token {id} has no expiry in its Secret: the next apply makes a new one"),
                },
                Err(KubeError::Status { status: 404, .. }) => {
                    format!("token {id} has expired in the cluster: the next apply makes a new one")
                }
                Err(source) => return Err(StateOpError::Api { host: first.clone(), source }),
            }
        }
    };
    items.push(AdoptItem { what: "bootstrap token".into(), outcome: token_item, attention: false });

    let pki_dir = state.pki_dir();
    std::fs::rename(&staging, &pki_dir).map_err(|source| StateOpError::Io { path: pki_dir.clone(), source })?;
    let (pki, _) = ClusterPki::load_or_create(&pki_dir, &spec).map_err(io(&pki_dir))?;

    items.extend(adopt_db_passwords(loaded, state, &api).await?);

    crate::phases::write_admin_kubeconfig(state, inv, &pki).map_err(|e| StateOpError::Pki(e.0))?;
    items.push(AdoptItem {
        what: "admin kubeconfig".into(),
        outcome: format!("made from the adopted PKI: {}", state.kubeconfig_file().display()),
        attention: false,
    });
    let fingerprints = fingerprint::of_dir(&pki_dir).map_err(io(&pki_dir))?;
    let identity = Identity { fingerprints: fingerprints.clone(), cluster_uid: cluster_uid.clone() };
    identity.save(state).map_err(|e| StateOpError::Pki(e.to_string()))?;
    Ok(AdoptReport { state_dir: state.root().to_path_buf(), fingerprints, cluster_uid, items })
}

/// The shared files, verified identical on every master that holds them and present on all.
fn identical(held: &BTreeMap<String, BTreeMap<String, Vec<u8>>>) -> Result<BTreeMap<String, Vec<u8>>, StateOpError> {
    let mut shared = BTreeMap::new();
    let mut differences = Vec::new();
    for file in SHARED {
        let versions: BTreeMap<&String, &Vec<u8>> =
            held.iter().filter_map(|(m, files)| files.get(file).map(|c| (m, c))).collect();
        let Some(first) = versions.values().next() else { continue };
        let missing: Vec<&str> = held.keys().filter(|m| !versions.contains_key(m)).map(|m| m.as_str()).collect();
        let distinct: BTreeSet<&&Vec<u8>> = versions.values().collect();
        if !missing.is_empty() {
            differences.push(format!("{file} is missing on {}", missing.join(", ")));
        } else if distinct.len() > 1 {
            // Certificates by fingerprint; keys only by who differs (a key's hash is no one's business).
            let detail = if file.ends_with(".key") {
                versions.keys().map(|m| m.as_str()).collect::<Vec<_>>().join(", ")
            } else {
                versions
                    .iter()
                    .map(|(m, c)| format!("{m} {}", fingerprint::short(&fingerprint::fingerprint(file, c))))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            differences.push(format!("{file} differs between {detail}"));
        } else {
            shared.insert(file.to_string(), (*first).clone());
        }
    }
    if differences.is_empty() { Ok(shared) } else { Err(StateOpError::Differ(differences.join("; "))) }
}

/// The token of `bootstrapTokens[0]` in a kubeadm InitConfiguration, validated.
fn token_in_config(text: &str) -> Option<String> {
    text.lines().find_map(|l| {
        let rest = l.trim().trim_start_matches("- ").strip_prefix("token:")?;
        let t = rest.trim().trim_matches('"').trim_matches('\'');
        t.parse::<BootstrapToken>().ok().map(|_| t.to_string())
    })
}

/// A Secret's `data[key]`, decoded.
fn secret_field(secret: &serde_json::Value, key: &str) -> Option<String> {
    let b64 = secret["data"][key].as_str()?;
    let bytes = base64::engine::general_purpose::STANDARD.decode(b64).ok()?;
    String::from_utf8(bytes).ok()
}

/// RFC 3339 (as kubeadm writes a token's expiration) to Unix seconds.
fn expiry_unix(text: &str) -> Option<u64> {
    let t = time::OffsetDateTime::parse(text.trim(), &time::format_description::well_known::Rfc3339).ok()?;
    u64::try_from(t.unix_timestamp()).ok()
}

/// The passwords groundwork generated for database roles, from the handoff's `db` Secret.
async fn adopt_db_passwords<F, Fut>(
    loaded: &LoadedInventory,
    state: &StateDir,
    api: &F,
) -> Result<Vec<AdoptItem>, StateOpError>
where
    F: Fn(String) -> Fut,
    Fut: std::future::Future<Output = Result<serde_json::Value, KubeError>>,
{
    let inv = &loaded.inventory;
    let Some(db) = inv.database.as_ref() else { return Ok(vec![]) };
    // The roles whose password groundwork generates (owners always; users the inventory gives none).
    let mut generated: Vec<String> = db.databases.iter().map(|d| d.owner.clone()).collect();
    generated.extend(db.users.iter().filter(|u| u.password.is_none()).map(|u| u.name.clone()));
    generated.dedup();
    if generated.is_empty() {
        return Ok(vec![]);
    }
    let ns = &inv.handoff.namespace;
    let name = crate::handoff::DB_SECRET_NAME;
    let mut from_secret = BTreeMap::new();
    match api(format!("/api/v1/namespaces/{ns}/secrets/{name}")).await {
        Ok(secret) => {
            for (user, password) in [("username", "password"), ("flyway-username", "flyway-password")] {
                if let (Some(u), Some(p)) = (secret_field(&secret, user), secret_field(&secret, password)) {
                    from_secret.insert(u, p);
                }
            }
        }
        Err(KubeError::Status { status: 404, .. }) => {}
        Err(e) => tracing::warn!("state adopt: cannot read {ns}/{name}: {e}"),
    }
    let mut items = Vec::new();
    for role in generated {
        let (outcome, attention) = match from_secret.get(&role) {
            Some(p) => {
                secrets_store::keep_db_password(state, &role, p).map_err(|e| StateOpError::Pki(e.to_string()))?;
                (format!("taken from the Secret {ns}/{name} in the cluster"), false)
            }
            None => (
                format!(
                    "not recoverable (not in the Secret {ns}/{name}; PostgreSQL keeps only a verifier): the next \
                     apply would set a new password on the database host and the services using the old one \
                     would fail until the handoff is deployed again. Copy it from the old state's \
                     secrets/db-{role}, or give it in the inventory (database.users[].password)"
                ),
                true,
            ),
        };
        items.push(AdoptItem { what: format!("password of database role {role}"), outcome, attention });
    }
    Ok(items)
}

fn passphrase_ok(key: &BackupKey) -> Result<(), StateOpError> {
    if let BackupKey::Passphrase(p) = key {
        use age::secrecy::ExposeSecret;
        if p.expose_secret().is_empty() {
            return Err(ArchiveError::EmptyPassphrase.into());
        }
    }
    Ok(())
}

/// Writes the encrypted archive of the inventory's state directory.
pub fn backup(loaded: &LoadedInventory, out: &Path, key: &BackupKey) -> Result<ArchiveSummary, StateOpError> {
    passphrase_ok(key)?;
    let state = state_of(loaded);
    if !state.pki_dir().exists() {
        return Err(ArchiveError::NoState(state.root().to_path_buf()).into());
    }
    let _lock = lock(&state, "groundwork state backup")?;
    Ok(archive::backup(&state, &loaded.inventory.cluster.name, out, key)?)
}

/// Restores the inventory's state directory from an archive.
pub fn restore(
    loaded: &LoadedInventory,
    from: &Path,
    key: &RestoreKey,
    force: bool,
) -> Result<ArchiveSummary, StateOpError> {
    let state = state_of(loaded);
    if let Some(what) = archive::existing_content(&state)
        && !force
    {
        return Err(ArchiveError::StateExists { path: state.root().to_path_buf(), what }.into());
    }
    let _lock = lock(&state, "groundwork state restore")?;
    Ok(archive::restore(&state, &loaded.inventory.cluster.name, from, key, force)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    type Listing<'a> = &'a [(&'a str, &'a [(&'a str, &'a [u8])])];

    fn held(list: Listing<'_>) -> BTreeMap<String, BTreeMap<String, Vec<u8>>> {
        list.iter()
            .map(|(m, files)| (m.to_string(), files.iter().map(|(f, c)| (f.to_string(), c.to_vec())).collect()))
            .collect()
    }

    #[test]
    fn shared_files_must_be_identical_and_present_on_every_master() {
        let same =
            held(&[("m1", &[("ca.key", b"K"), ("ca.crt", b"C")]), ("m2", &[("ca.key", b"K"), ("ca.crt", b"C")])]);
        assert_eq!(identical(&same).unwrap().len(), 2);
        let differ = held(&[("m1", &[("ca.key", b"K1")]), ("m2", &[("ca.key", b"K2")])]);
        let err = identical(&differ).unwrap_err().to_string();
        assert!(err.contains("ca.key differs between m1, m2"), "{err}");
        assert!(!err.contains("K1") && !err.contains("K2"), "no key material: {err}");
        let missing = held(&[("m1", &[("sa.key", b"K")]), ("m2", &[])]);
        assert!(identical(&missing).unwrap_err().to_string().contains("sa.key is missing on m2"));
    }

    #[test]
    fn the_token_is_read_from_kubeadm_init_configuration() {
        let text =
            "kind: InitConfiguration\nbootstrapTokens:\n  - token: \"abcdef.0123456789abcdef\"\n    ttl: 24h0m0s\n";
        assert_eq!(token_in_config(text).as_deref(), Some("abcdef.0123456789abcdef"));
        assert_eq!(token_in_config("bootstrapTokens:\n  - token: \"nope\"\n"), None);
        assert_eq!(expiry_unix("2026-12-03T21:46:12Z"), Some(1_796_334_372));
        assert_eq!(expiry_unix("2026-12-03T22:46:12+01:00"), Some(1_796_334_372));
        assert_eq!(expiry_unix("tomorrow"), None);
    }
}
