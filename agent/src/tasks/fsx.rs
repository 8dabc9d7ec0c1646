//! Writing files safely: a temporary file in the same directory, fsync, rename over the target
//! (readers see the old or the new file, never half of one). A file that is a bind mount (Docker's
//! /etc/hosts, /etc/hostname, /etc/resolv.conf) cannot be renamed over (EBUSY, or EXDEV): such a
//! file is rewritten in place instead.

use std::fs::{self, File, OpenOptions, Permissions};
use std::io::{self, ErrorKind, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// A user or group name (or number) resolved through a passwd/group-format file.
pub fn resolve_id(name: &str, db: &Path, what: &str) -> Result<u32, String> {
    if let Ok(id) = name.parse::<u32>() {
        return Ok(id);
    }
    let text =
        fs::read_to_string(db).map_err(|e| format!("cannot read {} to look up {what} `{name}`: {e}", db.display()))?;
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| l.split(':').collect::<Vec<_>>())
        .find(|f| f.first() == Some(&name))
        .and_then(|f| f.get(2).and_then(|id| id.parse().ok()))
        .ok_or_else(|| format!("no {what} `{name}` in {} (create it first, or use a number)", db.display()))
}

/// uid and gid of `owner`/`group` from /etc/passwd and /etc/group.
pub fn resolve_owner(owner: &str, group: &str) -> Result<(u32, u32), String> {
    Ok((resolve_id(owner, Path::new("/etc/passwd"), "user")?, resolve_id(group, Path::new("/etc/group"), "group")?))
}

/// Creates `dir` and its missing parents with mode 0755.
pub fn mkdir_p(dir: &Path) -> Result<(), String> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o755)
        .create(dir)
        .map_err(|e| format!("cannot create directory {}: {e}", dir.display()))
}

fn parent(path: &Path) -> &Path {
    path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."))
}

/// New content written to a temporary file next to its target, not yet in place. Dropping it
/// without [`Staged::commit`] removes the temporary file.
pub struct Staged {
    tmp: PathBuf,
    target: PathBuf,
    mode: u32,
    owner: Option<(u32, u32)>,
    done: bool,
}

/// Writes everything `src` yields to a temporary file beside `path` (creating parent directories),
/// with `mode` and, when given, owner; flushed to disk.
pub fn stage(path: &Path, src: &mut dyn Read, mode: u32, owner: Option<(u32, u32)>) -> Result<Staged, String> {
    let name = path.file_name().ok_or_else(|| format!("{} is not a file path", path.display()))?;
    let dir = parent(path);
    mkdir_p(dir)?;
    let tmp = dir.join(format!(".{}.groundwork-{}.tmp", name.to_string_lossy(), std::process::id()));
    let _ = fs::remove_file(&tmp); // a leftover of an interrupted run
    let mut staged = Staged { tmp, target: path.to_path_buf(), mode, owner, done: false };
    if let Err(e) = write_tmp(&staged.tmp, src, mode, owner) {
        staged.done = true;
        let _ = fs::remove_file(&staged.tmp);
        return Err(format!("cannot write {} (via {}): {e}", path.display(), staged.tmp.display()));
    }
    Ok(staged)
}

fn write_tmp(tmp: &Path, src: &mut dyn Read, mode: u32, owner: Option<(u32, u32)>) -> io::Result<()> {
    // 0600 until the content is complete: a secret is never readable by others on the way.
    let mut f = OpenOptions::new().write(true).create_new(true).mode(0o600).open(tmp)?;
    io::copy(src, &mut f)?;
    if let Some((uid, gid)) = owner {
        std::os::unix::fs::fchown(&f, Some(uid), Some(gid))?;
    }
    f.set_permissions(Permissions::from_mode(mode))?;
    f.sync_all()
}

impl Staged {
    /// Puts the new file in place: rename, or an in-place rewrite when the target is a mount point.
    pub fn commit(mut self) -> Result<(), String> {
        self.done = true;
        let result = match fs::rename(&self.tmp, &self.target) {
            Ok(()) => Ok(()),
            Err(e) if matches!(e.kind(), ErrorKind::ResourceBusy | ErrorKind::CrossesDevices) => {
                self.rewrite_in_place()
            }
            Err(e) => Err(format!("cannot replace {}: {e}", self.target.display())),
        };
        let _ = fs::remove_file(&self.tmp);
        if result.is_ok() {
            // Make the rename itself durable; failing to is not worth an error.
            let _ = File::open(parent(&self.target)).and_then(|d| d.sync_all());
        }
        result
    }

    fn rewrite_in_place(&self) -> Result<(), String> {
        let io = || -> io::Result<()> {
            let mut content = Vec::new();
            File::open(&self.tmp)?.read_to_end(&mut content)?;
            let mut f = OpenOptions::new().write(true).truncate(true).open(&self.target)?;
            f.write_all(&content)?;
            if let Some((uid, gid)) = self.owner {
                std::os::unix::fs::fchown(&f, Some(uid), Some(gid))?;
            }
            f.set_permissions(Permissions::from_mode(self.mode))?;
            f.sync_all()
        };
        io().map_err(|e| format!("cannot rewrite {} in place (it is a mount point): {e}", self.target.display()))
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        if !self.done {
            let _ = fs::remove_file(&self.tmp);
        }
    }
}

/// Writes `content` to `path` atomically.
pub fn write(path: &Path, content: &[u8], mode: u32, owner: Option<(u32, u32)>) -> Result<(), String> {
    stage(path, &mut &content[..], mode, owner)?.commit()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tasks::testdir::TempDir;

    #[test]
    fn names_resolve_through_passwd_format_files() {
        let t = TempDir::new("ids");
        let db = t.path("passwd");
        fs::write(
            &db,
            "root:x:0:0:root:/root:/bin/bash\n#etcd:x:5:5\netcd:x:998:997::/var/lib/etcd:/usr/sbin/nologin\n",
        )
        .unwrap();
        assert_eq!(resolve_id("etcd", &db, "user"), Ok(998));
        assert_eq!(resolve_id("root", &db, "user"), Ok(0));
        assert_eq!(resolve_id("1234", &db, "user"), Ok(1234));
        let err = resolve_id("kube", &db, "user").unwrap_err();
        assert!(err.starts_with("no user `kube` in ") && err.contains("passwd"), "{err}");
    }

    #[test]
    fn writes_atomically_with_mode_and_parents_and_leaves_no_temporary_file() {
        let t = TempDir::new("write");
        let path = t.path("a/b/c.conf");
        write(&path, b"one\n", 0o640, None).unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "one\n");
        assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o7777, 0o640);
        assert_eq!(fs::metadata(t.path("a/b")).unwrap().permissions().mode() & 0o777, 0o755);
        write(&path, b"two\n", 0o600, Some((0, 0))).unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "two\n");
        assert_eq!(fs::read_dir(t.path("a/b")).unwrap().count(), 1);

        let staged = stage(&path, &mut &b"three\n"[..], 0o644, None).unwrap();
        drop(staged);
        assert_eq!(fs::read_to_string(&path).unwrap(), "two\n");
        assert_eq!(fs::read_dir(t.path("a/b")).unwrap().count(), 1);
    }
}
