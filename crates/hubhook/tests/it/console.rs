//! The web console's HTML routes over real HTTP: signing in (the cookie's flags), CSRF refusals
//! that store nothing, another organization's pages as 404, the form refusing exactly what the
//! API refuses (same message, next to the field), and the analytics route behind the charts.

use reqwest::{StatusCode, redirect::Policy};
use serde_json::{Value, json};

use crate::app::{TestApp, spawn_app};

const PASSWORD: &str = "console password";

/// A browser of one user: no redirects followed, cookies kept by hand.
struct Browser {
    http: reqwest::Client,
    base: String,
    cookie: String,
    /// Whether its requests come through an HTTPS proxy (console cookies are then `__Host-`).
    https: bool,
}

fn field(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker).map(|i| i + marker.len()).expect(name);
    html[start..][..html[start..].find('"').expect("end of value")].to_string()
}

fn set_cookie(response: &reqwest::Response, name: &str) -> Option<String> {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
        .map(str::to_string)
}

impl Browser {
    fn new(app: &TestApp) -> Browser {
        Browser::with_headers(app, reqwest::header::HeaderMap::new())
    }

    /// A browser whose requests reach hubhook through an HTTPS proxy that says so.
    fn behind_https_proxy(app: &TestApp) -> Browser {
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert("x-forwarded-proto", "https".parse().expect("value"));
        Browser {
            https: true,
            ..Browser::with_headers(app, headers)
        }
    }

    /// The name console cookie `name` has for this browser.
    fn cookie_name(&self, name: &str) -> String {
        if self.https {
            format!("__Host-{name}")
        } else {
            name.to_string()
        }
    }

    fn with_headers(app: &TestApp, headers: reqwest::header::HeaderMap) -> Browser {
        Browser {
            http: reqwest::Client::builder()
                .redirect(Policy::none())
                .default_headers(headers)
                .build()
                .expect("client"),
            base: app.server().url(),
            cookie: String::new(),
            https: false,
        }
    }

    async fn get(&self, path: &str) -> reqwest::Response {
        self.http
            .get(format!("{}{path}", self.base))
            .header("Cookie", &self.cookie)
            .send()
            .await
            .expect("sent")
    }

    async fn post(&self, path: &str, pairs: &[(&str, &str)]) -> reqwest::Response {
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(pairs)
            .finish();
        self.http
            .post(format!("{}{path}", self.base))
            .header("Cookie", &self.cookie)
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .expect("sent")
    }

    /// Signs in with the sign-in page's token; returns the session's Set-Cookie header.
    async fn sign_in(&mut self, email: &str, password: &str) -> String {
        let page = self.get("/signin").await;
        let token_cookie =
            set_cookie(&page, &self.cookie_name("hubhook_signin")).expect("sign-in token cookie");
        self.cookie = token_cookie.split(';').next().unwrap().to_string();
        let csrf = field(&page.text().await.unwrap(), "csrf");
        let response = self
            .post(
                "/signin",
                &[("csrf", &csrf), ("email", email), ("password", password)],
            )
            .await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "signed in");
        let session =
            set_cookie(&response, &self.cookie_name("hubhook_session")).expect("session cookie");
        self.cookie = session.split(';').next().unwrap().to_string();
        session
    }

    /// The CSRF token of the signed-in session, read from a page.
    async fn csrf(&self) -> String {
        field(
            &self.get("/instances/new").await.text().await.unwrap(),
            "csrf",
        )
    }
}

async fn user(app: &TestApp, org: &str, email: &str) {
    let login = hubhook::org::Login {
        email: email.into(),
        password: PASSWORD.into(),
        first_name: String::new(),
        last_name: String::new(),
    };
    hubhook::org::create_with_login(app.server().store(), org, Some(login))
        .await
        .expect("org with a sign-in");
}

