//! A headless Chromium process with its own temporary profile, and its
//! DevTools connection.
//!
//! Chromium is started in its own process group with
//! `--remote-debugging-port=0`; the port and browser websocket path are read
//! from `<profile>/DevToolsActivePort` once Chromium writes it. Dropping a
//! [`Browser`] kills the whole group (browser, zygotes, renderers, utility
//! processes) and removes the profile; [`Browser::close`] shuts it down
//! gracefully first.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, ChildStderr, Command};

use crate::cdp::Connection;
use crate::error::Error;
use crate::page::Page;
use crate::{find_on_path, proc_cpu};

/// How long Chromium may take to open its DevTools port (the machine may be
/// busy compiling).
const LAUNCH_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a graceful `Browser.close` may take before the group is killed.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(10);
/// How often to look for `DevToolsActivePort`.
const PORT_FILE_POLL: Duration = Duration::from_millis(20);
/// Lines of Chromium's stderr kept for error messages.
const STDERR_LINES: usize = 40;

/// The flags that work on this project's machines (root, closed network).
const FLAGS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--remote-debugging-port=0",
];

/// A running headless Chromium.
pub struct Browser {
    conn: Arc<Connection>,
    // Field order matters: the process group is killed before the profile
    // directory is removed.
    process: Process,
    profile: tempfile::TempDir,
}

impl Browser {
    /// Starts Chromium: `$R2_CHROMIUM`, else `/usr/bin/chromium`, else
    /// `chromium` (or `chromium-browser`) on `PATH`.
    pub async fn launch() -> anyhow::Result<Browser> {
        Self::launch_with(&[]).await
    }

    /// Starts Chromium as [`Browser::launch`] does, with `args` added to its
    /// command line (e.g. `--host-resolver-rules=MAP phone.test 127.0.0.1`,
    /// `--ignore-certificate-errors`).
    pub async fn launch_with(args: &[&str]) -> anyhow::Result<Browser> {
        Ok(Self::launch_exe(&find_chromium()?, args, None).await?)
    }

    /// Starts Chromium with a real window on the X display `display` (e.g.
    /// an Xvfb's `:99`), as a user's browser runs: not headless, and, like
    /// every launch here, without the switches that keep hidden tabs'
    /// timers running (`--disable-background-timer-throttling`,
    /// `--disable-backgrounding-occluded-windows`,
    /// `--disable-renderer-backgrounding`).
    pub async fn launch_headful(display: &str, args: &[&str]) -> anyhow::Result<Browser> {
        Ok(Self::launch_exe(&find_chromium()?, args, Some(display)).await?)
    }

    async fn launch_exe(
        exe: &Path,
        args: &[&str],
        display: Option<&str>,
    ) -> Result<Browser, Error> {
        let profile = tempfile::Builder::new()
            .prefix("r2-chromium-")
            .tempdir()
            .map_err(|source| Error::Profile {
                action: "could not be created",
                source,
            })?;
        let mut command = Command::new(exe);
        let flags = FLAGS
            .iter()
            .filter(|f| display.is_none() || **f != "--headless");
        if let Some(display) = display {
            command.env("DISPLAY", display);
        }
        command
            .args(flags)
            .args(args)
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        let process_error = |source| Error::Process {
            path: exe.to_owned(),
            source,
        };
        let mut child = command.spawn().map_err(process_error)?;
        let pid = child.id().ok_or_else(|| Error::EarlyExit {
            status: "at once".to_owned(),
            stderr: String::new(),
        })?;
        let stderr = StderrTail::default();
        let stderr_reader = child
            .stderr
            .take()
            .map(|pipe| tokio::spawn(stderr.clone().collect(pipe)));
        let mut process = Process {
            child,
            pid,
            stderr,
            stderr_reader,
        };
        let url = tokio::time::timeout(LAUNCH_TIMEOUT, process.devtools_url(profile.path()))
            .await
            .map_err(|_| Error::Timeout {
                what: format!(
                    "Chromium to write DevToolsActivePort; its stderr ends with:\n{}",
                    process.stderr.text()
                ),
                after: LAUNCH_TIMEOUT,
            })??;
        let conn = Arc::new(Connection::connect(&url).await?);
        Ok(Browser {
            conn,
            process,
            profile,
        })
    }

