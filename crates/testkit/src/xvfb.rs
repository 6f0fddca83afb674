//! [`Xvfb`]: a virtual X display for a browser with a real window (a
//! headful Chromium hides, throttles and backgrounds tabs as a user's does).

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use anyhow::Context as _;
use tokio::process::{Child, Command};

/// How long Xvfb may take to open its display.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// A running Xvfb; dropping it ends it.
pub struct Xvfb {
    display: String,
    _child: Child,
}

impl Xvfb {
    /// Starts Xvfb on the first free display from `:90`; `Ok(None)` when
    /// Xvfb is not installed (`apt-get install xvfb`), which the caller reports.
    pub async fn start() -> anyhow::Result<Option<Xvfb>> {
        if crate::find_on_path(&["Xvfb"]).is_none() {
            return Ok(None);
        }
        for number in 90..130 {
            let socket = format!("/tmp/.X11-unix/X{number}");
            if Path::new(&socket).exists() || Path::new(&format!("/tmp/.X{number}-lock")).exists() {
                continue;
            }
            let display = format!(":{number}");
            let mut child = Command::new("Xvfb")
                .args([display.as_str(), "-screen", "0", "1280x900x24", "-nolisten", "tcp"])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .kill_on_drop(true)
                .spawn()
                .context("starting Xvfb")?;
            let deadline = tokio::time::Instant::now() + START_TIMEOUT;
            while tokio::time::Instant::now() < deadline {
                if Path::new(&socket).exists() {
                    return Ok(Some(Xvfb { display, _child: child }));
                }
                if child.try_wait()?.is_some() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        anyhow::bail!("Xvfb could not open a display from :90 to :129")
    }

    /// The display, e.g. `:90`.
    pub fn display(&self) -> &str {
        &self.display
    }
}
