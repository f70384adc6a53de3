//! Pacing of one ConnectWise site: a request budget, and a pause after ConnectWise says "too
//! many requests".
//!
//! Every instance that talks to the same site (the same base URL and company) shares one
//! [`SiteThrottle`], whether it polls or answers hub calls: ConnectWise limits requests per
//! site, so the budget is per site too. A `429` pauses the whole site for its `Retry-After`,
//! not only the request that got it, and other sites are not touched.

use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};

/// Requests a site may get at once after a quiet spell: enough for a poll's first pages and a
/// few hub calls together, few enough that a burst stays well inside ConnectWise's limit.
pub const MAX_BURST: NonZeroU32 = NonZeroU32::new(20).expect("non-zero");

/// A site's request budget and pause.
#[derive(Debug)]
pub struct SiteThrottle {
    budget: Option<DefaultDirectRateLimiter>,
    paused_until: Mutex<Option<Instant>>,
}

impl SiteThrottle {
    /// At most `per_minute` requests a minute, evenly spread with bursts of up to
    /// [`MAX_BURST`]; `None`: no budget, only pauses.
    pub fn new(per_minute: Option<NonZeroU32>) -> SiteThrottle {
        let budget = per_minute.map(|per_minute| {
            let burst = per_minute.min(MAX_BURST);
            RateLimiter::direct(Quota::per_minute(per_minute).allow_burst(burst))
        });
        SiteThrottle {
            budget,
            paused_until: Mutex::new(None),
        }
    }

    /// Waits until the site may be sent a request: its pause is over and its budget allows.
    pub async fn ready(&self) {
        if let Some(left) = self.paused_for() {
            tokio::time::sleep(left).await;
        }
        if let Some(budget) = &self.budget {
            budget.until_ready().await;
        }
    }

    /// Pauses the site for `duration` (longer pauses win over shorter ones).
    pub fn pause(&self, duration: Duration) {
        let until = Instant::now() + duration;
        let mut paused = self.paused_until.lock().unwrap_or_else(|e| e.into_inner());
        if paused.is_none_or(|current| current < until) {
            *paused = Some(until);
        }
    }

    /// How much of the site's pause is left, if it is paused.
    pub fn paused_for(&self) -> Option<Duration> {
        let paused = *self.paused_until.lock().unwrap_or_else(|e| e.into_inner());
        paused
            .map(|until| until.saturating_duration_since(Instant::now()))
            .filter(|left| !left.is_zero())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_pause_holds_requests_and_longer_pauses_win() {
        let throttle = SiteThrottle::new(None);
        assert_eq!(throttle.paused_for(), None);
        throttle.pause(Duration::from_millis(300));
        throttle.pause(Duration::from_millis(10));
        let left = throttle.paused_for().expect("paused");
        assert!(left > Duration::from_millis(100), "{left:?}");
        let started = Instant::now();
        throttle.ready().await;
        assert!(started.elapsed() >= Duration::from_millis(100));
        assert_eq!(throttle.paused_for(), None);
    }

    #[tokio::test]
    async fn the_budget_allows_a_burst_then_spreads_requests() {
        // 600 a minute: one every 100 ms after a burst of MAX_BURST.
        let throttle = SiteThrottle::new(NonZeroU32::new(600));
        let started = Instant::now();
        for _ in 0..MAX_BURST.get() {
            throttle.ready().await;
        }
        let burst = started.elapsed();
        throttle.ready().await;
        throttle.ready().await;
        assert!(
            started.elapsed() >= burst + Duration::from_millis(150),
            "two requests past the burst took {:?}",
            started.elapsed() - burst
        );
    }
}
