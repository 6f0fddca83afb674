//! The baseline: `bench/baseline.py`, the seed's stress test rewritten in
//! stdlib Python (one OS process per device, the `sweep` scenario, POSTs with
//! a new connection each, no subscriptions), run against the same node at the
//! same device counts, over two [`Transport`]s: plain HTTP, and HTTPS with a
//! new TCP and TLS connection per request — the seed's script as it really
//! runs (`requests.post(url, data=form, verify=False)` without a session).
//!
//! Its CPU is what the script reports from `getrusage`: the device processes
//! (`RUSAGE_CHILDREN`, read after every one was joined) over the scenario;
//! the driver's own (loading and unloading) is reported apart. Its memory is
//! sampled here every 500 ms from `/proc`: PSS and RSS summed over the
//! script's process tree, the largest seen.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use serde::Deserialize;
use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};

use crate::measure::{Peaks, Snapshot, Window};
use crate::node::{NodeError, NodeHandle, NodeStats};
use crate::procs::ProcError;

/// The script, in the workspace's `bench/` folder.
pub const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../bench/baseline.py");
/// How often the script's memory is sampled.
const SAMPLE_EVERY: Duration = Duration::from_millis(500);

/// Why the baseline could not be run or read.
#[derive(Debug, thiserror::Error)]
pub enum BaselineError {
    #[error("could not start python3 {script}")]
    Spawn {
        script: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("reading the baseline's output")]
    Read(#[source] std::io::Error),
    #[error("the baseline's last line is not its figures: {line}")]
    Report {
        line: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("the baseline ended without its figures (status {status})")]
    NoReport { status: String },
    #[error(transparent)]
    Proc(#[from] ProcError),
    #[error(transparent)]
    Node(#[from] NodeError),
    #[error("the node has no HTTPS listener for the {0} baseline")]
    NoHttps(Transport),
}

/// How the script reaches the node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// Plain HTTP, a new TCP connection per request.
    Http,
    /// HTTPS, a new TCP connection and TLS handshake per request, the
    /// certificate not verified: the seed's script as it runs.
    HttpsPerRequest,
}

impl Transport {
    pub const ALL: [Transport; 2] = [Transport::Http, Transport::HttpsPerRequest];

    /// A short name, for tables and the sentants' prefix.
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Http => "http",
            Transport::HttpsPerRequest => "https",
        }
    }

    /// In words, for the report.
    pub fn describe(self) -> &'static str {
        match self {
            Transport::Http => "HTTP, a new connection per request",
            Transport::HttpsPerRequest => {
                "HTTPS, a new TCP and TLS connection per request (the seed's script as it runs)"
            }
        }
    }
}

impl std::fmt::Display for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The figures the script prints last (`{"phase": "done", ...}`).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct BaselineReport {
    pub devices_requested: u32,
    pub devices_created: u32,
    pub devices_deleted: u32,
    /// Device processes started.
    pub processes: u32,
    pub sends_ok: u64,
    pub sends_failed: u64,
    pub requests_intended: u64,
    /// Seconds from the first device process's start to the last one's end.
    pub ran_s: f64,
    /// CPU seconds of the device processes (getrusage of reaped children).
    pub workers_cpu_s: f64,
    /// CPU seconds of the driver (loading, starting processes, unloading).
    pub driver_cpu_s: f64,
    /// The largest RSS of any single device process, KiB.
    pub children_max_rss_kb: u64,
    pub errors: Vec<String>,
    pub python: String,
}

/// How a baseline run ended.
#[derive(Debug, Clone, PartialEq)]
pub enum BaselineOutcome {
    Finished(BaselineReport),
    /// Killed (with all its processes) after `after`; its sentants were unloaded here.
    TimedOut {
        after: Duration,
    },
}

/// One baseline run, measured.
#[derive(Debug, Clone)]
pub struct BaselineRun {
    pub devices: u32,
    pub transport: Transport,
    pub duration_s: f64,
    pub outcome: BaselineOutcome,
    /// The scenario phase: `client_cpu_s` is the device processes' CPU.
    pub window: Window,
    /// The largest memory of the script's process tree.
    pub peaks: Peaks,
    /// The node's counters over the run.
    pub node: NodeStats,
}

impl BaselineRun {
    /// The script's figures, if it finished.
    pub fn report(&self) -> Option<&BaselineReport> {
        match &self.outcome {
            BaselineOutcome::Finished(report) => Some(report),
            BaselineOutcome::TimedOut { .. } => None,
        }
    }
}

#[derive(Deserialize)]
struct Line {
    phase: String,
}

