//! The run, start to end: check the node and the page, start the browsers,
//! open every tab as one fleet (`&fleet=NAME`, a name of this run's own),
//! give the commands through the fleet's control view so every tab creates,
//! starts and deletes together, print a line a second, then collect every
//! tab's summary. A tab that missed a fleet command is given it by its own
//! button, and the summary says so.
//!
//! # Layout
//!
//! - [`run`]: the whole run; [`RunError`] when it could not be made.
//! - [`tab_url`], [`control_url`]: the pages' addresses.
//! - `Fleet`: the open browsers, with the per-phase waits and the cleanup.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use futures::future::{join_all, try_join_all};
use r2_core::config::{RunConfig, SocketsMode};
use r2_core::fleet::{control_name, FleetKey};
use r2_core::summary::{Summary, Verdict};

use crate::browser::{wait_for, Browser, TabStatus};
use crate::cli::Args;
use crate::contact;
use crate::error::RunError;
use crate::plan::{Ask, Plan, TabPlan};
use crate::report::{self, Combined, Expect, Second, TabResult, SECONDS_CSV_HEADER};
use crate::webdriver::{capabilities, chromium_binary, open_session, Driver};

/// How long every tab may take to join the fleet after its page loaded.
const JOIN_FLEET: Duration = Duration::from_secs(60);
/// How long a tab may take to act on a fleet command before its own button is used.
const COMMAND_GRACE: Duration = Duration::from_secs(10);
/// Time for deleting devices, beyond what the node takes per device.
const DELETE_WAIT: Duration = Duration::from_secs(120);

/// The address of tab `tab`'s page: every setting in its query.
pub fn tab_url(args: &Args, tab: &TabPlan, fleet: &FleetId) -> Result<String, RunError> {
    let mut url = url::Url::parse(&args.page_url())
        .map_err(|e| RunError::Settings(format!("--page {}: {e}", args.page_url())))?;
    {
        let mut q = url.query_pairs_mut();
        q.append_pair("node", &args.node_url())
            .append_pair("devices", &tab.devices.to_string())
            .append_pair("scenario", &args.scenario)
            .append_pair("duration", &args.duration.to_string())
            .append_pair("sockets", &args.sockets)
            .append_pair("join_rate", &format!("{:.3}", tab.join_rate))
            .append_pair("seed", &tab.seed.to_string());
        if let Some(p) = args.profile.as_deref() {
            q.append_pair("profile", p);
        }
        if args.param("viewers").is_none() {
            q.append_pair("viewers", &tab.viewers.to_string());
        }
        if let Some(max) = args.max_p99_ms {
            q.append_pair("max_p99_ms", &max.to_string());
        }
        if let Some(max) = args.max_error_pct {
            q.append_pair("max_error_pct", &max.to_string());
        }
        for (k, v) in &args.params {
            q.append_pair(k, v);
        }
        q.append_pair("fleet", &fleet.name)
            .append_pair("key", fleet.key.secret());
    }
    Ok(url.into())
}

/// The control view of `fleet`.
pub fn control_url(args: &Args, fleet: &FleetId) -> Result<String, RunError> {
    let mut url = url::Url::parse(&args.page_url())
        .map_err(|e| RunError::Settings(format!("--page: {e}")))?;
    url.set_query(Some("control"));
    url.query_pairs_mut()
        .append_pair("fleet", &fleet.name)
        .append_pair("key", fleet.key.secret())
        .append_pair("node", &args.node_url());
    Ok(url.into())
}

/// What a run gives back besides its result: the 1-second rows.
pub struct Finished {
    pub combined: Combined,
    pub seconds: Vec<Second>,
}

