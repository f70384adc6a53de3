use connectwise_sim::SimConfig;
use reqwest::Method;
use serde_json::json;

use crate::{App, basic, status_json};

#[tokio::test]
async fn wrong_or_missing_credentials_get_401() {
    let app = App::start().await;
    for auth in [
        None,
        Some(basic("demo", "demo-public", "wrong")),
        Some(basic("other", "demo-public", "demo-private")),
        Some("Bearer abc".to_string()),
        Some("Basic !!!notbase64".to_string()),
    ] {
        let mut req = app.http.get(app.url("company/contacts"));
        if let Some(a) = &auth {
            req = req.header("authorization", a);
        }
        let (status, body) = status_json(req.send().await.expect("send")).await;
        assert_eq!(status, 401, "{auth:?}");
        assert_eq!(
            body,
            json!({"code": "ConnectWiseApi", "message": "UserNotAuthenticated"})
        );
    }
}

#[tokio::test]
async fn client_id_required_when_configured() {
    let app = App::with(SimConfig {
        client_id: Some("1b2f0c4e-aaaa-bbbb-cccc-123456789abc".into()),
        ..Default::default()
    })
    .await;
    let (status, _) = status_json(
        app.api(Method::GET, "system/info")
            .send()
            .await
            .expect("send"),
    )
    .await;
    assert_eq!(status, 401);
    let (status, _) = status_json(
        app.api(Method::GET, "system/info")
            .header("ClientId", "wrong")
            .send()
            .await
            .expect("send"),
    )
    .await;
    assert_eq!(status, 401);
    let (status, info) = status_json(
        app.api(Method::GET, "system/info")
            .header("clientId", "1b2f0c4e-aaaa-bbbb-cccc-123456789abc")
            .send()
            .await
            .expect("send"),
    )
    .await;
    assert_eq!(status, 200);
    assert!(info["version"].is_string());
    assert_eq!(info["isCloud"], false);
}

#[tokio::test]
async fn members_are_told_apart_and_read_only_member_gets_403() {
    let app = App::start().await;
    let id = app.sim().ids("company/contacts")[0];
    let resp = app
        .http
        .patch(app.url(&format!("company/contacts/{id}")))
        .header(
            "authorization",
            basic("demo", "integration-public", "integration-private"),
        )
        .json(&json!([{"op": "replace", "path": "title", "value": "X"}]))
        .send()
        .await
        .expect("send");
    let (status, body) = status_json(resp).await;
    assert_eq!(status, 200);
    assert_eq!(body["_info"]["updatedBy"], "integration");
    let auth = basic("demo", "readonly-public", "readonly-private");
    let resp = app
        .http
        .get(app.url("company/contacts"))
        .header("authorization", &auth)
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status().as_u16(), 200);
    let resp = app
        .http
        .post(app.url("company/contacts"))
        .header("authorization", &auth)
        .json(&json!({"firstName": "X"}))
        .send()
        .await
        .expect("send");
    let (status, body) = status_json(resp).await;
    assert_eq!(status, 403);
    assert_eq!(body["code"], "Unauthorized");
}

#[tokio::test]
async fn company_info_and_routing() {
    let app = App::start().await;
    let (status, info) = status_json(
        app.http
            .get(app.root("/login/companyinfo/DEMO"))
            .send()
            .await
            .expect("send"),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(info["Codebase"], "v4_6_release/");
    assert_eq!(info["CompanyID"], "demo");
    assert_eq!(info["IsCloud"], "False");
    let (status, body) = status_json(
        app.http
            .get(app.root("/login/companyinfo/nobody"))
            .send()
            .await
            .expect("send"),
    )
    .await;
    assert_eq!((status, body), (200, serde_json::Value::Null));
    let auth = basic("demo", "demo-public", "demo-private");
    for path in [
        "/v2025_1/apis/3.0/system/info",
        "/v4_6_release//apis/3.0/system/info",
        "/v4_6_release/apis/3.0//system/info/",
    ] {
        let resp = app
            .http
            .get(app.root(path))
            .header("authorization", &auth)
            .send()
            .await
            .expect("send");
        assert_eq!(resp.status().as_u16(), 200, "{path}");
    }
    for path in [
        "/v4_6_release/apis/3.0/nothing/here",
        "/v4_6/apis/3.0/system/info",
        "/v4_6_release/apis/3.0/company/contacts/abc",
    ] {
        let (status, body) = status_json(
            app.http
                .get(app.root(path))
                .header("authorization", &auth)
                .send()
                .await
                .expect("send"),
        )
        .await;
        assert_eq!(status, 404, "{path}");
        assert_eq!(
            body,
            json!({"code": "ConnectWiseApi", "message": "The endpoint does not exist."})
        );
    }
    let (status, body) = status_json(
        app.api(Method::DELETE, "company/contacts")
            .send()
            .await
            .expect("send"),
    )
    .await;
    assert_eq!(status, 405);
    assert_eq!(
        body["message"],
        "The requested resource does not support http method 'DELETE'."
    );
}

#[tokio::test]
async fn accept_versions_are_parsed() {
    let app = App::start().await;
    for (accept, status) in [
        ("application/vnd.connectwise.com+json; version=2019.1", 200),
        (
            "application/vnd.connectwise.com+json; version=2021.1, application/json",
            200,
        ),
        ("application/json", 200),
        ("application/vnd.connectwise.com+json; version=latest", 400),
    ] {
        let resp = app
            .http
            .get(app.url("system/info"))
            .header(
                "authorization",
                basic("demo", "demo-public", "demo-private"),
            )
            .header("accept", accept)
            .send()
            .await
            .expect("send");
        assert_eq!(resp.status().as_u16(), status, "{accept}");
        assert_eq!(resp.headers()["api-current-version"], "2025.1");
    }
}

#[tokio::test]
async fn bad_version_without_credentials_is_401_not_400() {
    let app = App::start().await;
    let resp = app
        .http
        .get(app.url("company/contacts"))
        .header(
            "accept",
            "application/vnd.connectwise.com+json; version=latest",
        )
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status().as_u16(), 401);
    let resp = app
        .http
        .get(app.url("company/contacts"))
        .header("authorization", basic("demo", "demo-public", "wrong"))
        .header(
            "accept",
            "application/vnd.connectwise.com+json; version=latest",
        )
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status().as_u16(), 401);
}
