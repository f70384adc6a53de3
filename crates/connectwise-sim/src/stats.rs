//! Requests served, by route and status, for `GET /__sim/stats`.

use std::collections::BTreeMap;
use std::sync::Mutex;

use serde_json::{Value, json};

#[derive(Debug, Default)]
pub struct Stats {
    inner: Mutex<BTreeMap<String, BTreeMap<u16, u64>>>,
}

impl Stats {
    /// `route` is a template such as `GET /company/contacts/{id}` so the map
    /// stays small whatever ids clients use.
    pub fn record(&self, route: &str, status: u16) {
        let mut m = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        *m.entry(route.to_string())
            .or_default()
            .entry(status)
            .or_default() += 1;
    }

    pub fn reset(&self) {
        self.inner.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }

    pub fn snapshot(&self) -> Value {
        let m = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let mut total = 0u64;
        let mut by_status: BTreeMap<String, u64> = BTreeMap::new();
        let mut by_path = serde_json::Map::new();
        for (route, statuses) in m.iter() {
            let mut s = serde_json::Map::new();
            for (status, n) in statuses {
                total += n;
                *by_status.entry(status.to_string()).or_default() += n;
                s.insert(status.to_string(), json!(n));
            }
            by_path.insert(route.clone(), Value::Object(s));
        }
        json!({"total": total, "byStatus": by_status, "byPath": by_path})
    }
}
