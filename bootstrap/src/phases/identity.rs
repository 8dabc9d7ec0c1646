//! identity: before anything on a host changes, the masters' CA and service-account key
//! fingerprints are compared with the state directory's. A state without PKI facing masters that
//! hold one (a fresh checkout, a second operator's machine), a state holding another cluster's
//! PKI, or masters that disagree among themselves stop the run (and the plan) with what was found
//! and how to go on. One command per master, read-only; the answer is computed once per run and
//! also guards the pki phase, whatever `--only` says.

use std::collections::BTreeMap;
use std::sync::Arc;

use base64::Engine;
use futures::FutureExt;
use futures::future::BoxFuture;

use super::{Change, Cluster, Node, StepError};
use crate::pki::fingerprint::{self, IDENTITY_FILES};
use crate::state::identity::{Agreement, Fingerprints, Identity, Mismatch, compare};
use crate::transport::NodeSession;

pub const NAME: &str = "identity";

/// The largest identity file read from a master (a CA certificate is about 600 bytes).
const MAX_FILE: usize = 64 * 1024;

/// What the check found, computed once per run.
#[derive(Debug)]
pub struct Checked {
    pub agreement: Agreement,
    pub masters: BTreeMap<String, Fingerprints>,
}

/// Why the run must stop, with what was found.
#[derive(Debug)]
pub struct Refusal {
    mismatch: Mismatch,
    state: Option<Fingerprints>,
    masters: BTreeMap<String, Fingerprints>,
    state_dir: std::path::PathBuf,
}

impl Refusal {
    /// The refusal as one master's report line (its own findings), or for the whole cluster.
    pub fn explain(&self, only: Option<&str>) -> String {
        self.mismatch.explain(
            &self.state_dir,
            std::path::Path::new("INVENTORY"),
            self.state.as_ref(),
            &self.masters,
            only,
            fingerprint::short,
        )
    }
}

pub type CheckResult = Result<Arc<Checked>, Arc<Refusal>>;

/// The check's result for this run (cached): an error is the refusal.
pub async fn ensure(cluster: &Cluster) -> Result<Arc<Checked>, StepError> {
    checked(cluster).await.map_err(|r| StepError(r.explain(None), super::ErrorKind::Refused))
}

async fn checked(cluster: &Cluster) -> CheckResult {
    let cell = cluster.shared.lock().await.identity.clone();
    cell.get_or_init(|| async {
        check(cluster).await.map_err(|e| {
            // Reading failed: no comparison, so no refusal text of its own.
            Arc::new(Refusal {
                mismatch: Mismatch::Unreadable(e.0),
                state: None,
                masters: BTreeMap::new(),
                state_dir: cluster.state.root().to_path_buf(),
            })
        })?
    })
    .await
    .clone()
}

async fn check(cluster: &Cluster) -> Result<CheckResult, StepError> {
    let masters: Vec<_> = cluster.masters().into_iter().filter_map(|m| cluster.nodes.get(&m.name)).collect();
    let read = futures::future::join_all(masters.iter().map(|n| read_fingerprints(&n.session))).await;
    let mut found = BTreeMap::new();
    for (node, result) in masters.iter().zip(read) {
        let fps =
            result.map_err(|e| StepError::new(format!("{}: cannot read its PKI to compare: {e}", node.name())))?;
        found.insert(node.name().to_string(), fps);
    }
    let state = state_fingerprints(cluster)?;
    Ok(match compare(state.as_ref(), &found) {
        Ok(agreement) => Ok(Arc::new(Checked { agreement, masters: found })),
        Err(mismatch) => {
            Err(Arc::new(Refusal { mismatch, state, masters: found, state_dir: cluster.state.root().to_path_buf() }))
        }
    })
}

/// The state's fingerprints, or None when it holds no PKI (no cluster CA certificate).
fn state_fingerprints(cluster: &Cluster) -> Result<Option<Fingerprints>, StepError> {
    let dir = cluster.state.pki_dir();
    if !dir.join(crate::pki::paths::CA_CRT).exists() {
        return Ok(None);
    }
    fingerprint::of_dir(&dir).map(Some).map_err(|e| StepError::new(e.to_string()))
}

/// The shell command that prints `NAME BASE64` for each of `names` (relative to `dir`) that exists.
fn read_command(dir: &str, names: &[&str]) -> String {
    let files = names.iter().map(|n| crate::transport::shell_quote(n)).collect::<Vec<_>>().join(" ");
    format!(
        "cd {} 2>/dev/null || exit 0; for f in {files}; do \
         if [ -f \"$f\" ]; then printf '%s ' \"$f\"; head -c {MAX_FILE} \"$f\" | base64 -w0; echo; fi; done",
        crate::transport::shell_quote(dir)
    )
}

