//! Sessions started with an email and a password, shared by Cloud Elements' legacy sign-in
//! (`routes::login`, cookie `JSESSIONID` for scripted clients) and the console (its own cookie,
//! `SameSite=Strict`, for browsers). One password check and one session store, so both sign-ins
//! refuse and expire alike.
//!
//! Passwords are checked against their argon2 hash on threads of their own, one per core
//! (`checkers`; a check takes tens of milliseconds of CPU and 19 MiB). An unknown email is checked against a fixed hash all the same, so the
//! answer takes as long and reads the same as for a wrong password. A session is a random
//! secret, stored as its SHA-256, valid for [`SESSION_HOURS`].
//!
//! The two sign-ins give different powers: a legacy session reads the user's secrets
//! (`getSecrets`), which the console never shows. So each session belongs to the sign-in that
//! made it ([`SessionKind`]), and its secret is stored hashed under that kind: a console
//! cookie sent as `JSESSIONID`, or a `JSESSIONID` sent as the console's cookie, matches no
//! stored hash. Legacy sessions keep the plain SHA-256 they had, so scripted clients stay signed
//! in across an upgrade; console sessions started before it are no longer found, and their
//! users sign in again once.

use std::collections::HashMap;

use axum::http::{HeaderMap, header};
use hubhook_store::Principal;
use sha2::{Digest, Sha256};

use crate::auth::{new_secret, password_matches, secret_hash};
use crate::{ApiError, AppState};

pub(crate) const SESSION_HOURS: i64 = 12;

/// Which sign-in a session came from, and so which cookie may carry it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SessionKind {
    /// Cloud Elements' `j_spring_security_check`, cookie `JSESSIONID`.
    Legacy,
    /// The console's sign-in page, cookie `hubhook_session`.
    Console,
}

impl SessionKind {
    /// The hash a session secret of this kind is stored and found under.
    pub(crate) fn hash(self, secret: &str) -> [u8; 32] {
        match self {
            SessionKind::Legacy => secret_hash(secret),
            // A label no secret starts with (secrets are base64, `\0` is not in its alphabet).
            SessionKind::Console => Sha256::new()
                .chain_update(b"hubhook console session\0")
                .chain_update(secret.as_bytes())
                .finalize()
                .into(),
        }
    }
}

/// `; Secure` when the request reached hubhook through HTTPS, else nothing: a session cookie
/// is then only ever sent back over HTTPS. hubhook serves plain HTTP itself, so HTTPS means a
/// proxy in front that says so (`X-Forwarded-Proto: https`, or `proto=https` in `Forwarded`).
/// Plain HTTP gets no flag, since browsers drop a `Secure` cookie set over plain HTTP on any
/// host but localhost. A client claiming HTTPS without a proxy only keeps its own browser from
/// sending the cookie back over plain HTTP.
pub(crate) fn secure_flag(headers: &HeaderMap) -> &'static str {
    if through_https(headers) {
        "; Secure"
    } else {
        ""
    }
}

/// Whether the request reached hubhook through HTTPS, as a proxy in front says (see
/// [`secure_flag`]).
pub(crate) fn through_https(headers: &HeaderMap) -> bool {
    let forwarded_proto = headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').next())
        .map(str::trim);
    // `Forwarded: for=1.2.3.4;proto=https, for=...`: the first element is the client's hop.
    let forwarded = headers
        .get(header::FORWARDED)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').next())
        .and_then(|hop| {
            hop.split(';').find_map(|pair| {
                let (name, value) = pair.split_once('=')?;
                name.trim()
                    .eq_ignore_ascii_case("proto")
                    .then(|| value.trim().trim_matches('"'))
            })
        });
    [forwarded_proto, forwarded]
        .into_iter()
        .flatten()
        .any(|proto| proto.eq_ignore_ascii_case("https"))
}

