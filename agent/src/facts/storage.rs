//! Whole disks from /sys/block, and the file systems holding given paths.

use groundwork_protocol::facts::{Disk, Filesystem};

use super::{read, read_value};

/// Kernel disk names that are not disks a node stores data on.
fn is_virtual(name: &str) -> bool {
    ["loop", "ram", "zram", "dm-", "sr", "fd", "nbd"].iter().any(|p| name.starts_with(p))
}

pub fn disks() -> Vec<Disk> {
    let Ok(entries) = std::fs::read_dir("/sys/block") else { return Vec::new() };
    let mut disks: Vec<Disk> = entries
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| !is_virtual(name))
        .map(|name| {
            let sectors: u64 = read_value(&format!("/sys/block/{name}/size")).and_then(|s| s.parse().ok()).unwrap_or(0);
            let rotational = read_value(&format!("/sys/block/{name}/queue/rotational")).map(|r| r == "1");
            // /sys/block/*/size counts 512-byte sectors whatever the device's block size.
            Disk { name, size_bytes: sectors * 512, rotational }
        })
        .collect();
    disks.sort_by(|a, b| a.name.cmp(&b.name));
    disks
}

/// (mount point, fs type) pairs from /proc/self/mountinfo.
pub fn parse_mountinfo(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|l| {
            let (left, right) = l.split_once(" - ")?;
            let mount_point = left.split_whitespace().nth(4)?;
            let fs_type = right.split_whitespace().next()?;
            Some((unescape(mount_point), fs_type.to_string()))
        })
        .collect()
}

/// mountinfo writes space, tab, newline and backslash as octal escapes.
fn unescape(s: &str) -> String {
    s.replace("\\040", " ").replace("\\011", "\t").replace("\\012", "\n").replace("\\134", "\\")
}

/// The mount that holds `path`: the longest mount point that is a prefix of it (last mounted wins).
pub fn mount_of<'a>(mounts: &'a [(String, String)], path: &str) -> Option<&'a (String, String)> {
    mounts
        .iter()
        .rev()
        .filter(|(mp, _)| mp == "/" || path == mp || path.starts_with(&format!("{mp}/")))
        .max_by_key(|(mp, _)| mp.len())
}

pub fn filesystems(paths: &[&str]) -> Vec<Filesystem> {
    let mounts = read("/proc/self/mountinfo").map(|t| parse_mountinfo(&t)).unwrap_or_default();
    paths
        .iter()
        .filter_map(|path| {
            let st = nix::sys::statvfs::statvfs(*path).ok()?;
            let frag = st.fragment_size() as u64;
            let (mount_point, fs_type) = mount_of(&mounts, path).cloned().unwrap_or_else(|| ("?".into(), "?".into()));
            Some(Filesystem {
                path: path.to_string(),
                mount_point,
                fs_type,
                total_bytes: st.blocks() as u64 * frag,
                available_bytes: st.blocks_available() as u64 * frag,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const MOUNTINFO: &str = "\
24 1 254:1 / / rw,relatime shared:1 - ext4 /dev/vda1 rw
30 24 0:26 / /var rw,relatime - xfs /dev/vdb rw
31 24 0:27 / /var/lib/my\\040data rw - tmpfs tmpfs rw
";

    #[test]
    fn mountinfo_and_the_mount_holding_a_path() {
        let m = parse_mountinfo(MOUNTINFO);
        assert_eq!(m.len(), 3);
        assert_eq!(m[2].0, "/var/lib/my data");
        assert_eq!(mount_of(&m, "/var").unwrap().1, "xfs");
        assert_eq!(mount_of(&m, "/var/log").unwrap().0, "/var");
        assert_eq!(mount_of(&m, "/variable").unwrap().0, "/");
        assert_eq!(mount_of(&m, "/").unwrap().1, "ext4");
    }

    #[test]
    fn virtual_disks_are_left_out() {
        assert!(is_virtual("loop0") && is_virtual("dm-1") && is_virtual("zram0"));
        assert!(!is_virtual("vda") && !is_virtual("nvme0n1") && !is_virtual("sda"));
    }
}
