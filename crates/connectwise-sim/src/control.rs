//! Test control under `/__sim/` (never under the API paths, so a client
//! cannot reach it by accident): faults, clock, reset, stats and the
//! ConnectWise quirks that tests need to provoke (mass updates sharing one
//! lastUpdated, company merges that do not bump lastUpdated).

use axum::http::Method;
use axum::response::Response;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::routes::json_response;
use crate::{Fault, Simulator};

/// The longest latency a fault may add: 10 minutes.
pub const MAX_LATENCY_MS: u64 = 10 * 60 * 1000;

fn bad(message: impl Into<String>) -> Response {
    json_response(
        400,
        &json!({"code": "InvalidObject", "message": message.into()}),
    )
}

fn parse<T: for<'de> Deserialize<'de> + Default>(body: &[u8]) -> Result<T, Box<Response>> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(body).map_err(|e| Box::new(bad(format!("Invalid JSON body: {e}"))))
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ClockIn {
    offset_seconds: Option<i64>,
    advance_seconds: Option<i64>,
    frozen: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ResetIn {
    records: Option<usize>,
    seed: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct MassUpdateIn {
    resource: Option<String>,
    count: Option<usize>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct MergeIn {
    from: Option<i64>,
    into: Option<i64>,
}

pub fn handle(sim: &Simulator, method: &Method, segs: &[String], body: &[u8]) -> Response {
    let route: Vec<&str> = segs.iter().map(String::as_str).collect();
    match (method.as_str(), route.as_slice()) {
        ("GET", ["stats"]) => json_response(200, &sim.stats()),
        ("GET", ["faults"]) => json_response(200, &json!({"faults": sim.inner.faults.describe()})),
        ("DELETE", ["faults"]) => {
            sim.inner.faults.clear();
            json_response(200, &json!({"active": 0}))
        }
        ("POST", ["faults"]) => {
            // One fault object or an array of them.
            let faults: Vec<Fault> = match serde_json::from_slice::<Value>(body) {
                Ok(Value::Array(items)) => {
                    match items.into_iter().map(serde_json::from_value).collect() {
                        Ok(f) => f,
                        Err(e) => return bad(format!("Invalid fault: {e}")),
                    }
                }
                Ok(v) => match serde_json::from_value(v) {
                    Ok(f) => vec![f],
                    Err(e) => return bad(format!("Invalid fault: {e}")),
                },
                Err(e) => return bad(format!("Invalid JSON body: {e}")),
            };
            // Validate every fault before activating any of them.
            for f in &faults {
                if f.status.is_some_and(|s| !(200..=599).contains(&s)) {
                    return bad("status must be an HTTP status code between 200 and 599");
                }
                if f.fraction.is_some_and(|x| !(0.0..=1.0).contains(&x)) {
                    return bad("fraction must be between 0 and 1");
                }
                if f.latency_ms.is_some_and(|ms| ms > MAX_LATENCY_MS) {
                    return bad(format!(
                        "latencyMs must be at most {MAX_LATENCY_MS} (10 minutes)"
                    ));
                }
            }
            for f in faults {
                sim.inject_faults(f);
            }
            json_response(200, &json!({"active": sim.inner.faults.len()}))
        }
        ("GET", ["callbacks"]) => json_response(
            200,
            &json!({"signingKey": sim.inner.callbacks.signing_key(), "deliveries": sim.inner.callbacks.log()}),
        ),
        ("GET", ["clock"]) => json_response(200, &sim.inner.clock.describe()),
        ("POST", ["clock"]) => match parse::<ClockIn>(body) {
            Ok(c) => {
                if let Some(o) = c.offset_seconds {
                    sim.inner.clock.set_offset(o);
                }
                if let Some(a) = c.advance_seconds {
                    sim.inner.clock.advance(a);
                }
                if let Some(f) = c.frozen {
                    sim.inner.clock.set_frozen(f);
                }
                json_response(200, &sim.inner.clock.describe())
            }
            Err(r) => *r,
        },
        ("POST", ["reset"]) => match parse::<ResetIn>(body) {
            Ok(r) => {
                let records = r.records.unwrap_or(sim.inner.config.records);
                let seed = r.seed.unwrap_or(sim.inner.config.seed);
                if records > 2_000_000 {
                    return bad("records must be at most 2000000 per resource");
                }
                sim.reset(records, seed);
                json_response(200, &json!({"records": records, "seed": seed}))
            }
            Err(r) => *r,
        },
        ("POST", ["mass-update"]) => match parse::<MassUpdateIn>(body) {
            Ok(m) => {
                let resource = m.resource.unwrap_or_else(|| "company/contacts".into());
                match sim.mass_update(&resource, m.count.unwrap_or(10)) {
                    Ok(v) => json_response(200, &v),
                    Err(e) => crate::routes::error_response(&e),
                }
            }
            Err(r) => *r,
        },
        ("POST", ["merge-companies"]) => match parse::<MergeIn>(body) {
            Ok(MergeIn {
                from: Some(from),
                into: Some(into),
            }) => match sim.merge_companies(from, into) {
                Ok(v) => json_response(200, &v),
                Err(e) => crate::routes::error_response(&e),
            },
            Ok(_) => bad("from and into are required"),
            Err(r) => *r,
        },
        _ => json_response(
            404,
            &json!({"code": "ConnectWiseApi", "message": "The endpoint does not exist."}),
        ),
    }
}
