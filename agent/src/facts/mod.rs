//! Facts about the node, from /proc, /sys and a few system calls. Every reader tolerates a
//! missing or odd file: what cannot be read is reported as unknown, never invented.

mod cpu_memory;
mod installed;
mod kernel;
mod network;
mod os;
mod ports;
mod storage;

use std::time::{SystemTime, UNIX_EPOCH};

use groundwork_protocol::Facts;

/// Reads a text file; None when it is absent or unreadable.
pub(crate) fn read(path: &str) -> Option<String> {
    std::fs::read_to_string(path).ok()
}

/// A trimmed, non-empty single value from a file.
pub(crate) fn read_value(path: &str) -> Option<String> {
    read(path).map(|s| s.trim().to_string()).filter(|s| !s.is_empty())
}

pub fn gather() -> Facts {
    let started = std::time::Instant::now();
    let uname = nix::sys::utsname::uname().ok();
    let field = |f: fn(&nix::sys::utsname::UtsName) -> &std::ffi::OsStr| {
        uname.as_ref().map(|u| f(u).to_string_lossy().into_owned()).unwrap_or_default()
    };
    let kernel_release = field(|u| u.release());
    let mut facts = Facts {
        hostname: read_value("/proc/sys/kernel/hostname").unwrap_or_else(|| field(|u| u.nodename())),
        os: read("/etc/os-release").map(|t| os::parse_os_release(&t)).unwrap_or_default(),
        architecture: field(|u| u.machine()),
        cpu: cpu_memory::cpu(),
        memory: cpu_memory::memory(),
        disks: storage::disks(),
        filesystems: storage::filesystems(&["/", "/var"]),
        interfaces: network::interfaces(),
        default_route: read("/proc/net/route").and_then(|t| network::parse_default_route(&t)),
        product_uuid: read_value("/sys/class/dmi/id/product_uuid").map(|s| s.to_lowercase()),
        machine_id: read_value("/etc/machine-id"),
        cgroup: kernel::cgroup(),
        kernel_features: kernel::features(&kernel_release),
        listening_tcp_ports: ports::listening_tcp_ports(),
        installed: installed::installed(),
        kernel: kernel_release,
        time_unix_ms: 0,
        gather_ms: 0,
    };
    facts.gather_ms = started.elapsed().as_millis() as u64;
    facts.time_unix_ms = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0);
    facts
}
