//! Page loads of the WebApp (profile `webapp`): with `assets=1` a phone's
//! page load downloads the WebApp's `index.html` from the node's
//! `/iotdemo/` and every file it references ([`r2_core::assets`]), counting
//! bytes and time; without it, a navigation takes the time a browser needs
//! to commit the next page.

use futures::future::join_all;
use gloo_timers::future::TimeoutFuture;
use r2_core::assets::{references, WEBAPP_PATH};

use super::Run;
use crate::browser::now_ms;
use crate::net::Client;

/// How long the recorded phone's browser took from the connect page's
/// `sentantLoad` answer to the sensor page's first code (ms, its assets
/// from cache): the connect page still runs meanwhile.
const NAVIGATION_MS: u32 = 80;

/// One page load: the WebApp's assets when the run downloads them.
pub(crate) async fn page_load(run: &Run) {
    let (assets, node) = run.with(|inner| (inner.config.assets, inner.node.clone()));
    if !assets {
        return;
    }
    let started = now_ms();
    let index = Client::get_asset(&format!("{node}{WEBAPP_PATH}"), true).await;
    let (mut bytes, html) = match index {
        Ok((bytes, html)) => (bytes, html.unwrap_or_default()),
        Err(err) => {
            let why = format!("the WebApp's page {WEBAPP_PATH} could not be loaded from the node: {err}");
            return run.with(|inner| inner.metrics.record_error("assets", &why));
        }
    };
    let files = references(WEBAPP_PATH, &html);
    let fetched = join_all(files.iter().map(|path| Client::get_asset_owned(format!("{node}{path}")))).await;
    run.with(|inner| {
        for (path, result) in files.iter().zip(fetched) {
            match result {
                Ok(size) => bytes += size,
                Err(err) => inner.metrics.record_error("assets", &format!("{path}: {err}")),
            }
        }
        let m = &mut inner.metrics;
        m.asset_load.record_ms(now_ms() - started);
        m.wire.asset_loads += 1;
        m.wire.asset_bytes += bytes as u64;
    });
}

/// A navigation to the next page of the WebApp: its load.
pub(crate) async fn navigation(run: &Run) {
    if run.with(|inner| inner.config.assets) {
        page_load(run).await;
    } else {
        TimeoutFuture::new(NAVIGATION_MS).await;
    }
}
