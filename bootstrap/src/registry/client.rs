//! The distribution API (OCI distribution spec), spoken by the controller through an SSH tunnel
//! to the registry host, verified against the cluster CA, with HTTP basic credentials. As in
//! `crate::kube`, this is hyper's HTTP/1.1 client over tokio-rustls on a `direct-tcpip` channel
//! (reqwest cannot run over a stream it did not open); each request opens its own tunnel. Blobs
//! are streamed from their files, so memory stays flat however large a layer is.

use std::sync::Arc;
use std::time::Duration;

use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Empty, Full, StreamBody};
use hyper::body::{Bytes, Frame};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use serde::Serialize;
use tokio::io::AsyncReadExt;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::{self, ClientConfig, RootCertStore};

use super::archive::{Blob, Image, Manifest};
use super::reference::ImageRef;
use crate::transport::NodeSession;

/// The largest answer read (errors and upload locations are small).
const ANSWER_LIMIT: usize = 1024 * 1024;
/// A request without a body to speak of.
const SHORT_DEADLINE: Duration = Duration::from_secs(30);
/// The slowest upload rate accepted before a blob's upload is given up (1 MiB/s through the bastion).
const SLOWEST_BYTES_PER_SECOND: u64 = 1024 * 1024;
/// Blobs are read and sent in pieces of this size.
const CHUNK: usize = 256 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("{0}")]
    Tls(String),
    #[error("no tunnel to the registry at {endpoint} through {host}: {message}")]
    Tunnel { host: String, endpoint: String, message: String },
    #[error("registry {what}: {message}")]
    Http { what: String, message: String },
    #[error("registry {what}: refused the credentials (HTTP 401); check registry.user and registry.password")]
    Unauthorized { what: String },
    #[error("registry {what}: HTTP {status}: {body}")]
    Status { what: String, status: u16, body: String },
    #[error("registry {what}: no answer within {seconds} s")]
    Timeout { what: String, seconds: u64 },
    #[error("{path}: {source}")]
    Io { path: String, source: std::io::Error },
}

type Body = BoxBody<Bytes, std::io::Error>;

/// One request: what it is for (errors name it), and its deadline.
struct Request<'a> {
    what: &'a str,
    method: hyper::Method,
    path: &'a str,
    content_type: Option<&'a str>,
    body: Body,
    deadline: Duration,
}

impl<'a> Request<'a> {
    fn new(what: &'a str, method: hyper::Method, path: &'a str) -> Self {
        Request { what, method, path, content_type: None, body: empty(), deadline: SHORT_DEADLINE }
    }
}

/// A status and the headers the push needs, from one answer.
struct Answer {
    status: u16,
    location: Option<String>,
    digest: Option<String>,
}

pub struct RegistryClient {
    tls: TlsConnector,
    /// The registry's address as nodes reach it (the certificate names it), and its port.
    host: String,
    port: u16,
    authorization: Option<String>,
}

