//! The errors of the Chromium side of the harness (launching, the DevTools
//! connection, pages), one enum that keeps each cause.
//!
//! The public API returns `anyhow::Result` (it is used from tests and
//! benchmarks only); the errors inside are values of [`Error`], so a caller can
//! `downcast_ref::<Error>()` to tell, say, a JavaScript exception from a
//! timeout.

use std::path::PathBuf;
use std::time::Duration;

/// What can go wrong while driving Chromium.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No browser executable was found.
    #[error(
        "no Chromium found: set R2_CHROMIUM to its path, install /usr/bin/chromium \
         (`apt-get install chromium`), or put `chromium` on PATH"
    )]
    ChromiumNotFound,

    /// `R2_CHROMIUM` names a file that does not exist.
    #[error("R2_CHROMIUM is set to {0}, which does not exist")]
    ChromiumEnvMissing(PathBuf),

    /// Creating the temporary profile directory failed, or removing it did.
    #[error("temporary Chromium profile {action}")]
    Profile {
        action: &'static str,
        #[source]
        source: std::io::Error,
    },

    /// The browser process could not be started or waited for.
    #[error("could not run {path}")]
    Process {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// The browser exited before it opened its DevTools port.
    #[error(
        "Chromium exited ({status}) before DevTools was ready; its stderr ends with:\n{stderr}"
    )]
    EarlyExit { status: String, stderr: String },

    /// Connecting to the DevTools websocket, or a frame on it, failed.
    #[error("DevTools websocket {url}")]
    WebSocket {
        url: String,
        #[source]
        source: Box<tokio_tungstenite::tungstenite::Error>,
    },

    /// The DevTools connection is closed (the browser went away).
    #[error("the DevTools connection is closed ({0})")]
    Closed(String),

    /// Chromium answered a command with an error.
    #[error("CDP {method} failed: {message} (code {code}{})", data.as_deref().map(|d| format!(", {d}")).unwrap_or_default())]
    Protocol {
        method: String,
        code: i64,
        message: String,
        data: Option<String>,
    },

    /// An answer did not have the expected shape.
    #[error("unexpected answer to {method}: {detail}")]
    Unexpected { method: String, detail: String },

    /// Something did not happen in time.
    #[error("timed out after {after:?} waiting for {what}")]
    Timeout { what: String, after: Duration },

    /// Evaluated JavaScript threw, or its promise rejected.
    #[error("JavaScript exception: {0}")]
    Js(String),

    /// `Page.navigate` reported a failure (e.g. `net::ERR_CONNECTION_REFUSED`).
    #[error("navigation to {url} failed: {reason}")]
    Navigation { url: String, reason: String },

    /// `wait_for`'s condition did not become truthy in time.
    #[error(
        "condition `{condition}` still not true after {after:?} (last result: {last}); \
         recent console output:\n{console}"
    )]
    WaitFor {
        condition: String,
        after: Duration,
        last: String,
        console: String,
    },

    /// `trunk` is needed to build the page and is not on `PATH`.
    #[error(
        "`trunk` is not on PATH: install it (`cargo install trunk`, or `cargo xtask test`), \
         or set R2_SITES_DIR to a sites dir that holds a built `stresstest/`"
    )]
    TrunkNotFound,

    /// `trunk build` failed to run or exited with an error.
    #[error("`{command}` in {dir} failed: {outcome}")]
    TrunkFailed {
        command: String,
        dir: PathBuf,
        outcome: String,
    },

    /// A sites dir does not hold the built page.
    #[error("{0} is not there: the sites dir does not hold a built page")]
    NoBuiltPage(PathBuf),

    /// Reading `/proc` for CPU figures failed.
    #[error("reading {path}")]
    Proc {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    pub(crate) fn unexpected(method: &str, detail: impl Into<String>) -> Error {
        Error::Unexpected {
            method: method.to_owned(),
            detail: detail.into(),
        }
    }
}
