//! ConnectWise sites, and how much of each one this node uses at a time.
//!
//! ConnectWise limits requests per site (its Developer Guide: "over 1,000 requests per minute
//! will likely experience rate limiting", then `429` with `Retry-After`), not per instance. So
//! every instance pointing at the same site (base URL and company, compared without case)
//! shares one [`Site`]:
//!
//! - a request budget and pause ([`SiteThrottle`]) used by every ConnectWise request of those
//!   instances, polls and hub calls alike. A `429` pauses that site only; other sites go on.
//! - a bound on the polls running at once against it. A poll that finds its site busy or
//!   paused is handed back to the store for a moment (`Store::defer_poll`) instead of waiting
//!   in one of the node's poll slots, so a site with a thousand instances, or one that is
//!   throttling us, never takes the slots other sites' polls need.
//!
//! The table holds one small entry per site seen. Entries nobody uses (no poll running, no
//! client holding the throttle, no pause in force) are dropped when it grows large, so
//! a node that has seen many sites keeps only the ones in use.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hubhook_connectwise::SiteThrottle;
use hubhook_core::ConnectWiseCredentials;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The limits applied to every site.
#[derive(Debug, Clone, Copy)]
pub struct SiteLimits {
    /// Polls running at once against one site, from this node.
    pub polls: usize,
    /// Requests per minute to one site from this node; `None`: no budget (only `429`s pause).
    pub requests_per_minute: Option<NonZeroU32>,
}

impl Default for SiteLimits {
    fn default() -> Self {
        SiteLimits {
            polls: 2,
            requests_per_minute: NonZeroU32::new(1000),
        }
    }
}

/// One ConnectWise site's shared state.
#[derive(Debug)]
pub struct Site {
    pub throttle: Arc<SiteThrottle>,
    polls: Arc<Semaphore>,
}

/// Every site this node talks to.
#[derive(Debug)]
pub struct Sites {
    limits: SiteLimits,
    table: Mutex<HashMap<SiteKey, Arc<Site>>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct SiteKey {
    base_url: String,
    company: String,
}

/// When the table grows past this, entries nobody uses are dropped.
const PRUNE_ABOVE: usize = 1024;

/// Why a poll cannot start against its site now, and when to try again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SiteBusy {
    /// The site's poll slots are taken.
    Full,
    /// ConnectWise asked us to wait (`429`); the pause has this long left.
    Paused(Duration),
}

impl SiteBusy {
    /// When a deferred poll should come back.
    pub fn retry_in(self) -> Duration {
        match self {
            SiteBusy::Full => BUSY_RETRY,
            SiteBusy::Paused(left) => left.max(BUSY_RETRY),
        }
    }
}

/// How soon a poll deferred because its site was busy is due again.
const BUSY_RETRY: Duration = Duration::from_secs(2);

impl Sites {
    pub fn new(limits: SiteLimits) -> Sites {
        Sites {
            limits,
            table: Mutex::new(HashMap::new()),
        }
    }

    /// The shared state of the site these credentials point at.
    pub fn site(&self, credentials: &ConnectWiseCredentials) -> Arc<Site> {
        let key = SiteKey {
            base_url: credentials
                .base_url
                .trim_end_matches('/')
                .to_ascii_lowercase(),
            company: credentials.company.trim().to_ascii_lowercase(),
        };
        let mut table = self.table.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(site) = table.get(&key) {
            return site.clone();
        }
        if table.len() >= PRUNE_ABOVE {
            table.retain(|_, site| site.in_use());
        }
        let site = Arc::new(Site {
            throttle: Arc::new(SiteThrottle::new(self.limits.requests_per_minute)),
            polls: Arc::new(Semaphore::new(self.limits.polls.max(1))),
        });
        table.insert(key, site.clone());
        site
    }

