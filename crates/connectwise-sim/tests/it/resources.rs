use reqwest::Method;
use serde_json::{Value, json};

use crate::contacts::urlenc;
use crate::{App, ids, status_json};

const RESOURCES: [&str; 9] = [
    "company/companies",
    "company/contacts",
    "service/tickets",
    "sales/opportunities",
    "sales/activities",
    "time/entries",
    "project/projects",
    "system/members",
    "system/callbacks",
];

/// Every reference object in `v` with an href must point at a record that exists.
async fn check_references(app: &App, v: &Value, checked: &mut std::collections::HashSet<String>) {
    let base = app.handle.base_url();
    let mut stack = vec![v.clone()];
    while let Some(v) = stack.pop() {
        match v {
            Value::Object(map) => {
                if let Some(info) = map.get("_info").and_then(Value::as_object)
                    && map.contains_key("id")
                {
                    for key in [
                        "company_href",
                        "contact_href",
                        "member_href",
                        "ticket_href",
                        "project_href",
                        "opportunity_href",
                    ] {
                        if let Some(href) = info.get(key).and_then(Value::as_str)
                            && checked.insert(href.to_string())
                        {
                            let path = href
                                .strip_prefix(&format!("{base}/"))
                                .expect("href on the request host");
                            let (status, _) = app.get_json(path).await;
                            assert_eq!(status, 200, "{href} referenced but missing");
                        }
                    }
                }
                stack.extend(
                    map.into_iter()
                        .filter(|(k, _)| k != "_info")
                        .map(|(_, v)| v),
                );
            }
            Value::Array(items) => stack.extend(items),
            _ => {}
        }
    }
}

#[tokio::test]
async fn every_resource_lists_counts_and_gets_with_consistent_references() {
    let app = App::with(connectwise_sim::SimConfig {
        records: 30,
        ..Default::default()
    })
    .await;
    let mut checked = std::collections::HashSet::new();
    for resource in RESOURCES {
        let (status, list) = app.get_json(&format!("{resource}?pageSize=1000")).await;
        assert_eq!(status, 200, "{resource}");
        let expected = if resource == "system/callbacks" {
            0
        } else {
            30
        };
        assert_eq!(list.as_array().map(Vec::len), Some(expected), "{resource}");
        let (_, count) = app.get_json(&format!("{resource}/count")).await;
        assert_eq!(count, json!({"count": expected}), "{resource}");
        for rec in list.as_array().expect("array").iter().take(10) {
            let id = rec["id"].as_i64().expect("id");
            let (status, one) = app.get_json(&format!("{resource}/{id}")).await;
            assert_eq!(status, 200);
            assert_eq!(
                &one, rec,
                "{resource}/{id}: GET by id equals the list entry"
            );
            let info = &rec["_info"];
            assert_eq!(
                info["lastUpdated"].as_str().map(str::len),
                Some(20),
                "{resource}: {rec}"
            );
            assert!(info["updatedBy"].is_string(), "{resource}");
            assert!(
                info.as_object()
                    .expect("info")
                    .values()
                    .all(Value::is_string),
                "_info values are strings: {info}"
            );
            check_references(&app, rec, &mut checked).await;
        }
        let (status, _) = app
            .get_json(&format!(
                "{resource}?conditions={}",
                urlenc("lastUpdated > [2000-01-01T00:00:00Z]")
            ))
            .await;
        assert_eq!(status, 200, "{resource} accepts lastUpdated");
    }
    assert!(
        checked.len() > 20,
        "references were checked: {}",
        checked.len()
    );
}

