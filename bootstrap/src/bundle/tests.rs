//! A tiny bundle written into a temporary directory: two binaries and an image tarball, with a
//! manifest and SHA256SUMS made the way tests/lab/bundle makes them. Each test breaks one thing.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use sha2::{Digest, Sha256};

use super::*;

/// A directory removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        static COUNT: AtomicUsize = AtomicUsize::new(0);
        let n = COUNT.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("gw-bundle-{}-{n}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

const FILES: &[(&str, &str, &[u8])] = &[
    ("kubeadm", "bin/kubeadm", b"#!/bin/sh\necho v1.33.3\n"),
    ("etcd", "bin/etcd", b"#!/bin/sh\necho 'etcd Version: 3.5.16'\n"),
    ("kubernetes-images", "images/kubernetes-images.tar", b"not really a tar, but bytes to hash"),
];

fn sha(bytes: &[u8]) -> String {
    format!("{:x}", Sha256::digest(bytes))
}

fn artifact_json(name: &str, path: &str, content: &[u8]) -> serde_json::Value {
    let mut a = serde_json::json!({
        "name": name, "path": path, "sha256": sha(content), "size": content.len(),
    });
    if name == "kubernetes-images" {
        a["kind"] = "images".into();
        a["images"] = serde_json::json!(["registry.k8s.io/kube-apiserver:v1.33.3", "registry.k8s.io/pause:3.10"]);
    } else {
        a["kind"] = "binary".into();
        a["version"] = if name == "etcd" { "3.5.16" } else { "v1.33.3" }.into();
        a["installTo"] = format!("/usr/local/bin/{name}").into();
    }
    a
}

/// A good bundle: files, manifest.json, SHA256SUMS.
fn good_bundle(name: &str) -> TempDir {
    let tmp = TempDir::new(name);
    let mut artifacts = Vec::new();
    let mut sums = String::new();
    for (name, path, content) in FILES {
        write(&tmp.0.join(path), content);
        artifacts.push(artifact_json(name, path, content));
        sums.push_str(&format!("{}  {path}\n", sha(content)));
    }
    let manifest = serde_json::json!({
        "format": 1, "name": "test-bundle", "kubernetesVersion": "v1.33.3", "recipe": "abc",
        "artifacts": artifacts,
    });
    write(&tmp.0.join(MANIFEST), serde_json::to_string_pretty(&manifest).unwrap().as_bytes());
    write(&tmp.0.join(SUMS), sums.as_bytes());
    tmp
}

fn write(path: &Path, content: &[u8]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, content).unwrap();
}

/// Rewrites manifest.json through `edit`.
fn edit_manifest(dir: &Path, edit: impl FnOnce(&mut serde_json::Value)) {
    let path = dir.join(MANIFEST);
    let mut m: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    edit(&mut m);
    std::fs::write(&path, serde_json::to_vec(&m).unwrap()).unwrap();
}

fn edit_sums(dir: &Path, edit: impl FnOnce(String) -> String) {
    let path = dir.join(SUMS);
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, edit(text)).unwrap();
}

#[test]
fn a_good_bundle_opens_and_verifies() {
    let tmp = good_bundle("good");
    let bundle = Bundle::open(&tmp.0).expect("opens");
    let verified = bundle.verify().expect("verifies");
    assert_eq!(verified.files, 3);
    assert_eq!(verified.bytes, FILES.iter().map(|f| f.2.len() as u64).sum::<u64>());

    assert_eq!(bundle.kubernetes_version(), "v1.33.3");
    let kubeadm = bundle.artifact("kubeadm").expect("kubeadm");
    assert_eq!(kubeadm.kind, ArtifactKind::Binary);
    assert_eq!(kubeadm.install_to.as_deref(), Some("/usr/local/bin/kubeadm"));
    assert_eq!(bundle.path_of(kubeadm), tmp.0.join("bin/kubeadm"));
    assert!(bundle.artifact("kubelet").is_none());
    let binaries: Vec<&str> = bundle.of_kind(ArtifactKind::Binary).map(|a| a.name.as_str()).collect();
    assert_eq!(binaries, ["kubeadm", "etcd"]);
    assert_eq!(bundle.images(), ["registry.k8s.io/kube-apiserver:v1.33.3", "registry.k8s.io/pause:3.10"]);
}

#[test]
fn sums_file_in_binary_mode_and_with_dot_slash_is_accepted() {
    let tmp = good_bundle("binary-mode");
    edit_sums(&tmp.0, |t| t.replace("  bin/kubeadm", " *./bin/kubeadm"));
    Bundle::open(&tmp.0).expect("opens").verify().expect("verifies");
}

