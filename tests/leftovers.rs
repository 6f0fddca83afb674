//! Leftovers of earlier runs, in real headless Chromium: the page lists the
//! sentants named like r2-stress devices and deletes only those the user
//! ticks — never a phone's `device NNNN`, `view`, or an unticked one.
#![cfg(not(target_arch = "wasm32"))]

use std::time::Duration;

use anyhow::{Context, Result};
use r2_core::graphql;
use r2_testkit::{built_page_sites_dir, Browser, TestNode};
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_ticked_leftovers_are_deleted() -> Result<()> {
    let sites = built_page_sites_dir()?;
    let node = TestNode::start_lenient(Some(&sites)).await?;
    let names = [
        "r2s-oldtab01-1-0000",
        "r2s-oldtab01-1-0001",
        "r2s-oldtab02-3-0007",
        "device 0001",
    ];
    for name in names {
        node.graphql(
            graphql::SENTANT_LOAD,
            json!({ "definition": graphql::device_definition(name) }),
        )
        .await?;
    }
    node.graphql(
        graphql::SENTANT_LOAD,
        json!({ "definition": graphql::view_definition() }),
    )
    .await?;

    let browser = Browser::launch().await?;
    let page = browser.new_page().await?;
    page.goto(&format!("{}/stresstest/", node.url())).await?;
    page.wait_for("document.querySelector('#b-leftovers-find') !== null", WAIT)
        .await?;
    page.eval("document.querySelector('#b-leftovers-find').click()")
        .await?;
    let listed = page
        .wait_for(
            "(() => { const b = [...document.querySelectorAll('#r2-leftovers input')]; \
             return b.length ? b.map(i => i.dataset.name).sort().join(',') : null; })()",
            WAIT,
        )
        .await?;
    assert_eq!(
        listed,
        Value::from("r2s-oldtab01-1-0000,r2s-oldtab01-1-0001,r2s-oldtab02-3-0007")
    );

    page.eval(
        "['r2s-oldtab01-1-0001', 'r2s-oldtab02-3-0007'].forEach(n => \
         document.querySelector(`#r2-leftovers input[data-name='${n}']`).click())",
    )
    .await?;
    page.wait_for(
        "!document.querySelector('#b-leftovers-delete').disabled",
        WAIT,
    )
    .await?;
    page.eval("document.querySelector('#b-leftovers-delete').click()")
        .await?;
    let report = page
        .wait_for(
            "document.querySelector('#r2-leftovers-report')?.textContent",
            WAIT,
        )
        .await?;
    assert_eq!(report, Value::from("Deleted 2 leftover sentant(s)."));

    let all = node.graphql(graphql::SENTANT_ALL, json!({})).await?;
    let mut left: Vec<&str> = all["data"]["sentantAll"]
        .as_array()
        .context("list")?
        .iter()
        .filter_map(|s| s["name"].as_str())
        .collect();
    left.sort();
    assert_eq!(left, vec!["device 0001", "r2s-oldtab01-1-0000", "view"]);
    assert_eq!(node.stats().await?["unloads"], 2);
    browser.close().await?;
    Ok(())
}
