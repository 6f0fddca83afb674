//! A virtual device of profile `webapp`: one phone running the real IoT
//! WebApp, step for step as `reality2-protocol.md` ("What one phone really
//! does") and the recorded phone (`webapp-phone-trace.json`) show it. This
//! module is that profile's whole wire behaviour; `lean` and `seed` devices
//! join in [`super::device`].
//!
//! 1. The connect page loads (its assets with `assets=1`); one second later
//!    its set-up runs: `sentantGet(name: "monitor")` (then `sentantLoad`
//!    of `monitor` when the node has none) and `sentantLoad(view)` at once,
//!    each followed by its websocket (`monitor`'s `internal`, `view`'s
//!    `update`).
//! 2. About a second later the user presses "connect": `sentantAll`, the
//!    device's name (never loaded over an existing sentant), `sentantLoad`
//!    of the device, and the navigation. While the connect page still runs,
//!    its monitor callback asks `sentantGet(id)` (long fields) for the
//!    device `monitor` reports created; then the page is frozen in the
//!    back/forward cache: its two sockets stay open and subscribed but
//!    silent until the node's idle timeout closes them.
//! 3. The sensor page loads; one second later its set-up runs again
//!    (`monitor` looked up, `view` redefined, each with its socket) with the
//!    page's own `sentantGet(id)` (long fields). From that answer the sensor
//!    card exists: the device may send, and its third socket subscribes to
//!    its own `update` and sends `update {}` on "connected".
//!
//! Every POST of a join counts in the run's [`WireCounts`]
//! (`r2_core::metrics::WireCounts`), so the summary can set the observed
//! POSTs per join beside the profile's.

use futures::future::join3;
use gloo_timers::future::TimeoutFuture;
use r2_core::graphql::{self, SentantRef};
use r2_core::metrics::Op;
use r2_core::profile::{CONNECT_AFTER_SETUP_MS, SETUP_DELAY_MS};
use r2_core::webapp::{Fields, Request};

use super::device::{self, request, Life};
use super::link::{self, Watch};
use super::{assets, Run};
use crate::browser::now_ms;
use crate::net::NetError;

/// How long a navigation leaves the connect page running at most, waiting
/// for `monitor` to report the device it loaded (the node reports it at
/// once; a browser takes tens of ms to commit the next page).
const CREATED_WAIT_MS: u32 = 1000;

/// Which page of the WebApp a device is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PageLoad {
    /// `/iotdemo?connect`: the page with the "connect" button.
    Connect,
    /// `/iotdemo?id=ID`: the sensor page.
    Sensor,
}

/// Where a WebApp device's pages are: which one runs code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Pages {
    /// Not opened yet.
    #[default]
    None,
    /// The connect page runs (also while the browser navigates away from it).
    Connect,
    /// The sensor page runs; the connect page is frozen.
    Sensor,
}

impl Pages {
    /// Whether `page`'s code runs now (its callbacks fire).
    pub fn runs(self, page: PageLoad) -> bool {
        matches!(
            (self, page),
            (Pages::Connect, PageLoad::Connect) | (Pages::Sensor, PageLoad::Sensor)
        )
    }
}

/// One request of a join: counted as a join POST, timed and checked like
/// every request of the run.
async fn join_request(
    run: &Run,
    op: Op,
    req: &Request<'_>,
) -> Result<graphql::GqlResponse, NetError> {
    run.with(|inner| inner.metrics.wire.join_posts += 1);
    request(run, op, req).await
}

