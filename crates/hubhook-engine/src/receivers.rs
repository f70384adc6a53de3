//! Isolation between receivers: per callback origin (`scheme://host:port`) of each
//! organization, a limit on deliveries in flight, a rate limit, and a circuit breaker.
//!
//! Per organization as well as per origin ([`receiver_of`]): one receiver host often serves
//! many customers (an automation platform, a shared gateway), and one tenant whose path there
//! answers 503 must not open the breaker, or fill the concurrency limit, for another tenant's
//! healthy path on the same host. A second organization pointing at the same host gets its
//! own limits; the host then sees up to `receiver_concurrency` POSTs per organization.
//!
//! One dead, slow or throttling receiver must not take the delivery slots of healthy ones.
//! Three mechanisms do it, all per origin and per node (each node protects its own slots, so
//! nothing needs coordinating):
//!
//! - **Concurrency**: at most `receiver_concurrency` deliveries in flight to one origin, so a
//!   receiver that hangs holds at most that many of the node's slots until the timeout.
//! - **One at a time until it answers**: a receiver new to this node takes one delivery at a
//!   time, and one more only for each of its POSTs that goes slow (unanswered past
//!   `dispatcher::SLOW_AFTER`), until one ends well; a receiver whose last delivery failed
//!   takes one at a time, slow or not, until one ends well. A receiver that never answers
//!   would otherwise take its whole limit at once, before anything showed it hangs: one
//!   organization's eight such receivers took 32 POSTs, which held its share of the slots
//!   round after round, and its healthy receivers' deliveries waited 2.8–5.9 s for them; and
//!   each of its POSTs that timed out was replaced at once, eight at a time, holding the
//!   share again for 2 s (an outside test measured those waves). A healthy receiver answers
//!   its first POST within milliseconds and then takes its whole limit; a receiver that
//!   answered before and then hangs keeps it until a failure ends one of its POSTs (the slot
//!   hand-off of slow POSTs and the breaker bound it then).
//! - **Rate** (off unless configured): a token bucket of `receiver_rate` deliveries per second
//!   (burst of one second's worth), so a backlog drains at a pace the receiver can take.
//! - **Circuit breaker**: after `breaker_threshold` consecutive failures that say the receiver
//!   is unwell (no answer, a timeout, a 5xx or a 429), the origin is *open* for a cooldown (30 s,
//!   doubling up to 10 min while it keeps failing): nothing is sent. Then one delivery is let
//!   through as a probe (*half-open*); its success closes the breaker, its failure opens it
//!   again. Other 4xx answers come from a receiver that is up, so they do not count.
//!
//! The dispatcher asks [`Receivers::skip`] which instances to leave out of the next claim
//! (their origin is open, probing, full, out of tokens, or taking one at a time and busy), so
//! their notifications stay in the
//! database instead of taking slots, and claims go to instances whose receivers can take them.
//! A notification claimed anyway (a race between claim and admission) is released unattempted
//! and due again when the origin can take it: no POST is made, so no attempt is recorded.
//!
//! The limiter and breaker are written here rather than taken from a crate because they run
//! on the engine's clock (tests move it by hand) and the claim needs to ask "is this origin
//! able to take work now?" without taking a permit, which the crates we looked at do not offer.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use hubhook_core::InstanceId;
use jiff::Timestamp;

/// Settings of receiver isolation.
#[derive(Debug, Clone, Copy)]
pub struct ReceiverLimits {
    /// Deliveries in flight to one origin from this node.
    pub concurrency: u32,
    /// Deliveries per second to one origin from this node; 0 means unlimited.
    pub rate_per_second: f64,
    /// Consecutive failures that open the breaker.
    pub breaker_threshold: u32,
    /// First cooldown of an open breaker (doubles while the probes fail).
    pub breaker_cooldown: Duration,
}

impl Default for ReceiverLimits {
    fn default() -> Self {
        ReceiverLimits {
            concurrency: 4,
            // Off by default: a limit here would cap the delivery rate to a fast receiver,
            // which the concurrency limit and the breaker already protect.
            rate_per_second: 0.0,
            breaker_threshold: 5,
            breaker_cooldown: Duration::from_secs(30),
        }
    }
}

/// Longest cooldown of an open breaker.
const MAX_COOLDOWN_MS: i64 = 600_000;
/// Origins (and instances) remembered before the idle ones are dropped: every callback origin
/// ever used would otherwise stay in memory, and `skip` walks them all at every claim.
const MAX_REMEMBERED: usize = 10_000;

