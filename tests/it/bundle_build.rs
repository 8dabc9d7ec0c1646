//! `groundwork bundle build` (`ops::bundle_build`) against a TEST DOUBLE of the download sites: a
//! loopback HTTP server (127.0.0.1, a free port) that serves the official layouts of dl.k8s.io and
//! etcd's GitHub releases. What it serves is real: the lab bundle's kubeadm, kubelet and kubectl
//! (the shared v1.33.3 binaries) with `.sha256` files, and an etcd release-shaped archive made here
//! from the lab bundle's etcd, etcdctl and etcdutl with its `SHA256SUMS`. Sums are computed with `sha256sum`,
//! not with groundwork. The real download sites are never contacted.
//!
//! Images: the build runs the downloaded kubeadm for the image list and `docker save`s them with
//! `--no-pull`, so they must be local. The lab's images are loaded from `.lab/bundle/images` when
//! docker does not have them (tests/lab/bundle removes its tags after saving), and CoreDNS, which
//! the lab cannot build, is a TEST DOUBLE: the lab's pause image tagged with kubeadm's CoreDNS name.
//! Every tag this test adds is removed at the end.
//!
//! Needs `.lab/bundle` (built by `tests/lab/lab up`) and docker; not the lab's hosts.

use std::collections::BTreeMap;
use std::io::{self, BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};

use groundwork::bundle::build::download::DownloadError;
use groundwork::bundle::{ArtifactKind, Bundle};
use groundwork::ops::bundle_build::{self, BuildError, BuildOptions, Built, How};
use groundwork_lab_tests::text;

const K8S: &str = "v1.33.3";
const ETCD: &str = "3.5.16";
const ARCH: &str = "amd64";
const KUBERNETES_BINARIES: [&str; 3] = ["kubeadm", "kubelet", "kubectl"];
const ETCD_ARCHIVE: &str = "etcd-v3.5.16-linux-amd64.tar.gz";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..").canonicalize().expect("repository root")
}

/// The lab's bundle, whose binaries the test double serves and whose manifest the built bundle must match.
fn lab_bundle() -> Bundle {
    let dir = root().join(".lab/bundle");
    let bin = dir.join("bin");
    for name in KUBERNETES_BINARIES.iter().chain(&["etcd", "etcdctl", "etcdutl"]) {
        assert!(
            bin.join(name).is_file(),
            "{} is missing: this test serves the lab bundle's binaries; run `tests/lab/lab up` (it builds \
             .lab/bundle with tests/lab/bundle), then run this test again",
            bin.join(name).display()
        );
    }
    Bundle::open(&dir).unwrap_or_else(|e| panic!("the lab bundle does not open: {e}"))
}

fn run(program: &str, args: &[&str], dir: Option<&Path>) -> Output {
    let mut cmd = Command::new(program);
    cmd.args(args);
    if let Some(d) = dir {
        cmd.current_dir(d);
    }
    cmd.output().unwrap_or_else(|e| panic!("{program}: {e}"))
}

fn run_ok(program: &str, args: &[&str], dir: Option<&Path>) -> String {
    let out = run(program, args, dir);
    assert!(out.status.success(), "{program} {args:?}: {}", text(&out.stderr));
    text(&out.stdout)
}

/// `sha256sum FILE`, the independent oracle for every sum here.
fn sha256sum(path: &Path) -> String {
    let out = run_ok("sha256sum", &[&path.display().to_string()], None);
    out.split_whitespace().next().expect("a sum").to_string()
}

/// A directory removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("gw-bundle-build-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temporary directory");
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

// ---------------------------------------------------------------- the test double

/// TEST DOUBLE for dl.k8s.io and etcd's GitHub release downloads: HTTP/1.1 on 127.0.0.1, one
/// request per connection, files streamed from disk by URL path, every request counted.
struct DownloadSiteDouble {
    base: String,
    requests: Arc<Mutex<BTreeMap<String, usize>>>,
}

impl DownloadSiteDouble {
    fn start(files: BTreeMap<String, PathBuf>) -> DownloadSiteDouble {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let base = format!("http://{}", listener.local_addr().expect("local address"));
        let requests = Arc::new(Mutex::new(BTreeMap::new()));
        let (files, counts) = (Arc::new(files), requests.clone());
        // Lives as long as the test process; each test has its own.
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (files, counts) = (files.clone(), counts.clone());
                std::thread::spawn(move || {
                    let _ = serve(stream, &files, &counts);
                });
            }
        });
        DownloadSiteDouble { base, requests }
    }

    fn requests(&self, path: &str) -> usize {
        self.requests.lock().expect("request counts").get(path).copied().unwrap_or(0)
    }
}