/// The files of `names` (relative to `dir`) a host holds, by name: one command, read-only. The
/// content may be key material: callers never print it.
pub async fn read_files(
    session: &NodeSession,
    dir: &str,
    names: &[&str],
) -> Result<BTreeMap<String, Vec<u8>>, StepError> {
    let out = session.exec_privileged(&read_command(dir, names), None).await?;
    if !out.success() {
        return Err(StepError::new(super::node::tail(&out.stderr_text(), 3)));
    }
    parse_listing(&out.stdout_text(), names)
}

/// One master's identity fingerprints (empty: it holds no PKI).
pub async fn read_fingerprints(session: &NodeSession) -> Result<Fingerprints, StepError> {
    let files = read_files(session, crate::phases::pki::REMOTE_DIR, &IDENTITY_FILES).await?;
    Ok(files.iter().map(|(name, bytes)| (name.clone(), fingerprint::fingerprint(name, bytes))).collect())
}

fn parse_listing(text: &str, names: &[&str]) -> Result<BTreeMap<String, Vec<u8>>, StepError> {
    let mut found = BTreeMap::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let (name, b64) = line.split_once(' ').unwrap_or((line, ""));
        if !names.contains(&name) {
            return Err(StepError::new("unexpected answer while reading files"));
        }
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(b64.trim())
            .map_err(|_| StepError::new(format!("{name}: unreadable answer")))?;
        found.insert(name.to_string(), bytes);
    }
    Ok(found)
}

/// Records the state's fingerprints (and the cluster's uid, once known) in `identity.json`.
pub fn record(cluster: &Cluster, uid: Option<String>) -> Result<(), StepError> {
    let Some(fingerprints) = state_fingerprints(cluster)? else { return Ok(()) };
    let old = Identity::load(&cluster.state).ok().flatten().unwrap_or_default();
    // A uid recorded for these fingerprints stays; a PKI that changed starts over.
    let cluster_uid = uid.or(if old.fingerprints == fingerprints { old.cluster_uid } else { None });
    let identity = Identity { fingerprints, cluster_uid };
    if identity.save(&cluster.state).map_err(|e| StepError::new(e.to_string()))? {
        tracing::info!("identity: recorded in {}", Identity::file(&cluster.state).display());
    }
    Ok(())
}

pub fn run<'a>(cluster: &'a Cluster, node: &'a Node) -> BoxFuture<'a, Result<Vec<Change>, StepError>> {
    async move {
        let checked =
            checked(cluster).await.map_err(|r| StepError(r.explain(Some(node.name())), super::ErrorKind::Refused))?;
        let first = cluster.first_master().map(|m| m.name.as_str()) == Some(node.name());
        if cluster.dry_run || !first || !matches!(checked.agreement, Agreement::Same { .. }) {
            return Ok(vec![]);
        }
        // The uid is asked of the API server once, then kept: a no-op run stays one command per master.
        let known = Identity::load(&cluster.state).ok().flatten().is_some_and(|i| i.cluster_uid.is_some());
        let uid = if known { None } else { cluster_uid(cluster, node).await };
        record(cluster, uid)?;
        Ok(vec![])
    }
    .boxed()
}

/// The `kube-system` namespace's uid, if the API server answers through `via`.
async fn cluster_uid(cluster: &Cluster, via: &Node) -> Option<String> {
    let pki = cluster.pki().await.ok()?;
    let client = crate::kube::KubeClient::admin(&pki, cluster.api_port()).ok()?;
    match client.get_json(&via.session, "/api/v1/namespaces/kube-system").await {
        Ok(ns) => ns["metadata"]["uid"].as_str().map(str::to_string),
        Err(e) => {
            tracing::debug!("identity: no cluster uid yet: {e}");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_listing_gives_fingerprints_and_garbage_is_refused() {
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        let text = format!("ca.crt {}\nsa.pub {}\n", b64("not pem"), b64("x"));
        let files = parse_listing(&text, &IDENTITY_FILES).unwrap();
        assert_eq!(files.len(), 2);
        assert_eq!(files["ca.crt"], b"not pem");
        assert!(fingerprint::fingerprint("ca.crt", &files["ca.crt"]).starts_with("sha256-raw:"));
        assert!(parse_listing("", &IDENTITY_FILES).unwrap().is_empty());
        assert!(parse_listing("../../etc/shadow AAAA", &IDENTITY_FILES).is_err());
        assert!(parse_listing("ca.crt !!!", &IDENTITY_FILES).is_err());
    }

    #[test]
    fn the_command_reads_only_public_files() {
        let cmd = read_command(crate::phases::pki::REMOTE_DIR, &IDENTITY_FILES);
        assert!(!cmd.contains(".key"), "{cmd}");
        for f in IDENTITY_FILES {
            assert!(cmd.contains(f));
        }
    }
}
