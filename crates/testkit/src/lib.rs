//! `r2-testkit`: the harness for the page's browser tests and the benchmarks.
//!
//! Real parts only: a headless Chromium driven over the Chrome DevTools
//! Protocol (a small client over `tokio-tungstenite`), and the local node
//! (`r2-node`) started in-process on loopback.
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! use std::time::Duration;
//! let sites = r2_testkit::built_page_sites_dir()?;
//! let node = r2_testkit::TestNode::start(Some(&sites)).await?;
//! let browser = r2_testkit::Browser::launch().await?;
//! let page = browser.new_page().await?;
//! page.goto(&format!("{}/stresstest/", node.url())).await?;
//! page.wait_for("document.querySelector('main') !== null", Duration::from_secs(10)).await?;
//! browser.close().await?;
//! # Ok(()) }
//! ```
//!
//! # Layout
//!
//! - [`browser`]: [`Browser`], the Chromium process (own process group, temp
//!   profile) and its DevTools connection.
//! - [`page`]: [`Page`], one tab: `goto`, `eval`, `wait_for`, `text`, CPU
//!   throttling, heap size, collected console output, raw `call`.
//! - [`cdp`]: the DevTools connection: commands by `id`, events by session.
//! - [`proc_cpu`]: renderer CPU seconds from Linux `/proc`.
//! - [`node`]: [`TestNode`], the in-process node with an HTTP client.
//! - [`site`]: [`built_page_sites_dir`], the page built by trunk.
//! - [`error`]: [`Error`], what the Chromium side can fail with.
//! - [`xvfb`]: a virtual X display for a browser with a real window.
//! - [`wire`]: what a page put on the wire ([`wire::WireTrace`], recorded by
//!   [`Page::record_network`]) and its comparison with a reference trace.
//! - [`open_page`]: a lenient node, a browser and a tab on the page with a
//!   query, as most page tests start.
//!
//! Environment: `R2_CHROMIUM` (browser executable), `R2_SITES_DIR` (a sites
//! dir holding a built `stresstest/`).

pub mod browser;
pub mod cdp;
pub mod error;
pub mod node;
pub mod page;
pub mod proc_cpu;
pub mod site;
pub mod wire;
pub mod xvfb;

pub use browser::{autorun_summary, Browser};
pub use error::Error;
pub use node::TestNode;
pub use page::{error_count, lean, num, Page};
pub use site::{built_page_sites_dir, copy_of_page_sites};

use std::path::PathBuf;

/// What [`open_page`] started; the node and the browser stop when dropped.
pub struct PageOnNode {
    pub node: TestNode,
    pub browser: Browser,
    pub page: Page,
}

/// A lenient node ([`TestNode::start_lenient`]) serving the built page, a
/// browser, and a tab on the page at `/stresstest/?query`.
pub async fn open_page(query: &str) -> anyhow::Result<PageOnNode> {
    let sites = built_page_sites_dir()?;
    let node = TestNode::start_lenient(Some(&sites)).await?;
    let browser = Browser::launch().await?;
    let page = browser.new_page().await?;
    page.goto(&format!("{}/stresstest/?{query}", node.url()))
        .await?;
    Ok(PageOnNode {
        node,
        browser,
        page,
    })
}

/// The first of `names` found as a file in a `PATH` directory.
pub(crate) fn find_on_path(names: &[&str]) -> Option<PathBuf> {
    let path_var = std::env::var_os("PATH")?;
    std::env::split_paths(&path_var)
        .flat_map(|dir| names.iter().map(move |name| dir.join(name)))
        .find(|candidate| candidate.is_file())
}

#[cfg(test)]
mod tests {
    /// Tests and benchmarks move these into spawned tasks.
    #[test]
    fn handles_are_send_and_sync() {
        fn send_sync<T: Send + Sync>() {}
        send_sync::<crate::Browser>();
        send_sync::<crate::Page>();
        send_sync::<crate::TestNode>();
        send_sync::<crate::Error>();
    }
}
