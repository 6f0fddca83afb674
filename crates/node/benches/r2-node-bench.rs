//! Benchmark of the r2-node transport. Run it by hand (it is not part of CI):
//!
//! ```text
//! cargo bench -p r2-node --bench r2-node-bench
//! cargo bench -p r2-node --bench r2-node-bench -- --clients 64 --seconds 10 --devices 1000 --samples 5000
//! ```
//!
//! Cargo builds this program and the `r2-node` binary with the bench
//! (release) profile. The program starts that binary as its own process on
//! `127.0.0.1:0` (plain HTTP) and measures, with WebApp-style requests:
//!
//! 1. **Throughput**: `sentantSend(id, "set_sensor", {"sensor": n})` per second
//!    over HTTP keep-alive from `--clients` concurrent clients (64), each on
//!    its own device, for `--seconds` (10) after a one-second warm-up.
//! 2. **Latency**: with `--devices` (1,000) devices loaded, each with its own
//!    websocket subscribed to `awaitSignal(id, "update")` like a phone, and the
//!    projector's socket subscribed to `view`, the time from posting
//!    `sentantSend(id, "update", {})` to the `update` push arriving on that
//!    device's socket: p50 / p99 / max over `--samples` (5,000) sends, one at
//!    a time and then with `--clients` in flight.
//!
//! `--node http://HOST:PORT` measures a node that is already running (r2-node
//! under a profiler, or another Reality2 node) instead of starting one.
//!
//! Goal: ≥ 20,000 sends/s and p99 < 5 ms. The clients share the machine's
//! cores with the node, so the figures are lower bounds for the node alone.

#[path = "../tests/common/mod.rs"]
mod common;

