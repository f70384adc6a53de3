use reqwest::Method;
use serde_json::{Value, json};

use crate::{App, ids, status_json};

#[tokio::test]
async fn list_returns_bare_array_of_contact_shaped_records() {
    let app = App::start().await;
    let resp = app
        .api(Method::GET, "company/contacts")
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(resp.headers()["api-current-version"], "2025.1");
    assert_eq!(resp.headers()["cache-control"], "no-cache");
    let (_, body) = status_json(resp).await;
    let list = body.as_array().expect("bare array");
    assert_eq!(list.len(), 25, "default page size");
    let got = ids(&body);
    let mut sorted = got.clone();
    sorted.sort();
    assert_eq!(got, sorted, "default order is id asc");
    let host = app.handle.addr.to_string();
    for c in list {
        assert!(c["firstName"].is_string());
        assert!(c["inactiveFlag"].is_boolean());
        assert!(
            c["communicationItems"].is_array()
                && c["types"].is_array()
                && c["customFields"].is_array()
        );
        let company = &c["company"];
        let cid = company["id"].as_i64().expect("company id");
        assert!(company["identifier"].is_string() && company["name"].is_string());
        assert_eq!(
            company["_info"]["company_href"],
            format!("http://{host}/v4_6_release/apis/3.0/company/companies/{cid}")
        );
        let id = c["id"].as_i64().expect("id");
        let info = &c["_info"];
        assert!(
            info["lastUpdated"]
                .as_str()
                .expect("lastUpdated")
                .ends_with('Z')
        );
        assert_eq!(
            info["lastUpdated"].as_str().map(str::len),
            Some(20),
            "second precision"
        );
        assert!(info["updatedBy"].is_string());
        assert_eq!(
            info["notes_href"],
            format!("http://{host}/v4_6_release/apis/3.0/company/contacts/{id}/notes")
        );
        assert!(info["communications_href"].is_string());
        // Null fields are omitted, never sent as null.
        assert!(
            c.as_object()
                .expect("object")
                .values()
                .all(|v| !v.is_null())
        );
        // The company exists.
        let (status, _) = app.get_json(&format!("company/companies/{cid}")).await;
        assert_eq!(status, 200);
    }
}

#[tokio::test]
async fn hrefs_follow_the_request_host_and_codebase() {
    let app = App::start().await;
    let url = app.root("/v2025_1//apis/3.0/company/contacts?pageSize=1");
    let resp = app
        .http
        .get(url)
        .header(
            "authorization",
            crate::basic("demo", "demo-public", "demo-private"),
        )
        .header("host", "na.myconnectwise.net")
        .send()
        .await
        .expect("send");
    let (status, body) = status_json(resp).await;
    assert_eq!(status, 200);
    let href = body[0]["_info"]["notes_href"].as_str().expect("href");
    assert!(
        href.starts_with("http://na.myconnectwise.net/v2025_1/apis/3.0/company/contacts/"),
        "{href}"
    );
}

/// Which records a condition should select, computed independently in Rust.
type Predicate = Box<dyn Fn(&Value) -> bool>;

#[tokio::test]
async fn conditions_filter_lists_and_counts() {
    let app = App::start().await;
    let all = app.sim().ids("company/contacts");
    let (_, first) = app.get_json(&format!("company/contacts/{}", all[0])).await;
    let company_id = first["company"]["id"].as_i64().expect("company id");
    let cases: Vec<(String, Predicate)> = vec![
        (
            format!("company/id = {company_id}"),
            Box::new(move |c: &Value| c["company"]["id"] == company_id),
        ),
        (
            "inactiveFlag = true".into(),
            Box::new(|c: &Value| c["inactiveFlag"] == true),
        ),
        (
            "(firstName like 'A%' or firstName like 'B%') and inactiveFlag = False".into(),
            Box::new(|c: &Value| {
                let f = c["firstName"].as_str().unwrap_or("");
                (f.starts_with('A') || f.starts_with('B')) && c["inactiveFlag"] == false
            }),
        ),
        (
            "title != null AND Company/Name contains 'a'".into(),
            Box::new(|c: &Value| {
                c.get("title").is_some()
                    && c["company"]["name"]
                        .as_str()
                        .unwrap_or("")
                        .to_lowercase()
                        .contains('a')
            }),
        ),
        (
            format!("id in ({}, {}, 1)", all[3], all[5]),
            Box::new({
                let (a, b) = (all[3], all[5]);
                move |c: &Value| c["id"] == a || c["id"] == b
            }),
        ),
    ];
    for (cond, pred) in cases {
        let (status, body) = app
            .get_json(&format!(
                "company/contacts?pageSize=1000&conditions={}",
                urlenc(&cond)
            ))
            .await;
        assert_eq!(status, 200, "{cond}: {body}");
        let (_, everything) = app.get_json("company/contacts?pageSize=1000").await;
        let expected: Vec<i64> = everything
            .as_array()
            .expect("array")
            .iter()
            .filter(|c| pred(c))
            .map(|c| c["id"].as_i64().unwrap_or(0))
            .collect();
        assert!(
            !expected.is_empty(),
            "{cond} should match something in seed data"
        );
        assert_eq!(ids(&body), expected, "{cond}");
        let (_, count) = app
            .get_json(&format!(
                "company/contacts/count?conditions={}",
                urlenc(&cond)
            ))
            .await;
        assert_eq!(count, json!({"count": expected.len()}), "{cond}");
    }
}

