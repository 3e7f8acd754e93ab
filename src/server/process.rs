//! What the operating system says of this process, for `/metrics`: when it
//! started, its resident memory and its open file descriptors (the names
//! Prometheus's process collectors use).

/// The process's own figures; a figure the system does not give is `None`.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ProcessInfo {
    /// Seconds since 1970 at which the process started.
    pub start_time_seconds: Option<f64>,
    pub resident_memory_bytes: Option<u64>,
    pub open_fds: Option<u64>,
}

impl ProcessInfo {
    /// Reads them from `/proc/self`.
    pub fn read() -> ProcessInfo {
        ProcessInfo {
            start_time_seconds: start_time(),
            resident_memory_bytes: resident(),
            open_fds: std::fs::read_dir("/proc/self/fd")
                .ok()
                .map(|d| d.count() as u64),
        }
    }
}

/// `/proc/self/stat` field 22 (clock ticks after boot) plus `btime`.
fn start_time() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let after = &stat[stat.rfind(')')? + 2..];
    let ticks: f64 = after.split(' ').nth(19)?.parse().ok()?;
    let boot: f64 = std::fs::read_to_string("/proc/stat")
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("btime "))?
        .trim()
        .parse()
        .ok()?;
    // SAFETY: sysconf reads a constant of the system.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    (hz > 0).then(|| boot + ticks / hz as f64)
}

/// `/proc/self/statm` field 2 (resident pages) times the page size.
fn resident() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split(' ').nth(1)?.parse().ok()?;
    // SAFETY: sysconf reads a constant of the system.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    (page > 0).then(|| pages * page as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_read() {
        let p = ProcessInfo::read();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        let started = p.start_time_seconds.unwrap();
        assert!(
            started <= now + 1.0 && started > now - 86_400.0,
            "{started} against {now}"
        );
        assert!(p.resident_memory_bytes.unwrap() > 1 << 20);
        assert!(p.open_fds.unwrap() >= 3);
    }
}
