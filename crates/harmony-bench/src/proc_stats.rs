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

/// CPU and memory summed over several processes (a server and the services it needs).
pub struct Usage {
    pub cpu_secs: f64,
    pub rss_kib: u64,
}

impl Usage {
    pub fn of(pids: &[u32]) -> anyhow::Result<Self> {
        let mut usage = Self {
            cpu_secs: 0.0,
            rss_kib: 0,
        };
        for pid in pids {
            let one = CpuMem::of(*pid)?;
            usage.cpu_secs += one.cpu_secs;
            usage.rss_kib += one.rss_kib;
        }
        Ok(usage)
    }
}

/// `pid` and its direct children (PostgreSQL's backends are the postmaster's children), as they
/// are now.
pub fn with_children(pid: u32) -> Vec<u32> {
    let mut out = vec![pid];
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return out;
    };
    for entry in entries.flatten() {
        let Some(child) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{child}/stat")) else {
            continue;
        };
        // The fields after the command (which may hold spaces) start with state, then ppid.
        let ppid = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|p| p.parse::<u32>().ok());
        if ppid == Some(pid) {
            out.push(child);
        }
    }
    out
}

/// Kernel memory that grows with connections, KiB: the slab caches (socket, file, epoll
/// structures) plus TCP socket buffers (`/proc/net/sockstat`, in pages). Machine-wide.
pub fn kernel_kib() -> anyhow::Result<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").context("reading /proc/meminfo")?;
    let slab: u64 = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("Slab:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .context("no Slab line in /proc/meminfo")?;
    let sockstat =
        std::fs::read_to_string("/proc/net/sockstat").context("reading /proc/net/sockstat")?;
    let pages: u64 = sockstat
        .lines()
        .find(|l| l.starts_with("TCP:"))
        .and_then(|l| {
            let fields: Vec<&str> = l.split_whitespace().collect();
            let at = fields.iter().position(|f| *f == "mem")?;
            fields.get(at + 1)?.parse().ok()
        })
        .unwrap_or(0);
    Ok(slab + pages * 4)
}

/// Connections the kernel dropped because a listener's accept queue was full (`TcpExt:
/// ListenOverflows` in `/proc/net/netstat`). Machine-wide.
pub fn listen_overflows() -> anyhow::Result<u64> {
    let netstat =
        std::fs::read_to_string("/proc/net/netstat").context("reading /proc/net/netstat")?;
    let mut tcp_ext = netstat.lines().filter(|l| l.starts_with("TcpExt:"));
    let (names, values) = tcp_ext
        .next()
        .zip(tcp_ext.next())
        .context("no TcpExt lines")?;
    names
        .split_whitespace()
        .zip(values.split_whitespace())
        .find(|(name, _)| *name == "ListenOverflows")
        .and_then(|(_, value)| value.parse().ok())
        .context("no ListenOverflows in TcpExt")
}