/// Whether an attempt may go now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admission {
    /// Go; report the outcome with [`Receivers::finish`].
    Go,
    /// Not now: try again at this time (no attempt is made or recorded).
    Later(Timestamp, Blocked),
}

/// Why an origin cannot take a delivery now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Blocked {
    Open,
    Probing,
    Full,
    /// New to this node with a POST in flight that is not slow, or failing with any POST in
    /// flight.
    Unproven,
    Rate,
}

impl Blocked {
    pub fn as_str(self) -> &'static str {
        match self {
            Blocked::Open => "circuit open",
            Blocked::Probing => "circuit half-open, probe in flight",
            Blocked::Full => "receiver at its concurrency limit",
            Blocked::Unproven => "receiver has not answered yet: one delivery at a time",
            Blocked::Rate => "receiver rate limit",
        }
    }
}

/// How a receiver's last delivery on this node ended.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum Standing {
    /// None has ended yet.
    #[default]
    New,
    Answered,
    Failed,
}

#[derive(Debug, Default)]
struct Origin {
    in_flight: u32,
    tokens: f64,
    refilled_ms: i64,
    failures: u32,
    /// While set and in the future, the breaker is open.
    open_until_ms: Option<i64>,
    /// The half-open probe is in flight.
    probing: bool,
    cooldown_ms: i64,
    /// When the breaker last opened. A failure of a delivery admitted before then says
    /// nothing new (the breaker opened on failures like it), so it neither extends nor
    /// doubles the pause: with 16 POSTs in flight when it opened, each one's failure doubled
    /// the cooldown again, and a 30 s pause became 4 minutes.
    opened_at_ms: Option<i64>,
    /// How its last delivery ended (see the module docs, "One at a time until it answers").
    standing: Standing,
    /// Of `in_flight`, POSTs unanswered past `dispatcher::SLOW_AFTER`.
    slow: u32,
}

/// Per-origin state of this node.
pub struct Receivers {
    limits: ReceiverLimits,
    /// Woken whenever a delivery ends, for attempts waiting for a full origin.
    freed: tokio::sync::Notify,
    origins: Mutex<HashMap<String, Origin>>,
    /// The origin each instance delivers to, as last seen.
    instances: Mutex<HashMap<InstanceId, String>>,
}

/// The receiver a delivery goes to, for isolation: the organization and the origin of its
/// callback URL (see the module docs).
pub fn receiver_of(organization: hubhook_store::OrganizationId, url: &str) -> String {
    format!("{} {}", organization.0, origin_of(url))
}

/// The origin of a callback URL (`scheme://host:port`), or the URL itself when it does not
/// parse (it then fails at the send, and is isolated like any origin).
pub fn origin_of(url: &str) -> String {
    url::Url::parse(url)
        .map(|u| u.origin().ascii_serialization())
        .unwrap_or_else(|_| url.to_owned())
}

impl Receivers {
    pub fn new(limits: ReceiverLimits) -> Receivers {
        Receivers {
            limits,
            freed: tokio::sync::Notify::new(),
            origins: Mutex::new(HashMap::new()),
            instances: Mutex::new(HashMap::new()),
        }
    }

    fn origins(&self) -> std::sync::MutexGuard<'_, HashMap<String, Origin>> {
        // Every update is a few field writes that cannot panic halfway; a poisoned lock still
        // holds consistent state.
        self.origins.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn burst(&self) -> f64 {
        self.limits.rate_per_second.max(1.0)
    }

    fn refill(&self, origin: &mut Origin, now_ms: i64) {
        if self.limits.rate_per_second <= 0.0 {
            return;
        }
        if origin.refilled_ms == 0 {
            origin.tokens = self.burst();
        } else {
            let elapsed = (now_ms - origin.refilled_ms).max(0) as f64 / 1000.0;
            origin.tokens =
                (origin.tokens + elapsed * self.limits.rate_per_second).min(self.burst());
        }
        origin.refilled_ms = now_ms;
    }