use std::{
    process::Stdio,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use anyhow::{bail, ensure, Context, Result};
use common::{
    device_definition, id_of, load_variables, send_variables, view_definition, webapp_body,
    webapp_post, Socket, SENTANT_LOAD, SENTANT_SEND,
};
use futures::{stream, StreamExt, TryStreamExt};
use hdrhistogram::Histogram;
use r2_core::phoenix::Vsn;
use serde_json::json;
use tokio::{
    io::{AsyncBufReadExt, BufReader},
    net::TcpStream,
    process::{Child, Command},
};
use tokio_tungstenite::MaybeTlsStream;

type Phone = (String, Socket<MaybeTlsStream<TcpStream>>, String);

/// The command-line knobs.
#[derive(Debug, Clone)]
struct Knobs {
    /// A node to measure instead of starting one.
    node: Option<String>,
    clients: usize,
    seconds: u64,
    devices: usize,
    samples: usize,
}

impl Knobs {
    /// `--name value` pairs; other words (cargo passes `--bench`) are ignored.
    fn from_args() -> Result<Knobs> {
        let mut knobs = Knobs {
            node: None,
            clients: 64,
            seconds: 10,
            devices: 1000,
            samples: 5000,
        };
        let args: Vec<String> = std::env::args().skip(1).collect();
        for pair in args.windows(2) {
            let value = || {
                pair[1]
                    .parse::<u64>()
                    .with_context(|| format!("{} wants a number", pair[0]))
            };
            match pair[0].as_str() {
                "--clients" => knobs.clients = value()? as usize,
                "--seconds" => knobs.seconds = value()?,
                "--devices" => knobs.devices = value()? as usize,
                "--samples" => knobs.samples = value()? as usize,
                "--node" => knobs.node = Some(pair[1].trim_end_matches('/').to_owned()),
                _ => {}
            }
        }
        ensure!(
            knobs.clients > 0 && knobs.devices >= knobs.clients,
            "need devices >= clients > 0"
        );
        Ok(knobs)
    }
}

/// Starts the release `r2-node` on a free port; returns it and its base URL.
async fn start_node() -> Result<(Child, String)> {
    let mut child = Command::new(env!("CARGO_BIN_EXE_r2-node"))
        .args(["--no-https", "--http", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let stdout = child.stdout.take().context("stdout")?;
    let line = BufReader::new(stdout)
        .lines()
        .next_line()
        .await?
        .context("r2-node printed nothing")?;
    let base = line
        .strip_prefix("r2-node: ")
        .and_then(|url| url.strip_suffix("/reality2"))
        .with_context(|| format!("unexpected first line {line:?}"))?;
    Ok((child, base.to_owned()))
}

/// Loads `count` devices, 64 at a time; returns their ids in order.
async fn load_devices(client: &reqwest::Client, base: &str, count: usize) -> Result<Vec<String>> {
    stream::iter(1..=count)
        .map(|n| async move {
            let definition = device_definition(&format!("device {n:04}"));
            let (status, body) =
                webapp_post(client, base, SENTANT_LOAD, &load_variables(&definition)).await?;
            ensure!(status == 200, "load: {body}");
            id_of(&body["data"]["sentantLoad"])
        })
        .buffered(64)
        .try_collect()
        .await
}

/// Posts one `sentantSend`; fails unless the node accepted it.
async fn send(client: &reqwest::Client, url: &str, body: String) -> Result<()> {
    let response = client
        .post(url)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await?;
    let status = response.status();
    let text = response.bytes().await?;
    if status != 200 || text.windows(9).any(|w| w == b"\"errors\":") {
        bail!("send refused: {status} {}", String::from_utf8_lossy(&text));
    }
    Ok(())
}

/// Phase 1: sends per second from `knobs.clients` keep-alive clients.
async fn throughput(
    client: &reqwest::Client,
    base: &str,
    ids: &[String],
    knobs: &Knobs,
) -> Result<f64> {
    let url = format!("{base}/reality2");
    let counted = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let warm_until = started + Duration::from_secs(1);
    let stop_at = warm_until + Duration::from_secs(knobs.seconds);
    let clients = ids.iter().take(knobs.clients).map(|id| {
        let (client, url, counted, id) = (client.clone(), url.clone(), counted.clone(), id.clone());
        tokio::spawn(async move {
            let mut sensor = 0u64;
            while Instant::now() < stop_at {
                sensor = (sensor + 1) % 360;
                let body = webapp_body(
                    SENTANT_SEND,
                    &send_variables(&id, "set_sensor", &json!({ "sensor": sensor })),
                );
                send(&client, &url, body).await?;
                if Instant::now() > warm_until {
                    counted.fetch_add(1, Ordering::Relaxed);
                }
            }
            Ok::<(), anyhow::Error>(())
        })
    });
    for client in clients.collect::<Vec<_>>() {
        client.await??;
    }
    let measured = Instant::now().duration_since(warm_until).as_secs_f64();
    Ok(counted.load(Ordering::Relaxed) as f64 / measured)
}

/// Opens one subscribed socket per device, 32 at a time.
async fn phones(ws_url: &str, ids: Vec<String>) -> Result<Vec<Phone>> {
    stream::iter(ids)
        .map(|id| async move {
            let mut socket = Socket::connect(ws_url, Vsn::V1).await?;
            socket.join().await?;
            let sub = socket.subscribe(&id, "update").await?;
            Ok::<Phone, anyhow::Error>((id, socket, sub))
        })
        .buffered(32)
        .try_collect()
        .await
}

/// Sends `update` to each phone's device in turn, `rounds` times in all, and
/// records the time until the push arrives on that phone's socket.
async fn round_trips(
    client: reqwest::Client,
    url: String,
    mut phones: Vec<Phone>,
    rounds: usize,
) -> Result<(Histogram<u64>, Vec<Phone>)> {
    let mut histogram = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
    for n in 0..rounds {
        let index = n % phones.len();
        let (id, socket, sub) = &mut phones[index];
        let body = webapp_body(SENTANT_SEND, &send_variables(id, "update", &json!({})));
        let started = Instant::now();
        let pushed = async {
            let signal = socket.signal(sub).await?;
            ensure!(signal["event"] == "update", "{signal}");
            Ok(started.elapsed())
        };
        let (sent, pushed) = tokio::join!(send(&client, &url, body), pushed);
        sent?;
        histogram.record(pushed?.as_micros().max(1) as u64)?;
    }
    Ok((histogram, phones))
}

fn report(label: &str, h: &Histogram<u64>) {
    let ms = |q: f64| h.value_at_quantile(q) as f64 / 1000.0;
    println!(
        "  {label}: n={} p50={:.2} ms p99={:.2} ms max={:.2} ms",
        h.len(),
        ms(0.5),
        ms(0.99),
        h.max() as f64 / 1000.0
    );
}

/// Phase 2: push latency with every device subscribed, sequential and concurrent.
async fn latency(
    client: &reqwest::Client,
    base: &str,
    ids: Vec<String>,
    knobs: &Knobs,
) -> Result<()> {
    let url = format!("{base}/reality2");
    let ws_url = format!(
        "{}/reality2/websocket",
        base.replacen("http://", "ws://", 1)
    );
    let view = {
        let (status, body) = webapp_post(
            client,
            base,
            SENTANT_LOAD,
            &load_variables(&view_definition()),
        )
        .await?;
        ensure!(status == 200, "view: {body}");
        id_of(&body["data"]["sentantLoad"])?
    };
    // The projector: one socket on `view` that sees every device's update.
    let mut projector = Socket::connect(&ws_url, Vsn::V1).await?;
    projector.join().await?;
    let view_sub = projector.subscribe(&view, "update").await?;
    let seen_by_view = Arc::new(AtomicU64::new(0));
    let projector_seen = seen_by_view.clone();
    let projector_task = tokio::spawn(async move {
        while projector.signal(&view_sub).await.is_ok() {
            projector_seen.fetch_add(1, Ordering::Relaxed);
        }
    });

    let opening = Instant::now();
    let all = phones(&ws_url, ids).await?;
    println!(
        "  {} phone sockets subscribed in {:.1} s",
        all.len(),
        opening.elapsed().as_secs_f64()
    );

    let (sequential, all) = round_trips(client.clone(), url.clone(), all, knobs.samples).await?;
    report("one at a time", &sequential);

    let mut groups: Vec<Vec<Phone>> = (0..knobs.clients).map(|_| Vec::new()).collect();
    for (n, phone) in all.into_iter().enumerate() {
        groups[n % knobs.clients].push(phone);
    }
    let per_client = knobs.samples.div_ceil(knobs.clients);
    let started = Instant::now();
    let tasks: Vec<_> = groups
        .into_iter()
        .map(|group| tokio::spawn(round_trips(client.clone(), url.clone(), group, per_client)))
        .collect();
    let mut concurrent = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
    for task in tasks {
        concurrent.add(task.await??.0)?;
    }
    let elapsed = started.elapsed().as_secs_f64();
    report(&format!("{} in flight", knobs.clients), &concurrent);
    println!(
        "  {:.0} update round trips/s with {} in flight",
        concurrent.len() as f64 / elapsed,
        knobs.clients
    );
    println!(
        "  the projector's socket saw {} view updates",
        seen_by_view.load(Ordering::Relaxed)
    );
    projector_task.abort();
    Ok(())
}

/// User plus system CPU seconds of process `pid` ("self" for this one), from
/// `/proc` (Linux; 0 when unknown).
fn cpu_seconds(pid: &str) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    // Fields after the parenthesised command name; utime and stime are the 12th and 13th.
    let after_name = stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or("");
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // Clock ticks are 100 per second on Linux.
    (ticks(11) + ticks(12)) / 100.0
}

#[tokio::main]
async fn main() -> Result<()> {
    let knobs = Knobs::from_args()?;
    let (mut node, base) = match &knobs.node {
        Some(base) => (None, base.clone()),
        None => {
            let (child, base) = start_node().await?;
            (Some(child), base)
        }
    };
    println!(
        "r2-node-bench: node at {base}, {knobs:?}, {} cores",
        std::thread::available_parallelism()?
    );
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(knobs.clients * 2)
        .build()?;
    let ids = load_devices(&client, &base, knobs.devices).await?;

    println!(
        "throughput (set_sensor over HTTP keep-alive, {} clients):",
        knobs.clients
    );
    let node_pid = node
        .as_ref()
        .and_then(Child::id)
        .map_or("none".to_owned(), |pid| pid.to_string());
    let cpu_before = (cpu_seconds(&node_pid), cpu_seconds("self"));
    let wall = Instant::now();
    let rate = throughput(&client, &base, &ids, &knobs).await?;
    let wall = wall.elapsed().as_secs_f64();
    let node_cpu = cpu_seconds(&node_pid) - cpu_before.0;
    let bench_cpu = cpu_seconds("self") - cpu_before.1;
    println!("  {rate:.0} sends/s (goal >= 20000)");
    println!(
        "  CPU over {wall:.1} s: node {node_cpu:.1} s ({:.0}% of a core), clients {bench_cpu:.1} s ({:.0}%)",
        100.0 * node_cpu / wall,
        100.0 * bench_cpu / wall
    );

    println!(
        "latency (sentantSend(update) -> push, {} devices each on its own socket):",
        knobs.devices
    );
    latency(&client, &base, ids, &knobs).await?;

    let stats: serde_json::Value = client
        .get(format!("{base}/r2-node/stats"))
        .send()
        .await?
        .json()
        .await?;
    println!("node stats: {stats}");
    if let Some(node) = node.as_mut() {
        node.kill().await?;
    }
    Ok(())
}
