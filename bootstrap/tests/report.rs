//! `groundwork report --offline` as a person meets it: the shipped example inventory
//! (`inventory/sdc-example.yaml`) with a state directory beside it (a journal, the cluster CA, a
//! generated password), the page opened in a real headless Chromium, and its screenshot read by
//! tesseract: every host's name must be visible on the page, the masters side by side in the
//! picture. The PDF is written and is one; without Chromium on PATH the report still is, and
//! says so. Chromium and tesseract are installed with apt-get when missing.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const OWNER_PASSWORD: &str = "cli-report-owner-password-3c9e";

/// The shipped example's hosts (one is named `bastion`: it serves the registry; the bastion itself
/// is drawn under that name too).
const HOSTS: [&str; 12] = [
    "master-1",
    "master-2",
    "master-3",
    "worker-1",
    "worker-2",
    "worker-3",
    "worker-4",
    "worker-5",
    "worker-6",
    "storage-1",
    "db-1",
    "bastion",
];

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A Debian package's program, installed on this machine when missing (a fresh CI machine has neither).
fn ensure_program(program: &str, packages: &[&str]) -> PathBuf {
    let find = || {
        Command::new("sh")
            .args(["-c", &format!("command -v {program}")])
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| PathBuf::from(text(&o.stdout).trim()))
    };
    if let Some(p) = find() {
        return p;
    }
    let update = Command::new("apt-get").args(["update", "-qq"]).output().expect("apt-get runs");
    assert!(update.status.success(), "apt-get update: {}", text(&update.stderr));
    let out = Command::new("apt-get")
        .args(["install", "-y", "-qq", "--no-install-recommends"])
        .args(packages)
        .env("DEBIAN_FRONTEND", "noninteractive")
        .output()
        .expect("apt-get runs");
    assert!(out.status.success(), "apt-get install {packages:?}: {}", text(&out.stderr));
    find().unwrap_or_else(|| panic!("{program} is not on PATH after installing {packages:?}"))
}

struct Fixture {
    dir: tempfile::TempDir,
}

impl Fixture {
    /// The shipped example inventory in a directory of its own, with a state directory beside it.
    fn new() -> Fixture {
        let dir = tempfile::tempdir().expect("temp dir");
        let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../inventory/sdc-example.yaml");
        std::fs::copy(&example, dir.path().join("inventory.yaml")).expect("the shipped example");
        let state = dir.path().join(".groundwork/digit-sdc");
        std::fs::create_dir_all(state.join("pki")).expect("state");
        std::fs::create_dir_all(state.join("secrets")).expect("state");
        std::fs::write(state.join("secrets/db-egov_owner"), OWNER_PASSWORD).expect("password");
        let key = rcgen::KeyPair::generate().expect("key");
        let mut params = rcgen::CertificateParams::new(vec![]).expect("params");
        params.distinguished_name.push(rcgen::DnType::CommonName, "kubernetes");
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.not_after = time::OffsetDateTime::now_utc() + time::Duration::days(20);
        std::fs::write(state.join("pki/ca.crt"), params.self_signed(&key).expect("CA").pem()).expect("ca.crt");
        std::fs::write(state.join("pki/ca.key"), key.serialize_pem()).expect("ca.key");
        let journal = serde_json::json!({"phases": {
            "prepare-os": {"worker-6": {"status": "done", "at": 1_780_000_050, "took_ms": 61_000, "changes": 9}},
            "kubeadm-init": {"master-1": {"status": "failed", "at": 1_780_000_300, "took_ms": 2_500, "changes": 0,
                                          "error": "kubeadm init: the API server did not come up"}},
        }});
        std::fs::write(state.join("journal.json"), serde_json::to_vec(&journal).unwrap()).expect("journal");
        Fixture { dir }
    }

    fn out(&self) -> PathBuf {
        self.dir.path().join("report")
    }

    fn report(&self, extra: &[&str], path_var: Option<&Path>) -> Output {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_groundwork"));
        cmd.args(["report", "--offline", "-i"]).arg(self.dir.path().join("inventory.yaml")).arg("--out");
        cmd.arg(self.out()).args(extra);
        if let Some(p) = path_var {
            cmd.env("PATH", p);
        }
        cmd.output().expect("groundwork runs")
    }
}

