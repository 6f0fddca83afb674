//! The tab's HTTP requests in flight, held under what Chromium lets one
//! renderer process have.
//!
//! Chromium refuses a renderer process's requests past a limit: the one
//! past it fails at once (by Chromium's source, `net::ERR_INSUFFICIENT_RESOURCES`
//! past [`CHROMIUM_LOADERS_PER_PROCESS`]), which a page sees as "Failed to
//! fetch". A phone never comes near it, but a tab of thousands of devices
//! joining on a busy machine does, and would count as the node's failure
//! what is the tab's. So each engine lets at most its share of
//! [`TAB_FETCH_CAP`] requests be in flight (the engines of a split run share
//! the page's renderer process); the others wait, in the order they came,
//! for a slot (`fetch_slots=N` sets the tab's cap, up to
//! [`MAX_FETCH_SLOTS`]), and are counted: a request that waited is a sign
//! that the tab, not the node, was the bottleneck.
//!
//! [`FetchGate`] is the pure part: a count of slots held and a queue of
//! waiters (whatever the caller wakes them with).

use std::collections::VecDeque;

use crate::shard::Shard;

/// Requests one renderer process may have in flight in Chromium's network
/// service, by Chromium's source (`NetworkContext::kMaxOutstandingRequestsPerProcess`).
pub const CHROMIUM_LOADERS_PER_PROCESS: u32 = 2700;

/// Requests a tab's engines may have in flight together unless
/// `fetch_slots` says otherwise. Measured in headless Chromium 156 (the
/// benchmark's machine): 2,000 `transport=socket` devices in two workers,
/// joining 400 a second, lost 479 to 588 requests as "Failed to fetch" with
/// 1,536, 1,792 or 2,048 slots, and none with 1,024 or 1,280. Chromium's
/// network log of the 2,048 run shows every request that reached its network
/// stack answered, at most 1,350 of them alive at once: the ones that failed
/// were refused before it, well under the limit above.
pub const TAB_FETCH_CAP: u32 = 1024;

/// The most `fetch_slots` may be set to: under Chromium's limit per process,
/// with room for the page's own loads and sockets.
pub const MAX_FETCH_SLOTS: u32 = 2048;

const _: () = assert!(TAB_FETCH_CAP <= MAX_FETCH_SLOTS);
const _: () = assert!(MAX_FETCH_SLOTS < CHROMIUM_LOADERS_PER_PROCESS);

/// Slots for requests in flight, and the requests waiting for one.
#[derive(Debug)]
pub struct FetchGate<W> {
    cap: u32,
    held: u32,
    waiting: VecDeque<W>,
    waited: u64,
}

impl<W> FetchGate<W> {
    /// A gate of `cap` slots (at least one).
    pub fn new(cap: u32) -> FetchGate<W> {
        FetchGate {
            cap: cap.max(1),
            held: 0,
            waiting: VecDeque::new(),
            waited: 0,
        }
    }

    /// The gate of one engine of a run split as `shard` whose tab may have
    /// `tab_slots` requests in flight ([`crate::config::RunConfig::fetch_slots`]):
    /// its share of them.
    pub fn for_shard(tab_slots: u32, shard: Shard) -> FetchGate<W> {
        FetchGate::new(tab_slots / shard.count.max(1))
    }

    /// Takes a slot if one is free (`true`); otherwise the caller waits with
    /// [`FetchGate::wait`].
    pub fn enter(&mut self) -> bool {
        if self.held < self.cap && self.waiting.is_empty() {
            self.held += 1;
            true
        } else {
            false
        }
    }

    /// Queues `waiter` for the next free slot.
    pub fn wait(&mut self, waiter: W) {
        self.waited += 1;
        self.waiting.push_back(waiter);
    }

    /// Gives a slot back: it passes to the first waiter that `hand_over`
    /// accepts (`false`: that waiter is gone, try the next), or is freed.
    pub fn leave(&mut self, mut hand_over: impl FnMut(W) -> bool) {
        while let Some(waiter) = self.waiting.pop_front() {
            if hand_over(waiter) {
                return;
            }
        }
        self.held = self.held.saturating_sub(1);
    }

    /// Drops every waiter (their requests are not to be sent); how many.
    pub fn cancel_waiting(&mut self) -> usize {
        let dropped = self.waiting.len();
        self.waiting.clear();
        dropped
    }

    /// Slots held now.
    pub fn held(&self) -> u32 {
        self.held
    }

    /// Requests waiting now.
    pub fn queued(&self) -> usize {
        self.waiting.len()
    }

    /// Requests that had to wait for a slot, so far.
    pub fn waited(&self) -> u64 {
        self.waited
    }

    pub fn cap(&self) -> u32 {
        self.cap
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_past_the_cap_wait_in_order_and_take_the_freed_slots() {
        let mut gate = FetchGate::new(2);
        assert!(gate.enter() && gate.enter());
        assert!(!gate.enter(), "full");
        gate.wait("third");
        gate.wait("fourth");
        assert_eq!((gate.held(), gate.queued(), gate.waited()), (2, 2, 2));
        let mut woken = Vec::new();
        gate.leave(|w| {
            woken.push(w);
            true
        });
        assert_eq!(woken, ["third"], "the first to wait goes first");
        assert_eq!(gate.held(), 2, "its slot passed on, not freed");
        assert!(!gate.enter(), "no overtaking the queue");
        gate.wait("fifth");
        // "fourth" gave up waiting: the slot goes to "fifth".
        gate.leave(|w| {
            woken.push(w);
            w != "fourth"
        });
        assert_eq!(woken, ["third", "fourth", "fifth"]);
        assert_eq!((gate.held(), gate.queued()), (2, 0));
        gate.leave(|_| true);
        gate.leave(|_| true);
        assert_eq!(gate.held(), 0);
        gate.leave(|_| true);
        assert_eq!(gate.held(), 0, "never below zero");
        assert!(gate.enter());
        assert_eq!(gate.waited(), 3);
        gate.wait("sixth");
        gate.wait("seventh");
        assert_eq!(
            (gate.cancel_waiting(), gate.queued(), gate.held()),
            (2, 0, 1)
        );
    }

    #[test]
    fn split_engines_share_the_tab_cap_under_chromium_s_limit() {
        let whole: FetchGate<()> = FetchGate::for_shard(TAB_FETCH_CAP, Shard::WHOLE);
        assert_eq!(whole.cap(), TAB_FETCH_CAP);
        let share: FetchGate<()> =
            FetchGate::for_shard(TAB_FETCH_CAP, Shard { index: 1, count: 3 });
        assert_eq!(share.cap(), TAB_FETCH_CAP / 3);
        let few: FetchGate<()> = FetchGate::for_shard(2, Shard { index: 2, count: 3 });
        assert_eq!(few.cap(), 1, "every engine keeps a slot");
        assert_eq!(FetchGate::<()>::new(0).cap(), 1);
    }
}
