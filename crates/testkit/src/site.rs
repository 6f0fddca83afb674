//! The page as the node serves it: the `trunk build` output under
//! `<sites>/stresstest/`, built at most once per test process.
//!
//! `cargo xtask test` builds the page once and passes its sites dir in
//! `R2_SITES_DIR`; a plain `cargo test` builds it here instead, which needs
//! `trunk` on `PATH` (and the `wasm32-unknown-unknown` target). When
//! `wasm-bindgen` is on `PATH`, `TRUNK_OFFLINE=true` is set so that trunk uses
//! it rather than trying to download one (the machines have no network but
//! package registries); its version must then match the `wasm-bindgen` in
//! `Cargo.lock`.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use crate::error::Error;
use crate::find_on_path;

/// The folder under the sites dir where the page lives (its public URL is `/stresstest/`).
pub const PAGE_DIR: &str = "stresstest";

/// The root of a sites dir holding the built page at `<root>/stresstest/`:
/// `$R2_SITES_DIR` if set, else `<workspace>/target/r2-sites` after running
/// `trunk build --public-url /stresstest/ --dist target/r2-sites/stresstest`
/// (once per process; later calls return the first outcome).
pub fn built_page_sites_dir() -> anyhow::Result<PathBuf> {
    static BUILT: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            locate_or_build(std::env::var_os("R2_SITES_DIR")).map_err(|e| e.to_string())
        })
        .clone()
        .map_err(anyhow::Error::msg)
}

/// The sites dir named by `sites_env` (the value of `R2_SITES_DIR`), or the one
/// `build` makes; either must hold the page.
fn locate_or_build(sites_env: Option<OsString>) -> Result<PathBuf, Error> {
    let sites = match sites_env.filter(|d| !d.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => build()?,
    };
    let index = sites.join(PAGE_DIR).join("index.html");
    if index.is_file() {
        Ok(sites)
    } else {
        Err(Error::NoBuiltPage(index))
    }
}

fn build() -> Result<PathBuf, Error> {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let workspace = workspace.canonicalize().unwrap_or(workspace);
    let sites = workspace.join("target").join("r2-sites");
    let trunk = find_on_path(&["trunk"]).ok_or(Error::TrunkNotFound)?;
    let dist = Path::new("target").join("r2-sites").join(PAGE_DIR);
    let mut command = Command::new(trunk);
    command
        .current_dir(&workspace)
        .args(["build", "--public-url", "/stresstest/", "--dist"])
        .arg(&dist);
    if std::env::var_os("TRUNK_OFFLINE").is_none() && find_on_path(&["wasm-bindgen"]).is_some() {
        command.env("TRUNK_OFFLINE", "true");
    }
    let failed = |outcome: String| Error::TrunkFailed {
        command: format!(
            "trunk build --public-url /stresstest/ --dist {}",
            dist.display()
        ),
        dir: workspace.clone(),
        outcome,
    };
    // Trunk's output goes straight to the terminal, so a failure shows why.
    let status = command.status().map_err(|e| failed(e.to_string()))?;
    if !status.success() {
        return Err(failed(status.to_string()));
    }
    Ok(sites)
}

/// A copy of the built page's sites dir in a new temporary folder, for a
/// test that adds to it or takes from it (the folder goes with the value).
pub fn copy_of_page_sites() -> anyhow::Result<tempfile::TempDir> {
    let dir = tempfile::tempdir()?;
    copy_dir(
        &built_page_sites_dir()?.join(PAGE_DIR),
        &dir.path().join(PAGE_DIR),
    )?;
    Ok(dir)
}

fn copy_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), target)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_given_sites_dir_must_hold_the_page() {
        let sites = tempfile::tempdir().expect("temp dir");
        match locate_or_build(Some(sites.path().into())) {
            Err(Error::NoBuiltPage(index)) => {
                assert_eq!(index, sites.path().join("stresstest/index.html"))
            }
            other => panic!("expected NoBuiltPage, got {other:?}"),
        }
        std::fs::create_dir(sites.path().join(PAGE_DIR)).expect("mkdir");
        std::fs::write(
            sites.path().join(PAGE_DIR).join("index.html"),
            "<!doctype html>",
        )
        .expect("write");
        assert_eq!(
            locate_or_build(Some(sites.path().into())).expect("found"),
            sites.path()
        );
    }
}
