//! A device's recent sends, and which one each of its `update` signals
//! answers.
//!
//! The sensor page fires `set_sensor {sensor: v}` and `update {}` together,
//! on separate connections, so the node may run the `update` first: its
//! signal then carries the previous value, and `v` first comes back with a
//! *later* `update`'s signal, up to a send period afterwards. That arrival is
//! **stale**: counted, but not a latency sample (it would be a send period of
//! latency the node never took).
//!
//! Each signal stands for one `update`, answered in order: the oldest one
//! still awaiting its signal. A send whose `update`'s signal carried another
//! value was overtaken, and its value, when it comes, is stale. A signal
//! carrying the value of a send still awaiting its own `update`'s signal is
//! fresh, and puts the queue back in step (earlier `update`s whose signals
//! were lost, in a dropped socket say, are taken as overtaken). The `update`
//! a device sends on connecting, with no value, takes its place in the queue.

use std::collections::VecDeque;

/// Sends remembered per device (a device sends at most 5 a second).
pub const RECENT_SENDS: usize = 8;

/// Where a send's echo is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Echo {
    /// Neither its value nor its `update`'s signal has come back.
    Awaited,
    /// Its `update`'s signal came back carrying another value.
    Overtaken,
    /// Its value came back.
    Done,
}

/// One `update` sent, with the value set before it (none for the `update`
/// sent on connecting).
#[derive(Debug, Clone, Copy)]
struct Sent {
    value: Option<i64>,
    actual_ms: f64,
    intended_ms: f64,
    echo: Echo,
}

/// What a signal was, for a device's measures.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SignalMatch {
    /// The first signal carrying a value sent, from its own `update` (or an
    /// earlier one): its send's planned and actual times.
    Fresh { intended_ms: f64, sent_ms: f64 },
    /// The first signal carrying a value sent, from a later `update` that
    /// overtook the value's `set_sensor`.
    Stale,
    /// A signal carrying no value sent and still awaited (the answer to the
    /// `update` on connecting, a repeat, a value already seen, no value).
    Unmatched,
}

/// A device's last [`RECENT_SENDS`] `update`s.
#[derive(Debug, Clone, Default)]
pub struct RecentSends {
    sends: VecDeque<Sent>,
}

impl RecentSends {
    pub fn new() -> RecentSends {
        RecentSends {
            sends: VecDeque::with_capacity(RECENT_SENDS),
        }
    }

    /// `set_sensor {sensor: value}` and `update {}` left at `actual_ms`,
    /// planned for `intended_ms`.
    pub fn sent(&mut self, value: i64, intended_ms: f64, actual_ms: f64) {
        self.push(Sent {
            value: Some(value),
            actual_ms,
            intended_ms,
            echo: Echo::Awaited,
        });
    }

    /// `update {}` alone (on connecting) left at `actual_ms`.
    pub fn update_sent(&mut self, actual_ms: f64) {
        self.push(Sent {
            value: None,
            actual_ms,
            intended_ms: actual_ms,
            echo: Echo::Awaited,
        });
    }

    fn push(&mut self, sent: Sent) {
        if self.sends.len() == RECENT_SENDS {
            self.sends.pop_front();
        }
        self.sends.push_back(sent);
    }

    /// When the last value sent left, if any was.
    pub fn last_sent_ms(&self) -> Option<f64> {
        self.sends
            .iter()
            .rev()
            .find(|s| s.value.is_some())
            .map(|s| s.actual_ms)
    }

    /// When `value` was last sent (ms), if it is still remembered.
    pub fn sent_at(&self, value: i64) -> Option<f64> {
        self.sends
            .iter()
            .rev()
            .find(|s| s.value == Some(value))
            .map(|s| s.actual_ms)
    }

    /// Whether the last value sent still waits for its signal.
    pub fn awaits_signal(&self) -> bool {
        self.sends
            .iter()
            .rev()
            .find(|s| s.value.is_some())
            .is_some_and(|s| s.echo == Echo::Awaited)
    }

    /// An `update` signal arrived carrying `value` (`None`: no value yet,
    /// the sentant's state before any `set_sensor`): which send it answers.
    pub fn on_signal(&mut self, value: Option<i64>) -> SignalMatch {
        let carried = value.and_then(|value| {
            self.sends
                .iter()
                .rposition(|s| s.value == Some(value) && s.echo != Echo::Done)
        });
        let Some(at) = carried else {
            self.overtake_oldest();
            return SignalMatch::Unmatched;
        };
        let sent = &mut self.sends[at];
        match std::mem::replace(&mut sent.echo, Echo::Done) {
            Echo::Overtaken => {
                self.overtake_oldest();
                SignalMatch::Stale
            }
            _ => {
                let fresh = SignalMatch::Fresh {
                    intended_ms: sent.intended_ms,
                    sent_ms: sent.actual_ms,
                };
                // In step again: every earlier `update` has had its signal.
                for earlier in self.sends.range_mut(..at) {
                    if earlier.echo == Echo::Awaited {
                        earlier.echo = Echo::Overtaken;
                    }
                }
                fresh
            }
        }
    }

