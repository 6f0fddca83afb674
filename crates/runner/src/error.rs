//! [`RunError`]: why a run could not be made (exit code 2), each with a
//! one-line reason that keeps its cause.

use std::time::Duration;

/// A run that could not be made: the node, the page or the browsers were not
/// there, or the plan asks more than the browsers can carry.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("bad settings: {0}")]
    Settings(String),
    #[error("{0}")]
    Capacity(String),
    #[error("nothing is listening at {node} (connection refused): is the node running, and is the port right (4005 https, 4006 http)?")]
    NodeRefused {
        node: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("the node at {node} cannot be reached: {source}")]
    NodeUnreachable {
        node: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("{node} answers, but {node}/reality2 is not a Reality2 GraphQL endpoint: {detail}")]
    NotReality2 { node: String, detail: String },
    #[error("the page was not found at {url}: {detail}")]
    PageNotFound { url: String, detail: String },
    #[error("no chromedriver: {0} (install Debian's chromium-driver, set R2_CHROMEDRIVER, or give --webdriver URL)")]
    NoChromedriver(String),
    #[error("chromedriver {path} did not start: {source}")]
    ChromedriverStart {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the WebDriver server at {url} is not ready: {detail}")]
    WebDriverNotReady { url: String, detail: String },
    #[error("no browser: the WebDriver server at {url} could not start one: {source}")]
    NoBrowser {
        url: String,
        #[source]
        source: fantoccini::error::NewSessionError,
    },
    #[error("the browser failed while {doing}: {source}")]
    Browser {
        doing: String,
        #[source]
        source: fantoccini::error::CmdError,
    },
    #[error("{what} did not happen within {after:?}")]
    Timeout { what: String, after: Duration },
    #[error("tab {tab} could not run: {reason}")]
    TabFailed { tab: String, reason: String },
    #[error("tab {tab} wrote a summary the runner cannot read: {source}")]
    BadSummary {
        tab: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("writing {path}: {source}")]
    Write {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("interrupted (Ctrl-C); the tabs were told to delete their devices")]
    Interrupted,
}

impl RunError {
    /// The error of a WebDriver command, with what the runner was doing.
    pub fn browser(
        doing: impl Into<String>,
    ) -> impl FnOnce(fantoccini::error::CmdError) -> RunError {
        let doing = doing.into();
        move |source| RunError::Browser { doing, source }
    }
}
