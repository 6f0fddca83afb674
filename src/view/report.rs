//! The run's report: errors by kind, own sentants left on the node, and the
//! summary as JSON in `<pre id="r2-summary">` for scripts and CI
//! (`data-phase` says which phase wrote it).

use yew::prelude::*;

use super::SnapshotProps;

#[function_component(ReportView)]
pub fn report_view(props: &SnapshotProps) -> Html {
    let s = &props.snapshot;
    let Some(summary) = &s.summary else { return html! {} };
    let json = serde_json::to_string_pretty(&**summary).unwrap_or_default();
    html! {
        <section class="report" aria-label="summary">
            <h2>{ "Summary" }</h2>
            if !s.leftovers.is_empty() {
                <p class="error">{ format!("Still on the node after cleanup: {}", s.leftovers.join(", ")) }</p>
            }
            <pre id="r2-summary" data-phase={s.phase.label()}>{ json }</pre>
        </section>
    }
}
