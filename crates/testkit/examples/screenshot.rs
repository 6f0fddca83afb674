//! Opens a URL in headless Chromium, waits, and saves a PNG screenshot:
//! `cargo run -p r2-testkit --example screenshot -- URL OUT.png [SECONDS] [WIDTH]`.

use std::time::Duration;

use anyhow::{Context, Result};
use base64::Engine as _;
use serde_json::json;

#[tokio::main]
async fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let url = args
        .first()
        .context("usage: screenshot URL OUT.png [SECONDS] [WIDTH]")?;
    let out = args
        .get(1)
        .context("usage: screenshot URL OUT.png [SECONDS] [WIDTH]")?;
    let seconds: f64 = args.get(2).map(|s| s.parse()).transpose()?.unwrap_or(2.0);
    let width: u32 = args.get(3).map(|s| s.parse()).transpose()?.unwrap_or(1200);
    let browser = r2_testkit::Browser::launch().await?;
    let page = browser.new_page().await?;
    page.call(
        "Emulation.setDeviceMetricsOverride",
        json!({ "width": width, "height": 900, "deviceScaleFactor": 1, "mobile": width < 600 }),
    )
    .await?;
    page.goto(url).await?;
    tokio::time::sleep(Duration::from_secs_f64(seconds)).await;
    let shot = page
        .call(
            "Page.captureScreenshot",
            json!({ "format": "png", "captureBeyondViewport": true }),
        )
        .await?;
    let data = shot["data"].as_str().context("screenshot data")?;
    std::fs::write(out, base64::engine::general_purpose::STANDARD.decode(data)?)?;
    for line in page.console() {
        eprintln!("{line}");
    }
    browser.close().await?;
    Ok(())
}
