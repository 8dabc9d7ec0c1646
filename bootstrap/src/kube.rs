//! The API server, asked by the controller itself: HTTPS through an SSH tunnel (a `direct-tcpip`
//! channel on a node's own SSH session to that node's endpoint, 127.0.0.1:6443), verified against
//! the cluster CA and authenticated with a client certificate. No kubectl on the controller, and
//! the API server never has to be reachable from outside the datacenter segment.
//!
//! reqwest cannot run over a stream it did not open, so this is hyper's HTTP/1.1 client over
//! tokio-rustls directly; each request opens its own tunnel (requests are rare and small).
//! A request has a deadline, its body a size limit, and every string in the answer is cleaned of
//! control characters before the controller uses it (see `crate::sanitize`).

use std::time::Duration;

use std::sync::Arc;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::{self, ClientConfig, RootCertStore};

use crate::transport::NodeSession;

#[derive(Debug, thiserror::Error)]
pub enum KubeError {
    #[error("{0}")]
    Tls(String),
    #[error("{host}: no tunnel to the API server at {endpoint}: {message}")]
    Tunnel { host: String, endpoint: String, message: String },
    #[error("API server {path}: {message}")]
    Http { path: String, message: String },
    #[error("API server {path}: HTTP {status}: {body}")]
    Status { path: String, status: u16, body: String },
    #[error("API server {path}: the answer is larger than {} MiB; refused", limit / (1024 * 1024))]
    TooLarge { path: String, limit: usize },
    #[error("API server {path}: no answer within {seconds} s")]
    Timeout { path: String, seconds: u64 },
}

/// The largest answer read from the API server (a node list of a few hundred nodes is well under).
pub const BODY_LIMIT: usize = 32 * 1024 * 1024;
/// How long one request may take, tunnel included.
const REQUEST_DEADLINE: Duration = Duration::from_secs(30);

/// What the controller needs to talk to the API server: the cluster CA and a client certificate.
pub struct KubeClient {
    tls: TlsConnector,
    host: String,
    port: u16,
}

impl KubeClient {
    /// A client for the API server at `host:port` as seen from the node it tunnels through.
    /// The controller's admin client of the cluster whose PKI this is, for the API server on a
    /// node's 127.0.0.1:`port` (reached through that node's SSH session).
    pub fn admin(pki: &crate::pki::ClusterPki, port: u16) -> Result<KubeClient, KubeError> {
        let admin = pki.admin();
        KubeClient::new(pki.ca_cert_pem(), admin.cert_pem(), admin.key().expose_secret(), "127.0.0.1", port)
    }

    /// The same client from the state's PKI files as they are (`pki_dir`: the state directory's
    /// `pki/`): nothing is made or renewed, for a command that only reads.
    pub fn admin_read_only(pki_dir: &std::path::Path, port: u16) -> Result<KubeClient, KubeError> {
        use crate::pki::paths;
        let read = |name: &str| {
            let path = pki_dir.join(name);
            std::fs::read_to_string(&path)
                .map(zeroize::Zeroizing::new)
                .map_err(|e| KubeError::Tls(format!("{}: {e}", path.display())))
        };
        let (ca, cert, key) = (read(paths::CA_CRT)?, read(paths::ADMIN_CRT)?, read(paths::ADMIN_KEY)?);
        KubeClient::new(&ca, &cert, &key, "127.0.0.1", port)
    }

