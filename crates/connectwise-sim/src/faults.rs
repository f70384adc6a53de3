//! Injected faults: throttling (429 + Retry-After, with the body ConnectWise
//! documents), server errors, added latency and dropped connections, for the
//! next N requests, a fraction of requests, or until cleared.

use std::sync::Mutex;
use std::time::Duration;

use serde_json::{Value, json};

use crate::Fault;
use crate::prng::SplitMix64;

#[derive(Debug)]
struct Active {
    fault: Fault,
    /// Remaining applications; None = until cleared.
    remaining: Option<u32>,
}

#[derive(Debug)]
pub struct Faults {
    list: Mutex<Vec<Active>>,
    rng: Mutex<SplitMix64>,
}

/// What the request pipeline must do.
#[derive(Debug, Default, PartialEq)]
pub struct Decision {
    pub latency: Option<Duration>,
    pub outcome: Outcome,
}

#[derive(Debug, Default, PartialEq)]
pub enum Outcome {
    #[default]
    Serve,
    Respond {
        status: u16,
        retry_after: Option<u64>,
        body: Value,
    },
    Drop,
}

impl Faults {
    pub fn new(seed: u64) -> Self {
        Faults {
            list: Mutex::new(Vec::new()),
            rng: Mutex::new(SplitMix64::new(seed ^ 0xFA17)),
        }
    }

    pub fn add(&self, fault: Fault) {
        let remaining = fault.count;
        self.lock().push(Active { fault, remaining });
    }

    pub fn clear(&self) {
        self.lock().clear();
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn describe(&self) -> Value {
        Value::Array(
            self.lock()
                .iter()
                .map(|a| {
                    json!({
                        "status": a.fault.status, "remaining": a.remaining, "retryAfter": a.fault.retry_after,
                        "fraction": a.fault.fraction, "latencyMs": a.fault.latency_ms,
                        "dropConnection": a.fault.drop_connection, "pathContains": a.fault.path_contains,
                    })
                })
                .collect(),
        )
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Active>> {
        self.list.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Decides the fate of a request to `path`. Latencies add up; the first
    /// matching status or drop wins.
    pub fn decide(&self, path: &str) -> Decision {
        let mut list = self.lock();
        if list.is_empty() {
            return Decision::default();
        }
        let mut rng = self.rng.lock().unwrap_or_else(|e| e.into_inner());
        let mut decision = Decision::default();
        for active in list.iter_mut() {
            if active.remaining == Some(0) {
                continue;
            }
            let f = &active.fault;
            if f.path_contains
                .as_deref()
                .is_some_and(|p| !path.to_ascii_lowercase().contains(&p.to_ascii_lowercase()))
            {
                continue;
            }
            if let Some(fraction) = f.fraction
                && !rng.chance(fraction)
            {
                continue;
            }
            let decisive = f.status.is_some() || f.drop_connection == Some(true);
            if decisive && decision.outcome != Outcome::Serve {
                continue;
            }
            if let Some(ms) = f.latency_ms {
                decision.latency = Some(
                    decision
                        .latency
                        .unwrap_or_default()
                        .saturating_add(Duration::from_millis(ms)),
                );
            }
            if f.drop_connection == Some(true) {
                decision.outcome = Outcome::Drop;
            } else if let Some(status) = f.status {
                decision.outcome = response(status, f.retry_after);
            }
            if let Some(r) = active.remaining.as_mut() {
                *r -= 1;
            }
        }
        list.retain(|a| a.remaining != Some(0));
        decision
    }
}

fn response(status: u16, retry_after: Option<u64>) -> Outcome {
    match status {
        429 => {
            let secs = retry_after.unwrap_or(30);
            Outcome::Respond {
                status,
                retry_after: Some(secs),
                // The developer guide's 429 body uses `error`, not `code`.
                body: json!({"error": "ConnectWiseAPI", "message": format!("Too many requests. Please try again in {secs} seconds.")}),
            }
        }
        500 => Outcome::Respond {
            status,
            retry_after,
            body: json!({"code": "ConnectWiseApi", "message": "An error has occurred. Please try again later."}),
        },
        503 => Outcome::Respond {
            status,
            retry_after,
            body: json!({"code": "ConnectWiseApi", "message": "The service is unavailable. Please try again later."}),
        },
        other => Outcome::Respond {
            status: other,
            retry_after,
            body: json!({"code": "ConnectWiseApi", "message": format!("Simulated failure ({other}).")}),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status_of(d: &Decision) -> Option<u16> {
        match d.outcome {
            Outcome::Respond { status, .. } => Some(status),
            _ => None,
        }
    }

    #[test]
    fn counted_faults_expire() {
        let f = Faults::new(1);
        f.add(Fault {
            status: Some(429),
            count: Some(2),
            retry_after: Some(7),
            ..Fault::default()
        });
        let d = f.decide("/v4_6_release/apis/3.0/company/contacts");
        assert_eq!(status_of(&d), Some(429));
        if let Outcome::Respond {
            retry_after, body, ..
        } = &d.outcome
        {
            assert_eq!(*retry_after, Some(7));
            assert_eq!(
                body["message"],
                "Too many requests. Please try again in 7 seconds."
            );
        }
        assert_eq!(status_of(&f.decide("/x")), Some(429));
        assert_eq!(f.decide("/x"), Decision::default());
        assert_eq!(f.len(), 0);
    }

    #[test]
    fn path_filter_latency_drop_and_fraction() {
        let f = Faults::new(1);
        f.add(Fault {
            status: Some(500),
            path_contains: Some("tickets".into()),
            ..Fault::default()
        });
        assert_eq!(status_of(&f.decide("/a/company/contacts")), None);
        assert_eq!(status_of(&f.decide("/a/service/Tickets/1")), Some(500));
        f.clear();
        f.add(Fault {
            latency_ms: Some(5),
            ..Fault::default()
        });
        f.add(Fault {
            drop_connection: Some(true),
            count: Some(1),
            ..Fault::default()
        });
        let d = f.decide("/a");
        assert_eq!(d.latency, Some(Duration::from_millis(5)));
        assert_eq!(d.outcome, Outcome::Drop);
        f.clear();
        f.add(Fault {
            status: Some(500),
            fraction: Some(0.5),
            ..Fault::default()
        });
        let hits = (0..1000)
            .filter(|_| status_of(&f.decide("/a")).is_some())
            .count();
        assert!((350..650).contains(&hits), "{hits}");
    }

    #[test]
    fn huge_latencies_saturate_instead_of_panicking() {
        let f = Faults::new(1);
        // u64::MAX ms is ~1/1000 of Duration::MAX, so 1001 of them overflow a plain sum.
        for _ in 0..1001 {
            f.add(Fault {
                latency_ms: Some(u64::MAX),
                ..Fault::default()
            });
        }
        assert_eq!(f.decide("/a").latency, Some(Duration::MAX));
    }
}