/// Runs the baseline with `devices` processes for `duration_s` seconds over `transport`.
pub async fn run_baseline(
    node: &NodeHandle,
    transport: Transport,
    devices: u32,
    duration_s: f64,
    seed: u64,
    timeout: Duration,
) -> Result<BaselineRun, BaselineError> {
    let url = match transport {
        Transport::Http => node.url(),
        Transport::HttpsPerRequest => node.https_url().ok_or(BaselineError::NoHttps(transport))?,
    };
    let prefix = format!("r2b-{}-{transport}-{devices}-", std::process::id());
    let before = node.stats().await?;
    let mut child = Command::new("python3")
        .arg(SCRIPT)
        .args(["--url", url])
        .args(["--devices", &devices.to_string()])
        .args(["--duration", &duration_s.to_string()])
        .args(["--seed", &seed.to_string()])
        .args(["--prefix", &prefix])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
        .map_err(|source| BaselineError::Spawn {
            script: PathBuf::from(SCRIPT),
            source,
        })?;
    let pid = child.id().unwrap_or(0);
    let lines = child
        .stdout
        .take()
        .map(|out| BufReader::new(out).lines())
        .ok_or_else(|| BaselineError::NoReport {
            status: "no stdout".to_owned(),
        })?;
    let followed = tokio::time::timeout(timeout, follow(node, pid, lines)).await;
    let (outcome, window, peaks) = match followed {
        Ok(result) => {
            let (report, window, peaks) = result?;
            let status = child.wait().await.map_err(BaselineError::Read)?;
            let report = report.ok_or_else(|| BaselineError::NoReport {
                status: status.to_string(),
            })?;
            let window = window.with_client_cpu_s(report.workers_cpu_s);
            (BaselineOutcome::Finished(report), window, peaks)
        }
        Err(_elapsed) => {
            kill_group(&mut child, pid).await;
            node.unload_named(&prefix).await?;
            (
                BaselineOutcome::TimedOut { after: timeout },
                Window::default(),
                Peaks::default(),
            )
        }
    };
    let after = node.stats().await?;
    Ok(BaselineRun {
        devices,
        transport,
        duration_s,
        outcome,
        window,
        peaks,
        node: NodeStats {
            sends: after.sends.saturating_sub(before.sends),
            sends_rejected: after.sends_rejected.saturating_sub(before.sends_rejected),
            ..after
        },
    })
}

/// Reads the script's phases, snapshots the scenario's start and end, and
/// samples its memory until it prints its figures.
async fn follow(
    node: &NodeHandle,
    pid: u32,
    mut lines: Lines<BufReader<ChildStdout>>,
) -> Result<(Option<BaselineReport>, Window, Peaks), BaselineError> {
    let mut peaks = Peaks::default();
    let mut start: Option<Snapshot> = None;
    let mut window = Window::default();
    let mut ticks = tokio::time::interval(SAMPLE_EVERY);
    loop {
        tokio::select! {
            line = lines.next_line() => {
                let Some(line) = line.map_err(BaselineError::Read)? else {
                    return Ok((None, window, peaks));
                };
                let Ok(Line { phase }) = serde_json::from_str::<Line>(&line) else {
                    continue;
                };
                match phase.as_str() {
                    "running" => start = Some(Snapshot::take(pid, false, node).await?),
                    "stopped" => {
                        if let Some(start) = &start {
                            window = Window::between(start, &Snapshot::take(pid, false, node).await?);
                        }
                    }
                    "done" => {
                        let report = serde_json::from_str(&line)
                            .map_err(|source| BaselineError::Report { line, source })?;
                        return Ok((Some(report), window, peaks));
                    }
                    _ => {}
                }
            }
            _ = ticks.tick() => peaks.observe(pid, false).await,
        }
    }
}

/// Kills the script and its device processes (its own process group).
async fn kill_group(child: &mut Child, pid: u32) {
    if let Ok(group) = libc::pid_t::try_from(pid) {
        if group > 0 {
            // SAFETY: `kill` has no memory-safety preconditions; the group is
            // the one this benchmark started the script in (`process_group(0)`).
            unsafe {
                libc::kill(-group, libc::SIGKILL);
            }
        }
    }
    let _ = child.wait().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_script_is_where_the_crate_says() {
        let text = std::fs::read_to_string(SCRIPT).expect("bench/baseline.py");
        assert!(text.contains("multiprocessing.Process"));
        assert!(
            !text.contains("\"device \" +"),
            "never names sentants `device NNNN`"
        );
    }

    #[test]
    fn the_report_line_reads() {
        let line = r#"{"phase": "done", "devices_requested": 5, "devices_created": 5, "devices_deleted": 5, "processes": 5, "sends_ok": 80, "sends_failed": 0, "requests_intended": 82, "ran_s": 3.1, "workers_cpu_s": 0.9, "driver_cpu_s": 0.2, "children_max_rss_kb": 11000, "errors": [], "python": "3.11.7"}"#;
        let report: BaselineReport = serde_json::from_str(line).expect("reads");
        assert_eq!(
            (report.processes, report.sends_ok, report.requests_intended),
            (5, 80, 82)
        );
    }
}
