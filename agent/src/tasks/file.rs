//! `file`: a regular file with exactly this content, mode and owner. Also the helper every task
//! that keeps a file (sysctl.d, modules-load.d, /etc/hosts, ...) uses.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use groundwork_protocol::Report;

use super::{diff, fsx};

/// How a file on disk differs from what it should be.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Change {
    pub created: bool,
    pub content: bool,
    /// (found, wanted)
    pub mode: Option<(u32, u32)>,
    /// ((uid, gid) found, wanted)
    pub owner: Option<((u32, u32), (u32, u32))>,
    /// The old content (empty when created), as text for a diff.
    pub old: String,
}

impl Change {
    pub fn any(&self) -> bool {
        self.created || self.content || self.mode.is_some() || self.owner.is_some()
    }

    /// "created", or e.g. "content changed, mode 0644 -> 0600, owner 0:0 -> 998:997".
    pub fn describe(&self, dry: bool, secret: bool) -> String {
        let mut parts = Vec::new();
        if self.created {
            parts.push(if dry { "would be created" } else { "created" }.to_string());
        } else if self.content {
            let what = if dry { "content would change" } else { "content changed" };
            parts.push(if secret { format!("{what} (secret: no diff)") } else { what.to_string() });
        }
        if let (Some((from, to)), false) = (self.mode, self.created) {
            parts.push(format!("mode {from:04o} -> {to:04o}"));
        }
        if let (Some(((fu, fg), (tu, tg))), false) = (self.owner, self.created) {
            parts.push(format!("owner {fu}:{fg} -> {tu}:{tg}"));
        }
        parts.join(", ")
    }
}

/// Makes `path` hold `content` with `mode` (None: keep the current mode, 0644 for a new file) and
/// `owner` (None: keep; a new file belongs to the agent, root). With `dry`, only compares.
pub fn sync(
    path: &Path,
    content: &[u8],
    mode: Option<u32>,
    owner: Option<(u32, u32)>,
    dry: bool,
) -> Result<Change, String> {
    let meta = match fs::metadata(path) {
        Ok(m) if !m.is_file() => return Err(format!("{} exists and is not a regular file", path.display())),
        Ok(m) => Some(m),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(format!("cannot inspect {}: {e}", path.display())),
    };
    let mut change = Change::default();
    let wanted_mode;
    match &meta {
        None => {
            change.created = true;
            wanted_mode = mode.unwrap_or(0o644);
        }
        Some(m) => {
            let old = fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            change.content = old != content;
            change.old = String::from_utf8_lossy(&old).into_owned();
            let found = m.permissions().mode() & 0o7777;
            wanted_mode = mode.unwrap_or(found);
            if found != wanted_mode {
                change.mode = Some((found, wanted_mode));
            }
            if let Some(want) = owner.filter(|&o| o != (m.uid(), m.gid())) {
                change.owner = Some(((m.uid(), m.gid()), want));
            }
        }
    }
    if dry || !change.any() {
        return Ok(change);
    }
    if change.created || change.content {
        fsx::write(path, content, wanted_mode, owner)?;
    } else {
        if let Some(((_, _), (uid, gid))) = change.owner {
            std::os::unix::fs::chown(path, Some(uid), Some(gid))
                .map_err(|e| format!("cannot change the owner of {} to {uid}:{gid}: {e}", path.display()))?;
        }
        if change.mode.is_some() {
            fs::set_permissions(path, fs::Permissions::from_mode(wanted_mode))
                .map_err(|e| format!("cannot change the mode of {} to {wanted_mode:04o}: {e}", path.display()))?;
        }
    }
    Ok(change)
}

/// A file that can be read by group or others carries no secret: only then is a diff reported.
pub fn is_secret(mode: u32) -> bool {
    mode & 0o044 == 0
}

/// A Report for a kept file: summary, and a diff unless the file holds secrets.
pub fn report(path: &Path, change: &Change, new: &str, mode: u32, dry: bool) -> Report {
    if !change.any() {
        return Report { changed: false, summary: format!("{} is up to date", path.display()), diff: None };
    }
    let secret = is_secret(mode);
    let diff = (change.created || change.content)
        .then(|| if secret { String::new() } else { diff::unified(&path.display().to_string(), &change.old, new) })
        .filter(|d| !d.is_empty());
    Report { changed: true, summary: format!("{}: {}", path.display(), change.describe(dry, secret)), diff }
}

