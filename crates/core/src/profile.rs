//! Profiles: what kind of client each virtual device is, and the load that
//! makes on a node — one place for each profile's wire shape in numbers.
//!
//! - [`Profile::WebApp`] (the default) is a phone running the real IoT
//!   WebApp, as `reality2-protocol.md` ("What one phone really does")
//!   describes it: two page loads, each with the monitor/view set-up one
//!   second after it loads (`view` redefined each time), the connect flow,
//!   the connect page's two sockets left open and silent until the node's idle
//!   timeout closes them, the sensor page's `sentantGet(id)` with the long
//!   fields and three sockets held (monitor `internal`, view `update`, its own
//!   `update`).
//! - [`Profile::Lean`] is one socket per device and the three requests of a
//!   join (`sentantAll`, `sentantLoad`, `sentantGet`): the earlier r2-stress
//!   device.
//! - [`Profile::Seed`] is the seed's Python script: no socket at all.
//!
//! [`Load`] turns a profile, a device count and a projector count into the
//! figures a user checks a run against — sockets held, POSTs per join,
//! frames the node pushes per `update` — and [`Load::check_socket_cap`]
//! refuses a run that needs more websockets than one browser holds, with the
//! way out, before it starts.
//!
//! # Layout
//!
//! - [`Profile`], [`Reconnect`]: the settings.
//! - [`Load`]: the expected load of a run, and the socket-cap check.
//! - [`SocketCapError`]: a run one browser cannot carry.

use serde::Serialize;

use crate::config::SocketsMode;
pub use crate::subscription::Reconnect;

word_enum! {
    /// What kind of client each virtual device is.
    #[derive(Default)]
    pub enum Profile {
        /// A phone running the real IoT WebApp (three sockets, the view fan-out, the join storm).
        #[default]
        WebApp = "webapp",
        /// One socket and three requests per join (the earlier r2-stress device).
        Lean = "lean",
        /// The seed's Python script: sends only, no socket.
        Seed = "seed",
    }
}

/// How many websockets Chromium lets one page open to one host (and about one
/// more in all per browser profile): past it, new sockets wait or fail.
pub const CHROMIUM_SOCKETS_PER_HOST: u64 = 255;

/// How many subscriptions one socket carries in `shared` mode.
pub const SUBSCRIPTIONS_PER_SHARED_SOCKET: u64 = 250;

/// The WebApp's page set-up runs this long after a page loads (its 1 s timer).
pub const SETUP_DELAY_MS: u32 = 1000;

/// A WebApp user presses "connect" this long after the connect page's set-up
/// began (the recorded phone: 1.13 s).
pub const CONNECT_AFTER_SETUP_MS: u32 = 1100;

impl Profile {
    /// Projector pages a run of this profile simulates when `viewers` is not given.
    pub fn default_viewers(self) -> u32 {
        match self {
            // A class always has a projector.
            Profile::WebApp => 1,
            Profile::Lean | Profile::Seed => 0,
        }
    }

    /// Whether a device of this profile holds sockets at all.
    pub fn has_sockets(self) -> bool {
        self != Profile::Seed
    }

    /// Whether a device may send as soon as its sensor card exists, while
    /// other devices are still joining (as phones do), rather than once
    /// every device has joined.
    pub fn sends_while_joining(self) -> bool {
        self == Profile::WebApp
    }

    /// Subscriptions one device holds: (during its first minute, afterwards).
    pub fn subscriptions_per_device(self) -> (u64, u64) {
        match self {
            // Sensor page: monitor, view, own device; plus the frozen connect
            // page's monitor and view until the node's idle timeout.
            Profile::WebApp => (5, 3),
            Profile::Lean => (1, 1),
            Profile::Seed => (0, 0),
        }
    }

    /// POSTs a device makes to join, before its `update` on connect
    /// (`first`: the first phone of a node also loads `monitor`).
    pub fn posts_per_join(self, first: bool) -> u64 {
        match self {
            // Connect page: sentantGet(monitor), sentantLoad(view), sentantAll,
            // sentantLoad(device), its monitor callback's sentantGet(id);
            // sensor page: sentantGet(monitor), sentantLoad(view), sentantGet(id).
            Profile::WebApp => 8 + u64::from(first),
            // sentantAll, sentantLoad, sentantGet.
            Profile::Lean | Profile::Seed => 3,
        }
    }

    /// Websocket opens of one join.
    pub fn socket_opens_per_join(self) -> u64 {
        self.subscriptions_per_device().0
    }
}

/// The load a run puts on a node, as the profile makes it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Load {
    pub profile: Profile,
    pub sockets_mode: SocketsMode,
    pub devices: u64,
    pub viewers: u64,
}

impl Load {
    pub fn new(profile: Profile, sockets_mode: SocketsMode, devices: u32, viewers: u32) -> Load {
        Load {
            profile,
            sockets_mode,
            devices: devices.into(),
            viewers: viewers.into(),
        }
    }

    /// Subscriptions held at the peak (every device in its first minute) and
    /// in steady state: the devices' and the projectors' (each projector page:
    /// monitor, view, and one card per device).
    pub fn subscriptions(&self) -> (u64, u64) {
        let (peak, steady) = match self.sockets_mode {
            SocketsMode::None => (0, 0),
            _ => self.profile.subscriptions_per_device(),
        };
        let projectors = self.viewers * (2 + self.devices);
        (
            self.devices * peak + projectors,
            self.devices * steady + projectors,
        )
    }

