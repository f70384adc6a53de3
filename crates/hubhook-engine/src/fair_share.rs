//! A fair share of this node's delivery slots per organization.
//!
//! Receiver isolation (`receivers`) bounds what one receiver of one organization holds, but
//! an organization with many receivers (or a large backlog to healthy ones) would still take
//! slots in claim order: its older notifications, claimed first, could hold every slot while
//! another organization's due notifications wait. Tenants share the node, so the node shares
//! its slots among them.
//!
//! # The share
//!
//! While other organizations have due work, an organization may have at most
//!
//! ```text
//! share = ceil(slots / (organizations with deliveries in flight on this node + 1))
//! ```
//!
//! deliveries in flight. The `+ 1` is for an organization that has nothing in flight yet:
//! this node cannot know who is waiting until it claims, so a lone organization is held to
//! half the slots *first* (the claim then fills the other half from it as well if nobody else
//! has due work, see below), which keeps room for a newcomer's turns. With `n` organizations
//! busy, each one's share tends to `slots / n` as newcomers stop arriving: every one below its
//! share is served before any one at it. The share may fall below a receiver's concurrency
//! limit (16 slots, 8 busy organizations: 2 each); that limit protects the receiver, it is not
//! an entitlement, and an organization with few due notifications leaves its slots to the
//! others anyway. It is at least 1, so every organization always has a turn.
//!
//! *In flight* counts every delivery of the organization from its claim to the end of its
//! attempt, including POSTs that gave their slot back after `dispatcher::SLOW_AFTER`: an
//! organization whose receivers hang would otherwise come back under its share every two
//! seconds and fill the node's allowance of slow POSTs as well.
//!
//! # Work-conserving, in one claim
//!
//! The share is not a reservation: the claim (`Store::claim_and_begin_attempts`, see
//! `hubhook_store::OrganizationShares`) takes each organization's turns first only up to its
//! allowance (share less what it has in flight), and then, in the same statement, its further
//! turns after everyone else's, so slots left free because only organizations at their share
//! have due work still go to them. A lone organization therefore still uses every slot, and
//! the share never costs a second claim: the exclusion and the fallback are two ranks of one
//! ordering.
//!
//! # Except while its POSTs hang
//!
//! Work-conserving, an organization whose receivers hang could take every slot while nobody
//! else had due work: its POSTs give their slots back after `dispatcher::SLOW_AFTER` only
//! while the node's allowance of slow POSTs has room, and once that is spent its hanging POSTs
//! held every slot, so a newcomer's notification waited for a delivery timeout. So an
//! organization with a *slow* POST in flight (unanswered past `SLOW_AFTER`, counted from then
//! to the end of its attempt by a [`Slow`] guard that the POST's future holds, so a panic or
//! an abort stops counting too) takes no turns past its share: the claim takes at most its
//! share less the slots it holds, even when nobody else has work, and the other slots stay free
//! for whoever comes next. What counts there is the slots it holds, not its deliveries in
//! flight: a slow POST that gave its slot back costs nobody a slot, and counting it would stop
//! an organization alone on the node from delivering anything while a few of its POSTs hang.
//! An organization held back this way is left out of the dispatcher's next due time (waking
//! for it would claim nothing); a POST of it giving its slot back wakes the dispatcher, and
//! one ending does anyway. An organization without slow POSTs is not capped: a lone healthy
//! one still uses every slot. With one slot, the share is that slot, so nothing is kept free.
//!
//! # Seeing the others
//!
//! A share is only as good as the claim's view of who waits: behind a large backlog of one
//! organization, another's notifications lie past the claim's window of the oldest due. The
//! claim therefore also looks up the oldest due notifications of up to 64 organizations it can
//! serve (under their share, with due work that is not in flight), found by a walk of the
//! organizations with pending notifications in id order (index
//! `notifications_pending_by_organization`, a seek or two each, at most 256 visited). The walk
//! starts after the organization where the previous claim's walk ended, which this module
//! keeps beside the counts (`walked_to`): when more organizations can be served than one claim
//! looks up, the next claims go on through the others, and every one is looked up within a few
//! claims. An organization at its share is visited but not looked up, so a lone busy
//! organization costs the claim a few seeks, and one under its share a read of at most a
//! claim's worth of its rows beside the window.
//!
//! The counts are per node, like the slots they share: each node keeps its own tenants apart,
//! and nothing needs coordinating between nodes.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use hubhook_store::{OrganizationId, OrganizationShares};

/// Deliveries in flight on this node, per organization, and where the next claim's walk of
/// the organizations starts.
pub(crate) struct FairShare {
    slots: u32,
    counts: Counted,
    walked_to: Mutex<Option<OrganizationId>>,
}

type Counted = Arc<Mutex<HashMap<OrganizationId, Counts>>>;

