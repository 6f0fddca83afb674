//! The live charts, from the run's 1-second buckets: sends and signals per
//! second, send latency p50/p99, errors per second, live sockets, and the
//! fetch queue; plus the live tab-as-bottleneck warning.

use yew::prelude::*;

use std::rc::Rc;

use super::chart::{Line, LineChart};
use r2_core::metrics::Bucket;

fn line(
    label: &'static str,
    colour: &'static str,
    series: &[Bucket],
    y: fn(&Bucket) -> f64,
) -> Line {
    Line {
        label,
        colour,
        points: series.iter().map(|b| (b.t_s as f64, y(b))).collect(),
    }
}

/// What the charts draw: they render again only when a bucket is added
/// (once a second while a run is on, never after it).
#[derive(Properties, PartialEq)]
pub struct ChartsProps {
    pub series: Rc<Vec<Bucket>>,
    pub bottleneck: Option<AttrValue>,
}

#[function_component(Charts)]
pub fn charts(props: &ChartsProps) -> Html {
    let series = props.series.as_slice();
    html! {
        <>
        if let Some(why) = &props.bottleneck {
            <p class="bottleneck" id="r2-bottleneck">{ format!("Warning: the tab is the bottleneck — {why}. Figures above this load measure the browser, not the node.") }</p>
        }
        if !series.is_empty() {
            <section class="charts" aria-label="live charts">
                <LineChart title="Rate" unit="/s" lines={vec![
                    line("sends", "#4da3ff", series, |b| b.sends as f64),
                    line("signals", "#4cd37b", series, |b| b.signals as f64),
                ]} />
                <LineChart title="Send latency (corrected)" unit="ms" lines={vec![
                    line("p50", "#4da3ff", series, |b| b.p50_ms),
                    line("p99", "#ffb347", series, |b| b.p99_ms),
                ]} />
                <LineChart title="Errors" unit="/s" lines={vec![line("errors", "#ff6b6b", series, |b| b.errors as f64)]} />
                <LineChart title="Connections" unit="" lines={vec![
                    line("live sockets", "#c792ea", series, |b| b.sockets as f64),
                    line("requests in flight", "#98a2b8", series, |b| b.fetch_queue as f64),
                ]} />
            </section>
        }
        </>
    }
}
