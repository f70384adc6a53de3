//! Engine-independent checks of what the platform API needs from the store: instance updates,
//! disabling, events by organization, users who sign in, sessions and sealed secret copies.
//! Run on every engine through the `conformance!` list (see `sqlite.rs`).

use hubhook_core::InstanceId;
use hubhook_store::{InstanceUpdate, NewSecret, NewUser, Store, StoreError};
use jiff::ToSpan as _;
use serde_json::json;

use crate::conformance::{
    LEASE, claim_jobs, claim_notifications, commit_with_events, instance_with, object,
    organization, t0,
};

pub fn update(resources: &[&str]) -> InstanceUpdate {
    InstanceUpdate {
        name: "renamed".into(),
        configuration: object(json!({ "company": "other", "private.key": "********" })),
        secrets: object(json!({ "private.key": "new-secret" })),
        tags: vec!["red".into()],
        events_enabled: true,
        resources: resources.iter().map(|r| r.to_string()).collect(),
        refresh_interval_ms: 5_000,
        now: t0() + 10.seconds(),
        read_version: None,
    }
}

fn secret(n: u8) -> NewSecret {
    NewSecret {
        hash: [n; 32],
        plain: format!("secret-{n}"),
    }
}

fn user(n: u8, email: Option<&str>) -> NewUser {
    NewUser {
        secret: secret(n),
        email: email.map(str::to_string),
        password_hash: email.map(|_| "$argon2id$stand-in".to_string()),
        first_name: "Ada".into(),
        last_name: "Lovelace".into(),
    }
}