impl RegistryClient {
    /// A client for the registry at `host:port`, trusting only `ca_pem`; without `authorization`
    /// it asks anonymously (which the site registry refuses).
    pub fn new(ca_pem: &str, host: &str, port: u16, authorization: Option<String>) -> Result<Self, RegistryError> {
        let bad = |e: &dyn std::fmt::Display| RegistryError::Tls(format!("cluster CA: {e}"));
        let mut roots = RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
            roots.add(cert.map_err(|e| bad(&e))?).map_err(|e| bad(&e))?;
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| bad(&e))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(RegistryClient {
            tls: TlsConnector::from(Arc::new(config)),
            host: host.trim_start_matches('[').trim_end_matches(']').to_string(),
            port,
            authorization,
        })
    }

    /// The API's base answers (`GET /v2/`): the registry is up, its certificate is the one the
    /// cluster CA signed for it, and it takes these credentials.
    pub async fn ping(&self, via: &NodeSession) -> Result<(), RegistryError> {
        let what = "GET /v2/".to_string();
        let a = self.send(via, Request::new(&what, hyper::Method::GET, "/v2/")).await?;
        if a.status != 200 {
            return Err(status(&what, a.status, ""));
        }
        Ok(())
    }

    /// Whether `repository` holds blob `digest`.
    pub async fn has_blob(&self, via: &NodeSession, repository: &str, digest: &str) -> Result<bool, RegistryError> {
        let what = format!("HEAD blob {digest}");
        let path = format!("/v2/{repository}/blobs/{digest}");
        let a = self.send(via, Request::new(&what, hyper::Method::HEAD, &path)).await?;
        match a.status {
            200 => Ok(true),
            404 => Ok(false),
            s => Err(status(&what, s, "")),
        }
    }

    /// Starts an upload to `repository`; where to send the blob.
    pub async fn start_upload(&self, via: &NodeSession, repository: &str) -> Result<String, RegistryError> {
        let what = format!("upload to {repository}");
        let path = format!("/v2/{repository}/blobs/uploads/");
        let a = self.send(via, Request::new(&what, hyper::Method::POST, &path)).await?;
        if a.status != 202 {
            return Err(status(&what, a.status, ""));
        }
        let location = a.location.ok_or_else(|| RegistryError::Http { what, message: "no Location".into() })?;
        // Registries answer with an absolute URL: the path and query are what this tunnel needs.
        Ok(match location.parse::<hyper::Uri>() {
            Ok(u) => u.path_and_query().map(|p| p.to_string()).unwrap_or(location),
            Err(_) => location,
        })
    }

    /// Uploads `blob` in one request (the spec's monolithic upload), streamed from its file.
    pub async fn upload_blob(&self, via: &NodeSession, repository: &str, blob: &Blob) -> Result<(), RegistryError> {
        let location = self.start_upload(via, repository).await?;
        let what = format!("upload of {} ({} bytes)", blob.digest, blob.size);
        let sep = if location.contains('?') { '&' } else { '?' };
        let path = format!("{location}{sep}digest={}", blob.digest);
        let deadline = SHORT_DEADLINE + Duration::from_secs(blob.size / SLOWEST_BYTES_PER_SECOND);
        let body = file_body(&blob.file).await?;
        let request = Request {
            content_type: Some("application/octet-stream"),
            body,
            deadline,
            ..Request::new(&what, hyper::Method::PUT, &path)
        };
        let a = self.send(via, request).await?;
        if a.status != 201 {
            return Err(status(&what, a.status, ""));
        }
        Ok(())
    }

    /// Puts `manifest` under `reference` (a tag or its digest); the digest the registry computed.
    pub async fn put_manifest(
        &self,
        via: &NodeSession,
        repository: &str,
        reference: &str,
        manifest: &Manifest,
    ) -> Result<String, RegistryError> {
        let what = format!("manifest {repository}:{reference}");
        let path = format!("/v2/{repository}/manifests/{reference}");
        let body = Full::new(Bytes::from(manifest.bytes.clone())).map_err(|never| match never {}).boxed();
        let request = Request {
            content_type: Some(&manifest.media_type),
            body,
            ..Request::new(&what, hyper::Method::PUT, &path)
        };
        let a = self.send(via, request).await?;
        if a.status != 201 {
            return Err(status(&what, a.status, ""));
        }
        Ok(a.digest.unwrap_or_else(|| manifest.digest.clone()))
    }

    async fn send(&self, via: &NodeSession, r: Request<'_>) -> Result<Answer, RegistryError> {
        let (what, deadline) = (r.what.to_string(), r.deadline);
        match tokio::time::timeout(deadline, self.send_now(via, r)).await {
            Ok(answer) => answer,
            Err(_) => Err(RegistryError::Timeout { what, seconds: deadline.as_secs() }),
        }
    }

    async fn send_now(&self, via: &NodeSession, r: Request<'_>) -> Result<Answer, RegistryError> {
        let Request { what, method, path, content_type, body, .. } = r;
        let http = |message: String| RegistryError::Http { what: what.to_string(), message };
        let endpoint = format!("{}:{}", self.host, self.port);
        let stream = via.forward(&self.host, self.port).await.map_err(|e| RegistryError::Tunnel {
            host: via.target.name.clone(),
            endpoint: endpoint.clone(),
            message: e.to_string(),
        })?;
        let name = ServerName::try_from(self.host.clone()).map_err(|e| RegistryError::Tls(e.to_string()))?;
        let tls = self.tls.connect(name, stream).await.map_err(|e| http(format!("TLS: {e}")))?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tls))
            .await
            .map_err(|e| http(e.to_string()))?;
        let driver = tokio::spawn(conn);
        let mut request = hyper::Request::builder().method(method).uri(path).header(hyper::header::HOST, endpoint);
        if let Some(auth) = &self.authorization {
            request = request.header(hyper::header::AUTHORIZATION, auth);
        }
        if let Some(t) = content_type {
            request = request.header(hyper::header::CONTENT_TYPE, t);
        }
        let request = request.body(body).map_err(|e| http(e.to_string()))?;
        let response = sender.send_request(request).await.map_err(|e| http(e.to_string()))?;
        let status = response.status().as_u16();
        let header = |name: &str| response.headers().get(name).and_then(|v| v.to_str().ok()).map(crate::sanitize::line);
        let (location, digest) = (header("location"), header("docker-content-digest"));
        let answer = http_body_util::Limited::new(response.into_body(), ANSWER_LIMIT).collect().await;
        driver.abort();
        let text = answer.map(|b| String::from_utf8_lossy(&b.to_bytes()).into_owned()).unwrap_or_default();
        if status == 401 {
            return Err(RegistryError::Unauthorized { what: what.to_string() });
        }
        if status >= 400 && status != 404 {
            return Err(self::status(what, status, &text));
        }
        Ok(Answer { status, location, digest })
    }
}

