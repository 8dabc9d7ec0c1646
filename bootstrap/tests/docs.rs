//! `groundwork completions` and `groundwork man`, used as an operator's shell and `man` use them:
//! bash completes subcommands and flags from the generated script, and every page renders with
//! man(1) without a warning.

use std::path::Path;
use std::process::Command;

fn groundwork(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_groundwork")).args(args).output().expect("groundwork runs")
}

/// What bash offers for `line` (the word being completed is the last one), with the script loaded.
fn bash_completes(line: &[&str]) -> Vec<String> {
    let words = line.iter().map(|w| format!("'{w}'")).collect::<Vec<_>>().join(" ");
    let cword = line.len() - 1;
    let script = format!(
        "source <('{bin}' completions bash) && COMP_WORDS=({words}) && COMP_CWORD={cword} && \
         COMP_LINE='{joined}' && COMP_POINT=${{#COMP_LINE}} && _groundwork groundwork '{cur}' '{prev}' && \
         printf '%s\\n' \"${{COMPREPLY[@]}}\"",
        bin = env!("CARGO_BIN_EXE_groundwork"),
        joined = line.join(" "),
        cur = line[cword],
        prev = line[cword - 1],
    );
    let out = Command::new("bash").args(["-c", &script]).output().expect("bash runs");
    assert!(out.status.success(), "bash: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).lines().map(str::to_string).collect()
}

#[test]
fn bash_completes_subcommands_nested_ones_and_flags() {
    let ap = bash_completes(&["groundwork", "ap"]);
    assert!(ap.contains(&"apply".to_string()) && !ap.contains(&"validate".to_string()), "{ap:?}");
    assert_eq!(bash_completes(&["groundwork", "bundle", "pa"]), ["packages"]);
    assert_eq!(bash_completes(&["groundwork", "images", "push", "--fr"]), ["--from"]);
    assert!(bash_completes(&["groundwork", "apply", "--sk"]).contains(&"--skip-phases".to_string()));
}

#[test]
fn zsh_and_fish_scripts_name_every_subcommand() {
    for shell in ["zsh", "fish"] {
        let out = groundwork(&["completions", shell]);
        assert!(out.status.success());
        let text = String::from_utf8_lossy(&out.stdout);
        for sub in ["apply", "upgrade", "images", "bundle", "kubeconfig"] {
            assert!(text.contains(sub), "{shell} script lacks {sub}");
        }
    }
    assert!(String::from_utf8_lossy(&groundwork(&["completions", "zsh"]).stdout).starts_with("#compdef groundwork"));
    let out = groundwork(&["completions", "tcsh"]);
    assert_eq!(out.status.code(), Some(2), "an unknown shell is a usage error");
}

/// man(1), installed on this machine when missing (a fresh CI machine may have none).
fn ensure_man() {
    if Command::new("sh").args(["-c", "command -v man && command -v groff"]).output().is_ok_and(|o| o.status.success())
    {
        return;
    }
    let out = Command::new("apt-get")
        .args(["install", "-y", "-qq", "--no-install-recommends", "man-db", "groff-base"])
        .env("DEBIAN_FRONTEND", "noninteractive")
        .output()
        .expect("apt-get runs");
    assert!(out.status.success(), "apt-get install man-db: {}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn every_subcommand_has_a_man_page_that_man_renders_cleanly() {
    ensure_man();
    let dir = tempfile::tempdir().unwrap();
    let out = groundwork(&["man", "--out", dir.path().to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let pages: Vec<String> = String::from_utf8_lossy(&out.stdout).lines().map(str::to_string).collect();
    for want in [
        "groundwork.1",
        "groundwork-apply.1",
        "groundwork-bundle-packages.1",
        "groundwork-images-push.1",
        "groundwork-node-remove.1",
    ] {
        assert!(pages.iter().any(|p| p.ends_with(want)), "no {want} among {pages:?}");
    }
    // Every subcommand `groundwork --help` lists has its page.
    let help = String::from_utf8_lossy(&groundwork(&["--help"]).stdout).to_string();
    let listed: Vec<&str> = help
        .lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| *c != "help")
        .collect();
    assert!(listed.len() > 15, "{help}");
    for c in listed {
        assert!(dir.path().join(format!("groundwork-{c}.1")).is_file(), "no page for `groundwork {c}`");
    }
    for page in &pages {
        let rendered = Command::new("man")
            .args(["--warnings", "-l"])
            .arg(Path::new(page))
            .env("MANWIDTH", "100")
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&rendered.stdout);
        assert!(rendered.status.success() && text.contains("NAME") && text.contains("SYNOPSIS"), "{page}: {text}");
        let warnings = String::from_utf8_lossy(&rendered.stderr);
        assert!(warnings.trim().is_empty(), "{page}: man warns: {warnings}");
    }
    let push = std::fs::read_to_string(dir.path().join("groundwork-images-push.1")).unwrap();
    assert!(push.contains("groundwork images push") && push.contains("from"), "{push}");
}
