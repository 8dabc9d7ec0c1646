//! Writing the rendered files: atomically, and only those whose bytes (or mode) differ.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use super::{
    Content, FileStatus, HandoffError, HandoffInputs, HandoffOutcome, RenderedFile, SopsSettings, WrittenFile,
    next_steps, programs, render, sops,
};
use crate::state::write_atomic;

/// Renders every handoff file for `inputs` and writes it under `out_dir` (created 0700: it holds
/// the admin kubeconfig). A file already holding the wanted bytes and mode is left alone.
pub fn write_all(inputs: &HandoffInputs, out_dir: &Path) -> Result<HandoffOutcome, HandoffError> {
    let mut notes = Vec::new();
    let sops = match &inputs.sops {
        Some(settings) => match programs::find(&settings.program) {
            Some(program) => Some(SopsSettings { program, ..settings.clone() }),
            None => {
                notes.push(format!(
                    "{} is not installed: the secrets files are written unencrypted (mode 0600); \
                     install sops and run again to encrypt them",
                    settings.program.display()
                ));
                None
            }
        },
        None => {
            notes.push(
                "the secrets files are not encrypted (mode 0600); set handoff.sops.ageRecipient to encrypt them with sops"
                    .into(),
            );
            None
        }
    };
    let rendered = render(inputs, sops.is_some())?;
    notes.extend(rendered.notes.iter().cloned());

    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| HandoffError::Write { path, source }
    };
    std::fs::create_dir_all(out_dir).map_err(io(out_dir))?;
    std::fs::set_permissions(out_dir, std::fs::Permissions::from_mode(0o700)).map_err(io(out_dir))?;

    let mut files = Vec::new();
    for (relative, file) in &rendered.files {
        let path = out_dir.join(relative);
        let (status, encrypted) = match (&file.content, &sops) {
            (Content::Secret { encrypted_regex }, Some(settings)) => {
                (write_encrypted(settings, relative, &path, file, encrypted_regex)?, true)
            }
            _ => (write_if_changed(&path, &file.bytes, file.mode()).map_err(io(&path))?, false),
        };
        files.push(WrittenFile {
            path: relative.clone(),
            status,
            mode: file.mode(),
            secret: matches!(file.content, Content::Secret { .. }),
            encrypted,
        });
    }
    let listing: Vec<_> =
        rendered.files.iter().map(|(p, f)| (p.clone(), matches!(f.content, Content::Secret { .. }))).collect();
    let deploy = next_steps::deploy_script(inputs, &listing, sops.is_some());
    Ok(HandoffOutcome { directory: out_dir.to_path_buf(), files, notes, deploy, placeholders: rendered.placeholders })
}

fn has_mode(path: &Path, mode: u32) -> bool {
    std::fs::metadata(path).map(|m| m.permissions().mode() & 0o777 == mode).unwrap_or(false)
}

fn write_if_changed(path: &Path, bytes: &[u8], mode: u32) -> std::io::Result<FileStatus> {
    let current = match std::fs::read(path) {
        Ok(current) => Some(current),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(e),
    };
    if current.as_deref() == Some(bytes) && has_mode(path, mode) {
        return Ok(FileStatus::Unchanged);
    }
    write_atomic(path, bytes, mode)?;
    Ok(FileStatus::Written)
}

fn write_encrypted(
    settings: &SopsSettings,
    relative: &Path,
    path: &Path,
    file: &RenderedFile,
    encrypted_regex: &str,
) -> Result<FileStatus, HandoffError> {
    let fingerprint = sops::fingerprint(settings, &file.bytes, encrypted_regex);
    let memo = settings.memo_dir.as_deref().map(|dir| sops::memo_file(dir, relative));
    let remembered = memo.as_deref().and_then(|m| std::fs::read_to_string(m).ok());
    if path.exists() && has_mode(path, file.mode()) && remembered.as_deref() == Some(fingerprint.as_str()) {
        return Ok(FileStatus::Unchanged);
    }
    let encrypted = sops::encrypt(settings, &file.bytes, encrypted_regex, relative)?;
    write_atomic(path, &encrypted, file.mode()).map_err(|source| HandoffError::Write { path: path.into(), source })?;
    if let Some(memo) = memo {
        write_atomic(&memo, fingerprint.as_bytes(), 0o600)
            .map_err(|source| HandoffError::Write { path: memo, source })?;
    }
    Ok(FileStatus::Written)
}
