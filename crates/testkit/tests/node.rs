//! `TestNode` against the real in-process node, and a real Chromium using a
//! site the node serves (same origin as its `/reality2`).

use std::time::Duration;

use r2_testkit::{Browser, TestNode};
use serde_json::{json, Value};

const LOAD: &str = "mutation SentantLoad($definition: String!) { sentantLoad(definition: $definition) { id name } }";
const GET: &str = "query SentantGet($id: UUID4!) { sentantGet(id: $id) { id name } }";

/// A sentant definition with one public event.
fn definition(name: &str) -> String {
    json!({"sentant": {"name": name, "automations": [{"name": "a", "transitions": [
        {"event": "poke", "public": true, "actions": [
            {"command": "set", "plugin": "ai.reality2.vars", "parameters": {"key": "k", "value": 1}}]}]}]}})
    .to_string()
}

fn counter(stats: &Value, name: &str) -> u64 {
    stats[name]
        .as_u64()
        .unwrap_or_else(|| panic!("no counter {name} in {stats}"))
}

#[tokio::test]
async fn graphql_and_stats_over_http() -> anyhow::Result<()> {
    let node = TestNode::start(None).await?;
    let port = node
        .url()
        .strip_prefix("http://127.0.0.1:")
        .and_then(|p| p.parse::<u16>().ok());
    assert!(port.is_some_and(|p| p != 0), "url {}", node.url());

    let loads_before = counter(&node.stats().await?, "loads");
    let loaded = node
        .graphql(LOAD, json!({ "definition": definition("testkit probe") }))
        .await?;
    let id = loaded["data"]["sentantLoad"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("no id in {loaded}"))
        .to_owned();
    assert_eq!(
        loaded["data"]["sentantLoad"]["name"],
        json!("testkit probe")
    );
    assert_eq!(counter(&node.stats().await?, "loads"), loads_before + 1);

    let all = node
        .graphql("{ sentantAll { id name } }", json!({}))
        .await?;
    let listed = all["data"]["sentantAll"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(
        listed.contains(&json!({"id": id, "name": "testkit probe"})),
        "{all}"
    );

    let broken = node.graphql("{ sentantAll { id ", json!({})).await?;
    assert!(
        broken["errors"].as_array().is_some_and(|e| !e.is_empty()),
        "{broken}"
    );
    node.stop().await
}

#[tokio::test]
async fn a_page_served_by_the_node_talks_to_it() -> anyhow::Result<()> {
    let sites = tempfile::tempdir()?;
    std::fs::create_dir(sites.path().join("probe"))?;
    let query = serde_json::to_string(LOAD)?;
    let definition = serde_json::to_string(&definition("browser probe"))?;
    let script = format!(
        "fetch('/reality2', {{method: 'POST', headers: {{'Content-Type': 'application/json'}},\n\
           body: JSON.stringify({{query: {query}, variables: JSON.stringify({{definition: {definition}}})}})}})\n\
           .then(r => r.json())\n\
           .then(j => {{ document.getElementById('out').textContent = j.data.sentantLoad.id; }})\n\
           .catch(e => console.error('load failed', String(e)));"
    );
    std::fs::write(
        sites.path().join("probe").join("index.html"),
        format!(
            "<!doctype html><html><body><p id=\"out\"></p><script>{script}</script></body></html>"
        ),
    )?;
    let node = TestNode::start(Some(sites.path())).await?;
    let browser = Browser::launch().await?;
    let page = browser.new_page().await?;
    page.goto(&format!("{}/probe/", node.url())).await?;
    let id = page
        .wait_for(
            "document.getElementById('out').textContent",
            Duration::from_secs(10),
        )
        .await?;
    let got = node.graphql(GET, json!({ "id": id })).await?;
    assert_eq!(
        got["data"]["sentantGet"]["name"],
        json!("browser probe"),
        "{got}"
    );
    browser.close().await?;
    node.stop().await
}
