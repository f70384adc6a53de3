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

/// A site's request budget and pause.
#[derive(Debug)]
pub struct SiteThrottle {
    budget: DefaultDirectRateLimiter,
    paused_until: Mutex<Option<Instant>>,
}

impl SiteThrottle {
    /// At most `per_second` requests a second (bursts of as many).
    pub fn new(per_second: NonZeroU32) -> SiteThrottle {
        SiteThrottle {
            budget: RateLimiter::direct(Quota::per_second(per_second)),
            paused_until: Mutex::new(None),
        }
    }

    /// Waits until the site may be sent a request: its pause is over and its budget allows.
    pub async fn ready(&self) {
        if let Some(left) = self.paused_for() {
            tokio::time::sleep(left).await;
        }
        self.budget.until_ready().await;
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
        let throttle = SiteThrottle::new(NonZeroU32::new(1000).expect("non-zero"));
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
}