/// One organization's deliveries on this node.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Counts {
    /// From the claim to the end of the attempt.
    in_flight: u32,
    /// Of those, POSTs unanswered past `dispatcher::SLOW_AFTER`.
    slow: u32,
    /// Of the slow ones, those that gave their slot back.
    gave_slot_back: u32,
}

/// One delivery counted in flight for its organization until dropped.
pub(crate) struct InFlight {
    organization: OrganizationId,
    counts: Counted,
}

/// One POST counted slow for its organization until dropped, and as holding no slot once it
/// gave its slot back.
pub(crate) struct Slow {
    organization: OrganizationId,
    counts: Counted,
    gave_slot_back: bool,
}

impl FairShare {
    /// Shares of `slots` delivery slots.
    pub(crate) fn new(slots: u32) -> FairShare {
        FairShare {
            slots: slots.max(1),
            counts: Arc::default(),
            walked_to: Mutex::default(),
        }
    }

    /// What the next claim is to know: each organization's deliveries in flight, the share,
    /// which organizations have slow POSTs and how many slots they hold, and where the walk of
    /// the organizations starts.
    pub(crate) fn shares(&self) -> OrganizationShares {
        let counts = lock(&self.counts);
        let in_flight: Vec<(OrganizationId, u32)> = counts
            .iter()
            .filter(|(_, n)| n.in_flight > 0)
            .map(|(org, n)| (*org, n.in_flight))
            .collect();
        let slow = counts
            .iter()
            .filter(|(_, n)| n.slow > 0)
            .map(|(org, n)| (*org, n.in_flight.saturating_sub(n.gave_slot_back)))
            .collect();
        drop(counts);
        let busy = u32::try_from(in_flight.len()).unwrap_or(u32::MAX);
        OrganizationShares {
            share: share(self.slots, busy),
            in_flight,
            slow,
            look_up_after: *self.walk(),
        }
    }

    /// Records where a claim's walk of the organizations ended, for the next claim to go on
    /// from. A claim that walked nothing (no organization has pending notifications) leaves
    /// the place as it was: any place is as good then.
    pub(crate) fn walked_to(&self, organization: Option<OrganizationId>) {
        if let Some(organization) = organization {
            *self.walk() = Some(organization);
        }
    }

    fn walk(&self) -> std::sync::MutexGuard<'_, Option<OrganizationId>> {
        self.walked_to.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Counts a claimed delivery of `organization` until the returned guard is dropped.
    pub(crate) fn hold(&self, organization: OrganizationId) -> InFlight {
        lock(&self.counts)
            .entry(organization)
            .or_default()
            .in_flight += 1;
        InFlight {
            organization,
            counts: self.counts.clone(),
        }
    }

    /// Counts a POST of `organization` as slow until the returned guard is dropped (held by
    /// the POST's own future, so that an attempt that ends in any way, a panic or an abort
    /// included, stops counting).
    pub(crate) fn slow(&self, organization: OrganizationId) -> Slow {
        lock(&self.counts).entry(organization).or_default().slow += 1;
        Slow {
            organization,
            counts: self.counts.clone(),
            gave_slot_back: false,
        }
    }
}

impl Slow {
    /// The POST gave its slot back: it no longer counts toward the slots its organization
    /// holds.
    pub(crate) fn gave_slot_back(&mut self) {
        if !self.gave_slot_back {
            self.gave_slot_back = true;
            lock(&self.counts)
                .entry(self.organization)
                .or_default()
                .gave_slot_back += 1;
        }
    }
}

fn lock(counts: &Counted) -> std::sync::MutexGuard<'_, HashMap<OrganizationId, Counts>> {
    counts.lock().unwrap_or_else(|e| e.into_inner())
}

/// Takes one off the organization's counts (`change` says which), and forgets the
/// organization once they are all 0, so that `busy` counts only organizations with work in
/// flight and the map does not grow with every organization ever served.
fn count_down(counts: &Counted, organization: OrganizationId, change: impl FnOnce(&mut Counts)) {
    let mut counts = lock(counts);
    if let Some(n) = counts.get_mut(&organization) {
        change(n);
        if *n == Counts::default() {
            counts.remove(&organization);
        }
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        count_down(&self.counts, self.organization, |n| {
            n.in_flight = n.in_flight.saturating_sub(1);
        });
    }
}

impl Drop for Slow {
    fn drop(&mut self) {
        let gave_slot_back = self.gave_slot_back;
        count_down(&self.counts, self.organization, |n| {
            n.slow = n.slow.saturating_sub(1);
            if gave_slot_back {
                n.gave_slot_back = n.gave_slot_back.saturating_sub(1);
            }
        });
    }
}