#[tokio::test]
async fn tickets_have_company_of_their_contact_and_closing_stamps_closed_date() {
    let app = App::start().await;
    let (_, tickets) = app
        .get_json("service/tickets?pageSize=1000&conditions=contact/id%3E0")
        .await;
    for t in tickets.as_array().expect("array") {
        let (_, contact) = app
            .get_json(&format!("company/contacts/{}", t["contact"]["id"]))
            .await;
        assert_eq!(contact["company"]["id"], t["company"]["id"], "{t}");
        assert!(t["_info"]["dateEntered"].is_string() && t["_info"]["enteredBy"].is_string());
        let board = t["board"]["id"].as_i64().expect("board");
        let status_href = t["status"]["_info"]["status_href"]
            .as_str()
            .expect("status href");
        assert!(
            status_href.ends_with(&format!(
                "/service/boards/{board}/statuses/{}",
                t["status"]["id"]
            )),
            "{status_href}"
        );
    }
    let company = app.sim().ids("company/companies")[4];
    let resp = app
        .api(Method::POST, "service/tickets")
        .json(&json!({"summary": "Printer jam", "company": {"id": company}, "board": {"name": "help desk"}}))
        .send()
        .await
        .expect("send");
    let (status, created) = status_json(resp).await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(
        created["board"],
        json!({"id": 1, "name": "Help Desk", "_info": {"board_href": format!("{}/service/boards/1", app.handle.base_url())}})
    );
    assert_eq!(created["recordType"], "ServiceTicket");
    assert!(created.get("closedDate").is_none());
    let id = created["id"].as_i64().expect("id");
    let resp = app
        .api(Method::PATCH, &format!("service/tickets/{id}"))
        .json(&json!([{"op": "replace", "path": "closedFlag", "value": true}, {"op": "replace", "path": "status", "value": {"id": 5}}]))
        .send()
        .await
        .expect("send");
    let (status, closed) = status_json(resp).await;
    assert_eq!(status, 200, "{closed}");
    assert_eq!(closed["closedFlag"], true);
    assert_eq!(closed["closedBy"], "apiuser");
    assert_eq!(closed["closedDate"], closed["_info"]["lastUpdated"]);
    assert_eq!(closed["status"]["name"], ">Closed");
    let resp = app
        .api(Method::POST, "service/tickets")
        .json(&json!({"summary": "x"}))
        .send()
        .await
        .expect("send");
    let (status, err) = status_json(resp).await;
    assert_eq!(status, 400);
    let fields: Vec<&str> = err["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .filter_map(|e| e["field"].as_str())
        .collect();
    assert_eq!(fields, vec!["company"], "{err}");
}

#[tokio::test]
async fn ticket_notes_live_under_their_ticket() {
    let app = App::start().await;
    let tickets = app.sim().ids("service/tickets");
    let (t1, t2) = (tickets[0], tickets[1]);
    let resp = app
        .api(Method::POST, &format!("service/tickets/{t1}/notes"))
        .json(&json!({"text": "Rebooted the router.", "internalAnalysisFlag": true}))
        .send()
        .await
        .expect("send");
    let (status, note) = status_json(resp).await;
    assert_eq!(status, 201, "{note}");
    assert_eq!(note["ticketId"], t1);
    assert_eq!(note["createdBy"], "apiuser");
    let nid = note["id"].as_i64().expect("id");
    let (status, got) = app
        .get_json(&format!("service/tickets/{t1}/notes/{nid}"))
        .await;
    assert_eq!((status, got), (200, note.clone()));
    let (status, body) = app
        .get_json(&format!("service/tickets/{t2}/notes/{nid}"))
        .await;
    assert_eq!(status, 404, "{body}");
    let (_, notes) = app
        .get_json(&format!("service/tickets/{t1}/notes?pageSize=1000"))
        .await;
    assert!(ids(&notes).contains(&nid));
    assert!(
        notes
            .as_array()
            .expect("array")
            .iter()
            .all(|n| n["ticketId"] == t1)
    );
    let (_, count) = app
        .get_json(&format!("service/tickets/{t1}/notes/count"))
        .await;
    assert_eq!(
        count["count"].as_u64(),
        Some(notes.as_array().map(Vec::len).unwrap_or(0) as u64)
    );
    let (status, _) = app.get_json("service/tickets/1/notes").await;
    assert_eq!(status, 404, "missing parent ticket");
    assert!(
        app.sim()
            .get(&format!("service/tickets/{t1}/notes"), nid)
            .is_some()
    );
    let resp = app
        .api(Method::DELETE, &format!("service/tickets/{t1}"))
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status().as_u16(), 204);
    assert!(
        app.sim()
            .get(&format!("service/tickets/{t1}/notes"), nid)
            .is_none(),
        "notes go with the ticket"
    );
}

