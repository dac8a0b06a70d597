//! CPU time and resident memory of a process, from /proc (Linux).

use anyhow::Context;

pub struct CpuMem {
    /// User plus system CPU seconds so far.
    pub cpu_secs: f64,
    pub rss_kib: u64,
}

impl CpuMem {
    pub fn of(pid: u32) -> anyhow::Result<Self> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .context("reading /proc/PID/stat")?;
        // Fields after the command name, which is in parentheses and may contain spaces.
        let rest = stat
            .rsplit_once(')')
            .map(|(_, r)| r)
            .context("malformed stat")?;
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let ticks: f64 = fields
            .get(11)
            .and_then(|u| u.parse::<f64>().ok())
            .unwrap_or(0.0)
            + fields
                .get(12)
                .and_then(|s| s.parse::<f64>().ok())
                .unwrap_or(0.0);
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
            .context("reading /proc/PID/status")?;
        let rss_kib = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        // Linux reports CPU time in clock ticks of 1/100 s (USER_HZ) on every common platform.
        Ok(Self {
            cpu_secs: ticks / 100.0,
            rss_kib,
        })
    }
}