pub fn urlenc(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

#[tokio::test]
async fn last_updated_polling_sees_writes_made_after_the_cursor() {
    let app = App::start().await;
    let now = app.freeze().await;
    let (_, before) = app
        .get_json(&format!(
            "company/contacts?conditions={}",
            urlenc(&format!("lastUpdated > [{now}]"))
        ))
        .await;
    assert_eq!(ids(&before), Vec::<i64>::new(), "seed data is in the past");
    app.control("/__sim/clock", json!({"advanceSeconds": 5}))
        .await;
    let id = app.sim().ids("company/contacts")[7];
    let resp = app
        .api(Method::PATCH, &format!("company/contacts/{id}"))
        .json(&json!([{"op": "replace", "path": "title", "value": "Chief Tester"}]))
        .send()
        .await
        .expect("send");
    let (status, patched) = status_json(resp).await;
    assert_eq!(status, 200, "{patched}");
    assert_eq!(patched["title"], "Chief Tester");
    assert_eq!(patched["_info"]["updatedBy"], "apiuser");
    let stamped = patched["_info"]["lastUpdated"]
        .as_str()
        .expect("lastUpdated")
        .to_string();
    assert!(stamped > now, "{stamped} > {now}");
    for cond in [
        format!("lastUpdated > [{now}]"),
        format!("_info/lastUpdated>[{now}]"),
        format!("LastUpdated = [{stamped}]"),
    ] {
        let (_, after) = app
            .get_json(&format!("company/contacts?conditions={}", urlenc(&cond)))
            .await;
        assert_eq!(ids(&after), vec![id], "{cond}");
    }
}

#[tokio::test]
async fn create_get_put_patch_delete_round_trip() {
    let app = App::start().await;
    let now = app.freeze().await;
    let company = app.sim().ids("company/companies")[2];
    let resp = app
        .api(Method::POST, "company/contacts")
        .json(&json!({"firstName": "Ada", "lastName": "Lovelace", "company": {"id": company},
                      "communicationItems": [{"type": {"id": 1}, "value": "ada@example.com", "communicationType": "Email", "defaultFlag": true}],
                      "id": 5, "_info": {"lastUpdated": "1999-01-01T00:00:00Z"}, "unknownField": 1}))
        .send()
        .await
        .expect("send");
    let (status, created) = status_json(resp).await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_i64().expect("id");
    assert_ne!(id, 5, "ids are assigned by the server");
    assert_eq!(created["_info"]["lastUpdated"], now.as_str());
    assert_eq!(created["company"]["id"], company);
    assert!(
        created["company"]["name"].is_string(),
        "reference filled in: {created}"
    );
    assert_eq!(created["communicationItems"][0]["type"]["name"], "Email");
    assert!(created.get("unknownField").is_none());

    let (status, got) = app.get_json(&format!("company/contacts/{id}")).await;
    assert_eq!(status, 200);
    assert_eq!(got, created);
    assert_eq!(
        app.sim()
            .get("company/contacts", id)
            .map(|v| v["firstName"].clone()),
        Some(json!("Ada"))
    );

    app.control("/__sim/clock", json!({"advanceSeconds": 60}))
        .await;
    let resp = app
        .api(Method::PUT, &format!("company/contacts/{id}"))
        .json(&json!({"firstName": "Augusta", "company": {"identifier": created["company"]["identifier"]}}))
        .send()
        .await
        .expect("send");
    let (status, put) = status_json(resp).await;
    assert_eq!(status, 200, "{put}");
    assert_eq!(put["firstName"], "Augusta");
    assert!(put.get("lastName").is_none(), "PUT replaces all fields");
    assert_ne!(put["_info"]["lastUpdated"], created["_info"]["lastUpdated"]);

    let resp = app
        .api(Method::DELETE, &format!("company/contacts/{id}"))
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status().as_u16(), 204);
    assert_eq!(resp.text().await.expect("body"), "");
    let (status, body) = app.get_json(&format!("company/contacts/{id}")).await;
    assert_eq!(status, 404);
    assert_eq!(
        body,
        json!({"code": "NotFound", "message": format!("Contact {id} not found")})
    );
    let resp = app
        .api(Method::DELETE, &format!("company/contacts/{id}"))
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status().as_u16(), 404);
}

