//! Device mode's effects, each a hook whose cleanup undoes it: the join, the
//! websocket subscription (with heartbeat and reopening), the sends, the
//! `deviceorientation` listener and its "no sensor" timer, unloading on
//! `pagehide`, and saving a finished recording.
//!
//! Every browser callback is owned by a value the effect returns in its
//! cleanup (`gloo_events::EventListener`, `gloo_timers` `Timeout` and
//! `Interval`, [`Socket`]): dropping it detaches the callback, so nothing
//! outlives the component.

use std::cell::Cell;
use std::rc::Rc;

use gloo_events::EventListener;
use gloo_timers::callback::Timeout;
use js_sys::{Function, Promise, Reflect};
use r2_core::subscription::{Effect, Reconnect, SocketOptions};
use serde_json::{json, Value};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::{spawn_local, JsFuture};
use web_sys::DeviceOrientationEvent;
use yew::prelude::*;

use super::node;
use super::state::{Environment, Permission, PhoneAction, PhoneState, Recording, Settings};
use crate::browser::{js_error_text, random_u64};
use crate::net::{websocket_url, Client, Socket};

/// The pause before a dropped socket is opened again.
const REOPEN_MS: u32 = 1000;

type Dispatch = UseReducerDispatcher<PhoneState>;

/// `window.DeviceOrientationEvent`, when the browser has it.
fn orientation_constructor() -> Option<JsValue> {
    let window = web_sys::window()?;
    Reflect::get(&window, &JsValue::from_str("DeviceOrientationEvent"))
        .ok()
        .filter(JsValue::is_function)
}

/// `DeviceOrientationEvent.requestPermission`, which only iOS has.
fn request_permission_fn() -> Option<(JsValue, Function)> {
    let constructor = orientation_constructor()?;
    let function = Reflect::get(&constructor, &JsValue::from_str("requestPermission"))
        .ok()?
        .dyn_into::<Function>()
        .ok()?;
    Some((constructor, function))
}

/// What the browser offers for motion.
pub fn environment() -> Environment {
    Environment {
        secure: web_sys::window().is_some_and(|w| w.is_secure_context()),
        supported: orientation_constructor().is_some(),
        needs_permission: request_permission_fn().is_some(),
    }
}

/// Reads the environment once, on open.
#[hook]
pub fn use_environment(dispatch: Dispatch) {
    use_effect_with((), move |_| {
        dispatch.dispatch(PhoneAction::Environment(environment()))
    });
}

/// Asks for motion access, as iOS requires, from the tap that called it.
pub fn ask_permission(dispatch: Dispatch) {
    let Some((constructor, function)) = request_permission_fn() else {
        // No permission to ask for (not iOS): motion is simply on.
        dispatch.dispatch(PhoneAction::Permission(Permission::Granted));
        return;
    };
    dispatch.dispatch(PhoneAction::AskPermission);
    let promise = function
        .call0(&constructor)
        .and_then(|p| p.dyn_into::<Promise>());
    let promise = match promise {
        Ok(promise) => promise,
        Err(e) => {
            let why = js_error_text(&e);
            dispatch.dispatch(PhoneAction::Permission(Permission::Failed(why)));
            return;
        }
    };
    spawn_local(async move {
        let answer = match JsFuture::from(promise).await {
            Ok(v) if v.as_string().as_deref() == Some("granted") => Permission::Granted,
            Ok(_) => Permission::Denied,
            Err(e) => Permission::Failed(js_error_text(&e)),
        };
        dispatch.dispatch(PhoneAction::Permission(answer));
    });
}

/// Joins once per `attempt`: a free name with the run's prefix, the device
/// template loaded under it. A join that finishes after the component is
/// gone unloads what it loaded.
#[hook]
pub fn use_join(attempt: u32, http: Rc<Client>, settings: Rc<Settings>, dispatch: Dispatch) {
    use_effect_with(attempt, move |_| {
        let cancelled = Rc::new(Cell::new(false));
        let flag = cancelled.clone();
        spawn_local(async move {
            let naming = {
                let dispatch = dispatch.clone();
                move |name: &str| dispatch.dispatch(PhoneAction::Naming(name.to_owned()))
            };
            let result = node::join(&http, || settings.device_name(random_u64()), naming).await;
            match result {
                Ok(joined) if flag.get() => {
                    let _ = node::unload(&http, &joined.id).await;
                }
                Ok(joined) => dispatch.dispatch(PhoneAction::Joined { id: joined.id }),
                Err(e) => dispatch.dispatch(PhoneAction::JoinFailed(e.to_string())),
            }
        });
        move || cancelled.set(true)
    });
}

/// Sends `event` to `id` and reports a failure (or the sentant's absence).
async fn send_reporting(
    http: Rc<Client>,
    id: String,
    event: &'static str,
    parameters: Value,
    dispatch: Dispatch,
) {
    if let Err(err) = node::send(&http, &id, event, parameters).await {
        dispatch.dispatch(if err.is_gone() {
            PhoneAction::Gone
        } else {
            PhoneAction::RequestFailed(format!("{event}: {err}"))
        });
    }
}

