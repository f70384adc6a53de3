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
    in_flight: Arc<Mutex<HashMap<OrganizationId, u32>>>,
    walked_to: Mutex<Option<OrganizationId>>,
}

/// One delivery counted in flight for its organization until dropped.
pub(crate) struct InFlight {
    organization: OrganizationId,
    in_flight: Arc<Mutex<HashMap<OrganizationId, u32>>>,
}

impl FairShare {
    /// Shares of `slots` delivery slots.
    pub(crate) fn new(slots: u32) -> FairShare {
        FairShare {
            slots: slots.max(1),
            in_flight: Arc::default(),
            walked_to: Mutex::default(),
        }
    }

    /// What the next claim is to know: each organization's deliveries in flight, the share,
    /// and where its walk of the organizations starts.
    pub(crate) fn shares(&self) -> OrganizationShares {
        let in_flight: Vec<(OrganizationId, u32)> =
            self.counts().iter().map(|(org, n)| (*org, *n)).collect();
        let busy = u32::try_from(in_flight.len()).unwrap_or(u32::MAX);
        OrganizationShares {
            share: share(self.slots, busy),
            in_flight,
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
        *self.counts().entry(organization).or_default() += 1;
        InFlight {
            organization,
            in_flight: self.in_flight.clone(),
        }
    }

    fn counts(&self) -> std::sync::MutexGuard<'_, HashMap<OrganizationId, u32>> {
        self.in_flight.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut counts = self.in_flight.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = counts.get_mut(&self.organization) {
            *n = n.saturating_sub(1);
            // Gone when idle, so `busy` counts only organizations with work in flight.
            if *n == 0 {
                counts.remove(&self.organization);
            }
        }
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
                look_up_after: None,
            }
        );
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
