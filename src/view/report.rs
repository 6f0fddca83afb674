//! The run's report: the verdict shown large with its reasons, the
//! tab-as-bottleneck warning, the latency histogram, errors by kind, own
//! sentants left on the node, downloads (summary JSON, 1-second series CSV),
//! and the summary as JSON in `<pre id="r2-summary">` for scripts and CI
//! (`data-phase` says which phase wrote it).

use r2_core::metrics::series_csv;
use r2_core::summary::Verdict;
use yew::prelude::*;

use super::chart::BarChart;
use super::SnapshotProps;
use crate::browser::{download, page_as_html};

#[function_component(ReportView)]
pub fn report_view(props: &SnapshotProps) -> Html {
    let s = &props.snapshot;
    let Some(summary) = &s.summary else {
        return html! {};
    };
    let json = summary.to_json_pretty();
    let (verdict_class, verdict_word) = match summary.verdict {
        Verdict::Pass => ("verdict pass", "PASS"),
        Verdict::Fail => ("verdict fail", "FAIL"),
        Verdict::Invalid => ("verdict invalid", "INVALID"),
    };
    let on_json = {
        let (json, prefix) = (json.clone(), s.prefix.clone());
        Callback::from(move |_| {
            let _ = download(&format!("{prefix}summary.json"), "application/json", &json);
        })
    };
    let on_csv = {
        let (series, prefix) = (s.series.clone(), s.prefix.clone());
        Callback::from(move |_| {
            let _ = download(
                &format!("{prefix}series.csv"),
                "text/csv",
                &series_csv(series.iter()),
            );
        })
    };
    let on_html = {
        let prefix = s.prefix.clone();
        Callback::from(move |_| {
            let title = format!("r2-stress report {prefix}");
            let _ = download(
                &format!("{prefix}report.html"),
                "text/html",
                &page_as_html(&title),
            );
        })
    };
    html! {
        <section class="report" aria-label="summary">
            <h2>{ "Result" }</h2>
            <div class={verdict_class} id="r2-verdict">{ verdict_word }</div>
            if !summary.reasons.is_empty() {
                <ul class="reasons">{ for summary.reasons.iter().map(|r| html! { <li>{ r }</li> }) }</ul>
            }
            if let Some(why) = &summary.tab_bottleneck_why {
                <p class="bottleneck">{ format!("This tab was the bottleneck: {why}. Above this load it measured itself, not the node — use fewer devices per tab, or more tabs or machines.") }</p>
            }
            <p class="figures">{ format!(
                "{} of {} devices · {} values planned · {} sends ok, {} failed · {} signals ({} stale: a later update overtook their value) · signal latency p50 {:.0} ms, p99 {:.0} ms (corrected p99 {:.0} ms) · tab lag p99 {:.1} ms",
                summary.devices_created, summary.devices_requested, summary.sends_planned, summary.sends_ok, summary.sends_failed,
                summary.signals_received, summary.signals_stale, summary.signal_latency_ms.p50, summary.signal_latency_ms.p99,
                summary.signal_latency_ms_corrected.p99, summary.scheduler_lag_ms.p99) }</p>
            if !s.latency_histogram.is_empty() {
                <BarChart title="Signal latency, corrected (ms)" bars={s.latency_histogram.clone()} />
            }
            if !summary.errors.is_empty() {
                <table class="errors">
                    <tr><th>{ "error" }</th><th>{ "count" }</th><th>{ "example" }</th></tr>
                    { for summary.errors.iter().map(|e| html! { <tr><td>{ &e.kind }</td><td>{ e.count }</td><td>{ &e.example }</td></tr> }) }
                </table>
            }
            if !s.leftovers.is_empty() {
                <p class="error">{ format!("Still on the node after cleanup: {}", s.leftovers.join(", ")) }</p>
            }
            if let Some(why) = &summary.leftovers_unchecked {
                <p class="error">{ format!("The node could not be asked what is left after cleanup ({why}): look with Find leftovers.") }</p>
            }
            <div class="buttons">
                <button onclick={on_json}>{ "Download summary (JSON)" }</button>
                <button onclick={on_csv}>{ "Download 1-second series (CSV)" }</button>
                <button onclick={on_html}>{ "Download this report (HTML)" }</button>
            </div>
            <pre id="r2-summary" data-phase={s.phase.label()}>{ json }</pre>
        </section>
    }
}
