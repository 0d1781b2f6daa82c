//! Versions of index entries, and the clock that issues them.
//!
//! [`Clock`] makes versions: a hybrid logical clock that follows wall-clock
//! milliseconds but always moves past the versions a client has seen, so a
//! client whose clock is behind still writes a newer version than the one
//! it read.

use std::fmt;

/// An entry's version: a hybrid logical clock reading, milliseconds since
/// the Unix epoch in the high 48 bits and a counter in the low 16.
///
/// Versions compare as plain `u64`s, which is all a node does with them (it
/// refuses a put below the stored version). 48 bits of milliseconds last
/// until the year 10889.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Version(pub u64);

impl Version {
    /// Below every version a [`Clock`] issues.
    pub const ZERO: Self = Self(0);

    /// The highest version; nothing can be newer.
    pub const MAX: Self = Self(u64::MAX);

    /// Largest millisecond count the high 48 bits hold.
    pub const MAX_UNIX_MS: u64 = (1 << 48) - 1;

    /// The version for `unix_ms` (clamped to [`MAX_UNIX_MS`](Self::MAX_UNIX_MS))
    /// and `counter`.
    pub const fn new(unix_ms: u64, counter: u16) -> Self {
        let ms = if unix_ms > Self::MAX_UNIX_MS {
            Self::MAX_UNIX_MS
        } else {
            unix_ms
        };
        Self((ms << 16) | counter as u64)
    }

    /// The milliseconds part.
    pub const fn unix_ms(self) -> u64 {
        self.0 >> 16
    }

    /// The counter part.
    pub const fn counter(self) -> u16 {
        (self.0 & 0xffff) as u16
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Issues versions: a hybrid logical clock.
///
/// [`next`](Self::next) returns the wall-clock reading when that is newer
/// than everything the clock issued and the `floor` it is given, and
/// otherwise the larger of those plus one (the counter, carrying into the
/// milliseconds). So versions from one clock strictly increase even if the
/// wall clock steps back, and a client writing a name it read at version v
/// writes above v even if its clock is behind the writer's.
///
/// The library never reads the clock itself; callers pass the time, which
/// [`Clock::now_unix_ms`] reads for them.
#[derive(Debug, Clone, Default)]
pub struct Clock {
    last: Version,
}

impl Clock {
    /// A clock that has issued nothing.
    pub const fn new() -> Self {
        Self {
            last: Version::ZERO,
        }
    }

    /// The last version issued, or [`Version::ZERO`].
    pub const fn last(&self) -> Version {
        self.last
    }

    /// A version above both the last one issued and `floor`, as close to
    /// `now_unix_ms` as that allows.
    ///
    /// Only at [`Version::MAX`], which no clock reaches before the year
    /// 10889, is there nothing above: then it returns `Version::MAX` again,
    /// and a node refuses the write as a conflict rather than overwrite
    /// anything.
    pub fn next(&mut self, now_unix_ms: u64, floor: Version) -> Version {
        let physical = Version::new(now_unix_ms, 0);
        let base = self.last.max(floor);
        let version = if physical > base {
            physical
        } else {
            Version(base.0.saturating_add(1))
        };
        self.last = version;
        version
    }

    /// Milliseconds since the Unix epoch by the system clock (0 if the
    /// clock is before 1970).
    pub fn now_unix_ms() -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn clock_follows_time_and_never_goes_back() {
        let mut clock = Clock::new();
        assert_eq!(clock.last(), Version::ZERO);
        let a = clock.next(1_000, Version::ZERO);
        assert_eq!(a, Version::new(1_000, 0));
        assert_eq!((a.unix_ms(), a.counter()), (1_000, 0));
        // Same millisecond, or the clock stepping back: the counter moves.
        assert_eq!(clock.next(1_000, Version::ZERO), Version::new(1_000, 1));
        assert_eq!(clock.next(500, Version::ZERO), Version::new(1_000, 2));
        // Time moves on: back to the wall clock.
        assert_eq!(clock.next(2_000, Version::ZERO), Version::new(2_000, 0));
        // A floor from another writer whose clock is ahead.
        let seen = Version::new(9_000, 4);
        assert_eq!(clock.next(2_001, seen), Version::new(9_000, 5));
        assert_eq!(clock.last(), Version::new(9_000, 5));
        // The counter carries into the milliseconds.
        let full = Version::new(10_000, u16::MAX);
        assert_eq!(clock.next(0, full), Version::new(10_001, 0));
        // Nothing above MAX.
        assert_eq!(clock.next(0, Version::MAX), Version::MAX);
        assert_eq!(Version::new(u64::MAX, 0).unix_ms(), Version::MAX_UNIX_MS);
        let now = Clock::now_unix_ms();
        assert!(now > 1_700_000_000_000 && now < Version::MAX_UNIX_MS);
    }

    proptest! {
        #[test]
        fn clock_is_strictly_monotonic_and_above_every_floor(
            steps in prop::collection::vec((0u64..10_000, 0u64..(10_000 << 16)), 1..50),
        ) {
            let mut clock = Clock::new();
            let mut last = Version::ZERO;
            for (now, floor) in steps {
                let v = clock.next(now, Version(floor));
                prop_assert!(v > last);
                prop_assert!(v > Version(floor));
                prop_assert!(v >= Version::new(now, 0));
                last = v;
            }
        }

    }
}
