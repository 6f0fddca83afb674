//! The page's UI state, pure: the form's raw fields, the form's error, the
//! latest snapshot of the run. Components dispatch [`Action`]s; nothing here
//! touches the browser or the network.

use std::collections::BTreeMap;
use std::rc::Rc;

use r2_core::config::{ConfigError, RunConfig};
use yew::Reducible;

use crate::run::Snapshot;

/// The form's fields, in the order they are shown, with their query-string names.
pub const FIELDS: &[(&str, &str)] = &[
    ("node", "Node address"),
    ("devices", "Devices"),
    ("profile", "Profile"),
    ("scenario", "Scenario"),
    ("duration", "Duration (s)"),
    ("sockets", "Subscriptions"),
    ("reconnect", "On a dropped socket"),
    ("join_rate", "Join rate (devices/s)"),
    ("seed", "Seed"),
    ("max_p99_ms", "Pass if p99 ≤ (ms)"),
    ("max_error_pct", "Pass if errors ≤ (%)"),
];

/// What the page shows.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AppState {
    /// Raw form values by query-string name.
    pub fields: BTreeMap<String, String>,
    /// Flags and thresholds from the URL that the form does not show.
    pub extra_query: String,
    /// Why the form's values cannot run, if they cannot.
    pub form_error: Option<String>,
    /// The run's state, a few times a second.
    pub snapshot: Option<Rc<Snapshot>>,
}

/// What components ask of the state.
pub enum Action {
    /// A form field changed.
    Edit { field: String, value: String },
    /// A fresh snapshot of the run.
    Snapshot(Rc<Snapshot>),
    /// An error to show above the form.
    Error(String),
}

impl AppState {
    /// The state for a page opened with `config` (from its URL), whose own origin is `origin`.
    pub fn new(config: &RunConfig, extra_query: String, origin: &str) -> AppState {
        let mut fields: BTreeMap<String, String> = BTreeMap::new();
        for (k, v) in form_urlencoded::parse(config.to_query().as_bytes()) {
            if FIELDS.iter().any(|(name, _)| *name == k) {
                fields.insert(k.into_owned(), v.into_owned());
            }
        }
        fields
            .entry("node".into())
            .or_insert_with(|| origin.to_owned());
        AppState {
            fields,
            extra_query,
            form_error: None,
            snapshot: None,
        }
    }

    /// The run configuration the form describes.
    pub fn config(&self) -> Result<RunConfig, ConfigError> {
        let mut query = form_urlencoded::Serializer::new(String::new());
        for (k, v) in self.fields.iter().filter(|(_, v)| !v.trim().is_empty()) {
            query.append_pair(k, v.trim());
        }
        let mut query = query.finish();
        if !self.extra_query.is_empty() {
            query = format!("{query}&{}", self.extra_query);
        }
        RunConfig::from_query(&query)
    }
}

impl Reducible for AppState {
    type Action = Action;

    fn reduce(self: Rc<Self>, action: Action) -> Rc<Self> {
        let mut next = (*self).clone();
        match action {
            Action::Edit { field, value } => {
                next.fields.insert(field, value);
                next.form_error = next.config().err().map(|e| e.to_string());
            }
            Action::Snapshot(snapshot) => {
                if self.snapshot.as_deref() == Some(&*snapshot) {
                    return self;
                }
                next.snapshot = Some(snapshot);
            }
            Action::Error(message) => next.form_error = Some(message),
        }
        Rc::new(next)
    }
}
