//! `directory`: a directory with this mode, created with its parents (parents get 0755).

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use groundwork_protocol::Report;

use super::fsx;

pub fn ensure(path: &str, mode: u32, dry: bool) -> Result<Report, String> {
    if !path.starts_with('/') {
        return Err(format!("directory path `{path}` is not absolute"));
    }
    if mode > 0o7777 {
        return Err(format!("mode {mode:o} of {path} is not a permission mode (at most 7777 octal)"));
    }
    let dir = Path::new(path);
    let set_mode = || {
        fs::set_permissions(dir, fs::Permissions::from_mode(mode))
            .map_err(|e| format!("cannot change the mode of {path} to {mode:04o}: {e}"))
    };
    match fs::metadata(dir) {
        Ok(m) if !m.is_dir() => Err(format!("{path} exists and is not a directory")),
        Ok(m) => {
            let found = m.permissions().mode() & 0o7777;
            if found == mode {
                return Ok(Report { changed: false, summary: format!("{path} exists"), diff: None });
            }
            if !dry {
                set_mode()?;
            }
            Ok(Report { changed: true, summary: format!("{path}: mode {found:04o} -> {mode:04o}"), diff: None })
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if dry {
                return Ok(Report { changed: true, summary: format!("would create {path}"), diff: None });
            }
            fsx::mkdir_p(dir)?;
            set_mode()?; // the umask may have narrowed it
            Ok(Report { changed: true, summary: format!("created {path} (mode {mode:04o})"), diff: None })
        }
        Err(e) => Err(format!("cannot inspect {path}: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tasks::testdir::TempDir;

    #[test]
    fn creates_with_parents_then_fixes_only_the_mode() {
        let t = TempDir::new("dir");
        let d = t.path("var/lib/etcd");
        let ds = d.to_str().unwrap();
        assert_eq!(ensure(ds, 0o700, true).unwrap().summary, format!("would create {ds}"));
        assert!(!d.exists());
        assert_eq!(ensure(ds, 0o700, false).unwrap().summary, format!("created {ds} (mode 0700)"));
        assert_eq!(fs::metadata(&d).unwrap().permissions().mode() & 0o7777, 0o700);
        assert_eq!(fs::metadata(t.path("var/lib")).unwrap().permissions().mode() & 0o777, 0o755);
        assert!(!ensure(ds, 0o700, false).unwrap().changed);
        let r = ensure(ds, 0o750, false).unwrap();
        assert_eq!((r.changed, r.summary), (true, format!("{ds}: mode 0700 -> 0750")));
        assert!(!ensure(ds, 0o750, false).unwrap().changed);

        let f = t.path("file");
        fs::write(&f, "").unwrap();
        assert!(ensure(f.to_str().unwrap(), 0o755, false).unwrap_err().ends_with("exists and is not a directory"));
    }
}
