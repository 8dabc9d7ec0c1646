//! The PostgreSQL host on the lab: `groundwork apply --only database`, then the controller's own
//! Rust client (tokio-postgres over an SSH channel through the bastion) logs in as the
//! application role from a worker's address, makes and reads a table; a wrong password and an
//! address outside the allowed networks are refused; `db backup`, a dropped table, `db restore`
//! and the row is back.

use groundwork::database::client;
use groundwork::secrets::Secret;
use groundwork::transport::{NodeSession, Transport, target};
use groundwork_lab_tests::{Lab, changes, text};

const DB: &str = "10.78.0.31";
/// An address outside the node network (10.78.0.0/24) and the pod network (10.244.0.0/16).
const OUTSIDER: &str = "10.79.0.31";

fn app_password(lab: &Lab) -> Secret {
    let file = lab.root.join("inventory/.groundwork/gwlab/secrets/db-egov_app");
    let value = std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    Secret::from_prompt(value.trim().to_string(), "egov_app")
}

/// A session on `host` through the bastion, made with groundwork's transport.
async fn session(lab: &Lab, host: &str) -> (Transport, NodeSession) {
    let loaded = groundwork::inventory::load(&lab.inventory_path).expect("lab inventory");
    let t = target::hosts(&loaded).into_iter().find(|t| t.name == host).expect("host in the inventory");
    let opts = groundwork::ops::facts::transport_options(&loaded, false);
    let transport = Transport::connect(target::bastion(&loaded).as_ref(), &[], opts).await.expect("bastion");
    let s = transport.open(&t).await.expect("session");
    (transport, s)
}

async fn rows(via: &NodeSession, password: &Secret) -> Result<Vec<String>, String> {
    let c = client::connect(via, DB, 5432, "egov_app", password, "egov").await.map_err(|e| e.to_string())?;
    let rows = c
        .query("SELECT note FROM gw_probe ORDER BY id", &[])
        .await
        .map_err(|e| e.as_db_error().map(|d| d.message().to_string()).unwrap_or_else(|| e.to_string()))?;
    Ok(rows.iter().map(|r| r.get::<_, String>(0)).collect())
}

/// Makes the database host's connections to its own internal address come from an address
/// outside the node and pod networks (a second address, set as the source of that local route);
/// undone on drop. Done on the host itself: the lab's Docker network drops packets whose source
/// lies outside its subnet, so a foreign address cannot cross it.
struct OutsideAddress<'a>(&'a Lab);

impl<'a> OutsideAddress<'a> {
    fn add(lab: &'a Lab) -> Self {
        let guard = OutsideAddress(lab);
        let script = format!(
            "ip addr add {OUTSIDER}/32 dev lo && ip route replace local {DB} dev eth0 table local proto kernel scope host src {OUTSIDER}"
        );
        let out = lab.sh_in("database-1", &script);
        assert!(out.status.success(), "{script}: {}", text(&out.stderr));
        guard
    }
}

impl Drop for OutsideAddress<'_> {
    fn drop(&mut self) {
        self.0.sh_in(
            "database-1",
            &format!("ip route replace local {DB} dev eth0 table local proto kernel scope host src {DB}; ip addr del {OUTSIDER}/32 dev lo"),
        );
    }
}

#[test]
fn postgresql_serves_the_cluster_networks_only_and_restores_a_backup() {
    let lab = Lab::require();
    let out = lab.groundwork(&["apply", "-i", "inventory/lab.yaml", "--only", "database", "-o", "json"]);
    assert!(out.status.success(), "{}\n{}", text(&out.stderr), text(&out.stdout));
    let password = app_password(&lab);
    let said = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert!(!said.contains(password.expose()), "a database password leaked into groundwork's output");

    // Listening on the internal address and loopback only.
    let listening = text(&lab.sh_in("database-1", "ss -Hltn 'sport = :5432'").stdout);
    let addresses: Vec<&str> = listening.lines().filter_map(|l| l.split_whitespace().nth(3)).collect();
    assert_eq!(addresses.len(), 2, "{listening}");
    assert!(addresses.contains(&"10.78.0.31:5432") && addresses.contains(&"127.0.0.1:5432"), "{listening}");

    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let (transport, worker) = session(&lab, "worker-1").await;

        // The application role, from a worker's address: make a table, write, read.
        let c = client::connect(&worker, DB, 5432, "egov_app", &password, "egov").await.expect("egov_app logs in");
        c.batch_execute(
            "DROP TABLE IF EXISTS gw_probe; CREATE TABLE gw_probe (id int PRIMARY KEY, note text NOT NULL); \
             INSERT INTO gw_probe VALUES (1, 'kept by a backup');",
        )
        .await
        .expect("egov_app creates and fills a table");
        drop(c);
        assert_eq!(rows(&worker, &password).await.unwrap(), ["kept by a backup"]);

        // A wrong password is refused.
        let wrong = Secret::from_prompt("not-the-password".into(), "test");
        let Err(e) = client::connect(&worker, DB, 5432, "egov_app", &wrong, "egov").await else { panic!("refused") };
        assert!(e.is_auth_failure(), "{e}");

        // From an address outside the node and pod networks: no pg_hba.conf entry.
        {
            let (transport, db_host) = session(&lab, "database-1").await;
            let _outside = OutsideAddress::add(&lab);
            let Err(e) = client::connect(&db_host, DB, 5432, "egov_app", &password, "egov").await else {
                panic!("refused")
            };
            let message = e.to_string();
            assert!(message.contains("no pg_hba.conf entry") && message.contains(OUTSIDER), "{message}");
            db_host.close().await;
            transport.close().await;
        }
        assert_eq!(rows(&worker, &password).await.unwrap(), ["kept by a backup"], "allowed again");

        // Backup, drop, restore: the row is back.
        let backup = lab.groundwork(&["db", "backup", "-i", "inventory/lab.yaml"]);
        assert!(backup.status.success(), "{}", text(&backup.stderr));
        assert!(text(&backup.stdout).contains("backed up egov"), "{}", text(&backup.stdout));
        let c = client::connect(&worker, DB, 5432, "egov_app", &password, "egov").await.unwrap();
        c.batch_execute("DROP TABLE gw_probe").await.unwrap();
        drop(c);
        let gone = rows(&worker, &password).await.expect_err("the table is gone");
        assert!(gone.contains("\"gw_probe\" does not exist"), "{gone}");
        let restore = lab.groundwork(&["db", "restore", "-i", "inventory/lab.yaml", "--database", "egov"]);
        assert!(restore.status.success(), "{}", text(&restore.stderr));
        assert_eq!(rows(&worker, &password).await.unwrap(), ["kept by a backup"], "restored");

        worker.close().await;
        transport.close().await;
    });

    // A second apply changes nothing.
    let again = lab.groundwork(&["apply", "-i", "inventory/lab.yaml", "--only", "database", "-o", "json"]);
    assert!(again.status.success(), "{}", text(&again.stderr));
    let report = lab.json(&again);
    let changed = changes(&report);
    assert!(changed.is_empty(), "a second run changed: {changed:?}");
}