#[tokio::test]
async fn invalid_writes_get_invalid_object_bodies() {
    let app = App::start().await;
    let cases = vec![
        (
            Method::POST,
            "company/contacts".to_string(),
            json!({"lastName": "NoFirst"}),
            "MissingRequiredField",
            "firstName",
        ),
        (
            Method::POST,
            "company/contacts".to_string(),
            json!({"firstName": "X", "company": {"id": 999999}}),
            "InvalidField",
            "company",
        ),
        (
            Method::POST,
            "company/contacts".to_string(),
            json!({"firstName": "X", "inactiveFlag": "maybe"}),
            "InvalidField",
            "inactiveFlag",
        ),
        (
            Method::POST,
            "company/contacts".to_string(),
            json!([1, 2]),
            "InvalidObject",
            "",
        ),
    ];
    let id = app.sim().ids("company/contacts")[0];
    let mut cases = cases;
    cases.push((
        Method::PATCH,
        format!("company/contacts/{id}"),
        json!({"op": "replace"}),
        "InvalidObject",
        "",
    ));
    cases.push((
        Method::PATCH,
        format!("company/contacts/{id}"),
        json!([{"op": "replace", "path": "/nope", "value": 1}]),
        "InvalidField",
        "nope",
    ));
    cases.push((
        Method::PATCH,
        format!("company/contacts/{id}"),
        json!([{"op": "replace", "path": "/firstName", "value": ""}]),
        "MissingRequiredField",
        "firstName",
    ));
    for (method, path, body, code, field) in cases {
        let resp = app
            .api(method.clone(), &path)
            .json(&body)
            .send()
            .await
            .expect("send");
        let (status, err) = status_json(resp).await;
        assert_eq!(status, 400, "{method} {path} {body}: {err}");
        assert_eq!(err["code"], "InvalidObject", "{err}");
        assert_eq!(err["message"], "contact object is invalid", "{err}");
        assert_eq!(err["errors"][0]["code"], code, "{body}: {err}");
        assert_eq!(err["errors"][0]["field"], field, "{body}: {err}");
        assert_eq!(err["errors"][0]["resource"], "contact");
    }
    let resp = app
        .api(Method::POST, "company/contacts")
        .body("{not json")
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status().as_u16(), 400);
    // Nothing was written.
    assert_eq!(app.sim().ids("company/contacts").len(), 100);
}

#[tokio::test]
async fn bad_conditions_get_400_with_connectwise_message() {
    let app = App::start().await;
    let cases = [
        (
            "inactiveFlag = 1",
            "Expected a boolean value, not a numeric.",
        ),
        (
            "firstName = fred",
            "String values should be enclosed with double or single quotes",
        ),
        ("nosuchfield = 1", "Cannot find field 'nosuchfield'"),
        ("(id = 1", "Expected ')'"),
        ("lastUpdated > [not a date]", "not a valid datetime"),
    ];
    for (cond, part) in cases {
        let (status, body) = app
            .get_json(&format!("company/contacts?conditions={}", urlenc(cond)))
            .await;
        assert_eq!(status, 400, "{cond}");
        assert_eq!(body["code"], "InvalidObject");
        assert!(
            body["message"].as_str().unwrap_or("").contains(part),
            "{cond}: {body}"
        );
        let (status, _) = app
            .get_json(&format!(
                "company/contacts/count?conditions={}",
                urlenc(cond)
            ))
            .await;
        assert_eq!(status, 400, "count {cond}");
    }
    let (status, body) = app.get_json("company/contacts?orderBy=nope%20asc").await;
    assert_eq!(
        (status, body["code"].clone()),
        (400, json!("InvalidObject"))
    );
}

#[tokio::test]
async fn order_by_and_fields() {
    let app = App::start().await;
    let (_, body) = app.get_json("company/contacts?orderBy=lastName%20desc,id%20asc&pageSize=1000&fields=id,lastName,company/name").await;
    let list = body.as_array().expect("array");
    assert_eq!(list.len(), 100);
    let names: Vec<String> = list
        .iter()
        .map(|c| c["lastName"].as_str().unwrap_or("").to_lowercase())
        .collect();
    let mut sorted = names.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(names, sorted);
    for c in list {
        let keys: Vec<&String> = c.as_object().expect("object").keys().collect();
        assert!(keys.len() <= 3, "{c}");
        assert_eq!(c["company"].as_object().map(|o| o.len()), Some(1), "{c}");
    }
    let id = app.sim().ids("company/contacts")[0];
    let (_, one) = app
        .get_json(&format!("company/contacts/{id}?fields=id,firstName"))
        .await;
    assert_eq!(one.as_object().map(|o| o.len()), Some(2));
}