    /// A slot for one poll against the site, held until the permit is dropped; or why not now.
    pub fn start_poll(
        &self,
        credentials: &ConnectWiseCredentials,
    ) -> Result<OwnedSemaphorePermit, SiteBusy> {
        let site = self.site(credentials);
        if let Some(left) = site.throttle.paused_for() {
            return Err(SiteBusy::Paused(left));
        }
        site.polls
            .clone()
            .try_acquire_owned()
            .map_err(|_| SiteBusy::Full)
    }

    /// Sites in the table (for tests of the pruning).
    #[cfg(test)]
    fn len(&self) -> usize {
        self.table.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

impl Site {
    /// Someone holds a clone of it (a poll's permit or a client's throttle), or it is paused:
    /// dropping it would forget a limit that is in force.
    fn in_use(self: &Arc<Self>) -> bool {
        Arc::strong_count(self) > 1
            || Arc::strong_count(&self.throttle) > 1
            || Arc::strong_count(&self.polls) > 1
            || self.throttle.paused_for().is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn credentials(base_url: &str, company: &str) -> ConnectWiseCredentials {
        ConnectWiseCredentials {
            base_url: base_url.into(),
            company: company.into(),
            public_key: "p".into(),
            private_key: "k".into(),
            client_id: None,
        }
    }

    #[test]
    fn one_site_is_one_entry_whatever_the_case() {
        let sites = Sites::new(SiteLimits::default());
        let a = sites.site(&credentials(
            "https://cw.example/v4_6_release/apis/3.0",
            "Acme",
        ));
        let b = sites.site(&credentials(
            "HTTPS://CW.example/v4_6_release/apis/3.0/",
            "acme ",
        ));
        assert!(Arc::ptr_eq(&a, &b));
        let other = sites.site(&credentials(
            "https://cw.example/v4_6_release/apis/3.0",
            "beta",
        ));
        assert!(!Arc::ptr_eq(&a, &other));
    }

    #[test]
    fn polls_per_site_are_bounded_and_a_pause_defers_them() {
        let sites = Sites::new(SiteLimits {
            polls: 2,
            requests_per_minute: None,
        });
        let acme = credentials("https://cw.example", "acme");
        let first = sites.start_poll(&acme).expect("first slot");
        let _second = sites.start_poll(&acme).expect("second slot");
        assert_eq!(sites.start_poll(&acme).err(), Some(SiteBusy::Full));
        // Another site is not affected.
        let beta = credentials("https://cw.example", "beta");
        assert!(sites.start_poll(&beta).is_ok());
        drop(first);
        let _third = sites.start_poll(&acme).expect("a freed slot");

        sites.site(&beta).throttle.pause(Duration::from_secs(30));
        match sites.start_poll(&beta) {
            Err(SiteBusy::Paused(left)) => assert!(left > Duration::from_secs(20), "{left:?}"),
            other => panic!("expected a pause, got {other:?}"),
        }
        assert!(SiteBusy::Paused(Duration::from_secs(30)).retry_in() >= Duration::from_secs(30));
    }

    #[test]
    fn unused_sites_are_dropped_when_the_table_grows() {
        let sites = Sites::new(SiteLimits::default());
        let kept = sites.start_poll(&credentials("https://kept.example", "x"));
        assert!(kept.is_ok());
        sites
            .site(&credentials("https://paused.example", "x"))
            .throttle
            .pause(Duration::from_secs(60));
        for i in 0..PRUNE_ABOVE + 10 {
            sites.site(&credentials(&format!("https://s{i}.example"), "x"));
        }
        assert!(sites.len() < PRUNE_ABOVE, "{} sites kept", sites.len());
        let table = sites.table.lock().unwrap();
        let names: Vec<&str> = table.keys().map(|k| k.base_url.as_str()).collect();
        assert!(
            names.contains(&"https://kept.example"),
            "a site in use was dropped"
        );
        assert!(
            names.contains(&"https://paused.example"),
            "a paused site was dropped"
        );
    }
}
