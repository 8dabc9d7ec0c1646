//! The bundle's apt repository, built from a **test double** of a Debian archive (a few small
//! packages made with dpkg-deb, an archive layout with a `Release` signed by a test key, read by
//! apt through a `file:` URI) and checked with the real apt: the closure apt resolves holds every
//! dependency and nothing else, with the roles that need each package; the repository written
//! from it is accepted by `apt-get update` with `signed-by=` its own keyring (gpgv checks
//! `Release.gpg`), installs resolve from it alone, and a changed `Packages` or a `Release` signed
//! by another key is refused by apt. Needs Debian's apt, dpkg-deb and gpgv (any Debian has them).
//! The real Debian archive is the lab's part (tests/it).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use groundwork::bundle::apt::closure::{self, ArchiveSource};
use groundwork::bundle::apt::{OsRelease, repository};
use groundwork::bundle::manifest::ArtifactKind;
use groundwork::bundle::openpgp::OpenPgpKey;

const NOW: u32 = 1_796_336_040;

fn sh(command: &mut Command) -> String {
    let out = command.output().unwrap_or_else(|e| panic!("{command:?}: {e}"));
    assert!(
        out.status.success(),
        "{command:?}: {}{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stdout).to_string()
}

/// A package with only a control file.
fn fake_deb(out: &Path, name: &str, version: &str, depends: &str) -> PathBuf {
    let root = out.join(format!("src-{name}"));
    std::fs::create_dir_all(root.join("DEBIAN")).unwrap();
    let depends = if depends.is_empty() { String::new() } else { format!("Depends: {depends}\n") };
    std::fs::write(
        root.join("DEBIAN/control"),
        format!(
            "Package: {name}\nVersion: {version}\nArchitecture: all\nMaintainer: test <t@example.invalid>\n{depends}\
             Description: a test double's package\n"
        ),
    )
    .unwrap();
    let deb = out.join(format!("{name}_{version}_all.deb"));
    sh(Command::new("dpkg-deb").args(["--root-owner-group", "--build"]).arg(&root).arg(&deb));
    deb
}

/// A Debian-style archive at `dir` (dists/bookworm/main/binary-amd64/Packages, a signed Release).
fn fake_archive(dir: &Path, key: &OpenPgpKey) {
    let pool = dir.join("pool");
    std::fs::create_dir_all(&pool).unwrap();
    let debs = [
        fake_deb(&pool, "gw-app", "1.0-1", "gw-lib (>= 2.0), gw-either | gw-or"),
        fake_deb(&pool, "gw-lib", "2.1-1", "gw-base"),
        fake_deb(&pool, "gw-base", "1:3.0-1", ""),
        fake_deb(&pool, "gw-either", "1.0", ""),
        fake_deb(&pool, "gw-or", "1.0", ""),
        fake_deb(&pool, "gw-server", "5.0", "gw-base"),
        fake_deb(&pool, "gw-unrelated", "9.9", ""),
    ];
    let mut packages = String::new();
    for deb in &debs {
        let control = sh(Command::new("dpkg-deb").arg("--field").arg(deb));
        let bytes = std::fs::read(deb).unwrap();
        let sum = hex::encode(ring::digest::digest(&ring::digest::SHA256, &bytes).as_ref());
        let file = deb.file_name().unwrap().to_str().unwrap();
        packages.push_str(&format!(
            "{}\nFilename: pool/{file}\nSize: {}\nSHA256: {sum}\n\n",
            control.trim_end(),
            bytes.len()
        ));
    }
    let index = dir.join("dists/bookworm/main/binary-amd64");
    std::fs::create_dir_all(&index).unwrap();
    std::fs::write(index.join("Packages"), &packages).unwrap();
    let sum = hex::encode(ring::digest::digest(&ring::digest::SHA256, packages.as_bytes()).as_ref());
    let release = format!(
        "Origin: test double\nSuite: bookworm\nCodename: bookworm\nDate: Thu, 03 Dec 2026 22:14:00 UTC\n\
         Architectures: amd64\nComponents: main\nSHA256:\n {sum} {} main/binary-amd64/Packages\n",
        packages.len()
    );
    std::fs::write(dir.join("dists/bookworm/Release"), &release).unwrap();
    std::fs::write(dir.join("dists/bookworm/Release.gpg"), key.sign_detached(release.as_bytes(), NOW)).unwrap();
    std::fs::write(dir.join("archive-key.gpg"), key.public_keyring(NOW)).unwrap();
}

/// `apt-get` in a private root reading only `sources`.
fn apt(root: &Path, sources: &str, args: &[&str]) -> std::process::Output {
    for d in ["etc/sources.list.d", "etc/preferences.d", "state/lists/partial", "cache/archives/partial", "log"] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    std::fs::write(root.join("etc/sources.list"), sources).unwrap();
    if !root.join("status").exists() {
        std::fs::write(root.join("status"), "").unwrap();
    }
    let d = |p: &str| root.join(p).display().to_string();
    let mut c = Command::new("apt-get");
    for (o, v) in [
        ("Dir::Etc", d("etc")),
        ("Dir::Etc::SourceParts", d("etc/sources.list.d")),
        ("Dir::Etc::PreferencesParts", d("etc/preferences.d")),
        ("Dir::State", d("state")),
        ("Dir::State::status", d("status")),
        ("Dir::Cache", d("cache")),
        ("Dir::Log", d("log")),
        ("Debug::NoLocking", "1".into()),
        ("APT::Sandbox::User", "root".into()),
    ] {
        c.arg("-o").arg(format!("{o}={v}"));
    }
    c.args(["-q", "-y"]).args(args).output().expect("apt-get runs")
}

#[test]
fn the_closure_becomes_a_signed_repository_apt_accepts_and_refuses_when_changed() {
    let tmp = tempfile::tempdir().unwrap();
    let archive_key = OpenPgpKey::from_seed(&[3; 32], "test double archive");
    let archive = tmp.path().join("archive");
    fake_archive(&archive, &archive_key);

    let os = OsRelease::find("debian-12").unwrap();
    let source = ArchiveSource {
        // `copy:`, not `file:`: apt copies the packages into its cache, as it downloads over HTTP.
        mirror: format!("copy:{}", archive.display()),
        suites: vec!["bookworm".into()],
        keyring: archive.join("archive-key.gpg"),
    };
    let wanted: BTreeMap<String, Vec<String>> =
        [("worker".to_string(), vec!["gw-app".to_string()]), ("storage".to_string(), vec!["gw-server".to_string()])]
            .into();
    let resolved = closure::resolve(&source, &wanted, &tmp.path().join("work"), &|s| eprintln!("{s}")).unwrap();
    let found: Vec<(String, String, Vec<String>)> =
        resolved.iter().map(|d| (d.name.clone(), d.version.clone(), d.roles.iter().cloned().collect())).collect();
    let want = |n: &str, v: &str, r: &[&str]| {
        (n.to_string(), v.to_string(), r.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    };
    assert_eq!(
        found,
        vec![
            want("gw-app", "1.0-1", &["worker"]),
            want("gw-base", "1:3.0-1", &["storage", "worker"]),
            want("gw-either", "1.0", &["worker"]),
            want("gw-lib", "2.1-1", &["worker"]),
            want("gw-server", "5.0", &["storage"]),
        ],
        "the closure: every dependency (the first of alternatives), nothing unrelated, the epoch kept"
    );

    let bundle_key = OpenPgpKey::from_seed(&[9; 32], "groundwork bundle key (test)");
    let bundle = tmp.path().join("bundle");
    let artifacts = repository::write(&bundle, &os, &resolved, &bundle_key, NOW).unwrap();
    let debs: Vec<_> = artifacts.iter().filter(|a| a.kind == ArtifactKind::Deb).collect();
    assert_eq!(debs.len(), 5);
    assert!(debs.iter().all(|a| a.path.starts_with("apt/debian-12/pool/") && bundle.join(&a.path).is_file()));
    let index: Vec<&str> =
        artifacts.iter().filter(|a| a.kind == ArtifactKind::AptIndex).map(|a| a.path.as_str()).collect();
    assert_eq!(
        index,
        [
            "apt/debian-12/Packages",
            "apt/debian-12/Release",
            "apt/debian-12/Release.gpg",
            "apt/debian-12/groundwork-bundle.gpg"
        ]
    );
    for a in &artifacts {
        let bytes = std::fs::read(bundle.join(&a.path)).unwrap();
        assert_eq!(a.size, bytes.len() as u64, "{}", a.path);
        assert_eq!(a.sha256, hex::encode(ring::digest::digest(&ring::digest::SHA256, &bytes).as_ref()), "{}", a.path);
    }

    // apt, as a node runs it: only this repository, checked with its own keyring.
    let repo = bundle.join("apt/debian-12");
    let sources =
        format!("deb [signed-by={}] file:{} ./\n", repo.join("groundwork-bundle.gpg").display(), repo.display());
    let node = tmp.path().join("node");
    let update = apt(&node, &sources, &["update"]);
    let said = String::from_utf8_lossy(&update.stderr).to_string() + &String::from_utf8_lossy(&update.stdout);
    assert!(update.status.success() && !said.contains("W: ") && !said.contains("E: "), "{said}");
    let plan = apt(&node, &sources, &["install", "--simulate", "gw-app", "gw-server"]);
    let planned = String::from_utf8_lossy(&plan.stdout).to_string();
    assert!(plan.status.success(), "{planned}{}", String::from_utf8_lossy(&plan.stderr));
    assert_eq!(closure::installs(&planned).len(), 5, "{planned}");

    // A changed Packages: apt refuses it (its sum is in the signed Release).
    let packages = repo.join("Packages");
    let text = std::fs::read_to_string(&packages).unwrap();
    std::fs::write(&packages, text.replace("Version: 5.0", "Version: 5.1")).unwrap();
    let refused = apt(&tmp.path().join("node-changed"), &sources, &["update"]);
    let said = String::from_utf8_lossy(&refused.stderr).to_string() + &String::from_utf8_lossy(&refused.stdout);
    assert!(!refused.status.success() || said.contains("Hash Sum mismatch") || said.contains("E: "), "{said}");
    std::fs::write(&packages, text).unwrap();

    // The repository signed by another key than the keyring's: apt refuses it.
    let other = OpenPgpKey::from_seed(&[10; 32], "another key");
    let release = std::fs::read(repo.join("Release")).unwrap();
    std::fs::write(repo.join("Release.gpg"), other.sign_detached(&release, NOW)).unwrap();
    let refused = apt(&tmp.path().join("node-other-key"), &sources, &["update"]);
    let said = String::from_utf8_lossy(&refused.stderr).to_string() + &String::from_utf8_lossy(&refused.stdout);
    assert!(said.contains("NO_PUBKEY") || said.contains("not signed") || said.contains("is not signed"), "{said}");
    let plan = apt(&tmp.path().join("node-other-key"), &sources, &["install", "--simulate", "gw-app"]);
    assert!(!plan.status.success(), "an unverified repository's packages must not install");
}

#[test]
fn an_os_the_bundle_does_not_know_is_refused_by_name() {
    let err = OsRelease::find("ubuntu-22.04").unwrap_err().to_string();
    assert!(err.contains("ubuntu-22.04") && err.contains("debian-12") && err.contains("debian-13"), "{err}");
}