    pub fn new(ca_pem: &str, cert_pem: &str, key_pem: &str, host: &str, port: u16) -> Result<KubeClient, KubeError> {
        let bad = |what: &str, e: &dyn std::fmt::Display| KubeError::Tls(format!("{what}: {e}"));
        let mut roots = RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
            roots.add(cert.map_err(|e| bad("cluster CA", &e))?).map_err(|e| bad("cluster CA", &e))?;
        }
        let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert_pem.as_bytes())
            .collect::<Result<_, _>>()
            .map_err(|e| bad("client certificate", &e))?;
        let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).map_err(|e| bad("client key", &e))?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| bad("TLS", &e))?
            .with_root_certificates(roots)
            .with_client_auth_cert(chain, key)
            .map_err(|e| bad("client certificate", &e))?;
        Ok(KubeClient { tls: TlsConnector::from(Arc::new(config)), host: host.to_string(), port })
    }

    /// GET `path` through a tunnel on `via`; the body as JSON, its strings cleaned.
    pub async fn get_json(&self, via: &NodeSession, path: &str) -> Result<serde_json::Value, KubeError> {
        self.request(via, hyper::Method::GET, path, None).await
    }

    /// Server-side apply of `object` at `path` (the object's own URL) as field manager
    /// `groundwork`, taking over fields another manager set: created or brought to `object`.
    pub async fn apply(
        &self,
        via: &NodeSession,
        path: &str,
        object: &serde_json::Value,
    ) -> Result<serde_json::Value, KubeError> {
        let url = format!("{path}?fieldManager=groundwork&force=true");
        let body = serde_json::to_vec(object).expect("JSON values serialise");
        // JSON is YAML: the apply-patch content type takes it as it is.
        self.request(via, hyper::Method::PATCH, &url, Some(("application/apply-patch+yaml", body))).await
    }

    /// DELETE `path`; whether it existed (a 404 is "already gone", not an error).
    pub async fn delete(&self, via: &NodeSession, path: &str) -> Result<bool, KubeError> {
        match self.request(via, hyper::Method::DELETE, path, None).await {
            Ok(_) => Ok(true),
            Err(KubeError::Status { status: 404, .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    async fn request(
        &self,
        via: &NodeSession,
        method: hyper::Method,
        path: &str,
        body: Option<(&str, Vec<u8>)>,
    ) -> Result<serde_json::Value, KubeError> {
        match tokio::time::timeout(REQUEST_DEADLINE, self.request_now(via, method, path, body)).await {
            Ok(r) => r,
            Err(_) => Err(KubeError::Timeout { path: path.to_string(), seconds: REQUEST_DEADLINE.as_secs() }),
        }
    }

    async fn request_now(
        &self,
        via: &NodeSession,
        method: hyper::Method,
        path: &str,
        body: Option<(&str, Vec<u8>)>,
    ) -> Result<serde_json::Value, KubeError> {
        let http = |message: String| KubeError::Http { path: path.to_string(), message };
        let stream = via.forward(&self.host, self.port).await.map_err(|e| KubeError::Tunnel {
            host: via.target.name.clone(),
            endpoint: format!("{}:{}", self.host, self.port),
            message: e.to_string(),
        })?;
        let name = ServerName::try_from(self.host.clone()).map_err(|e| KubeError::Tls(e.to_string()))?;
        let tls = self.tls.connect(name, stream).await.map_err(|e| http(format!("TLS: {e}")))?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tls))
            .await
            .map_err(|e| http(e.to_string()))?;
        let driver = tokio::spawn(conn);
        let mut request = hyper::Request::builder()
            .method(method)
            .uri(path)
            .header(hyper::header::HOST, format!("{}:{}", self.host, self.port))
            .header(hyper::header::ACCEPT, "application/json");
        let content = match body {
            Some((content_type, bytes)) => {
                request = request.header(hyper::header::CONTENT_TYPE, content_type);
                Bytes::from(bytes)
            }
            None => Bytes::new(),
        };
        let request = request.body(Full::new(content)).map_err(|e| http(e.to_string()))?;
        let response = sender.send_request(request).await.map_err(|e| http(e.to_string()))?;
        let status = response.status().as_u16();
        let limited = http_body_util::Limited::new(response.into_body(), BODY_LIMIT);
        let body = limited.collect().await;
        driver.abort();
        let body = match body {
            Ok(b) => b.to_bytes(),
            Err(e) if e.is::<http_body_util::LengthLimitError>() => {
                return Err(KubeError::TooLarge { path: path.to_string(), limit: BODY_LIMIT });
            }
            Err(e) => return Err(http(e.to_string())),
        };
        if !(200..300).contains(&status) {
            let body = crate::sanitize::line(&String::from_utf8_lossy(&body).chars().take(300).collect::<String>());
            return Err(KubeError::Status { path: path.to_string(), status, body });
        }
        let mut value: serde_json::Value = serde_json::from_slice(&body).map_err(|e| http(format!("not JSON: {e}")))?;
        crate::sanitize::json(&mut value);
        Ok(value)
    }
}

/// A node as the API server reports it: Ready or not, its pod CIDR, its kubelet's version,
/// whether it is cordoned and which annotations it carries.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NodeStatus {
    pub name: String,
    pub ready: bool,
    pub pod_cidr: Option<String>,
    pub kubelet_version: Option<String>,
    pub unschedulable: bool,
    pub annotations: std::collections::BTreeMap<String, String>,
    /// `key:effect` of every taint.
    pub taints: Vec<String>,
}

/// Reads one node object.
pub fn node_status(n: &serde_json::Value) -> NodeStatus {
    NodeStatus {
        name: n["metadata"]["name"].as_str().unwrap_or_default().to_string(),
        ready: n["status"]["conditions"]
            .as_array()
            .is_some_and(|cs| cs.iter().any(|c| c["type"] == "Ready" && c["status"] == "True")),
        pod_cidr: n["spec"]["podCIDR"].as_str().map(str::to_string),
        kubelet_version: n["status"]["nodeInfo"]["kubeletVersion"].as_str().map(str::to_string),
        unschedulable: n["spec"]["unschedulable"].as_bool().unwrap_or(false),
        annotations: n["metadata"]["annotations"]
            .as_object()
            .map(|a| a.iter().filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string()))).collect())
            .unwrap_or_default(),
        taints: n["spec"]["taints"]
            .as_array()
            .map(|ts| {
                ts.iter()
                    .map(|t| {
                        format!(
                            "{}:{}",
                            t["key"].as_str().unwrap_or_default(),
                            t["effect"].as_str().unwrap_or_default()
                        )
                    })
                    .collect()
            })
            .unwrap_or_default(),
    }
}