    /// When `origin` could take a delivery, if not now.
    fn blocked_until(&self, origin: &mut Origin, now_ms: i64) -> Option<(i64, Blocked)> {
        if let Some(until) = origin.open_until_ms {
            if now_ms < until {
                return Some((until, Blocked::Open));
            }
            if origin.probing {
                return Some((now_ms + 1000, Blocked::Probing));
            }
        }
        if origin.in_flight >= self.limits.concurrency.max(1) {
            return Some((now_ms + 1000, Blocked::Full));
        }
        let one_at_a_time = match origin.standing {
            Standing::Answered => false,
            Standing::New => origin.in_flight > origin.slow,
            Standing::Failed => origin.in_flight > 0,
        };
        if one_at_a_time {
            return Some((now_ms + 1000, Blocked::Unproven));
        }
        self.refill(origin, now_ms);
        if self.limits.rate_per_second > 0.0 && origin.tokens < 1.0 {
            let wait_ms = ((1.0 - origin.tokens) / self.limits.rate_per_second * 1000.0).ceil();
            return Some((now_ms + (wait_ms as i64).max(1), Blocked::Rate));
        }
        None
    }

    /// Asks to deliver to `origin` for `instance` now.
    pub fn admit(&self, instance: InstanceId, origin: &str, now: Timestamp) -> Admission {
        let now_ms = now.as_millisecond();
        let mut origins = self.origins();
        {
            let mut instances = self.instances.lock().unwrap_or_else(|e| e.into_inner());
            if origins.len() >= MAX_REMEMBERED || instances.len() >= MAX_REMEMBERED {
                // An idle origin (nothing in flight, no failure, breaker closed) is the same as
                // one never seen but for its standing: forgotten after answering, its next
                // burst waits for one answer again; a failed one is kept. An instance tied to
                // a forgotten origin is tied again at its next admission.
                origins.retain(|_, state| {
                    state.in_flight > 0
                        || state.failures > 0
                        || state.open_until_ms.is_some()
                        || state.standing == Standing::Failed
                });
                instances.retain(|_, origin| origins.contains_key(origin));
            }
            instances.insert(instance, origin.to_owned());
        }
        let state = origins.entry(origin.to_owned()).or_default();
        if let Some((until, why)) = self.blocked_until(state, now_ms) {
            // Due again at once: its instance stays out of claims while the receiver has not
            // answered (`skip`), and its answer, or its POST going slow, wakes the dispatcher.
            // A later time would hold it back after the answer as well.
            let at = if why == Blocked::Unproven {
                now
            } else {
                Timestamp::from_millisecond(until).unwrap_or(now)
            };
            return Admission::Later(at, why);
        }
        if state.open_until_ms.is_some() {
            state.probing = true;
        }
        state.in_flight += 1;
        if self.limits.rate_per_second > 0.0 {
            state.tokens -= 1.0;
        }
        Admission::Go
    }

    /// [`Receivers::admit`], waiting up to `max_wait` for a full origin to free a slot (the
    /// claim asks for no more of one instance than its receiver takes at once, so the wait is
    /// for deliveries already in flight to a receiver that answers), and up to
    /// [`UNPROVEN_WAIT`] for a receiver that has not answered yet to answer its first POST.
    /// `now` reads the clock.
    pub async fn admit_waiting(
        &self,
        instance: InstanceId,
        origin: &str,
        now: impl Fn() -> Timestamp,
        max_wait: Duration,
    ) -> Admission {
        let start = tokio::time::Instant::now();
        let deadline = start + max_wait;
        loop {
            let freed = self.freed.notified();
            let admission = self.admit(instance, origin, now());
            let until = match admission {
                Admission::Later(_, Blocked::Full) => deadline,
                // Only for a new receiver, whose first answer is likely near: one whose last
                // delivery failed is given back at once rather than hold a slot for it.
                Admission::Later(_, Blocked::Unproven) if !self.failed(origin) => {
                    deadline.min(start + UNPROVEN_WAIT)
                }
                Admission::Go | Admission::Later(..) => return admission,
            };
            if tokio::time::Instant::now() >= until {
                return admission;
            }
            let _ = tokio::time::timeout_at(until, freed).await;
        }
    }

    /// Whether the last delivery to `origin` failed.
    fn failed(&self, origin: &str) -> bool {
        self.origins()
            .get(origin)
            .is_some_and(|state| state.standing == Standing::Failed)
    }

