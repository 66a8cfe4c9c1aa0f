//! CPU time (user + system) of a process, from `/proc/<pid>/stat`: the bench
//! process (which runs the five services) and the nats-server child.

use std::time::Duration;

/// CPU time `pid` has used so far (`None`: this process).
pub fn used(pid: Option<u32>) -> anyhow::Result<Duration> {
    let path = match pid {
        Some(pid) => format!("/proc/{pid}/stat"),
        None => "/proc/self/stat".to_string(),
    };
    let stat = std::fs::read_to_string(&path)?;
    // The command name (field 2) may hold spaces: fields after its ')'.
    let rest = stat.rsplit_once(')').map(|(_, rest)| rest).ok_or_else(|| anyhow::anyhow!("{path}: no ')'"))?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15; `rest` starts at field 3.
    let ticks: u64 = fields
        .get(11..13)
        .ok_or_else(|| anyhow::anyhow!("{path}: too short"))?
        .iter()
        .try_fold(0u64, |sum, f| f.parse::<u64>().map(|t| sum + t))?;
    // SAFETY: sysconf only reads a system constant.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    Ok(Duration::from_secs_f64(ticks as f64 / per_second as f64))
}

/// CPU time of this process plus `child`.
pub fn used_with(child: Option<u32>) -> anyhow::Result<Duration> {
    Ok(used(None)? + child.map(|pid| used(Some(pid))).transpose()?.unwrap_or_default())
}
