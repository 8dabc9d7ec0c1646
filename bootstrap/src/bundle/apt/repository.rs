//! A flat apt repository in the bundle (`apt/<os>/`): the packages under `pool/`, their control
//! paragraphs in `Packages` (with each file's path, size and SHA-256), `Release` with the sum of
//! `Packages`, `Release.gpg` (the bundle key's OpenPGP signature) and the key itself as
//! `groundwork-bundle.gpg`, for `deb [signed-by=...] file:/... ./`.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;

use super::closure::ResolvedDeb;
use super::{AptError, OsRelease, run};
use crate::bundle::hash_file;
use crate::bundle::manifest::{Artifact, ArtifactKind};
use crate::bundle::openpgp::OpenPgpKey;

pub const PACKAGES: &str = "Packages";
pub const RELEASE: &str = "Release";
pub const RELEASE_SIGNATURE: &str = "Release.gpg";
pub const KEYRING: &str = "groundwork-bundle.gpg";

/// Writes the repository for `os` into `bundle_dir/apt/<os>/` (an earlier one there is replaced)
/// and returns its files as manifest artifacts: each package with the roles that need it, the
/// index files for every role that has a package. `now`: the signature's time (seconds).
pub fn write(
    bundle_dir: &Path,
    os: &OsRelease,
    debs: &[ResolvedDeb],
    key: &OpenPgpKey,
    now: u32,
) -> Result<Vec<Artifact>, AptError> {
    let rel_dir = os.repository_dir();
    let dir = bundle_dir.join(&rel_dir);
    if dir.exists() {
        std::fs::remove_dir_all(&dir).map_err(|source| AptError::Write { path: dir.clone(), source })?;
    }
    let pool = dir.join("pool");
    std::fs::create_dir_all(&pool).map_err(|source| AptError::Write { path: pool.clone(), source })?;

    let mut sorted: Vec<&ResolvedDeb> = debs.iter().collect();
    sorted.sort_by(|a, b| (&a.name, &a.version).cmp(&(&b.name, &b.version)));
    let mut packages = String::new();
    let mut artifacts = Vec::new();
    let mut all_roles = BTreeSet::new();
    for deb in sorted {
        let file_name = deb
            .file
            .file_name()
            .and_then(|f| f.to_str())
            .ok_or_else(|| AptError::Deb { path: deb.file.clone(), message: "not a file name apt writes".into() })?;
        let target = pool.join(file_name);
        // A hard link where the cache is on the same file system, else a copy.
        if std::fs::hard_link(&deb.file, &target).is_err() {
            std::fs::copy(&deb.file, &target).map_err(|source| AptError::Write { path: target.clone(), source })?;
        }
        let control = control_paragraph(&target)?;
        let (sha256, size) = hash_file(&target).map_err(|source| AptError::Write { path: target.clone(), source })?;
        let _ =
            write!(packages, "{}\nFilename: pool/{file_name}\nSize: {size}\nSHA256: {sha256}\n\n", control.trim_end());
        all_roles.extend(deb.roles.iter().cloned());
        artifacts.push(Artifact {
            name: format!("{}:{}", os.id, deb.name),
            kind: ArtifactKind::Deb,
            path: format!("{rel_dir}/pool/{file_name}"),
            sha256,
            size,
            version: Some(deb.version.clone()),
            install_to: None,
            images: vec![],
            roles: deb.roles.iter().cloned().collect(),
            source: Some(format!("{} ({})", os.id, os.codename)),
        });
    }

    let packages_sum = ring_sha256(packages.as_bytes());
    let release = format!(
        "Origin: groundwork\nLabel: groundwork bundle\nSuite: {codename}\nCodename: {codename}\nDate: {date}\n\
         Architectures: amd64 all\nDescription: the packages groundwork installs on {id}, with their dependencies\n\
         SHA256:\n {packages_sum} {size} {PACKAGES}\n",
        codename = os.codename,
        date = rfc2822(now),
        id = os.id,
        size = packages.len(),
    );
    let index: [(&str, Vec<u8>); 4] = [
        (PACKAGES, packages.into_bytes()),
        (RELEASE, release.clone().into_bytes()),
        (RELEASE_SIGNATURE, key.sign_detached(release.as_bytes(), now)),
        (KEYRING, key.public_keyring(now)),
    ];
    for (name, bytes) in index {
        let path = dir.join(name);
        std::fs::write(&path, &bytes).map_err(|source| AptError::Write { path: path.clone(), source })?;
        artifacts.push(Artifact {
            name: format!("{}:{name}", os.id),
            kind: ArtifactKind::AptIndex,
            path: format!("{rel_dir}/{name}"),
            sha256: ring_sha256(&bytes),
            size: bytes.len() as u64,
            version: None,
            install_to: None,
            images: vec![],
            roles: all_roles.iter().cloned().collect(),
            source: None,
        });
    }
    Ok(artifacts)
}

/// A package's control paragraph, as `dpkg-deb --field` prints it.
fn control_paragraph(deb: &Path) -> Result<String, AptError> {
    let text =
        run(Command::new("dpkg-deb").arg("--field").arg(deb), "dpkg-deb", "read the packages' control fields", "dpkg")?;
    if !text.lines().any(|l| l.starts_with("Package: ")) {
        return Err(AptError::Deb { path: deb.to_path_buf(), message: "its control file has no Package field".into() });
    }
    Ok(text)
}

fn ring_sha256(bytes: &[u8]) -> String {
    hex::encode(ring::digest::digest(&ring::digest::SHA256, bytes).as_ref())
}

/// `Thu, 03 Dec 2026 22:14:00 UTC`, as apt's `Date:` field is written.
fn rfc2822(seconds: u32) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp(i64::from(seconds)).unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
    const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    format!(
        "{}, {:02} {} {} {:02}:{:02}:{:02} UTC",
        DAYS[t.weekday().number_days_from_monday() as usize],
        t.day(),
        MONTHS[u8::from(t.month()) as usize - 1],
        t.year(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_written_as_apt_reads_them() {
        assert_eq!(rfc2822(1_796_336_040), "Thu, 03 Dec 2026 22:14:00 UTC");
        assert_eq!(rfc2822(0), "Thu, 01 Jan 1970 00:00:00 UTC");
    }
}
