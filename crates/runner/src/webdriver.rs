//! Where the browsers come from: a local `chromedriver` the runner starts on
//! a free loopback port (in its own process group, killed at exit), or a
//! running WebDriver server such as a Selenium Grid hub (`--webdriver URL`).
//! Sessions are made with `fantoccini`.
//!
//! # Layout
//!
//! - [`Driver`]: the WebDriver server, local or remote, and its readiness.
//! - [`capabilities`]: headless Chromium's flags, for every session.
//! - [`open_session`]: one browser.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder};
use serde_json::{json, Value};
use tokio::process::{Child, Command};

use crate::error::RunError;

/// How long chromedriver may take to answer `/status`.
const DRIVER_START: Duration = Duration::from_secs(30);
/// How long a new session (a browser starting) may take.
const SESSION_START: Duration = Duration::from_secs(120);

/// Chromium's flags for the runner's browsers: headless, and nothing that
/// talks to the network but the page. Background throttling is off so that a
/// window not in front runs its timers as one in front does.
pub const CHROMIUM_FLAGS: &[&str] = &[
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
    "--disable-background-timer-throttling",
    "--disable-renderer-backgrounding",
    "--disable-backgrounding-occluded-windows",
];

/// The WebDriver server the sessions are made on.
pub enum Driver {
    /// A chromedriver started by the runner; dropping it kills its group.
    Local { url: String, child: Child, pid: u32 },
    /// A server the runner did not start.
    Remote { url: String },
}

impl Driver {
    /// Starts `chromedriver` (`$R2_CHROMEDRIVER`, else `/usr/bin/chromedriver`,
    /// else on `PATH`) on a free port and waits until it is ready.
    pub async fn start_local() -> Result<Driver, RunError> {
        let path = find_chromedriver()?;
        let port = free_port().map_err(|source| RunError::ChromedriverStart {
            path: path.display().to_string(),
            source,
        })?;
        let child = Command::new(&path)
            .arg(format!("--port={port}"))
            .arg("--allowed-ips=127.0.0.1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .map_err(|source| RunError::ChromedriverStart {
                path: path.display().to_string(),
                source,
            })?;
        let pid = child.id().unwrap_or_default();
        let driver = Driver::Local {
            url: format!("http://127.0.0.1:{port}"),
            child,
            pid,
        };
        driver.wait_ready(DRIVER_START).await?;
        Ok(driver)
    }

    /// A running server at `url`, once its `/status` says it is ready.
    pub async fn remote(url: &str) -> Result<Driver, RunError> {
        let driver = Driver::Remote {
            url: url.trim_end_matches('/').to_owned(),
        };
        driver.wait_ready(Duration::from_secs(10)).await?;
        Ok(driver)
    }

    pub fn url(&self) -> &str {
        match self {
            Driver::Local { url, .. } | Driver::Remote { url } => url,
        }
    }

    pub fn is_local(&self) -> bool {
        matches!(self, Driver::Local { .. })
    }

    /// `GET /status` until `value.ready`; the last answer or error names why not.
    async fn wait_ready(&self, within: Duration) -> Result<Value, RunError> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .expect("a reqwest client builds");
        let deadline = Instant::now() + within;
        let url = format!("{}/status", self.url());
        loop {
            let detail = match http.get(&url).send().await {
                Ok(response) => match response.json::<Value>().await {
                    Ok(status) if status.pointer("/value/ready") == Some(&Value::Bool(true)) => {
                        return Ok(status)
                    }
                    Ok(status) => format!("/status says {status}"),
                    Err(e) => format!("/status is not JSON: {e}"),
                },
                Err(e) => e.to_string(),
            };
            if Instant::now() >= deadline {
                return Err(RunError::WebDriverNotReady {
                    url: self.url().to_owned(),
                    detail,
                });
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The browsers the server can run at once, when it says (a Grid's
    /// `/status` lists its nodes' slots).
    pub async fn slots(&self) -> Option<usize> {
        let status = self.wait_ready(Duration::from_secs(5)).await.ok()?;
        let nodes = status.pointer("/value/nodes")?.as_array()?;
        Some(
            nodes
                .iter()
                .filter_map(|n| n["slots"].as_array())
                .map(Vec::len)
                .sum(),
        )
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        if let Driver::Local { child, pid, .. } = self {
            // The group: chromedriver and any browser it left.
            if *pid != 0 {
                // SAFETY: killpg on the group this runner created for its child.
                unsafe { libc::killpg(*pid as libc::pid_t, libc::SIGKILL) };
            }
            let _ = child.start_kill();
        }
    }
}

fn find_chromedriver() -> Result<PathBuf, RunError> {
    if let Some(path) = std::env::var_os("R2_CHROMEDRIVER") {
        let path = PathBuf::from(path);
        return if path.is_file() {
            Ok(path)
        } else {
            Err(RunError::NoChromedriver(format!(
                "R2_CHROMEDRIVER={} is not a file",
                path.display()
            )))
        };
    }
    let debian = Path::new("/usr/bin/chromedriver");
    if debian.is_file() {
        return Ok(debian.to_owned());
    }
    std::env::var_os("PATH")
        .and_then(|p| {
            std::env::split_paths(&p)
                .map(|d| d.join("chromedriver"))
                .find(|c| c.is_file())
        })
        .ok_or_else(|| RunError::NoChromedriver("not at /usr/bin/chromedriver nor on PATH".into()))
}

/// A free loopback port (bound, then released for chromedriver).
fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// The Chromium binary for local sessions: `--chromium`, `$R2_CHROMIUM`,
/// else Debian's `/usr/bin/chromium` when it is there.
pub fn chromium_binary(given: Option<&str>, local: bool) -> Option<String> {
    given
        .map(str::to_owned)
        .or_else(|| std::env::var("R2_CHROMIUM").ok().filter(|_| local))
        .or_else(|| {
            (local && Path::new("/usr/bin/chromium").is_file())
                .then(|| "/usr/bin/chromium".to_owned())
        })
}

/// The capabilities of every session: headless Chromium with
/// [`CHROMIUM_FLAGS`], self-signed certificates accepted (a Reality2 node's
/// is), and `binary` when given.
pub fn capabilities(binary: Option<&str>) -> serde_json::Map<String, Value> {
    let mut chrome = json!({ "args": CHROMIUM_FLAGS });
    if let Some(binary) = binary {
        chrome["binary"] = json!(binary);
    }
    let caps = json!({
        "browserName": "chrome",
        "acceptInsecureCerts": true,
        "pageLoadStrategy": "normal",
        "goog:chromeOptions": chrome,
    });
    caps.as_object().cloned().unwrap_or_default()
}

/// A new session (one browser) on `driver`.
pub async fn open_session(
    driver: &str,
    caps: serde_json::Map<String, Value>,
) -> Result<Client, RunError> {
    let mut builder = ClientBuilder::rustls().map_err(|e| RunError::WebDriverNotReady {
        url: driver.to_owned(),
        detail: format!("no TLS roots for the WebDriver client: {e}"),
    })?;
    builder.capabilities(caps);
    match tokio::time::timeout(SESSION_START, builder.connect(driver)).await {
        Ok(result) => result.map_err(|source| RunError::NoBrowser {
            url: driver.to_owned(),
            source,
        }),
        Err(_) => Err(RunError::Timeout {
            what: format!("a browser session from {driver}"),
            after: SESSION_START,
        }),
    }
}
