//! Finding programs the way a shell would, to say which one is missing before running anything.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// The executable `program` names: itself when it holds a `/`, else the first match on PATH.
pub fn find(program: &Path) -> Option<PathBuf> {
    if program.components().count() > 1 {
        return is_executable(program).then(|| program.to_path_buf());
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|dir| dir.join(program)).find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    std::fs::metadata(path).map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0).unwrap_or(false)
}
