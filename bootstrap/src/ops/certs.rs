//! `groundwork certs check`: every certificate the cluster depends on, with its expiry. On each
//! master and worker: kubeadm's (`/etc/kubernetes/pki`, the client certificates embedded in the
//! kubeconfigs kubeadm writes) and the kubelet's; groundwork's own etcd certificates there too; on
//! this machine, the state's PKI (the CAs, the etcd members', the controller's admin certificate).
//! Only certificates are read, never a key (a kubelet's `-current.pem` holds both: its
//! certificate block alone leaves the host).
//!
//! It changes nothing, so it takes neither the lock nor the lease: it can run while an apply does.
//!
//! `groundwork certs renew` (lock and lease held): groundwork's own leaves are made anew in the
//! state (the old ones kept beside it), then one master at a time: they are put on the master,
//! `kubeadm certs renew all` renews kubeadm's (and the kubeconfigs it wrote), the etcd member
//! restarts and the cluster must be healthy, the control plane's static pods restart (their
//! manifests parked and brought back) and the API server must be ready, before the next master.
//! The CAs are not renewed (ten years; rotating a CA is another operation). Kubelets renew their
//! own client certificates (kubeadm turns rotation on).

use std::collections::BTreeMap;
use std::path::Path;

use serde::Serialize;
use x509_parser::prelude::{FromDer, X509Certificate};

use super::access::{Access, AccessError, Reach, sh};
use crate::inventory::LoadedInventory;
use crate::transport::TransportOptions;

/// What each node is asked for: every certificate file, then each kubeconfig's client
/// certificate (base64-decoded), each after a `==> PATH` line.
const COLLECT: &str = r#"for f in /etc/kubernetes/pki/*.crt /etc/kubernetes/pki/etcd/*.crt /var/lib/kubelet/pki/kubelet.crt /var/lib/kubelet/pki/kubelet-client-current.pem; do
  [ -f "$f" ] || continue; echo "==> $f"; sed -n '/-----BEGIN CERTIFICATE-----/,/-----END CERTIFICATE-----/p' "$f"
done
for f in /etc/kubernetes/admin.conf /etc/kubernetes/super-admin.conf /etc/kubernetes/controller-manager.conf /etc/kubernetes/scheduler.conf /etc/kubernetes/kubelet.conf; do
  [ -f "$f" ] || continue; d=$(sed -n 's/^ *client-certificate-data: *//p' "$f" | head -n 1); [ -n "$d" ] || continue
  echo "==> $f"; printf '%s' "$d" | base64 -d
done"#;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Health {
    Ok,
    /// Expires within the warning threshold.
    Warn,
    /// Expired, or expires within the failure threshold, or unreadable.
    Fail,
}

#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct CertInfo {
    /// A host, or `controller` for the state's PKI.
    pub host: String,
    pub path: String,
    pub subject: String,
    pub issuer: String,
    pub is_ca: bool,
    /// Unix time.
    pub not_after: i64,
    pub days_left: i64,
    pub health: Health,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct CertsReport {
    pub warn_days: i64,
    pub fail_days: i64,
    pub certificates: Vec<CertInfo>,
    /// Hosts that could not be reached, with why.
    pub unreachable: Vec<(String, String)>,
}

impl CertsReport {
    pub fn worst(&self) -> Health {
        let unreachable = if self.unreachable.is_empty() { Health::Ok } else { Health::Fail };
        self.certificates.iter().map(|c| c.health).max().unwrap_or(Health::Ok).max(unreachable)
    }
}

pub struct CheckOptions {
    pub transport: TransportOptions,
    pub warn_days: i64,
    pub fail_days: i64,
}

pub async fn check(loaded: &LoadedInventory, opts: CheckOptions) -> Result<CertsReport, AccessError> {
    let access = Access::open_read_only(loaded, opts.transport.clone(), Reach::Nodes).await?;
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let (mut certificates, unreachable) = node_certificates(&access, now, opts.warn_days, opts.fail_days).await;
    certificates.extend(state_certificates(&access.state.pki_dir(), now, opts.warn_days, opts.fail_days));
    access.close().await;
    Ok(CertsReport { warn_days: opts.warn_days, fail_days: opts.fail_days, certificates, unreachable })
}

