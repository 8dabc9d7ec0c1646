//! The backbone's volumes on the lab: `groundwork apply --only storage-server,storage-clients`
//! makes tgt targets and a nfs-ganesha export on storage-1 and readies the workers; then the
//! workers are asked from outside groundwork (docker exec, libiscsi and libnfs tools) whether
//! every target is there with the right size, whether CHAP and the initiator ACL refuse what
//! they should, and whether a file written over NFS by one worker reads back on another.

use groundwork_lab_tests::{CmdlineSampler, Lab, changes, lab_secrets, leaked, text};

const PHASES: &str = "storage-server,storage-clients";
const STORAGE: &str = "10.78.0.21";

/// (volume set, count, GiB each): the iSCSI volumes of the claims DIGIT's stateful charts make
/// with the lab's DIGIT checkout (handoff.digit): kafka-kraft's 3 controllers, elasticsearch's 3
/// data and 3 master nodes, pgAdmin, novu's MongoDB.
const EXPECTED: [(&str, usize, u64); 5] =
    [("kafka", 3, 8), ("es-data", 3, 25), ("es-master", 3, 2), ("pgadmin", 1, 5), ("novu-mongodb", 1, 8)];

/// How many targets (one per iSCSI volume) storage-1 serves.
fn target_count() -> usize {
    EXPECTED.iter().map(|(_, count, _)| count).sum()
}

fn chap_password(lab: &Lab) -> String {
    std::fs::read_to_string(lab.state.join("secrets/iscsi-chap-password")).expect("lab CHAP secret").trim().to_string()
}

/// Runs libiscsi's `tool` on `worker` as `initiator` against `iscsi://groundwork@STORAGE/PATH`,
/// the password going in over stdin (never onto a command line).
fn iscsi(lab: &Lab, worker: &str, initiator: &str, password: &str, tool: &str, path: &str) -> std::process::Output {
    let script = format!("IFS= read -r P; {tool} -i '{initiator}' \"iscsi://groundwork%$P@{STORAGE}/{path}\"");
    lab.docker_with_stdin(&["exec", "-i", &lab.container(worker), "sh", "-c", &script], &format!("{password}\n"))
}

fn initiator_of(lab: &Lab, worker: &str) -> String {
    let out = lab.sh_in(worker, "sed -n 's/^InitiatorName=//p' /etc/iscsi/initiatorname.iscsi");
    let name = text(&out.stdout).trim().to_string();
    assert!(name.contains(worker), "{worker} has its own initiator name: {name:?}");
    name
}