#[tokio::test]
async fn child_and_custom_field_conditions() {
    let app = App::start().await;
    let (_, all) = app.get_json("company/contacts?pageSize=1000").await;
    let email = all[3]["communicationItems"][0]["value"]
        .as_str()
        .expect("email")
        .to_string();
    let cond = format!(
        "communicationItems/value like \"{email}\" AND communicationItems/communicationType=\"Email\""
    );
    let (status, body) = app
        .get_json(&format!(
            "company/contacts?childconditions={}",
            urlenc(&cond)
        ))
        .await;
    assert_eq!(status, 200, "{body}");
    assert!(ids(&body).contains(&all[3]["id"].as_i64().unwrap_or(0)));
    let with_value: Vec<i64> = all
        .as_array()
        .expect("array")
        .iter()
        .filter(|c| c["customFields"][0].get("value").is_some())
        .map(|c| c["id"].as_i64().unwrap_or(0))
        .collect();
    let (_, body) = app
        .get_json(&format!(
            "company/contacts?pageSize=1000&customFieldConditions={}",
            urlenc("caption=\"Preferred Contact Time\" AND value != null")
        ))
        .await;
    assert_eq!(ids(&body), with_value);
}

/// Top-level keys of a JSON object, in the order the server wrote them.
fn key_order(text: &str) -> Vec<String> {
    let mut keys = Vec::new();
    let mut de = serde_json::Deserializer::from_str(text);
    struct Keys<'a>(&'a mut Vec<String>);
    impl<'de> serde::de::Visitor<'de> for Keys<'_> {
        type Value = ();
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("an object")
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
            while let Some((k, _)) = map.next_entry::<String, serde::de::IgnoredAny>()? {
                self.0.push(k);
            }
            Ok(())
        }
    }
    serde::Deserializer::deserialize_map(&mut de, Keys(&mut keys)).expect("object");
    keys
}

#[tokio::test]
async fn every_body_keeps_model_field_order() {
    let app = App::start().await;
    let company = app.sim().ids("company/companies")[2];
    let send = |method: Method, path: String, body: Option<serde_json::Value>| {
        let mut req = app.api(method, &path);
        if let Some(b) = body {
            req = req.json(&b);
        }
        async move {
            let resp = req.send().await.expect("send");
            let status = resp.status().as_u16();
            (status, resp.text().await.expect("body"))
        }
    };
    let (status, created) = send(
        Method::POST,
        "company/contacts".into(),
        Some(json!({"firstName": "Ada", "lastName": "Lovelace", "company": {"id": company}})),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let keys = key_order(&created);
    assert_eq!(keys.first().map(String::as_str), Some("id"), "{created}");
    assert_eq!(keys.last().map(String::as_str), Some("_info"), "{created}");
    let id: serde_json::Value = serde_json::from_str(&created).expect("json");
    let id = id["id"].as_i64().expect("id");
    let (status, got) = send(Method::GET, format!("company/contacts/{id}"), None).await;
    assert_eq!(status, 200);
    assert_eq!(key_order(&got), keys, "POST answers like GET");
    let (status, put) = send(
        Method::PUT,
        format!("company/contacts/{id}"),
        Some(json!({"firstName": "Augusta", "company": {"id": company}})),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(key_order(&put)[0], "id", "{put}");
    let (status, patched) = send(
        Method::PATCH,
        format!("company/contacts/{id}"),
        Some(json!([{"op": "replace", "path": "title", "value": "Countess"}])),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(key_order(&patched)[0], "id", "{patched}");
    let (status, projected) = send(
        Method::GET,
        format!("company/contacts/{id}?fields=_info,firstName,id"),
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(key_order(&projected), ["id", "firstName", "_info"]);
    let (status, listed) = send(
        Method::GET,
        format!("company/contacts?conditions=id%3D{id}&fields=_info,firstName,id"),
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert!(
        listed.starts_with(r#"[{"id":"#) && listed.find("firstName") < listed.find("_info"),
        "{listed}"
    );
    let (status, info) = send(Method::GET, "system/info".into(), None).await;
    assert_eq!(status, 200);
    assert_eq!(
        key_order(&info),
        [
            "version",
            "isCloud",
            "serverTimeZone",
            "licenseBits",
            "cloudRegion",
            "maxWorkFlowRecordsAllowed"
        ]
    );
    assert!(
        info.contains(r#"{"name":"CRM","activeFlag":true}"#),
        "{info}"
    );
    let text = app
        .http
        .get(app.root("/login/companyinfo/demo"))
        .send()
        .await
        .expect("send")
        .text()
        .await
        .expect("body");
    assert_eq!(
        key_order(&text),
        [
            "CompanyName",
            "Codebase",
            "VersionCode",
            "VersionNumber",
            "CompanyID",
            "IsCloud",
            "SiteUrl",
            "AllowAccess"
        ]
    );
}
