//! Where a tab's own CPU time goes, by function: V8's sampling profiles
//! (`Profiler.Profile`, one per target: the page and each of its workers)
//! summed over a run's scenario phase.
//!
//! Each sample lasts until the next one (`timeDeltas[i + 1]`; the last until
//! the profile's `endTime`). A function's **self** time is the time of the
//! samples taken in it; its **total** time that of the samples with it
//! anywhere on the stack (counted once per sample however deep it recurses).
//! Rust functions compiled to wasm keep their names (the page is built
//! without `wasm-opt`), their hash suffix dropped so the same function in the
//! page and in a worker sums.
//!
//! # Layout
//!
//! - [`CpuProfile::from_profiles`]: the sums.
//! - [`CpuProfile::to_markdown`]: the tables `r2-bench --profile` prints.

use std::collections::HashMap;

use serde_json::Value;

/// What kind of code a function is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Place {
    /// The page's Rust, compiled to wasm.
    Wasm,
    /// JavaScript: the wasm-bindgen glue, the loader, DevTools' own.
    Js,
    /// V8 and Blink themselves: `(program)`, `(garbage collector)`, and
    /// built-ins without a script.
    Engine,
}

impl Place {
    fn label(self) -> &'static str {
        match self {
            Place::Wasm => "wasm",
            Place::Js => "JS",
            Place::Engine => "engine",
        }
    }
}

/// One function's time over every profile.
#[derive(Debug, Clone, PartialEq)]
pub struct FunctionTime {
    pub name: String,
    pub place: Place,
    pub self_ms: f64,
    pub total_ms: f64,
}

/// The sums of a run's profiles.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CpuProfile {
    /// How many targets' profiles were summed.
    pub targets: usize,
    /// Time the targets were profiled, summed (each target's own span).
    pub span_ms: f64,
    /// Of that, the time their threads were idle.
    pub idle_ms: f64,
    /// Every function that was sampled, the most self time first.
    pub functions: Vec<FunctionTime>,
}

/// A profile's node: its function, and its parent's index.
struct Node {
    function: usize,
    parent: Option<usize>,
}

impl CpuProfile {
    /// Sums `profiles` (malformed parts are skipped: a profile without
    /// samples adds nothing).
    pub fn from_profiles(profiles: &[Value]) -> CpuProfile {
        let mut sums = Sums::default();
        for profile in profiles {
            sums.add(profile);
        }
        let mut functions: Vec<FunctionTime> = sums
            .keys
            .into_iter()
            .zip(sums.times)
            .filter(|((name, _), _)| !matches!(name.as_str(), "(root)" | "(idle)"))
            .map(|((name, place), (self_ms, total_ms))| FunctionTime {
                name,
                place,
                self_ms,
                total_ms,
            })
            .collect();
        functions.sort_by(|a, b| b.self_ms.total_cmp(&a.self_ms).then(a.name.cmp(&b.name)));
        CpuProfile {
            targets: sums.targets,
            span_ms: sums.span_ms,
            idle_ms: sums.idle_ms,
            functions,
        }
    }

    /// The time the targets' threads were busy.
    pub fn busy_ms(&self) -> f64 {
        self.functions.iter().map(|f| f.self_ms).sum()
    }

    /// Busy time by kind of code.
    pub fn by_place(&self) -> Vec<(Place, f64)> {
        let mut sums: HashMap<Place, f64> = HashMap::new();
        for f in &self.functions {
            *sums.entry(f.place).or_default() += f.self_ms;
        }
        let mut sums: Vec<(Place, f64)> = sums.into_iter().collect();
        sums.sort_by_key(|(place, _)| *place);
        sums
    }

