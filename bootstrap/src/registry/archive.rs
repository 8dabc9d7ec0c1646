//! The image tarballs operators bring to an air-gapped site: `docker save` (docker-archive:
//! `manifest.json` with the config and layer files) and OCI image layouts (`oci-layout`,
//! `index.json`, `blobs/sha256/...`; what `docker save` writes since Docker 25 and what skopeo
//! and buildah write). A tarball is unpacked into a temporary directory (the tar crate refuses
//! paths that leave it) so that every blob can be hashed and later streamed from a file; an OCI
//! layout's manifests are pushed byte for byte (their digests kept), a docker-archive's become an
//! OCI manifest of the same config and layers.

use std::io::Read;
use std::path::{Path, PathBuf};

use serde_json::json;
use sha2::{Digest, Sha256};

use super::reference::{BadReference, ImageRef};

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";
const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// The largest manifest, index or config read into memory (real ones are a few KiB).
const JSON_LIMIT: u64 = 4 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error("{path}: {message}")]
    Bad { path: PathBuf, message: String },
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path}: {source}")]
    Name { path: PathBuf, source: BadReference },
}

/// A blob (config or layer) as a file of the unpacked tarball.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blob {
    pub digest: String,
    pub size: u64,
    pub file: PathBuf,
}

/// A manifest (or an index) to put, by its digest, byte for byte.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    pub media_type: String,
    pub bytes: Vec<u8>,
    pub digest: String,
}

/// One image of a tarball: the names it carries, its blobs, and its manifests in the order they
/// must be put (an index's manifests before the index); the last is the one the names point at.
#[derive(Debug, Clone)]
pub struct Image {
    pub names: Vec<ImageRef>,
    pub blobs: Vec<Blob>,
    pub manifests: Vec<Manifest>,
}

impl Image {
    pub fn digest(&self) -> &str {
        self.manifests.last().map(|m| m.digest.as_str()).unwrap_or_default()
    }
}

/// An unpacked tarball; its directory is removed when this is dropped.
pub struct Unpacked {
    pub source: PathBuf,
    pub images: Vec<Image>,
    _dir: tempfile::TempDir,
}

/// Unpacks `tarball` (gzip-compressed or not) under `scratch` and reads its images.
pub fn open(tarball: &Path, scratch: &Path) -> Result<Unpacked, ArchiveError> {
    let io = |source| ArchiveError::Io { path: tarball.to_path_buf(), source };
    let dir = tempfile::Builder::new().prefix(".groundwork-image-").tempdir_in(scratch).map_err(io)?;
    let mut file = std::fs::File::open(tarball).map_err(io)?;
    let mut magic = [0u8; 2];
    let gz = file.read_exact(&mut magic).is_ok() && magic == [0x1f, 0x8b];
    let file = std::fs::File::open(tarball).map_err(io)?;
    let reader: Box<dyn Read> = if gz { Box::new(flate2::read::GzDecoder::new(file)) } else { Box::new(file) };
    let mut archive = tar::Archive::new(reader);
    archive.set_preserve_permissions(false);
    archive.unpack(dir.path()).map_err(io)?;
    let images = read_dir(dir.path(), tarball)?;
    if images.is_empty() {
        return Err(ArchiveError::Bad { path: tarball.into(), message: "holds no image".into() });
    }
    Ok(Unpacked { source: tarball.to_path_buf(), images, _dir: dir })
}

/// The images of an unpacked tarball in `dir` (`source` names it in errors).
pub fn read_dir(dir: &Path, source: &Path) -> Result<Vec<Image>, ArchiveError> {
    if dir.join("oci-layout").exists() && dir.join("index.json").exists() {
        oci_layout(dir, source)
    } else if dir.join("manifest.json").exists() {
        docker_archive(dir, source)
    } else {
        Err(ArchiveError::Bad {
            path: source.into(),
            message: "neither a docker-archive (manifest.json) nor an OCI image layout (oci-layout, index.json)".into(),
        })
    }
}

