//! database: PostgreSQL on the database host, outside the cluster. The distribution's server
//! package, one cluster (`<version>/main`) in the inventory's data directory, settings worked out
//! from the host's facts, listening on the internal address only, `pg_hba.conf` admitting the node
//! and pod networks with SCRAM, the inventory's roles and databases, and scheduled backups. Then
//! the controller logs in as every role through the SSH tunnel: that proves the network path, the
//! HBA rules and each password, and a role whose password differs gets the inventory's.

use futures::FutureExt;
use futures::future::BoxFuture;
use groundwork_protocol::Task;

use super::node::{TimedJob, file, tail};
use super::{Change, Cluster, ErrorKind, Node, StepError};
use crate::database::roles::{LoginRole, RoleKind, login_roles};
use crate::database::tuning::Tuning;
use crate::database::{client, config_dir, service, sql};
use crate::inventory::Host;
use crate::inventory::model::{Database, PostgresSource};
use crate::playbooks;

const BACKUP_SCRIPT: &str = "/usr/local/sbin/groundwork-pg-backup";
const BACKUP_UNIT: &str = "groundwork-pg-backup";
/// Debian's packages create a `main` cluster on install; groundwork makes its own, in the data
/// directory the inventory names.
const NO_MAIN_CLUSTER: &str = "/etc/postgresql-common/createcluster.d/groundwork.conf";

pub fn run<'a>(cluster: &'a Cluster, node: &'a Node) -> BoxFuture<'a, Result<Vec<Change>, StepError>> {
    async move {
        let Some((host, db)) = crate::database::host(&cluster.inventory) else { return Ok(vec![]) };
        let v = db.postgresql.version;
        if db.postgresql.source != PostgresSource::Distribution {
            return Err(StepError::new(
                "database.postgresql.source: only `distribution` is supported yet (the lab cannot reach the \
                 PostgreSQL project's repository to prove `pgdg`); use the distribution's version",
            ));
        }
        let mut changes = node
            .ensure_all(vec![file(
                NO_MAIN_CLUSTER,
                "# groundwork: the server cluster is created by groundwork (pg_createcluster)\ncreate_main_cluster = false\n"
                    .into(),
                0o644,
            )])
            .await?;
        let installing =
            super::package_repository::install(cluster, node, crate::os_packages::postgresql(v)).await?;
        let tuning = Tuning::for_host(node.facts.memory.total_bytes, node.facts.cpu.count);
        if node.dry_run() {
            node.note(format!("PostgreSQL {v} tuned for this host: {}", tuning.summary()));
            if !node.facts.installed.servers.iter().any(|s| s == "postgresql") {
                // Nothing to compare with before the server is installed.
                changes.extend(installing);
                changes.push(Change::new(format!("create cluster {v}/main, configure it, create roles and databases")));
                return Ok(changes);
            }
        }
        changes.extend(installing);
        changes.extend(server_cluster(node, db).await?);
        changes.extend(configuration(cluster, node, host, db, &tuning).await?);
        if node.dry_run() {
            return Ok(changes);
        }
        wait_accepting(node, host, db).await?;
        let roles = login_roles(&cluster.inventory, &cluster.base_dir, &cluster.state)
            .map_err(|e| StepError::new(e.to_string()))?;
        changes.extend(roles_and_databases(node, host, db, &roles).await?);
        changes.extend(backups(node, db).await?);
        Ok(changes)
    }
    .boxed()
}

/// The `<version>/main` cluster, created in the inventory's data directory when missing.
async fn server_cluster(node: &Node, db: &Database) -> Result<Vec<Change>, StepError> {
    let v = db.postgresql.version;
    let listed = node.sh("pg_lsclusters", "pg_lsclusters -h 2>/dev/null || true").await?;
    if listed.lines().any(|l| l.split_whitespace().take(2).eq([v.to_string().as_str(), "main"])) {
        return Ok(vec![]);
    }
    let data = db
        .postgresql
        .data_directory
        .as_ref()
        .map(|d| d.display().to_string())
        .unwrap_or_else(|| format!("/var/lib/postgresql/{v}/main"));
    if !node.dry_run() {
        node.sh(
            "pg_createcluster",
            &format!(
                "pg_createcluster {v} main --datadir {} --port {} --start-conf auto -- --auth-local peer --auth-host scram-sha-256",
                crate::transport::shell_quote(&data),
                db.postgresql.port
            ),
        )
        .await?;
    }
    Ok(vec![Change::new(format!("create PostgreSQL {v} cluster `main` in {data}"))])
}

