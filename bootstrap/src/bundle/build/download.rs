//! HTTPS downloads for `bundle build`: streamed to `NAME.part` with the SHA-256 computed on the
//! way, renamed to `NAME` only once the sum is the published one. A failed or interrupted download
//! never leaves a file under the final name.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;
use tokio_rustls::rustls;

/// Checksum files are a line; anything much bigger is an error page.
const MAX_TEXT: usize = 1 << 20;

#[derive(Debug, thiserror::Error)]
pub enum DownloadError {
    #[error("cannot set up the HTTPS client: {0}")]
    Client(String),
    #[error("GET {url}: {reason}")]
    Request { url: String, reason: String },
    #[error("GET {url}: HTTP {status}")]
    Status { url: String, status: String },
    #[error("GET {url}: more than {MAX_TEXT} bytes, which is not a checksum file")]
    TooLarge { url: String },
    #[error(
        "{url} has sha256 {actual}, but its published checksum is {expected}: the download is corrupt or \
         was tampered with; it was removed and nothing was written as {}",
        dest.display()
    )]
    Mismatch { url: String, expected: String, actual: String, dest: PathBuf },
    #[error("cannot write {}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
}

/// What landed on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetched {
    pub sha256: String,
    pub size: u64,
}

pub struct Downloader {
    client: reqwest::Client,
}

impl Downloader {
    /// rustls over ring (as everywhere in groundwork), trusting the system's CA certificates.
    pub fn new() -> Result<Downloader, DownloadError> {
        let client_error = |e: &dyn std::fmt::Display| DownloadError::Client(e.to_string());
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verifier = rustls_platform_verifier::Verifier::new(provider.clone()).map_err(|e| client_error(&e))?;
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| client_error(&e))?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(verifier))
            .with_no_client_auth();
        let client = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .user_agent(concat!("groundwork/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(30))
            // Between two reads, not for the whole body: a slow link may take minutes per binary.
            .read_timeout(Duration::from_secs(120))
            .build()
            .map_err(|e| client_error(&chain(&e)))?;
        Ok(Downloader { client })
    }

    /// A small text file (a checksum file).
    pub async fn text(&self, url: &str) -> Result<String, DownloadError> {
        let mut response = self.get(url).await?;
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| request_error(url, e))? {
            body.extend_from_slice(&chunk);
            if body.len() > MAX_TEXT {
                return Err(DownloadError::TooLarge { url: url.to_string() });
            }
        }
        Ok(String::from_utf8_lossy(&body).into_owned())
    }

    /// Downloads `url` to `dest` (mode `mode`) if its SHA-256 is `expected_sha256`.
    pub async fn to_file(
        &self,
        url: &str,
        dest: &Path,
        expected_sha256: &str,
        mode: u32,
    ) -> Result<Fetched, DownloadError> {
        let part = part_path(dest);
        let fetched = match self.stream_to(url, &part, mode).await {
            Ok(f) => f,
            Err(e) => {
                let _ = tokio::fs::remove_file(&part).await;
                return Err(e);
            }
        };
        if fetched.sha256 != expected_sha256.to_ascii_lowercase() {
            let _ = tokio::fs::remove_file(&part).await;
            return Err(DownloadError::Mismatch {
                url: url.to_string(),
                expected: expected_sha256.to_ascii_lowercase(),
                actual: fetched.sha256,
                dest: dest.to_path_buf(),
            });
        }
        tokio::fs::rename(&part, dest)
            .await
            .map_err(|source| DownloadError::Io { path: dest.to_path_buf(), source })?;
        Ok(fetched)
    }

    async fn stream_to(&self, url: &str, part: &Path, mode: u32) -> Result<Fetched, DownloadError> {
        let io = |source| DownloadError::Io { path: part.to_path_buf(), source };
        let mut response = self.get(url).await?;
        let mut file =
            tokio::fs::OpenOptions::new().write(true).create(true).truncate(true).open(part).await.map_err(io)?;
        let mut hasher = Sha256::new();
        let mut size = 0u64;
        while let Some(chunk) = response.chunk().await.map_err(|e| request_error(url, e))? {
            hasher.update(&chunk);
            size += chunk.len() as u64;
            file.write_all(&chunk).await.map_err(io)?;
        }
        file.sync_all().await.map_err(io)?;
        // Explicitly, not at creation: the umask and a `.part` left by an earlier run would decide.
        tokio::fs::set_permissions(part, std::fs::Permissions::from_mode(mode)).await.map_err(io)?;
        Ok(Fetched { sha256: format!("{:x}", hasher.finalize()), size })
    }

    async fn get(&self, url: &str) -> Result<reqwest::Response, DownloadError> {
        let response = self.client.get(url).send().await.map_err(|e| request_error(url, e))?;
        let status = response.status();
        if !status.is_success() {
            return Err(DownloadError::Status { url: url.to_string(), status: status.to_string() });
        }
        Ok(response)
    }
}

/// `dest` with `.part` appended: where a download is written until its sum is checked.
pub fn part_path(dest: &Path) -> PathBuf {
    let mut name = dest.as_os_str().to_owned();
    name.push(".part");
    PathBuf::from(name)
}

fn request_error(url: &str, e: reqwest::Error) -> DownloadError {
    DownloadError::Request { url: url.to_string(), reason: chain(&e.without_url()) }
}

/// reqwest's own message is generic ("error sending request"); the cause is further down.
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_client_builds_with_the_preconfigured_rustls() {
        // reqwest accepts a preconfigured rustls only from the rustls version it links: this fails
        // if the two ever drift apart.
        Downloader::new().expect("the HTTPS client builds");
    }

    #[test]
    fn a_part_file_sits_beside_its_destination() {
        assert_eq!(part_path(Path::new("/b/bin/kubeadm")), Path::new("/b/bin/kubeadm.part"));
    }
}
