//! The `r2-node` binary: the command line, the lines it prints, serving, and
//! a graceful exit on Ctrl-C (SIGINT).

mod common;

use std::process::Stdio;

use anyhow::{bail, Context, Result};
use common::{answer, within, SENTANT_ALL};
use serde_json::json;
use tokio::{
    io::{AsyncBufReadExt, BufReader, Lines},
    process::{Child, ChildStdout, Command},
};

/// Starts the binary with `args`; returns it and its stdout lines.
fn spawn(args: &[&str]) -> Result<(Child, Lines<BufReader<ChildStdout>>)> {
    // The kept certificate goes to a scratch data directory, not the user's.
    let data = std::env::temp_dir().join(format!("r2-node-cli-data-{}", std::process::id()));
    let mut child = Command::new(env!("CARGO_BIN_EXE_r2-node"))
        .env("XDG_DATA_HOME", &data)
        .args(args)
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let stdout = child.stdout.take().context("stdout")?;
    Ok((child, BufReader::new(stdout).lines()))
}

/// The next printed line.
async fn line(lines: &mut Lines<BufReader<ChildStdout>>) -> Result<String> {
    within(async { lines.next_line().await?.context("stdout ended") }).await
}

#[tokio::test]
async fn prints_its_urls_serves_and_exits_on_ctrl_c() -> Result<()> {
    let (mut child, mut lines) = spawn(&["--https", "127.0.0.1:0", "--http", "127.0.0.1:0"])?;
    let https = line(&mut lines).await?;
    let http = line(&mut lines).await?;
    let url = |line: &str, scheme: &str| -> Result<String> {
        let url = line.strip_prefix("r2-node: ").context("prefix")?;
        if !url.starts_with(&format!("{scheme}://127.0.0.1:")) || !url.ends_with("/reality2") {
            bail!("unexpected line {line:?}");
        }
        Ok(url.to_owned())
    };
    let https = url(&https, "https")?;
    let http = url(&http, "http")?;
    let kept = line(&mut lines).await?;
    assert!(
        kept.starts_with("r2-node: certificate kept in ") && kept.ends_with("r2-node"),
        "{kept}"
    );
    let control = line(&mut lines).await?;
    assert!(
        control.contains("/r2-node/faults answers loopback only"),
        "{control}"
    );
    let client = reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .build()?;
    for endpoint in [&http, &https] {
        let (status, body) = answer(
            client
                .post(endpoint)
                .json(&json!({ "query": SENTANT_ALL }))
                .send()
                .await?,
        )
        .await?;
        assert_eq!(
            (status, &body),
            (200, &json!({"data": {"sentantAll": []}})),
            "{endpoint}"
        );
    }
    let pid = child.id().context("pid")?;
    let killed = std::process::Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status()?;
    assert!(killed.success());
    assert_eq!(line(&mut lines).await?, "r2-node: shutting down");
    let status = within(async { Ok(child.wait().await?) }).await?;
    assert!(status.success(), "{status}");
    Ok(())
}

#[tokio::test]
async fn no_https_serves_plain_http_only() -> Result<()> {
    let (mut child, mut lines) = spawn(&["--no-https", "--http", "127.0.0.1:0"])?;
    let first = line(&mut lines).await?;
    assert!(first.starts_with("r2-node: http://127.0.0.1:"), "{first}");
    child.kill().await?;
    Ok(())
}

#[tokio::test]
async fn a_bad_command_line_fails_with_usage() -> Result<()> {
    for args in [
        &["--cert", "only.pem"][..],
        &["--http", "nowhere"],
        &["--no-https", "--https", "127.0.0.1:0"],
    ] {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_r2-node"))
            .args(args)
            .output()?;
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        assert!(
            String::from_utf8_lossy(&output.stderr).contains("error:"),
            "{args:?}"
        );
    }
    Ok(())
}

#[test]
fn help_lists_the_real_node_behaviours_and_lenient() -> Result<()> {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_r2-node"))
        .arg("--help")
        .output()?;
    assert!(output.status.success());
    let help = String::from_utf8(output.stdout)?;
    for behaviour in [
        "--lenient",
        "--cors",
        "--https-alpn",
        "\"42\"",
        "about 1 s",
        "`send` action",
        "__internal goes to every sentant",
        "fresh id",
        "h2 and http/1.1",
        "no CORS headers",
        "description is \"\"",
    ] {
        assert!(
            help.contains(behaviour),
            "--help lacks {behaviour:?}:\n{help}"
        );
    }
    Ok(())
}

#[tokio::test]
async fn lenient_says_so() -> Result<()> {
    let (mut child, mut lines) = spawn(&["--no-https", "--http", "127.0.0.1:0", "--lenient"])?;
    line(&mut lines).await?;
    assert_eq!(
        line(&mut lines).await?,
        "r2-node: lenient, kinder than the real node (see --help)"
    );
    child.kill().await?;
    Ok(())
}

#[tokio::test]
async fn an_http1_only_https_says_so() -> Result<()> {
    let (mut child, mut lines) = spawn(&[
        "--https",
        "127.0.0.1:0",
        "--http",
        "127.0.0.1:0",
        "--https-alpn",
        "http1",
    ])?;
    let mut said = Vec::new();
    for _ in 0..3 {
        said.push(line(&mut lines).await?);
    }
    assert_eq!(
        said[2], "r2-node: HTTPS offers http/1.1 by ALPN (--https-alpn)",
        "{said:?}"
    );
    child.kill().await?;
    Ok(())
}