    /// Counts a POST to `origin` as slow until the returned guard is dropped (held by the
    /// POST's own future, so however its attempt ends it stops counting). A receiver new to
    /// the node may then take one more delivery.
    pub(crate) fn slow(&self, origin: &str) -> SlowPost<'_> {
        // Always there: an origin with a delivery in flight is never forgotten.
        let counted = self.origins().get_mut(origin).map(|state| state.slow += 1);
        self.freed.notify_waiters();
        SlowPost {
            receivers: self,
            origin: counted.map(|()| origin.to_owned()),
        }
    }

    /// Reports the end of a delivery admitted at `admitted`. `unwell`: no answer, a timeout, a
    /// 5xx or a 429.
    pub fn finish(&self, origin: &str, unwell: bool, admitted: Timestamp, now: Timestamp) {
        let now_ms = now.as_millisecond();
        let mut origins = self.origins();
        let state = origins.entry(origin.to_owned()).or_default();
        state.in_flight = state.in_flight.saturating_sub(1);
        // Failed: one at a time again until a delivery ends well. Its breaker may not open
        // (a failure in flight when it opened, or fewer than the threshold), and a receiver
        // that times out would otherwise take its whole limit of POSTs to hang again.
        state.standing = if unwell {
            Standing::Failed
        } else {
            Standing::Answered
        };
        self.freed.notify_waiters();
        if unwell
            && state
                .opened_at_ms
                .is_some_and(|opened| admitted.as_millisecond() < opened)
        {
            // In flight when the breaker opened: see `Origin::opened_at_ms`.
            return;
        }
        if !unwell {
            state.failures = 0;
            state.open_until_ms = None;
            state.probing = false;
            state.cooldown_ms = 0;
            return;
        }
        state.failures += 1;
        if state.probing || state.failures >= self.limits.breaker_threshold.max(1) {
            let first = i64::try_from(self.limits.breaker_cooldown.as_millis()).unwrap_or(i64::MAX);
            state.cooldown_ms = if state.cooldown_ms == 0 {
                first
            } else {
                state.cooldown_ms.saturating_mul(2)
            }
            .min(MAX_COOLDOWN_MS.max(first));
            state.open_until_ms = Some(now_ms.saturating_add(state.cooldown_ms));
            state.opened_at_ms = Some(now_ms);
            state.probing = false;
            if state.failures == self.limits.breaker_threshold.max(1) {
                tracing::warn!(
                    origin,
                    cooldown_ms = state.cooldown_ms,
                    "receiver failing: circuit opened"
                );
            }
        }
    }

    /// Gives back an admission that sent nothing (its claim was lost before the POST).
    pub fn cancel(&self, origin: &str) {
        if let Some(state) = self.origins().get_mut(origin) {
            state.in_flight = state.in_flight.saturating_sub(1);
            state.probing = false;
        }
        self.freed.notify_waiters();
    }

    /// When the earliest blocked origin can take work again, for the dispatcher's idle sleep
    /// (an origin at its concurrency limit frees up when a delivery ends, which wakes the
    /// dispatcher anyway).
    pub fn next_unblock(&self, now: Timestamp) -> Option<Timestamp> {
        let now_ms = now.as_millisecond();
        let mut origins = self.origins();
        origins
            .values_mut()
            .filter_map(|state| self.blocked_until(state, now_ms).map(|(at, _)| at))
            .min()
            .and_then(|ms| Timestamp::from_millisecond(ms).ok())
    }

    /// Forgets which origin `instance` delivers to: its callback URL changed, so the old
    /// origin's breaker or limit must not keep it out of claims (it is learnt again at its next
    /// admission, against the new origin).
    pub fn forget(&self, instance: InstanceId) {
        self.instances
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&instance);
    }

    /// The instances whose receiver cannot take a delivery now: left out of the next claim.
    pub fn skip(&self, now: Timestamp) -> Vec<InstanceId> {
        let now_ms = now.as_millisecond();
        let mut origins = self.origins();
        let blocked: Vec<String> = origins
            .iter_mut()
            .filter_map(|(name, state)| self.blocked_until(state, now_ms).map(|_| name.clone()))
            .collect();
        if blocked.is_empty() {
            return Vec::new();
        }
        self.instances
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .filter(|(_, origin)| blocked.contains(origin))
            .map(|(instance, _)| *instance)
            .collect()
    }
}

/// How long an attempt waits for a receiver that has not answered yet to answer the POST it
/// has in flight, before it is given back to be tried later. A healthy receiver answers within
/// milliseconds; one that does not may hang, and every attempt waiting for it holds a slot.
pub(crate) const UNPROVEN_WAIT: Duration = Duration::from_millis(250);