#[test]
fn a_tampered_file_names_the_file_and_both_sums() {
    let tmp = good_bundle("tampered");
    std::fs::write(tmp.0.join("bin/etcd"), b"#!/bin/sh\necho evil\n").unwrap();
    let bundle = Bundle::open(&tmp.0).expect("opens: open does not read the artifacts");
    let err = bundle.verify().expect_err("a changed file fails");
    let BundleError::Verify { problems, .. } = &err else { panic!("{err:?}") };
    assert_eq!(problems.len(), 1, "{problems:?}");
    let VerifyProblem::Mismatch { path, expected_sha256, actual_sha256, .. } = &problems[0] else {
        panic!("{problems:?}")
    };
    assert_eq!(path, "bin/etcd");
    assert_eq!(expected_sha256, &sha(FILES[1].2));
    assert_eq!(actual_sha256, &sha(b"#!/bin/sh\necho evil\n"));
    let text = err.to_string();
    assert!(text.contains("bin/etcd") && text.contains(expected_sha256) && text.contains(actual_sha256), "{text}");
    assert!(text.contains("rebuild the bundle") && text.contains("copy it again"), "{text}");
}

#[test]
fn a_missing_file_is_reported_with_every_other_problem() {
    let tmp = good_bundle("missing");
    std::fs::remove_file(tmp.0.join("images/kubernetes-images.tar")).unwrap();
    std::fs::write(tmp.0.join("bin/kubeadm"), b"truncated").unwrap();
    let err = Bundle::open(&tmp.0).expect("opens").verify().expect_err("fails");
    let BundleError::Verify { problems, .. } = &err else { panic!("{err:?}") };
    assert_eq!(problems.len(), 2, "{problems:?}");
    assert!(matches!(&problems[0], VerifyProblem::Mismatch { path, .. } if path == "bin/kubeadm"), "{problems:?}");
    assert_eq!(problems[1], VerifyProblem::Missing { path: "images/kubernetes-images.tar".into() });
    let text = err.to_string();
    assert!(text.contains("images/kubernetes-images.tar: missing"), "{text}");
    assert!(text.contains("size 9 bytes"), "a size change is named too: {text}");
}

#[test]
fn a_path_leaving_the_bundle_is_refused() {
    for (bad, reason) in
        [("../outside", "contains `..`"), ("bin/../../etc/passwd", "contains `..`"), ("/etc/passwd", "is absolute")]
    {
        let tmp = good_bundle("escape");
        edit_manifest(&tmp.0, |m| m["artifacts"][0]["path"] = bad.into());
        edit_sums(&tmp.0, |t| t.replace("  bin/kubeadm", &format!("  {bad}")));
        let err = Bundle::open(&tmp.0).expect_err(bad);
        assert!(
            matches!(&err, BundleError::PathEscapes { name, path, reason: r } if name == "kubeadm" && path == bad && *r == reason),
            "{bad}: {err:?}"
        );
        assert!(err.to_string().contains("Do not use this bundle"), "{err}");
    }
}

#[test]
fn a_symbolic_link_out_of_the_bundle_is_refused() {
    let tmp = good_bundle("symlink");
    let outside = TempDir::new("symlink-target");
    write(&outside.0.join("kubeadm"), FILES[0].2);
    std::fs::remove_file(tmp.0.join("bin/kubeadm")).unwrap();
    std::os::unix::fs::symlink(outside.0.join("kubeadm"), tmp.0.join("bin/kubeadm")).unwrap();
    let err = Bundle::open(&tmp.0).expect_err("refused");
    assert!(matches!(&err, BundleError::PathEscapes { name, .. } if name == "kubeadm"), "{err:?}");
}

#[test]
fn an_artifact_without_a_sum_in_sha256sums_is_refused() {
    let tmp = good_bundle("not-in-sums");
    edit_sums(&tmp.0, |t| t.lines().filter(|l| !l.ends_with("bin/etcd")).map(|l| format!("{l}\n")).collect());
    let err = Bundle::open(&tmp.0).expect_err("refused");
    assert!(matches!(&err, BundleError::NotInSums { name, path } if name == "etcd" && path == "bin/etcd"), "{err:?}");
    assert!(err.to_string().contains("SHA256SUMS"), "{err}");
}

#[test]
fn sums_that_disagree_with_the_manifest_name_both() {
    let tmp = good_bundle("disagree");
    let wrong = "0".repeat(64);
    edit_sums(&tmp.0, |t| t.replace(&sha(FILES[1].2), &wrong));
    let err = Bundle::open(&tmp.0).expect_err("refused");
    let BundleError::SumsDisagree { path, manifest, sums } = &err else { panic!("{err:?}") };
    assert_eq!(
        (path.as_str(), manifest.as_str(), sums.as_str()),
        ("bin/etcd", sha(FILES[1].2).as_str(), wrong.as_str())
    );
}