    /// Tables of the `top` functions by self time and by total time.
    pub fn to_markdown(&self, top: usize) -> String {
        let busy = self.busy_ms();
        let share = |ms: f64| if busy > 0.0 { 100.0 * ms / busy } else { 0.0 };
        let mut out = format!(
            "{} targets profiled for {:.1} s in all: busy {:.1} s, idle {:.1} s.\n\n",
            self.targets,
            self.span_ms / 1000.0,
            busy / 1000.0,
            self.idle_ms / 1000.0,
        );
        let places: Vec<String> = self
            .by_place()
            .iter()
            .map(|(place, ms)| format!("{} {:.0} ms ({:.1} %)", place.label(), ms, share(*ms)))
            .collect();
        out += &format!("Busy time by kind of code: {}.\n", places.join(", "));
        let table = |title: &str, key: fn(&FunctionTime) -> f64| {
            let mut rows: Vec<&FunctionTime> = self.functions.iter().collect();
            rows.sort_by(|a, b| key(b).total_cmp(&key(a)).then(a.name.cmp(&b.name)));
            let mut out = format!(
                "\n### {title}\n\n| function | code | self ms | self % of busy | total ms | total % of busy |\n| --- | --- | --- | --- | --- | --- |\n"
            );
            for f in rows.into_iter().take(top) {
                out += &format!(
                    "| `{}` | {} | {:.1} | {:.1} | {:.1} | {:.1} |\n",
                    f.name.replace('|', "\\|").replace('`', "'"),
                    f.place.label(),
                    f.self_ms,
                    share(f.self_ms),
                    f.total_ms,
                    share(f.total_ms),
                );
            }
            out
        };
        out += &table("By self time", |f| f.self_ms);
        out += &table("By total time (the function and what it called)", |f| {
            f.total_ms
        });
        out
    }
}

/// Running sums, functions by (name, place).
#[derive(Default)]
struct Sums {
    targets: usize,
    span_ms: f64,
    idle_ms: f64,
    index: HashMap<(String, Place), usize>,
    keys: Vec<(String, Place)>,
    /// (self, total) ms by function index.
    times: Vec<(f64, f64)>,
}

impl Sums {
    fn function(&mut self, key: (String, Place)) -> usize {
        if let Some(&i) = self.index.get(&key) {
            return i;
        }
        let i = self.keys.len();
        self.index.insert(key.clone(), i);
        self.keys.push(key);
        self.times.push((0.0, 0.0));
        i
    }

    fn add(&mut self, profile: &Value) {
        let (Some(nodes), Some(samples), Some(deltas)) = (
            profile["nodes"].as_array(),
            profile["samples"].as_array(),
            profile["timeDeltas"].as_array(),
        ) else {
            return;
        };
        self.targets += 1;
        let start = profile["startTime"].as_f64().unwrap_or(0.0);
        let end = profile["endTime"].as_f64().unwrap_or(start);
        self.span_ms += (end - start).max(0.0) / 1000.0;

        // Node ids to indices, each node's function, then parents.
        let mut by_id: HashMap<i64, usize> = HashMap::with_capacity(nodes.len());
        let mut tree: Vec<Node> = Vec::with_capacity(nodes.len());
        for (i, node) in nodes.iter().enumerate() {
            by_id.insert(node["id"].as_i64().unwrap_or(-1), i);
            let function = self.function(function_key(&node["callFrame"]));
            tree.push(Node {
                function,
                parent: None,
            });
        }
        for (i, node) in nodes.iter().enumerate() {
            for child in node["children"].as_array().into_iter().flatten() {
                if let Some(&c) = child.as_i64().and_then(|id| by_id.get(&id)) {
                    tree[c].parent = Some(i);
                }
            }
        }

        // Sample times: timestamps from the deltas; each lasts until the next.
        let mut stamps = Vec::with_capacity(deltas.len());
        let mut t = start;
        for delta in deltas {
            t += delta.as_f64().unwrap_or(0.0);
            stamps.push(t);
        }
        let idle = self
            .index
            .get(&("(idle)".to_owned(), Place::Engine))
            .copied();
        let mut seen: Vec<usize> = Vec::new();
        for (i, sample) in samples.iter().enumerate() {
            let Some(&leaf) = sample.as_i64().and_then(|id| by_id.get(&id)) else {
                continue;
            };
            let Some(&at) = stamps.get(i) else { break };
            let until = stamps.get(i + 1).copied().unwrap_or(end).max(at);
            let ms = (until - at) / 1000.0;
            let function = tree[leaf].function;
            if Some(function) == idle {
                self.idle_ms += ms;
                continue;
            }
            self.times[function].0 += ms;
            seen.clear();
            let mut node = Some(leaf);
            while let Some(n) = node {
                let f = tree[n].function;
                if !seen.contains(&f) {
                    seen.push(f);
                    self.times[f].1 += ms;
                }
                node = tree[n].parent;
            }
        }
    }
}

