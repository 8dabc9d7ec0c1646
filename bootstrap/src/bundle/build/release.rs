//! Where the official releases publish what a bundle is made of, and how their checksum files
//! read: Kubernetes at `{base}/release/{version}/bin/linux/{arch}/{name}` with a `{name}.sha256`
//! beside each binary (dl.k8s.io), etcd as `{base}/v{version}/etcd-v{version}-linux-{arch}.tar.gz`
//! with one `SHA256SUMS` per release (GitHub releases).

use crate::bundle::sums;

pub const KUBERNETES_URL: &str = "https://dl.k8s.io";
pub const ETCD_URL: &str = "https://github.com/etcd-io/etcd/releases/download";
/// The architectures both projects publish Linux binaries and images for.
pub const ARCHES: &[&str] = &["amd64", "arm64", "ppc64le", "s390x"];

#[derive(Debug, thiserror::Error)]
pub enum ReleaseError {
    #[error("`{value}` is not a {what} version (expected e.g. {example})")]
    Version { what: &'static str, value: String, example: &'static str },
    #[error("`{arch}` is not an architecture Kubernetes and etcd publish (one of: {})", ARCHES.join(", "))]
    Arch { arch: String },
    #[error("`{0}` is not an http(s) URL")]
    Url(String),
}

/// One Kubernetes and one etcd release for one architecture, and where to download them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Release {
    kubernetes_url: String,
    etcd_url: String,
    /// With its `v`, as Kubernetes writes it: `v1.33.3`.
    pub kubernetes_version: String,
    /// Without a `v`, as etcd reports it: `3.5.16`.
    pub etcd_version: String,
    pub arch: String,
}

impl Release {
    /// Versions are accepted with or without their `v`; URLs without a trailing `/`.
    pub fn new(
        kubernetes_version: &str,
        etcd_version: &str,
        arch: &str,
        kubernetes_url: &str,
        etcd_url: &str,
    ) -> Result<Release, ReleaseError> {
        let bare = |value: &str, what, example| {
            let v = value.strip_prefix('v').unwrap_or(value);
            if is_version(v) {
                Ok(v.to_string())
            } else {
                Err(ReleaseError::Version { what, value: value.to_string(), example })
            }
        };
        let kubernetes_version = format!("v{}", bare(kubernetes_version, "Kubernetes", "v1.33.3")?);
        let etcd_version = bare(etcd_version, "etcd", "3.5.16")?;
        if !ARCHES.contains(&arch) {
            return Err(ReleaseError::Arch { arch: arch.to_string() });
        }
        Ok(Release {
            kubernetes_url: base_url(kubernetes_url)?,
            etcd_url: base_url(etcd_url)?,
            kubernetes_version,
            etcd_version,
            arch: arch.to_string(),
        })
    }

    pub fn kubernetes_binary_url(&self, name: &str) -> String {
        format!("{}/release/{}/bin/linux/{}/{name}", self.kubernetes_url, self.kubernetes_version, self.arch)
    }

    pub fn kubernetes_sha256_url(&self, name: &str) -> String {
        format!("{}.sha256", self.kubernetes_binary_url(name))
    }

    /// `etcd-v3.5.16-linux-amd64`: the archive's top directory, and its name without `.tar.gz`.
    pub fn etcd_dir(&self) -> String {
        format!("etcd-v{}-linux-{}", self.etcd_version, self.arch)
    }

    pub fn etcd_archive_name(&self) -> String {
        format!("{}.tar.gz", self.etcd_dir())
    }

    pub fn etcd_archive_url(&self) -> String {
        format!("{}/v{}/{}", self.etcd_url, self.etcd_version, self.etcd_archive_name())
    }

    pub fn etcd_sums_url(&self) -> String {
        format!("{}/v{}/SHA256SUMS", self.etcd_url, self.etcd_version)
    }
}

/// `1.33.3`, `3.5.16`, `1.34.0-rc.1`: digits and dots, then an optional `-` suffix. Nothing that
/// could change the shape of a URL.
fn is_version(v: &str) -> bool {
    let (numbers, suffix) = v.split_once('-').unwrap_or((v, ""));
    let parts: Vec<&str> = numbers.split('.').collect();
    parts.len() == 3
        && parts.iter().all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
        && suffix.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.')
        && !(v.contains('-') && suffix.is_empty())
}

fn base_url(url: &str) -> Result<String, ReleaseError> {
    let trimmed = url.trim_end_matches('/');
    let rest = trimmed.strip_prefix("https://").or_else(|| trimmed.strip_prefix("http://"));
    match rest {
        Some(host) if !host.is_empty() => Ok(trimmed.to_string()),
        _ => Err(ReleaseError::Url(url.to_string())),
    }
}