/// Fires each new value of [`PhoneState::sent`] as `set_sensor` + `update`,
/// both at once, as the sensor page does.
#[hook]
pub fn use_sends(state: UseReducerHandle<PhoneState>, http: Rc<Client>) {
    let fired = use_mut_ref(|| 0usize);
    let count = state.sent.len();
    use_effect_with(count, move |count| {
        let from = std::mem::replace(&mut *fired.borrow_mut(), *count).min(*count);
        if let Some(id) = state.live_id() {
            for &value in &state.sent[from..] {
                for (event, parameters) in node::value_sends(value) {
                    spawn_local(send_reporting(
                        http.clone(),
                        id.to_owned(),
                        event,
                        parameters,
                        state.dispatcher(),
                    ));
                }
            }
        }
    });
}

/// The phone's own websocket while its sentant is live: reopened (after a
/// pause) when `epoch` changes, closed when the id goes.
#[hook]
pub fn use_subscription(
    node: String,
    id: Option<String>,
    epoch: u32,
    http: Rc<Client>,
    dispatch: Dispatch,
) {
    use_effect_with((id, epoch), move |(id, epoch)| {
        let link = id
            .clone()
            .map(|id| SocketLink::start(&websocket_url(&node), id, *epoch, http, dispatch));
        move || drop(link)
    });
}

/// A phone's socket (its heartbeat is the machine's) and the timer that
/// opens it. The socket never reopens itself, as the WebApp's does not: a
/// drop moves the phone's state to a new `epoch`, and with it a new socket.
struct SocketLink {
    _socket: Rc<Socket<()>>,
    _opener: Timeout,
}

impl SocketLink {
    fn start(
        url: &str,
        id: String,
        epoch: u32,
        http: Rc<Client>,
        dispatch: Dispatch,
    ) -> SocketLink {
        let handler = socket_handler(id.clone(), http, dispatch);
        let options = SocketOptions::phone(Reconnect::WebApp, random_u64());
        let socket = Rc::new(Socket::new(url, options, handler));
        socket.subscribe((), &id, "update");
        let opener = {
            let socket = Rc::downgrade(&socket);
            Timeout::new(if epoch == 0 { 0 } else { REOPEN_MS }, move || {
                if let Some(socket) = socket.upgrade() {
                    socket.start();
                }
            })
        };
        SocketLink {
            _socket: socket,
            _opener: opener,
        }
    }
}

/// What the phone does with its socket's news: on "connected" (the join
/// answered, the document sent) `update {}`; signals counted.
fn socket_handler(id: String, http: Rc<Client>, dispatch: Dispatch) -> Rc<dyn Fn(Effect<()>)> {
    Rc::new(move |effect| match effect {
        Effect::Opened { .. } => dispatch.dispatch(PhoneAction::SocketOpened),
        Effect::Connected(()) => {
            dispatch.dispatch(PhoneAction::SocketConnected);
            spawn_local(send_reporting(
                http.clone(),
                id.clone(),
                "update",
                json!({}),
                dispatch.clone(),
            ));
        }
        Effect::Live { .. } => dispatch.dispatch(PhoneAction::Subscribed),
        Effect::Refused { error, .. } => {
            dispatch.dispatch(PhoneAction::SubscriptionRefused(error.to_string()))
        }
        Effect::Signal { signal, .. } => dispatch.dispatch(PhoneAction::Signal(signal.sensor())),
        Effect::Malformed(why) => dispatch.dispatch(PhoneAction::RequestFailed(format!(
            "websocket frame: {why}"
        ))),
        Effect::JoinRefused(why) => dispatch.dispatch(PhoneAction::RequestFailed(format!(
            "websocket join refused: {why}"
        ))),
        Effect::Dropped { .. } => dispatch.dispatch(PhoneAction::SocketClosed),
        _ => {}
    })
}

/// The `deviceorientation` listener while the sensor is wanted, and the
/// timer that reports a missing sensor after `wait_ms` without a reading.
#[hook]
pub fn use_orientation(listening: bool, wait_ms: u32, dispatch: Dispatch) {
    use_effect_with((listening, wait_ms), move |&(listening, wait_ms)| {
        let parts = web_sys::window().filter(|_| listening).map(|window| {
            let on_reading = {
                let dispatch = dispatch.clone();
                EventListener::new(&window, "deviceorientation", move |event| {
                    let alpha = event
                        .dyn_ref::<DeviceOrientationEvent>()
                        .and_then(DeviceOrientationEvent::alpha);
                    dispatch.dispatch(PhoneAction::Reading {
                        alpha,
                        t_ms: event.time_stamp(),
                    });
                })
            };
            let timer = Timeout::new(wait_ms, move || {
                dispatch.dispatch(PhoneAction::SensorTimeout)
            });
            (on_reading, timer)
        });
        move || drop(parts)
    });
}

/// Unloads the phone's sentant, best-effort, when the page goes away.
#[hook]
pub fn use_unload_on_pagehide(id: Option<String>, http: Rc<Client>) {
    let current = use_mut_ref(|| None::<String>);
    *current.borrow_mut() = id;
    use_effect_with((), move |_| {
        let listener = web_sys::window().map(|window| {
            EventListener::new(&window, "pagehide", move |_| {
                if let Some(id) = current.borrow().as_deref() {
                    node::unload_as_page_goes(&http, id);
                }
            })
        });
        move || drop(listener)
    });
}

/// Saves each finished recording in this browser's local storage.
#[hook]
pub fn use_store_recording(recordings: u32, recording: &Recording) {
    let trace = match recording {
        Recording::Saved(trace) => Some(trace.clone()),
        _ => None,
    };
    use_effect_with(recordings, move |_| {
        if let Some(trace) = trace {
            crate::view::trace::store_trace(&trace);
        }
    });
}