#[tokio::test]
async fn behind_an_https_proxy_every_console_cookie_is_secure_and_host_only() {
    let app = spawn_app().await;
    user(&app, "acme", "proxied@example.test").await;
    let mut browser = Browser::behind_https_proxy(&app);
    let page = browser.get("/signin").await;
    // `__Host-`: browsers keep such a cookie only from this host, `Secure`, for `Path=/`, so a
    // sibling subdomain cannot plant one.
    let token = set_cookie(&page, "__Host-hubhook_signin").expect("sign-in token cookie");
    assert!(token.ends_with("; Secure"), "{token}");
    assert!(token.contains("; Path=/;"), "{token}");
    assert!(!token.to_ascii_lowercase().contains("domain="), "{token}");
    let session = browser.sign_in("proxied@example.test", PASSWORD).await;
    assert!(session.starts_with("__Host-hubhook_session="), "{session}");
    assert!(session.ends_with("; Secure"), "{session}");
    assert_eq!(browser.get("/").await.status(), StatusCode::OK);
    // Through HTTPS only the prefixed name is read: the same session under the plain name
    // (which any subdomain could have set) is no session.
    let prefixed = browser.cookie.clone();
    browser.cookie = prefixed.replacen("__Host-", "", 1);
    assert_eq!(browser.get("/").await.status(), StatusCode::SEE_OTHER);
    browser.cookie = prefixed;
    let csrf = browser.csrf().await;
    let out = browser.post("/signout", &[("csrf", &csrf)]).await;
    let forgotten = set_cookie(&out, "__Host-hubhook_session").expect("the session forgotten");
    assert!(forgotten.ends_with("; Secure"), "{forgotten}");
}

/// The console never shows a user's secrets; Cloud Elements' legacy sign-in reads them
/// (`getSecrets`). A session works only with the cookie of the sign-in that made it, so a
/// console cookie (should it leak) cannot be replayed as `JSESSIONID`, and the other way round.
#[tokio::test]
async fn a_console_session_is_no_legacy_session_and_the_other_way_round() {
    let app = spawn_app().await;
    user(&app, "kinds", "kinds@example.test").await;
    let mut browser = Browser::new(&app);
    browser.sign_in("kinds@example.test", PASSWORD).await;
    let console_secret = browser
        .cookie
        .strip_prefix("hubhook_session=")
        .expect("the console's cookie")
        .to_string();
    assert_eq!(browser.get("/").await.status(), StatusCode::OK);

    let secrets = |cookie: String| {
        browser
            .http
            .get(format!("{}/elements/api-v1/ui/getSecrets", browser.base))
            .header("Cookie", cookie)
            .send()
    };
    let replayed = secrets(format!("JSESSIONID={console_secret}"))
        .await
        .expect("sent");
    assert_eq!(replayed.status(), StatusCode::UNAUTHORIZED);

    let legacy = browser
        .http
        .post(format!("{}/elements/j_spring_security_check", browser.base))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(
            url::form_urlencoded::Serializer::new(String::new())
                .append_pair("j_username", "kinds@example.test")
                .append_pair("j_password", PASSWORD)
                .finish(),
        )
        .send()
        .await
        .expect("sent");
    assert_eq!(legacy.status(), StatusCode::OK);
    let legacy_secret = set_cookie(&legacy, "JSESSIONID")
        .expect("a legacy session")
        .split(';')
        .next()
        .and_then(|pair| pair.strip_prefix("JSESSIONID="))
        .expect("name=value")
        .to_string();
    let read = secrets(format!("JSESSIONID={legacy_secret}"))
        .await
        .expect("sent");
    assert_eq!(
        read.status(),
        StatusCode::OK,
        "the legacy session reads them"
    );
    let as_console = browser
        .http
        .get(format!("{}/", browser.base))
        .header("Cookie", format!("hubhook_session={legacy_secret}"))
        .send()
        .await
        .expect("sent");
    assert_eq!(as_console.status(), StatusCode::SEE_OTHER);
    assert_eq!(as_console.headers()["location"], "/signin");
}