/// Every certificate on the hosts `access` reached (judged at `now` against the thresholds, in
/// days), and the hosts not reached or that did not answer, with why.
pub async fn node_certificates(
    access: &Access,
    now: i64,
    warn_days: i64,
    fail_days: i64,
) -> (Vec<CertInfo>, Vec<(String, String)>) {
    let mut certificates = Vec::new();
    let hosts = access.hosts();
    let answers = futures::future::join_all(hosts.iter().map(|(_, s)| s.exec_privileged(COLLECT, None))).await;
    let mut unreachable = access.unreachable.clone();
    for ((t, _), answer) in hosts.iter().zip(answers) {
        match answer {
            Ok(out) => {
                for (path, pem) in split_listing(&out.stdout_text()) {
                    certificates.push(inspect(&t.name, &path, &pem, now, warn_days, fail_days));
                }
            }
            Err(e) => unreachable.push((t.name.clone(), super::apply::one_line(&e.to_string()))),
        }
    }
    (certificates, unreachable)
}

/// `==> PATH` sections, in order.
fn split_listing(text: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        if let Some(path) = line.strip_prefix("==> ") {
            out.push((path.trim().to_string(), String::new()));
        } else if let Some((_, pem)) = out.last_mut() {
            pem.push_str(line);
            pem.push('\n');
        }
    }
    out
}

/// Every `.crt` of the state's PKI in `dir` (keys are not opened), as host `controller`.
pub fn state_certificates(dir: &Path, now: i64, warn: i64, fail: i64) -> Vec<CertInfo> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = entry.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|e| e == "crt") {
                files.push(p);
            }
        }
    }
    files.sort();
    files
        .iter()
        .map(|p| {
            let pem = std::fs::read_to_string(p).unwrap_or_default();
            let shown = p.strip_prefix(dir).map(|r| format!("state pki/{}", r.display())).unwrap_or_default();
            inspect("controller", &shown, &pem, now, warn, fail)
        })
        .collect()
}

fn common_name(name: &x509_parser::x509::X509Name<'_>) -> String {
    let cn: Vec<&str> = name.iter_common_name().filter_map(|a| a.as_str().ok()).collect();
    if cn.is_empty() { name.to_string() } else { cn.join(",") }
}

/// The first certificate of `pem`, judged at `now` against the thresholds (in days).
pub fn inspect(host: &str, path: &str, pem: &str, now: i64, warn: i64, fail: i64) -> CertInfo {
    let broken = |problem: String| CertInfo {
        host: host.into(),
        path: path.into(),
        subject: String::new(),
        issuer: String::new(),
        is_ca: false,
        not_after: 0,
        days_left: 0,
        health: Health::Fail,
        problem: Some(problem),
    };
    let der = match crate::pki::certificate_der(pem) {
        Ok(d) => d,
        Err(e) => return broken(format!("unreadable: {e}")),
    };
    let cert = match X509Certificate::from_der(&der) {
        Ok((_, c)) => c,
        Err(e) => return broken(format!("unreadable: {e}")),
    };
    let not_after = cert.validity().not_after.timestamp();
    let days_left = (not_after - now).div_euclid(86_400);
    let health = if not_after <= now || days_left < fail {
        Health::Fail
    } else if days_left < warn {
        Health::Warn
    } else {
        Health::Ok
    };
    let problem = (not_after <= now).then(|| "expired".to_string());
    CertInfo {
        host: host.into(),
        path: path.into(),
        subject: common_name(cert.subject()),
        issuer: common_name(cert.issuer()),
        is_ca: cert.is_ca(),
        not_after,
        days_left,
        health,
        problem,
    }
}