/// Joins device `index` as a phone running the WebApp.
pub(crate) async fn join(run: Run, index: u32) {
    let name = run.with(|inner| {
        let device = &mut inner.devices[index as usize];
        device.set_life(Life::Joining);
        device.pages = Pages::Connect;
        device.name().to_owned()
    });
    // The connect page.
    assets::page_load(&run).await;
    TimeoutFuture::new(SETUP_DELAY_MS).await;
    let setup_started = now_ms();
    setup(&run, index, PageLoad::Connect).await;
    let wait = setup_started + f64::from(CONNECT_AFTER_SETUP_MS) - now_ms();
    if wait >= 1.0 {
        TimeoutFuture::new(wait as u32).await;
    }
    // "connect" (with `recreate`, tapped again after a failure; a later
    // attempt adopts the run's own name, which an earlier one may have loaded).
    let mut attempt = 0;
    let id = loop {
        attempt += 1;
        // "connect": `sentantAll`, then `sentantLoad` (never over a sentant
        // that is not this run's own).
        match device::load(&run, &name, attempt > 1, device::JoinPosts::AsSent).await {
            Ok(id) => break id,
            Err(why) => {
                if !device::try_again(&run, false, attempt).await {
                    return run
                        .with(|inner| inner.devices[index as usize].set_life(Life::Failed(why)));
                }
            }
        }
    };
    run.with(|inner| {
        inner.devices[index as usize].set_id(id.clone());
        inner.metrics.devices_created += 1;
    });
    // The navigation: the sensor page loads while the connect page still
    // runs (its monitor callback sees the device created), then it freezes.
    let navigation = assets::navigation(&run);
    let created_seen = async {
        let deadline = now_ms() + f64::from(CREATED_WAIT_MS);
        while now_ms() < deadline && !run.with(|i| i.devices[index as usize].own_load_seen) {
            TimeoutFuture::new(5).await;
        }
    };
    futures::future::join(navigation, created_seen).await;
    run.with(|inner| inner.devices[index as usize].pages = Pages::Sensor);
    link::freeze_page(&run, index, PageLoad::Connect);
    TimeoutFuture::new(SETUP_DELAY_MS).await;
    // The sensor page's set-up, with its own `sentantGet(id)`: then the card
    // exists (with `recreate`, the page is reloaded until it does).
    let card = async {
        let get = Request::SentantGetById {
            id: &id,
            fields: Fields::Long,
        };
        let mut attempt = 0;
        loop {
            attempt += 1;
            let got = join_request(&run, Op::SentantGet, &get).await;
            if got.is_ok() || !device::try_again(&run, false, attempt).await {
                break got;
            }
        }
    };
    let (_, _, got) = join3(
        watch_monitor(&run, index, PageLoad::Sensor),
        watch_view(&run, index, PageLoad::Sensor),
        card,
    )
    .await;
    match got {
        Ok(_) => {
            run.with(|inner| {
                inner.devices[index as usize].set_life(Life::Live);
                inner.metrics.wire.joins += 1;
            });
            device::became_live(&run, index);
            link::subscribe(&run, index);
        }
        Err(err) => {
            run.with(|inner| inner.devices[index as usize].set_life(Life::Failed(err.to_string())))
        }
    }
}

/// A WebApp page's set-up, one second after it loads: `monitor` and `view`,
/// each with its socket.
async fn setup(run: &Run, index: u32, page: PageLoad) {
    futures::future::join(
        watch_monitor(run, index, page),
        watch_view(run, index, page),
    )
    .await;
}

/// `sentantGet(name: "monitor")`, `sentantLoad(monitor)` when there is none,
/// then the page's socket on `monitor`'s `internal`.
async fn watch_monitor(run: &Run, index: u32, page: PageLoad) {
    let lookup = Request::SentantGetByName {
        name: "monitor",
        fields: Fields::Short,
    };
    run.with(|inner| inner.metrics.wire.join_posts += 1);
    let found = device::lookup(run, Op::SentantGet, &lookup)
        .await
        .ok()
        .and_then(|answer| graphql::sentant_ref(&answer, "sentantGet").ok());
    let monitor = match found {
        Some(monitor) => monitor,
        None => match load(run, &graphql::monitor_definition()).await {
            Some(monitor) => {
                run.with(|inner| inner.projectors.loaded.1 = Some(monitor.clone()));
                monitor
            }
            None => return,
        },
    };
    link::watch(run, index, page, Watch::Monitor, &monitor.id);
}

/// `sentantLoad(view)` (a redefinition when `view` exists), then the page's
/// socket on `view`'s `update`.
async fn watch_view(run: &Run, index: u32, page: PageLoad) {
    if let Some(view) = load(run, &graphql::view_definition()).await {
        run.with(|inner| inner.projectors.loaded.0 = Some(view.clone()));
        link::watch(run, index, page, Watch::View, &view.id);
    }
}

/// `sentantLoad(definition)`: the loaded sentant, or `None` (the error is
/// recorded, and the WebApp goes on without it).
async fn load(run: &Run, definition: &str) -> Option<SentantRef> {
    join_request(run, Op::SentantLoad, &Request::SentantLoad { definition })
        .await
        .ok()
        .and_then(|answer| graphql::sentant_ref(&answer, "sentantLoad").ok())
}

/// The connect page's monitor callback: `sentantGet(id)` with the long
/// fields for the device `monitor` reported created.
pub(crate) async fn monitor_callback(run: Run, id: String) {
    let get = Request::SentantGetById {
        id: &id,
        fields: Fields::Long,
    };
    // An unknown id (a redefinition's fresh one) answers null with an error:
    // the WebApp shows nothing, and neither does this.
    run.with(|inner| inner.metrics.wire.join_posts += 1);
    let _ = device::lookup(&run, Op::SentantGet, &get).await;
}