#[tokio::test]
async fn signing_in_sets_a_strict_http_only_cookie_and_signing_out_ends_it() {
    let app = spawn_app().await;
    user(&app, "first", "first@example.test").await;
    let mut browser = Browser::new(&app);

    let signed_out = browser.get("/").await;
    assert_eq!(signed_out.status(), StatusCode::SEE_OTHER);
    assert_eq!(signed_out.headers()["location"], "/signin");

    // A wrong password is the sign-in page again, with the reason, and no session.
    let page = browser.get("/signin").await;
    browser.cookie = set_cookie(&page, "hubhook_signin")
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let csrf = field(&page.text().await.unwrap(), "csrf");
    let wrong = browser
        .post(
            "/signin",
            &[
                ("csrf", &csrf),
                ("email", "first@example.test"),
                ("password", "nope"),
            ],
        )
        .await;
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    assert!(set_cookie(&wrong, "hubhook_session").is_none());
    // Without the sign-in token, nothing is even checked.
    browser.cookie.clear();
    let forged = browser
        .post(
            "/signin",
            &[
                ("csrf", &csrf),
                ("email", "first@example.test"),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);

    let session = browser.sign_in("first@example.test", PASSWORD).await;
    for flag in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(session.contains(flag), "{flag} missing in {session}");
    }
    // Over plain HTTP, where browsers would drop it.
    assert!(!session.contains("Secure"), "{session}");
    let home = browser.get("/").await;
    assert_eq!(home.status(), StatusCode::OK);
    let csp = home.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(csp.contains("script-src 'self'"), "{csp}");
    assert!(home.text().await.unwrap().contains("No instances yet"));

    let csrf = browser.csrf().await;
    let out = browser.post("/signout", &[("csrf", &csrf)]).await;
    assert_eq!(out.status(), StatusCode::SEE_OTHER);
    // The old cookie no longer opens anything.
    assert_eq!(browser.get("/").await.status(), StatusCode::SEE_OTHER);
}

/// One sign-in from a fresh browser, with `device` (a `hubhook_device=…` pair) among its
/// cookies if given: the answer.
async fn sign_in_with(
    app: &TestApp,
    device: Option<&str>,
    email: &str,
    password: &str,
) -> reqwest::Response {
    let mut browser = Browser::new(app);
    let page = browser.get("/signin").await;
    let token = set_cookie(&page, "hubhook_signin").expect("sign-in token cookie");
    let token = token.split(';').next().expect("pair").to_string();
    browser.cookie = match device {
        Some(device) => format!("{token}; {device}"),
        None => token,
    };
    let csrf = field(&page.text().await.unwrap(), "csrf");
    browser
        .post(
            "/signin",
            &[("csrf", &csrf), ("email", email), ("password", password)],
        )
        .await
}

