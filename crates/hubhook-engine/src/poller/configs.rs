//! What a poll needs of its instance, cached per instance and keyed by the instance's version.
//!
//! Every poll used to read its instance row, decrypt its secrets, parse its configuration and
//! build a ConnectWise client: at 10,000 instances × 3 resources polled each minute that was
//! most of the poller's idle cost, to rebuild the same thing 30,000 times a minute. The poller
//! keeps what it builds here ([`super::Polled`]: the parsed configuration, the creation time and
//! the client), with the version of the instance it was built from.
//!
//! # Why a poll never uses a configuration older than the one its claim saw
//!
//! The version is the instance's `updated_at`. The store moves it forward with every change of
//! the instance (configuration, secrets, settings, disabling), to a value the instance never
//! had before even for two changes in one millisecond or a change made on a node whose clock is
//! behind (`updated_at = max(now, updated_at + 1)`), and ids are never reused. So within one
//! instance a larger version is a later state, and equal versions are the same state.
//!
//! The claim that hands out a job reads the instance's version in the same statement
//! (`PollJob::instance_updated_at`). [`InstanceCache::get`] serves an entry only if it was built
//! from that version or a later one; otherwise the poll reads the instance again and stores
//! what it built under the version of the row it read. A change that committed before the
//! claim has a version no greater than the claimed one, so it is in what the poll uses: the
//! first poll claimed after a PATCH (on this node or any other sharing the database, since
//! the version lives in the database, not in this node's memory) runs with the new
//! configuration, and nothing has to be invalidated by hand. A change that commits while a
//! poll runs is for the next poll, as it always was (the poll could equally have read the row
//! just before the change).
//!
//! Entries built from a later version than the claim's are served too: they hold a
//! configuration at least as new as the claim's, and never going back to an older one is
//! all the poll needs. An insert likewise never replaces a later version with an earlier one
//! (two polls of one instance can load it at once, and the one that read the older row may
//! finish last).
//!
//! # The client, and the site it shares
//!
//! The client is built from the configuration alone (credentials, `filter.response.nulls`) plus
//! the engine's connection pool and the throttle of the credentials' ConnectWise site, so it
//! is exactly as current as the configuration. Its throttle is the one in the engine's site
//! table for as long as the entry lives: the table drops only sites nobody holds, and the
//! cached client holds its throttle. Clients are shared by concurrent polls of one instance;
//! their calls take `&self` and keep no state of their own.
//!
//! # Memory
//!
//! One entry per instance this node polled in the last [`IDLE`]; nothing else is kept. An
//! entry not used for that long (the instance was deleted, disabled, its events turned off,
//! its jobs polled by other nodes, or its interval is longer) is dropped by a sweep that runs
//! at most once a [`SWEEP_EVERY`], so the map stays the size of the instances being polled
//! however many come and go. An instance polled less often than that is simply read again
//! when its poll comes, as every poll used to be.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use hubhook_core::InstanceId;
use jiff::{SignedDuration, Timestamp};

/// An entry not used for this long is dropped.
pub(crate) const IDLE: SignedDuration = SignedDuration::from_hours(1);
/// How often at most the map is swept for idle entries (a walk over every entry).
pub(crate) const SWEEP_EVERY: SignedDuration = SignedDuration::from_mins(1);

/// A value built from an instance, per instance, with the version it was built from.
pub(crate) struct InstanceCache<T> {
    inner: Mutex<Inner<T>>,
}

struct Inner<T> {
    entries: HashMap<InstanceId, Entry<T>>,
    swept_at: Option<Timestamp>,
}

struct Entry<T> {
    /// The instance's `updated_at` in the row the value was built from.
    version: Timestamp,
    value: Arc<T>,
    used_at: Timestamp,
}

impl<T> Default for InstanceCache<T> {
    fn default() -> Self {
        InstanceCache {
            inner: Mutex::new(Inner {
                entries: HashMap::new(),
                swept_at: None,
            }),
        }
    }
}

impl<T> InstanceCache<T> {
    /// The value built from the instance at `version` or later, if one is cached.
    pub(crate) fn get(&self, id: InstanceId, version: Timestamp, now: Timestamp) -> Option<Arc<T>> {
        let mut inner = self.lock();
        inner.sweep(now);
        let entry = inner.entries.get_mut(&id)?;
        if entry.version < version {
            return None;
        }
        entry.used_at = now;
        Some(entry.value.clone())
    }