/// The whole run. `Err` when it could not be made (exit 2).
pub async fn run(args: &Args) -> Result<Finished, RunError> {
    let node = args.node_url();
    let fleet_id = FleetId {
        name: args.fleet.clone().unwrap_or_else(new_fleet_name),
        key: match &args.fleet_key {
            Some(secret) => FleetKey::new(secret)
                .map_err(|e| RunError::Settings(format!("--fleet-key: {e}")))?,
            None => new_fleet_key()?,
        },
    };
    let fleet_name = fleet_id.name.clone();
    let plan = Plan::new(&Ask {
        devices: args.devices,
        browsers: args.browsers,
        tabs_per_browser: args.tabs_per_browser,
        scenario: &args.scenario,
        profile: args.profile(),
        sockets: &args.sockets,
        viewers: args.param("viewers").and_then(|v| v.parse().ok()),
        join_rate: args.join_rate,
        seed: args.seed,
        max_devices_per_tab: args.max_devices_per_tab,
        force: args.force,
    })?;
    let urls: Vec<String> = plan
        .tabs
        .iter()
        .map(|t| tab_url(args, t, &fleet_id))
        .collect::<Result<_, _>>()?;
    let config = RunConfig::from_query(
        url::Url::parse(&urls[0])
            .ok()
            .and_then(|u| u.query().map(str::to_owned))
            .as_deref()
            .unwrap_or(""),
    )
    .map_err(|e| RunError::Settings(e.to_string()))?;

    // First contact, before any browser.
    let http = contact::client();
    let before = contact::check_node(&http, &node).await?;
    let control_sentant = control_name(&fleet_name);
    let control_was_there = before.iter().any(|s| s.name == control_sentant);
    contact::check_page(&http, &args.page_url()).await?;

    let driver = match &args.webdriver {
        Some(url) => Driver::remote(url).await?,
        None => Driver::start_local().await?,
    };
    let mut warnings = Vec::new();
    if let Some(slots) = driver.slots().await.filter(|_| !driver.is_local()) {
        if slots < plan.browsers && !args.force {
            return Err(RunError::Capacity(format!(
                "the WebDriver server at {} has {slots} browser slot(s), and {} browsers were asked for: add Grid nodes, use fewer --browsers, or --force (sessions then wait for a slot)",
                driver.url(),
                plan.browsers
            )));
        }
    }
    if driver.is_local() {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        if plan.tabs.len() > cores {
            warnings.push(format!(
                "{} tabs share this machine's {cores} core(s): watch the tabs' bottleneck warnings, or spread them over a Selenium Grid (--webdriver)",
                plan.tabs.len()
            ));
        }
    }

    let caps =
        capabilities(chromium_binary(args.chromium.as_deref(), driver.is_local()).as_deref());
    let control = control_url(args, &fleet_id)?;
    let (browsers, failure) = open_browsers(driver.url(), caps, &plan, &urls, &control).await?;
    let fleet = Fleet {
        browsers,
        plan: plan.clone(),
        quiet: args.quiet,
    };
    let outcome = match failure {
        Some(e) => Err(e),
        None => fleet.drive(args, &config, &mut warnings).await,
    };
    // Whatever happened, the devices go, then the browsers, then the control sentant.
    let cleanup = match &outcome {
        Ok(o) if config.keep || o.deleted => Ok(()),
        _ => fleet.delete_all(false).await.map(|_| ()),
    };
    let results = match outcome {
        Ok(o) => fleet.results(&o.hidden).await.map(|tabs| (tabs, o)),
        Err(e) => Err(e),
    };
    fleet.close().await;
    drop(driver);
    let unloaded = unload_control(&http, &node, &control_sentant, control_was_there).await;
    let (tabs, driven) = results?;
    let (seconds, duration_s) = (driven.seconds, driven.duration_s);
    if let Err(e) = cleanup {
        warnings.push(format!("cleanup after the run: {e}"));
    }
    if !unloaded {
        warnings.push(format!(
            "the fleet's control sentant {control_sentant} could not be unloaded"
        ));
    }

    let expect = Expect {
        max_error_pct: args.max_error_pct,
        max_p99_ms: args.max_p99_ms,
        keep: config.keep,
        no_signals: config.sockets == SocketsMode::None,
    };
    let checks = report::checks(&tabs, expect);
    let verdict = if checks.iter().all(|c| c.passed) {
        Verdict::Pass
    } else {
        Verdict::Fail
    };
    let combined = Combined {
        verdict,
        checks,
        node,
        page: args.page_url(),
        fleet: fleet_name,
        webdriver: args
            .webdriver
            .clone()
            .unwrap_or_else(|| "a local chromedriver".into()),
        browsers: plan.browsers,
        tabs_per_browser: args.tabs_per_browser as usize,
        duration_s,
        totals: report::totals(&tabs),
        latency: report::latencies(&tabs),
        tabs,
        warnings,
    };
    Ok(Finished { combined, seconds })
}