pub async fn check_updating_an_instance_keeps_kept_cursors(store: &Store) {
    let instance = instance_with(store, &["contacts", "companies"]).await;
    let (other_org, _) = organization(store, 2).await;
    claim_jobs(store, "p", t0(), LEASE, 10).await.unwrap();
    store
        .commit_poll(commit_with_events(instance.id, "contacts", "p", 0, 1))
        .await
        .unwrap();

    // Another organization's update changes nothing.
    assert!(
        store
            .update_instance(other_org, instance.id, update(&["contacts"]))
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(
        store.instance(instance.id).await.unwrap().unwrap().name,
        instance.name
    );

    let updated = store
        .update_instance(
            instance.organization_id,
            instance.id,
            update(&["contacts", "tickets"]),
        )
        .await
        .unwrap()
        .expect("updated");
    assert_eq!(updated.name, "renamed");
    assert_eq!(updated.tags, vec!["red".to_string()]);
    assert_eq!(updated.configuration["company"], "other");
    assert_eq!(updated.secrets["private.key"], "new-secret");
    assert_eq!(updated.refresh_interval_ms, 5_000);
    let jobs = store.poll_jobs(instance.id).await.unwrap();
    let resources: Vec<&str> = jobs.iter().map(|j| j.resource.as_str()).collect();
    assert_eq!(resources, ["contacts", "tickets"]);
    assert_eq!(
        jobs[0].cursor,
        Some(t0() + 5.seconds()),
        "kept job keeps its cursor"
    );
    // The kept job's next run (t0 + 60 s) comes within the new, shorter interval.
    assert_eq!(jobs[0].next_run_at, t0() + 15.seconds());
    assert_eq!(
        jobs[1].cursor, None,
        "a new resource starts with a baseline"
    );
    assert_eq!(jobs[1].next_run_at, t0() + 10.seconds());
    // A kept resource keeps what it knew of its records.
    let ids = vec!["0".to_string()];
    assert_eq!(
        store
            .known_objects(instance.id, "contacts", &ids)
            .await
            .unwrap()
            .len(),
        1
    );
}

/// `updated_at` versions the instance's configuration (the poller caches the parsed
/// configuration under it, and each claim returns it): every change must give a value the
/// instance never had, even two changes in one millisecond or one from a node whose clock is
/// behind, and the claims and job listings must return the current one.
pub async fn check_every_change_of_an_instance_moves_its_version(store: &Store) {
    let instance = instance_with(store, &["contacts", "companies"]).await;
    assert_eq!(instance.updated_at, t0());
    let jobs = claim_jobs(store, "p", t0(), LEASE, 10).await.unwrap();
    assert_eq!(jobs.len(), 2);
    assert!(jobs.iter().all(|job| job.instance_updated_at == t0()));

    let mut versions = vec![instance.updated_at];
    let mut changed = |row: hubhook_store::InstanceRow| {
        let last = *versions.last().expect("a version");
        assert!(row.updated_at > last, "{} after {last}", row.updated_at);
        versions.push(row.updated_at);
        row.updated_at
    };
    let org = instance.organization_id;
    // A change in the millisecond of the creation, and one from a clock an hour behind.
    for now in [t0(), t0() - 1.hour()] {
        let update = InstanceUpdate {
            now,
            ..update(&["contacts", "companies"])
        };
        changed(
            store
                .update_instance(org, instance.id, update)
                .await
                .unwrap()
                .unwrap(),
        );
    }
    for disabled in [true, false] {
        changed(
            store
                .set_instance_disabled(org, instance.id, disabled, t0())
                .await
                .unwrap()
                .unwrap(),
        );
    }
    // A change from a clock that is ahead takes its time as it is.
    let later = t0() + 1.hour();
    let update = InstanceUpdate {
        now: later,
        ..update(&["contacts", "companies"])
    };
    let version = changed(
        store
            .update_instance(org, instance.id, update)
            .await
            .unwrap()
            .unwrap(),
    );
    assert_eq!(version, later);
    assert_eq!(
        store
            .instance(instance.id)
            .await
            .unwrap()
            .unwrap()
            .updated_at,
        later
    );

    for job in store.poll_jobs(instance.id).await.unwrap() {
        assert_eq!(job.instance_updated_at, later, "{}", job.resource);
    }
    let jobs = claim_jobs(store, "p", later + 1.minute(), LEASE, 10)
        .await
        .unwrap();
    assert_eq!(jobs.len(), 2);
    assert!(jobs.iter().all(|job| job.instance_updated_at == later));
}

/// An update made from a read (`read_version`) is written only if the instance still has
/// that version: made from an older one, it is refused as a conflict and changes nothing, so
/// that two changes made at once cannot silently undo each other. A deleted instance or
/// another organization's is not found, whatever the version. Fails if the write ignores
/// `read_version`.
pub async fn check_an_update_from_a_stale_read_stores_nothing(store: &Store) {
    let instance = instance_with(store, &["contacts", "companies"]).await;
    let org = instance.organization_id;
    let read = instance.updated_at;
    let first = InstanceUpdate {
        read_version: Some(read),
        ..update(&["contacts"])
    };
    let stored = store
        .update_instance(org, instance.id, first)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.name, "renamed");

    let stale = InstanceUpdate {
        name: "from the stale read".into(),
        read_version: Some(read),
        ..update(&["contacts", "companies"])
    };
    let refused = store.update_instance(org, instance.id, stale).await;
    assert!(
        matches!(&refused, Err(StoreError::Conflict(m)) if m == hubhook_store::CHANGED_MEANWHILE),
        "{:?}",
        refused.map(|row| row.map(|row| row.name))
    );
    let kept = store.instance(instance.id).await.unwrap().unwrap();
    assert_eq!(
        (kept.name.as_str(), kept.updated_at),
        ("renamed", stored.updated_at)
    );
    let jobs = store.poll_jobs(instance.id).await.unwrap();
    assert_eq!(
        jobs.len(),
        1,
        "the stale update gave companies its job again"
    );

    let current = InstanceUpdate {
        name: "from the current read".into(),
        read_version: Some(stored.updated_at),
        ..update(&["contacts"])
    };
    let renamed = store.update_instance(org, instance.id, current).await;
    assert_eq!(renamed.unwrap().unwrap().name, "from the current read");

    let (other_org, _) = organization(store, 2).await;
    let foreign = InstanceUpdate {
        read_version: Some(read),
        ..update(&["contacts"])
    };
    let foreign = store.update_instance(other_org, instance.id, foreign).await;
    assert!(foreign.unwrap().is_none());
    assert!(store.delete_instance(org, instance.id).await.unwrap());
    let gone = InstanceUpdate {
        read_version: Some(read),
        ..update(&["contacts"])
    };
    assert!(
        store
            .update_instance(org, instance.id, gone)
            .await
            .unwrap()
            .is_none()
    );
}

