//! The report on disk: `report.html` written atomically, and `report.pdf` printed from it by a
//! headless Chromium when one is on PATH. No converter, or one that fails, is said, never fatal.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::Serialize;

use super::ReportData;

/// Chromium's names on PATH, in the order they are looked for.
pub const CONVERTERS: [&str; 2] = ["chromium", "chromium-browser"];
/// How long printing the PDF may take.
const PDF_DEADLINE: Duration = Duration::from_secs(180);

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("cannot write the report into {}: {source}; pass a writable directory with --out", path.display())]
    Write { path: PathBuf, source: std::io::Error },
}

#[derive(Debug, Serialize)]
pub struct Written {
    pub html: PathBuf,
    pub pdf: Pdf,
}

#[derive(Debug, Serialize)]
#[serde(tag = "pdf", rename_all = "snake_case")]
pub enum Pdf {
    Written {
        path: PathBuf,
        converter: PathBuf,
    },
    /// Neither `chromium` nor `chromium-browser` is on PATH.
    NoConverter,
    Failed {
        converter: PathBuf,
        reason: String,
    },
}

/// Writes `report.html` into `dir` (created if missing), then `report.pdf` when a converter is found.
pub fn write(dir: &Path, data: &ReportData) -> Result<Written, ReportError> {
    let html = dir.join("report.html");
    crate::state::write_atomic(&html, super::html::render(data).as_bytes(), 0o644)
        .map_err(|source| ReportError::Write { path: html.clone(), source })?;
    let pdf = match find_converter() {
        None => Pdf::NoConverter,
        Some(converter) => match print_pdf(&converter, &html, &dir.join("report.pdf")) {
            Ok(path) => Pdf::Written { path, converter },
            Err(reason) => Pdf::Failed { converter, reason },
        },
    };
    Ok(Written { html, pdf })
}

/// The first of [`CONVERTERS`] on PATH.
pub fn find_converter() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    CONVERTERS.iter().find_map(|name| {
        std::env::split_paths(&path).map(|d| d.join(name)).find(|p| {
            use std::os::unix::fs::PermissionsExt;
            p.metadata().is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
    })
}

/// Prints `html` to `pdf` with headless Chromium: into a temporary file beside it, checked to be
/// a PDF, then renamed, so a reader never sees half a file.
fn print_pdf(converter: &Path, html: &Path, pdf: &Path) -> Result<PathBuf, String> {
    let html = html.canonicalize().map_err(|e| format!("{}: {e}", html.display()))?;
    let dir = html.parent().unwrap_or(Path::new("."));
    let tmp = dir.join(format!(".report.pdf.{}.tmp", std::process::id()));
    // A profile of its own: nothing of the user's Chromium is read or changed.
    let profile = tempfile::tempdir().map_err(|e| format!("a temporary profile: {e}"))?;
    // Its chatter goes to a file (a pipe nobody reads while it runs could stall it).
    let log = profile.path().join("stderr.log");
    let stderr = std::fs::File::create(&log).map_err(|e| format!("{}: {e}", log.display()))?;
    let mut child = Command::new(converter)
        .arg("--headless")
        // The page is groundwork's own static file (no script, no fetch: its Content-Security-Policy
        // forbids both); Chromium's sandbox cannot start as root, where operators often run this.
        .arg("--no-sandbox")
        .arg("--disable-gpu")
        .arg("--no-pdf-header-footer")
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(format!("--print-to-pdf={}", tmp.display()))
        .arg(format!("file://{}", html.display()))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::from(stderr))
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", converter.display()))?;
    let started = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if started.elapsed() > PDF_DEADLINE => {
                let _ = child.kill();
                let _ = child.wait();
                let _ = std::fs::remove_file(&tmp);
                return Err(format!("no PDF within {} s; stopped", PDF_DEADLINE.as_secs()));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(200)),
            Err(e) => return Err(e.to_string()),
        }
    };
    let is_pdf = std::fs::read(&tmp).is_ok_and(|b| b.starts_with(b"%PDF"));
    if !status.success() || !is_pdf {
        let _ = std::fs::remove_file(&tmp);
        let tail = crate::sanitize::tail(&String::from_utf8_lossy(&std::fs::read(&log).unwrap_or_default()), 3);
        return Err(format!("{} ({status}) wrote no PDF: {tail}", converter.display()));
    }
    std::fs::rename(&tmp, pdf).map_err(|e| format!("{}: {e}", pdf.display()))?;
    Ok(pdf.to_path_buf())
}
