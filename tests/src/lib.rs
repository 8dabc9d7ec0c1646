//! Helpers for tests that run against the built-in container lab. The lab is real: systemd
//! containers with sshd behind a bastion, brought up by `tests/lab/lab up` (`tests/run` does it).
//! These helpers look at it from outside with independent tools (docker, OpenSSH), so that a
//! test of groundwork never has to trust groundwork to tell it what the lab is.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use groundwork::inventory::{self, Inventory};

pub struct Lab {
    pub root: PathBuf,
    pub state: PathBuf,
    pub inventory_path: PathBuf,
    pub inventory: Inventory,
}

impl Lab {
    /// The running lab, or a failed test that says how to bring it up.
    pub fn require() -> Lab {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..").canonicalize().expect("repository root");
        let state = root.join(".lab");
        let inventory_path = root.join("inventory/lab.yaml");
        assert!(
            state.join("known_hosts").is_file(),
            "the lab is not up: run `tests/lab/lab up` first (`tests/run` brings it up and runs every test)"
        );
        let loaded = inventory::load(&inventory_path)
            .unwrap_or_else(|e| panic!("the lab's inventory {} does not load: {e}", inventory_path.display()));
        Lab { root, state, inventory_path, inventory: loaded.inventory }
    }

    pub fn container(&self, host: &str) -> String {
        format!("gwlab-{host}")
    }

    /// Runs `cmd` on `host` through the bastion with OpenSSH and the lab's own client config.
    pub fn ssh(&self, host: &str, cmd: &str) -> Output {
        Command::new("ssh")
            .arg("-F")
            .arg(self.state.join("ssh_config"))
            .args(["-o", "BatchMode=yes", "-o", "ConnectTimeout=10", host, cmd])
            .output()
            .expect("ssh runs")
    }

    /// Runs the lab script with `args`.
    pub fn script(&self, args: &[&str]) -> Output {
        Command::new(self.root.join("tests/lab/lab")).args(args).output().expect("tests/lab/lab runs")
    }

    pub fn docker(&self, args: &[&str]) -> Output {
        Command::new("docker").args(args).output().expect("docker runs")
    }
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

pub fn file_digest(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}
