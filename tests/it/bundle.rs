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

/// A TCP listener put where the bastion is expected: a stand-in (a test double) that only
/// observes whether groundwork connects at all. A run refused before it connects never reaches
/// it; a run that gets past the bundle check does (and then fails its SSH handshake).
struct ConnectionCounter {
    port: u16,
    count: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl ConnectionCounter {
    fn start() -> ConnectionCounter {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("listen on loopback");
        let port = listener.local_addr().unwrap().port();
        let count = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let seen = count.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                drop(stream);
            }
        });
        ConnectionCounter { port, count }
    }
    fn connections(&self) -> usize {
        self.count.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// `cp -al`: a copy of the bundle made of hard links (instant; a file is replaced, never written
/// in place, so the lab's bundle is not touched).
fn linked_copy(from: &std::path::Path, to: &std::path::Path) {
    let out = Command::new("cp").arg("-al").arg(from).arg(to).output().unwrap();
    assert!(out.status.success(), "cp -al: {}", text(&out.stderr));
}

fn minisign_verifies(dir: &std::path::Path, public_key: &std::path::Path) -> bool {
    Command::new("minisign")
        .args(["-Vq", "-m"])
        .arg(dir.join("SHA256SUMS"))
        .arg("-p")
        .arg(public_key)
        .status()
        .expect("minisign runs (tests/lab/bundle installs it)")
        .success()
}

#[test]
fn a_bundle_not_signed_by_the_pinned_key_or_changed_is_refused_before_any_host_is_reached() {
    let lab = Lab::require();
    let lab_bundle = bundle_dir(&lab);
    let lab_key = lab.state.join("bundle-key.pub");
    let dir = lab.scratch("bundle-signature");
    let gw = |args: &[&str]| lab.groundwork(args);

    // The lab's bundle as tests/lab/bundle signed it with Debian's minisign: groundwork agrees.
    assert!(minisign_verifies(&lab_bundle, &lab_key), "minisign: the lab bundle's own signature");
    let out = gw(&["bundle", "verify", "--key", lab_key.to_str().unwrap(), "--bundle", lab_bundle.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let lab_key_id = text(&std::fs::read(&lab_key).unwrap()).split_whitespace().nth(5).unwrap().to_string();
    assert!(text(&out.stdout).contains(&format!("good signature by key {lab_key_id}")), "{}", text(&out.stdout));

    let counter = ConnectionCounter::start();
    let inventory_for = |name: &str| {
        let bundle = dir.join(name);
        let sub = dir.join(format!("inv-{name}"));
        std::fs::create_dir_all(&sub).unwrap();
        lab.inventory_copy(&sub, |t| {
            t.replace("address: 127.0.0.1\n  port: 2222", &format!("address: 127.0.0.1\n  port: {}", counter.port))
                .replace(&format!("bundle: {}", lab_bundle.display()), &format!("bundle: {}", bundle.display()))
        })
    };
    let apply = |inventory: &std::path::Path, extra: &[&str]| {
        let mut args = vec!["apply", "-i", inventory.to_str().unwrap()];
        args.extend_from_slice(extra);
        let out = gw(&args);
        assert!(!out.status.success(), "apply went through: {}", text(&out.stdout));
        text(&out.stderr)
    };

    // The observer works: an intact copy passes the check and the run connects (and fails there).
    linked_copy(&lab_bundle, &dir.join("intact"));
    let err = apply(&inventory_for("intact"), &[]);
    assert!(counter.connections() >= 1, "the intact bundle's run never connected: {err}");
    assert!(!err.contains("bundle is refused"), "{err}");

    // One byte of kubeadm changed: the sums catch it, before any connection.
    let before = counter.connections();
    linked_copy(&lab_bundle, &dir.join("tampered"));
    let kubeadm = dir.join("tampered/bin/kubeadm");
    let mut bytes = std::fs::read(&kubeadm).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::remove_file(&kubeadm).unwrap();
    std::fs::write(&kubeadm, &bytes).unwrap();
    let err = apply(&inventory_for("tampered"), &[]);
    assert!(err.contains("refused before anything was changed") && err.contains("bin/kubeadm"), "{err}");
    let err = apply(&inventory_for("tampered"), &["--allow-unsigned-bundle"]);
    assert!(err.contains("bin/kubeadm"), "--allow-unsigned-bundle never skips the sums: {err}");
    assert_eq!(counter.connections(), before, "a tampered bundle's run connected");

    // Signed with another key (made and used by groundwork; minisign reads its signature too).
    linked_copy(&lab_bundle, &dir.join("other-key"));
    let other = dir.join("other.key");
    let out = gw(&["bundle", "keygen", "--key", other.to_str().unwrap(), "--unencrypted"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out =
        gw(&["bundle", "sign", "--key", other.to_str().unwrap(), "--bundle", dir.join("other-key").to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(minisign_verifies(&dir.join("other-key"), &dir.join("other.key.pub")), "minisign: groundwork's signature");
    assert!(minisign_verifies(&lab_bundle, &lab_key), "signing the copy left the lab's signature alone");
    let err = apply(&inventory_for("other-key"), &[]);
    assert!(err.contains("signed by key") && err.contains(&format!("trusts key {lab_key_id}")), "{err}");

    // Not signed at all.
    linked_copy(&lab_bundle, &dir.join("unsigned"));
    std::fs::remove_file(dir.join("unsigned/SHA256SUMS.minisig")).unwrap();
    let err = apply(&inventory_for("unsigned"), &[]);
    assert!(err.contains("is not signed") && err.contains(&lab_key_id), "{err}");
    assert_eq!(counter.connections(), before, "a refused bundle's run connected");

    // --allow-unsigned-bundle: the run goes on, and the report says what was not checked.
    let inventory = lab.inventory_copy(&dir, |t| {
        t.replace(&format!("bundle: {}", lab_bundle.display()), &format!("bundle: {}", dir.join("unsigned").display()))
    });
    let inventory = inventory.to_str().unwrap();
    let out = gw(&["plan", "-i", inventory, "--only", "check", "--allow-unsigned-bundle", "-o", "json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let report = lab.json(&out);
    assert!(
        report["bundle"]["unchecked"].as_str().unwrap_or_default().contains("is not signed"),
        "{}",
        report["bundle"]
    );
    assert!(report["bundle"]["signed_by"].is_null(), "{}", report["bundle"]);
    let out = gw(&["plan", "-i", inventory, "--only", "check", "--allow-unsigned-bundle"]);
    assert!(text(&out.stdout).contains("WARNING: --allow-unsigned-bundle"), "{}", text(&out.stdout));
    let out = gw(&["plan", "-i", &lab.inventory_path.display().to_string(), "--only", "check", "-o", "json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let signed = &lab.json(&out)["bundle"]["signed_by"];
    assert_eq!(signed["key_id"], lab_key_id.as_str(), "{signed}");
    // Signed again by `groundwork bundle packages` when it added Debian 12's packages.
    assert!(signed["trusted_comment"].as_str().unwrap().contains("with packages for debian-12"), "{signed}");
}