fn docker_archive(dir: &Path, source: &Path) -> Result<Vec<Image>, ArchiveError> {
    let bad = |message: String| ArchiveError::Bad { path: source.into(), message };
    let entries: serde_json::Value = read_json(&dir.join("manifest.json"), source)?;
    let entries = entries.as_array().ok_or_else(|| bad("manifest.json is not a list".into()))?;
    let mut images = Vec::new();
    for entry in entries {
        let config = entry["Config"].as_str().ok_or_else(|| bad("manifest.json: an entry without Config".into()))?;
        let config = blob(dir, config, source)?;
        let mut layers = Vec::new();
        for l in entry["Layers"].as_array().into_iter().flatten() {
            let l = l.as_str().ok_or_else(|| bad("manifest.json: a layer that is not a path".into()))?;
            layers.push(blob(dir, l, source)?);
        }
        let names = entry["RepoTags"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|t| t.as_str())
            .map(|t| ImageRef::parse(t).map_err(|e| ArchiveError::Name { path: source.into(), source: e }))
            .collect::<Result<Vec<_>, _>>()?;
        if names.is_empty() {
            return Err(bad(format!(
                "image {} has no name to push under (save it by name: docker save NAME:TAG)",
                config.digest
            )));
        }
        let layer_descriptors: Vec<_> = layers
            .iter()
            .map(|l| {
                let media = if is_gzip(&l.file) { OCI_LAYER_GZIP } else { OCI_LAYER };
                json!({"mediaType": media, "digest": l.digest, "size": l.size})
            })
            .collect();
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": config.digest, "size": config.size},
            "layers": layer_descriptors,
        });
        let bytes = serde_json::to_vec(&manifest).expect("JSON values serialise");
        let digest = sha256_of(&bytes);
        let mut blobs = vec![config];
        blobs.extend(layers);
        dedup(&mut blobs);
        images.push(Image {
            names,
            blobs,
            manifests: vec![Manifest { media_type: OCI_MANIFEST.into(), bytes, digest }],
        });
    }
    Ok(images)
}

fn oci_layout(dir: &Path, source: &Path) -> Result<Vec<Image>, ArchiveError> {
    let bad = |message: String| ArchiveError::Bad { path: source.into(), message };
    let index: serde_json::Value = read_json(&dir.join("index.json"), source)?;
    let mut images = Vec::new();
    for d in index["manifests"].as_array().into_iter().flatten() {
        let annotations = &d["annotations"];
        // containerd and Docker write the full name here; skopeo and buildah only a tag in ref.name.
        let name = annotations["io.containerd.image.name"]
            .as_str()
            .or_else(|| annotations["org.opencontainers.image.ref.name"].as_str().filter(|n| n.contains('/') || n.contains(':')))
            .ok_or_else(|| {
                bad(format!(
                    "index.json: manifest {} carries no image name (annotation io.containerd.image.name, or a full name in org.opencontainers.image.ref.name)",
                    d["digest"].as_str().unwrap_or("?")
                ))
            })?;
        let name = ImageRef::parse(name).map_err(|e| ArchiveError::Name { path: source.into(), source: e })?;
        let (mut blobs, mut manifests) = (Vec::new(), Vec::new());
        walk(dir, source, d, &mut blobs, &mut manifests, 0)?;
        dedup(&mut blobs);
        images.push(Image { names: vec![name], blobs, manifests });
    }
    Ok(images)
}

