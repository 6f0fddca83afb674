//! Fault injection over real sockets: `/r2-node/faults` reads back what was
//! set, replaces it on each POST and `{}` clears it; bad bodies get 400; each
//! fault (latency and jitter, error_rate, drop_sockets_every_s, refuse_for_s,
//! forget, and faults from the configuration) does what it says, counts in
//! the stats, and never touches `/r2-node/*`.

mod common;

use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use common::*;
use r2_core::phoenix::Vsn;
use r2_node::{server::ServerError, Config, FaultSpec, Running};
use serde_json::{json, Value};

/// The faults as read back when none is set.
fn none_set() -> Value {
    serde_json::to_value(FaultSpec::default()).expect("serializable")
}

/// `faults[field]` as a number.
fn number(faults: &Value, field: &str) -> Result<f64> {
    faults[field]
        .as_f64()
        .with_context(|| format!("no {field} in {faults}"))
}

#[tokio::test]
async fn faults_read_back_post_replaces_them_and_empty_clears() -> Result<()> {
    let node = TestNode::start().await?;
    assert_eq!(node.faults().await?, none_set());
    let set =
        json!({"latency_ms": 5, "jitter_ms": 2.5, "error_rate": 0.25, "drop_sockets_every_s": 30});
    let echoed = node.set_faults(set.clone()).await?;
    assert_eq!(echoed, node.faults().await?);
    for (field, value) in set.as_object().context("object")? {
        assert_eq!(echoed[field].as_f64(), value.as_f64(), "{field}");
    }
    assert_eq!(number(&echoed, "refuse_for_s")?, 0.0);
    assert_eq!(echoed["forget"], false);

    let replaced = node.set_faults(json!({"latency_ms": 1})).await?;
    assert_eq!(number(&replaced, "latency_ms")?, 1.0);
    assert_eq!(number(&replaced, "error_rate")?, 0.0, "left out is off");
    assert_eq!(number(&replaced, "drop_sockets_every_s")?, 0.0);

    assert_eq!(node.set_faults(json!({})).await?, none_set());
    assert_eq!(node.faults().await?, none_set());
    Ok(())
}

