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
    assert_eq!(pages, 3);
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
