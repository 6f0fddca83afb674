//! The facts a result needs beside it: when, on what machine, how loaded it
//! already was, and with which browser and Python.

use std::time::SystemTime;

use procfs::{Current, LoadAverage};

/// The machine the benchmark ran on.
#[derive(Debug, Clone, PartialEq)]
pub struct MachineFacts {
    /// UTC, RFC 3339, to the second.
    pub date: String,
    pub cpu_model: String,
    pub cores: usize,
    pub memory_gib: f64,
    pub kernel: String,
    /// Load averages (1, 5, 15 min) when the benchmark started.
    pub load_at_start: [f32; 3],
    /// ... and when it ended (filled in at the end).
    pub load_at_end: Option<[f32; 3]>,
    /// Chromium's product string (filled in by the first page run).
    pub browser: Option<String>,
    pub python: String,
}

impl MachineFacts {
    /// Reads them now (what cannot be read is `unknown`).
    pub fn now() -> MachineFacts {
        let cpuinfo = procfs::CpuInfo::current().ok();
        let cpu_model = cpuinfo
            .as_ref()
            .and_then(|c| c.model_name(0).map(str::to_owned))
            .unwrap_or_else(|| "unknown".to_owned());
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        let memory_gib = procfs::Meminfo::current()
            .map(|m| m.mem_total as f64 / f64::from(1u32 << 30))
            .unwrap_or(0.0);
        let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|k| k.trim().to_owned())
            .unwrap_or_else(|_| "unknown".to_owned());
        let python = std::process::Command::new("python3")
            .arg("--version")
            .output()
            .ok()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| "python3 not found".to_owned());
        MachineFacts {
            date: humantime::format_rfc3339_seconds(SystemTime::now()).to_string(),
            cpu_model,
            cores,
            memory_gib,
            kernel,
            load_at_start: load_average(),
            load_at_end: None,
            browser: None,
            python,
        }
    }

    /// Notes the load average at the end.
    pub fn finish(&mut self) {
        self.load_at_end = Some(load_average());
    }
}

/// The load averages now, zeros if unreadable.
pub fn load_average() -> [f32; 3] {
    LoadAverage::current().map_or([0.0; 3], |l| [l.one, l.five, l.fifteen])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn facts_are_read_from_this_machine() {
        let mut facts = MachineFacts::now();
        assert!(facts.cores >= 1);
        assert!(facts.memory_gib > 0.1, "{facts:?}");
        assert!(
            facts.date.ends_with('Z') && facts.date.len() == 20,
            "{}",
            facts.date
        );
        assert!(facts.kernel != "unknown");
        assert!(facts.load_at_end.is_none());
        facts.finish();
        assert!(facts
            .load_at_end
            .is_some_and(|l| l.iter().all(|x| *x >= 0.0)));
    }
}
