//! `groundwork db backup` and `db restore`: one SSH session to the database host (through the
//! bastion) and the backup service groundwork installed there. A backup runs the same unit the
//! timer runs; a restore replays a dump with pg_restore in one transaction (all or nothing).

use std::path::PathBuf;

use serde::Serialize;

use crate::database;
use crate::inventory::LoadedInventory;
use crate::inventory::model::{Database, DatabaseBackup};
use crate::transport::{NodeSession, Transport, TransportError, TransportOptions, shell_quote, target};

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("the inventory has no `database` section with a database host; add one (see inventory/sdc-example.yaml)")]
    NoDatabase,
    #[error(
        "database.backup is not set in the inventory: add `backup: {{directory: ..., schedule: daily, keep: 7}}` and run `groundwork apply`"
    )]
    NoBackup,
    #[error("there is no database `{0}` in the inventory's database.databases")]
    UnknownDatabase(String),
    #[error("{host}: {0}", host = .1)]
    Transport(TransportError, String),
    #[error("{host}: {what} failed: {message}")]
    Remote { host: String, what: String, message: String },
    #[error(transparent)]
    Lock(#[from] super::lease::CommandLockError),
}

#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct DumpFile {
    pub database: String,
    pub path: PathBuf,
    pub bytes: u64,
}

struct DbHost {
    transport: Transport,
    /// Backups and restores change the cluster's data: they hold the cluster lock.
    lock: super::lease::CommandLock,
    session: NodeSession,
    name: String,
}

async fn open(loaded: &LoadedInventory, opts: TransportOptions) -> Result<(DbHost, Database), DbError> {
    let (host, db) = database::host(&loaded.inventory).ok_or(DbError::NoDatabase)?;
    let t = target::hosts(loaded).into_iter().find(|t| t.name == host.name).ok_or(DbError::NoDatabase)?;
    let transport = Transport::connect(target::bastion(loaded).as_ref(), std::slice::from_ref(&t), opts)
        .await
        .map_err(|e| DbError::Transport(e, "bastion".into()))?;
    let lock = super::lease::CommandLock::take(loaded, &transport, "groundwork db").await?;
    let session = transport.open(&t).await.map_err(|e| DbError::Transport(e, host.name.clone()))?;
    Ok((DbHost { transport, lock, session, name: host.name.clone() }, db.clone()))
}

impl DbHost {
    async fn run(&self, what: &str, command: &str) -> Result<String, DbError> {
        let out =
            self.session.exec_privileged(command, None).await.map_err(|e| DbError::Transport(e, self.name.clone()))?;
        if !out.success() {
            let said = format!("{}\n{}", out.stdout_text(), out.stderr_text());
            return Err(DbError::Remote {
                host: self.name.clone(),
                what: what.into(),
                message: crate::phases::tail(&said, 4),
            });
        }
        Ok(out.stdout_text())
    }

    /// The newest dump of every database, as `ls` sees them.
    async fn newest(&self, backup: &DatabaseBackup, databases: &[String]) -> Result<Vec<DumpFile>, DbError> {
        let mut found = vec![];
        for d in databases {
            let pattern = format!("{}/{d}-*.dump", shell_quote(&backup.directory.display().to_string()));
            let line = self
                .run("listing backups", &format!("ls -1t {pattern} 2>/dev/null | head -n 1 | xargs -r stat -c '%s %n'"))
                .await?;
            if let Some((size, path)) = line.trim().split_once(' ') {
                found.push(DumpFile { database: d.clone(), path: path.into(), bytes: size.parse().unwrap_or(0) });
            }
        }
        Ok(found)
    }

    async fn close(self) {
        self.session.close().await;
        self.lock.release().await;
        self.transport.close().await;
    }
}

/// Runs the backup unit now and returns the dumps it wrote.
pub async fn backup(loaded: &LoadedInventory, opts: TransportOptions) -> Result<Vec<DumpFile>, DbError> {
    let (host, db) = open(loaded, opts).await?;
    let result = async {
        let backup = db.backup.as_ref().ok_or(DbError::NoBackup)?;
        let unit = crate::phases::backup_unit();
        // On failure the unit's own log says why (pg_dump's message), not systemctl's pointer to it.
        host.run(
            "the backup",
            &format!("systemctl start {unit} || {{ journalctl -u {unit} -n 4 --no-pager -o cat >&2; exit 1; }}"),
        )
        .await?;
        let names: Vec<String> = db.databases.iter().map(|d| d.name.clone()).collect();
        host.newest(backup, &names).await
    }
    .await;
    host.close().await;
    result
}

/// Restores `database` from `file` (a name in the backup directory) or its newest dump.
pub async fn restore(
    loaded: &LoadedInventory,
    opts: TransportOptions,
    database: &str,
    file: Option<&str>,
) -> Result<DumpFile, DbError> {
    let (host, db) = open(loaded, opts).await?;
    let result = async {
        let backup = db.backup.as_ref().ok_or(DbError::NoBackup)?;
        if !db.databases.iter().any(|d| d.name == database) {
            return Err(DbError::UnknownDatabase(database.into()));
        }
        let dump = match file {
            Some(name) => {
                // A bare file name: restores only ever read from the backup directory.
                let name = std::path::Path::new(name).file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
                let path = backup.directory.join(&name);
                let size = host
                    .run("finding the dump", &format!("stat -c %s {}", shell_quote(&path.display().to_string())))
                    .await?;
                DumpFile { database: database.into(), path, bytes: size.trim().parse().unwrap_or(0) }
            }
            None => host.newest(backup, &[database.to_string()]).await?.into_iter().next().ok_or_else(|| DbError::Remote {
                host: host.name.clone(),
                what: "finding the newest dump".into(),
                message: format!("no {database}-*.dump in {}; run `groundwork db backup` first", backup.directory.display()),
            })?,
        };
        host.run(
            "pg_restore",
            &format!(
                // The dump is root's (0600): root reads it, pg_restore (as postgres) gets it on stdin.
                "cd / && runuser -u postgres -- pg_restore --clean --if-exists --single-transaction --exit-on-error -p {} -d {} < {}",
                db.postgresql.port,
                shell_quote(database),
                shell_quote(&dump.path.display().to_string())
            ),
        )
        .await?;
        Ok(dump)
    }
    .await;
    host.close().await;
    result
}