/// Collects what descriptor `d` needs: an index's manifests (first) and every manifest's blobs.
fn walk(
    dir: &Path,
    source: &Path,
    d: &serde_json::Value,
    blobs: &mut Vec<Blob>,
    manifests: &mut Vec<Manifest>,
    depth: u32,
) -> Result<(), ArchiveError> {
    let bad = |message: String| ArchiveError::Bad { path: source.into(), message };
    if depth > 4 {
        return Err(bad("index.json: indexes nested deeper than 4".into()));
    }
    let digest = d["digest"].as_str().ok_or_else(|| bad("a descriptor without a digest".into()))?;
    let media_type = d["mediaType"].as_str().unwrap_or(OCI_MANIFEST).to_string();
    let file = blob(dir, &blob_path(digest).ok_or_else(|| bad(format!("unsupported digest {digest}")))?, source)?;
    let bytes = read_limited(&file.file, source)?;
    let doc: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|e| bad(format!("manifest {digest} is not JSON: {e}")))?;
    if media_type == OCI_INDEX || media_type == DOCKER_LIST {
        for child in doc["manifests"].as_array().into_iter().flatten() {
            // An image index may list platforms the tarball does not carry (docker save keeps one).
            if blob_path(child["digest"].as_str().unwrap_or_default()).is_some_and(|p| dir.join(p).exists()) {
                walk(dir, source, child, blobs, manifests, depth + 1)?;
            }
        }
    } else if media_type == OCI_MANIFEST || media_type == DOCKER_MANIFEST {
        for b in std::iter::once(&doc["config"]).chain(doc["layers"].as_array().into_iter().flatten()) {
            let digest = b["digest"].as_str().ok_or_else(|| bad("a blob descriptor without a digest".into()))?;
            blobs.push(blob(
                dir,
                &blob_path(digest).ok_or_else(|| bad(format!("unsupported digest {digest}")))?,
                source,
            )?);
        }
    } else {
        return Err(bad(format!("manifest {digest}: media type {media_type} is not an image")));
    }
    manifests.push(Manifest { media_type, bytes, digest: digest.to_string() });
    Ok(())
}

fn blob_path(digest: &str) -> Option<String> {
    let hex = digest.strip_prefix("sha256:")?;
    (hex.len() == 64 && hex.chars().all(|c| c.is_ascii_hexdigit())).then(|| format!("blobs/sha256/{hex}"))
}

/// The file `relative` of the unpacked tarball, hashed (streamed: layers can be large).
fn blob(dir: &Path, relative: &str, source: &Path) -> Result<Blob, ArchiveError> {
    let bad = |message: String| ArchiveError::Bad { path: source.into(), message };
    if relative.split('/').any(|c| c == "..") || relative.starts_with('/') {
        return Err(bad(format!("`{relative}` leaves the archive")));
    }
    let file = dir.join(relative);
    let mut f = std::fs::File::open(&file).map_err(|_| bad(format!("names `{relative}`, which it does not hold")))?;
    let mut hasher = Sha256::new();
    let size = std::io::copy(&mut f, &mut hasher).map_err(|source| ArchiveError::Io { path: file.clone(), source })?;
    Ok(Blob { digest: format!("sha256:{}", hex::encode(hasher.finalize())), size, file })
}

fn read_limited(file: &Path, source: &Path) -> Result<Vec<u8>, ArchiveError> {
    let f = std::fs::File::open(file).map_err(|e| ArchiveError::Io { path: file.into(), source: e })?;
    let mut bytes = Vec::new();
    f.take(JSON_LIMIT + 1).read_to_end(&mut bytes).map_err(|e| ArchiveError::Io { path: file.into(), source: e })?;
    if bytes.len() as u64 > JSON_LIMIT {
        return Err(ArchiveError::Bad {
            path: source.into(),
            message: format!("{} is larger than 4 MiB", file.display()),
        });
    }
    Ok(bytes)
}

fn read_json(file: &Path, source: &Path) -> Result<serde_json::Value, ArchiveError> {
    let bytes = read_limited(file, source)?;
    serde_json::from_slice(&bytes).map_err(|e| ArchiveError::Bad {
        path: source.into(),
        message: format!("{} is not JSON: {e}", file.file_name().unwrap_or_default().to_string_lossy()),
    })
}

fn is_gzip(file: &Path) -> bool {
    let mut magic = [0u8; 2];
    std::fs::File::open(file).and_then(|mut f| f.read_exact(&mut magic)).is_ok() && magic == [0x1f, 0x8b]
}