/// An argon2 hash of no one's password (made once, with a random salt), checked when the email
/// is unknown so that the check costs the same.
fn dummy_hash() -> String {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY
        .get_or_init(|| crate::auth::password_hash("no one's password").unwrap_or_default())
        .clone()
}

/// A password to check against its hash, and where the answer goes.
type Check = (String, String, tokio::sync::oneshot::Sender<bool>);

/// The password checkers: one thread per core, each checking one password at a time, fed in
/// turn. Each check takes tens of milliseconds of CPU and about 19 MiB (argon2's memory
/// cost), and sign-ins need no credentials. On tokio's blocking pool a flood of wrong
/// passwords ran one check per thread (up to 512 at once), and the allocator kept each
/// thread's 19 MiB blocks: 13.8 GB, and 14 s per API call. Threads of their own bound both
/// the CPU and the memory (each reuses its own blocks); beyond them, sign-ins wait their
/// turn, holding only a connection.
fn checkers() -> &'static std::sync::mpsc::Sender<Check> {
    static CHECKERS: std::sync::OnceLock<std::sync::mpsc::Sender<Check>> =
        std::sync::OnceLock::new();
    CHECKERS.get_or_init(|| {
        let (send, receive) = std::sync::mpsc::channel::<Check>();
        let receive = std::sync::Arc::new(std::sync::Mutex::new(receive));
        let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
        for n in 0..threads {
            let receive = receive.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("password-check-{n}"))
                .spawn(move || {
                    loop {
                        // The lock is only held to take the next check, never while checking.
                        let next = receive
                            .lock()
                            .unwrap_or_else(std::sync::PoisonError::into_inner)
                            .recv();
                        let Ok((hash, password, answer)) = next else {
                            return;
                        };
                        // Its sign-in was dropped (the client went away): no one to answer.
                        if !answer.is_closed() {
                            let _ = answer.send(password_matches(&hash, &password));
                        }
                    }
                });
            if let Err(err) = spawned {
                tracing::error!(error = %err, "a password-check thread could not be started");
            }
        }
        send
    })
}

/// Whether `password` matches `hash`, checked on the password checkers ([`checkers`]).
async fn checked(hash: String, password: String) -> Result<bool, ApiError> {
    let (answer, answered) = tokio::sync::oneshot::channel();
    checkers()
        .send((hash, password, answer))
        .map_err(ApiError::internal)?;
    answered.await.map_err(ApiError::internal)
}

/// Failed sign-ins that lock an email out: this many within [`LOCKOUT`] of each other.
const FAILURES_ALLOWED: u32 = 10;
/// How long an email stays locked out after its last failed sign-in.
const LOCKOUT: jiff::SignedDuration = jiff::SignedDuration::from_mins(10);
/// Emails whose failures are remembered at most (each at most [`MAX_EMAIL`] characters);
/// past it, those whose last failure is older than [`LOCKOUT`] are forgotten, and if none is,
/// sign-ins of other emails are refused (`503`) until some are.
const REMEMBERED: usize = 100_000;

/// Recent failed sign-ins by email (lower case), on this node: after [`FAILURES_ALLOWED`] of
/// them, each within [`LOCKOUT`] of the one before, the email is refused (`429`, with
/// `Retry-After`) until [`LOCKOUT`] after the last, right password or not, so that guessing
/// a password costs ten guesses per ten minutes per node. A successful sign-in forgets the
/// failures it was counted with. Unknown emails are counted alike, so the answers do not tell
/// which exist.
///
/// That alone would let anyone who knows an email keep its owner out, ten minutes at a time.
/// So a sign-in from a browser or client where the email signed in before (its device
/// cookie, [`DEVICE_COOKIE`]) is counted apart, under the email and that cookie, with the same
/// allowance: a stranger's failures lock out only sign-ins without one, and a device cookie
/// taken by a stranger buys ten guesses, not more. This is OWASP's "device cookies" scheme.
#[derive(Default)]
pub(crate) struct SignInFailures(std::sync::Mutex<HashMap<String, Failures>>);