fn serve(
    stream: TcpStream,
    files: &BTreeMap<String, PathBuf>,
    counts: &Mutex<BTreeMap<String, usize>>,
) -> io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header)? == 0 || header.trim().is_empty() {
            break;
        }
    }
    let path = request_line.split_whitespace().nth(1).unwrap_or_default().to_string();
    *counts.lock().expect("request counts").entry(path.clone()).or_default() += 1;
    let mut stream = stream;
    match files.get(&path) {
        Some(file) => {
            let mut f = std::fs::File::open(file)?;
            let len = f.metadata()?.len();
            write!(stream, "HTTP/1.1 200 OK\r\nContent-Length: {len}\r\nConnection: close\r\n\r\n")?;
            io::copy(&mut f, &mut stream)?;
        }
        None => {
            let body = "Not Found\n";
            write!(
                stream,
                "HTTP/1.1 404 Not Found\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            )?;
        }
    }
    stream.flush()
}

fn binary_path(name: &str) -> String {
    format!("/release/{K8S}/bin/linux/{ARCH}/{name}")
}

fn etcd_path(file: &str) -> String {
    format!("/etcd/v{ETCD}/{file}")
}

/// The test double, serving the lab bundle's binaries in the official layouts, and its work directory.
struct Site {
    double: DownloadSiteDouble,
    work: TempDir,
    /// The sums of what it serves: binary or archive name -> sha256.
    sums: BTreeMap<String, String>,
}

/// `wrong_sum_for`: a Kubernetes binary whose published `.sha256` is not its sum.
fn site(name: &str, lab: &Bundle, wrong_sum_for: Option<&str>) -> Site {
    let work = TempDir::new(name);
    let dir = work.0.join("site");
    std::fs::create_dir_all(&dir).expect("site directory");
    let lab_bin = lab.dir().join("bin");
    let mut files = BTreeMap::new();
    let mut sums = BTreeMap::new();
    for name in KUBERNETES_BINARIES {
        let sum = sha256sum(&lab_bin.join(name));
        let published = if wrong_sum_for == Some(name) { sha256sum(&lab_bin.join("etcd")) } else { sum.clone() };
        let sum_file = dir.join(format!("{name}.sha256"));
        std::fs::write(&sum_file, &published).expect("write .sha256");
        files.insert(binary_path(name), lab_bin.join(name));
        files.insert(format!("{}.sha256", binary_path(name)), sum_file);
        sums.insert(name.to_string(), sum);
    }

    // An archive shaped like etcd's release: one top directory with the binaries and more.
    let top = work.0.join("stage/etcd-v3.5.16-linux-amd64");
    std::fs::create_dir_all(&top).expect("stage directory");
    for name in ["etcd", "etcdctl", "etcdutl"] {
        std::fs::copy(lab_bin.join(name), top.join(name)).expect("copy etcd binary");
    }
    std::fs::write(top.join("README.md"), "etcd\n").expect("README");
    let archive = dir.join(ETCD_ARCHIVE);
    run_ok(
        "tar",
        &[
            "-czf",
            &archive.display().to_string(),
            "-C",
            &top.parent().unwrap().display().to_string(),
            "etcd-v3.5.16-linux-amd64",
        ],
        None,
    );
    // Another architecture's line first, as in the real file.
    std::fs::write(dir.join("etcd-v3.5.16-linux-arm64.tar.gz"), "another architecture").expect("decoy");
    let listing = run_ok("sha256sum", &["etcd-v3.5.16-linux-arm64.tar.gz", ETCD_ARCHIVE], Some(&dir));
    std::fs::write(dir.join("SHA256SUMS"), listing).expect("SHA256SUMS");
    files.insert(etcd_path(ETCD_ARCHIVE), archive.clone());
    files.insert(etcd_path("SHA256SUMS"), dir.join("SHA256SUMS"));
    sums.insert(ETCD_ARCHIVE.to_string(), sha256sum(&archive));
    for name in ["etcd", "etcdctl", "etcdutl"] {
        sums.insert(name.to_string(), sha256sum(&lab_bin.join(name)));
    }
    Site { double: DownloadSiteDouble::start(files), work, sums }
}

fn options(site: &Site, out: &Path, etcd: &str) -> BuildOptions {
    BuildOptions {
        kubernetes_version: K8S.into(),
        etcd_version: etcd.into(),
        arch: ARCH.into(),
        out: out.to_path_buf(),
        kubernetes_url: site.double.base.clone(),
        etcd_url: format!("{}/etcd", site.double.base),
        pull: false,
        docker: "docker".into(),
    }
}

