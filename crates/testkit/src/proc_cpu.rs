//! CPU time of a browser's renderer processes, read from Linux `/proc`.
//!
//! The renderers are the descendants of the browser process (through the
//! zygote) whose command line has `--type=renderer`; their `utime + stime`
//! (fields 14 and 15 of `/proc/PID/stat`, in clock ticks) are summed.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::error::Error;

/// Seconds of CPU (user + system) used by the live renderer descendants of
/// process `browser`.
pub fn renderer_cpu_seconds(browser: u32) -> Result<f64, Error> {
    let proc_dir = Path::new("/proc");
    let entries = std::fs::read_dir(proc_dir).map_err(|source| Error::Proc {
        path: proc_dir.to_owned(),
        source,
    })?;
    // pid -> (parent pid, CPU ticks); processes that vanish mid-scan are skipped.
    let table: HashMap<u32, (u32, u64)> = entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| {
            let stat = std::fs::read_to_string(proc_dir.join(pid.to_string()).join("stat")).ok()?;
            Some((pid, parse_stat(&stat)?))
        })
        .collect();
    if !table.contains_key(&browser) {
        return Err(Error::Proc {
            path: PathBuf::from(format!("/proc/{browser}/stat")),
            source: std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "the browser process is gone",
            ),
        });
    }
    let ticks: u64 = descendants(&table, browser)
        .into_iter()
        .filter(|pid| is_renderer(*pid))
        .filter_map(|pid| table.get(&pid).map(|(_, ticks)| *ticks))
        .sum();
    Ok(ticks as f64 / clock_ticks_per_second())
}

/// The processes below `root` (not `root` itself).
fn descendants(table: &HashMap<u32, (u32, u64)>, root: u32) -> Vec<u32> {
    let mut found = Vec::new();
    let mut frontier = vec![root];
    while let Some(parent) = frontier.pop() {
        for (&pid, &(ppid, _)) in table {
            if ppid == parent && pid != root && !found.contains(&pid) {
                found.push(pid);
                frontier.push(pid);
            }
        }
    }
    found
}

fn is_renderer(pid: u32) -> bool {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        // Zygote children rewrite their title: one string, arguments split by spaces.
        .map(|cmdline| {
            cmdline
                .split(|b| *b == 0 || *b == b' ')
                .any(|arg| arg == b"--type=renderer")
        })
        .unwrap_or(false)
}

/// `(ppid, utime + stime)` from a `/proc/PID/stat` line. The command name (in
/// parentheses) may itself hold spaces and parentheses, so fields are counted
/// from the last `)`.
fn parse_stat(stat: &str) -> Option<(u32, u64)> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // rest starts at field 3 (state): ppid is field 4, utime 14, stime 15.
    let ppid = fields.get(1)?.parse().ok()?;
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((ppid, utime.checked_add(stime)?))
}

fn clock_ticks_per_second() -> f64 {
    // SAFETY: sysconf only reads a configuration value.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 {
        ticks as f64
    } else {
        100.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_stat_counts_fields_after_the_command_name() {
        let line = "4242 (Web (Content) x) S 17 4242 4242 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 12 0 999 0 0";
        assert_eq!(parse_stat(line), Some((17, 325)));
        assert_eq!(parse_stat("4242 (short) S 17"), None);
        assert_eq!(parse_stat("no parenthesis"), None);
    }

    #[test]
    fn own_process_is_readable_and_has_no_renderers() {
        let me = std::process::id();
        let stat = std::fs::read_to_string(format!("/proc/{me}/stat")).expect("own stat");
        let (ppid, _) = parse_stat(&stat).expect("own stat parses");
        assert_eq!(ppid, std::os::unix::process::parent_id());
        assert_eq!(renderer_cpu_seconds(me).expect("scan"), 0.0);
    }

    #[test]
    fn descendants_follow_the_tree() {
        let table = HashMap::from([
            (1, (0, 0)),
            (2, (1, 0)),
            (3, (2, 0)),
            (4, (9, 0)),
            (5, (1, 0)),
        ]);
        let mut below = descendants(&table, 1);
        below.sort_unstable();
        assert_eq!(below, vec![2, 3, 5]);
    }
}