/// Opens every browser with its tabs (and the control view in the first).
/// A session that cannot be made is `Err` (the others are closed); a browser
/// whose tabs cannot be opened gives the browsers that did open and the error.
async fn open_browsers(
    driver: &str,
    caps: serde_json::Map<String, serde_json::Value>,
    plan: &Plan,
    urls: &[String],
    control: &str,
) -> Result<(Vec<Browser>, Option<RunError>), RunError> {
    let sessions = join_all((0..plan.browsers).map(|_| open_session(driver, caps.clone()))).await;
    let mut clients = Vec::new();
    let mut failure = None;
    for session in sessions {
        match session {
            Ok(client) => clients.push(client),
            Err(e) => failure = failure.or(Some(e)),
        }
    }
    if let Some(e) = failure {
        join_all(clients.into_iter().map(|c| c.close())).await;
        return Err(e);
    }
    let opened = join_all(clients.into_iter().enumerate().map(|(b, client)| {
        let tabs: Vec<(usize, String)> = plan
            .tabs
            .iter()
            .filter(|t| t.browser == b)
            .map(|t| (t.index, urls[t.index].clone()))
            .collect();
        let control = (b == 0).then_some(control);
        async move { Browser::open(b, client, &tabs, control).await }
    }))
    .await;
    let mut browsers = Vec::new();
    let mut failure = None;
    for browser in opened {
        match browser {
            Ok(b) => browsers.push(b),
            Err(e) => failure = failure.or(Some(e)),
        }
    }
    Ok((browsers, failure))
}

/// The fleet this run's pages form: its name, and the secret that seals
/// its messages (the control sentant on the node is public).
pub struct FleetId {
    pub name: String,
    pub key: FleetKey,
}

/// A new fleet secret from the system's randomness.
fn new_fleet_key() -> Result<FleetKey, RunError> {
    let mut random = [0u8; 16];
    getrandom::fill(&mut random)
        .map_err(|e| RunError::Settings(format!("no randomness for the fleet secret: {e}")))?;
    Ok(FleetKey::generate(random))
}

/// A fleet name of this run's own: `run` and 8 random hex digits (std's
/// randomly keyed hasher is the randomness).
fn new_fleet_name() -> String {
    use std::hash::{BuildHasher, Hasher};
    let random = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    format!("run{:08x}", random as u32)
}

/// Unloads the fleet's control sentant, which this run's pages loaded under
/// this run's own fleet name; never one that was there before. `false` when
/// it could not be unloaded.
async fn unload_control(http: &reqwest::Client, node: &str, name: &str, was_there: bool) -> bool {
    was_there || contact::unload_named(http, node, name).await.is_ok()
}

/// What driving the fleet gave.
struct Driven {
    seconds: Vec<Second>,
    /// Seconds each tab was seen hidden, by tab index.
    hidden: BTreeMap<usize, u64>,
    duration_s: f64,
    deleted: bool,
}

/// The open browsers of a run.
struct Fleet {
    browsers: Vec<Browser>,
    plan: Plan,
    quiet: bool,
}

impl Fleet {
    fn label(&self, index: usize) -> String {
        self.browsers
            .iter()
            .flat_map(|b| &b.tabs)
            .find(|t| t.index == index)
            .map_or_else(|| format!("tab {index}"), |t| t.label.clone())
    }

    fn browser_of(&self, index: usize) -> &Browser {
        &self.browsers[self.plan.tabs[index].browser]
    }

    /// Every tab's status, by tab index.
    async fn statuses(&self) -> Result<BTreeMap<usize, TabStatus>, RunError> {
        let all = try_join_all(self.browsers.iter().map(Browser::statuses)).await?;
        Ok(all.into_iter().flatten().collect())
    }

    /// A tab that could not run (the page's own reason).
    fn failed(&self, statuses: &BTreeMap<usize, TabStatus>) -> Option<RunError> {
        statuses
            .iter()
            .find(|(_, s)| s.phase == "failed")
            .map(|(i, s)| RunError::TabFailed {
                tab: self.label(*i),
                reason: s
                    .error
                    .clone()
                    .unwrap_or_else(|| "the page says failed".into()),
            })
    }