/// conf.d settings (a restart applies them) and pg_hba.conf (a reload does), then the server
/// enabled and running.
async fn configuration(
    cluster: &Cluster,
    node: &Node,
    host: &Host,
    db: &Database,
    tuning: &Tuning,
) -> Result<Vec<Change>, StepError> {
    let v = db.postgresql.version;
    let dir = config_dir(v);
    let settings = playbooks::render(
        "postgresql.conf",
        &serde_json::json!({
            "version": v, "address": host.address, "port": db.postgresql.port, "t": tuning,
            "memory_mb": node.facts.memory.total_bytes >> 20, "cpus": node.facts.cpu.count,
        }),
    )?;
    let inv = &cluster.inventory;
    let mut networks: Vec<String> = inv.cluster.node_network.iter().map(|n| n.to_string()).collect();
    networks.push(inv.cluster.pod_cidr.to_string());
    let hba = playbooks::render("pg_hba.conf", &serde_json::json!({ "networks": networks }))?;
    let owned = |path: String, content: String, mode: u32| Task::File {
        path,
        content,
        mode,
        owner: "postgres".into(),
        group: "postgres".into(),
    };
    let mut changes = node.ensure_all(vec![owned(format!("{dir}/conf.d/groundwork.conf"), settings, 0o644)]).await?;
    if !changes.is_empty() {
        changes[0].summary = format!("{} ({})", changes[0].summary, tuning.summary());
    }
    let restart = !changes.is_empty();
    let hba_changes = node.ensure_all(vec![owned(format!("{dir}/pg_hba.conf"), hba, 0o640)]).await?;
    let reload = !hba_changes.is_empty() && !restart;
    changes.extend(hba_changes);
    changes.extend(
        node.ensure_all(vec![Task::Service { name: service(v), enabled: true, running: true, restart }]).await?,
    );
    if reload && !node.dry_run() {
        node.sh("reloading PostgreSQL", &format!("systemctl reload {}", service(v))).await?;
    }
    Ok(changes)
}

/// The server accepts connections on its internal address (a restart takes a moment).
async fn wait_accepting(node: &Node, host: &Host, db: &Database) -> Result<(), StepError> {
    let check = format!(
        "for i in $(seq 1 60); do pg_isready -q -h {} -p {} && exit 0; sleep 0.5; done; exit 1",
        crate::transport::shell_quote(&host.address),
        db.postgresql.port
    );
    if node.test(&check).await? {
        return Ok(());
    }
    let log = node
        .sh("journal", &format!("journalctl -u {} -n 5 --no-pager 2>&1 || true", service(db.postgresql.version)))
        .await?;
    Err(StepError::new(format!(
        "{}: PostgreSQL does not accept connections on {}:{} after 30 s: {}",
        node.name(),
        host.address,
        db.postgresql.port,
        tail(&log, 3)
    )))
}

/// psql as the local `postgres` account (peer authentication); the script goes in over stdin.
async fn psql(node: &Node, db: &Database, database: &str, script: &str) -> Result<String, StepError> {
    let command = format!(
        "cd / && runuser -u postgres -- psql --no-psqlrc -X -q -A -t -v ON_ERROR_STOP=1 -p {} -d {}",
        db.postgresql.port,
        crate::transport::shell_quote(database)
    );
    let out = node.session.exec_privileged(&command, Some(script.as_bytes())).await?;
    if !out.success() {
        // psql's error names the statement's position, never echoes it: verifiers stay out too.
        return Err(StepError::new(format!(
            "{}: psql on {database} failed: {}",
            node.name(),
            tail(&out.stderr_text(), 3)
        )));
    }
    Ok(out.stdout_text())
}