async fn build(opts: &BuildOptions) -> Result<Built, BuildError> {
    bundle_build::build(opts, &|step: &str| eprintln!("bundle: {step}")).await
}

// ---------------------------------------------------------------- local images

/// The images the build saves, made local for `--no-pull` (see the module comment); what this
/// adds to docker is removed on drop.
struct LocalImages {
    added: Vec<String>,
}

fn has_image(reference: &str) -> bool {
    run("docker", &["image", "inspect", reference], None).status.success()
}

impl LocalImages {
    fn ensure(lab: &Bundle, coredns: &str) -> LocalImages {
        let mut added = Vec::new();
        for archive in lab.of_kind(groundwork::bundle::ArtifactKind::Images) {
            let missing: Vec<&String> = archive.images.iter().filter(|r| !has_image(r)).collect();
            if !missing.is_empty() {
                run_ok("docker", &["load", "-q", "-i", &lab.path_of(archive).display().to_string()], None);
                added.extend(missing.into_iter().cloned());
            }
        }
        if !has_image(coredns) {
            // TEST DOUBLE: the lab has no CoreDNS image; pause stands in under CoreDNS's name.
            let pause = lab.images().into_iter().find(|i| i.contains("/pause:")).expect("the lab has pause");
            run_ok("docker", &["tag", pause, coredns], None);
            added.push(coredns.to_string());
        }
        LocalImages { added }
    }
}

impl Drop for LocalImages {
    fn drop(&mut self) {
        for reference in self.added.iter().rev() {
            let _ = run("docker", &["rmi", reference], None);
        }
    }
}

/// The image references inside a `docker save` archive (its manifest.json's RepoTags).
fn tags_in_archive(path: &Path) -> Vec<String> {
    let json = run_ok("tar", &["-xOf", &path.display().to_string(), "manifest.json"], None);
    let manifest: serde_json::Value = serde_json::from_str(&json).expect("the archive's manifest.json");
    let mut tags: Vec<String> = manifest
        .as_array()
        .expect("an array")
        .iter()
        .flat_map(|m| m["RepoTags"].as_array().cloned().unwrap_or_default())
        .filter_map(|t| t.as_str().map(str::to_string))
        .collect();
    tags.sort();
    tags
}

fn files_under(dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).expect("read dir").flatten() {
        let path = entry.path();
        if path.is_dir() {
            found.extend(files_under(&path));
        } else {
            found.push(path.display().to_string());
        }
    }
    found
}

// ---------------------------------------------------------------- tests