/// Per host, how many certificates and the soonest expiry (for a summary line).
pub fn soonest_by_host(report: &CertsReport) -> BTreeMap<String, (usize, i64)> {
    let mut by: BTreeMap<String, (usize, i64)> = BTreeMap::new();
    for c in &report.certificates {
        let e = by.entry(c.host.clone()).or_insert((0, i64::MAX));
        e.0 += 1;
        e.1 = e.1.min(c.days_left);
    }
    by
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pem_valid_for(days: i64) -> String {
        let mut params = rcgen::CertificateParams::new(vec!["x".into()]).unwrap();
        params.distinguished_name.push(rcgen::DnType::CommonName, "kube-apiserver");
        let now = time::OffsetDateTime::now_utc();
        params.not_before = now - time::Duration::days(400);
        params.not_after = now + time::Duration::days(days) + time::Duration::hours(1);
        let key = rcgen::KeyPair::generate().unwrap();
        params.self_signed(&key).unwrap().pem()
    }

    #[test]
    fn thresholds_sort_certificates_into_ok_warn_and_fail() {
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let judge = |days| inspect("m1", "/p", &pem_valid_for(days), now, 30, 7);
        let ok = judge(200);
        assert_eq!((ok.health, ok.days_left, ok.subject.as_str()), (Health::Ok, 200, "kube-apiserver"));
        assert_eq!(judge(29).health, Health::Warn);
        assert_eq!(judge(6).health, Health::Fail);
        let expired = judge(-2);
        assert_eq!((expired.health, expired.problem.as_deref()), (Health::Fail, Some("expired")));
        let junk = inspect("m1", "/p", "not a certificate", now, 30, 7);
        assert_eq!(junk.health, Health::Fail);
        assert!(junk.problem.unwrap().starts_with("unreadable"));
    }

    #[test]
    fn the_listing_splits_into_files_and_a_key_block_never_passes() {
        let a = pem_valid_for(10);
        let listing = format!("==> /etc/kubernetes/pki/ca.crt\n{a}==> /etc/kubernetes/admin.conf\n{a}");
        let parts = split_listing(&listing);
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[1].0, "/etc/kubernetes/admin.conf");
        assert!(parts[0].1.contains("BEGIN CERTIFICATE"));
        // The host side extracts certificate blocks only: a PEM key in the same file is not printed.
        assert!(COLLECT.contains("/-----BEGIN CERTIFICATE-----/,/-----END CERTIFICATE-----/p"));
    }

    #[test]
    fn the_worst_health_decides_and_an_unreachable_host_fails() {
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let mut r = CertsReport {
            warn_days: 30,
            fail_days: 7,
            certificates: vec![inspect("m1", "/a", &pem_valid_for(100), now, 30, 7)],
            unreachable: vec![],
        };
        assert_eq!(r.worst(), Health::Ok);
        r.certificates.push(inspect("m1", "/b", &pem_valid_for(20), now, 30, 7));
        assert_eq!(r.worst(), Health::Warn);
        r.unreachable.push(("w1".into(), "down".into()));
        assert_eq!(r.worst(), Health::Fail);
    }
}

// ------------------------------------------------------------------------------------ renew

#[derive(Debug, thiserror::Error)]
pub enum RenewError {
    #[error(transparent)]
    Access(#[from] AccessError),
    #[error("the state's PKI: {0}")]
    Pki(#[from] crate::pki::PkiError),
    #[error(transparent)]
    Step(#[from] super::access::HostStepError),
    #[error(
        "every master takes part in a renewal, and {0} cannot be reached: bring it back and run it again; \
         nothing was changed"
    )]
    MastersUnreachable(String),
    #[error("{}: {source}", path.display())]
    Io { path: std::path::PathBuf, source: std::io::Error },
}

#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct RenewReport {
    /// groundwork's leaves made anew in the state.
    pub renewed_in_state: Vec<String>,
    /// Where the previous ones were moved.
    pub previous_kept_in: std::path::PathBuf,
    /// Per master, in the order they were done: what was done.
    pub masters: Vec<(String, Vec<String>)>,
    pub took_ms: u64,
}

/// What `certs renew` would do, after its check that every master answers; nothing changes and no
/// lock is taken (`certs check` shows the expiries it would move).
pub async fn renew_plan(loaded: &LoadedInventory, transport: TransportOptions) -> Result<Vec<String>, RenewError> {
    let access = Access::open_read_only(loaded, transport, Reach::Masters).await?;
    let unreachable = access.unreachable_masters(loaded);
    let masters: Vec<String> = access.masters().iter().map(|(t, _)| t.name.clone()).collect();
    access.close().await;
    if !unreachable.is_empty() {
        return Err(RenewError::MastersUnreachable(unreachable.join(", ")));
    }
    let external = loaded.inventory.cluster.etcd == crate::inventory::EtcdMode::External;
    let mut steps = vec![
        "make groundwork's leaf certificates anew in the state directory (the etcd members' server and peer \
         certificates, the etcd clients, the controller's admin certificate); the previous ones moved to \
         pki-renewed-STAMP/; the admin kubeconfig rewritten; the CAs unchanged"
            .to_string(),
    ];
    for m in masters {
        steps.push(format!(
            "{m}: put them in place, `kubeadm certs renew all`{}, restart the control plane's static pods and wait \
             for the API server",
            if external { ", restart etcd and wait for every member healthy" } else { "" }
        ));
    }
    Ok(steps)
}