async fn roles_and_databases(
    node: &Node,
    host: &Host,
    db: &Database,
    roles: &[LoginRole],
) -> Result<Vec<Change>, StepError> {
    let mut changes = vec![];
    let existing_roles = psql(node, db, "postgres", "SELECT rolname FROM pg_roles;").await?;
    let existing_dbs = psql(node, db, "postgres", "SELECT datname FROM pg_database;").await?;
    let has = |list: &str, name: &str| list.lines().any(|l| l.trim() == name);

    let mut created_roles = Vec::new();
    for role in roles.iter().filter(|r| !has(&existing_roles, &r.name)) {
        psql(node, db, "postgres", &sql::create_role(role)).await?;
        created_roles.push(role.name.clone());
        changes.push(Change::new(format!("created role {} ({})", role.name, sql::describe(role))));
    }
    for d in db.databases.iter().filter(|d| !has(&existing_dbs, &d.name)) {
        psql(node, db, "postgres", &sql::create_database(&d.name, &d.owner)).await?;
        changes.push(Change::new(format!("created database {} owned by {}", d.name, d.owner)));
    }
    for role in roles {
        if let RoleKind::App(access) = role.kind {
            let owner =
                db.databases.iter().find(|d| d.name == role.database).map(|d| d.owner.as_str()).unwrap_or("postgres");
            let in_place =
                psql(node, db, &role.database, &sql::grants_in_place(&role.name, &role.database, owner, access))
                    .await?;
            if in_place.trim() != "t" {
                psql(node, db, &role.database, &sql::grants(&role.name, &role.database, owner, access)).await?;
                changes.push(Change::new(format!("granted {} {}", role.name, sql::describe(role))));
            }
        }
    }
    // Every role logs in through the tunnel with its password, from the node network.
    for role in roles.iter().filter(|r| !created_roles.contains(&r.name)) {
        match client::connect(
            &node.session,
            &host.address,
            db.postgresql.port,
            &role.name,
            &role.password,
            &role.database,
        )
        .await
        {
            Ok(_) => {}
            Err(e) if e.is_auth_failure() => {
                psql(node, db, "postgres", &sql::set_password(role)).await?;
                changes.push(Change::new(format!(
                    "set the password of role {} (it differed from the inventory's)",
                    role.name
                )));
            }
            Err(e) => return Err(login_error(node, "", &e)),
        }
    }
    for role in roles.iter().filter(|r| created_roles.contains(&r.name)) {
        client::connect(&node.session, &host.address, db.postgresql.port, &role.name, &role.password, &role.database)
            .await
            .map_err(|e| login_error(node, "a role just created cannot log in: ", &e))?;
    }
    Ok(changes)
}

/// A failed login through the tunnel: a lost connection is the transport's (reconnect, run the
/// step again), anything the server said is the step's.
fn login_error(node: &Node, what: &str, e: &client::ClientError) -> StepError {
    let message = format!("{}: {what}{e}", node.name());
    if e.is_connection_lost() { StepError(message, ErrorKind::Transport) } else { StepError::new(message) }
}

/// The backup script, its service and timer (when the inventory asks for backups).
async fn backups(node: &Node, db: &Database) -> Result<Vec<Change>, StepError> {
    let Some(backup) = &db.backup else { return Ok(vec![]) };
    let databases: Vec<&str> = db.databases.iter().map(|d| d.name.as_str()).collect();
    let values = serde_json::json!({
        "directory": backup.directory, "keep": backup.keep, "schedule": backup.schedule,
        "databases": databases, "port": db.postgresql.port, "service": service(db.postgresql.version),
    });
    let directory = backup.directory.display().to_string();
    node.ensure_timed_job(TimedJob {
        directory: &directory,
        script_path: BACKUP_SCRIPT,
        script: playbooks::render("pg-backup.sh", &values)?,
        unit: BACKUP_UNIT,
        service: playbooks::render("pg-backup.service", &values)?,
        timer: playbooks::render("pg-backup.timer", &values)?,
    })
    .await
}

/// The unit `groundwork db backup` starts.
pub fn backup_unit() -> String {
    format!("{BACKUP_UNIT}.service")
}
