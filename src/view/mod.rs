//! Components that only render and dispatch: the control panel, the live
//! counters, the device tiles and the report; the phones' QR join ([`qr`])
//! and the replay trace picker ([`trace`]). The tiles ([`tiles`]) and the
//! charts take only what they draw, so an unchanged grid or series costs a
//! comparison, not a render.

mod chart;
mod charts;
mod controls;
pub mod leftovers;
pub mod qr;
mod report;
mod tiles;
pub mod trace;

pub use charts::Charts;
pub use controls::Controls;
pub use report::ReportView;
pub use tiles::Tiles;

use std::rc::Rc;

use yew::prelude::*;

use crate::run::{Phase, Snapshot};

/// Props of the components that show a run.
#[derive(Properties, PartialEq)]
pub struct SnapshotProps {
    pub snapshot: Rc<Snapshot>,
}

/// The live counters.
#[function_component(Counters)]
pub fn counters(props: &SnapshotProps) -> Html {
    let s = &props.snapshot;
    let progress = if s.requested == 0 {
        0.0
    } else {
        f64::from(s.joined) / f64::from(s.requested)
    };
    let cell = |label: &str, value: String, id: &str| {
        html! { <div class="counter"><span class="value" id={format!("r2-{id}")}>{ value }</span><span class="label">{ label.to_owned() }</span></div> }
    };
    html! {
        <section class="counters" aria-label="live counters">
            <div class="phase">
                <strong id="r2-phase">{ s.phase.label() }</strong>
                { s.remaining_s.map(|r| format!(" · {r:.0} s left")).unwrap_or_default() }
                <span class="prefix">{ format!(" · devices {}…", s.prefix) }</span>
            </div>
            if let Some(ms) = s.started_wall_ms { <span id="r2-started" hidden=true data-ms={format!("{ms:.0}")}></span> }
            <span id="r2-engine" hidden=true data-wasm-bytes={s.worker_wasm_bytes.to_string()}
                data-heap-live={s.engine_heap.live_bytes.to_string()} data-heap-peak={s.engine_heap.peak_bytes.to_string()}></span>
            if let Phase::Failed(why) = &s.phase { <p class="error" id="r2-contact-error">{ why }</p> }
            <progress max="1" value={progress.to_string()} />
            <div class="grid">
                { cell("devices live", format!("{}/{}", s.live, s.requested), "live") }
                { cell("failed", s.failed.to_string(), "failed") }
                { cell("sockets", s.sockets_live.to_string(), "sockets") }
                { cell("sends/s", format!("{:.0}", s.sends_per_s), "sends-rate") }
                { cell("signals/s", format!("{:.0}", s.signals_per_s), "signals-rate") }
                { cell("sends ok", s.sends_ok.to_string(), "sends-ok") }
                { cell("signals", s.signals.to_string(), "signals") }
                if s.projector_signals > 0 { { cell("projector signals", s.projector_signals.to_string(), "projector-signals") } }
                if s.view_signals > 0 { { cell("view signals", s.view_signals.to_string(), "view-signals") } }
                { cell("errors", s.errors.to_string(), "errors") }
                { cell("in flight", s.fetch_queue.to_string(), "queue") }
            </div>
        </section>
    }
}
