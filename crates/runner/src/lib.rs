//! `r2-stress-run`: r2-stress on the command line. It drives the page in
//! headless Chromium over WebDriver — a local `chromedriver` it starts, or a
//! Selenium Grid (`--webdriver URL`) — with the devices spread over browsers
//! and tabs that run as one fleet, prints a line a second and a k6-style
//! summary, and exits 0 (PASS), 1 (FAIL, naming the failing check) or 2 (the
//! run could not be made, with the reason).
//!
//! # Layout
//!
//! - [`cli`]: the flags.
//! - [`plan`]: devices over browsers and tabs, within the measured limits.
//! - [`contact`]: the node and the page, checked before any browser opens.
//! - [`webdriver`]: chromedriver or a Grid, and the sessions' capabilities.
//! - [`browser`]: one session's tabs and what the runner reads from them.
//! - [`run`]: the run from start to end.
//! - [`report`]: checks, verdict, the text summary, the JUnit XML.
//! - [`out`]: the files `--out DIR` writes.
//! - [`error`]: [`RunError`], why a run could not be made.

pub mod browser;
pub mod cli;
pub mod contact;
pub mod error;
pub mod out;
pub mod plan;
pub mod report;
pub mod run;
pub mod webdriver;

pub use cli::Args;
pub use error::RunError;

/// Exit codes.
pub mod exit {
    pub const PASS: i32 = 0;
    pub const FAIL: i32 = 1;
    pub const NOT_RUN: i32 = 2;
}

/// Runs `args` to the end: prints the progress and the summary, writes
/// `--out`, and returns the exit code.
pub async fn main_with(args: Args) -> i32 {
    // Both of rustls's providers are linked in (fantoccini's TLS brings
    // aws-lc-rs, reqwest's ring): choose one for the process.
    let _ = rustls::crypto::ring::default_provider().install_default();
    match run::run(&args).await {
        Ok(finished) => {
            let combined = &finished.combined;
            print!("{}", combined.text());
            if let Some(dir) = &args.out {
                if let Err(e) = out::write(dir, &finished) {
                    eprintln!("r2-stress-run: {e}");
                    return exit::NOT_RUN;
                }
                println!("  results written to {}", dir.display());
            }
            println!("{}", combined.verdict_line());
            match combined.verdict {
                r2_core::summary::Verdict::Pass => exit::PASS,
                // A hidden tab's run does not pass: its figures measure the browser.
                r2_core::summary::Verdict::Fail | r2_core::summary::Verdict::Invalid => exit::FAIL,
            }
        }
        Err(e) => {
            eprintln!("r2-stress-run: could not run: {e}");
            exit::NOT_RUN
        }
    }
}
