use std::time::Instant;
use async_graphql::{Request, Variables};
use r2_node::Node;
use serde_json::json;

#[tokio::test(flavor = "current_thread")]
#[ignore]
async fn scratch() {
    let node = Node::new();
    let def = json!({"sentant": {"name": "d", "automations": [{"name": "a", "transitions": [{"event": "update", "public": true}]}]}}).to_string();
    let r = node.schema().execute(Request::new("mutation($d: String!) { sentantLoad(definition: $d) { id } }").variables(Variables::from_json(json!({"d": def})))).await;
    let id = r.data.into_json().unwrap()["sentantLoad"]["id"].as_str().unwrap().to_owned();
    let q = "mutation SentantSend($id: UUID4!, $event: String!, $parameters: Json, $passthrough: Json) {
  sentantSend(id: $id, event: $event, parameters: $parameters, passthrough: $passthrough) { id name } }";
    for round in 0..3 {
        let n = 50_000;
        let t = Instant::now();
        for _ in 0..n {
            let r = node.schema().execute(Request::new(q).variables(Variables::from_json(json!({"id": id, "event": "update", "parameters": "{}"})))).await;
            assert!(r.errors.is_empty());
        }
        println!("round {round}: {:.1} µs per sentantSend", t.elapsed().as_secs_f64() * 1e6 / n as f64);
    }
}
