//! The command line: the page's settings as flags, the browsers and tabs to
//! spread them over, where WebDriver is, and where to write the results.

use std::path::PathBuf;

use clap::Parser;

/// r2-stress on the command line: the page in headless Chromium tabs as one
/// fleet, a progress line a second, a summary and an exit code (0 PASS,
/// 1 FAIL, 2 the run could not be made).
#[derive(Debug, Clone, Parser)]
#[command(name = "r2-stress-run", version)]
pub struct Args {
    /// The Reality2 node under test.
    #[arg(long, value_name = "URL", default_value = "http://127.0.0.1:4006")]
    pub node: String,
    /// Virtual devices in all, split over every tab.
    #[arg(long, value_name = "N", default_value_t = 10)]
    pub devices: u32,
    /// The page's device profile (`webapp`, `lean`, `seed`), passed as `profile=`.
    #[arg(long, value_name = "P")]
    pub profile: Option<String>,
    /// `sweep`, `rotate`, `taps` or `replay`.
    #[arg(long, value_name = "S", default_value = "sweep")]
    pub scenario: String,
    /// Seconds of scenario.
    #[arg(long, value_name = "S", default_value_t = 30.0)]
    pub duration: f64,
    /// `per-device`, `shared` or `none`.
    #[arg(long, value_name = "M", default_value = "per-device")]
    pub sockets: String,
    /// Devices joining per second, in all (each tab gets its share).
    #[arg(long, value_name = "R", default_value_t = 10.0)]
    pub join_rate: f64,
    /// The random seed; tab i runs with seed + i, so the same seed repeats a run.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub seed: u64,
    /// FAIL when a corrected send or signal latency p99 passes this, ms.
    #[arg(long, value_name = "X")]
    pub max_p99_ms: Option<f64>,
    /// FAIL when failed sends pass this share of all sends, percent.
    #[arg(long, value_name = "Y")]
    pub max_error_pct: Option<f64>,
    /// Browsers (WebDriver sessions).
    #[arg(long, value_name = "B", default_value_t = 1)]
    pub browsers: u32,
    /// Tabs in each browser.
    #[arg(long, value_name = "T", default_value_t = 1)]
    pub tabs_per_browser: u32,
    /// A running WebDriver server (a Selenium Grid hub); default: a local chromedriver.
    #[arg(long, value_name = "URL")]
    pub webdriver: Option<String>,
    /// The page (default: NODE/stresstest/).
    #[arg(long, value_name = "URL")]
    pub page: Option<String>,
    /// The fleet's name (`&fleet=`), so that a control view elsewhere
    /// (`/stresstest/?control&fleet=NAME`) can watch; default: a new one.
    #[arg(long, value_name = "NAME")]
    pub fleet: Option<String>,
    /// The fleet's secret (`&key=`, at least 16 characters) that seals its
    /// commands and reports; default: a new random one.
    #[arg(long, value_name = "SECRET")]
    pub fleet_key: Option<String>,
    /// Write the summaries, the 1-second CSV and a JUnit XML here.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Another page setting, passed as is (`--param viewers=2`); repeatable.
    #[arg(long = "param", value_name = "K=V", value_parser = parse_param)]
    pub params: Vec<(String, String)>,
    /// The most devices one tab may carry (default: what bench/RESULTS.md measured for the scenario).
    #[arg(long, value_name = "N")]
    pub max_devices_per_tab: Option<u32>,
    /// Run even when the plan passes the per-tab or per-browser limits.
    #[arg(long)]
    pub force: bool,
    /// The Chromium binary for the browsers (default: $R2_CHROMIUM, else /usr/bin/chromium locally; the Grid's own with --webdriver).
    #[arg(long, value_name = "PATH")]
    pub chromium: Option<String>,
    /// No progress lines (the summary is still printed).
    #[arg(long, short)]
    pub quiet: bool,
}

fn parse_param(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_owned(), v.to_owned())),
        _ => Err(format!("{text:?} is not KEY=VALUE")),
    }
}

impl Args {
    /// The device profile (`--profile`, else the page's default).
    pub fn profile(&self) -> r2_core::profile::Profile {
        self.profile
            .as_deref()
            .and_then(|p| p.parse().ok())
            .unwrap_or_default()
    }

    /// The value of `--param NAME=VALUE`, if given.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The page's URL: `--page`, else the node's `/stresstest/`.
    pub fn page_url(&self) -> String {
        self.page
            .clone()
            .unwrap_or_else(|| format!("{}/stresstest/", self.node.trim_end_matches('/')))
    }

    /// The node's address without a trailing slash.
    pub fn node_url(&self) -> String {
        self.node.trim_end_matches('/').to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_pass_through_and_bad_ones_are_refused() {
        let args = Args::try_parse_from([
            "r2-stress-run",
            "--node",
            "http://h:4006/",
            "--param",
            "viewers=2",
            "--param",
            "keep=1",
        ])
        .expect("parses");
        assert_eq!(
            args.params,
            [("viewers".into(), "2".into()), ("keep".into(), "1".into())]
        );
        assert_eq!(args.page_url(), "http://h:4006/stresstest/");
        let err = Args::try_parse_from(["r2-stress-run", "--param", "novalue"]).unwrap_err();
        assert!(err.to_string().contains("is not KEY=VALUE"), "{err}");
    }
}
