//! CPUs this process may use, and memory and swap from /proc.

use groundwork_protocol::facts::{Cpu, Memory};

use super::read;

pub fn cpu() -> Cpu {
    // The CPUs the scheduler lets this process run on: what a pod on this node could use.
    let count = nix::sched::sched_getaffinity(nix::unistd::Pid::from_raw(0))
        .ok()
        .map(|set| (0..nix::sched::CpuSet::count()).filter(|i| set.is_set(*i).unwrap_or(false)).count())
        .filter(|n| *n > 0)
        .or_else(|| std::thread::available_parallelism().ok().map(|n| n.get()))
        .unwrap_or(0);
    Cpu { count: count as u32, model: read("/proc/cpuinfo").map(|t| parse_cpu_model(&t)).unwrap_or_default() }
}

pub fn parse_cpu_model(cpuinfo: &str) -> String {
    cpuinfo
        .lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim() == "model name")
        .map(|(_, v)| v.trim().to_string())
        .unwrap_or_default()
}

pub fn memory() -> Memory {
    let mut m = read("/proc/meminfo").map(|t| parse_meminfo(&t)).unwrap_or_default();
    m.swap_devices = read("/proc/swaps").map(|t| parse_swaps(&t)).unwrap_or_default();
    m
}

/// MemTotal, MemAvailable and SwapTotal, converted from kB.
pub fn parse_meminfo(text: &str) -> Memory {
    let kb = |key: &str| {
        text.lines()
            .filter_map(|l| l.split_once(':'))
            .find(|(k, _)| *k == key)
            .and_then(|(_, v)| v.split_whitespace().next()?.parse::<u64>().ok())
            .map(|v| v * 1024)
            .unwrap_or(0)
    };
    Memory {
        total_bytes: kb("MemTotal"),
        available_bytes: kb("MemAvailable"),
        swap_total_bytes: kb("SwapTotal"),
        swap_devices: Vec::new(),
    }
}

/// Active swap devices or files (first column after the header).
pub fn parse_swaps(text: &str) -> Vec<String> {
    text.lines().skip(1).filter_map(|l| l.split_whitespace().next()).map(str::to_string).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meminfo_and_swaps() {
        let m = parse_meminfo(
            "MemTotal:       24589512 kB\nMemFree:        1 kB\nMemAvailable:   20000000 kB\nSwapTotal:       1048572 kB\n",
        );
        assert_eq!(m.total_bytes, 24589512 * 1024);
        assert_eq!(m.available_bytes, 20000000 * 1024);
        assert_eq!(m.swap_total_bytes, 1048572 * 1024);
        let s =
            parse_swaps("Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n/dev/vda3   partition\t1048572\t0\t-2\n");
        assert_eq!(s, vec!["/dev/vda3"]);
        assert!(parse_swaps("Filename Type Size Used Priority\n").is_empty());
    }

    #[test]
    fn cpu_model() {
        assert_eq!(parse_cpu_model("processor\t: 0\nmodel name\t: AMD EPYC 7B13\nflags\t: x\n"), "AMD EPYC 7B13");
        assert_eq!(parse_cpu_model(""), "");
    }
}