#[tokio::test]
async fn ticket_search_takes_conditions_in_the_body() {
    let app = App::start().await;
    let resp = app
        .api(Method::POST, "service/tickets/search?pageSize=1000")
        .json(&json!({"conditions": "closedFlag = true"}))
        .send()
        .await
        .expect("send");
    let (status, found) = status_json(resp).await;
    assert_eq!(status, 200);
    let (_, listed) = app
        .get_json("service/tickets?pageSize=1000&conditions=closedFlag%20%3D%20true")
        .await;
    assert_eq!(ids(&found), ids(&listed));
    assert!(!ids(&found).is_empty());
}

#[tokio::test]
async fn companies_are_soft_deleted_and_identifiers_unique() {
    let app = App::start().await;
    let now = app.freeze().await;
    let id = app.sim().ids("company/companies")[3];
    let resp = app
        .api(Method::DELETE, &format!("company/companies/{id}"))
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status().as_u16(), 204);
    let (status, company) = app.get_json(&format!("company/companies/{id}")).await;
    assert_eq!(status, 200, "still readable by id");
    assert_eq!(company["deletedFlag"], true);
    assert_eq!(company["dateDeleted"], now.as_str());
    assert_eq!(company["deletedBy"], "apiuser");
    assert_eq!(company["_info"]["lastUpdated"], now.as_str());
    let (_, deleted) = app
        .get_json("company/companies?conditions=deletedFlag%3Dtrue")
        .await;
    assert_eq!(ids(&deleted), vec![id]);
    let identifier = company["identifier"].clone();
    let resp = app
        .api(Method::POST, "company/companies")
        .json(&json!({"identifier": identifier, "name": "Copycat"}))
        .send()
        .await
        .expect("send");
    let (status, err) = status_json(resp).await;
    assert_eq!(status, 400);
    assert_eq!(err["errors"][0]["code"], "ObjectExists", "{err}");
    let resp = app
        .api(Method::POST, "company/companies")
        .json(&json!({"identifier": "NewCo", "name": "New Co", "types": [{"id": 1}]}))
        .send()
        .await
        .expect("send");
    let (status, created) = status_json(resp).await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["types"][0]["name"], "Client");
    assert_eq!(created["_info"]["dateEntered"], now.as_str());
    assert_eq!(created["deletedFlag"], false);
}

#[tokio::test]
async fn merged_company_is_flagged_without_a_last_updated_bump() {
    let app = App::start().await;
    let ids = app.sim().ids("company/companies");
    let (from, into) = (ids[1], ids[2]);
    let before = app.sim().get("company/companies", from).expect("company");
    let now = app.freeze().await;
    let out = app
        .control(
            "/__sim/merge-companies",
            json!({"from": from, "into": into}),
        )
        .await;
    assert_eq!(out["from"], from);
    let after = app.sim().get("company/companies", from).expect("company");
    assert_eq!(after["deletedFlag"], true);
    assert_eq!(after["dateDeleted"], now.as_str());
    assert_eq!(
        after["_info"]["lastUpdated"],
        before["_info"]["lastUpdated"]
    );
    let (_, changed) = app
        .get_json(&format!(
            "company/companies?conditions={}",
            urlenc(&format!("lastUpdated >= [{now}]"))
        ))
        .await;
    assert_eq!(
        changed,
        json!([]),
        "a lastUpdated poll does not see the merge"
    );
    let resp = app
        .http
        .post(app.root("/__sim/merge-companies"))
        .json(&json!({"from": from, "into": 1}))
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status().as_u16(), 404);
}

#[tokio::test]
async fn mass_update_gives_many_records_one_last_updated() {
    let app = App::start().await;
    let now = app.freeze().await;
    let out = app
        .control(
            "/__sim/mass-update",
            json!({"resource": "company/contacts", "count": 40}),
        )
        .await;
    assert_eq!(out["updated"], 40);
    assert_eq!(out["lastUpdated"], now.as_str());
    let (_, count) = app
        .get_json(&format!(
            "company/contacts/count?conditions={}",
            urlenc(&format!("lastUpdated = [{now}]"))
        ))
        .await;
    assert_eq!(count, json!({"count": 40}));
}

