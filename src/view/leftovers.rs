//! Leftovers of earlier runs: lists the sentants on the node whose names
//! follow r2-stress's naming pattern (`r2s-<tab>-<run>-NNNN`) but belong to
//! no run of this tab, and unloads those the user ticks — nothing else.

use std::collections::BTreeSet;
use std::rc::Rc;

use r2_core::graphql::SentantRef;
use r2_core::names::is_r2_stress_name;
use r2_core::webapp::{Fields, Request};
use wasm_bindgen_futures::spawn_local;
use yew::prelude::*;

use crate::net::{Client, NetError};

#[derive(Properties, PartialEq)]
pub struct LeftoversProps {
    /// The node's address.
    pub node: AttrValue,
    /// Name prefixes of this tab's runs still in use (never offered).
    pub exclude: Vec<String>,
}

/// What the leftovers panel shows.
#[derive(Debug, Clone, PartialEq)]
enum Listing {
    NotLooked,
    Looking,
    Found(Rc<Vec<SentantRef>>),
    Failed(String),
}

/// Request timeout for the leftovers panel's few requests (ms).
const TIMEOUT_MS: u32 = 10_000;

async fn find(node: &str, exclude: &[String]) -> Result<Vec<SentantRef>, NetError> {
    let http = Client::new(node, Some(TIMEOUT_MS));
    Ok(http
        .sentant_all(Fields::Short)
        .await?
        .into_iter()
        .filter(|s| {
            is_r2_stress_name(&s.name) && !exclude.iter().any(|p| s.name.starts_with(p.as_str()))
        })
        .collect())
}

/// Unloads each of `ids`; returns the ones that could not be unloaded, with why.
async fn unload(node: &str, ids: Vec<String>) -> Vec<String> {
    let http = Client::new(node, Some(TIMEOUT_MS));
    let mut failed = Vec::new();
    for id in ids {
        if let Err(err) = http.request(&Request::SentantUnload { id: &id }).await {
            failed.push(format!("{id}: {err}"));
        }
    }
    failed
}

#[function_component(Leftovers)]
pub fn leftovers(props: &LeftoversProps) -> Html {
    let listing = use_state(|| Listing::NotLooked);
    let selected = use_state(BTreeSet::<String>::new);
    let report = use_state(|| None::<String>);

    let look = {
        let (listing, selected) = (listing.clone(), selected.clone());
        let (node, exclude) = (props.node.to_string(), props.exclude.clone());
        Callback::from(move |_| {
            let (listing, selected) = (listing.clone(), selected.clone());
            let (node, exclude) = (node.clone(), exclude.clone());
            listing.set(Listing::Looking);
            spawn_local(async move {
                selected.set(BTreeSet::new());
                listing.set(match find(&node, &exclude).await {
                    Ok(found) => Listing::Found(Rc::new(found)),
                    Err(err) => Listing::Failed(err.to_string()),
                });
            });
        })
    };
    let delete = {
        let (listing, selected, report, look) = (
            listing.clone(),
            selected.clone(),
            report.clone(),
            look.clone(),
        );
        let node = props.node.to_string();
        Callback::from(move |_| {
            let ids: Vec<String> = selected.iter().cloned().collect();
            let (report, look, node) = (report.clone(), look.clone(), node.clone());
            listing.set(Listing::Looking);
            spawn_local(async move {
                let count = ids.len();
                let failed = unload(&node, ids).await;
                report.set(Some(if failed.is_empty() {
                    format!("Deleted {count} leftover sentant(s).")
                } else {
                    format!(
                        "Could not delete {} of {count}: {}",
                        failed.len(),
                        failed.join("; ")
                    )
                }));
                look.emit(());
            });
        })
    };
    let toggle = |id: String| {
        let selected = selected.clone();
        Callback::from(move |_| {
            let mut next = (*selected).clone();
            if !next.remove(&id) {
                next.insert(id.clone());
            }
            selected.set(next);
        })
    };
    html! {
        <section class="leftovers" aria-label="leftovers of earlier runs">
            <h2>{ "Leftovers of earlier runs" }</h2>
            <p class="hint">{ "Sentants named like r2-stress devices (r2s-…) that no run in this tab owns. Only those you tick are deleted." }</p>
            <div class="buttons">
                <button id="b-leftovers-find" onclick={look.reform(|_| ())}>{ "Find leftovers" }</button>
                <button id="b-leftovers-delete" disabled={selected.is_empty()} onclick={delete}>
                    { format!("Delete selected ({})", selected.len()) }
                </button>
            </div>
            if let Some(report) = &*report { <p id="r2-leftovers-report">{ report }</p> }
            { match &*listing {
                Listing::NotLooked => html! {},
                Listing::Looking => html! { <p>{ "…" }</p> },
                Listing::Failed(why) => html! { <p class="error">{ why }</p> },
                Listing::Found(found) if found.is_empty() => html! { <p id="r2-leftovers-none">{ "None found." }</p> },
                Listing::Found(found) => html! {
                    <ul id="r2-leftovers">{ for found.iter().map(|s| html! {
                        <li><label>
                            <input type="checkbox" data-name={s.name.clone()} checked={selected.contains(&s.id)}
                                   onclick={toggle(s.id.clone())} />
                            { format!(" {}", s.name) }
                        </label></li>
                    }) }</ul>
                },
            } }
        </section>
    }
}