#[test]
fn a_sum_for_a_file_the_manifest_does_not_name_is_refused() {
    let tmp = good_bundle("extra");
    edit_sums(&tmp.0, |t| format!("{t}{}  bin/extra\n", "1".repeat(64)));
    let err = Bundle::open(&tmp.0).expect_err("refused");
    assert!(matches!(&err, BundleError::NotInManifest { path } if path == "bin/extra"), "{err:?}");
}

#[test]
fn a_malformed_sums_line_is_refused_with_its_line_number() {
    let tmp = good_bundle("bad-line");
    edit_sums(&tmp.0, |t| format!("{t}not a sum line\n"));
    let err = Bundle::open(&tmp.0).expect_err("refused");
    assert!(matches!(&err, BundleError::SumsLine { line: 4, .. }), "{err:?}");
}

#[test]
fn another_format_is_refused_by_its_number() {
    let tmp = good_bundle("format");
    edit_manifest(&tmp.0, |m| {
        m["format"] = 2.into();
        m["artifacts"] = "a newer layout".into();
    });
    let err = Bundle::open(&tmp.0).expect_err("refused");
    assert!(matches!(&err, BundleError::UnsupportedFormat { found: 2, .. }), "{err:?}");
    assert!(err.to_string().contains("format 2") && err.to_string().contains("format 1 only"), "{err}");
}

#[test]
fn a_directory_without_a_manifest_is_not_a_bundle() {
    let tmp = TempDir::new("empty");
    let err = Bundle::open(&tmp.0).expect_err("refused");
    assert!(matches!(&err, BundleError::NoManifest { .. }), "{err:?}");
    assert!(err.to_string().contains("packages.bundle"), "{err}");
}

#[test]
fn missing_sha256sums_duplicates_and_unknown_kinds_are_refused() {
    let tmp = good_bundle("no-sums");
    std::fs::remove_file(tmp.0.join(SUMS)).unwrap();
    assert!(matches!(Bundle::open(&tmp.0), Err(BundleError::NoSums { .. })));

    let tmp = good_bundle("duplicate");
    edit_manifest(&tmp.0, |m| {
        let first = m["artifacts"][0].clone();
        m["artifacts"].as_array_mut().unwrap().push(first);
    });
    assert!(matches!(Bundle::open(&tmp.0), Err(BundleError::DuplicateArtifact { name }) if name == "kubeadm"));

    let tmp = good_bundle("kind");
    edit_manifest(&tmp.0, |m| m["artifacts"][0]["kind"] = "rpm".into());
    let err = Bundle::open(&tmp.0).expect_err("refused");
    assert!(matches!(&err, BundleError::Manifest { .. }) && err.to_string().contains("rpm"), "{err}");

    let tmp = good_bundle("bad-sum");
    edit_manifest(&tmp.0, |m| m["artifacts"][0]["sha256"] = "xyz".into());
    assert!(matches!(Bundle::open(&tmp.0), Err(BundleError::InvalidArtifact { name, .. }) if name == "kubeadm"));
}

#[test]
fn hash_file_matches_sha256sum() {
    let tmp = TempDir::new("hash");
    // Larger than the read buffer, so that more than one piece is hashed.
    let content: Vec<u8> = (0..(3 << 20) + 17).map(|i| (i % 251) as u8).collect();
    write(&tmp.0.join("f"), &content);
    assert_eq!(hash_file(&tmp.0.join("f")).unwrap(), (sha(&content), content.len() as u64));
}

#[test]
fn a_remembered_verification_skips_unchanged_files_but_not_rewritten_ones() {
    let t = good_bundle("memo");
    let memo = t.0.join("memo.json");
    let b = Bundle::open(&t.0).unwrap();
    assert_eq!(b.verify_remembered(&memo, false).unwrap().files, 3);
    assert!(!memo.exists(), "without record nothing is written");
    assert_eq!(b.verify_remembered(&memo, true).unwrap().files, 3);
    let recorded = std::fs::read_to_string(&memo).unwrap();
    assert!(recorded.contains("bin/kubeadm") && recorded.contains(&sha(FILES[0].2)), "{recorded}");

    // Same length, other bytes: the stamp (mtime, inode) changes, so it is hashed and caught.
    std::thread::sleep(std::time::Duration::from_millis(20));
    let tampered = t.0.join("bin/kubeadm");
    let mut bytes = FILES[0].2.to_vec();
    bytes[0] ^= 1;
    std::fs::write(&tampered, &bytes).unwrap();
    let e = b.verify_remembered(&memo, true).unwrap_err().to_string();
    assert!(e.contains("bin/kubeadm") && e.contains(&sha(&bytes)), "{e}");
}