#[tokio::test]
async fn members_are_read_only_and_time_entries_compute_hours() {
    let app = App::start().await;
    let (status, _) = status_json(
        app.api(Method::POST, "system/members")
            .json(&json!({}))
            .send()
            .await
            .expect("send"),
    )
    .await;
    assert_eq!(status, 405);
    let (_, members) = app
        .get_json("system/members?conditions=identifier%3D%27apiuser%27")
        .await;
    assert_eq!(members[0]["id"], 100);
    let ticket = app.sim().ids("service/tickets")[0];
    let resp = app
        .api(Method::POST, "time/entries")
        .json(&json!({"ticket": {"id": ticket}, "timeStart": "2026-01-05T09:00:00Z", "timeEnd": "2026-01-05T10:30:00.000Z", "member": {"identifier": "apiuser"}}))
        .send()
        .await
        .expect("send");
    let (status, entry) = status_json(resp).await;
    assert_eq!(status, 201, "{entry}");
    assert_eq!(entry["actualHours"], 1.5);
    assert_eq!(entry["chargeToType"], "ServiceTicket");
    assert_eq!(entry["chargeToId"], ticket);
    assert_eq!(entry["timeEnd"], "2026-01-05T10:30:00Z", "second precision");
    assert_eq!(entry["enteredBy"], "apiuser");
    assert_eq!(entry["member"]["name"], "API User");
}

#[tokio::test]
async fn boards_are_the_ones_tickets_reference_and_read_only() {
    let app = App::start().await;
    let (status, boards) = app.get_json("service/boards").await;
    assert_eq!(status, 200);
    let board_ids: Vec<i64> = boards
        .as_array()
        .expect("array")
        .iter()
        .map(|b| b["id"].as_i64().expect("id"))
        .collect();
    assert_eq!(board_ids, [1, 2, 3], "the boards of every --records value");
    let (_, tickets) = app.get_json("service/tickets?pageSize=1000").await;
    for ticket in tickets.as_array().expect("array") {
        let board = ticket["board"]["id"].as_i64().expect("board id");
        assert!(board_ids.contains(&board), "{ticket}");
        let (status, one) = app.get_json(&format!("service/boards/{board}")).await;
        assert_eq!(status, 200);
        assert_eq!(one["name"], ticket["board"]["name"]);
    }
    let (_, filtered) = app
        .get_json(&format!(
            "service/boards?conditions={}",
            urlenc("name like \"Help%\"")
        ))
        .await;
    assert_eq!(filtered.as_array().map(Vec::len), Some(1), "{filtered}");
    let (status, _) = status_json(
        app.api(Method::POST, "service/boards")
            .json(&json!({"name": "x"}))
            .send()
            .await
            .expect("send"),
    )
    .await;
    assert_eq!(status, 405);
}

#[tokio::test]
async fn user_defined_fields_are_written_like_other_records() {
    let app = App::start().await;
    let (status, seeded) = app.get_json("system/userDefinedFields").await;
    assert_eq!(status, 200);
    assert_eq!(seeded.as_array().map(Vec::len), Some(8), "{seeded}");
    // Some seeded fields show their missing help text as null, as ConnectWise sometimes does.
    assert!(seeded[1]["helpText"].is_null() && seeded[1].get("helpText").is_some());
    assert_eq!(seeded[0]["helpText"], "Morning or afternoon");
    let (status, created) = status_json(
        app.api(Method::POST, "system/userDefinedFields")
            .json(&json!({"podId": 1, "caption": "Shoe Size", "fieldTypeIdentifier": "Number", "sequenceNumber": 9}))
            .send()
            .await
            .expect("send"),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["entryTypeIdentifier"], "EntryField", "default");
    assert!(created["dateCreated"].is_string(), "{created}");
    let id = created["id"].as_i64().expect("id");
    let (status, patched) = status_json(
        app.api(Method::PATCH, &format!("system/userDefinedFields/{id}"))
            .json(&json!([{"op": "replace", "path": "caption", "value": "Boot Size"}]))
            .send()
            .await
            .expect("send"),
    )
    .await;
    assert_eq!(status, 200, "{patched}");
    assert_eq!(patched["caption"], "Boot Size");
    assert_eq!(patched["dateCreated"], created["dateCreated"]);
    let (status, refused) = status_json(
        app.api(Method::POST, "system/userDefinedFields")
            .json(&json!({"caption": "No Pod"}))
            .send()
            .await
            .expect("send"),
    )
    .await;
    assert_eq!(status, 400);
    assert!(refused.to_string().contains("podId"), "{refused}");
}
