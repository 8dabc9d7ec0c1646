//! The bundle's apt repositories: for each OS release it is built for, every Debian package
//! groundwork installs (`crate::os_packages`) with its whole dependency closure, as a flat apt
//! repository under `apt/<os>/` (`Packages`, `Release`, `Release.gpg` signed by the bundle's key
//! in OpenPGP form, that key as `groundwork-bundle.gpg`, and `pool/*.deb`). A node installs from
//! it with no other source configured, and apt checks the signature itself (`signed-by=`).

pub mod closure;
pub mod repository;

use std::path::PathBuf;

/// An OS release a bundle can carry packages for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
pub struct OsRelease {
    /// As `--os` and the nodes' facts name it: `debian-12`.
    pub id: &'static str,
    /// The distribution's suite codename.
    pub codename: &'static str,
    /// The PostgreSQL major version the release ships.
    pub postgresql: u32,
}

/// The releases `bundle packages` resolves for (Debian's archive layout and keyring).
pub const SUPPORTED: &[OsRelease] = &[
    OsRelease { id: "debian-12", codename: "bookworm", postgresql: 15 },
    OsRelease { id: "debian-13", codename: "trixie", postgresql: 17 },
];

#[derive(Debug, thiserror::Error)]
pub enum AptError {
    #[error(
        "`{os}` is not an OS release groundwork bundles packages for; supported: {}",
        SUPPORTED.iter().map(|o| o.id).collect::<Vec<_>>().join(", ")
    )]
    UnsupportedOs { os: String },
    #[error("{program} is needed to {what} (it comes with Debian's {package} package): {source}")]
    Tool { program: &'static str, what: &'static str, package: &'static str, source: std::io::Error },
    #[error("{command} failed ({status}):\n{output}")]
    Command { command: String, status: String, output: String },
    #[error("{}: {message}", path.display())]
    Deb { path: PathBuf, message: String },
    #[error("cannot write {}: {source}", path.display())]
    Write { path: PathBuf, source: std::io::Error },
}

impl OsRelease {
    pub fn find(id: &str) -> Result<OsRelease, AptError> {
        SUPPORTED.iter().copied().find(|o| o.id == id).ok_or_else(|| AptError::UnsupportedOs { os: id.to_string() })
    }

    /// The repository's directory in the bundle (and, under the upload directory, on a node).
    pub fn repository_dir(&self) -> String {
        format!("apt/{}", self.id)
    }
}

/// Runs `command`, returning its stdout; a failure carries its output.
fn run(
    command: &mut std::process::Command,
    program: &'static str,
    what: &'static str,
    package: &'static str,
) -> Result<String, AptError> {
    let shown = format!("{command:?}");
    let out = command.output().map_err(|source| AptError::Tool { program, what, package, source })?;
    if !out.status.success() {
        let mut output = String::from_utf8_lossy(&out.stderr).to_string();
        output.push_str(&String::from_utf8_lossy(&out.stdout));
        let tail: Vec<&str> = output.lines().rev().take(20).collect();
        return Err(AptError::Command {
            command: shown,
            status: out.status.to_string(),
            output: tail.into_iter().rev().collect::<Vec<_>>().join("\n"),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).to_string())
}