    /// Keeps `value`, built from the instance at `version`, unless a later one is cached.
    pub(crate) fn insert(&self, id: InstanceId, version: Timestamp, value: Arc<T>, now: Timestamp) {
        let mut inner = self.lock();
        inner.sweep(now);
        if let Some(entry) = inner.entries.get(&id)
            && entry.version > version
        {
            return;
        }
        inner.entries.insert(
            id,
            Entry {
                version,
                value,
                used_at: now,
            },
        );
    }

    /// Drops the instance's entry (it no longer exists).
    pub(crate) fn forget(&self, id: InstanceId) {
        self.lock().entries.remove(&id);
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().entries.len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner<T>> {
        // Every change under this lock is a single map operation or a `retain`, which leave
        // the map whole even if a panic interrupted the holder, so a poisoned lock is usable.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl<T> Inner<T> {
    fn sweep(&mut self, now: Timestamp) {
        if self
            .swept_at
            .is_some_and(|swept| now.duration_since(swept) < SWEEP_EVERY)
        {
            return;
        }
        self.swept_at = Some(now);
        self.entries
            .retain(|_, entry| now.duration_since(entry.used_at) < IDLE);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> Timestamp {
        Timestamp::from_second(1_700_000_000 + seconds).expect("valid")
    }

    const A: InstanceId = InstanceId(1);
    const B: InstanceId = InstanceId(2);

    #[test]
    fn serves_an_entry_only_at_its_version_or_an_earlier_claimed_one() {
        let cache = InstanceCache::default();
        assert!(cache.get(A, at(10), at(100)).is_none());
        cache.insert(A, at(10), Arc::new("ten"), at(100));
        assert_eq!(cache.get(A, at(10), at(101)).as_deref(), Some(&"ten"));
        // A claim that saw an earlier version gets the later configuration: never older.
        assert_eq!(cache.get(A, at(9), at(101)).as_deref(), Some(&"ten"));
        // A claim that saw a later version must read the instance again.
        assert!(cache.get(A, at(11), at(101)).is_none());
        // Another instance is not served A's entry.
        assert!(cache.get(B, at(10), at(101)).is_none());
    }

    #[test]
    fn an_earlier_version_never_replaces_a_later_one() {
        let cache = InstanceCache::default();
        cache.insert(A, at(20), Arc::new("twenty"), at(100));
        cache.insert(A, at(10), Arc::new("ten"), at(100));
        assert_eq!(cache.get(A, at(20), at(100)).as_deref(), Some(&"twenty"));
        cache.insert(A, at(30), Arc::new("thirty"), at(100));
        assert_eq!(cache.get(A, at(20), at(100)).as_deref(), Some(&"thirty"));
        cache.forget(A);
        assert!(cache.get(A, at(20), at(100)).is_none());
    }

    #[test]
    fn entries_not_used_for_an_hour_are_swept() {
        let cache = InstanceCache::default();
        cache.insert(A, at(1), Arc::new("a"), at(0));
        cache.insert(B, at(1), Arc::new("b"), at(0));
        // A is used every half hour, B never again.
        assert!(cache.get(A, at(1), at(1800)).is_some());
        assert_eq!(cache.len(), 2);
        assert!(cache.get(A, at(1), at(3600)).is_some());
        assert_eq!(cache.len(), 1, "B, idle for an hour, is gone");
    }

    #[test]
    fn sweeps_run_at_most_once_a_minute() {
        let cache = InstanceCache::<&str>::default();
        cache.insert(A, at(1), Arc::new("a"), at(0));
        // Lookups of B (misses) let time pass without using A.
        assert!(cache.get(B, at(1), at(3599)).is_none());
        assert_eq!(cache.len(), 1, "idle for less than an hour");
        assert!(cache.get(B, at(1), at(3630)).is_none());
        assert_eq!(cache.len(), 1, "idle past the hour, but swept 31 s ago");
        assert!(cache.get(B, at(1), at(3659)).is_none());
        assert_eq!(cache.len(), 0);
    }
}