    /// Websockets the tab holds at the peak and in steady state: one per
    /// subscription as the WebApp opens them, or the shared sockets.
    pub fn sockets(&self) -> (u64, u64) {
        let (peak, steady) = self.subscriptions();
        match self.sockets_mode {
            SocketsMode::PerDevice => (peak, steady),
            SocketsMode::Shared => (
                peak.div_ceil(SUBSCRIPTIONS_PER_SHARED_SOCKET),
                steady.div_ceil(SUBSCRIPTIONS_PER_SHARED_SOCKET),
            ),
            SocketsMode::None => (0, 0),
        }
    }

    /// Frames the node pushes for one device `update` in steady state: the
    /// device's own subscription, each projector's card for it, and `view`'s
    /// re-publication to every view subscriber (every WebApp phone and every
    /// projector) — N + 2P + 1 for WebApp phones.
    pub fn pushes_per_update(&self) -> u64 {
        if self.sockets_mode == SocketsMode::None {
            return 2 * self.viewers;
        }
        let own = 1;
        let view_subscribers = match self.profile {
            Profile::WebApp => self.devices,
            Profile::Lean | Profile::Seed => 0,
        };
        own + self.viewers + view_subscribers + self.viewers
    }

    /// Refuses a run whose sockets one browser cannot hold, naming the way out.
    pub fn check_socket_cap(&self) -> Result<(), SocketCapError> {
        let (peak, _) = self.sockets();
        if peak <= CHROMIUM_SOCKETS_PER_HOST {
            return Ok(());
        }
        Err(SocketCapError {
            needed: peak,
            cap: CHROMIUM_SOCKETS_PER_HOST,
            devices_that_fit: self.devices_that_fit(),
            profile: self.profile,
        })
    }

    /// The most devices of this run's kind whose peak sockets fit under the cap.
    fn devices_that_fit(&self) -> u64 {
        let per_device = match self.sockets_mode {
            SocketsMode::PerDevice => self.profile.subscriptions_per_device().0 + self.viewers,
            _ => return u64::MAX,
        };
        CHROMIUM_SOCKETS_PER_HOST
            .saturating_sub(2 * self.viewers)
            .checked_div(per_device)
            .unwrap_or(u64::MAX)
    }
}

/// A run that needs more websockets than one browser holds.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "this run needs {needed} websockets at its peak, and a browser holds about {cap} per host: \
     the rest would silently wait or fail. Use sockets=shared (subscriptions multiplexed on a \
     few sockets, not the WebApp's wire shape), or split the devices over more browser \
     instances (at most {devices_that_fit} {profile} devices per browser this way)"
)]
pub struct SocketCapError {
    pub needed: u64,
    pub cap: u64,
    pub devices_that_fit: u64,
    pub profile: Profile,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_webapp_class_holds_three_sockets_a_phone_and_five_while_joining() {
        let class = Load::new(Profile::WebApp, SocketsMode::PerDevice, 60, 1);
        // 60 phones × 3 + the projector's monitor, view and 60 cards.
        assert_eq!(class.sockets(), (60 * 5 + 62, 60 * 3 + 62));
        assert_eq!(class.pushes_per_update(), 60 + 2 + 1);
        assert_eq!(Profile::WebApp.posts_per_join(false), 8);
        assert_eq!(Profile::WebApp.posts_per_join(true), 9);
    }

    #[test]
    fn lean_and_seed_devices_make_the_earlier_load() {
        let lean = Load::new(Profile::Lean, SocketsMode::PerDevice, 100, 0);
        assert_eq!(lean.sockets(), (100, 100));
        assert_eq!(lean.pushes_per_update(), 1);
        let seed = Load::new(Profile::Seed, SocketsMode::None, 100, 2);
        assert_eq!(seed.sockets(), (0, 0));
        assert_eq!(seed.pushes_per_update(), 4);
    }

    #[test]
    fn shared_sockets_multiplex_every_subscription() {
        let shared = Load::new(Profile::WebApp, SocketsMode::Shared, 60, 1);
        assert_eq!(shared.subscriptions(), (362, 242));
        assert_eq!(shared.sockets(), (2, 1));
        assert_eq!(shared.check_socket_cap(), Ok(()));
    }

    #[test]
    fn a_run_past_the_browser_socket_cap_is_refused_with_the_way_out() {
        // 50 phones and a projector: 250 + 52 sockets in their first minute.
        let too_many = Load::new(Profile::WebApp, SocketsMode::PerDevice, 50, 1);
        let err = too_many.check_socket_cap().expect_err("302 sockets do not fit");
        assert_eq!((err.needed, err.cap), (302, 255));
        // Each phone takes 5 sockets and one projector card: 253 / 6 = 42.
        assert_eq!(err.devices_that_fit, 42);
        let text = err.to_string();
        assert!(text.contains("sockets=shared") && text.contains("browser instances"), "{text}");
        let fits = Load::new(Profile::WebApp, SocketsMode::PerDevice, 42, 1);
        assert_eq!(fits.check_socket_cap(), Ok(()));
        assert!(Load::new(Profile::Lean, SocketsMode::PerDevice, 255, 0)
            .check_socket_cap()
            .is_ok());
        assert!(Load::new(Profile::Lean, SocketsMode::PerDevice, 256, 0)
            .check_socket_cap()
            .is_err());
    }
}