/// Reads `GET /api/v1/nodes`.
pub fn node_statuses(list: &serde_json::Value) -> Vec<NodeStatus> {
    list["items"].as_array().map(|items| items.iter().map(node_status).collect()).unwrap_or_default()
}

/// A PersistentVolume as the API server reports it: size, phase, the claim bound (or pre-bound)
/// to it, and what backs it.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, schemars::JsonSchema)]
pub struct VolumeStatus {
    pub name: String,
    pub capacity: Option<String>,
    /// `Available`, `Bound`, `Released`, `Failed`.
    pub phase: Option<String>,
    /// `namespace/name` of its claim.
    pub claim: Option<String>,
    pub storage_class: Option<String>,
    /// `iscsi IQN lun N` or `nfs SERVER:PATH` (or the source's kind).
    pub source: Option<String>,
}

/// Reads `GET /api/v1/persistentvolumes`.
pub fn volume_statuses(list: &serde_json::Value) -> Vec<VolumeStatus> {
    let s = |v: &serde_json::Value| v.as_str().map(str::to_string);
    let items = list["items"].as_array().map(Vec::as_slice).unwrap_or_default();
    items
        .iter()
        .map(|pv| {
            let spec = &pv["spec"];
            let claim = &spec["claimRef"];
            let source = if spec["iscsi"].is_object() {
                Some(format!(
                    "iscsi {} lun {}",
                    spec["iscsi"]["iqn"].as_str().unwrap_or("?"),
                    spec["iscsi"]["lun"].as_i64().unwrap_or(0)
                ))
            } else if spec["nfs"].is_object() {
                Some(format!(
                    "nfs {}:{}",
                    spec["nfs"]["server"].as_str().unwrap_or("?"),
                    spec["nfs"]["path"].as_str().unwrap_or("?")
                ))
            } else {
                ["local", "hostPath", "csi"].iter().find(|k| spec[**k].is_object()).map(|k| k.to_string())
            };
            VolumeStatus {
                name: s(&pv["metadata"]["name"]).unwrap_or_default(),
                capacity: s(&spec["capacity"]["storage"]),
                phase: s(&pv["status"]["phase"]),
                claim: claim["name"]
                    .as_str()
                    .map(|n| format!("{}/{n}", claim["namespace"].as_str().unwrap_or("default"))),
                storage_class: s(&spec["storageClassName"]),
                source,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_list_gives_readiness_and_pod_cidrs() {
        let list = serde_json::json!({"items": [
            {"metadata": {"name": "m1", "annotations": {"a": "b"}}, "spec": {"podCIDR": "10.244.0.0/24", "unschedulable": true,
                "taints": [{"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}]},
             "status": {"conditions": [{"type": "MemoryPressure", "status": "False"}, {"type": "Ready", "status": "True"}],
                        "nodeInfo": {"kubeletVersion": "v1.33.0"}}},
            {"metadata": {"name": "w1"}, "spec": {}, "status": {"conditions": [{"type": "Ready", "status": "False"}]}},
        ]});
        assert_eq!(
            node_statuses(&list),
            vec![
                NodeStatus {
                    name: "m1".into(),
                    ready: true,
                    pod_cidr: Some("10.244.0.0/24".into()),
                    kubelet_version: Some("v1.33.0".into()),
                    unschedulable: true,
                    annotations: [("a".to_string(), "b".to_string())].into(),
                    taints: vec!["node-role.kubernetes.io/control-plane:NoSchedule".into()],
                },
                NodeStatus { name: "w1".into(), ready: false, ..Default::default() },
            ]
        );
        assert!(node_statuses(&serde_json::json!({})).is_empty());
    }

    #[test]
    fn volume_list_gives_sizes_claims_and_sources() {
        let list = serde_json::json!({"items": [
            {"metadata": {"name": "kafka-0"}, "spec": {"capacity": {"storage": "50Gi"}, "storageClassName": "gw",
                "claimRef": {"namespace": "egov", "name": "data-kafka-0"},
                "iscsi": {"iqn": "iqn.2024-01.x:kafka-0", "lun": 1, "targetPortal": "10.0.0.1:3260"}},
             "status": {"phase": "Bound"}},
            {"metadata": {"name": "filestore-0"}, "spec": {"nfs": {"server": "10.0.0.1", "path": "/srv/nfs/f"}},
             "status": {"phase": "Available"}},
        ]});
        let v = volume_statuses(&list);
        assert_eq!(v[0].claim.as_deref(), Some("egov/data-kafka-0"));
        assert_eq!(v[0].source.as_deref(), Some("iscsi iqn.2024-01.x:kafka-0 lun 1"));
        assert_eq!((v[0].capacity.as_deref(), v[0].phase.as_deref()), (Some("50Gi"), Some("Bound")));
        assert_eq!((v[1].claim.as_deref(), v[1].source.as_deref()), (None, Some("nfs 10.0.0.1:/srv/nfs/f")));
        assert!(volume_statuses(&serde_json::json!({})).is_empty());
    }
}
