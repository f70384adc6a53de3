//! Authentication as ConnectWise does it: `Authorization: Basic
//! base64("{company}+{publicKey}:{privateKey}")` for an API member, plus the
//! `clientId` header when the simulator is configured to require one.
//!
//! Besides the configured key pair, two fixed API members exist so tests can
//! tell writers apart and exercise a 403: `integration-public` /
//! `integration-private` (full access) and `readonly-public` /
//! `readonly-private` (GET only; writes answer 403 like a security role
//! without add/edit/delete rights).

use axum::http::HeaderMap;
use base64::Engine;

use crate::SimConfig;
use crate::error::SimError;

#[derive(Debug, Clone, PartialEq)]
pub struct Member {
    /// Id in `system/members`: the API members are seeded first, from id 100
    /// (records::members::API_MEMBERS).
    pub id: i64,
    /// Written to `_info.updatedBy`; matches a `system/members` identifier.
    pub identifier: &'static str,
    pub read_only: bool,
}

fn keys(config: &SimConfig) -> [(String, String, Member); 3] {
    [
        (
            config.public_key.clone(),
            config.private_key.clone(),
            Member {
                id: 100,
                identifier: "apiuser",
                read_only: false,
            },
        ),
        (
            "integration-public".into(),
            "integration-private".into(),
            Member {
                id: 101,
                identifier: "integration",
                read_only: false,
            },
        ),
        (
            "readonly-public".into(),
            "readonly-private".into(),
            Member {
                id: 102,
                identifier: "readonly",
                read_only: true,
            },
        ),
    ]
}

/// The member for the primary key pair (library writes are made as it).
pub fn primary() -> Member {
    Member {
        id: 100,
        identifier: "apiuser",
        read_only: false,
    }
}

pub fn authenticate(headers: &HeaderMap, config: &SimConfig) -> Result<Member, SimError> {
    if let Some(expected) = &config.client_id {
        let given = headers
            .get("clientid")
            .and_then(|v| v.to_str().ok())
            .map(str::trim);
        match given {
            Some(g) if g.eq_ignore_ascii_case(expected) => {}
            Some(_) => {
                return Err(SimError::ClientId {
                    message: "The clientId provided is not valid.".into(),
                });
            }
            None => {
                return Err(SimError::ClientId {
                    message: "A clientId header is required.".into(),
                });
            }
        }
    }
    let header = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .ok_or(SimError::Unauthenticated)?;
    let (scheme, encoded) = header
        .trim()
        .split_once(' ')
        .ok_or(SimError::Unauthenticated)?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(SimError::Unauthenticated);
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or(SimError::Unauthenticated)?;
    let (user, private) = decoded.split_once(':').ok_or(SimError::Unauthenticated)?;
    let (company, public) = user.split_once('+').ok_or(SimError::Unauthenticated)?;
    if !company.eq_ignore_ascii_case(&config.company) {
        return Err(SimError::Unauthenticated);
    }
    keys(config)
        .into_iter()
        .find(|(p, s, _)| p == public && s == private)
        .map(|(_, _, m)| m)
        .ok_or(SimError::Unauthenticated)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn check(
        auth: Option<&str>,
        client_id: Option<&str>,
        required: Option<&str>,
        expected: Result<&str, u16>,
    ) {
        let config = SimConfig {
            client_id: required.map(String::from),
            ..SimConfig::default()
        };
        let mut h = HeaderMap::new();
        if let Some(a) = auth {
            let v = format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(a)
            );
            h.insert("authorization", HeaderValue::from_str(&v).unwrap());
        }
        if let Some(c) = client_id {
            h.insert("clientId", HeaderValue::from_str(c).unwrap());
        }
        let got = authenticate(&h, &config)
            .map(|m| m.identifier)
            .map_err(|e| e.status());
        assert_eq!(got, expected, "{auth:?} {client_id:?}");
    }

    #[test]
    fn key_pairs() {
        check(
            Some("demo+demo-public:demo-private"),
            None,
            None,
            Ok("apiuser"),
        );
        check(
            Some("DEMO+demo-public:demo-private"),
            None,
            None,
            Ok("apiuser"),
        );
        check(
            Some("demo+integration-public:integration-private"),
            None,
            None,
            Ok("integration"),
        );
        check(
            Some("demo+readonly-public:readonly-private"),
            None,
            None,
            Ok("readonly"),
        );
        check(Some("demo+demo-public:wrong"), None, None, Err(401));
        check(Some("other+demo-public:demo-private"), None, None, Err(401));
        check(Some("demo-public:demo-private"), None, None, Err(401));
        check(None, None, None, Err(401));
        check(
            Some("demo+demo-public:demo-private"),
            Some("abc"),
            Some("abc"),
            Ok("apiuser"),
        );
        check(
            Some("demo+demo-public:demo-private"),
            None,
            Some("abc"),
            Err(401),
        );
        check(
            Some("demo+demo-public:demo-private"),
            Some("xyz"),
            Some("abc"),
            Err(401),
        );
    }
}
