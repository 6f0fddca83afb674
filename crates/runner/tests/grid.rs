//! `r2-stress-run --webdriver URL` through a real Selenium Grid 4: the
//! standalone server (its jar from the npm registry's
//! `@nightwatch/selenium-server`, installed by `cargo xtask test` into
//! `target/selenium`, or `$R2_SELENIUM_JAR`) on Debian's Java, configured to
//! start Debian's chromedriver and Chromium (Selenium Manager off: nothing is
//! downloaded). Skipped, saying why, when there is no Java.
#![cfg(not(target_arch = "wasm32"))]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use r2_testkit::{built_page_sites_dir, TestNode};
use serde_json::Value;
use tokio::process::Command;

/// The jar: `$R2_SELENIUM_JAR`, else the one `cargo xtask test` installs.
fn selenium_jar() -> Result<PathBuf> {
    if let Some(jar) = std::env::var_os("R2_SELENIUM_JAR") {
        return Ok(PathBuf::from(jar));
    }
    let lib = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../target/selenium/node_modules/@nightwatch/selenium-server/lib");
    std::fs::read_dir(&lib)
        .ok()
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|x| x == "jar"))
        .with_context(|| {
            format!(
                "no Selenium server jar in {}: `cargo xtask test` installs it (npm install --ignore-scripts --prefix target/selenium @nightwatch/selenium-server), or set R2_SELENIUM_JAR",
                lib.display()
            )
        })
}

/// Java, if this machine has it.
fn java() -> Option<PathBuf> {
    let candidates = std::env::var_os("JAVA_HOME")
        .map(|h| PathBuf::from(h).join("bin/java"))
        .into_iter()
        .chain([PathBuf::from("/usr/bin/java")]);
    candidates.into_iter().find(|p| p.is_file())
}

/// A Selenium Grid 4 standalone server on a free loopback port, killed on drop.
struct Grid {
    url: String,
    _child: tokio::process::Child,
    _config: tempfile::TempDir,
}

impl Grid {
    async fn start(java: &Path, jar: &Path) -> Result<Grid> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let config = tempfile::tempdir()?;
        let chromium = std::env::var("R2_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
        let driver =
            std::env::var("R2_CHROMEDRIVER").unwrap_or_else(|_| "/usr/bin/chromedriver".into());
        let toml = format!(
            r#"[server]
host = "127.0.0.1"
port = {port}

[node]
detect-drivers = false
selenium-manager = false
override-max-sessions = true
max-sessions = 2

[[node.driver-configuration]]
display-name = "Chromium"
webdriver-executable = "{driver}"
max-sessions = 2
stereotype = '{{"browserName": "chrome", "goog:chromeOptions": {{"binary": "{chromium}"}}}}'
"#
        );
        let file = config.path().join("grid.toml");
        std::fs::write(&file, toml)?;
        let child = Command::new(java)
            .arg(format!("-Dwebdriver.chrome.driver={driver}"))
            .arg("-jar")
            .arg(jar)
            .args(["standalone", "--config"])
            .arg(&file)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .context("starting the Selenium server")?;
        let grid = Grid {
            url: format!("http://127.0.0.1:{port}"),
            _child: child,
            _config: config,
        };
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            if grid
                .status()
                .await
                .is_ok_and(|s| s["value"]["ready"] == true)
            {
                return Ok(grid);
            }
            if Instant::now() > deadline {
                bail!(
                    "the Selenium Grid at {} was not ready within 120 s",
                    grid.url
                );
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    async fn status(&self) -> Result<Value> {
        Ok(reqwest::get(format!("{}/status", self.url))
            .await?
            .json()
            .await?)
    }

    /// The ids of the sessions its node runs now.
    async fn sessions(&self) -> Result<BTreeSet<String>> {
        let status = self.status().await?;
        let mut ids = BTreeSet::new();
        for node in status["value"]["nodes"].as_array().into_iter().flatten() {
            for slot in node["slots"].as_array().into_iter().flatten() {
                if let Some(id) = slot["session"]["sessionId"].as_str() {
                    ids.insert(id.to_owned());
                }
            }
        }
        Ok(ids)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_browsers_of_two_tabs_run_on_a_selenium_grid() -> Result<()> {
    let Some(java) = java() else {
        println!("SKIPPED two_browsers_of_two_tabs_run_on_a_selenium_grid: no Java on this machine (apt-get install default-jre-headless; cargo xtask test tries to)");
        return Ok(());
    };
    let jar = selenium_jar()?;
    let sites = built_page_sites_dir()?;
    let node = TestNode::start_lenient(Some(&sites)).await?;
    let grid = Grid::start(&java, &jar).await?;
    let out = tempfile::tempdir()?;
    let mut command = Command::new(env!("CARGO_BIN_EXE_r2-stress-run"));
    command.args(["--node", &node.url(), "--webdriver", &grid.url, "--profile", "lean"]);
    command.args([
        "--devices",
        "40",
        "--browsers",
        "2",
        "--tabs-per-browser",
        "2",
        "--duration",
        "6",
        // Four tabs share two cores with the node and the browsers: a calm
        // load (colour taps, joins spread over 4 s) keeps every tab's timers on time.
        "--scenario",
        "taps",
        "--join-rate",
        "10",
        "--out",
    ]);
    command.arg(out.path()).kill_on_drop(true);
    let runner = tokio::spawn(async move { command.output().await });
    // The Grid's own view of its sessions while the run runs.
    let mut seen = BTreeSet::new();
    while !runner.is_finished() {
        seen.extend(grid.sessions().await.unwrap_or_default());
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let output = runner.await??;
    let stdout = String::from_utf8_lossy(&output.stdout);
    println!(
        "--- runner stdout\n{stdout}--- runner stderr\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let summary: Value =
        serde_json::from_str(&std::fs::read_to_string(out.path().join("summary.json"))?)?;
    let ran_in: BTreeSet<String> = summary["tabs"]
        .as_array()
        .context("tabs")?
        .iter()
        .filter_map(|t| t["session_id"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(ran_in.len(), 2, "two browsers: {ran_in:?}");
    assert!(
        ran_in.is_subset(&seen),
        "the tabs' sessions {ran_in:?} are the Grid's {seen:?}"
    );
    assert_eq!(summary["totals"]["devices_created"], 40);
    let left: Vec<String> = node
        .sentant_names()
        .await?
        .into_iter()
        .filter(|n| n.starts_with("r2s-"))
        .collect();
    assert!(left.is_empty(), "left on the node: {left:?}");
    // Last, as it also needs a machine calm enough that no tab is its own bottleneck.
    assert_eq!(output.status.code(), Some(0), "exit code");
    Ok(())
}
