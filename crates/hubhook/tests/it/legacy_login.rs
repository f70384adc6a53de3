//! A tool written against Cloud Elements' legacy login: it signs in with a form, reads the
//! secrets with the session cookie, and then manages an instance with them, seeing Cloud
//! Elements' statuses (200 with JSON everywhere, never a redirect).

use reqwest::{Method, redirect::Policy};
use serde_json::{Value, json};

use crate::app::spawn_app;

const EMAIL: &str = "Ops@Example.com";
const PASSWORD: &str = "correct horse battery";

/// The legacy sign-in form's request, to send as it is or with more headers.
fn sign_in_request(
    http: &reqwest::Client,
    base: &str,
    email: &str,
    password: &str,
) -> reqwest::RequestBuilder {
    http.post(format!("{base}/elements/j_spring_security_check"))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(
            url::form_urlencoded::Serializer::new(String::new())
                .append_pair("j_username", email)
                .append_pair("j_password", password)
                .finish(),
        )
}

#[tokio::test]
async fn a_tool_signs_in_reads_its_secrets_and_manages_an_instance() {
    let app = spawn_app().await;
    let login = hubhook::org::Login {
        email: EMAIL.into(),
        password: PASSWORD.into(),
        first_name: "Ada".into(),
        last_name: "Ops".into(),
    };
    let org = hubhook::org::create_with_login(app.server().store(), "tools", Some(login))
        .await
        .expect("org with a sign-in");
    let base = app.server().url();
    // The tool follows no redirect, so a redirect would show as a 3xx here.
    let tool = reqwest::Client::builder()
        .redirect(Policy::none())
        .build()
        .expect("client");
    // The sign-in request, to send as it is or with more headers.
    let sign_in =
        |password: &'static str| sign_in_request(&tool, &base, "ops@example.com", password);

    let refused = sign_in("wrong password").send().await.expect("sent");
    assert_eq!(refused.status(), 401);
    let signed_in = sign_in(PASSWORD).send().await.expect("sent");
    assert_eq!(signed_in.status(), 200);
    let cookie = signed_in
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .expect("a session cookie")
        .split(';')
        .next()
        .expect("name=value")
        .to_string();
    assert!(cookie.starts_with("JSESSIONID="), "{cookie}");
    // Plain HTTP: no `Secure` (browsers would drop it); through an HTTPS proxy that says so, set.
    let attributes = |response: &reqwest::Response| {
        response.headers()["set-cookie"]
            .to_str()
            .expect("text")
            .to_string()
    };
    assert!(!attributes(&signed_in).contains("Secure"));
    let proxied = sign_in(PASSWORD)
        .header("Forwarded", "for=192.0.2.7;proto=https")
        .send()
        .await
        .expect("sent");
    assert_eq!(proxied.status(), 200);
    assert!(
        attributes(&proxied).ends_with("; Secure"),
        "{}",
        attributes(&proxied)
    );

    let secrets_url = format!("{base}/elements/api-v1/ui/getSecrets");
    let without = tool.get(&secrets_url).send().await.expect("sent");
    assert_eq!(without.status(), 401);
    let secrets = || async {
        tool.get(&secrets_url)
            .header("Cookie", &cookie)
            .send()
            .await
            .expect("sent")
            .json::<Value>()
            .await
            .expect("json")
    };
    let first = secrets().await;
    assert_eq!(first["user"], org.user_secret);
    assert_eq!(first["company"], org.organization_secret);
    let auth = format!(
        "User {}, Organization {}",
        first["user"].as_str().expect("user"),
        first["company"].as_str().expect("company")
    );

    // Create, patch, disable, enable, delete: 200 with a JSON body each time.
    let (status, created) = app
        .call(
            Method::POST,
            "/instances",
            Some(&auth),
            Some(&app.quiet_body("tool")),
        )
        .await;
    assert_eq!(status, 200, "{created}");
    assert_eq!(created["user"]["emailAddress"], "ops@example.com");
    assert_eq!(created["user"]["firstName"], "Ada");
    let path = format!("/instances/{}", created["id"]);
    let steps = [
        (
            Method::PATCH,
            path.clone(),
            Some(json!({"tags": ["tooling"]})),
        ),
        (Method::DELETE, format!("{path}/enabled"), None),
        (Method::PUT, format!("{path}/enabled"), None),
        (Method::DELETE, path.clone(), None),
    ];
    for (method, path, body) in steps {
        let (status, answer) = app
            .call(method.clone(), &path, Some(&auth), body.as_ref())
            .await;
        assert_eq!(status, 200, "{method} {path}: {answer}");
        assert!(answer.is_object(), "{method} {path}: {answer}");
    }
    let (status, _) = app.call(Method::GET, &path, Some(&auth), None).await;
    assert_eq!(status, 404);

    // Rotating the user's secret through the API ends the old one; getSecrets shows the new.
    let (status, rotated) = app
        .call(
            Method::POST,
            &format!("/users/{}/secret", org.user_id),
            Some(&auth),
            None,
        )
        .await;
    assert_eq!(status, 200, "{rotated}");
    let (status, _) = app.call(Method::GET, "/instances", Some(&auth), None).await;
    assert_eq!(status, 401);
    assert_eq!(secrets().await["user"], rotated["secret"]);
}

