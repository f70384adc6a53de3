use reqwest::Method;
use serde_json::json;

use crate::{App, ids, link_of, status_json};

#[tokio::test]
async fn navigable_paging_links() {
    let app = App::start().await;
    let base = app.handle.base_url();
    let resp = app
        .api(
            Method::GET,
            "company/contacts?conditions=id%3E0&pageSize=30",
        )
        .send()
        .await
        .expect("send");
    let link = link_of(&resp).expect("link header");
    assert_eq!(
        link,
        format!(
            "<{base}/company/contacts/?conditions=id%3e0&pageSize=30&page=2>; rel=\"next\", <{base}/company/contacts/?conditions=id%3e0&pageSize=30&page=4>; rel=\"last\""
        )
    );
    let resp = app
        .api(Method::GET, "company/contacts?pageSize=30&page=2")
        .send()
        .await
        .expect("send");
    let link = link_of(&resp).expect("link header");
    assert_eq!(
        link,
        format!(
            "<{base}/company/contacts/?pageSize=30&page=1>; rel=\"first\", <{base}/company/contacts/?pageSize=30&page=1>; rel=\"prev\", <{base}/company/contacts/?pageSize=30&page=3>; rel=\"next\", <{base}/company/contacts/?pageSize=30&page=4>; rel=\"last\""
        )
    );
    let resp = app
        .api(Method::GET, "company/contacts?pageSize=30&page=4")
        .send()
        .await
        .expect("send");
    let link = link_of(&resp).expect("link header");
    assert!(!link.contains("rel=\"next\""), "{link}");
    let (_, body) = status_json(resp).await;
    assert_eq!(body.as_array().map(Vec::len), Some(10));
}

#[tokio::test]
async fn following_next_links_visits_every_record_once() {
    let app = App::start().await;
    let mut url = Some(app.url("company/contacts?pageSize=7&orderBy=firstName%20asc"));
    let mut seen = Vec::new();
    while let Some(u) = url {
        let resp = app
            .http
            .get(&u)
            .header(
                "authorization",
                crate::basic("demo", "demo-public", "demo-private"),
            )
            .send()
            .await
            .expect("send");
        let link = link_of(&resp).unwrap_or_default();
        let (status, body) = status_json(resp).await;
        assert_eq!(status, 200);
        seen.extend(ids(&body));
        url = link
            .split(", ")
            .find(|l| l.ends_with("rel=\"next\""))
            .and_then(|l| l.split(['<', '>']).nth(1))
            .map(String::from);
    }
    let mut expected = app.sim().ids("company/contacts");
    seen.sort();
    expected.sort();
    assert_eq!(seen, expected);
}

#[tokio::test]
async fn forward_only_paging_uses_page_id() {
    let app = App::start().await;
    let mut url = Some(app.url("company/contacts?pageSize=40&conditions=id%3E0"));
    let mut seen = Vec::new();
    let mut pages = 0;
    while let Some(u) = url {
        let resp = app
            .http
            .get(&u)
            .header(
                "authorization",
                crate::basic("demo", "demo-public", "demo-private"),
            )
            .header("pagination-type", "forward-only")
            .send()
            .await
            .expect("send");
        let link = link_of(&resp).expect("forward-only always sends Link");
        let (_, body) = status_json(resp).await;
        let page = ids(&body);
        if let Some(last) = page.last()
            && !link.is_empty()
        {
            assert!(
                link.contains(&format!("pageId={last}>; rel=\"next\"")),
                "{link}"
            );
            assert!(link.contains("conditions=id%3e0"), "{link}");
        }
        seen.extend(page);
        pages += 1;
        url = if link.is_empty() {
            None
        } else {
            link.split(['<', '>']).nth(1).map(String::from)
        };
    }
    // 40 + 40 + 20, each linking the next page, then the empty page with an empty Link.
    assert_eq!(pages, 4);
    assert_eq!(seen, app.sim().ids("company/contacts"));
    let resp = app
        .api(Method::GET, "company/contacts?orderBy=id%20desc")
        .header("pagination-type", "forward-only")
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status().as_u16(), 400);
}