pub fn ensure(path: &str, content: &str, mode: u32, owner: &str, group: &str, dry: bool) -> Result<Report, String> {
    if !path.starts_with('/') {
        return Err(format!("file path `{path}` is not absolute"));
    }
    if mode > 0o7777 {
        return Err(format!("mode {mode:o} of {path} is not a permission mode (at most 7777 octal)"));
    }
    let ids = fsx::resolve_owner(owner, group).map_err(|e| format!("{path}: {e}"))?;
    let path = Path::new(path);
    let change = sync(path, content.as_bytes(), Some(mode), Some(ids), dry)?;
    Ok(report(path, &change, content, mode, dry))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tasks::testdir::TempDir;

    fn mode_of(p: &Path) -> u32 {
        fs::metadata(p).unwrap().permissions().mode() & 0o7777
    }

    #[test]
    fn creates_then_is_idempotent_then_diffs_a_change() {
        let t = TempDir::new("file");
        let p = t.path("etc/app/app.conf");
        let ps = p.to_str().unwrap();
        let r = ensure(ps, "a = 1\nb = 2\n", 0o644, "root", "root", false).unwrap();
        assert!(r.changed);
        assert_eq!(r.summary, format!("{ps}: created"));
        assert_eq!(r.diff.as_deref(), Some(format!("--- {ps}\n+++ {ps}\n@@ -0,0 +1,2 @@\n+a = 1\n+b = 2\n").as_str()));
        assert_eq!(fs::read_to_string(&p).unwrap(), "a = 1\nb = 2\n");
        assert_eq!(mode_of(&p), 0o644);

        let again = ensure(ps, "a = 1\nb = 2\n", 0o644, "root", "0", false).unwrap();
        assert_eq!(again, Report { changed: false, summary: format!("{ps} is up to date"), diff: None });

        let r = ensure(ps, "a = 1\nb = 3\n", 0o644, "root", "root", false).unwrap();
        assert_eq!(r.summary, format!("{ps}: content changed"));
        assert_eq!(r.diff.unwrap(), format!("--- {ps}\n+++ {ps}\n@@ -1,2 +1,2 @@\n a = 1\n-b = 2\n+b = 3\n"));
    }

    #[test]
    fn a_mode_change_alone_is_a_change_and_dry_run_touches_nothing() {
        let t = TempDir::new("file-mode");
        let p = t.path("x");
        let ps = p.to_str().unwrap();
        ensure(ps, "x\n", 0o644, "root", "root", false).unwrap();

        let dry = ensure(ps, "y\n", 0o640, "root", "root", true).unwrap();
        assert!(dry.changed);
        assert_eq!(dry.summary, format!("{ps}: content would change, mode 0644 -> 0640"));
        assert_eq!((fs::read_to_string(&p).unwrap().as_str(), mode_of(&p)), ("x\n", 0o644));

        let r = ensure(ps, "x\n", 0o640, "root", "root", false).unwrap();
        assert_eq!((r.changed, r.summary.as_str(), r.diff), (true, format!("{ps}: mode 0644 -> 0640").as_str(), None));
        assert_eq!(mode_of(&p), 0o640);
        assert!(!ensure(ps, "x\n", 0o640, "root", "root", false).unwrap().changed);

        let missing = t.path("not/there");
        let dry = ensure(missing.to_str().unwrap(), "z", 0o600, "root", "root", true).unwrap();
        assert!(dry.changed && dry.summary.ends_with(": would be created"));
        assert!(!t.path("not").exists());
    }

    #[test]
    fn secret_files_never_show_a_diff() {
        let t = TempDir::new("file-secret");
        let p = t.path("key.pem");
        let ps = p.to_str().unwrap();
        let r = ensure(ps, "SECRET-1\n", 0o600, "root", "root", false).unwrap();
        assert_eq!((r.changed, r.diff), (true, None));
        assert_eq!(mode_of(&p), 0o600);
        let r = ensure(ps, "SECRET-2\n", 0o600, "root", "root", false).unwrap();
        assert_eq!(r.summary, format!("{ps}: content changed (secret: no diff)"));
        assert_eq!(r.diff, None);
        // Read-only for the owner: still a secret.
        let r = ensure(ps, "SECRET-3\n", 0o400, "root", "root", false).unwrap();
        assert!(r.diff.is_none() && !r.summary.contains("SECRET"));
    }

    #[test]
    fn errors_name_the_file() {
        let t = TempDir::new("file-err");
        let dir = t.path("d");
        fs::create_dir(&dir).unwrap();
        assert_eq!(
            ensure(dir.to_str().unwrap(), "x", 0o644, "root", "root", false).unwrap_err(),
            format!("{} exists and is not a regular file", dir.display())
        );
        let err = ensure("/tmp/x", "x", 0o644, "no-such-user-gw", "root", false).unwrap_err();
        assert_eq!(err, "/tmp/x: no user `no-such-user-gw` in /etc/passwd (create it first, or use a number)");
        assert!(ensure("rel/x", "x", 0o644, "root", "root", false).unwrap_err().contains("not absolute"));
    }
}