    /// Opens a new blank tab and attaches to it, with the `Runtime`, `Page`
    /// and `Log` domains enabled and console output being collected.
    pub async fn new_page(&self) -> anyhow::Result<Page> {
        Ok(Page::open(Arc::clone(&self.conn)).await?)
    }

    /// Raw CDP at the browser level (no session).
    pub async fn call(&self, method: &str, params: Value) -> anyhow::Result<Value> {
        Ok(self.conn.call(method, params, None).await?)
    }

    /// CPU time (user + system, in seconds) used so far by this browser's
    /// renderer processes, from `/proc` (Linux only). Renderers that have
    /// already exited are not counted.
    pub async fn renderer_cpu_seconds(&self) -> anyhow::Result<f64> {
        let pid = self.process.pid;
        let seconds =
            tokio::task::spawn_blocking(move || proc_cpu::renderer_cpu_seconds(pid)).await??;
        Ok(seconds)
    }

    /// The browser's process id.
    pub fn pid(&self) -> u32 {
        self.process.pid
    }

    /// The temporary profile directory (removed when the browser goes).
    pub fn profile_dir(&self) -> &Path {
        self.profile.path()
    }

    /// Closes the browser gracefully (`Browser.close`), waits for it to exit
    /// (killing it if it takes too long), and removes its profile directory.
    pub async fn close(self) -> anyhow::Result<()> {
        let Browser {
            conn,
            mut process,
            profile,
        } = self;
        // The answer may never come: the browser closes the socket as it exits.
        let _ =
            tokio::time::timeout(CLOSE_TIMEOUT, conn.call("Browser.close", json!({}), None)).await;
        let exited = tokio::time::timeout(CLOSE_TIMEOUT, process.child.wait()).await;
        if !matches!(exited, Ok(Ok(_))) {
            process.child.start_kill().ok();
        }
        process
            .child
            .wait()
            .await
            .map_err(|source| Error::Process {
                path: PathBuf::from(format!("pid {}", process.pid)),
                source,
            })?;
        drop(process); // kills any process of the group still there
        profile.close().map_err(|source| Error::Profile {
            action: "could not be removed",
            source,
        })?;
        Ok(())
    }
}

/// The browser process and its group.
struct Process {
    child: Child,
    pid: u32,
    stderr: StderrTail,
    stderr_reader: Option<tokio::task::JoinHandle<()>>,
}

impl Process {
    /// Awaits `DevToolsActivePort` (or Chromium's early exit) and returns the
    /// browser websocket URL.
    async fn devtools_url(&mut self, profile: &Path) -> Result<String, Error> {
        let port_file = profile.join("DevToolsActivePort");
        loop {
            if let Ok(text) = tokio::fs::read_to_string(&port_file).await {
                if let Some(url) = parse_devtools_active_port(&text) {
                    return Ok(url);
                }
            }
            let status = self.child.try_wait().map_err(|source| Error::Process {
                path: PathBuf::from(format!("pid {}", self.pid)),
                source,
            })?;
            if let Some(status) = status {
                // The rest of the group holds the stderr pipe open: end it, then
                // let the reader drain what was written.
                self.kill_group();
                if let Some(reader) = self.stderr_reader.take() {
                    let _ = tokio::time::timeout(Duration::from_secs(2), reader).await;
                }
                return Err(Error::EarlyExit {
                    status: status.to_string(),
                    stderr: self.stderr.text(),
                });
            }
            tokio::time::sleep(PORT_FILE_POLL).await;
        }
    }
}