/// A dl.k8s.io `.sha256` file: the hex sum alone (a `HASH  NAME` line is accepted too).
pub fn parse_sha256_file(text: &str) -> Option<String> {
    let sum = text.split_whitespace().next()?;
    sums::is_sha256(sum).then(|| sum.to_ascii_lowercase())
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SumsError {
    #[error("line {line} is not a `SHA256  FILE` line: `{text}`")]
    BadLine { line: usize, text: String },
    #[error("it has no sum for {0}")]
    NotListed(String),
}

/// The sum a release's `SHA256SUMS` (as `sha256sum` writes it) gives for `file`.
pub fn sum_in_sums_file(text: &str, file: &str) -> Result<String, SumsError> {
    let listed = sums::parse(text).map_err(|bad| SumsError::BadLine { line: bad.line, text: bad.text })?;
    listed.get(file).cloned().ok_or_else(|| SumsError::NotListed(file.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn release() -> Release {
        Release::new("v1.33.3", "3.5.16", "amd64", KUBERNETES_URL, ETCD_URL).unwrap()
    }

    #[test]
    fn urls_follow_the_official_layouts() {
        let r = release();
        assert_eq!(r.kubernetes_binary_url("kubeadm"), "https://dl.k8s.io/release/v1.33.3/bin/linux/amd64/kubeadm");
        assert_eq!(
            r.kubernetes_sha256_url("kubelet"),
            "https://dl.k8s.io/release/v1.33.3/bin/linux/amd64/kubelet.sha256"
        );
        assert_eq!(
            r.etcd_archive_url(),
            "https://github.com/etcd-io/etcd/releases/download/v3.5.16/etcd-v3.5.16-linux-amd64.tar.gz"
        );
        assert_eq!(r.etcd_sums_url(), "https://github.com/etcd-io/etcd/releases/download/v3.5.16/SHA256SUMS");
        assert_eq!(r.etcd_dir(), "etcd-v3.5.16-linux-amd64");
    }

    #[test]
    fn versions_are_taken_with_or_without_v_and_base_urls_without_a_trailing_slash() {
        let r = Release::new("1.33.3", "v3.5.16", "arm64", "http://127.0.0.1:8080/", "http://127.0.0.1:8080/etcd/")
            .unwrap();
        assert_eq!(r.kubernetes_version, "v1.33.3");
        assert_eq!(r.etcd_version, "3.5.16");
        assert_eq!(r.kubernetes_binary_url("kubectl"), "http://127.0.0.1:8080/release/v1.33.3/bin/linux/arm64/kubectl");
        assert_eq!(r.etcd_sums_url(), "http://127.0.0.1:8080/etcd/v3.5.16/SHA256SUMS");
        assert!(Release::new("v1.34.0-rc.1", "3.6.0", "amd64", KUBERNETES_URL, ETCD_URL).is_ok());
    }

    #[test]
    fn bad_versions_arches_and_urls_are_refused() {
        for (k8s, etcd) in
            [("1.33", "3.5.16"), ("v1.33.3/../x", "3.5.16"), ("v1.33.3", "3.5.x"), ("v1.33.3-", "3.5.16")]
        {
            let err = Release::new(k8s, etcd, "amd64", KUBERNETES_URL, ETCD_URL).unwrap_err();
            assert!(matches!(err, ReleaseError::Version { .. }), "{k8s} {etcd}: {err}");
        }
        let err = Release::new("v1.33.3", "3.5.16", "x86_64", KUBERNETES_URL, ETCD_URL).unwrap_err();
        assert!(err.to_string().contains("amd64, arm64"), "{err}");
        assert!(matches!(Release::new("v1.33.3", "3.5.16", "amd64", "dl.k8s.io", ETCD_URL), Err(ReleaseError::Url(_))));
    }

    #[test]
    fn a_sha256_file_is_the_bare_sum() {
        let sum = "B146F420FFFDE6827BAB51B3136EFD21AECCACF7EDB3559F5C62B274B8479A0A";
        assert_eq!(parse_sha256_file(sum), Some(sum.to_ascii_lowercase()));
        assert_eq!(parse_sha256_file(&format!("{sum}  kubeadm\n")), Some(sum.to_ascii_lowercase()));
        assert_eq!(parse_sha256_file("<html>Not Found</html>"), None);
        assert_eq!(parse_sha256_file(""), None);
    }

    #[test]
    fn etcds_sums_file_gives_the_archives_sum() {
        let a = "a".repeat(64);
        let b = "b".repeat(64);
        let c = "c".repeat(64);
        let text = format!(
            "{a}  etcd-v3.5.16-darwin-amd64.zip\n{b}  etcd-v3.5.16-linux-amd64.tar.gz\n{c}  etcd-v3.5.16-linux-arm64.tar.gz\n"
        );
        assert_eq!(sum_in_sums_file(&text, "etcd-v3.5.16-linux-amd64.tar.gz"), Ok(b));
        assert_eq!(
            sum_in_sums_file(&text, "etcd-v3.5.16-linux-s390x.tar.gz"),
            Err(SumsError::NotListed("etcd-v3.5.16-linux-s390x.tar.gz".into()))
        );
        assert!(matches!(sum_in_sums_file("<html>", "x"), Err(SumsError::BadLine { line: 1, .. })));
    }
}
