//! The process's own metrics, read from `/proc/self` at each scrape.

use prometheus_client::metrics::MetricType;
use std::time::{SystemTime, UNIX_EPOCH};

/// The usual process metrics (`process_cpu_seconds_total`, `process_resident_memory_bytes`,
/// `process_open_fds`, …), read from `/proc/self` at each scrape; none where there is no
/// `/proc` (not Linux).
#[derive(Debug)]
pub(super) struct Process {
    start: f64,
}

impl Process {
    pub(super) fn new() -> Self {
        let start = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        Process { start }
    }
}

/// Clock ticks per second in `/proc/self/stat`: `USER_HZ`, 100 on every Linux architecture
/// herald builds for (it is part of the kernel's ABI).
const USER_HZ: f64 = 100.0;

impl prometheus_client::collector::Collector for Process {
    fn encode(
        &self,
        mut encoder: prometheus_client::encoding::DescriptorEncoder,
    ) -> Result<(), std::fmt::Error> {
        use prometheus_client::encoding::EncodeMetric as _;
        use prometheus_client::metrics::gauge::ConstGauge;
        let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
            return Ok(());
        };
        // The fields after the command name, which is in parentheses and may hold spaces.
        let fields: Vec<&str> = stat
            .rsplit_once(')')
            .map(|(_, rest)| rest.split_whitespace().collect())
            .unwrap_or_default();
        let field = |n: usize| -> f64 {
            fields
                .get(n - 3)
                .and_then(|f| f.parse().ok())
                .unwrap_or(0.0)
        };
        let cpu = (field(14) + field(15)) / USER_HZ;
        let cpu_metric = prometheus_client::metrics::counter::ConstCounter::new(cpu);
        cpu_metric.encode(encoder.encode_descriptor(
            "process_cpu_seconds",
            "User and system CPU time spent",
            None,
            MetricType::Counter,
        )?)?;
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        let kib = |key: &str| -> f64 {
            status
                .lines()
                .find_map(|l| l.strip_prefix(key))
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|n| n.parse::<f64>().ok())
                .unwrap_or(0.0)
        };
        let gauges = [
            (
                "process_resident_memory_bytes",
                "Resident memory size in bytes",
                kib("VmRSS:") * 1024.0,
            ),
            (
                "process_virtual_memory_bytes",
                "Virtual memory size in bytes",
                kib("VmSize:") * 1024.0,
            ),
            ("process_threads", "Threads of the process", kib("Threads:")),
            (
                "process_open_fds",
                "Open file descriptors",
                std::fs::read_dir("/proc/self/fd").map_or(0.0, |d| d.count() as f64),
            ),
            (
                "process_start_time_seconds",
                "When herald started, in seconds since the Unix epoch",
                self.start,
            ),
        ];
        for (name, help, value) in gauges {
            ConstGauge::new(value).encode(encoder.encode_descriptor(
                name,
                help,
                None,
                MetricType::Gauge,
            )?)?;
        }
        Ok(())
    }
}
