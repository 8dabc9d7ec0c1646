//! Rolling changes on the cluster the apply test built: an inventory that changes etcd's and the
//! API servers' flags is applied while a worker polls the API through its local endpoint every
//! 200 ms; the API must answer throughout (never two failed polls in a row), and the report must
//! show the members and API servers restarted one master at a time. The original inventory is
//! then applied again, rolling back the same way. Checked from outside: the flags on the running
//! processes' command lines, the polls' own log.

use std::time::Duration;

use groundwork_lab_tests::{ApiPoller, Lab, changes, text, worst_outage};

const MASTERS: [&str; 3] = ["master-1", "master-2", "master-3"];
const ETCD_FLAG: &str = "--quota-backend-bytes=4294967296";
const API_FLAG: &str = "--event-ttl=2h";

/// `HH:MM:SS.mmm` as milliseconds of the day.
fn ms_of_day(clock: &str) -> u64 {
    let (hms, ms) = clock.split_once('.').unwrap();
    let p: Vec<u64> = hms.split(':').map(|x| x.parse().unwrap()).collect();
    ((p[0] * 60 + p[1]) * 60 + p[2]) * 1000 + ms.parse::<u64>().unwrap()
}

/// The (host, start, end) of every rolling restart a phase reported, in start order; asserted
/// not to overlap.
fn one_at_a_time(report: &serde_json::Value, phase: &str, what: &str) -> Vec<String> {
    let mut turns: Vec<(u64, u64, String)> = changes(report)
        .into_iter()
        .filter(|(p, _, c)| p == phase && c.starts_with(what))
        .map(|(_, host, c)| {
            let span = c.split_once("one at a time (").unwrap().1.split(' ').next().unwrap().to_string();
            let (from, to) = span.split_once('-').unwrap();
            (ms_of_day(from), ms_of_day(to), host)
        })
        .collect();
    turns.sort();
    for w in turns.windows(2) {
        assert!(w[0].1 <= w[1].0, "{phase}: {} restarted before {} was healthy again: {turns:?}", w[1].2, w[0].2);
    }
    turns.into_iter().map(|t| t.2).collect()
}

fn flags_on(lab: &Lab, master: &str, process: &str) -> String {
    let out = lab.sh_in(master, &format!("tr '\\0' ' ' < /proc/$(pgrep -xo {process})/cmdline"));
    text(&out.stdout)
}

/// `HH:MM:SS.mmm` (UTC) of seconds since the epoch, as the report's turns are written.
fn clock(t: f64) -> String {
    let ms = (t * 1000.0) as u64 % 86_400_000;
    format!("{:02}:{:02}:{:02}.{:03}", ms / 3_600_000, ms / 60_000 % 60, ms / 1000 % 60, ms % 1000)
}

/// Applies `inventory` while polling; asserts the API answered throughout. Returns the report.
fn apply_polled(lab: &Lab, inventory: &str) -> serde_json::Value {
    let poller = ApiPoller::start(lab, "worker-1", "rolling");
    std::thread::sleep(Duration::from_secs(1));
    let out = lab.groundwork(&["apply", "-i", inventory, "-o", "json"]);
    let polls = poller.stop();
    assert!(out.status.success(), "apply -i {inventory}:\n{}\n{}", text(&out.stderr), text(&out.stdout));
    let report = lab.json(&out);
    let failed: Vec<String> = polls.iter().filter(|p| !p.1).map(|p| clock(p.0)).collect();
    eprintln!(
        "{inventory}: {} polls from {} to {}, {} failed ({failed:?}), at most {} in a row",
        polls.len(),
        polls.first().map(|p| clock(p.0)).unwrap_or_default(),
        polls.last().map(|p| clock(p.0)).unwrap_or_default(),
        failed.len(),
        worst_outage(&polls)
    );
    for (phase, host, change) in changes(&report) {
        if change.contains("one at a time") {
            eprintln!("  {phase} {host}: {change}");
        }
    }
    assert!(polls.len() >= 10, "the poller ran: {polls:?}");
    assert!(worst_outage(&polls) <= 1, "the API was unavailable for more than one poll in a row (failed polls above)");
    report
}

/// The original inventory applied again and the copy removed, whatever the test did.
struct Revert<'a>(&'a Lab, std::path::PathBuf);

impl Drop for Revert<'_> {
    fn drop(&mut self) {
        std::fs::remove_file(&self.1).ok();
        if std::thread::panicking() {
            let _ = self.0.groundwork(&["apply", "-i", "inventory/lab.yaml"]);
        }
    }
}

#[test]
fn etcd_and_api_server_flags_change_one_master_at_a_time_while_the_api_answers() {
    let lab = Lab::require();
    // Beside the original, so that it shares the cluster's state directory.
    let path = lab.root.join("inventory/.rolling-test.yaml");
    let original = std::fs::read_to_string(&lab.inventory_path).unwrap();
    let changed = original.replace(
        "  cni: bridge\n",
        "  cni: bridge\n  apiServer:\n    extraArgs: {event-ttl: 2h}\n  etcdExtraArgs: {quota-backend-bytes: \"4294967296\"}\n",
    );
    assert_ne!(changed, original, "the lab inventory names its CNI");
    std::fs::write(&path, changed).unwrap();
    let _revert = Revert(&lab, path.clone());

    let report = apply_polled(&lab, "inventory/.rolling-test.yaml");
    let etcd = one_at_a_time(&report, "etcd", "restarted etcd");
    let api = one_at_a_time(&report, "apiserver", "regenerated the API server");
    eprintln!("etcd restarted in turn on {etcd:?}, API servers on {api:?}");
    assert_eq!(etcd.len(), 3, "{}", report["phases"]);
    assert_eq!(api.len(), 3, "{}", report["phases"]);
    for m in MASTERS {
        assert!(flags_on(&lab, m, "etcd").contains(ETCD_FLAG), "{m}: etcd runs without {ETCD_FLAG}");
        assert!(flags_on(&lab, m, "kube-apiserver").contains(API_FLAG), "{m}: the API server runs without {API_FLAG}");
    }

    // Back to the original, rolling too.
    let report = apply_polled(&lab, "inventory/lab.yaml");
    assert_eq!(one_at_a_time(&report, "etcd", "restarted etcd").len(), 3, "{}", report["phases"]);
    assert_eq!(one_at_a_time(&report, "apiserver", "regenerated the API server").len(), 3, "{}", report["phases"]);
    for m in MASTERS {
        assert!(!flags_on(&lab, m, "etcd").contains(ETCD_FLAG), "{m}: etcd still runs with {ETCD_FLAG}");
        assert!(!flags_on(&lab, m, "kube-apiserver").contains(API_FLAG), "{m}: still {API_FLAG}");
    }
    let again = lab.groundwork(&["apply", "-i", "inventory/lab.yaml", "-o", "json"]);
    assert!(again.status.success(), "{}", text(&again.stderr));
    assert!(changes(&lab.json(&again)).is_empty(), "reverted: a re-apply changes nothing");
}