    /// The signal answered the oldest `update` still awaiting one, with
    /// another value than its own.
    fn overtake_oldest(&mut self) {
        if let Some(oldest) = self.sends.iter_mut().find(|s| s.echo == Echo::Awaited) {
            oldest.echo = if oldest.value.is_some() {
                Echo::Overtaken
            } else {
                Echo::Done
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fresh(intended_ms: f64, sent_ms: f64) -> SignalMatch {
        SignalMatch::Fresh {
            intended_ms,
            sent_ms,
        }
    }

    #[test]
    fn each_update_answered_in_turn_is_fresh() {
        let mut r = RecentSends::new();
        r.sent(10, 0.0, 1.0);
        assert!(r.awaits_signal());
        assert_eq!(r.on_signal(Some(10)), fresh(0.0, 1.0));
        assert!(!r.awaits_signal());
        // A slow node: the next value leaves before the last one's signal.
        r.sent(20, 300.0, 300.0);
        r.sent(30, 600.0, 600.0);
        assert_eq!(r.on_signal(Some(20)), fresh(300.0, 300.0));
        assert_eq!(r.on_signal(Some(30)), fresh(600.0, 600.0));
        // A repeat of a value seen carries nothing new.
        assert_eq!(r.on_signal(Some(30)), SignalMatch::Unmatched);
        assert_eq!(r.sent_at(20), Some(300.0));
        assert_eq!(r.last_sent_ms(), Some(600.0));
    }

    #[test]
    fn a_value_brought_by_a_later_update_is_stale() {
        let mut r = RecentSends::new();
        r.sent(10, 0.0, 0.0);
        assert_eq!(r.on_signal(Some(10)), fresh(0.0, 0.0));
        // `update` runs before `set_sensor {20}`: its signal carries 10.
        r.sent(20, 300.0, 300.0);
        assert_eq!(r.on_signal(Some(10)), SignalMatch::Unmatched);
        // 20 comes with the next send's `update`, which also ran before its
        // own `set_sensor {30}`.
        r.sent(30, 1000.0, 1000.0);
        assert_eq!(r.on_signal(Some(20)), SignalMatch::Stale);
        // And so on while every `update` overtakes its `set_sensor`.
        r.sent(40, 1500.0, 1500.0);
        assert_eq!(r.on_signal(Some(30)), SignalMatch::Stale);
        // Back in step: this `update` ran after its own `set_sensor`.
        r.sent(50, 2000.0, 2000.0);
        assert_eq!(r.on_signal(Some(50)), fresh(2000.0, 2000.0));
        // 40's own signal never came; it is not awaited any more.
        assert_eq!(r.on_signal(Some(40)), SignalMatch::Stale);
        r.sent(60, 2500.0, 2500.0);
        assert_eq!(r.on_signal(Some(60)), fresh(2500.0, 2500.0));
    }

    #[test]
    fn an_update_that_overtook_the_first_value_brings_no_value() {
        let mut r = RecentSends::new();
        r.update_sent(0.0);
        assert_eq!(r.on_signal(None), SignalMatch::Unmatched);
        // The first value's `update` ran before its `set_sensor`: the
        // sentant has no value yet.
        r.sent(10, 100.0, 100.0);
        assert_eq!(r.on_signal(None), SignalMatch::Unmatched);
        r.sent(20, 400.0, 400.0);
        assert_eq!(r.on_signal(Some(10)), SignalMatch::Stale);
    }

    #[test]
    fn a_lost_signal_does_not_make_the_next_one_stale() {
        let mut r = RecentSends::new();
        r.sent(10, 0.0, 0.0);
        // 10's signal was lost (a dropped socket).
        r.sent(20, 300.0, 300.0);
        assert_eq!(r.on_signal(Some(20)), fresh(300.0, 300.0));
        r.sent(30, 600.0, 600.0);
        assert_eq!(r.on_signal(Some(30)), fresh(600.0, 600.0));
    }

    #[test]
    fn the_update_on_connecting_takes_its_turn() {
        let mut r = RecentSends::new();
        r.sent(10, 0.0, 0.0);
        r.update_sent(5.0);
        assert!(r.awaits_signal(), "a value still waits");
        assert_eq!(r.on_signal(Some(10)), fresh(0.0, 0.0));
        // The connect's own signal: nothing new, and the queue stays in step.
        assert_eq!(r.on_signal(Some(10)), SignalMatch::Unmatched);
        r.sent(20, 300.0, 300.0);
        assert_eq!(r.on_signal(Some(20)), fresh(300.0, 300.0));
        // The connect's update answered first, with the current value.
        r.update_sent(400.0);
        r.sent(30, 500.0, 500.0);
        assert_eq!(r.on_signal(Some(20)), SignalMatch::Unmatched);
        assert_eq!(r.on_signal(Some(30)), fresh(500.0, 500.0));
    }

    #[test]
    fn only_the_last_sends_are_remembered() {
        let mut r = RecentSends::new();
        for i in 0..20 {
            r.sent(i, f64::from(i as u32), f64::from(i as u32));
        }
        assert_eq!(r.sent_at(0), None);
        assert_eq!(r.sent_at(19), Some(19.0));
        assert_eq!(r.sends.len(), RECENT_SENDS);
    }
}
