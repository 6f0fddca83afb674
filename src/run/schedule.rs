//! The send scheduler: one task that sleeps until the earliest planned send
//! of any device, fires every send that is due, and plans each device's next.
//!
//! One timer for the whole run, not one per device: a device plans at most
//! five sends a second, so the heap holds one entry per live device.
//!
//! A turn fires at most [`MAX_SENDS_PER_TURN`] sends, then yields to the
//! event loop (a zero timeout) before it fires more, so a burst of due sends
//! never holds the main thread for long: answers, signals and drawing get
//! their turn in between.

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;

use gloo_timers::future::TimeoutFuture;

use super::{device, Run};

use crate::browser::now_ms;

/// How often the scheduler looks for devices that became live while
/// others still join (ms).
const JOINING_POLL_MS: f64 = 10.0;
/// Sends fired in one turn of the scheduler before it yields.
pub(crate) const MAX_SENDS_PER_TURN: usize = 64;

/// A planned send: when, and which device.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Due {
    at_ms: f64,
    device: u32,
}

impl Eq for Due {}

impl Ord for Due {
    fn cmp(&self, other: &Self) -> Ordering {
        self.at_ms
            .total_cmp(&other.at_ms)
            .then(self.device.cmp(&other.device))
    }
}

impl PartialOrd for Due {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// The devices' next sends, earliest first.
#[derive(Debug, Default)]
pub(crate) struct Scheduler {
    heap: BinaryHeap<Reverse<Due>>,
}

impl Scheduler {
    pub(crate) fn push(&mut self, at_ms: f64, device: u32) {
        self.heap.push(Reverse(Due { at_ms, device }));
    }

    pub(crate) fn clear(&mut self) {
        self.heap.clear();
    }

    fn next_at(&self) -> Option<f64> {
        self.heap.peek().map(|Reverse(due)| due.at_ms)
    }

    /// One turn's sends: the devices due by `now_ms`, earliest first, at
    /// most [`MAX_SENDS_PER_TURN`] of them (the rest stay due).
    fn take_turn(&mut self, now_ms: f64) -> Vec<u32> {
        std::iter::from_fn(|| self.pop_due(now_ms))
            .take(MAX_SENDS_PER_TURN)
            .collect()
    }

    fn pop_due(&mut self, now_ms: f64) -> Option<u32> {
        match self.heap.peek() {
            Some(Reverse(due)) if due.at_ms <= now_ms => {
                self.heap.pop().map(|Reverse(due)| due.device)
            }
            _ => None,
        }
    }
}

/// Fires sends until `ends_ms` or until the run leaves `generation`.
pub(crate) async fn run(run: Run, generation: u64, ends_ms: f64) {
    loop {
        let wait = run.with(|inner| {
            if inner.generation != generation {
                return None;
            }
            let now = now_ms();
            for index in inner.scheduler.take_turn(now) {
                device::fire_send(&run, inner, index);
            }
            let mut next = inner.scheduler.next_at().unwrap_or(ends_ms).min(ends_ms);
            if inner.devices.iter().any(|d| d.is_joining()) {
                // A device may become live any moment (profile `webapp`), and its
                // first send may be due before the next one planned now.
                next = next.min(now + JOINING_POLL_MS);
            }
            // Sends still due (more than a turn's worth) give a wait of 0: a yield.
            Some(next - now)
        });
        match wait {
            None => return,
            Some(_) if now_ms() >= ends_ms => return,
            Some(wait) => TimeoutFuture::new(wait.ceil().max(0.0) as u32).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_turn_fires_at_most_its_share_of_a_burst_earliest_first() {
        let mut scheduler = Scheduler::default();
        for device in 0..200u32 {
            scheduler.push(f64::from(device % 7), device);
        }
        scheduler.push(50.0, 999);
        let mut turns = Vec::new();
        loop {
            let turn = scheduler.take_turn(10.0);
            if turn.is_empty() {
                break;
            }
            turns.push(turn);
        }
        let sizes: Vec<usize> = turns.iter().map(Vec::len).collect();
        assert_eq!(sizes, [64, 64, 64, 8]);
        let order: Vec<u32> = turns.concat();
        assert!(order
            .windows(2)
            .all(|w| (w[0] % 7, w[0]) < (w[1] % 7, w[1])));
        assert_eq!(
            scheduler.next_at(),
            Some(50.0),
            "not yet due: left for later"
        );
    }
}
