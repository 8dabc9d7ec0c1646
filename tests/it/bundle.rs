//! The lab's offline bundle (`.lab/bundle`, built by `tests/lab/bundle` during `tests/lab/lab up`),
//! read with groundwork's own bundle reader and checked against independent tools: the binaries
//! run and report their versions, and the image tarball names the images the manifest lists.

use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use groundwork::bundle::{ArtifactKind, Bundle};
use groundwork_lab_tests::{Lab, text};

const BINARIES: &[(&str, &str)] = &[
    ("kubeadm", "v1.33.3"),
    ("kubelet", "v1.33.3"),
    ("kubectl", "v1.33.3"),
    ("etcd", "3.5.16"),
    ("etcdctl", "3.5.16"),
    ("etcdutl", "3.5.16"),
];

const IMAGES: &[&str] = &[
    "registry.k8s.io/kube-apiserver:v1.33.3",
    "registry.k8s.io/kube-controller-manager:v1.33.3",
    "registry.k8s.io/kube-scheduler:v1.33.3",
    "registry.k8s.io/kube-proxy:v1.33.3",
    "registry.k8s.io/pause:3.10",
];

fn bundle_dir(lab: &Lab) -> PathBuf {
    let dir = lab.state.join("bundle");
    assert!(
        dir.join("manifest.json").is_file(),
        "{} has no bundle: run `tests/lab/lab up` (it builds one with tests/lab/bundle)",
        dir.display()
    );
    dir
}

fn run(program: PathBuf, args: &[&str]) -> String {
    let out = Command::new(&program).args(args).output().unwrap_or_else(|e| panic!("{}: {e}", program.display()));
    assert!(out.status.success(), "{} {args:?}: {}", program.display(), text(&out.stderr));
    text(&out.stdout)
}

#[test]
fn the_lab_bundle_opens_verifies_and_holds_kubernetes_etcd_and_the_images() {
    let lab = Lab::require();
    let bundle = Bundle::open(bundle_dir(&lab)).unwrap_or_else(|e| panic!("{e}"));
    let started = Instant::now();
    let verified = bundle.verify().unwrap_or_else(|e| panic!("{e}"));
    eprintln!("verified {} files, {} MiB in {:.1?}", verified.files, verified.bytes >> 20, started.elapsed());

    assert_eq!(bundle.kubernetes_version(), "v1.33.3");
    assert_eq!(verified.files, bundle.artifacts().len());
    for (name, version) in BINARIES {
        let a = bundle.artifact(name).unwrap_or_else(|| panic!("no {name} in the bundle"));
        assert_eq!(a.kind, ArtifactKind::Binary, "{name}");
        assert_eq!(a.version.as_deref(), Some(*version), "{name}");
        assert_eq!(a.install_to.as_deref(), Some(format!("/usr/local/bin/{name}").as_str()), "{name}");
        assert_eq!(a.path, format!("bin/{name}"));
    }
    // Masters get the control-plane images and etcd; every node kube-proxy and pause.
    let control_plane = bundle.artifact("control-plane-images").expect("the control-plane images");
    assert_eq!(control_plane.kind, ArtifactKind::Images);
    assert_eq!(control_plane.roles, ["master"]);
    let node = bundle.artifact("node-images").expect("the node images");
    assert!(node.roles.is_empty(), "every node");
    assert_eq!(node.images, ["registry.k8s.io/kube-proxy:v1.33.3", "registry.k8s.io/pause:3.10"]);
    for etcd in ["etcd", "etcdctl", "etcdutl"] {
        assert_eq!(bundle.artifact(etcd).map(|a| a.roles.clone()), Some(vec!["master".to_string()]));
    }
    assert_eq!(bundle.images(), IMAGES);
}

#[test]
fn the_bundles_binaries_run_and_report_their_versions() {
    let lab = Lab::require();
    let bin = bundle_dir(&lab).join("bin");
    assert_eq!(run(bin.join("kubeadm"), &["version", "-o", "short"]).trim(), "v1.33.3");
    assert_eq!(run(bin.join("kubelet"), &["--version"]).trim(), "Kubernetes v1.33.3");
    assert!(run(bin.join("kubectl"), &["version", "--client"]).contains("Client Version: v1.33.3"));
    let etcd = run(bin.join("etcd"), &["--version"]);
    assert!(etcd.lines().any(|l| l == "etcd Version: 3.5.16"), "{etcd}");
    let etcdctl = run(bin.join("etcdctl"), &["version"]);
    assert!(etcdctl.lines().any(|l| l == "etcdctl version: 3.5.16"), "{etcdctl}");
    let etcdutl = run(bin.join("etcdutl"), &["version"]);
    assert!(etcdutl.lines().any(|l| l == "etcdutl version: 3.5.16"), "{etcdutl}");
}

/// `docker save`'s own index inside the tarball: the names containerd's `ctr images import` gives
/// the images must be the ones the manifest promises.
#[test]
fn the_image_tarballs_name_exactly_the_images_the_manifest_lists() {
    let lab = Lab::require();
    let bundle = Bundle::open(bundle_dir(&lab)).expect("the lab bundle opens");
    for a in bundle.of_kind(ArtifactKind::Images) {
        let tar = bundle.path_of(a);
        let out = Command::new("tar").arg("-xOf").arg(&tar).arg("manifest.json").output().expect("tar runs");
        assert!(out.status.success(), "{}: {}", tar.display(), text(&out.stderr));
        let index: serde_json::Value = serde_json::from_slice(&out.stdout).expect("docker save's manifest.json");
        let mut tags: Vec<&str> = index
            .as_array()
            .expect("a list of images")
            .iter()
            .flat_map(|image| image["RepoTags"].as_array().expect("RepoTags").iter().filter_map(|t| t.as_str()))
            .collect();
        tags.sort_unstable();
        let mut expected: Vec<&str> = a.images.iter().map(String::as_str).collect();
        expected.sort_unstable();
        assert_eq!(tags, expected, "{}", a.path);
    }
}

#[test]
fn the_lab_inventory_takes_its_bundle_from_the_lab_state() {
    let lab = Lab::require();
    let configured = lab.inventory.packages.bundle.as_ref().expect("packages.bundle in the lab inventory");
    let resolved = lab.inventory_path.parent().expect("inventory directory").join(configured);
    assert_eq!(
        resolved.canonicalize().unwrap_or_else(|e| panic!("{}: {e}", resolved.display())),
        bundle_dir(&lab).canonicalize().expect("bundle dir"),
        "packages.bundle should be the bundle tests/lab/bundle builds"
    );
}