impl Process {
    /// Kills every process of the browser's group.
    fn kill_group(&self) {
        let Ok(group) = libc::pid_t::try_from(self.pid) else {
            return;
        };
        // SAFETY: `kill` has no memory-safety preconditions. The group id is
        // the browser's pid (it was started with `process_group(0)`); ESRCH
        // (group already gone) is fine to ignore.
        unsafe {
            libc::kill(-group, libc::SIGKILL);
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill_group();
    }
}

/// The last lines Chromium wrote to stderr.
#[derive(Clone, Default)]
struct StderrTail(Arc<Mutex<VecDeque<String>>>);

impl StderrTail {
    async fn collect(self, pipe: ChildStderr) {
        let mut lines = BufReader::new(pipe).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            let mut tail = self.0.lock().unwrap_or_else(|p| p.into_inner());
            if tail.len() == STDERR_LINES {
                tail.pop_front();
            }
            tail.push_back(line);
        }
    }

    fn text(&self) -> String {
        let tail = self.0.lock().unwrap_or_else(|p| p.into_inner());
        tail.iter()
            .map(String::as_str)
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// `DevToolsActivePort` holds the port on its first line and the browser
/// target's path on the second; `None` until both are there.
fn parse_devtools_active_port(text: &str) -> Option<String> {
    let mut lines = text.lines();
    let port: u16 = lines.next()?.trim().parse().ok()?;
    let path = lines.next()?.trim();
    (port != 0 && path.starts_with('/')).then(|| format!("ws://127.0.0.1:{port}{path}"))
}

/// The Chromium executable to run.
fn find_chromium() -> Result<PathBuf, Error> {
    if let Some(path) = std::env::var_os("R2_CHROMIUM").filter(|p| !p.is_empty()) {
        let path = PathBuf::from(path);
        return if path.is_file() {
            Ok(path)
        } else {
            Err(Error::ChromiumEnvMissing(path))
        };
    }
    let debian = Path::new("/usr/bin/chromium");
    if debian.is_file() {
        return Ok(debian.to_owned());
    }
    find_on_path(&["chromium", "chromium-browser"]).ok_or(Error::ChromiumNotFound)
}

/// Opens `url` (a page with `autostart=1`) in a fresh headless Chromium and
/// returns the run summary it writes once its phase is `phase`.
pub async fn autorun_summary(
    url: &str,
    phase: &str,
    timeout: std::time::Duration,
) -> anyhow::Result<serde_json::Value> {
    let browser = Browser::launch().await?;
    let page = browser.new_page().await?;
    page.goto(url).await?;
    let summary = page.summary(phase, timeout).await?;
    browser.close().await?;
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_browser_that_exits_early_reports_its_stderr() {
        let dir = tempfile::tempdir().expect("temp dir");
        let exe = dir.path().join("not-a-browser");
        std::fs::write(
            &exe,
            "#!/bin/sh\necho \"cannot open display\" >&2\nexit 3\n",
        )
        .expect("script");
        std::fs::set_permissions(&exe, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .expect("chmod");
        match Browser::launch_exe(&exe, &[], None).await {
            Err(Error::EarlyExit { status, stderr }) => {
                assert!(status.contains('3'), "status {status}");
                assert!(stderr.contains("cannot open display"), "stderr {stderr:?}");
            }
            Err(other) => panic!("expected EarlyExit, got {other}"),
            Ok(_) => panic!("a script that exits at once launched as a browser"),
        }
    }

    #[tokio::test]
    async fn a_missing_executable_is_a_process_error() {
        let missing = Path::new("/nonexistent/chromium");
        assert!(matches!(
            Browser::launch_exe(missing, &[], None).await,
            Err(Error::Process { .. })
        ));
    }

    #[test]
    fn devtools_active_port_needs_both_lines() {
        assert_eq!(parse_devtools_active_port(""), None);
        assert_eq!(parse_devtools_active_port("39477\n"), None);
        assert_eq!(parse_devtools_active_port("0\n/devtools/browser/x\n"), None);
        assert_eq!(
            parse_devtools_active_port("junk\n/devtools/browser/x\n"),
            None
        );
        assert_eq!(
            parse_devtools_active_port("39477\n/devtools/browser/0529-aa\n").as_deref(),
            Some("ws://127.0.0.1:39477/devtools/browser/0529-aa")
        );
    }
}
