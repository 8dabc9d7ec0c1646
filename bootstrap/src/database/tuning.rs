//! postgresql.conf settings worked out from the database host's memory and CPUs, along the lines
//! of the usual OLTP rules of thumb (PGTune's "web application" profile): a quarter of RAM for
//! shared buffers, three quarters as the planner's cache estimate, and work_mem sized so that
//! every connection running a few sorts at once still fits.

use serde::Serialize;

/// DIGIT runs dozens of services, each with its own connection pool.
pub const MAX_CONNECTIONS: u32 = 200;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Tuning {
    pub max_connections: u32,
    pub shared_buffers_mb: u64,
    pub effective_cache_size_mb: u64,
    pub maintenance_work_mem_mb: u64,
    pub work_mem_kb: u64,
    pub max_worker_processes: u32,
    pub max_parallel_workers: u32,
}

impl Tuning {
    pub fn for_host(memory_bytes: u64, cpus: u32) -> Tuning {
        let mb = (memory_bytes >> 20).max(256);
        let shared_buffers_mb = (mb / 4).clamp(128, 16 * 1024);
        let work_mem_kb = ((mb - shared_buffers_mb) * 1024 / (u64::from(MAX_CONNECTIONS) * 3)).max(4 * 1024);
        let cpus = cpus.max(1);
        Tuning {
            max_connections: MAX_CONNECTIONS,
            shared_buffers_mb,
            effective_cache_size_mb: mb * 3 / 4,
            maintenance_work_mem_mb: (mb / 16).clamp(64, 2048),
            work_mem_kb,
            max_worker_processes: cpus.max(8),
            max_parallel_workers: cpus,
        }
    }

    /// One line for reports.
    pub fn summary(&self) -> String {
        format!(
            "max_connections={} shared_buffers={}MB effective_cache_size={}MB work_mem={}kB maintenance_work_mem={}MB",
            self.max_connections,
            self.shared_buffers_mb,
            self.effective_cache_size_mb,
            self.work_mem_kb,
            self.maintenance_work_mem_mb
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_16_gib_host_gets_a_quarter_for_buffers_and_work_mem_that_fits() {
        let t = Tuning::for_host(16 << 30, 4);
        assert_eq!(t.shared_buffers_mb, 4096);
        assert_eq!(t.effective_cache_size_mb, 12288);
        assert_eq!(t.maintenance_work_mem_mb, 1024);
        // (16384 - 4096) MB over 200 connections x 3 sorts
        assert_eq!(t.work_mem_kb, 12288 * 1024 / 600);
        assert!(t.work_mem_kb * 600 / 1024 + t.shared_buffers_mb <= 16384);
    }

    #[test]
    fn small_hosts_keep_sane_floors() {
        let t = Tuning::for_host(512 << 20, 1);
        assert_eq!(t.shared_buffers_mb, 128);
        assert_eq!(t.work_mem_kb, 4096);
        assert_eq!(t.maintenance_work_mem_mb, 64);
        assert_eq!(t.max_worker_processes, 8);
    }
}