pub async fn check_a_disabled_instance_neither_polls_nor_delivers(store: &Store) {
    let instance = instance_with(store, &["contacts"]).await;
    let (other_org, _) = organization(store, 2).await;
    claim_jobs(store, "p", t0(), LEASE, 10).await.unwrap();
    store
        .commit_poll(commit_with_events(instance.id, "contacts", "p", 0, 2))
        .await
        .unwrap();
    assert!(
        store
            .set_instance_disabled(other_org, instance.id, true, t0())
            .await
            .unwrap()
            .is_none()
    );
    let disabled = store
        .set_instance_disabled(instance.organization_id, instance.id, true, t0())
        .await
        .unwrap()
        .expect("disabled");
    assert!(disabled.disabled);

    let later = t0() + 1.hour();
    assert!(
        claim_jobs(store, "p", later, LEASE, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        claim_notifications(store, "d", later, LEASE, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(store.next_notification_due(t0()).await.unwrap(), None);
    assert_eq!(store.next_poll_due().await.unwrap(), None);
    assert_eq!(store.delivery_backlog(later).await.unwrap().due, 0);

    // Enabled again: the job resumes from its cursor and the waiting notification goes out.
    store
        .set_instance_disabled(instance.organization_id, instance.id, false, later)
        .await
        .unwrap()
        .expect("enabled");
    let jobs = claim_jobs(store, "p", later, LEASE, 10).await.unwrap();
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].cursor, Some(t0() + 5.seconds()));
    assert_eq!(
        claim_notifications(store, "d", later, LEASE, 10)
            .await
            .unwrap()
            .len(),
        1
    );
}

pub async fn check_events_by_organization(store: &Store) {
    let instance = instance_with(store, &["contacts"]).await;
    let (other_org, _) = organization(store, 2).await;
    let org = instance.organization_id;
    claim_jobs(store, "p", t0(), LEASE, 10).await.unwrap();
    store
        .commit_poll(commit_with_events(instance.id, "contacts", "p", 0, 3))
        .await
        .unwrap();

    let all = store
        .organization_events(org, None, None, 0, 10)
        .await
        .unwrap();
    assert_eq!(all.len(), 3);
    let first = store
        .organization_events(org, Some(instance.id), None, 0, 2)
        .await
        .unwrap();
    let last = first.last().expect("a page");
    let rest = store
        .organization_events(
            org,
            Some(instance.id),
            Some((last.created_at.as_millisecond(), last.id.0.clone())),
            0,
            2,
        )
        .await
        .unwrap();
    let paged: Vec<String> = first.iter().chain(&rest).map(|e| e.id.0.clone()).collect();
    let listed: Vec<String> = all.iter().map(|e| e.id.0.clone()).collect();
    assert_eq!(
        paged, listed,
        "pages follow each other without gaps or repeats"
    );
    let offset = store
        .organization_events(org, None, None, 2, 10)
        .await
        .unwrap();
    assert_eq!(offset.len(), 1);

    let id = &all[0].id.0;
    assert!(
        store
            .organization_event(org, None, id)
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        store
            .organization_event(org, Some(instance.id), id)
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        store
            .organization_event(org, Some(InstanceId(instance.id.0 + 1)), id)
            .await
            .unwrap()
            .is_none()
    );
    // Another organization sees none of them.
    assert!(
        store
            .organization_events(other_org, None, None, 0, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .organization_event(other_org, None, id)
            .await
            .unwrap()
            .is_none()
    );
}

pub async fn check_users_sign_in_and_sealed_secrets(store: &Store) {
    let (org, first) = store
        .create_organization_with_user("acme", secret(1), user(2, Some("Ada@Example.com")), t0())
        .await
        .unwrap();
    let found = store
        .sign_in_user("ada@EXAMPLE.com")
        .await
        .unwrap()
        .expect("emails compare lower-cased");
    assert_eq!(found.principal.user_id, first);
    assert_eq!(found.principal.organization_id, org);
    assert!(
        store
            .sign_in_user("nobody@example.com")
            .await
            .unwrap()
            .is_none()
    );

    // An email in use is refused, and nothing is stored.
    let err = store
        .create_user(org, user(3, Some("ADA@example.com")), t0())
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    assert_eq!(store.users(org).await.unwrap().len(), 1);
    let err = store
        .create_user(hubhook_store::OrganizationId(999), user(4, None), t0())
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound), "{err:?}");
    let second = store.create_user(org, user(5, None), t0()).await.unwrap();
    let users = store.users(org).await.unwrap();
    assert_eq!(users.len(), 2);
    assert_eq!(users[0].email.as_deref(), Some("ada@example.com"));
    assert_eq!(users[1].email, None);
    assert_eq!(users[1].id, second);

    // Sealed copies come back; a rotation ends the old secret at once.
    let principal = found.principal;
    let secrets = store.secrets(principal).await.unwrap().expect("copies");
    assert_eq!(
        (secrets.user.as_str(), secrets.organization.as_str()),
        ("secret-2", "secret-1")
    );
    assert!(
        store
            .authenticate([1; 32], [2; 32])
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        store
            .rotate_organization_secret(org, secret(9))
            .await
            .unwrap()
    );
    assert!(
        store
            .authenticate([1; 32], [2; 32])
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        store
            .authenticate([9; 32], [2; 32])
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(
        store
            .secrets(principal)
            .await
            .unwrap()
            .expect("copies")
            .organization,
        "secret-9"
    );
    let (other_org, _) = organization(store, 7).await;
    assert!(
        !store
            .rotate_user_secret(other_org, first, secret(10))
            .await
            .unwrap()
    );
    assert!(
        store
            .rotate_user_secret(org, first, secret(11))
            .await
            .unwrap()
    );
    assert!(
        store
            .authenticate([9; 32], [11; 32])
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        store
            .authenticate([9; 32], [2; 32])
            .await
            .unwrap()
            .is_none()
    );

    // Sessions end when they expire.
    store
        .create_session([42; 32], first, t0() + 1.hour())
        .await
        .unwrap();
    assert_eq!(
        store.session([42; 32], t0()).await.unwrap(),
        Some(principal)
    );
    assert_eq!(
        store.session([42; 32], t0() + 2.hours()).await.unwrap(),
        None
    );
    assert_eq!(store.session([43; 32], t0()).await.unwrap(), None);

    // Organizations made before copies were kept have none to give.
    let (old_org, old_user) = organization(store, 20).await;
    let old = hubhook_store::Principal {
        organization_id: old_org,
        user_id: old_user,
    };
    assert!(store.secrets(old).await.unwrap().is_none());
}

/// Removing a resource whose known objects take several parts to forget (SQLite forgets them
/// 1,000 per write, so that other writes wait for one part at most): every one of them is
/// forgotten by the time the update returns, the kept resource keeps all of its own, and the
/// resource configured again starts from an empty baseline, which counts from when it was
/// added back. Fails if the forget stops after its first part.
pub async fn check_removing_a_resource_of_several_parts_forgets_it_whole(store: &Store) {
    let instance = instance_with(store, &["contacts", "companies"]).await;
    let org = instance.organization_id;
    claim_jobs(store, "p", t0(), LEASE, 10).await.unwrap();
    let many = crate::conformance::SEVERAL_PARTS;
    store
        .commit_poll(commit_with_events(instance.id, "companies", "p", 0, many))
        .await
        .unwrap();
    store
        .commit_poll(commit_with_events(instance.id, "contacts", "p", many, 3))
        .await
        .unwrap();
    let known = async |resource: &str, ids: std::ops::Range<usize>| {
        let ids: Vec<String> = ids.map(|n| n.to_string()).collect();
        store
            .known_objects(instance.id, resource, &ids)
            .await
            .unwrap()
            .len()
    };
    assert_eq!(known("companies", 0..many).await, many);

    let removed = update(&["contacts"]);
    store
        .update_instance(org, instance.id, removed)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(known("companies", 0..many).await, 0);
    assert_eq!(known("contacts", many..many + 3).await, 3);

    let again = update(&["contacts", "companies"]);
    store
        .update_instance(org, instance.id, again)
        .await
        .unwrap()
        .unwrap();
    let jobs = store.poll_jobs(instance.id).await.unwrap();
    let companies = jobs.iter().find(|j| j.resource == "companies").unwrap();
    assert_eq!(
        companies.cursor, None,
        "a new resource starts with a baseline"
    );
    // Its baseline counts from when it was added again, the kept one's from the creation.
    assert_eq!(companies.added_at, t0() + 10.seconds());
    let contacts = jobs.iter().find(|j| j.resource == "contacts").unwrap();
    assert_eq!(contacts.added_at, instance.created_at);
    assert_eq!(known("companies", 0..many).await, 0);
    assert_eq!(known("contacts", many..many + 3).await, 3);
}