#[tokio::test]
async fn secrets_made_before_copies_were_kept_must_be_rotated_first() {
    let app = spawn_app().await;
    let store = app.server().store();
    // An organization as `org create` made them before sealed copies: hashes only.
    let (org, _) = store
        .create_organization("old", [7; 32], [8; 32], jiff::Timestamp::now())
        .await
        .expect("old organization");
    let login = hubhook::org::Login {
        email: "late@example.com".into(),
        password: PASSWORD.into(),
        ..Default::default()
    };
    hubhook::org::create_user(store, org.0, login)
        .await
        .expect("user");
    let base = app.server().url();
    let signed_in = app
        .http
        .post(format!("{base}/elements/j_spring_security_check"))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(format!(
            "j_username=late%40example.com&j_password={}",
            PASSWORD.replace(' ', "+")
        ))
        .send()
        .await
        .expect("sent");
    assert_eq!(signed_in.status(), 200);
    let cookie = signed_in.headers()["set-cookie"]
        .to_str()
        .expect("text")
        .split(';')
        .next()
        .expect("cookie")
        .to_string();
    let secrets = || async {
        app.http
            .get(format!("{base}/elements/api-v1/ui/getSecrets"))
            .header("Cookie", &cookie)
            .send()
            .await
            .expect("sent")
    };
    let refused = secrets().await;
    assert_eq!(refused.status(), 409);
    let error: Value = refused.json().await.expect("json");
    assert!(
        error["message"].as_str().expect("m").contains("rotate"),
        "{error}"
    );
    hubhook::org::rotate_organization_secret(store, org.0)
        .await
        .expect("rotated");
    assert_eq!(secrets().await.status(), 200);
}

/// Ten failed sign-ins for an email lock it out for ten minutes, the right password
/// included (`429` with `Retry-After`), so that a password cannot be guessed at the speed of
/// the server; another email, or an unknown one, is not held up by it, and neither is a client
/// that signed in as the email before (its device cookie). Fails without the lockout (the
/// eleventh try, with the right password, signs in).
#[tokio::test]
async fn ten_failed_sign_ins_lock_the_email_out_for_a_while() {
    let app = spawn_app().await;
    for (email, name) in [(EMAIL, "locked"), ("other@example.com", "other")] {
        let login = hubhook::org::Login {
            email: email.into(),
            password: PASSWORD.into(),
            first_name: "Ada".into(),
            last_name: "Ops".into(),
        };
        hubhook::org::create_with_login(app.server().store(), name, Some(login))
            .await
            .expect("org with a sign-in");
    }
    let base = app.server().url();
    let sign_in = |email: &str, password: String| {
        let request = sign_in_request(&app.http, &base, email, &password);
        async move { request.send().await.expect("sent") }
    };
    // A tool that signed in before keeps its device cookie (`session.rs`, device cookies).
    let signed = sign_in(EMAIL, PASSWORD.to_string()).await;
    let device = signed
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| v.strip_prefix("hubhook_device="))
        .and_then(|v| v.split(';').next())
        .expect("a device cookie")
        .to_string();
    // Thirty guesses sent at once: each counts before its check, so ten are checked.
    let mut guesses = tokio::task::JoinSet::new();
    for n in 0..30 {
        let email = if n % 2 == 0 {
            "OPS@example.com"
        } else {
            " ops@example.com "
        };
        guesses.spawn(sign_in(email, format!("guess {n}")));
    }
    let mut statuses: Vec<u16> = guesses
        .join_all()
        .await
        .iter()
        .map(|answer| answer.status().as_u16())
        .collect();
    statuses.sort();
    assert_eq!(
        statuses.iter().filter(|s| **s == 401).count(),
        10,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 429).count(),
        20,
        "{statuses:?}"
    );
    let locked = sign_in("ops@example.com", PASSWORD.to_string()).await;
    assert_eq!(locked.status(), 429);
    let wait: u64 = locked.headers()["retry-after"]
        .to_str()
        .expect("text")
        .parse()
        .expect("seconds");
    assert!((500..=600).contains(&wait), "{wait}");
    let said: Value = locked.json().await.expect("json");
    assert!(
        said["message"]
            .as_str()
            .is_some_and(|m| m.contains("too many failed sign-ins")),
        "{said}"
    );
    let with_device = sign_in_request(&app.http, &base, EMAIL, PASSWORD)
        .header("Cookie", format!("hubhook_device={device}"))
        .send()
        .await
        .expect("sent");
    assert_eq!(with_device.status(), 200, "the tool that signed in before");
    assert_eq!(
        sign_in("other@example.com", PASSWORD.to_string())
            .await
            .status(),
        200
    );
    assert_eq!(
        sign_in("nobody@example.com", "guess".into()).await.status(),
        401
    );
    // Each failed email is remembered: one longer than an address can be is refused first.
    let long = format!("{}@example.com", "a".repeat(300));
    assert_eq!(sign_in(&long, "guess".into()).await.status(), 400);
}