#[tokio::test]
async fn bad_fault_bodies_get_400_saying_what_is_wrong_and_change_nothing() -> Result<()> {
    let node = TestNode::start().await?;
    let before = node.set_faults(json!({"error_rate": 0.5})).await?;
    for (body, says) in [
        (r#"{"latency": 5}"#, "unknown field `latency`"),
        (
            r#"{"error_rate": 2}"#,
            "error_rate must be a number from 0 to 1, not 2",
        ),
        (
            r#"{"latency_ms": -1}"#,
            "latency_ms must be a number from 0",
        ),
        (
            r#"{"jitter_ms": 1e12}"#,
            "jitter_ms must be a number from 0",
        ),
        (r#"{"refuse_for_s": "soon"}"#, "invalid type: string"),
        (r#"{"forget": 1}"#, "invalid type: integer"),
        (r#"{"drop_sockets_every_s": 0.001}"#, "at least 0.01"),
        ("[]", "expected a JSON object"),
        ("not json", "not a faults object"),
        ("", "not a faults object"),
    ] {
        let (status, answer) = node.post_faults(body).await?;
        assert_eq!(status, 400, "{body}: {answer}");
        let detail = answer["errors"]["detail"].as_str().unwrap_or_default();
        assert!(detail.contains(says), "{body}: {detail:?} lacks {says:?}");
    }
    assert_eq!(node.faults().await?, before);
    Ok(())
}

#[tokio::test]
async fn injected_errors_answer_500_without_running_and_are_counted() -> Result<()> {
    let node = TestNode::start().await?;
    node.set_faults(json!({"error_rate": 1})).await?;
    let phoenix_500 = json!({"errors": {"detail": "Internal Server Error"}});
    let load = node
        .webapp_post(SENTANT_LOAD, load_variables(&device_definition("d")))
        .await?;
    assert_eq!(load, (500, phoenix_500.clone()));
    let get = node
        .http
        .get(format!(
            "{}?query=%7B%20sentantAll%20%7B%20id%20%7D%20%7D",
            node.graphql_url()
        ))
        .send()
        .await?;
    assert_eq!(answer(get).await?, (500, phoenix_500.clone()));
    let malformed = node
        .http
        .post(node.graphql_url())
        .header("content-type", "application/json")
        .body("{nope")
        .send()
        .await?;
    assert_eq!(answer(malformed).await?.0, 500, "the fault comes first");
    let stats = node.stats().await?;
    assert_eq!(stats["injected_errors"], 3);
    assert_eq!(
        (&stats["loads"], &stats["sentants"]),
        (&json!(0), &json!(0)),
        "nothing ran"
    );

    // A share: every 500 seen is counted, and only those.
    node.set_faults(json!({"error_rate": 0.3})).await?;
    let answers =
        futures::future::try_join_all((0..200).map(|_| node.webapp_post(SENTANT_ALL, json!({}))))
            .await?;
    let failed = answers.iter().filter(|(status, _)| *status == 500).count() as u64;
    let passed = answers.iter().filter(|(status, _)| *status == 200).count() as u64;
    assert_eq!(failed + passed, 200);
    assert!((30..=90).contains(&failed), "{failed} of 200 failed at 0.3");
    assert_eq!(node.stats().await?["injected_errors"], 3 + failed);

    node.set_faults(json!({})).await?;
    node.data(SENTANT_ALL, json!({})).await?;
    assert_eq!(node.stats().await?["injected_errors"], 3 + failed);
    Ok(())
}

#[tokio::test]
async fn latency_delays_answers_and_pushes_but_never_r2_node_paths() -> Result<()> {
    let latency = Duration::from_millis(600);
    let node = TestNode::start().await?;
    let (id, mut phone, subscription) = node.subscribed_device("slow").await?;
    let mut sender = node.socket().await?;
    node.set_faults(json!({"latency_ms": 600, "error_rate": 0}))
        .await?;

    let started = Instant::now();
    node.data(SENTANT_ALL, json!({})).await?;
    assert!(started.elapsed() >= latency, "{:?}", started.elapsed());

    let started = Instant::now();
    node.stats().await?;
    node.faults().await?;
    assert!(
        started.elapsed() < latency / 2,
        "/r2-node/* answered in {:?}",
        started.elapsed()
    );

    // Mutations over the websocket are not delayed; the push they cause is.
    let (status, _) = sender
        .doc(SENTANT_SEND, send_variables(&id, "update", &json!({})))
        .await?;
    assert_eq!(status, "ok");
    let sent = Instant::now();
    phone.signal(&subscription).await?;
    assert!(
        sent.elapsed() >= latency - Duration::from_millis(100),
        "pushed after {:?}",
        sent.elapsed()
    );

    // With a jitter far above the gap between signals, pushes keep their order.
    node.set_faults(json!({"latency_ms": 20, "jitter_ms": 200}))
        .await?;
    for sensor in 1..=30 {
        for (event, parameters) in [
            ("set_sensor", json!({ "sensor": sensor })),
            ("update", json!({})),
        ] {
            let (status, reply) = sender
                .doc(SENTANT_SEND, send_variables(&id, event, &parameters))
                .await?;
            ensure!(status == "ok", "{event}: {reply}");
        }
    }
    for sensor in 1..=30 {
        let signal = phone.signal(&subscription).await?;
        assert_eq!(
            signal["parameters"]["sensor"],
            node.sensor(sensor),
            "{signal}"
        );
    }
    assert_eq!(node.stats().await?["deliveries"], 31);
    Ok(())
}

#[tokio::test]
async fn sockets_are_dropped_on_the_period_until_cleared() -> Result<()> {
    let period = Duration::from_millis(300);
    let node = TestNode::start().await?;
    node.set_faults(json!({"drop_sockets_every_s": 0.3}))
        .await?;
    // Opened well within the first period, which starts at the POST.
    let mut sockets = Vec::new();
    for _ in 0..3 {
        sockets.push(node.socket().await?);
    }
    for socket in &mut sockets {
        assert_eq!(socket.closed().await?, Closed::Dropped, "no close frame");
    }
    node.await_stat("sockets", |n| n == 0).await?;
    assert_eq!(node.stats().await?["dropped_sockets"], 3);

    // The next period drops the next socket.
    let mut late = node.socket().await?;
    assert_eq!(late.closed().await?, Closed::Dropped);
    node.await_stat("dropped_sockets", |n| n == 4).await?;

    node.set_faults(json!({})).await?;
    let mut kept = node.socket().await?;
    // Nothing to await: the socket must outlive a few periods.
    tokio::time::sleep(period * 3).await;
    kept.heartbeat().await?;
    assert_eq!(node.stats().await?["dropped_sockets"], 4);
    Ok(())
}

#[tokio::test]
async fn a_refusal_drops_sockets_and_refuses_all_but_r2_node_until_it_ends() -> Result<()> {
    let node = TestNode::start().await?;
    let (id, mut phone, _) = node.subscribed_device("survivor").await?;
    let set = node.set_faults(json!({"refuse_for_s": 2})).await?;
    let left = number(&set, "refuse_for_s")?;
    assert!(left > 1.0 && left <= 2.0, "{left} s left");
    assert_eq!(phone.closed().await?, Closed::Dropped);

    // No answer at all: the connection closes, as a browser sees a refusal.
    let refused = node
        .http
        .post(node.graphql_url())
        .header("content-type", "application/json")
        .body(webapp_body(SENTANT_ALL, &json!({})))
        .send()
        .await;
    let error = refused.expect_err("refused");
    assert!(error.status().is_none(), "{error}");
    let site = node
        .http
        .get(format!("{}/stresstest/", node.base))
        .send()
        .await;
    assert!(site.is_err(), "every path but /r2-node/* is refused");
    assert!(
        Socket::connect(&node.ws_url(""), Vsn::V1).await.is_err(),
        "websocket upgrades are refused"
    );

    let stats = node.stats().await?;
    assert_eq!(
        (&stats["dropped_sockets"], &stats["sockets"]),
        (&json!(1), &json!(0))
    );
    assert!(number(&node.faults().await?, "refuse_for_s")? > 0.0);

    // When the time is up the node serves again, its sentants intact.
    within(async {
        while node.webapp_post(SENTANT_ALL, json!({})).await.is_err() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(())
    })
    .await?;
    assert_eq!(number(&node.faults().await?, "refuse_for_s")?, 0.0);
    let (status, body) = node.send(&id, "update", json!({})).await?;
    assert!(status == 200 && body.get("errors").is_none(), "{body}");
    node.assert_device_works("after", 42).await?;
    Ok(())
}

#[tokio::test]
async fn forget_drops_every_sentant_once_and_keeps_counting() -> Result<()> {
    let node = TestNode::start().await?;
    let (id, mut phone, _) = node.subscribed_device("first").await?;
    node.load(&device_definition("second")).await?;
    let set = node.set_faults(json!({"forget": true})).await?;
    assert_eq!(set, none_set(), "forget is an action, read back false");

    assert_eq!(
        node.data(SENTANT_ALL, json!({})).await?,
        json!({"sentantAll": []})
    );
    let stats = node.stats().await?;
    assert_eq!(
        (&stats["sentants"], &stats["loads"], &stats["unloads"]),
        (&json!(0), &json!(3), &json!(0))
    );
    let (_, body) = node.send(&id, "update", json!({})).await?;
    assert!(body.get("errors").is_some(), "the old id is gone: {body}");
    node.await_stat("subscriptions", |n| n == 0).await?;
    phone.heartbeat().await?;

    node.assert_device_works("reborn", 7).await?;
    assert_eq!(node.stats().await?["loads"], 5, "view and reborn");
    Ok(())
}

#[tokio::test]
async fn faults_from_the_configuration_apply_from_the_start() -> Result<()> {
    let faults = FaultSpec {
        error_rate: 1.0,
        refuse_for_s: 30.0,
        ..FaultSpec::default()
    };
    let node = TestNode::with_config(Config {
        faults,
        ..Config::loopback()
    })
    .await?;
    assert!(
        node.webapp_post(SENTANT_ALL, json!({})).await.is_err(),
        "refused"
    );
    let read = node.faults().await?;
    assert_eq!(number(&read, "error_rate")?, 1.0);
    assert!(number(&read, "refuse_for_s")? > 20.0);

    // A POST replaces the refusal too: this one keeps only the errors.
    node.set_faults(json!({"error_rate": 1})).await?;
    assert_eq!(node.webapp_post(SENTANT_ALL, json!({})).await?.0, 500);

    let invalid = Config {
        faults: FaultSpec {
            error_rate: 2.0,
            ..FaultSpec::default()
        },
        ..Config::loopback()
    };
    assert!(matches!(
        Running::start(invalid).await,
        Err(ServerError::Faults(_))
    ));
    Ok(())
}