/// A POST counted slow for its receiver until dropped ([`Receivers::slow`]).
pub(crate) struct SlowPost<'a> {
    receivers: &'a Receivers,
    /// The origin whose count it raised, if it did.
    origin: Option<String>,
}

impl Drop for SlowPost<'_> {
    fn drop(&mut self) {
        let Some(origin) = &self.origin else { return };
        if let Some(state) = self.receivers.origins().get_mut(origin) {
            state.slow = state.slow.saturating_sub(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: i64) -> Timestamp {
        Timestamp::from_millisecond(1_700_000_000_000 + ms).expect("time")
    }

    fn receivers(concurrency: u32, rate: f64) -> Receivers {
        Receivers::new(ReceiverLimits {
            concurrency,
            rate_per_second: rate,
            breaker_threshold: 3,
            breaker_cooldown: Duration::from_secs(30),
        })
    }

    /// Three failures in a row at 0, 1 and 2 ms: enough to open the breaker of `receivers`.
    fn fail_three_times(r: &Receivers, instance: InstanceId, origin: &str) {
        for n in 0..3 {
            assert_eq!(r.admit(instance, origin, at(n)), Admission::Go);
            r.finish(origin, true, at(n), at(n));
        }
    }

    const A: InstanceId = InstanceId(1);
    const B: InstanceId = InstanceId(2);

    /// One delivery to `origin` admitted and ended well: the receiver has answered.
    fn answered(r: &Receivers, instance: InstanceId, origin: &str) {
        assert_eq!(r.admit(instance, origin, at(0)), Admission::Go);
        r.finish(origin, false, at(0), at(0));
    }

    #[test]
    fn concurrency_is_bounded_per_origin() {
        let r = receivers(2, 0.0);
        answered(&r, A, "http://a");
        answered(&r, B, "http://b");
        assert_eq!(r.admit(A, "http://a", at(0)), Admission::Go);
        assert_eq!(r.admit(A, "http://a", at(0)), Admission::Go);
        assert!(matches!(
            r.admit(A, "http://a", at(0)),
            Admission::Later(_, Blocked::Full)
        ));
        assert_eq!(
            r.admit(B, "http://b", at(0)),
            Admission::Go,
            "other origins are not affected"
        );
        assert_eq!(r.skip(at(0)), [A]);
        r.finish("http://a", false, at(1), at(1));
        assert_eq!(r.admit(A, "http://a", at(1)), Admission::Go);
    }

    #[test]
    fn the_rate_limit_refills_over_time() {
        let r = receivers(100, 2.0);
        assert_eq!(r.admit(A, "http://a", at(0)), Admission::Go);
        r.finish("http://a", false, at(0), at(0));
        assert_eq!(r.admit(A, "http://a", at(0)), Admission::Go);
        let Admission::Later(when, why) = r.admit(A, "http://a", at(0)) else {
            panic!("the burst is two");
        };
        assert_eq!(why, Blocked::Rate);
        assert_eq!(when, at(500));
        assert_eq!(r.admit(A, "http://a", at(500)), Admission::Go);
    }

    #[test]
    fn the_breaker_opens_probes_and_closes() {
        let r = receivers(10, 0.0);
        fail_three_times(&r, A, "http://a");
        assert!(
            matches!(r.admit(A, "http://a", at(10)), Admission::Later(t, Blocked::Open) if t == at(30_002))
        );
        assert_eq!(r.skip(at(10)), [A]);
        // Half-open: one probe; a second waits for it.
        assert_eq!(r.admit(A, "http://a", at(30_002)), Admission::Go);
        assert!(matches!(
            r.admit(A, "http://a", at(30_003)),
            Admission::Later(_, Blocked::Probing)
        ));
        // The probe fails: open again, twice as long.
        r.finish("http://a", true, at(30_100), at(30_100));
        assert!(
            matches!(r.admit(A, "http://a", at(30_200)), Admission::Later(t, _) if t == at(90_100))
        );
        // The next probe succeeds: closed.
        assert_eq!(r.admit(A, "http://a", at(90_100)), Admission::Go);
        r.finish("http://a", false, at(90_200), at(90_200));
        assert_eq!(r.admit(A, "http://a", at(90_200)), Admission::Go);
        assert!(r.skip(at(90_200)).is_empty());
    }

    /// Deliveries already in flight when the breaker opened fail after it: their failures
    /// neither extend nor double the pause; the probe's does.
    #[test]
    fn failures_in_flight_when_the_breaker_opened_do_not_lengthen_it() {
        let r = receivers(20, 0.0);
        answered(&r, A, "http://a");
        for _ in 0..16 {
            assert_eq!(r.admit(A, "http://a", at(0)), Admission::Go);
        }
        for n in 0..16 {
            r.finish("http://a", true, at(0), at(100 + n));
        }
        // Opened by the third failure, at 102, for the first cooldown; the other 13 changed
        // nothing.
        assert_eq!(
            r.admit(A, "http://a", at(200)),
            Admission::Later(at(30_102), Blocked::Open)
        );
        // The probe is admitted after the opening, so its failure doubles the pause.
        assert_eq!(r.admit(A, "http://a", at(30_102)), Admission::Go);
        r.finish("http://a", true, at(30_102), at(30_200));
        assert_eq!(
            r.admit(A, "http://a", at(30_300)),
            Admission::Later(at(90_200), Blocked::Open)
        );
    }

    /// A receiver that has not answered yet takes one delivery at a time, and one more for each
    /// of its POSTs that goes slow; once one ends well, its whole limit.
    #[test]
    fn a_receiver_takes_one_delivery_at_a_time_until_it_answers() {
        let r = receivers(4, 0.0);
        assert_eq!(r.admit(A, "http://new", at(0)), Admission::Go);
        assert_eq!(
            r.admit(A, "http://new", at(1)),
            Admission::Later(at(1), Blocked::Unproven)
        );
        assert_eq!(r.skip(at(1)), [A], "left out of claims meanwhile");
        let first = r.slow("http://new");
        assert_eq!(r.admit(A, "http://new", at(2_000)), Admission::Go);
        assert!(matches!(
            r.admit(A, "http://new", at(2_001)),
            Admission::Later(_, Blocked::Unproven)
        ));
        let second = r.slow("http://new");
        assert_eq!(r.admit(A, "http://new", at(4_000)), Admission::Go);
        drop((first, second));
        assert!(matches!(
            r.admit(A, "http://new", at(4_001)),
            Admission::Later(_, Blocked::Unproven)
        ));
        // One answer, and it takes its whole limit: 2 still in flight, 2 more.
        r.finish("http://new", false, at(0), at(4_100));
        assert_eq!(r.admit(A, "http://new", at(4_100)), Admission::Go);
        assert_eq!(r.admit(A, "http://new", at(4_100)), Admission::Go);
        assert!(matches!(
            r.admit(A, "http://new", at(4_100)),
            Admission::Later(_, Blocked::Full)
        ));
        // Other receivers were never held back by it.
        assert_eq!(r.admit(B, "http://other", at(1)), Admission::Go);
    }

    /// A failure (no answer, a timeout, a 5xx or a 429) makes a receiver take one delivery at
    /// a time, slow POSTs included, until one ends well: a receiver whose POSTs time out one
    /// after another gets no new one while any still hangs.
    #[test]
    fn a_failure_makes_a_receiver_take_one_at_a_time_again() {
        let r = receivers(4, 0.0);
        answered(&r, A, "http://a");
        // Two failures: the breaker of `receivers` opens at the third.
        for _ in 0..2 {
            assert_eq!(r.admit(A, "http://a", at(1)), Admission::Go);
        }
        let hanging = r.slow("http://a");
        r.finish("http://a", true, at(1), at(2));
        assert!(
            matches!(
                r.admit(A, "http://a", at(3)),
                Admission::Later(_, Blocked::Unproven)
            ),
            "one still hangs"
        );
        drop(hanging);
        r.finish("http://a", true, at(1), at(5));
        assert_eq!(
            r.admit(A, "http://a", at(6)),
            Admission::Go,
            "none in flight"
        );
        assert!(matches!(
            r.admit(A, "http://a", at(6)),
            Admission::Later(_, Blocked::Unproven)
        ));
        r.finish("http://a", false, at(6), at(7));
        assert_eq!(r.admit(A, "http://a", at(8)), Admission::Go);
        assert_eq!(r.admit(A, "http://a", at(8)), Admission::Go);
    }

    /// An attempt waiting for a receiver that has not answered is admitted as soon as it
    /// answers, and given back after [`UNPROVEN_WAIT`] if it does not.
    #[tokio::test]
    async fn an_attempt_waits_briefly_for_a_receiver_that_has_not_answered() {
        let r = std::sync::Arc::new(receivers(4, 0.0));
        assert_eq!(r.admit(A, "http://new", at(0)), Admission::Go);
        let started = tokio::time::Instant::now();
        let admission = r
            .admit_waiting(A, "http://new", || at(1), Duration::from_secs(30))
            .await;
        assert!(matches!(admission, Admission::Later(_, Blocked::Unproven)));
        let waited = started.elapsed();
        assert!(
            waited >= UNPROVEN_WAIT && waited < Duration::from_secs(30),
            "{waited:?}"
        );
        let answering = {
            let r = r.clone();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(20)).await;
                r.finish("http://new", false, at(0), at(2));
            })
        };
        let admission = r
            .admit_waiting(A, "http://new", || at(3), Duration::from_secs(30))
            .await;
        assert_eq!(admission, Admission::Go);
        answering.await.expect("answered");
    }

    /// One organization's failing path on a shared host does not stop another's deliveries.
    #[test]
    fn receivers_are_per_organization() {
        use hubhook_store::OrganizationId;
        let theirs = receiver_of(OrganizationId(1), "http://shared.example/bad");
        let ours = receiver_of(OrganizationId(2), "http://shared.example/good");
        assert_ne!(theirs, ours);
        assert_eq!(
            receiver_of(OrganizationId(2), "http://shared.example/other"),
            ours,
            "one organization's paths on a host are one receiver"
        );
        let r = receivers(10, 0.0);
        answered(&r, B, &ours);
        fail_three_times(&r, A, &theirs);
        assert!(matches!(
            r.admit(A, &theirs, at(10)),
            Admission::Later(_, Blocked::Open)
        ));
        assert_eq!(r.admit(B, &ours, at(10)), Admission::Go);
        assert_eq!(r.skip(at(10)), [A]);
    }

    #[test]
    fn answers_from_a_live_receiver_do_not_open_the_breaker() {
        let r = receivers(10, 0.0);
        for n in 0..5 {
            assert_eq!(r.admit(A, "http://a", at(n)), Admission::Go);
            r.finish("http://a", n % 2 == 0, at(n), at(n));
        }
        assert_eq!(r.admit(A, "http://a", at(10)), Admission::Go);
    }

    /// Idle receivers are forgotten once many are remembered; busy or failing ones are kept.
    #[test]
    fn idle_receivers_are_forgotten_and_failing_ones_kept() {
        let r = receivers(10, 0.0);
        fail_three_times(&r, A, "http://dead");
        for i in 0..MAX_REMEMBERED + 10 {
            let origin = format!("http://idle-{i}");
            assert_eq!(
                r.admit(InstanceId(i as i64 + 10), &origin, at(5)),
                Admission::Go
            );
            r.finish(&origin, false, at(5), at(5));
        }
        assert!(r.origins().len() <= MAX_REMEMBERED);
        assert!(r.instances.lock().expect("lock").len() <= MAX_REMEMBERED);
        // The failing receiver is still open, and still keeps its instance out of claims.
        assert!(r.skip(at(10)).contains(&A));
    }

    /// An instance whose callback URL changed is not held back by its old receiver's breaker.
    #[test]
    fn a_forgotten_instance_leaves_its_old_receivers_breaker_behind() {
        let r = receivers(10, 0.0);
        fail_three_times(&r, A, "http://dead");
        assert_eq!(
            r.admit(B, "http://dead", at(5)),
            Admission::Later(at(30_002), Blocked::Open)
        );
        assert_eq!(r.skip(at(10)).len(), 2);
        r.forget(A);
        assert_eq!(r.skip(at(10)), [B]);
        assert_eq!(r.admit(A, "http://fixed", at(11)), Admission::Go);
    }

    #[test]
    fn origins_are_scheme_host_and_port() {
        assert_eq!(
            origin_of("https://hooks.example/in?token=x"),
            "https://hooks.example"
        );
        assert_eq!(
            origin_of("http://127.0.0.1:8080/a"),
            "http://127.0.0.1:8080"
        );
        assert_eq!(
            origin_of("http://127.0.0.1:8080/b"),
            origin_of("http://127.0.0.1:8080/a")
        );
    }
}