/// The share of one organization when `busy` organizations have deliveries in flight: see the
/// module docs.
fn share(slots: u32, busy: u32) -> u32 {
    slots.div_ceil(busy.saturating_add(1)).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_share_keeps_room_for_one_more_organization() {
        for (slots, busy, expected) in [
            (16, 0, 16),
            (16, 1, 8),
            (16, 2, 6),
            (16, 3, 4),
            (16, 7, 2),
            (16, 40, 1),
            (1, 0, 1),
            (1, 5, 1),
        ] {
            assert_eq!(share(slots, busy), expected, "{slots} slots, {busy} busy");
        }
    }

    #[test]
    fn deliveries_count_until_their_guard_drops() {
        let fair = FairShare::new(16);
        let (a, b) = (OrganizationId(1), OrganizationId(2));
        let first = fair.hold(a);
        let second = fair.hold(a);
        let other = fair.hold(b);
        let mut shares = fair.shares();
        shares.in_flight.sort_by_key(|(org, _)| org.0);
        assert_eq!(shares.in_flight, [(a, 2), (b, 1)]);
        assert_eq!(shares.share, 6);
        drop((first, other));
        assert_eq!(fair.shares().in_flight, [(a, 1)]);
        assert_eq!(fair.shares().share, 8);
        drop(second);
        assert_eq!(
            fair.shares(),
            OrganizationShares {
                share: 16,
                in_flight: Vec::new(),
                slow: Vec::new(),
                look_up_after: None,
            }
        );
    }

    #[test]
    fn slow_posts_count_with_the_slots_their_organization_holds() {
        let fair = FairShare::new(4);
        let (a, b) = (OrganizationId(1), OrganizationId(2));
        let claimed: Vec<InFlight> = (0..3).map(|_| fair.hold(a)).collect();
        let healthy = fair.hold(b);
        assert_eq!(fair.shares().slow, [], "nothing slow yet");

        // Two of a's POSTs go slow; one gives its slot back (told twice, counted once).
        let mut gave_back = fair.slow(a);
        gave_back.gave_slot_back();
        gave_back.gave_slot_back();
        let kept = fair.slow(a);
        let shares = fair.shares();
        assert_eq!(
            shares.slow,
            [(a, 2)],
            "three in flight, one gave its slot back"
        );
        assert_eq!(shares.share, 2, "two organizations busy");
        assert_eq!(shares.held_back(), [a], "a holds its share of the slots");

        drop(kept);
        assert_eq!(fair.shares().slow, [(a, 2)], "still one slow POST");
        drop(gave_back);
        assert_eq!(fair.shares().slow, [], "no slow POST left");
        assert_eq!(fair.shares().held_back(), []);
        drop((claimed, healthy));
        assert_eq!(
            fair.shares(),
            FairShare::new(4).shares(),
            "nothing left over"
        );
    }

    #[test]
    fn an_organization_with_slow_posts_below_its_share_is_not_held_back() {
        let fair = FairShare::new(4);
        let a = OrganizationId(1);
        let _in_flight: Vec<InFlight> = (0..3).map(|_| fair.hold(a)).collect();
        let mut slow: Vec<Slow> = (0..2).map(|_| fair.slow(a)).collect();
        for post in &mut slow {
            post.gave_slot_back();
        }
        let shares = fair.shares();
        assert_eq!((shares.share, shares.slow.clone()), (2, vec![(a, 1)]));
        assert_eq!(shares.held_back(), [], "one slot held of a share of two");
    }

    #[test]
    fn a_slow_post_stops_counting_however_its_attempt_ends() {
        let fair = FairShare::new(4);
        let a = OrganizationId(1);
        let in_flight = fair.hold(a);
        let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let mut slow = fair.slow(a);
            slow.gave_slot_back();
            panic!("the attempt failed midway");
        }));
        assert!(panicked.is_err());
        assert_eq!(fair.shares().slow, [], "unmarked by the unwinding");

        // An attempt's future dropped unfinished (a task aborted): the guard goes with it.
        let attempt = async {
            let _slow = fair.slow(a);
            std::future::pending::<()>().await;
        };
        let mut attempt = Box::pin(attempt);
        let waker = std::task::Waker::noop();
        let polled = attempt
            .as_mut()
            .poll(&mut std::task::Context::from_waker(waker));
        assert!(polled.is_pending());
        assert_eq!(
            fair.shares().slow,
            [(a, 1)],
            "slow while the POST is in flight"
        );
        drop(attempt);
        assert_eq!(fair.shares().slow, [], "unmarked by the abort");
        drop(in_flight);
        assert_eq!(fair.shares(), FairShare::new(4).shares());
    }

    #[test]
    fn the_next_claim_walks_on_from_where_the_last_one_ended() {
        let fair = FairShare::new(16);
        assert_eq!(
            fair.shares().look_up_after,
            None,
            "from the lowest id at first"
        );
        fair.walked_to(Some(OrganizationId(70)));
        assert_eq!(fair.shares().look_up_after, Some(OrganizationId(70)));
        fair.walked_to(None);
        assert_eq!(
            fair.shares().look_up_after,
            Some(OrganizationId(70)),
            "a claim that walked nothing keeps the place"
        );
        fair.walked_to(Some(OrganizationId(3)));
        assert_eq!(fair.shares().look_up_after, Some(OrganizationId(3)));
    }
}