/// A call frame's function: its name without Rust's hash suffix, and what
/// kind of code it is.
fn function_key(frame: &Value) -> (String, Place) {
    let name = frame["functionName"].as_str().unwrap_or("");
    let url = frame["url"].as_str().unwrap_or("");
    let place = if url.ends_with(".wasm") || url.starts_with("wasm://") {
        Place::Wasm
    } else if url.is_empty() {
        Place::Engine
    } else {
        Place::Js
    };
    let name = strip_hash(name.trim_start_matches('$'));
    let name = if name.is_empty() {
        let file = url.rsplit('/').next().unwrap_or(url);
        let line = frame["lineNumber"].as_i64().unwrap_or(-1) + 1;
        format!("(anonymous) {file}:{line}")
    } else {
        name.to_owned()
    };
    (name, place)
}

/// `a::b::h0123456789abcdef` → `a::b`.
fn strip_hash(name: &str) -> &str {
    match name.rsplit_once("::h") {
        Some((head, hash)) if hash.len() == 16 && hash.bytes().all(|b| b.is_ascii_hexdigit()) => {
            head
        }
        _ => name,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn frame(name: &str, url: &str) -> Value {
        json!({ "functionName": name, "url": url, "lineNumber": 4 })
    }

    /// root → main (JS) → parse (wasm) → parse (wasm, recursing); and idle.
    fn profile() -> Value {
        json!({
            "nodes": [
                { "id": 1, "callFrame": frame("(root)", ""), "children": [2, 5] },
                { "id": 2, "callFrame": frame("main", "http://x/app.js"), "children": [3] },
                { "id": 3, "callFrame": frame("$r2_core::parse::h0123456789abcdef", "wasm://wasm/abc"), "children": [4] },
                { "id": 4, "callFrame": frame("r2_core::parse::hfedcba9876543210", "http://x/e_bg.wasm"), "children": [] },
                { "id": 5, "callFrame": frame("(idle)", ""), "children": [] },
            ],
            "startTime": 0,
            "endTime": 10_000,
            // Samples at 0, 1000, 3000, 6000 µs; the last lasts until 10 000.
            "samples": [2, 3, 4, 5],
            "timeDeltas": [0, 1000, 2000, 3000],
        })
    }

    #[test]
    fn self_and_total_times_sum_each_sample_once() {
        let p = CpuProfile::from_profiles(&[profile(), profile()]);
        assert_eq!(p.targets, 2);
        assert_eq!(p.span_ms, 20.0);
        assert_eq!(p.idle_ms, 8.0, "the idle sample lasts 4 ms in each");
        let parse = p
            .functions
            .iter()
            .find(|f| f.name == "r2_core::parse")
            .expect("parse");
        assert_eq!(parse.place, Place::Wasm);
        assert_eq!(
            (parse.self_ms, parse.total_ms),
            (10.0, 10.0),
            "2 + 3 ms in each, the recursion counted once"
        );
        let main = p.functions.iter().find(|f| f.name == "main").expect("main");
        assert_eq!((main.self_ms, main.total_ms), (2.0, 12.0));
        assert_eq!(p.busy_ms(), 12.0);
        assert_eq!(
            p.functions[0].name, "r2_core::parse",
            "the most self time first"
        );
        assert!(!p
            .functions
            .iter()
            .any(|f| f.name == "(root)" || f.name == "(idle)"));
        assert_eq!(p.by_place(), vec![(Place::Wasm, 10.0), (Place::Js, 2.0)]);
        let text = p.to_markdown(5);
        assert!(
            text.contains("| `r2_core::parse` | wasm | 10.0 | 83.3 | 10.0 | 83.3 |"),
            "{text}"
        );
    }

    #[test]
    fn malformed_profiles_add_nothing() {
        let p = CpuProfile::from_profiles(&[json!({}), json!({ "nodes": [] })]);
        assert_eq!(p, CpuProfile::default());
    }

    #[test]
    fn names_lose_only_a_rust_hash() {
        assert_eq!(strip_hash("a::b::h0123456789abcdef"), "a::b");
        assert_eq!(strip_hash("a::hash"), "a::hash");
        assert_eq!(strip_hash("a::h0123"), "a::h0123");
        let (name, place) = function_key(&frame("", "http://x/r2-stress.js"));
        assert_eq!(
            (name.as_str(), place),
            ("(anonymous) r2-stress.js:5", Place::Js)
        );
    }
}