#[test]
fn volumes_are_served_to_the_workers_and_nothing_else() {
    let lab = Lab::require();
    let out = lab.groundwork(&["apply", "-i", "inventory/lab.yaml", "--only", PHASES, "-o", "json"]);
    assert!(out.status.success(), "{}\n{}", text(&out.stderr), text(&out.stdout));
    let report = lab.json(&out);
    let password = chap_password(&lab);
    let said = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert!(!said.contains(&password), "the CHAP secret leaked into groundwork's output");

    // The lab's kernel has no iSCSI initiator: each worker says so, and was checked from userspace.
    let clients = report["phases"].as_array().unwrap().iter().find(|p| p["name"] == "storage-clients").unwrap();
    for h in clients["hosts"].as_array().unwrap() {
        let notes = h["notes"].to_string();
        assert!(notes.contains("configured, not logged in: the kernel lacks iSCSI"), "{}: {notes}", h["host"]);
        let checked = format!("{n} of {n} targets checked", n = target_count());
        assert!(notes.contains(&checked), "{}: {notes}", h["host"]);
    }

    let worker1 = initiator_of(&lab, "worker-1");
    assert_ne!(worker1, initiator_of(&lab, "worker-2"), "initiator names are unique per node");

    // Every target, with LUN 1 of the right size, as worker-1 sees it.
    let listed = iscsi(&lab, "worker-1", &worker1, &password, "iscsi-ls -s", "");
    assert!(listed.status.success(), "iscsi-ls: {}", text(&listed.stderr));
    let listing = text(&listed.stdout);
    assert_eq!(listing.matches("Target:").count(), target_count(), "{listing}");
    for (component, count, gib) in EXPECTED {
        for i in 0..count {
            let iqn = format!("iqn.2026-01.io.groundwork:gwlab:{component}-{i}");
            assert!(listing.contains(&format!("Target:{iqn} ")), "{iqn} missing:\n{listing}");
            let cap = iscsi(&lab, "worker-1", &worker1, &password, "iscsi-readcapacity16", &format!("{iqn}/1"));
            let cap_text = text(&cap.stdout);
            assert!(cap_text.contains(&format!("Total size:{}", gib << 30)), "{iqn}: {cap_text}{}", text(&cap.stderr));
        }
    }

    // A wrong CHAP secret is refused; so is an initiator name the ACL does not list, even with
    // the right secret.
    let wrong = iscsi(&lab, "worker-2", &initiator_of(&lab, "worker-2"), "not-the-secret", "iscsi-ls -s", "");
    let wrong_text = format!("{}{}", text(&wrong.stdout), text(&wrong.stderr));
    assert!(wrong_text.contains("Authentication failure"), "a wrong CHAP secret got in: {wrong_text}");
    let intruder = iscsi(
        &lab,
        "worker-2",
        "iqn.2026-01.example:intruder",
        &password,
        "iscsi-readcapacity16",
        "iqn.2026-01.io.groundwork:gwlab:kafka-0/1",
    );
    let intruder_text = format!("{}{}", text(&intruder.stdout), text(&intruder.stderr));
    assert!(
        !intruder.status.success() && !intruder_text.contains("Total size"),
        "an unlisted initiator got in: {intruder_text}"
    );

    // NFS: written by worker-1, read back by worker-2.
    let token = format!("groundwork {:?}", std::time::SystemTime::now());
    // A freshly started nfs-ganesha is in its grace period (90 s) and answers some writes with
    // NFS3ERR_JUKEBOX, "try again later"; kernel clients retry on their own, nfs-cp does not (and
    // may leave the file created), so each attempt writes a file of its own.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(150);
    let mut attempt = 0;
    let (put, url) = loop {
        attempt += 1;
        let url = format!("nfs://{STORAGE}/srv/groundwork/nfs/filestore-0/probe-{}-{attempt}.txt", std::process::id());
        let put =
            lab.sh_in("worker-1", &format!("printf '%s' '{token}' > /tmp/probe.txt && nfs-cp /tmp/probe.txt '{url}'"));
        let said = format!("{}{}", text(&put.stdout), text(&put.stderr));
        if put.status.success() || !said.contains("NFS3ERR_JUKEBOX") || std::time::Instant::now() > deadline {
            break (put, url);
        }
        std::thread::sleep(std::time::Duration::from_secs(3));
    };
    assert!(put.status.success(), "nfs-cp from worker-1: {}{}", text(&put.stdout), text(&put.stderr));
    let got = lab.sh_in("worker-2", &format!("nfs-cat '{url}'"));
    assert_eq!(text(&got.stdout), token, "worker-2 reads what worker-1 wrote: {}", text(&got.stderr));

    // And again: nothing to change.
    let again = lab.groundwork(&["apply", "-i", "inventory/lab.yaml", "--only", PHASES, "-o", "json"]);
    assert!(again.status.success(), "{}", text(&again.stderr));
    let report = lab.json(&again);
    let changed = changes(&report);
    assert!(changed.is_empty(), "a second run changed: {changed:?}");
}

/// How many of the targets have `groundwork` as their incoming CHAP account, as tgtd says.
fn targets_with_chap(lab: &Lab) -> usize {
    let shown = text(&lab.sh_in("storage-1", "tgtadm --mode target --op show").stdout);
    shown.split("Target ").skip(1).filter(|t| t.contains("Account information:\n        groundwork\n")).count()
}