struct Failures {
    count: u32,
    last: jiff::Timestamp,
}

impl SignInFailures {
    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<String, Failures>> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Counts a sign-in of `email` at `now` as failed before its password is checked (a
    /// success forgets it: [`SignInFailures::succeeded`]), or refuses it if the email is
    /// locked out. Counted before, not after: sent at once, every guess waiting for a check
    /// would otherwise pass the lockout (60 sent together were all checked).
    fn begin(&self, email: &str, now: jiff::Timestamp) -> Result<(), ApiError> {
        let mut map = self.map();
        if map.len() >= REMEMBERED && !map.contains_key(email) {
            map.retain(|_, failures| now.duration_since(failures.last) < LOCKOUT);
            if map.len() >= REMEMBERED {
                // Forgetting a locked email to make room would unlock it for whoever filled
                // the map; refusing newcomers for a while is the lesser harm.
                return Err(busy(
                    "too many sign-ins have failed on this server lately; try again in a minute",
                    std::time::Duration::from_secs(60),
                ));
            }
        }
        let failures = map.entry(email.to_string()).or_insert(Failures {
            count: 0,
            last: now,
        });
        if now.duration_since(failures.last) >= LOCKOUT {
            failures.count = 0;
        }
        if failures.count >= FAILURES_ALLOWED {
            let wait = LOCKOUT - now.duration_since(failures.last);
            let minutes = (wait.as_secs() + 59) / 60;
            return Err(ApiError::new(
                axum::http::StatusCode::TOO_MANY_REQUESTS,
                format!(
                    "too many failed sign-ins for this email lately; try again in {minutes} minute{}",
                    if minutes == 1 { "" } else { "s" }
                ),
            )
            .with_retry_after(Some(std::time::Duration::from_secs(
                wait.as_secs().unsigned_abs(),
            ))));
        }
        failures.count += 1;
        failures.last = now;
        Ok(())
    }

    fn succeeded(&self, email: &str) {
        self.map().remove(email);
    }
}

/// A `503` with `Retry-After`: the server cannot take this now, through no fault of the caller.
fn busy(message: &str, wait: std::time::Duration) -> ApiError {
    ApiError::new(axum::http::StatusCode::SERVICE_UNAVAILABLE, message).with_retry_after(Some(wait))
}

/// Sign-ins waiting for a password check or in one, at most; more at once are refused (`503`,
/// retry in a second) rather than queued. Each waiting one holds a connection that cannot be
/// evicted (its handler is running): unbounded, strangers' sign-ins took every connection,
/// and 2,000 abandoned ones kept a real sign-in waiting 51 s.
const WAITING: usize = 64;

/// The longest email a sign-in reads (an address has at most 254 characters) and the longest
/// password: each failed email is remembered, and a 2 MB one would be kept as it is.
const MAX_EMAIL: usize = 254;
const MAX_PASSWORD: usize = 1024;

/// The cookie that marks where an email signed in before: a token sealed under the master key
/// ([`hubhook_store::MasterKey::seal_device`]), so that every node sharing the database
/// knows it and nobody can make one without the email's password. It grants nothing but its
/// own count of failed sign-ins ([`SignInFailures`]).
pub(crate) const DEVICE_COOKIE: &str = "hubhook_device";
/// How long a device cookie is kept; each sign-in with it renews it.
pub(crate) const DEVICE_DAYS: i64 = 180;

/// A sign-in that succeeded.
pub(crate) struct SignedIn {
    pub principal: Principal,
    /// The new session's secret, for the session cookie.
    pub session: String,
    /// The device cookie to set: the one the sign-in came with if it was the email's, else a
    /// new one.
    pub device: String,
}

/// Checks the email and password and starts a session. `devices` are the request's device
/// cookies (a browser may hold one per path, of different emails). A wrong email and a wrong
/// password are the same 401.
pub(crate) async fn sign_in(
    state: &AppState,
    kind: SessionKind,
    email: &str,
    password: String,
    devices: Vec<&str>,
) -> Result<SignedIn, ApiError> {
    let email = email.trim();
    if email.chars().count() > MAX_EMAIL || password.len() > MAX_PASSWORD {
        return Err(ApiError::bad_request(format!(
            "an email has at most {MAX_EMAIL} characters, and a password here at most {MAX_PASSWORD} bytes"
        )));
    }
    static WAITERS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(WAITING);
    let Ok(_waiting) = WAITERS.try_acquire() else {
        return Err(busy(
            "too many sign-ins are being checked at once; try again in a second",
            std::time::Duration::from_secs(1),
        ));
    };
    let store = state.engine.store();
    let email_key = email.to_lowercase();
    // A cookie made for another email, or not by this key, is no device cookie at all.
    let known_device = devices
        .into_iter()
        .find(|token| store.master_key().open_device(token).as_deref() == Some(email_key.as_str()));
    let counted = match known_device {
        Some(token) => format!("{email_key}\n{token}"),
        None => email_key.clone(),
    };
    let failures = &state.sign_in_failures;
    failures.begin(&counted, state.engine.clock().now())?;
    let user = store.sign_in_user(email).await?;
    let hash = user.as_ref().map(|u| u.password_hash.clone());
    let matches = checked(hash.unwrap_or_else(dummy_hash), password).await?;
    let principal = match user {
        Some(user) if matches => user.principal,
        _ => return Err(ApiError::unauthorized("the email or the password is wrong")),
    };
    failures.succeeded(&counted);
    let device = match known_device {
        Some(token) => token.to_string(),
        None => store.master_key().seal_device(&email_key)?,
    };
    let session = new_secret().map_err(ApiError::internal)?;
    let now = state.engine.clock().now();
    let expires = now
        .checked_add(jiff::SignedDuration::from_hours(SESSION_HOURS))
        .map_err(ApiError::internal)?;
    store
        .create_session(kind.hash(&session), principal.user_id, expires)
        .await?;
    Ok(SignedIn {
        principal,
        session,
        device,
    })
}

/// Who holds the session of this kind with this secret, if it is valid now.
pub(crate) async fn principal(
    state: &AppState,
    kind: SessionKind,
    session: &str,
) -> Result<Option<Principal>, ApiError> {
    Ok(state
        .engine
        .store()
        .session(kind.hash(session), state.engine.clock().now())
        .await?)
}

/// The value of the request's cookie `name`, if it sent one.
pub(crate) fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    cookies(headers, name).into_iter().next()
}

