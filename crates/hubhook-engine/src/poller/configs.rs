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
//! One entry per instance this node polled in the last [`IDLE`]. An entry not used for that
//! long (the instance was deleted, disabled, its events turned off, its jobs polled by other
//! nodes, or its interval is longer) is dropped by a sweep that runs at most once a
//! [`SWEEP_EVERY`], so the map stays the size of the instances being polled however many come
//! and go. An instance polled less often than that is simply read again when its poll comes,
//! as every poll used to be.
//!
//! Most of a parsed configuration is its resource blocks (URL, date fields and patterns,
//! paths: about 2 KB each, most of 12 KB for three), and most instances configure a resource
//! alike (the element's documented block), differing in their credentials. So the blocks of
//! cached configurations are shared ([`SharedBlocks`]): a block equal to one already held
//! (every field, compared as parsed) is replaced by that one, immutable and behind an `Arc`.
//! An instance keeps its own credentials, client and the rest.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};

use hubhook_core::{InstanceConfig, InstanceId, ResourcePoll};
use jiff::{SignedDuration, Timestamp};

use super::Polled;

/// What the poller keeps of the instances it polls: their [`Polled`] by instance, and the
/// resource blocks those share.
#[derive(Default)]
pub(crate) struct PollConfigs {
    pub(crate) instances: InstanceCache<Polled>,
    blocks: Mutex<SharedBlocks>,
}

impl PollConfigs {
    /// Replaces each of `config`'s resource blocks by an equal one already held, if any.
    pub(crate) fn share_blocks(&self, config: &mut InstanceConfig) {
        // Nothing under this lock can leave the table half-changed (see `InstanceCache::lock`).
        let mut blocks = self.blocks.lock().unwrap_or_else(|e| e.into_inner());
        for block in config.events.resources.values_mut() {
            blocks.share(block);
        }
    }
}

/// The most blocks shared per URL template: a lookup compares a new block with this many at
/// most, however many variants of one URL are configured; further variants are kept unshared.
const BLOCKS_PER_URL: usize = 8;

/// Resource blocks held by cached configurations, by URL template, so that equal blocks are
/// held once. Only weak references: a block lives as long as a configuration holds it.
#[derive(Default)]
struct SharedBlocks {
    by_url: HashMap<String, Vec<Weak<ResourcePoll>>>,
    /// `by_url.len()` after the last sweep of URLs whose blocks are all gone.
    swept_len: usize,
}

impl SharedBlocks {
    fn share(&mut self, block: &mut Arc<ResourcePoll>) {
        if !self.by_url.contains_key(&block.url) {
            // URLs of blocks no longer held pile up only until the table has doubled.
            if self.by_url.len() >= 2 * self.swept_len + 64 {
                self.by_url.retain(|_, bucket| {
                    bucket.retain(|weak| weak.strong_count() > 0);
                    !bucket.is_empty()
                });
                self.swept_len = self.by_url.len();
            }
            self.by_url.insert(block.url.clone(), Vec::new());
        }
        let Some(bucket) = self.by_url.get_mut(&block.url) else {
            return;
        };
        bucket.retain(|weak| weak.strong_count() > 0);
        if let Some(shared) = bucket
            .iter()
            .filter_map(Weak::upgrade)
            .find(|shared| **shared == **block)
        {
            *block = shared;
        } else if bucket.len() < BLOCKS_PER_URL {
            bucket.push(Arc::downgrade(block));
        }
    }

    #[cfg(test)]
    fn urls(&self) -> usize {
        self.by_url.len()
    }
}

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
pub(super) mod tests {
    use super::*;

    /// The documented configuration, with `adjust` applied to its contacts block.
    pub(in crate::poller) fn config(adjust: impl Fn(&mut serde_json::Value)) -> InstanceConfig {
        let mut body = hubhook_core::documented_instance_body(hubhook_core::DocumentedSite {
            base_url: "https://cw.example/v4_6_release/apis/3.0",
            company: "acme",
            public_key: "public",
            private_key: "private",
            callback_url: "https://receiver.example/hook",
        });
        adjust(&mut body["configuration"]["event.poller.configuration"]["contacts"]);
        let configuration = body["configuration"].as_object().expect("object");
        InstanceConfig::parse(configuration).expect("valid configuration")
    }

    fn contacts(config: &InstanceConfig) -> &Arc<ResourcePoll> {
        &config.events.resources["contacts"]
    }

    #[test]
    fn equal_blocks_are_held_once_and_different_ones_apart() {
        let mut shared = SharedBlocks::default();
        let mut first = config(|_| {});
        let mut second = config(|_| {});
        let mut other = config(|block| block["pageSize"] = 50.into());
        for config in [&mut first, &mut second, &mut other] {
            for block in config.events.resources.values_mut() {
                shared.share(block);
            }
        }
        assert!(Arc::ptr_eq(contacts(&first), contacts(&second)));
        assert!(!Arc::ptr_eq(contacts(&first), contacts(&other)));
        assert_eq!(contacts(&other).page_size, Some(50));
        assert_eq!(shared.urls(), 1);
    }

    #[test]
    fn variants_of_one_url_are_shared_up_to_a_bound_and_gone_urls_are_swept() {
        let bound = u32::try_from(BLOCKS_PER_URL).expect("a small bound");
        let mut shared = SharedBlocks::default();
        let mut held = Vec::new();
        for size in 1..=bound + 2 {
            let mut config = config(|block| block["pageSize"] = size.into());
            for block in config.events.resources.values_mut() {
                shared.share(block);
            }
            held.push(config);
        }
        assert_eq!(
            shared.by_url.values().map(Vec::len).sum::<usize>(),
            BLOCKS_PER_URL
        );
        // A variant past the bound is not shared, but still used as it was parsed.
        let mut late = config(|block| block["pageSize"] = (bound + 2).into());
        shared.share(late.events.resources.get_mut("contacts").expect("contacts"));
        assert!(!Arc::ptr_eq(
            contacts(&late),
            contacts(&held[held.len() - 1])
        ));
        assert_eq!(contacts(&late).page_size, Some(bound + 2));
        drop(held);
        drop(late);

        // Blocks of URLs no longer held are forgotten once the table has doubled.
        for n in 0..200 {
            let mut config = config(|block| {
                block["url"] = format!(
                    "/hubs/crm/contacts?where=lastUpdated>'${{gmtDate:yyyy-MM-dd'T'HH:mm:ss'Z'}}' and id>{n}"
                )
                .into();
            });
            for block in config.events.resources.values_mut() {
                shared.share(block);
            }
        }
        assert!(shared.urls() < 150, "{} URLs kept", shared.urls());
    }

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