pub async fn renew(
    loaded: &LoadedInventory,
    transport: TransportOptions,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<RenewReport, RenewError> {
    let started = std::time::Instant::now();
    let access = Access::open(loaded, transport, Reach::Masters, "groundwork certs renew").await?;
    let unreachable = access.unreachable_masters(loaded);
    if !unreachable.is_empty() {
        access.close().await;
        return Err(RenewError::MastersUnreachable(unreachable.join(", ")));
    }
    let result = renew_with(loaded, &access, progress).await;
    access.close().await;
    result.map(|(renewed_in_state, previous_kept_in, masters)| RenewReport {
        renewed_in_state,
        previous_kept_in,
        masters,
        took_ms: started.elapsed().as_millis() as u64,
    })
}

type Renewed = (Vec<String>, std::path::PathBuf, Vec<(String, Vec<String>)>);

async fn renew_with(
    loaded: &LoadedInventory,
    access: &Access,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<Renewed, RenewError> {
    use std::time::Duration;
    let inv = &loaded.inventory;
    let external = inv.cluster.etcd == crate::inventory::EtcdMode::External;
    let stamp = crate::etcd::snapshot::stamp(time::OffsetDateTime::now_utc());
    let keep = access.state.root().join(format!("pki-renewed-{stamp}"));
    let spec = crate::phases::pki::spec(inv)
        .map_err(|e| crate::pki::PkiError::Invalid { what: "inventory".into(), reason: e.0 })?;
    progress("groundwork's certificates made anew in the state directory");
    let (pki, created) = crate::pki::ClusterPki::renew_leaves(&access.state.pki_dir(), &spec, &keep)?;
    crate::phases::write_admin_kubeconfig(&access.state, inv, &pki)
        .map_err(|e| crate::pki::PkiError::Invalid { what: "admin kubeconfig".into(), reason: e.0 })?;
    let port = inv.cluster.control_plane_endpoint.port;
    let mut done = Vec::new();
    for (t, s) in access.masters() {
        progress(&format!("{}: certificates, then etcd and the control plane restarted", t.name));
        let mut steps = Vec::new();
        let mut files = pki.files_for_master(&t.name);
        if external {
            files.extend(pki.files_for_etcd_member(&t.name));
        }
        // Only the leaves changed; the CAs and the service-account key are written as they are.
        for f in files {
            let path = format!("/etc/kubernetes/pki/{}", f.path);
            let write = format!(
                "umask 077 && mkdir -p \"$(dirname {path})\" && cat > {path}.tmp && chmod {:o} {path}.tmp && mv {path}.tmp {path}",
                f.mode
            );
            let out = s.exec_privileged(&write, Some(&f.content)).await.map_err(|e| super::access::HostStepError {
                host: t.name.clone(),
                what: format!("write {path}"),
                message: e.to_string(),
            })?;
            if !out.success() {
                return Err(super::access::HostStepError {
                    host: t.name.clone(),
                    what: format!("write {path}"),
                    message: out.stderr_text(),
                }
                .into());
            }
        }
        steps.push("groundwork's certificates put in place".to_string());
        sh(s, "kubeadm certs renew all", "/usr/local/bin/kubeadm certs renew all", Duration::from_secs(300)).await?;
        steps.push("kubeadm certs renew all".into());
        if external {
            sh(s, "restart etcd", "systemctl restart etcd", Duration::from_secs(120)).await?;
            super::etcd::wait_members_healthy(s, access.masters().len(), Duration::from_secs(120)).await.map_err(
                |message| super::access::HostStepError { host: t.name.clone(), what: "etcd healthy".into(), message },
            )?;
            steps.push("etcd restarted, every member healthy".into());
        }
        let (park, unpark) = (super::static_pods::park(), super::static_pods::unpark());
        let restart = format!(
            "{park}; for i in $(seq 1 60); do pgrep -x kube-apiserver >/dev/null || break; sleep 1; done; \
             {unpark}; for i in $(seq 1 90); do \
               /usr/local/bin/kubectl --kubeconfig /etc/kubernetes/admin.conf --server https://127.0.0.1:{port} \
                 --request-timeout=3s get --raw /readyz >/dev/null 2>&1 && exit 0; sleep 2; done; \
             echo 'the API server is not ready 180 s after its restart' >&2; exit 1"
        );
        sh(s, "restart the control plane", &restart, Duration::from_secs(300)).await?;
        steps.push("control plane restarted, the API server ready".into());
        done.push((t.name.clone(), steps));
    }
    Ok((created, keep, done))
}