/// Ten failed sign-ins lock an email out, but not the browser where its owner signed in
/// before: its device cookie is counted apart, so a stranger who knows the email cannot keep
/// the owner out. A cookie altered, or made for another email, is no device cookie; and one
/// in a stranger's hands buys ten guesses, not more. Fails without device cookies (the
/// owner's browser is refused with the rest).
#[tokio::test]
async fn a_device_cookie_signs_in_through_a_lockout() {
    let app = spawn_app().await;
    let (owner, other) = ("owner@example.test", "other@example.test");
    user(&app, "first", owner).await;
    user(&app, "second", other).await;
    let mut devices = Vec::new();
    for email in [owner, other] {
        let signed = sign_in_with(&app, None, email, PASSWORD).await;
        assert_eq!(signed.status(), StatusCode::SEE_OTHER);
        let device = set_cookie(&signed, "hubhook_device").expect("a device cookie");
        for flag in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=15552000"] {
            assert!(device.contains(flag), "{flag} missing in {device}");
        }
        devices.push(device.split(';').next().expect("pair").to_string());
    }
    let (owners, others) = (&devices[0], &devices[1]);
    let status = async |device: Option<&str>, password: &str| {
        sign_in_with(&app, device, owner, password).await.status()
    };

    for n in 0..10 {
        let guess = format!("guess {n}");
        assert_eq!(status(None, &guess).await, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(
        status(None, PASSWORD).await,
        StatusCode::TOO_MANY_REQUESTS,
        "locked out without a device cookie"
    );
    let signed = sign_in_with(&app, Some(owners), owner, PASSWORD).await;
    assert_eq!(
        signed.status(),
        StatusCode::SEE_OTHER,
        "the owner's browser"
    );
    // A browser holding another email's device cookie too (one per path) is still known.
    let both = format!("{others}; {owners}");
    let status_both = sign_in_with(&app, Some(&both), owner, PASSWORD)
        .await
        .status();
    assert_eq!(
        status_both,
        StatusCode::SEE_OTHER,
        "the owner's, after another's"
    );
    assert_eq!(
        set_cookie(&signed, "hubhook_device")
            .expect("renewed")
            .split(';')
            .next(),
        Some(owners.as_str()),
        "the same device, renewed"
    );
    let mut altered = owners.clone().into_bytes();
    let middle = altered.len() / 2 + 8;
    altered[middle] = if altered[middle] == b'A' { b'B' } else { b'A' };
    let altered = String::from_utf8(altered).expect("text");
    for (device, what) in [(&altered, "altered"), (others, "another email's")] {
        assert_eq!(
            status(Some(device), PASSWORD).await,
            StatusCode::TOO_MANY_REQUESTS,
            "{what} device cookie"
        );
    }

    for n in 0..10 {
        let guess = format!("device guess {n}");
        assert_eq!(status(Some(owners), &guess).await, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(
        status(Some(owners), PASSWORD).await,
        StatusCode::TOO_MANY_REQUESTS,
        "ten guesses per device cookie"
    );
    // The other email was never held up.
    assert_eq!(
        sign_in_with(&app, None, other, PASSWORD).await.status(),
        StatusCode::SEE_OTHER
    );
}

#[tokio::test]
async fn forms_without_the_csrf_token_are_refused_and_change_nothing() {
    let app = spawn_app().await;
    user(&app, "first", "first@example.test").await;
    let mut browser = Browser::new(&app);
    browser.sign_in("first@example.test", PASSWORD).await;
    let created = app.create_quiet_instance("kept").await;
    let id = created["id"].as_i64().unwrap();
    // The API's organization is another one; make an instance of the signed-in user's own.
    let csrf = browser.csrf().await;
    let form = [
        ("csrf", csrf.as_str()),
        ("name", "mine"),
        ("baseUrl", &app.sim.base_url()),
        ("company", "demo"),
        ("public.key", "demo-public"),
        ("private.key", "demo-private"),
    ];
    let made = browser.post("/instances/new", &form).await;
    assert_eq!(
        made.status(),
        StatusCode::SEE_OTHER,
        "{}",
        made.text().await.unwrap()
    );
    let mine = made.headers()["location"].to_str().unwrap().to_string();
    let before = app.digest().await;

    for token in ["", "0123456789abcdef0123456789abcdef"] {
        for path in [
            format!("{mine}/delete"),
            format!("{mine}/disable"),
            format!("{mine}/poll"),
            "/instances/new".to_string(),
        ] {
            let mut pairs = form.to_vec();
            pairs[0] = ("csrf", token);
            let refused = browser.post(&path, &pairs).await;
            assert_eq!(
                refused.status(),
                StatusCode::FORBIDDEN,
                "{path} with {token:?}"
            );
        }
    }
    assert_eq!(app.digest().await, before, "a refused form stored nothing");
    // And the API's own instance was never the console user's to see.
    assert_eq!(
        browser.get(&format!("/instances/{id}")).await.status(),
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn another_organizations_instance_pages_are_404() {
    let app = spawn_app().await;
    user(&app, "first", "first@example.test").await;
    user(&app, "other", "other@example.test").await;
    let mut first = Browser::new(&app);
    first.sign_in("first@example.test", PASSWORD).await;
    let csrf = first.csrf().await;
    let made = first
        .post(
            "/instances/new",
            &[
                ("csrf", &csrf),
                ("name", "first's"),
                ("baseUrl", &app.sim.base_url()),
                ("company", "demo"),
                ("public.key", "demo-public"),
                ("private.key", "demo-private"),
                ("event.notification.enabled", "true"),
                ("event.notification.callback.url", &app.receiver.url),
                ("event.poller.refresh_interval", "15"),
                ("resource", "contacts"),
            ],
        )
        .await;
    assert_eq!(
        made.status(),
        StatusCode::SEE_OTHER,
        "{}",
        made.text().await.unwrap()
    );
    let page = made.headers()["location"].to_str().unwrap().to_string();
    assert_eq!(first.get(&page).await.status(), StatusCode::OK);

    let mut other = Browser::new(&app);
    other.sign_in("other@example.test", PASSWORD).await;
    for path in [
        page.clone(),
        format!("{page}/edit"),
        format!("{page}/health"),
        format!("{page}/events"),
        format!("{page}/events/some-event"),
        format!("{page}/delete"),
    ] {
        assert_eq!(
            other.get(&path).await.status(),
            StatusCode::NOT_FOUND,
            "{path}"
        );
    }
    let csrf = other.csrf().await;
    for action in ["delete", "disable", "poll", "enable", "recover"] {
        let refused = other
            .post(
                &format!("{page}/{action}"),
                &[("csrf", &csrf), ("since", "2026-01-01T00:00")],
            )
            .await;
        assert_eq!(refused.status(), StatusCode::NOT_FOUND, "{action}");
    }
    assert!(
        !other
            .get("/")
            .await
            .text()
            .await
            .unwrap()
            .contains("first&#39;s")
    );
    assert_eq!(
        first.get(&page).await.status(),
        StatusCode::OK,
        "still there"
    );
}

#[tokio::test]
async fn the_form_refuses_what_the_api_refuses_with_the_same_message_next_to_the_field() {
    let app = spawn_app().await;
    user(&app, "first", "first@example.test").await;
    let mut browser = Browser::new(&app);
    browser.sign_in("first@example.test", PASSWORD).await;
    let csrf = browser.csrf().await;
    let callback = "ftp://files.example/hook";

    let mut body = app.documented_body();
    body["name"] = json!("refused");
    body["configuration"]["event.notification.callback.url"] = json!(callback);
    let api = app.create_instance(&body).await;
    assert_eq!(api.status(), 400);
    let message = api.json::<Value>().await.unwrap()["message"]
        .as_str()
        .unwrap()
        .to_string();

    let before = app.digest().await;
    let page = browser
        .post(
            "/instances/new",
            &[
                ("csrf", &csrf),
                ("name", "refused"),
                ("baseUrl", &app.sim.base_url()),
                ("company", "demo"),
                ("public.key", "demo-public"),
                ("private.key", "demo-private"),
                ("event.notification.enabled", "true"),
                ("event.notification.callback.url", callback),
                ("event.poller.refresh_interval", "0.05"),
                ("resource", "contacts"),
            ],
        )
        .await;
    assert_eq!(page.status(), StatusCode::BAD_REQUEST);
    let html = page.text().await.unwrap();
    let escape = |text: &str| {
        text.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('"', "&quot;")
    };
    // The whole message on top, and its part about the field next to the field.
    assert!(
        html.contains(&escape(&message)),
        "{message} not on the page"
    );
    let part = message
        .strip_prefix("invalid configuration: ")
        .expect("a configuration error");
    assert!(!part.contains("; `"), "one problem only: {message}");
    let escaped = escape(part);
    let error = html
        .split("id=\"f-event-notification-callback-url-error\"")
        .nth(1)
        .expect("an error next to the callback URL");
    assert!(
        error[..error.find("</div>").unwrap()].contains(&escaped),
        "{message} not in {error}"
    );
    assert!(
        !html.contains("demo-private"),
        "a secret was put in the page"
    );
    assert_eq!(app.digest().await, before, "nothing stored");

    // A poller URL error lands next to that resource's URL.
    let page = browser
        .post(
            "/instances/new",
            &[
                ("csrf", &csrf),
                ("name", "bad url"),
                ("baseUrl", &app.sim.base_url()),
                ("company", "demo"),
                ("public.key", "demo-public"),
                ("private.key", "demo-private"),
                ("event.notification.enabled", "true"),
                ("event.notification.callback.url", &app.receiver.url),
                ("event.poller.refresh_interval", "0.05"),
                ("resource", "contacts"),
                (
                    "event.poller.configuration.contacts.url",
                    "/hubs/crm/contacts?where=nonsense",
                ),
            ],
        )
        .await;
    assert_eq!(page.status(), StatusCode::BAD_REQUEST);
    let html = page.text().await.unwrap();
    assert!(
        html.contains("id=\"f-event-poller-configuration-contacts-url-error\""),
        "{html}"
    );
}

#[tokio::test]
async fn analytics_count_an_organizations_events_and_deliveries_by_bucket() {
    let app = spawn_app().await;
    let id = app.create_polling_instance().await;
    app.wait_for_baseline(id).await;
    app.retitle_contact(57001, "Analytics").await;
    app.poll_now(id).await;
    app.receiver
        .wait_for_event(std::time::Duration::from_secs(30), |e| {
            crate::app::is_about(e, 57001)
        })
        .await;

    // The attempt is recorded just after the receiver answers: ask until it is counted.
    let mut body = Value::Null;
    for _ in 0..50 {
        let (status, answer) = app.get("/instances/events/analytics?interval=minute").await;
        assert_eq!(status, 200, "{answer}");
        body = answer;
        let delivered = body["instances"][0]["buckets"]
            .as_array()
            .is_some_and(|b| b.iter().any(|b| b["delivered"].as_u64() > Some(0)));
        if delivered {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(body["interval"], "minute");
    let instance = &body["instances"][0];
    assert_eq!(instance["instanceId"], id);
    let buckets = instance["buckets"].as_array().unwrap();
    assert_eq!(buckets.len(), 60, "an hour by minute, every bucket");
    let sum = |key: &str| {
        buckets
            .iter()
            .map(|b| b[key].as_u64().unwrap())
            .sum::<u64>()
    };
    assert!(sum("events") >= 1 && sum("delivered") >= 1, "{buckets:?}");

    for (query, field) in [
        ("interval=second", "`interval`"),
        ("from=yesterday", "`from`"),
        (
            "from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z",
            "`from`",
        ),
        (
            "from=2020-01-01T00:00:00Z&to=2026-01-01T00:00:00Z&interval=minute",
            "buckets",
        ),
        ("colour=red", "`colour`"),
    ] {
        let (status, body) = app
            .get(&format!("/instances/events/analytics?{query}"))
            .await;
        assert_eq!(status, 400, "{query}");
        assert!(
            body["message"].as_str().unwrap().contains(field),
            "{query}: {body}"
        );
    }

    // Another organization sees none of it.
    let other = hubhook::org::create(app.server().store(), "other")
        .await
        .unwrap();
    let response = app
        .http
        .get(app.api("/instances/events/analytics"))
        .header(
            "Authorization",
            format!(
                "User {}, Organization {}",
                other.user_secret, other.organization_secret
            ),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.json::<Value>().await.unwrap()["instances"],
        json!([])
    );
}

#[tokio::test]
async fn editing_keeps_secrets_left_empty_and_never_shows_them() {
    let app = spawn_app().await;
    user(&app, "first", "first@example.test").await;
    let mut browser = Browser::new(&app);
    browser.sign_in("first@example.test", PASSWORD).await;
    let csrf = browser.csrf().await;
    let made = browser
        .post(
            "/instances/new",
            &[
                ("csrf", &csrf),
                ("name", "editable"),
                ("baseUrl", &app.sim.base_url()),
                ("company", "demo"),
                ("public.key", "demo-public"),
                ("private.key", "demo-private"),
                ("event.notification.enabled", "true"),
                ("event.notification.callback.url", &app.receiver.url),
                ("event.notification.signature.key", "edit-signature-key"),
                ("event.poller.refresh_interval", "15"),
                ("resource", "contacts"),
                ("resource", "organizations"),
            ],
        )
        .await;
    assert_eq!(
        made.status(),
        StatusCode::SEE_OTHER,
        "{}",
        made.text().await.unwrap()
    );
    let page = made.headers()["location"].to_str().unwrap().to_string();
    let id = page.rsplit('/').next().unwrap().to_string();

    let edit = browser
        .get(&format!("{page}/edit"))
        .await
        .text()
        .await
        .unwrap();
    for secret in ["demo-public", "demo-private", "edit-signature-key"] {
        assert!(!edit.contains(secret), "{secret} shown in the edit form");
    }
    assert!(edit.contains("Stored; leave empty to keep it."));
    assert!(
        edit.contains("value=\"organizations\" checked"),
        "ticked resources stay ticked"
    );

    // Rename, drop organizations, leave every secret empty: the keys still work (the
    // replace checks them against ConnectWise) and the signature key is kept.
    let updated = browser
        .post(
            &format!("{page}/edit"),
            &[
                ("csrf", &csrf),
                ("name", "edited"),
                ("baseUrl", &app.sim.base_url()),
                ("company", "demo"),
                ("event.notification.enabled", "true"),
                ("event.notification.callback.url", &app.receiver.url),
                ("event.poller.refresh_interval", "15"),
                ("resource", "contacts"),
            ],
        )
        .await;
    assert_eq!(
        updated.status(),
        StatusCode::SEE_OTHER,
        "{}",
        updated.text().await.unwrap()
    );
    let row = app
        .server()
        .store()
        .instance(hubhook_core::InstanceId(id.parse().unwrap()))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.name, "edited");
    assert_eq!(row.secrets["private.key"], "demo-private");
    assert_eq!(
        row.secrets["event.notification.signature.key"],
        "edit-signature-key"
    );
    let poller = &row.configuration["event.poller.configuration"];
    assert!(
        poller.get("contacts").is_some() && poller.get("organizations").is_none(),
        "{poller}"
    );
}

#[tokio::test]
async fn resend_sends_an_event_again_and_only_for_its_own_organization() {
    let app = spawn_app().await;
    user(&app, "first", "first@example.test").await;
    user(&app, "other", "other@example.test").await;
    let mut first = Browser::new(&app);
    first.sign_in("first@example.test", PASSWORD).await;
    let csrf = first.csrf().await;
    let made = first
        .post(
            "/instances/new",
            &[
                ("csrf", &csrf),
                ("name", "resends"),
                ("baseUrl", &app.sim.base_url()),
                ("company", "demo"),
                ("public.key", "demo-public"),
                ("private.key", "demo-private"),
                ("event.notification.enabled", "true"),
                ("event.notification.callback.url", &app.receiver.url),
                ("event.poller.refresh_interval", "0.05"),
                ("resource", "contacts"),
            ],
        )
        .await;
    assert_eq!(
        made.status(),
        StatusCode::SEE_OTHER,
        "{}",
        made.text().await.unwrap()
    );
    let page = made.headers()["location"].to_str().unwrap().to_string();

    // Change contacts until one is announced (the first poll is the baseline).
    let mut event_path = None;
    for n in 0..100 {
        app.retitle_contact(57001, &format!("resend {n}")).await;
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        let html = first
            .get(&format!("{page}/events?status=NOTIFIED"))
            .await
            .text()
            .await
            .unwrap();
        if let Some(start) = html.find(&format!("href=\"{page}/events/")) {
            let rest = &html[start + 6..];
            event_path = Some(rest[..rest.find('"').unwrap()].to_string());
            break;
        }
    }
    let event_path = event_path.expect("an event delivered within 20 s");
    // A filter that cannot be read is said, and lists nothing rather than every event.
    let unread = first
        .get(&format!("{page}/events?from=garbage&page=-1"))
        .await
        .text()
        .await
        .unwrap();
    assert!(unread.contains("id=\"filter-problems\""), "{unread}");
    assert!(
        unread.contains("From `garbage` is not a date and time"),
        "{unread}"
    );
    assert!(
        unread.contains("Page `-1` is not a page number"),
        "{unread}"
    );
    assert!(
        !unread.contains(&format!("href=\"{page}/events/")),
        "{unread}"
    );
    // So is a value no event can have, or a filter the page does not take (an outside
    // tester's: they listed nothing, or everything, while the form said "Any").
    let odd = first
        .get(&format!(
            "{page}/events?type=bogus&status=sent&objectId=1&object=%00"
        ))
        .await
        .text()
        .await
        .unwrap();
    for said in [
        "Type `bogus` is not one of CREATED, UPDATED, DELETED.",
        "Status `sent` is not one of NEW",
        "`objectId` is not a filter of this page",
        "Object id `\\0` holds a control character",
    ] {
        assert!(odd.contains(said), "{said}: {odd}");
    }
    assert!(!odd.contains('\0'), "a NUL shown as it is");
    assert!(!odd.contains(&format!("href=\"{page}/events/")), "{odd}");
    let removed = first
        .get(&format!("{page}/events?resource=people"))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        removed.contains("<option value=\"people\" selected>people</option>"),
        "a resource not offered shows as chosen: {removed}"
    );
    let missing = first.get(&format!("{page}/events/%00")).await;
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    assert!(!missing.text().await.unwrap().contains('\0'));
    let event_page = first.get(&event_path).await.text().await.unwrap();
    let notification = field(&event_page, "notification");
    let sent_times = || {
        app.receiver
            .received()
            .iter()
            .filter(|r| r.header("Elements-Webhook-Id") == Some(notification.as_str()))
            .count()
    };
    assert_eq!(sent_times(), 1);

    let resend = format!("{event_path}/resend");
    assert_eq!(
        first.post(&resend, &[("csrf", "")]).await.status(),
        StatusCode::FORBIDDEN
    );
    let mut other = Browser::new(&app);
    other.sign_in("other@example.test", PASSWORD).await;
    let other_csrf = other.csrf().await;
    assert_eq!(
        other.post(&resend, &[("csrf", &other_csrf)]).await.status(),
        StatusCode::NOT_FOUND
    );

    let sent = first.post(&resend, &[("csrf", &csrf)]).await;
    assert_eq!(sent.status(), StatusCode::SEE_OTHER);
    assert_eq!(sent.headers()["location"], event_path.as_str());
    for _ in 0..100 {
        if sent_times() == 2 {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    panic!("the notification was not sent again within 20 s");
}
