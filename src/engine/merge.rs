//! The snapshots of a split run's engines made into the one the page draws
//! (issue 12: a run's devices over several Web Workers).
//!
//! Counts add up, tiles follow each other in device order (engine `k` runs
//! the `k`-th contiguous share), the 1-second series merge second by
//! second, and the phase is the least advanced engine's (any failure wins).
//! The summary is made once every engine has handed over what it measured
//! ([`ShardResult`]): merged metrics give percentiles of the whole run, not
//! of one share.

use std::rc::Rc;

use r2_core::config::RunConfig;
use r2_core::metrics::merge_buckets;
use r2_core::shard::merge_results;
use r2_core::summary::Summary;

use crate::heap::HeapUse;
use crate::run::{latency_histogram, Phase, Snapshot, LIVE_SECONDS};

/// How far a phase is along a run's life (a failure is apart).
fn rank(phase: &Phase) -> u8 {
    match phase {
        Phase::Creating => 0,
        Phase::Ready => 1,
        Phase::Running { .. } => 2,
        Phase::Stopping => 3,
        Phase::Stopped => 4,
        Phase::Deleting => 5,
        Phase::Deleted => 6,
        Phase::Failed(_) => 7,
    }
}

/// The run's phase from its engines': the first failure, else the least
/// advanced.
pub fn phase<'a>(phases: impl IntoIterator<Item = &'a Phase> + Clone) -> Phase {
    if let Some(failed) = phases
        .clone()
        .into_iter()
        .find(|p| matches!(p, Phase::Failed(_)))
    {
        return failed.clone();
    }
    phases
        .into_iter()
        .min_by_key(|p| rank(p))
        .cloned()
        .unwrap_or(Phase::Creating)
}

/// One snapshot of the whole run from every engine's latest, in shard
/// order; `config` is the run's (its summary's).
pub fn snapshots(parts: &[Rc<Snapshot>], config: &RunConfig) -> Snapshot {
    let sum32 = |f: fn(&Snapshot) -> u32| parts.iter().map(|s| f(s)).sum::<u32>();
    let sum64 = |f: fn(&Snapshot) -> u64| parts.iter().map(|s| f(s)).sum::<u64>();
    let sumf = |f: fn(&Snapshot) -> f64| parts.iter().map(|s| f(s)).sum::<f64>();
    let series = merge_buckets(parts.iter().map(|s| s.series.as_slice()));
    let skip = series.len().saturating_sub(LIVE_SECONDS);
    let results: Option<Vec<_>> = parts.iter().map(|s| s.result.clone()).collect();
    let merged = results.and_then(|r| merge_results(r.iter().map(|r| &**r)));
    let (summary, latency_histogram) = match merged {
        Some((metrics, facts)) => (
            Some(Rc::new(Summary::from_metrics(&metrics, config, facts))),
            latency_histogram(&metrics),
        ),
        None => (None, Vec::new()),
    };
    Snapshot {
        phase: phase(parts.iter().map(|s| &s.phase)),
        prefix: parts.first().map(|s| s.prefix.clone()).unwrap_or_default(),
        requested: sum32(|s| s.requested),
        joined: sum32(|s| s.joined),
        live: sum32(|s| s.live),
        failed: sum32(|s| s.failed),
        deleted: sum32(|s| s.deleted),
        sockets_live: sum32(|s| s.sockets_live),
        sends_ok: sum64(|s| s.sends_ok),
        sends_failed: sum64(|s| s.sends_failed),
        signals: sum64(|s| s.signals),
        projector_signals: sum64(|s| s.projector_signals),
        view_signals: sum64(|s| s.view_signals),
        errors: sum64(|s| s.errors),
        sends_per_s: sumf(|s| s.sends_per_s),
        signals_per_s: sumf(|s| s.signals_per_s),
        fetch_queue: sum32(|s| s.fetch_queue),
        remaining_s: parts.iter().filter_map(|s| s.remaining_s).reduce(f64::max),
        started_wall_ms: parts
            .iter()
            .filter_map(|s| s.started_wall_ms)
            .reduce(f64::min),
        tiles: Rc::new(parts.iter().flat_map(|s| s.tiles.iter().copied()).collect()),
        series: Rc::new(series.into_iter().skip(skip).collect()),
        bottleneck: parts.iter().find_map(|s| s.bottleneck.clone()),
        latency_histogram,
        summary,
        leftovers: parts
            .iter()
            .flat_map(|s| s.leftovers.iter().cloned())
            .collect(),
        hidden: parts.iter().any(|s| s.hidden),
        hidden_s: parts.iter().map(|s| s.hidden_s).fold(0.0, f64::max),
        worker_wasm_bytes: sum64(|s| s.worker_wasm_bytes),
        engine_heap: parts
            .iter()
            .fold(HeapUse::default(), |all, s| all.plus(s.engine_heap)),
        result: None,
    }
}
