//! Where tracing's events go: stderr, at the verbosity `-v` asks for, and with `--log-file` a
//! structured log for the site's audit trail (one JSON object per line: time, level, target, and
//! the event's fields: host, phase, step, ...). Both pass through `groundwork::redact`, so a secret
//! value that reached an event anyway is written as `[REDACTED]`.

use std::fs::File;
use std::io::{self, IsTerminal, Write};
use std::path::Path;
use std::sync::{Arc, Mutex};

use tracing::Level;
use tracing_subscriber::filter::FilterFn;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

/// What the audit log records whatever `-v` says: every phase on every host and every step in it.
const LOG_FILE_FILTER: &str = "warn,groundwork=debug";

pub fn init(verbose: u8, log_file: Option<&Path>) -> anyhow::Result<()> {
    let default = match verbose {
        0 => "warn",
        1 => "groundwork=debug,info",
        _ => "trace",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    // Colours only for a person at a terminal, not in a CI log or a pipe.
    let stderr = tracing_subscriber::fmt::layer()
        .with_ansi(io::stderr().is_terminal())
        .with_writer(Redacting::stderr)
        .with_filter(filter)
        .with_filter(russh_capped());
    let file = match log_file {
        Some(path) => Some(
            tracing_subscriber::fmt::layer()
                .json()
                .with_ansi(false)
                .flatten_event(true)
                .with_current_span(false)
                .with_span_list(false)
                .with_writer(Redacting::file(path)?)
                .with_filter(EnvFilter::new(LOG_FILE_FILTER))
                .with_filter(russh_capped()),
        ),
        None => None,
    };
    tracing_subscriber::registry().with(stderr).with(file).init();
    Ok(())
}

/// russh's debug and trace events can carry channel data (what a command wrote, a sudo prompt's
/// answer): none of it passes, whatever RUST_LOG or -vv ask for.
fn russh_capped() -> FilterFn<impl Fn(&tracing::Metadata<'_>) -> bool + Clone> {
    FilterFn::new(|meta: &tracing::Metadata<'_>| !meta.target().starts_with("russh") || *meta.level() <= Level::INFO)
}

/// A writer that scrubs registered secrets from each event before it is written. tracing's fmt
/// layer formats an event whole and writes it with one `write_all`, so a secret is never split
/// across two writes.
#[derive(Clone)]
enum Redacting {
    Stderr,
    File(Arc<Mutex<File>>),
}

impl Redacting {
    fn stderr() -> Self {
        Redacting::Stderr
    }

    /// Appends to `path` (created 0600: the log names hosts, addresses and what changed on them).
    fn file(path: &Path) -> anyhow::Result<Self> {
        use std::os::unix::fs::OpenOptionsExt;
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(path)
            .map_err(|e| anyhow::anyhow!("--log-file {}: {e}", path.display()))?;
        Ok(Redacting::File(Arc::new(Mutex::new(file))))
    }
}

impl Write for Redacting {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        let clean = groundwork::redact::redact(&text);
        match self {
            Redacting::Stderr => io::stderr().lock().write_all(clean.as_bytes())?,
            Redacting::File(f) => f.lock().unwrap_or_else(|p| p.into_inner()).write_all(clean.as_bytes())?,
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Redacting::Stderr => io::stderr().flush(),
            Redacting::File(f) => f.lock().unwrap_or_else(|p| p.into_inner()).flush(),
        }
    }
}

impl<'a> MakeWriter<'a> for Redacting {
    type Writer = Redacting;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_log_file_gets_registered_secrets_as_redacted_and_is_private() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        groundwork::redact::register("log-file-test-secret-1234");
        let mut w = Redacting::file(&path).unwrap();
        w.write_all(b"{\"step\":\"password log-file-test-secret-1234 set\"}\n").unwrap();
        let written = std::fs::read_to_string(&path).unwrap();
        assert_eq!(written, "{\"step\":\"password [REDACTED] set\"}\n");
        let mode = std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&path).unwrap().permissions());
        assert_eq!(mode & 0o777, 0o600);
    }
}
