//! Engine-independent checks of what the console reads: delivery health per instance, event
//! analytics per time bucket (both confined to one organization), and ending a session.
//! Run on every engine through the `every_check!` list (see `main.rs`).

use hubhook_store::{AnalyticsBucket, AttemptOutcome, AttemptRecord, DeliveryHealth, Store};
use jiff::ToSpan as _;

use crate::conformance::{
    LEASE, claim_jobs, claim_notifications, commit_with_events, instance_with, organization, t0,
};

pub async fn check_delivery_health_and_analytics(store: &Store) {
    let instance = instance_with(store, &["contacts"]).await;
    let org = instance.organization_id;
    let (other_org, _) = organization(store, 2).await;
    claim_jobs(store, "p", t0(), LEASE, 10).await.unwrap();
    // Three events in one notification, stored at t0 + 1 s.
    store
        .commit_poll(commit_with_events(instance.id, "contacts", "p", 0, 3))
        .await
        .unwrap();
    let now = t0() + 10.seconds();
    assert_eq!(
        store.delivery_health(org, None, now).await.unwrap(),
        vec![DeliveryHealth {
            instance_id: instance.id,
            due: 1,
            failing: 0,
            queued: 0
        }]
    );
    // One instance's own: the same row, and nothing for another id.
    assert_eq!(
        store
            .delivery_health(org, Some(instance.id), now)
            .await
            .unwrap(),
        store.delivery_health(org, None, now).await.unwrap()
    );
    let elsewhere = hubhook_core::InstanceId(instance.id.0 + 1_000);
    assert!(
        store
            .delivery_health(org, Some(elsewhere), now)
            .await
            .unwrap()
            .is_empty()
    );
    // Not due before it is due.
    assert_eq!(
        store.delivery_health(org, None, t0()).await.unwrap()[0].due,
        0,
        "due only from its next attempt"
    );
    assert!(
        store
            .delivery_health(other_org, None, now)
            .await
            .unwrap()
            .is_empty()
    );

    // A failed attempt at t0 + 70 s makes it failing; the retry is later.
    let claimed = claim_notifications(store, "d", now, LEASE, 1)
        .await
        .unwrap();
    let failed_at = t0() + 70.seconds();
    store
        .finish_attempt(AttemptRecord {
            attempt_id: None,
            notification_id: claimed[0].id.clone(),
            owner: "d".into(),
            lease_token: claimed[0].lease_token.clone(),
            attempted_at: failed_at,
            status_code: Some(500),
            latency_ms: 3,
            error: Some("HTTP 500".into()),
            response_excerpt: None,
            outcome: AttemptOutcome::RetryAt(t0() + 10.minutes()),
        })
        .await
        .unwrap();
    let health = store.delivery_health(org, None, failed_at).await.unwrap();
    assert_eq!(
        (health[0].due, health[0].failing, health[0].queued),
        (0, 1, 0)
    );

    // By minute from t0: the events in minute 0, the failed attempt in minute 1.
    let buckets = store
        .event_analytics(org, t0(), t0() + 1.hour(), 60_000)
        .await
        .unwrap();
    assert_eq!(
        buckets,
        vec![
            AnalyticsBucket {
                instance_id: instance.id,
                start: t0(),
                events: 3,
                delivered: 0,
                failed: 0
            },
            AnalyticsBucket {
                instance_id: instance.id,
                start: t0() + 1.minute(),
                events: 0,
                delivered: 0,
                failed: 1
            },
        ]
    );
    // The window is half-open and confined to the organization.
    assert!(
        store
            .event_analytics(org, t0() + 2.minutes(), t0() + 1.hour(), 60_000)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .event_analytics(other_org, t0(), t0() + 1.hour(), 60_000)
            .await
            .unwrap()
            .is_empty()
    );
}

pub async fn check_ending_a_session(store: &Store) {
    let (_, user) = organization(store, 1).await;
    store
        .create_session([7; 32], user, t0() + 1.hour())
        .await
        .unwrap();
    assert!(store.session([7; 32], t0()).await.unwrap().is_some());
    store.end_session([7; 32]).await.unwrap();
    assert_eq!(store.session([7; 32], t0()).await.unwrap(), None);
    // Ending it again (a second sign-out) is not an error.
    store.end_session([7; 32]).await.unwrap();
}