/// What a person sees of `page`: Chromium's screenshot of it, read by tesseract.
fn seen(chromium: &Path, page: &Path, dir: &Path) -> String {
    let shot = dir.join("screenshot.png");
    let profile = tempfile::tempdir().expect("profile");
    let out = Command::new(chromium)
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars"])
        .args(["--force-device-scale-factor=2", "--window-size=1100,1900"])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(format!("--screenshot={}", shot.display()))
        .arg(format!("file://{}", page.canonicalize().expect("page").display()))
        .output()
        .expect("chromium runs");
    assert!(out.status.success() && shot.is_file(), "chromium's screenshot: {}", text(&out.stderr));
    let ocr = Command::new("tesseract").arg(&shot).arg("-").output().expect("tesseract runs");
    assert!(ocr.status.success(), "tesseract: {}", text(&ocr.stderr));
    text(&ocr.stdout)
}

#[test]
fn the_offline_report_shows_every_host_to_a_person_and_prints_to_pdf() {
    let chromium = ensure_program("chromium", &["chromium"]);
    ensure_program("tesseract", &["tesseract-ocr", "tesseract-ocr-eng"]);
    let f = Fixture::new();
    let out = f.report(&[], None);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("report.html") && stdout.contains("not gathered:"), "{stdout}");
    assert!(stdout.contains("pdf: ") && stdout.contains("report.pdf"), "{stdout}");

    let html_file = f.out().join("report.html");
    let html = std::fs::read_to_string(&html_file).expect("report.html");
    assert!(!html.contains(OWNER_PASSWORD) && !html.contains("PRIVATE KEY"), "a secret is in the page");
    assert!(html.contains("--offline"), "the page says it was made offline");
    assert!(html.contains("kubeadm init: the API server did not come up"), "the journal's failure");
    let pdf = std::fs::read(f.out().join("report.pdf")).expect("report.pdf");
    assert!(pdf.starts_with(b"%PDF"), "report.pdf is not a PDF");
    assert!(pdf.len() > 10_000, "report.pdf is {} bytes", pdf.len());

    let page = seen(&chromium, &html_file, f.dir.path());
    let lower = page.to_lowercase();
    let missing: Vec<&str> = HOSTS.iter().copied().filter(|h| !lower.contains(*h)).collect();
    assert!(missing.is_empty(), "not visible on the page: {missing:?}\nwhat tesseract read:\n{page}");
    // The picture's row of masters: the three side by side on one line (the host table has one per line).
    assert!(
        lower.lines().any(|l| ["master-1", "master-2", "master-3"].iter().all(|m| l.contains(m))),
        "the picture's masters are not side by side:\n{page}"
    );
    assert!(lower.contains("virtual ip") || lower.contains("api endpoint"), "the endpoint is drawn:\n{page}");
    assert!(lower.contains("not gathered"), "the page says what was not gathered:\n{page}");
}

#[test]
fn json_output_is_the_gathered_data() {
    let f = Fixture::new();
    let out = f.report(&["-o", "json"], None);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let data: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON on stdout");
    let schema: serde_json::Value = serde_json::from_str(&groundwork::ops::output::schema_json()).unwrap();
    let errors: Vec<String> = jsonschema::validator_for(&schema)
        .expect("the report schema compiles")
        .iter_errors(&data)
        .map(|e| format!("{e} at {}", e.instance_path))
        .collect();
    assert!(errors.is_empty(), "not the report schema: {errors:?}");
    assert_eq!((data["command"].as_str(), data["kind"].as_str()), (Some("report"), Some("report")));
    assert_eq!(data["offline"], true);
    let names: Vec<&str> = data["hosts"].as_array().expect("hosts").iter().filter_map(|h| h["name"].as_str()).collect();
    assert_eq!(names.len(), 12, "{names:?}");
    assert!(names.contains(&"worker-6") && names.contains(&"db-1"));
    assert_eq!(data["kubernetes"]["status"], "not_gathered");
    let ca = &data["certificates"]["state"][0];
    assert_eq!((ca["subject"].as_str(), ca["health"].as_str()), (Some("kubernetes"), Some("warn")), "{ca}");
    assert_eq!(data["last_apply"]["phases"][0]["phase"], "prepare-os", "apply's order");
    assert!(!text(&out.stdout).contains(OWNER_PASSWORD));
    assert!(f.out().join("report.html").is_file(), "the page is written too");
}

#[test]
fn without_a_converter_the_report_is_written_and_says_so() {
    let f = Fixture::new();
    let empty = f.dir.path().join("empty-path");
    std::fs::create_dir_all(&empty).expect("dir");
    let out = f.report(&[], Some(&empty));
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", text(&out.stderr));
    assert!(stdout.contains("no converter found"), "{stdout}");
    assert!(f.out().join("report.html").is_file());
    assert!(!f.out().join("report.pdf").exists());
}