#[tokio::test]
async fn page_size_is_capped_and_bad_numbers_rejected() {
    let app = App::with(connectwise_sim::SimConfig {
        records: 1200,
        ..Default::default()
    })
    .await;
    let (status, body) = app.get_json("company/contacts?pageSize=5000").await;
    assert_eq!(status, 200);
    assert_eq!(body.as_array().map(Vec::len), Some(1000));
    for bad in [
        "pageSize=abc",
        "pageSize=99999999999999999999",
        "page=1.5",
        "pageId=x",
    ] {
        let (status, body) = app.get_json(&format!("company/contacts?{bad}")).await;
        assert_eq!(status, 400, "{bad}");
        assert_eq!(body["code"], "InvalidObject");
    }
    let (status, body) = app.get_json("company/contacts?page=99").await;
    assert_eq!((status, body), (200, json!([])));
}

/// Parses `<url>; rel="next"` out of a Link header.
fn next_url(link: &str) -> Option<String> {
    link.split(", ")
        .find(|l| l.ends_with("rel=\"next\""))
        .and_then(|l| l.strip_prefix('<'))
        .and_then(|l| l.split('>').next())
        .map(str::to_string)
}

#[tokio::test]
async fn search_links_carry_the_body_conditions() {
    let app = App::start().await;
    let resp = app
        .api(Method::POST, "service/tickets/search?pageSize=2")
        .json(&json!({"conditions": "closedFlag = true"}))
        .send()
        .await
        .expect("send");
    let link = link_of(&resp).expect("link");
    assert!(
        link.contains("?conditions=closedFlag+%3d+true&pageSize=2&page=2"),
        "{link}"
    );
    let (_, first) = status_json(resp).await;
    let mut seen = ids(&first);
    let mut url = next_url(&link);
    while let Some(u) = url {
        let resp = app
            .http
            .get(&u)
            .header(
                "authorization",
                crate::basic("demo", "demo-public", "demo-private"),
            )
            .send()
            .await
            .expect("send");
        url = link_of(&resp).as_deref().and_then(next_url);
        let (status, page) = status_json(resp).await;
        assert_eq!(status, 200);
        for t in page.as_array().expect("array") {
            assert_eq!(t["closedFlag"], true, "{u}: next page is still filtered");
        }
        seen.extend(ids(&page));
    }
    let (_, all) = app
        .get_json("service/tickets?pageSize=1000&conditions=closedFlag%20%3D%20true")
        .await;
    assert_eq!(seen, ids(&all));
}

#[tokio::test]
async fn search_conditions_must_be_a_string() {
    let app = App::start().await;
    for body in [
        json!({"conditions": 5}),
        json!({"conditions": []}),
        json!({"conditions": {"a": 1}}),
        json!({"conditions": true}),
        json!([]),
        json!("closedFlag = true"),
    ] {
        let resp = app
            .api(Method::POST, "service/tickets/search")
            .json(&body)
            .send()
            .await
            .expect("send");
        let (status, err) = status_json(resp).await;
        assert_eq!(status, 400, "{body}: {err}");
        assert_eq!(err["code"], "InvalidObject");
    }
    let resp = app
        .api(Method::POST, "service/tickets/search")
        .json(&json!({}))
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status().as_u16(), 200);
}

#[tokio::test]
async fn bad_host_headers_cannot_inject_link_rels() {
    let app = App::start().await;
    let resp = app
        .api(Method::GET, "company/contacts?pageSize=5")
        .header("host", "evil>; rel=\"first\", <x")
        .send()
        .await
        .expect("send");
    let link = link_of(&resp).expect("link");
    assert!(!link.contains("evil"), "{link}");
    assert!(
        link.starts_with(&format!("<http://{}/", app.handle.addr)),
        "falls back to the listening address: {link}"
    );
    assert_eq!(link.matches("rel=").count(), 2, "{link}");
    let (_, body) = status_json(resp).await;
    let href = body[0]["_info"]["contacts_href"]
        .as_str()
        .or_else(|| body[0]["company"]["_info"]["company_href"].as_str())
        .expect("an href");
    assert!(href.contains(&app.handle.addr.to_string()), "{href}");
    let resp = app
        .api(Method::GET, "company/contacts?pageSize=5")
        .header("host", "cw.example.com:8443")
        .send()
        .await
        .expect("send");
    let link = link_of(&resp).expect("link");
    assert!(link.starts_with("<http://cw.example.com:8443/"), "{link}");
}
