//! Image references as Docker and containerd read them: `nginx:1.27` is
//! `docker.io/library/nginx:1.27`; a first part with a `.` or a `:` (or `localhost`) names the
//! registry.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRef {
    /// `docker.io`, `registry.k8s.io`, `registry.example.org:5000`.
    pub registry: String,
    /// `library/nginx`.
    pub repository: String,
    /// `1.27` (`latest` when the reference names neither a tag nor a digest).
    pub tag: String,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("`{reference}` is not an image name: {why}")]
pub struct BadReference {
    pub reference: String,
    pub why: &'static str,
}

impl ImageRef {
    pub fn parse(reference: &str) -> Result<ImageRef, BadReference> {
        let bad = |why| BadReference { reference: reference.to_string(), why };
        if reference.contains('@') {
            return Err(bad("a digest reference names no tag to push under; use NAME:TAG"));
        }
        let (first, rest) = match reference.split_once('/') {
            Some((f, r)) if f.contains('.') || f.contains(':') || f == "localhost" => (f.to_string(), r.to_string()),
            _ => ("docker.io".to_string(), reference.to_string()),
        };
        let registry = if first == "index.docker.io" { "docker.io".to_string() } else { first };
        let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (path, tag) = match rest[last_slash..].rfind(':') {
            Some(i) => (rest[..last_slash + i].to_string(), rest[last_slash + i + 1..].to_string()),
            None => (rest.clone(), "latest".to_string()),
        };
        let repository = if registry == "docker.io" && !path.contains('/') { format!("library/{path}") } else { path };
        if repository.is_empty() || !repository.split('/').all(is_path_component) {
            return Err(bad("the repository must be lower-case letters, digits and separators (`.`, `_`, `-`, `/`)"));
        }
        if tag.is_empty()
            || tag.len() > 128
            || !tag.chars().all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
            || tag.starts_with(['.', '-'])
        {
            return Err(bad("the tag must be letters, digits, `_`, `.` and `-`, at most 128"));
        }
        Ok(ImageRef { registry, repository, tag })
    }

    /// The repository in the site registry: the upstream first (see `registry::upstream_prefix`).
    pub fn site_repository(&self) -> String {
        format!("{}/{}", super::upstream_prefix(&self.registry), self.repository)
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}:{}", self.registry, self.repository, self.tag)
    }
}

/// The distribution spec's path component: `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`.
fn is_path_component(c: &str) -> bool {
    let bytes = c.as_bytes();
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    if bytes.is_empty() || !alnum(bytes[0]) || !alnum(bytes[bytes.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < bytes.len() {
        if alnum(bytes[i]) {
            i += 1;
            continue;
        }
        let sep_start = i;
        while i < bytes.len() && !alnum(bytes[i]) {
            i += 1;
        }
        let sep = &c[sep_start..i];
        if !(sep == "." || sep == "_" || sep == "__" || sep.chars().all(|ch| ch == '-')) {
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(s: &str) -> String {
        ImageRef::parse(s)
            .map(|r| format!("{} {} {}", r.registry, r.repository, r.tag))
            .unwrap_or_else(|e| e.to_string())
    }

    #[test]
    fn names_are_read_as_docker_and_containerd_read_them() {
        assert_eq!(r("nginx"), "docker.io library/nginx latest");
        assert_eq!(r("nginx:1.27"), "docker.io library/nginx 1.27");
        assert_eq!(r("egovio/zuul:v2"), "docker.io egovio/zuul v2");
        assert_eq!(r("docker.io/library/busybox:1"), "docker.io library/busybox 1");
        assert_eq!(r("index.docker.io/x/y:2"), "docker.io x/y 2");
        assert_eq!(r("registry.k8s.io/pause:3.10"), "registry.k8s.io pause 3.10");
        assert_eq!(r("localhost:5000/a/b"), "localhost:5000 a/b latest");
        assert_eq!(r("quay.io/org/app_x:1.0-rc1"), "quay.io org/app_x 1.0-rc1");
        let site = ImageRef::parse("registry.example.org:5000/team/app:1").unwrap();
        assert_eq!(site.site_repository(), "registry.example.org_5000/team/app");
        assert_eq!(ImageRef::parse("nginx").unwrap().site_repository(), "docker.io/library/nginx");
    }

    #[test]
    fn bad_names_are_refused_with_why() {
        assert!(r("Nginx:1").contains("lower-case"), "{}", r("Nginx:1"));
        assert!(r("nginx@sha256:abc").contains("digest"));
        assert!(r("a//b").contains("repository"));
        assert!(r("a:").contains("tag"));
        assert!(r("a-:1").contains("repository"));
    }
}
