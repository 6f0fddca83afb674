//! Sentant names that never clash with a real phone's or another tab's.
//!
//! The WebApp names devices `device NNNN`; a stress test must not, or its
//! cleanup would unload real phones' sentants. Every name here is
//! `r2s-<tab>-<run>-<NNNN>`: `<tab>` a base36 tag from a random number the
//! page draws once (crypto.getRandomValues), `<run>` the run number in that
//! tab, `<NNNN>` the device index, at least four digits.

/// What every r2-stress sentant name starts with.
pub const NAME_PREFIX: &str = "r2s-";
/// Characters of the tab tag (36^8 ≈ 2.8 × 10^12 tags).
pub const TAB_TAG_LEN: usize = 8;

/// The names of one run's devices.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunNames {
    prefix: String,
}

/// `value` in base36 (0-9a-z), exactly `width` digits (high digits dropped).
fn base36(mut value: u64, width: usize) -> String {
    const DIGITS: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut out = vec![b'0'; width];
    for slot in out.iter_mut().rev() {
        *slot = DIGITS[(value % 36) as usize];
        value /= 36;
    }
    out.into_iter().map(char::from).collect()
}

/// The parts of an r2-stress name: tab tag, run, device index.
fn parse(name: &str) -> Option<(&str, u32, u32)> {
    let rest = name.strip_prefix(NAME_PREFIX)?;
    let mut parts = rest.split('-');
    let (tab, run, index) = (parts.next()?, parts.next()?, parts.next()?);
    let is_tab = !tab.is_empty()
        && tab
            .bytes()
            .all(|b| b.is_ascii_digit() || b.is_ascii_lowercase());
    let number = |s: &str| {
        (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse::<u32>().ok())
            .flatten()
    };
    if parts.next().is_some() || !is_tab {
        return None;
    }
    Some((tab, number(run)?, number(index)?))
}

impl RunNames {
    /// Names for run `run` of the tab whose random number is `tab_random`.
    pub fn new(tab_random: u64, run: u32) -> RunNames {
        RunNames {
            prefix: format!("{NAME_PREFIX}{}-{run}-", base36(tab_random, TAB_TAG_LEN)),
        }
    }

    /// `r2s-<tab>-<run>-`, what every name of this run starts with.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The name of device `index`: the prefix and the index, zero-padded to 4.
    pub fn device_name(&self, index: u32) -> String {
        name_in(&self.prefix, index)
    }

    /// The device index of one of this run's names.
    pub fn device_index(&self, name: &str) -> Option<u32> {
        name.strip_prefix(&self.prefix)?;
        parse(name).map(|(_, _, index)| index)
    }

    /// Whether `name` is one of this run's device names.
    pub fn is_own(&self, name: &str) -> bool {
        self.device_index(name).is_some()
    }
}

/// Whether `name` is any r2-stress device name (this run's or a leftover of
/// an earlier one), and so safe to clean up.
/// The name of device `index` of the run whose names start with `prefix`.
pub fn name_in(prefix: &str, index: u32) -> String {
    format!("{prefix}{index:04}")
}

pub fn is_r2_stress_name(name: &str) -> bool {
    parse(name).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_have_the_documented_shape() {
        let names = RunNames::new(u64::MAX, 3);
        let name = names.device_name(7);
        assert!(name.starts_with(NAME_PREFIX));
        let parts: Vec<_> = name.split('-').collect();
        assert_eq!(parts.len(), 4, "{name}");
        assert_eq!(parts[1].len(), TAB_TAG_LEN);
        assert_eq!((parts[2], parts[3]), ("3", "0007"));
        assert_eq!(names.device_name(12345).rsplit('-').next(), Some("12345"));
        assert!(!name.contains(' '));
    }

    #[test]
    fn base36_is_fixed_width() {
        assert_eq!(base36(0, 4), "0000");
        assert_eq!(base36(35, 2), "0z");
        assert_eq!(base36(36 * 36 + 1, 3), "101");
        assert_eq!(base36(36 * 36 * 36, 3), "000", "high digits dropped");
    }

    #[test]
    fn own_names_are_recognised_and_others_are_not() {
        let names = RunNames::new(0xdead_beef, 1);
        for i in [0, 9, 10_000, 19_999] {
            let n = names.device_name(i);
            assert!(names.is_own(&n), "{n}");
            assert_eq!(names.device_index(&n), Some(i));
            assert!(is_r2_stress_name(&n));
        }
        let other_run = RunNames::new(0xdead_beef, 2).device_name(0);
        let other_tab = RunNames::new(42, 1).device_name(0);
        for n in [&other_run, &other_tab] {
            assert!(!names.is_own(n), "{n}");
            assert!(is_r2_stress_name(n), "{n}");
        }
        let prefix = names.prefix().to_owned();
        for n in [
            "device 0001".to_owned(),
            "monitor".into(),
            "view".into(),
            "r2s-".into(),
            prefix.clone(),
            format!("{prefix}12x"),
            format!("{prefix}0001-2"),
            format!("{prefix}99999999999"),
            "r2s-ABC-1-0001".into(),
            "r2s--1-0001".into(),
            "r2s-abc-+1-0001".into(),
        ] {
            assert!(!names.is_own(&n), "{n}");
            assert!(!is_r2_stress_name(&n), "{n}");
        }
    }
}
