//! `cargo xtask`: the project's two commands, and what they need.
//!
//! - `cargo xtask run [--release] [-- NODE-ARGS...]` builds the page and
//!   starts the bundled node serving it at `/stresstest/`, then prints the URL.
//! - `cargo xtask test` runs every test: native, and in headless Chromium
//!   against the real local node.
//!
//! Both first install what a fresh machine lacks: the wasm target, Trunk,
//! the `wasm-bindgen` CLI of the version in `Cargo.lock`, and (for tests)
//! Chromium. An install is skipped when the tool is already there.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

/// The Trunk release that builds with this machine's Rust.
const TRUNK_VERSION: &str = "0.21.14";
/// Where the page is built, as a `--sites` folder for the node.
const SITES: &str = "target/r2-sites";
/// The page's path on the node (as a real node's `sites/stresstest/`).
const PAGE_PATH: &str = "stresstest";

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let root = workspace_root();
    std::env::set_current_dir(&root)?;
    match args.first().map(String::as_str) {
        Some("run") => run(&args[1..]),
        Some("test") => test(&args[1..]),
        Some("tools") => ensure_page_tools(),
        _ => {
            eprintln!("usage: cargo xtask run [--release] [-- r2-node args] | cargo xtask test [cargo test args] | cargo xtask tools");
            std::process::exit(2)
        }
    }
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace")
        .to_path_buf()
}

/// Builds the page and serves it from the bundled node.
fn run(args: &[String]) -> Result<()> {
    let release = args.iter().any(|a| a == "--release");
    let node_args: Vec<&String> = args.iter().skip_while(|a| *a != "--").skip(1).collect();
    ensure_page_tools()?;
    build_page(release)?;
    let mut cargo = Command::new("cargo");
    cargo.args(["run", "--quiet", "--package", "r2-node"]);
    if release {
        cargo.arg("--release");
    }
    cargo.args(["--", "--sites", SITES]).args(node_args);
    println!("xtask: the page will be at http://127.0.0.1:4006/{PAGE_PATH}/ (and https on :4005) once the node is up");
    status(&mut cargo)
}

/// Runs every test of the workspace, the browser ones included.
fn test(args: &[String]) -> Result<()> {
    ensure_page_tools()?;
    ensure_chromium()?;
    // Release: the browser tests measure the tab's timing, as a user's build would run.
    build_page(true)?;
    let sites = std::fs::canonicalize(SITES)?;
    let mut cargo = Command::new("cargo");
    cargo
        .args(["test", "--workspace"])
        .args(args)
        .env("R2_SITES_DIR", &sites);
    status(&mut cargo)
}

/// `trunk build` of the page for `/stresstest/`, into the sites folder.
fn build_page(release: bool) -> Result<()> {
    let dist = format!("{SITES}/{PAGE_PATH}");
    let mut trunk = Command::new("trunk");
    trunk.args([
        "build",
        "--public-url",
        &format!("/{PAGE_PATH}/"),
        "--dist",
        &dist,
    ]);
    if release {
        trunk.arg("--release");
    }
    trunk.env("TRUNK_OFFLINE", "true").env("NO_COLOR", "true");
    status(&mut trunk).context("building the page with trunk")
}

/// The wasm target, Trunk and the matching `wasm-bindgen` CLI.
fn ensure_page_tools() -> Result<()> {
    let targets =
        output(Command::new("rustup").args(["target", "list", "--installed"])).unwrap_or_default();
    if !targets
        .lines()
        .any(|t| t.trim() == "wasm32-unknown-unknown")
    {
        status(Command::new("rustup").args(["target", "add", "wasm32-unknown-unknown"]))?;
    }
    let trunk = output(Command::new("trunk").arg("--version")).unwrap_or_default();
    if !trunk.contains(TRUNK_VERSION) {
        eprintln!("xtask: installing trunk {TRUNK_VERSION} (a first build takes a while)");
        status(Command::new("cargo").args([
            "install",
            "trunk",
            "--version",
            TRUNK_VERSION,
            "--locked",
        ]))?;
    }
    let wanted = locked_version("wasm-bindgen")?;
    let have = output(Command::new("wasm-bindgen").arg("--version")).unwrap_or_default();
    if !have.split_whitespace().any(|w| w == wanted) {
        eprintln!("xtask: installing wasm-bindgen-cli {wanted} (the version in Cargo.lock)");
        // Not --locked: one of its locked dependencies is newer than the registry holds.
        status(Command::new("cargo").args([
            "install",
            "wasm-bindgen-cli",
            "--version",
            &wanted,
            "--force",
        ]))?;
    }
    Ok(())
}

/// Debian's Chromium, for the browser tests.
fn ensure_chromium() -> Result<()> {
    if std::env::var_os("R2_CHROMIUM").is_some() || Path::new("/usr/bin/chromium").exists() {
        return Ok(());
    }
    eprintln!("xtask: installing chromium from Debian's packages");
    status(Command::new("apt-get").arg("update").arg("-qq"))?;
    status(Command::new("apt-get").args(["install", "-y", "-qq", "chromium", "chromium-driver"]))
        .context("installing chromium (needs root; or set R2_CHROMIUM to a Chromium binary)")
}

/// The version of `package` in `Cargo.lock`.
fn locked_version(package: &str) -> Result<String> {
    let lock = std::fs::read_to_string("Cargo.lock").context("reading Cargo.lock")?;
    let mut lines = lock.lines();
    while let Some(line) = lines.next() {
        if line.trim() == format!("name = \"{package}\"") {
            if let Some(version) = lines
                .next()
                .and_then(|l| l.trim().strip_prefix("version = "))
            {
                return Ok(version.trim_matches('"').to_owned());
            }
        }
    }
    bail!("{package} is not in Cargo.lock")
}

fn status(command: &mut Command) -> Result<()> {
    let shown = format!("{command:?}");
    let status = command
        .status()
        .with_context(|| format!("starting {shown}"))?;
    if !status.success() {
        bail!("{shown} failed with {status}");
    }
    Ok(())
}

fn output(command: &mut Command) -> Option<String> {
    command
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
}
