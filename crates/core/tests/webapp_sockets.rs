//! A phone's socket machine, fed the recorded phone's server frames
//! (`tests/fixtures/webapp-phone-trace.json` at the workspace root), sends the recorded client frames
//! byte for byte: the join, the subscription document (its multi-line text
//! and key order), every `ref` 0.

use r2_core::subscription::{Effect, Reconnect, SocketMachine, SocketOptions};
use serde_json::Value;

#[test]
fn every_socket_of_the_recorded_phone_is_replayed_byte_for_byte() {
    let trace: Value =
        serde_json::from_str(include_str!("../../../tests/fixtures/webapp-phone-trace.json")).expect("JSON");
    let events = trace["events"].as_array().expect("events");
    let sockets: Vec<&str> = events
        .iter()
        .filter(|e| e["kind"] == "ws_open")
        .map(|e| e["socket"].as_str().expect("name"))
        .collect();
    assert_eq!(sockets.len(), 5);
    let mut signals = 0;
    for socket in sockets {
        let frames: Vec<(&str, &str)> = events
            .iter()
            .filter(|e| e["socket"] == socket && e["kind"] != "ws_open")
            .map(|e| {
                (
                    e["kind"].as_str().expect("kind"),
                    e["frame"].as_str().expect("frame"),
                )
            })
            .collect();
        // What the socket subscribed to, read from its recorded document.
        let doc: Value = frames
            .iter()
            .filter(|(kind, _)| *kind == "ws_send")
            .map(|(_, f)| serde_json::from_str::<Value>(f).expect("JSON"))
            .find(|f| f["event"] == "doc")
            .expect("a doc frame");
        let vars = &doc["payload"]["variables"];
        let mut m = SocketMachine::new(SocketOptions::phone(Reconnect::WebApp, 1));
        m.subscribe(
            0.0,
            (),
            vars["id"].as_str().expect("id"),
            vars["signal"].as_str().expect("signal"),
        );
        assert_eq!(m.start(0.0), vec![Effect::Open]);
        let mut out: Vec<String> = Vec::new();
        let mut collect = |effects: Vec<Effect<()>>, out: &mut Vec<String>| {
            for effect in effects {
                match effect {
                    Effect::Send(text) => out.push(text),
                    Effect::Signal { .. } => signals += 1,
                    Effect::Malformed(why) => panic!("{socket}: {why}"),
                    _ => {}
                }
            }
        };
        collect(m.opened(1.0), &mut out);
        for (kind, frame) in &frames {
            if *kind == "ws_recv" {
                collect(m.received(2.0, frame), &mut out);
            }
        }
        let recorded: Vec<&str> = frames
            .iter()
            .filter(|(kind, _)| *kind == "ws_send")
            .map(|(_, f)| *f)
            .collect();
        assert_eq!(out, recorded, "socket {socket}");
    }
    assert!(signals > 20, "the recorded pushes are signals: {signals}");
}
