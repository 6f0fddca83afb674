//! A Phoenix Channels websocket as the WebApp's Absinthe client uses it:
//! V1 JSON frames, the control topic joined first, subscription documents
//! sent as `doc` frames, heartbeats on topic `phoenix`.
//!
//! [`PhxSocket`] owns the browser `WebSocket` and the closures that feed its
//! events to a handler; dropping it detaches the handlers and closes the
//! socket, so nothing outlives the run that made it.

use std::rc::Rc;

use r2_core::phoenix::{Frame, FrameError, Vsn};
use wasm_bindgen::closure::Closure;
use wasm_bindgen::JsCast;
use web_sys::{CloseEvent, Event, MessageEvent, WebSocket};

use crate::browser::js_error_text;

/// What a socket reports to its owner.
#[derive(Debug)]
pub enum SocketEvent {
    /// The connection is open (the owner now joins the control topic).
    Open,
    /// A frame arrived and decoded.
    Frame(Frame),
    /// A frame arrived that could not be decoded.
    Malformed(FrameError),
    /// The connection closed (`clean` false: dropped, refused or failed).
    Closed {
        code: u16,
        reason: String,
        clean: bool,
    },
}

/// The websocket URL of a node given its HTTP address.
pub fn websocket_url(node: &str) -> String {
    let base = node.trim_end_matches('/');
    let base = if let Some(rest) = base.strip_prefix("https://") {
        format!("wss://{rest}")
    } else if let Some(rest) = base.strip_prefix("http://") {
        format!("ws://{rest}")
    } else {
        base.to_owned()
    };
    format!("{base}/reality2/websocket")
}

/// An open (or opening) websocket with its handlers attached.
pub struct PhxSocket {
    ws: WebSocket,
    _on_open: Closure<dyn FnMut(Event)>,
    _on_message: Closure<dyn FnMut(MessageEvent)>,
    _on_close: Closure<dyn FnMut(CloseEvent)>,
}

impl PhxSocket {
    /// Opens a socket to `url`; every event goes to `handler`.
    pub fn open(url: &str, handler: Rc<dyn Fn(SocketEvent)>) -> Result<PhxSocket, String> {
        let ws = WebSocket::new(url).map_err(|e| js_error_text(&e))?;
        let on_open = {
            let handler = handler.clone();
            Closure::<dyn FnMut(Event)>::new(move |_| handler(SocketEvent::Open))
        };
        let on_message = {
            let handler = handler.clone();
            Closure::<dyn FnMut(MessageEvent)>::new(move |ev: MessageEvent| {
                let text = ev.data().as_string().unwrap_or_default();
                handler(match Frame::decode(&text, Vsn::V1) {
                    Ok(frame) => SocketEvent::Frame(frame),
                    Err(err) => SocketEvent::Malformed(err),
                })
            })
        };
        let on_close = Closure::<dyn FnMut(CloseEvent)>::new(move |ev: CloseEvent| {
            handler(SocketEvent::Closed {
                code: ev.code(),
                reason: ev.reason(),
                clean: ev.was_clean(),
            })
        });
        ws.set_onopen(Some(on_open.as_ref().unchecked_ref()));
        ws.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        ws.set_onclose(Some(on_close.as_ref().unchecked_ref()));
        Ok(PhxSocket {
            ws,
            _on_open: on_open,
            _on_message: on_message,
            _on_close: on_close,
        })
    }

    /// Sends a frame; `false` when the socket is not open.
    pub fn send(&self, frame: &Frame) -> bool {
        self.ws.ready_state() == WebSocket::OPEN
            && self.ws.send_with_str(&frame.encode(Vsn::V1)).is_ok()
    }

    /// Whether the socket is open now.
    pub fn is_open(&self) -> bool {
        self.ws.ready_state() == WebSocket::OPEN
    }
}

impl Drop for PhxSocket {
    fn drop(&mut self) {
        self.ws.set_onopen(None);
        self.ws.set_onmessage(None);
        self.ws.set_onclose(None);
        let _ = self.ws.close();
    }
}
