//! What a process used: CPU time and memory, read from `/proc` (Linux).

use anyhow::{Context, Result, bail};

/// Resident and peak resident memory of process `pid`, in bytes.
pub fn memory(pid: u32) -> Result<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .context("cannot read the node's memory use (is this Linux?)")?;
    let field = |name: &str| -> Result<u64> {
        let line = status
            .lines()
            .find(|l| l.starts_with(name))
            .with_context(|| format!("no {name} in /proc/{pid}/status"))?;
        let kib: u64 = line
            .split_whitespace()
            .nth(1)
            .and_then(|v| v.parse().ok())
            .with_context(|| format!("cannot read {line:?}"))?;
        Ok(kib * 1024)
    };
    Ok((field("VmRSS:")?, field("VmHWM:")?))
}

/// CPU seconds (user + system) used so far by process `client` and, summed,
/// by the processes `nodes` (Linux).
pub fn cpu_seconds(client: u32, nodes: &[u32]) -> Result<(f64, f64)> {
    // utime and stime.
    let of = |pid: u32| stat_seconds(&pid.to_string(), 11);
    let nodes = nodes.iter().map(|&pid| of(pid)).sum::<Result<f64>>()?;
    Ok((of(client)?, nodes))
}

/// CPU seconds (user + system) used so far by the children of this process
/// that it has waited for (Linux): the programs it ran to their end, not
/// the nodes, which are reaped only when they stop.
pub fn reaped_children_cpu_seconds() -> Result<f64> {
    // cutime and cstime.
    stat_seconds("self", 13)
}

/// The sum of the two clock-tick fields of `/proc/{pid}/stat` from `first`
/// on (counted after the command name), in seconds.
fn stat_seconds(pid: &str, first: usize) -> Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("cannot read /proc/{pid}/stat (is this Linux?)"))?;
    // Fields after the command name, which ends with the last ')': utime
    // and stime are the 12th and 13th of them, cutime and cstime the 14th
    // and 15th, in clock ticks.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok());
    match (ticks(first), ticks(first + 1)) {
        (Some(user), Some(system)) => Ok((user + system) / 100.0),
        _ => bail!("cannot read the CPU times in /proc/{pid}/stat"),
    }
}

/// Starts counting this process's peak resident memory afresh (Linux).
pub fn reset_peak_memory() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}