#[tokio::test(flavor = "multi_thread")]
async fn builds_the_labs_bundle_from_the_download_sites_and_rebuilds_without_downloading() {
    let lab = lab_bundle();
    let site = site("good", &lab, None);
    let listed = run_ok(
        &lab.path_of(lab.artifact("kubeadm").unwrap()).display().to_string(),
        &["config", "images", "list", "--kubernetes-version", K8S],
        None,
    );
    let coredns = listed.lines().find(|l| l.contains("/coredns")).expect("kubeadm lists CoreDNS").trim().to_string();
    let _images = LocalImages::ensure(&lab, &coredns);
    let out = site.work.0.join("bundle");

    let built = build(&options(&site, &out, ETCD)).await.unwrap_or_else(|e| panic!("{e}"));

    // It opens and verifies with the reader `apply` uses.
    let bundle = Bundle::open(&out).unwrap_or_else(|e| panic!("{e}"));
    let verified = bundle.verify().unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(verified.files, 8);
    assert_eq!(bundle.manifest(), &built.manifest);
    assert_eq!(bundle.kubernetes_version(), K8S);
    assert_eq!(
        built.how,
        [
            How::Downloaded,
            How::Downloaded,
            How::Downloaded,
            How::Extracted,
            How::Extracted,
            How::Extracted,
            How::Saved,
            How::Saved
        ]
    );

    // The same artifacts as the lab's bundle: names, kinds, paths, roles, install paths, versions
    // (but the OS packages, which `bundle packages` adds to the lab's afterwards).
    let shape = |b: &Bundle| -> Vec<_> {
        b.artifacts()
            .iter()
            .filter(|a| !matches!(a.kind, ArtifactKind::Deb | ArtifactKind::AptIndex))
            .map(|a| (a.name.clone(), a.kind, a.path.clone(), a.roles.clone(), a.install_to.clone(), a.version.clone()))
            .collect()
    };
    assert_eq!(shape(&bundle), shape(&lab));

    // Every binary with the sum of what the test double serves (the published one).
    for name in KUBERNETES_BINARIES.iter().chain(&["etcd", "etcdctl", "etcdutl"]) {
        let a = bundle.artifact(name).unwrap();
        assert_eq!(a.sha256, site.sums[*name], "{name}");
        assert_eq!(sha256sum(&bundle.path_of(a)), site.sums[*name], "{name} on disk");
        let mode = std::fs::metadata(bundle.path_of(a)).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o755, "{name}");
    }
    assert_eq!(
        bundle.artifact("kubeadm").unwrap().source.as_deref(),
        Some(format!("{}{}", site.double.base, binary_path("kubeadm")).as_str())
    );
    let etcd_source = bundle.artifact("etcd").unwrap().source.clone().unwrap();
    assert!(etcd_source.contains(&site.sums[ETCD_ARCHIVE]), "{etcd_source}");

    // The images kubeadm lists, split as the lab splits them, CoreDNS with the control plane, etcd's left out.
    let control_plane = bundle.artifact("control-plane-images").unwrap();
    let mut expected = lab.artifact("control-plane-images").unwrap().images.clone();
    expected.push(coredns.clone());
    assert_eq!(control_plane.images, expected);
    assert_eq!(bundle.artifact("node-images").unwrap().images, lab.artifact("node-images").unwrap().images);
    for a in [control_plane, bundle.artifact("node-images").unwrap()] {
        let mut listed = a.images.clone();
        listed.sort();
        assert_eq!(tags_in_archive(&bundle.path_of(a)), listed, "{}", a.path);
    }
    assert!(
        built.not_bundled.iter().all(|i| i.contains("/etcd:")) && built.not_bundled.len() == 1,
        "{:?}",
        built.not_bundled
    );

    // One request per download; nothing half-written or temporary left.
    for path in KUBERNETES_BINARIES.map(binary_path).into_iter().chain([etcd_path(ETCD_ARCHIVE)]) {
        assert_eq!(site.double.requests(&path), 1, "{path}");
    }
    let mut files = files_under(&out);
    files.sort();
    assert_eq!(files.len(), 10, "8 artifacts, manifest.json, SHA256SUMS: {files:#?}");

    // Again into the same directory: the checksum files are asked for again, nothing is downloaded.
    let again = build(&options(&site, &out, ETCD)).await.unwrap_or_else(|e| panic!("{e}"));
    assert!(again.how.iter().all(|h| *h == How::Reused), "{:?}", again.how);
    for path in KUBERNETES_BINARIES.map(binary_path).into_iter().chain([etcd_path(ETCD_ARCHIVE)]) {
        assert_eq!(site.double.requests(&path), 1, "{path} was downloaded again");
    }
    assert_eq!(site.double.requests(&format!("{}.sha256", binary_path("kubelet"))), 2);
    assert_eq!(site.double.requests(&etcd_path("SHA256SUMS")), 2);
    assert_eq!(again.manifest, built.manifest);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_published_sum_fails_naming_the_url_and_both_sums_and_leaves_no_file() {
    let lab = lab_bundle();
    let site = site("wrong-sum", &lab, Some("kubelet"));
    let out = site.work.0.join("bundle");

    let err = build(&options(&site, &out, ETCD)).await.expect_err("a wrong .sha256 fails the build");

    let url = format!("{}{}", site.double.base, binary_path("kubelet"));
    let BuildError::Download(DownloadError::Mismatch { url: got_url, expected, actual, .. }) = &err else {
        panic!("not a checksum mismatch: {err}")
    };
    assert_eq!(got_url, &url);
    assert_eq!(actual, &site.sums["kubelet"]);
    assert_eq!(expected, &site.sums["etcd"], "the published (wrong) sum");
    let message = err.to_string();
    for part in [&url, &site.sums["kubelet"], &site.sums["etcd"]] {
        assert!(message.contains(part.as_str()), "{part} not in: {message}");
    }
    assert!(!out.join("bin/kubelet").exists(), "a file under the final name");
    assert!(!out.join("bin/kubelet.part").exists(), "the partial download was left");
    assert!(!out.join("manifest.json").exists());
    assert!(out.join("bin/kubeadm").is_file(), "kubeadm, downloaded before, is kept for the next run");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_release_the_site_does_not_have_fails_before_downloading_anything() {
    let lab = lab_bundle();
    let site = site("not-found", &lab, None);
    let out = site.work.0.join("bundle");

    let err = build(&options(&site, &out, "3.5.99")).await.expect_err("etcd 3.5.99 is not on the site");

    let message = err.to_string();
    let url = format!("{}/etcd/v3.5.99/SHA256SUMS", site.double.base);
    assert!(message.contains(&url) && message.contains("404"), "{message}");
    for name in KUBERNETES_BINARIES {
        assert_eq!(site.double.requests(&binary_path(name)), 0, "{name} downloaded before the checksums were known");
    }
}