fn sha256_of(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

fn dedup(blobs: &mut Vec<Blob>) {
    let mut seen = std::collections::BTreeSet::new();
    blobs.retain(|b| seen.insert(b.digest.clone()));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, rel: &str, bytes: &[u8]) {
        let p = dir.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, bytes).unwrap();
    }

    #[test]
    fn a_docker_archive_becomes_an_oci_manifest_of_its_config_and_layers() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "abc.json", br#"{"architecture":"amd64"}"#);
        write(dir.path(), "l1/layer.tar", b"layer one");
        write(
            dir.path(),
            "manifest.json",
            br#"[{"Config":"abc.json","RepoTags":["probe:1","quay.io/x/probe:1"],"Layers":["l1/layer.tar"]}]"#,
        );
        let images = read_dir(dir.path(), Path::new("probe.tar")).unwrap();
        assert_eq!(images.len(), 1);
        let img = &images[0];
        assert_eq!(
            img.names.iter().map(|n| n.to_string()).collect::<Vec<_>>(),
            ["docker.io/library/probe:1", "quay.io/x/probe:1"]
        );
        assert_eq!(img.blobs.len(), 2);
        assert_eq!(img.blobs[1].digest, sha256_of(b"layer one"));
        let m: serde_json::Value = serde_json::from_slice(&img.manifests[0].bytes).unwrap();
        assert_eq!(m["layers"][0]["mediaType"], OCI_LAYER);
        assert_eq!(m["config"]["digest"], sha256_of(br#"{"architecture":"amd64"}"#));
        assert_eq!(img.digest(), sha256_of(&img.manifests[0].bytes));
    }

    #[test]
    fn an_oci_layout_keeps_its_manifest_bytes_and_walks_an_index() {
        let dir = tempfile::tempdir().unwrap();
        let config = br#"{"os":"linux"}"#;
        let layer = b"layer";
        let (cd, ld) = (sha256_of(config), sha256_of(layer));
        write(dir.path(), &blob_path(&cd).unwrap(), config);
        write(dir.path(), &blob_path(&ld).unwrap(), layer);
        let manifest = format!(
            r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","config":{{"mediaType":"{OCI_CONFIG}","digest":"{cd}","size":14}},"layers":[{{"mediaType":"{OCI_LAYER}","digest":"{ld}","size":5}}]}}"#
        );
        let md = sha256_of(manifest.as_bytes());
        write(dir.path(), &blob_path(&md).unwrap(), manifest.as_bytes());
        let absent = format!("sha256:{}", "0".repeat(64));
        let index = format!(
            r#"{{"schemaVersion":2,"manifests":[{{"mediaType":"{OCI_MANIFEST}","digest":"{md}","size":1}},{{"mediaType":"{OCI_MANIFEST}","digest":"{absent}","size":1}}]}}"#
        );
        let id = sha256_of(index.as_bytes());
        write(dir.path(), &blob_path(&id).unwrap(), index.as_bytes());
        write(dir.path(), "oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#);
        write(
            dir.path(),
            "index.json",
            format!(r#"{{"schemaVersion":2,"manifests":[{{"mediaType":"{OCI_INDEX}","digest":"{id}","size":1,"annotations":{{"io.containerd.image.name":"registry.k8s.io/pause:3.10","org.opencontainers.image.ref.name":"3.10"}}}}]}}"#).as_bytes(),
        );
        let images = read_dir(dir.path(), Path::new("pause.tar")).unwrap();
        let img = &images[0];
        assert_eq!(img.names[0].to_string(), "registry.k8s.io/pause:3.10");
        assert_eq!(img.manifests.iter().map(|m| m.digest.clone()).collect::<Vec<_>>(), [md, id.clone()]);
        assert_eq!(img.digest(), id);
        assert_eq!(img.blobs.iter().map(|b| b.digest.clone()).collect::<Vec<_>>(), [cd, ld]);
    }

    #[test]
    fn what_is_not_an_image_tarball_is_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let err = read_dir(dir.path(), Path::new("x.tar")).unwrap_err().to_string();
        assert!(err.starts_with("x.tar: neither a docker-archive"), "{err}");
        write(dir.path(), "manifest.json", br#"[{"Config":"../etc/passwd","RepoTags":["a:1"],"Layers":[]}]"#);
        let err = read_dir(dir.path(), Path::new("x.tar")).unwrap_err().to_string();
        assert!(err.contains("leaves the archive"), "{err}");
    }
}
