//! The storage path on real kernels, in the Vagrant lab's VMs (software-emulated here, TCG):
//! `vagrant/lab up -i tests/vagrant/inventory.yaml` (tests/run does it) gives a bastion, a storage
//! host and two workers. groundwork applies only the storage phases: LIO targets on LVM logical
//! volumes with CHAP and the workers' ACL, kernel nfsd exports, open-iscsi on the workers. Then
//! the VMs' own tools, over OpenSSH, show what a kubelet would meet: a login with CHAP, a file
//! system made on a LUN from one worker and read from the other, a wrong secret and a stranger's
//! initiator name refused by the kernel's target, an NFS export written on one worker and read on
//! the other and refused to a host outside the allowed network, and a volume grown.

use std::process::Output;
use std::time::Instant;

use groundwork::storage::{VolumeAccess, VolumePlan};
use groundwork_lab_tests::{Lab, changes, text};

const INVENTORY: &str = "tests/vagrant/inventory.yaml";
/// The grown copy lives beside the inventory: same state directory, same cluster.
const GROWN: &str = "tests/vagrant/inventory-grown.yaml";

fn ok(host: &str, what: &str, out: Output) -> String {
    assert!(
        out.status.success(),
        "{host}: {what} failed ({}):\n{}\n{}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

fn apply(lab: &Lab, inventory: &str, what: &str) -> Vec<(String, String, String)> {
    let started = Instant::now();
    let out = lab.groundwork(&["apply", "-i", inventory, "--only", "storage-server,storage-clients", "-o", "json"]);
    assert!(out.status.success(), "{what} failed:\n{}\n{}", text(&out.stdout), text(&out.stderr));
    let all = changes(&lab.json(&out));
    println!("vm lab: {what}: {:.1} s, {} change(s)", started.elapsed().as_secs_f64(), all.len());
    all
}

fn has(all: &[(String, String, String)], host: &str, summary: &str) -> bool {
    all.iter().any(|(_, h, c)| h == host && c.contains(summary))
}

/// The shell lines that log `initiator` (an iscsiadm iface, `default` for the node's own name)
/// in to `iqn` and wait for its LUN's device; `$dev` names it afterwards.
fn login(iqn: &str, portal: &str, lun: u32) -> String {
    format!(
        "iscsiadm -m node -T {iqn} -p {portal} --login >/dev/null\n\
         dev=/dev/disk/by-path/ip-{portal}-iscsi-{iqn}-lun-{lun}\n\
         for i in $(seq 1 60); do [ -b \"$dev\" ] && break; sleep 0.5; done\n\
         [ -b \"$dev\" ] || {{ echo \"no device $dev\" >&2; exit 1; }}\n"
    )
}

/// iscsiadm's reason for a failed login (the line after "Could not login").
fn refusal(said: &str) -> &str {
    said.lines()
        .find(|l| l.contains("reported error"))
        .or_else(|| said.lines().find(|l| l.contains("iscsiadm:")))
        .unwrap_or("")
        .trim()
}

fn logout(iqn: &str, portal: &str) -> String {
    format!("iscsiadm -m node -T {iqn} -p {portal} --logout >/dev/null\n")
}

#[test]
fn storage_on_real_kernels() {
    let lab = Lab::require_vm(INVENTORY);
    let plan = VolumePlan::of(&lab.inventory).expect("the VM inventory has storage");
    let kafka = plan.iscsi().next().expect("an iSCSI volume");
    let VolumeAccess::Iscsi { iqn, lun, portal } = kafka.access.clone() else { unreachable!() };
    let other_iqns: Vec<String> = plan
        .iscsi()
        .filter_map(|v| if let VolumeAccess::Iscsi { iqn, .. } = &v.access { Some(iqn.clone()) } else { None })
        .collect();
    let filestore = plan.nfs().next().expect("an NFS volume");
    let VolumeAccess::Nfs { server, path } = filestore.access.clone() else { unreachable!() };
    let export = format!("{server}:{}", path.display());
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_nanos();
    let token = format!("groundwork-{}-{now}", std::process::id());

    // 1. groundwork: the storage phases from bare VMs, then a re-run that changes nothing.
    let first = apply(&lab, INVENTORY, "first apply of the storage phases (packages included)");
    assert!(has(&first, "storage-1", "logical volume gwdata/kafka-0"), "no logical volume made: {first:#?}");
    assert!(has(&first, "storage-1", "create iSCSI target"), "no LIO target made: {first:#?}");
    let again = apply(&lab, INVENTORY, "re-run");
    assert!(again.is_empty(), "a re-run changed things: {again:#?}");

    // 2. The storage host, seen with its own tools: logical volumes, LIO in configfs, nfsd.
    let cfs = "/sys/kernel/config/target/iscsi";
    let seen = ok(
        "storage-1",
        "reading LVM, configfs and the exports",
        lab.sudo_script(
            "storage-1",
            &format!(
                "lvs --noheadings --units b --nosuffix -o lv_name,lv_size gwdata\n\
                 echo auth=$(cat {cfs}/{iqn}/tpgt_1/attrib/authentication)\n\
                 echo acls=$(ls {cfs}/{iqn}/tpgt_1/acls | tr '\\n' ' ')\n\
                 echo targets=$(ls -d {cfs}/iqn.* | tr '\\n' ' ')\n\
                 echo nfsd=$(cat /proc/fs/nfsd/threads)\n\
                 exportfs -v\n"
            ),
        ),
    );
    assert!(
        seen.lines().any(|l| l.split_whitespace().eq(["kafka-0", "1073741824"])),
        "kafka-0 is not a 1 GiB LV:\n{seen}"
    );
    for t in &other_iqns {
        assert!(seen.contains(t.as_str()), "target {t} is not in the kernel's configfs:\n{seen}");
    }
    assert!(seen.contains("auth=1"), "CHAP is not enforced on {iqn}:\n{seen}");
    for worker in ["worker-1", "worker-2"] {
        let name = VolumePlan::initiator_name(&lab.inventory, worker);
        assert!(seen.contains(&name), "{worker}'s initiator {name} is not in the ACL:\n{seen}");
    }
    assert!(!seen.contains("nfsd=0"), "the kernel's nfsd runs no threads:\n{seen}");
    assert!(seen.contains(&format!("{}", path.display())) && seen.contains("10.88.0.96/27"), "export:\n{seen}");

    // 3. A file system on the LUN from worker-1, read back from worker-2 (kernel initiators).
    let t = Instant::now();
    ok(
        "worker-1",
        "login, mkfs, write, logout",
        lab.sudo_script(
            "worker-1",
            &format!(
                "{login}mkfs.ext4 -q -F \"$dev\"\nmkdir -p /mnt/gwlun\nmount \"$dev\" /mnt/gwlun\n\
                 echo {token} >/mnt/gwlun/proof\numount /mnt/gwlun\n{logout}",
                login = login(&iqn, &portal, lun),
                logout = logout(&iqn, &portal)
            ),
        ),
    );
    let read = ok(
        "worker-2",
        "login, mount, read, logout",
        lab.sudo_script(
            "worker-2",
            &format!(
                "{login}mkdir -p /mnt/gwlun\nmount \"$dev\" /mnt/gwlun\ncat /mnt/gwlun/proof\numount /mnt/gwlun\n{logout}",
                login = login(&iqn, &portal, lun),
                logout = logout(&iqn, &portal)
            ),
        ),
    );
    assert_eq!(read.trim(), token, "worker-2 did not read what worker-1 wrote on {iqn}");
    println!("vm lab: iSCSI write on worker-1, read on worker-2: {:.1} s", t.elapsed().as_secs_f64());

    // 4. Refused by the kernel's target: a wrong CHAP secret, then an initiator not in the ACL
    //    (with the right secret). The node record is made again from iscsid.conf afterwards.
    let wrong = lab.sudo_script(
        "worker-2",
        &format!(
            "iscsiadm -m node -T {iqn} -p {portal} -o update -n node.session.auth.password -v not-the-secret\n\
             rc=0; iscsiadm -m node -T {iqn} -p {portal} --login || rc=$?\n\
             iscsiadm -m node -T {iqn} -p {portal} -o delete\n\
             iscsiadm -m discovery -t sendtargets -p {portal} >/dev/null\n\
             echo rc=$rc\n"
        ),
    );
    let said = format!("{}{}", text(&wrong.stdout), text(&wrong.stderr));
    assert!(wrong.status.success(), "the wrong-secret drill itself failed:\n{said}");
    assert!(!said.contains("rc=0"), "a wrong CHAP secret logged in:\n{said}");
    assert!(said.contains("authorization failure") || said.contains("auth"), "not refused for CHAP:\n{said}");
    println!("vm lab: wrong CHAP secret refused: {}", refusal(&said));

    let stranger = lab.sudo_script(
        "worker-2",
        &format!(
            "iscsiadm -m iface -I gwtest-stranger -o new >/dev/null\n\
             iscsiadm -m iface -I gwtest-stranger -o update -n iface.initiatorname -v iqn.2026-01.io.example:stranger >/dev/null\n\
             iscsiadm -m node -T {iqn} -p {portal} -I gwtest-stranger -o new >/dev/null\n\
             rc=0; iscsiadm -m node -T {iqn} -p {portal} -I gwtest-stranger --login || rc=$?\n\
             iscsiadm -m node -T {iqn} -p {portal} -I gwtest-stranger -o delete\n\
             iscsiadm -m iface -I gwtest-stranger -o delete\n\
             echo rc=$rc\n"
        ),
    );
    let said = format!("{}{}", text(&stranger.stdout), text(&stranger.stderr));
    assert!(stranger.status.success(), "the stranger drill itself failed:\n{said}");
    assert!(!said.contains("rc=0"), "an initiator outside the ACL logged in:\n{said}");
    println!("vm lab: initiator outside the ACL refused: {}", refusal(&said));
    // The real secret still gets worker-2 in: the refusals were the drills', not a broken target.
    ok(
        "worker-2",
        "login after the drills",
        lab.sudo_script("worker-2", &format!("{}{}", login(&iqn, &portal, lun), logout(&iqn, &portal))),
    );

    // 5. NFS from the kernel's nfsd: written on worker-1, read on worker-2, refused to a host
    //    outside storage.nfs.allowedNetwork.
    let t = Instant::now();
    let mount = |host: &str, then: &str| {
        ok(
            host,
            "NFS mount",
            lab.sudo_script(
                host,
                &format!("mkdir -p /mnt/gwnfs\nmount -t nfs {export} /mnt/gwnfs\n{then}\numount /mnt/gwnfs\n"),
            ),
        )
    };
    mount("worker-1", &format!("echo {token} >/mnt/gwnfs/proof-worker-1"));
    let read = mount("worker-2", "cat /mnt/gwnfs/proof-worker-1");
    assert_eq!(read.trim(), token, "worker-2 did not read over NFS what worker-1 wrote");
    println!("vm lab: NFS write on worker-1, read on worker-2: {:.1} s", t.elapsed().as_secs_f64());
    // The storage host itself is outside the allowed network (.21): it has the NFS client (with
    //    its server), so no package needs installing for the drill, and nfsd must refuse it.
    let outsider = lab.sudo_script(
        "storage-1",
        &format!("mkdir -p /mnt/gwnfs\nrc=0; timeout 60 mount -t nfs {export} /mnt/gwnfs || rc=$?\nfindmnt -q /mnt/gwnfs && umount /mnt/gwnfs\necho rc=$rc\n"),
    );
    let said = format!("{}{}", text(&outsider.stdout), text(&outsider.stderr));
    assert!(!said.contains("rc=0"), "storage-1 (outside the allowed network) mounted {export}:\n{said}");
    assert!(said.contains("denied"), "storage-1's mount failed, but not as refused by the server:\n{said}");

    // 6. Volumes grow: kafka 1 GiB -> 2 GiB in the inventory grows the LV; the LUN shows the new
    //    size at the next login, and the file system on it grows to it.
    let inventory = std::fs::read_to_string(lab.root.join(INVENTORY)).expect("inventory");
    let grown = inventory.replace(
        "{name: kafka, protocol: iscsi, count: 2, size: 1Gi}",
        "{name: kafka, protocol: iscsi, count: 2, size: 2Gi}",
    );
    assert_ne!(grown, inventory, "the test's edit no longer matches the inventory");
    std::fs::write(lab.root.join(GROWN), grown).expect("write the grown inventory");
    let grew = apply(&lab, GROWN, "apply with kafka grown to 2 GiB");
    let _ = std::fs::remove_file(lab.root.join(GROWN));
    assert!(has(&grew, "storage-1", "extend logical volume gwdata/kafka-0"), "kafka-0 was not extended: {grew:#?}");
    let sizes = ok(
        "worker-1",
        "login, grow the file system, read",
        lab.sudo_script(
            "worker-1",
            &format!(
                "{login}echo lun=$(blockdev --getsize64 \"$dev\")\ne2fsck -f -y \"$dev\" >/dev/null\nresize2fs \"$dev\" >/dev/null 2>&1\n\
                 mkdir -p /mnt/gwlun\nmount \"$dev\" /mnt/gwlun\necho fs=$(df -B1 --output=size /mnt/gwlun | tail -1)\n\
                 cat /mnt/gwlun/proof\numount /mnt/gwlun\n{logout}",
                login = login(&iqn, &portal, lun),
                logout = logout(&iqn, &portal)
            ),
        ),
    );
    assert!(sizes.contains("lun=2147483648"), "the LUN did not grow to 2 GiB:\n{sizes}");
    let fs: u64 = sizes
        .lines()
        .find_map(|l| l.strip_prefix("fs="))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no file system size:\n{sizes}"));
    assert!(fs > 1_800_000_000, "the file system did not grow ({fs} bytes):\n{sizes}");
    assert!(sizes.contains(&token), "the data did not survive the growth:\n{sizes}");
}
