//! The sensor page's send throttle: change-only, at most one send per 200 ms.
//!
//! The WebApp's `deviceorientation` handler does
//! `v = Math.floor(alpha); if (v !== last && now - lastTime >= 200) { send(v); last = v; lastTime = now }`
//! with `last = 0` and `lastTime = 0` (the epoch) at the start: so the first
//! reading is sent at once unless it floors to 0. [`Throttle`] does the same
//! with times in milliseconds from any clock.

/// The minimum time between two sends, in milliseconds.
pub const THROTTLE_MS: f64 = 200.0;

/// What a device has sent, deciding whether a new reading goes out.
#[derive(Debug, Clone, PartialEq)]
pub struct Throttle {
    /// The last value sent; the WebApp starts from 0.
    last_value: Option<i64>,
    /// When the last value was sent; `None` = never.
    last_sent_ms: Option<f64>,
}

impl Default for Throttle {
    /// The WebApp's starting state: last value 0, nothing sent yet.
    fn default() -> Self {
        Throttle {
            last_value: Some(0),
            last_sent_ms: None,
        }
    }
}

impl Throttle {
    /// The WebApp's starting state (see [`Default`]).
    pub fn new() -> Throttle {
        Throttle::default()
    }

    /// Offers a reading taken at `now_ms`. Returns the value to send (and
    /// records it as sent) when `floor(alpha)` differs from the last value
    /// sent and nothing was sent yet or at least [`THROTTLE_MS`] have passed.
    /// A non-finite `alpha` (no reading) is never sent.
    pub fn offer(&mut self, alpha: f64, now_ms: f64) -> Option<i64> {
        if !alpha.is_finite() {
            return None;
        }
        // Saturating cast: any finite alpha gives some i64, and real ones are within 0..360.
        let value = alpha.floor() as i64;
        let changed = self.last_value != Some(value);
        let rested = self
            .last_sent_ms
            .is_none_or(|last| now_ms - last >= THROTTLE_MS);
        if changed && rested {
            self.last_value = Some(value);
            self.last_sent_ms = Some(now_ms);
            Some(value)
        } else {
            None
        }
    }

    /// The last value sent (0 before any send, as in the WebApp).
    pub fn last_value(&self) -> Option<i64> {
        self.last_value
    }

    /// When the last value was sent.
    pub fn last_sent_ms(&self) -> Option<f64> {
        self.last_sent_ms
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sends_only_changes_at_most_every_200_ms() {
        let mut t = Throttle::new();
        assert_eq!(t.offer(10.9, 1000.0), Some(10));
        assert_eq!(t.offer(11.0, 1100.0), None, "too soon");
        assert_eq!(t.offer(10.2, 1300.0), None, "same value");
        assert_eq!(t.offer(12.5, 1199.9), None, "199.9 ms is too soon");
        assert_eq!(t.offer(12.5, 1200.0), Some(12), "exactly 200 ms is enough");
        assert_eq!(t.last_value(), Some(12));
        assert_eq!(t.last_sent_ms(), Some(1200.0));
    }

    #[test]
    fn starts_like_the_webapp() {
        let mut t = Throttle::new();
        assert_eq!(t.offer(0.7, 0.0), None, "floors to the initial 0");
        assert_eq!(t.offer(359.99, 0.0), Some(359), "first change goes at once");
    }

    #[test]
    fn non_finite_readings_are_ignored() {
        let mut t = Throttle::new();
        for alpha in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            assert_eq!(t.offer(alpha, 0.0), None);
        }
        assert_eq!(t.last_sent_ms(), None);
        assert_eq!(t.offer(-0.5, 0.0), Some(-1), "floor, not truncation");
    }
}