/// The values of every cookie `name` the request sent, in order.
pub(crate) fn cookies<'a>(headers: &'a HeaderMap, name: &str) -> Vec<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().strip_prefix(name)?.strip_prefix('='))
        .collect()
}

#[cfg(test)]
mod secure_flag_tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, value.parse().expect("header value"));
        }
        map
    }

    #[test]
    fn only_a_request_that_came_through_https_gets_a_secure_cookie() {
        for https in [
            &[("x-forwarded-proto", "https")][..],
            &[("x-forwarded-proto", "HTTPS")],
            &[("x-forwarded-proto", "https, http")],
            &[("forwarded", "for=192.0.2.1;proto=https")],
            &[(
                "forwarded",
                "proto=\"https\";by=203.0.113.9, for=10.0.0.1;proto=http",
            )],
        ] {
            assert_eq!(secure_flag(&headers(https)), "; Secure", "{https:?}");
        }
        for plain in [
            &[][..],
            &[("x-forwarded-proto", "http")],
            &[("x-forwarded-proto", "http, https")],
            &[(
                "forwarded",
                "for=192.0.2.1;proto=http, for=10.0.0.1;proto=https",
            )],
            &[("forwarded", "for=192.0.2.1")],
            &[("x-forwarded-proto", "httpsx")],
        ] {
            assert_eq!(secure_flag(&headers(plain)), "", "{plain:?}");
        }
    }
}
