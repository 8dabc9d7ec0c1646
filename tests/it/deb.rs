//! The Debian package as an operator installs it: `packaging/deb/build` makes it, `dpkg -i`
//! installs it in a clean Debian 12 container (the lab's debootstrap base image, nothing of
//! groundwork's in it), and the packaged `groundwork facts` reaches every lab host through the
//! bastion with the packaged agent found without any flag; man pages and completions are where
//! Debian looks for them; `dpkg --purge` leaves nothing behind.
//!
//! The package carries the test build of the controller (`--controller target/debug/groundwork`):
//! a release build would add minutes to CI; the script and the package are otherwise the same.

use std::path::{Path, PathBuf};
use std::process::Command;

use groundwork_lab_tests::{Lab, text};

fn base_image(lab: &Lab) -> String {
    let out = lab.docker(&["images", "--filter", "reference=gwlab-base", "--format", "{{.Repository}}:{{.Tag}}"]);
    let image = text(&out.stdout).lines().next().map(str::to_string);
    image.expect("the lab's Debian 12 base image (tests/lab/lab up builds it)")
}

fn build_deb(lab: &Lab, out: &Path) -> PathBuf {
    let controller = lab.groundwork_bin();
    let agent = lab.root.join("target/x86_64-unknown-linux-musl/release-agent/groundwork-agent");
    let built = Command::new(lab.root.join("packaging/deb/build"))
        .args(["--out", out.to_str().unwrap(), "--controller", controller.to_str().unwrap()])
        .args(["--agent", agent.to_str().unwrap()])
        .output()
        .expect("packaging/deb/build runs");
    assert!(built.status.success(), "packaging/deb/build failed:\n{}", text(&built.stderr));
    let deb = PathBuf::from(text(&built.stdout).trim());
    assert!(deb.is_file() && deb.extension().is_some_and(|e| e == "deb"), "{}", deb.display());
    deb
}

#[test]
fn the_package_installs_on_a_clean_debian_12_and_its_groundwork_reaches_the_lab() {
    let lab = Lab::require();
    let dir = lab.scratch("deb");
    let deb = build_deb(&lab, &dir);
    let inventory = lab.inventory_copy(&dir, |t| t);
    let root = lab.root.display().to_string();
    let shared = lab.root.join("../shared").canonicalize().unwrap();
    let script = format!(
        r#"set -e
command -v groundwork && exit 10
dpkg -i {deb}
echo "== version"; groundwork --version
echo "== files"; dpkg -L groundwork
echo "== completion"; bash -c '. /usr/share/bash-completion/completions/groundwork && complete -p groundwork'
echo "== facts"; cd {dir}; groundwork facts -i {inventory} -o json > facts.json
echo "== purge"; dpkg --purge groundwork
test ! -e /usr/bin/groundwork && test ! -e /usr/lib/groundwork && echo purged"#,
        deb = deb.display(),
        dir = dir.display(),
        inventory = inventory.display(),
    );
    let out = lab.docker(&[
        "run",
        "--rm",
        "--network",
        "host",
        "-v",
        &format!("{root}:{root}"),
        "-v",
        &format!("{0}:{0}:ro", shared.display()),
        &base_image(&lab),
        "bash",
        "-c",
        &script,
    ]);
    let said = format!("{}\n{}", text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "in the clean container:\n{said}");

    let section =
        |name: &str| said.split(&format!("== {name}\n")).nth(1).and_then(|s| s.split("\n== ").next()).unwrap();
    assert!(
        section("version").contains("agent binary: /usr/lib/groundwork/groundwork-agent"),
        "the packaged agent is found without a flag: {}",
        section("version")
    );
    for file in [
        "/usr/bin/groundwork",
        "/usr/lib/groundwork/groundwork-agent",
        "/usr/share/man/man1/groundwork.1.gz",
        "/usr/share/man/man1/groundwork-apply.1.gz",
        "/usr/share/zsh/vendor-completions/_groundwork",
        "/usr/share/fish/vendor_completions.d/groundwork.fish",
        "/usr/share/doc/groundwork/copyright",
    ] {
        assert!(section("files").lines().any(|l| l == file), "the package lacks {file}:\n{}", section("files"));
    }
    assert!(section("completion").contains("groundwork"), "{}", section("completion"));
    assert!(said.trim_end().ends_with("purged"), "{said}");

    let facts = groundwork_lab_tests::report_json(&std::fs::read(dir.join("facts.json")).unwrap(), &said);
    let hosts = facts["hosts"].as_array().unwrap();
    assert_eq!(hosts.len(), lab.inventory.hosts.len() + 1, "every host and the bastion: {facts}");
    for h in hosts {
        assert!(h["facts"]["hostname"].is_string(), "{} gave no facts: {h}", h["name"]);
    }
}
