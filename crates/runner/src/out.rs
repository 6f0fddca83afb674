//! What `--out DIR` writes: `summary.json` (the combined result with every
//! tab's summary), `tab-<label>.json` (each tab's summary as its page wrote
//! it), `series.csv` (the runner's 1-second rows across tabs),
//! `tab-<label>-series.csv` (each page's own 1-second series, when it gives
//! it) and `junit.xml` (one test case per check).

use std::path::Path;

use crate::error::RunError;
use crate::run::{seconds_csv, Finished};

/// Writes every file into `dir` (created if missing).
pub fn write(dir: &Path, finished: &Finished) -> Result<(), RunError> {
    let put = |name: &str, text: &str| {
        let path = dir.join(name);
        std::fs::write(&path, text).map_err(|source| RunError::Write {
            path: path.display().to_string(),
            source,
        })
    };
    std::fs::create_dir_all(dir).map_err(|source| RunError::Write {
        path: dir.display().to_string(),
        source,
    })?;
    let combined = &finished.combined;
    put(
        "summary.json",
        &serde_json::to_string_pretty(combined).unwrap_or_default(),
    )?;
    for tab in &combined.tabs {
        put(
            &format!("tab-{}.json", tab.label),
            &tab.summary.to_json_pretty(),
        )?;
        if let Some(csv) = &tab.series_csv {
            put(&format!("tab-{}-series.csv", tab.label), csv)?;
        }
    }
    put("series.csv", &seconds_csv(&finished.seconds))?;
    put("junit.xml", &combined.junit())?;
    Ok(())
}