fn status(what: &str, status: u16, body: &str) -> RegistryError {
    let body = crate::sanitize::line(&body.chars().take(300).collect::<String>());
    RegistryError::Status { what: what.to_string(), status, body }
}

fn empty() -> Body {
    Empty::new().map_err(|never| match never {}).boxed()
}

async fn file_body(path: &std::path::Path) -> Result<Body, RegistryError> {
    let file = tokio::fs::File::open(path)
        .await
        .map_err(|source| RegistryError::Io { path: path.display().to_string(), source })?;
    let chunks = futures::stream::try_unfold(file, |mut f| async move {
        let mut buf = vec![0u8; CHUNK];
        let n = f.read(&mut buf).await?;
        if n == 0 {
            return Ok(None);
        }
        buf.truncate(n);
        Ok(Some((Frame::data(Bytes::from(buf)), f)))
    });
    Ok(StreamBody::new(chunks).boxed())
}

/// What pushing one image under one name did.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Pushed {
    /// The name it was pushed as (`docker.io/library/nginx:1.27`).
    pub image: String,
    /// Where it is in the site registry (`ADDRESS/docker.io/library/nginx:1.27`).
    pub stored_as: String,
    pub digest: String,
    pub blobs_uploaded: usize,
    pub blobs_present: usize,
    pub bytes_uploaded: u64,
}

/// Pushes `image` as `name`: every blob the repository lacks, then its manifests (an index's
/// manifests by digest, the last one under the tag). Blobs already there are not sent again.
pub async fn push(
    client: &RegistryClient,
    via: &NodeSession,
    image: &Image,
    name: &ImageRef,
    address: &str,
) -> Result<Pushed, RegistryError> {
    let repository = name.site_repository();
    let (mut uploaded, mut present, mut bytes) = (0, 0, 0);
    for blob in &image.blobs {
        if client.has_blob(via, &repository, &blob.digest).await? {
            present += 1;
        } else {
            client.upload_blob(via, &repository, blob).await?;
            uploaded += 1;
            bytes += blob.size;
        }
    }
    let Some((top, children)) = image.manifests.split_last() else {
        return Err(RegistryError::Http { what: name.to_string(), message: "no manifest".into() });
    };
    for m in children {
        client.put_manifest(via, &repository, &m.digest, m).await?;
    }
    let digest = client.put_manifest(via, &repository, &name.tag, top).await?;
    Ok(Pushed {
        image: name.to_string(),
        stored_as: format!("{address}/{repository}:{}", name.tag),
        digest,
        blobs_uploaded: uploaded,
        blobs_present: present,
        bytes_uploaded: bytes,
    })
}