    /// Gives the fleet `command` through the control view, waits until
    /// `done` holds for every tab, and gives a tab that has not moved after
    /// [`COMMAND_GRACE`] the command by its own button (`own`).
    async fn command(
        &self,
        command: &str,
        own: &str,
        within: Duration,
        done: fn(&TabStatus) -> bool,
        warnings: &mut Vec<String>,
    ) -> Result<(), RunError> {
        self.browsers[0]
            .click_control(&format!("#c-{command}"))
            .await?;
        let started = Instant::now();
        let mut nudged = false;
        loop {
            let statuses = self.statuses().await?;
            if let Some(e) = self.failed(&statuses) {
                return Err(e);
            }
            let waiting: Vec<usize> = statuses
                .iter()
                .filter(|(_, s)| !done(s))
                .map(|(i, _)| *i)
                .collect();
            if waiting.is_empty() {
                return Ok(());
            }
            if !nudged && started.elapsed() > COMMAND_GRACE {
                nudged = true;
                for i in &waiting {
                    self.browser_of(*i).click_in_tab(*i, own).await?;
                }
                let labels: Vec<String> = waiting.iter().map(|i| self.label(*i)).collect();
                warnings.push(format!(
                    "tab(s) {} missed the fleet's {command} command and were given it by their own button",
                    labels.join(", ")
                ));
            }
            if started.elapsed() > within {
                return Err(RunError::Timeout {
                    what: format!("every tab to {command}"),
                    after: within,
                });
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Create, start, a line a second until every tab stopped, delete.
    async fn drive(
        &self,
        args: &Args,
        config: &RunConfig,
        warnings: &mut Vec<String>,
    ) -> Result<Driven, RunError> {
        let tabs = self.plan.tabs.len();
        wait_for(
            "every tab to join the fleet through the node",
            JOIN_FLEET,
            || async {
                if let Some(e) = self.failed(&self.statuses().await?) {
                    return Err(e);
                }
                Ok((self.browsers[0].fleet_tabs().await? >= tabs).then_some(()))
            },
        )
        .await?;
        let slowest_join = self
            .plan
            .tabs
            .iter()
            .map(|t| f64::from(t.devices) / t.join_rate.max(0.001))
            .fold(0.0, f64::max);
        let create_wait = Duration::from_secs_f64(slowest_join + 60.0);
        self.command(
            "create",
            "#b-create",
            create_wait,
            |s| s.phase == "ready",
            warnings,
        )
        .await?;
        self.command(
            "start",
            "#b-start",
            Duration::from_secs(30),
            |s| s.started_ms.is_some(),
            warnings,
        )
        .await?;
        let start = Instant::now();

        let mut seconds = Vec::new();
        let mut hidden: BTreeMap<usize, u64> = BTreeMap::new();
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        let deadline = Duration::from_secs_f64(args.duration + 120.0);
        let interrupted = tokio::signal::ctrl_c();
        tokio::pin!(interrupted);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = &mut interrupted => {
                    let _ = self.delete_all(true).await;
                    return Err(RunError::Interrupted);
                }
            }
            let statuses = self.statuses().await?;
            if let Some(e) = self.failed(&statuses) {
                return Err(e);
            }
            let second = Second {
                t_s: start.elapsed().as_secs(),
                live: statuses.values().map(|s| s.live).sum(),
                devices: statuses.values().map(|s| s.devices).sum(),
                sends_ok: statuses.values().map(|s| s.sends_ok).sum(),
                sends_per_s: statuses.values().map(|s| s.sends_per_s).sum(),
                errors: statuses.values().map(|s| s.errors).sum(),
                p99_ms: statuses.values().filter_map(|s| s.p99_ms).reduce(f64::max),
                tabs_hidden: statuses
                    .values()
                    .filter(|s| s.visibility != "visible")
                    .count() as u64,
                tabs_bottleneck: statuses.values().filter(|s| s.bottleneck.is_some()).count()
                    as u64,
            };
            for (i, s) in &statuses {
                if s.visibility != "visible" {
                    *hidden.entry(*i).or_default() += 1;
                }
            }
            let stopped = statuses
                .values()
                .all(|s| s.summary_phase.as_deref() == Some("stopped"));
            let phase = if stopped {
                "stopped"
            } else {
                phase_of(&statuses)
            };
            if !self.quiet {
                println!("{}", report::progress_line(phase, &second));
            }
            seconds.push(second);
            if stopped {
                break;
            }
            if start.elapsed() > deadline {
                return Err(RunError::Timeout {
                    what: "every tab to stop".into(),
                    after: deadline,
                });
            }
        }
        let duration_s = start.elapsed().as_secs_f64();
        let deleted = if config.keep {
            false
        } else {
            self.delete_all(false).await?
        };
        Ok(Driven {
            seconds,
            hidden,
            duration_s,
            deleted,
        })
    }

    /// Tells every tab to delete its devices and waits until each wrote its
    /// final summary. `true` once all did.
    async fn delete_all(&self, quietly: bool) -> Result<bool, RunError> {
        if self.browsers.first().is_none_or(|b| b.number != 0)
            || self.browsers.len() < self.plan.browsers
        {
            return Ok(false);
        }
        let mut warnings = Vec::new();
        let per_device = self.plan.tabs.iter().map(|t| t.devices).max().unwrap_or(0);
        let within = DELETE_WAIT + Duration::from_millis(50 * u64::from(per_device));
        let done =
            |s: &TabStatus| matches!(s.summary_phase.as_deref(), Some("deleted") | Some("failed"));
        let result = self
            .command("delete", "#b-delete", within, done, &mut warnings)
            .await;
        if !quietly {
            for w in warnings {
                eprintln!("r2-stress-run: {w}");
            }
        }
        result.map(|()| true)
    }

    /// Every tab's summary and series.
    async fn results(&self, hidden: &BTreeMap<usize, u64>) -> Result<Vec<TabResult>, RunError> {
        let mut results = Vec::new();
        for tab in &self.plan.tabs {
            let browser = self.browser_of(tab.index);
            let label = self.label(tab.index);
            let value = browser.summary(tab.index).await?;
            let summary: Summary =
                serde_json::from_value(value).map_err(|source| RunError::BadSummary {
                    tab: label.clone(),
                    source,
                })?;
            let series_csv = browser.series_csv(tab.index).await.unwrap_or(None);
            results.push(TabResult {
                label,
                browser: tab.browser,
                session_id: browser.session_id.clone(),
                summary,
                hidden_s: hidden.get(&tab.index).copied().unwrap_or(0),
                series_csv,
            });
        }
        Ok(results)
    }

    async fn close(self) {
        join_all(self.browsers.into_iter().map(Browser::close)).await;
    }
}

/// The phase most tabs are in, for the progress line.
fn phase_of(statuses: &BTreeMap<usize, TabStatus>) -> &str {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for s in statuses.values() {
        *counts.entry(s.phase.as_str()).or_default() += 1;
    }
    counts
        .into_iter()
        .max_by_key(|(_, n)| *n)
        .map_or("", |(p, _)| p)
}

/// The combined 1-second CSV.
pub fn seconds_csv(seconds: &[Second]) -> String {
    let mut csv = format!("{SECONDS_CSV_HEADER}\n");
    for s in seconds {
        csv.push_str(&s.csv_row());
        csv.push('\n');
    }
    csv
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[test]
    fn every_tab_gets_its_settings_and_the_fleet_in_its_url() {
        let args = Args::try_parse_from([
            "r2-stress-run",
            "--node",
            "http://127.0.0.1:4006",
            "--devices",
            "10",
            "--max-error-pct",
            "1",
            "--profile",
            "lean",
            "--param",
            "viewers=1",
        ])
        .expect("parses");
        let tab = TabPlan {
            browser: 0,
            index: 1,
            devices: 5,
            viewers: 0,
            join_rate: 2.5,
            seed: 2,
        };
        let fleet = FleetId {
            name: "run1".into(),
            key: FleetKey::new("0123456789abcdef").expect("long enough"),
        };
        let url = tab_url(&args, &tab, &fleet).expect("url");
        assert!(
            url.starts_with(
                "http://127.0.0.1:4006/stresstest/?node=http%3A%2F%2F127.0.0.1%3A4006&devices=5&"
            ),
            "{url}"
        );
        for part in [
            "join_rate=2.500",
            "seed=2",
            "max_error_pct=1",
            "profile=lean",
            "viewers=1",
            "fleet=run1",
            "key=0123456789abcdef",
        ] {
            assert!(url.contains(part), "{part} not in {url}");
        }
        let query = url::Url::parse(&url)
            .expect("parses")
            .query()
            .unwrap_or("")
            .to_owned();
        assert_eq!(
            RunConfig::from_query(&query)
                .expect("the page takes it")
                .devices,
            5
        );
        let control = control_url(&args, &fleet).expect("url");
        assert_eq!(control, "http://127.0.0.1:4006/stresstest/?control&fleet=run1&key=0123456789abcdef&node=http%3A%2F%2F127.0.0.1%3A4006");
    }
}