/// tgt-admin passes an account's secret on tgtadm's command line when tgtd lacks the account.
/// groundwork's agent makes the account first, over tgtd's socket: when apply makes the targets
/// again, and when tgt starts (groundwork's drop-in, before tgt-admin). storage-1's command lines
/// are sampled throughout; the CHAP secret is on none, and CHAP still admits the right secret.
#[test]
fn the_chap_secret_is_on_no_command_line_when_targets_are_made() {
    let lab = Lab::require();
    let apply = || {
        let out = lab.groundwork(&["apply", "-i", "inventory/lab.yaml", "--only", "storage-server", "-o", "json"]);
        assert!(out.status.success(), "{}\n{}", text(&out.stderr), text(&out.stdout));
        out
    };
    // The workers too: the end of this test logs in from worker-1 with its own initiator name
    // (on bare hosts, when this test runs first, only storage-clients gives it one).
    let out = lab.groundwork(&["apply", "-i", "inventory/lab.yaml", "--only", PHASES, "-o", "json"]);
    assert!(out.status.success(), "{}\n{}", text(&out.stderr), text(&out.stdout));
    let secrets = lab_secrets(&lab);
    let fast = std::time::Duration::from_millis(2);

    // The control: tgt-admin's own way (tgtd without the account) puts the secret on tgtadm's
    // command line, and this sampler sees it (tgtadm lives about a millisecond: on a busy machine
    // the sampler misses it now and then, so up to 20 tries; the first that sees it ends them).
    let seen = (0..20).any(|_| {
        let sampler = CmdlineSampler::start_every(&lab, &["storage-1"], fast);
        std::thread::sleep(std::time::Duration::from_millis(300));
        lab.sh_in(
            "storage-1",
            "tgtadm --mode account --op delete --user groundwork; tgt-admin --update ALL >/dev/null",
        );
        !leaked(&sampler.stop(), &secrets).is_empty()
    });
    assert!(seen, "the sampler never saw tgt-admin's tgtadm --password: it cannot prove anything");

    // tgtd forgets the account and every target: apply makes them again.
    let sampler = CmdlineSampler::start_every(&lab, &["storage-1"], fast);
    let forget = lab.sh_in(
        "storage-1",
        "tgt-admin --update ALL -c /dev/null -f >/dev/null && tgtadm --mode account --op delete --user groundwork",
    );
    assert!(forget.status.success(), "{}", text(&forget.stderr));
    let out = apply();
    let sampled = sampler.stop();
    let made = changes(&lab.json(&out));
    assert!(made.iter().any(|(_, _, c)| c.contains("made the CHAP account groundwork")), "{made:?}");
    assert!(sampled.contains("tgt-admin --update ALL"), "the sampler saw tgt-admin run:\n{sampled}");
    assert_eq!(
        leaked(&sampled, &secrets),
        Vec::<String>::new(),
        "a secret on a command line while apply made the targets"
    );
    assert_eq!(targets_with_chap(&lab), target_count(), "every target requires CHAP again");

    // tgt restarted (as at boot): the drop-in makes the account before tgt-admin reads the targets.
    let sampler = CmdlineSampler::start_every(&lab, &["storage-1"], fast);
    let restarted = lab.sh_in("storage-1", "systemctl restart tgt");
    let sampled = sampler.stop();
    assert!(restarted.status.success(), "{}", text(&restarted.stderr));
    let said = text(
        &lab.sh_in(
            "storage-1",
            "journalctl --no-pager -o cat _SYSTEMD_INVOCATION_ID=$(systemctl show -p InvocationID --value tgt)",
        )
        .stdout,
    );
    assert!(said.contains("made the CHAP account groundwork in tgtd"), "the drop-in's step made the account:\n{said}");
    assert_eq!(leaked(&sampled, &secrets), Vec::<String>::new(), "a secret on a command line while tgt started");
    assert_eq!(targets_with_chap(&lab), target_count(), "every target requires CHAP after tgt's restart");

    // And CHAP admits the inventory's secret, and nothing else.
    let worker1 = initiator_of(&lab, "worker-1");
    let listed = iscsi(&lab, "worker-1", &worker1, &chap_password(&lab), "iscsi-ls -s", "");
    assert!(listed.status.success(), "iscsi-ls with the right secret: {}", text(&listed.stderr));
    assert_eq!(text(&listed.stdout).matches("Target:").count(), target_count());
    let refused = iscsi(&lab, "worker-1", &worker1, "not-the-secret", "iscsi-ls -s", "");
    assert!(
        !refused.status.success() || text(&refused.stdout).matches("Target:").count() == 0,
        "a wrong secret is refused"
    );

    // A re-apply finds it all in place.
    assert!(changes(&lab.json(&apply())).is_empty(), "a second apply changes nothing");
}
