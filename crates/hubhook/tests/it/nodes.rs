//! Several nodes on one PostgreSQL database, as real processes: three `hubhook serve` share
//! the polls and deliveries of several instances while one of them, chosen at random, is
//! killed with SIGKILL at a random moment of each round and started again. Every change must
//! be delivered, each under one event id only; no poll cursor may move backwards; nothing may
//! be left unclaimed. Each test gets a database of its own, dropped at the end.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::Value;

use crate::app::{Receiver, documented_body, test_simulator};
use crate::postgres::{Database, random};
use crate::processes::{MASTER_KEY, ServerProcess, WAIT, org_create};

const NODES: usize = 3;
const INSTANCES: usize = 10;
/// Contacts in the simulator, every one changed in every round.
const CONTACTS: usize = 200;
/// Rounds, one kill each: INSTANCES x CONTACTS x ROUNDS = 20,000 events and 10 kills, the
/// issue's size. About 50 s on the two-core CI machine under a load of 5-6; a round costs its
/// polls and deliveries, the kill and restart and the pause for a new ConnectWise second. (20
/// rounds of 5 instances once took 164 s because every look at the receiver parsed all the
/// callbacks so far again; `Changes` reads each one once.)
const ROUNDS: usize = 10;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_share_the_work_and_a_killed_node_loses_nothing() {
    let database = Database::create().await;
    let url = database.url();
    let sim = test_simulator().await;
    let company = sim.sim.ids("company/companies")[0];
    for n in sim.sim.ids("company/contacts").len()..CONTACTS {
        sim.sim
            .create(
                "company/contacts",
                serde_json::json!({ "firstName": format!("n{n}"), "lastName": "Nodes", "company": { "id": company } }),
            )
            .expect("contact created");
    }
    let receiver = Receiver::start().await;
    let org = org_create(&url, Some(MASTER_KEY));
    let auth = format!(
        "User {}, Organization {}",
        org["userSecret"].as_str().expect("secret"),
        org["organizationSecret"].as_str().expect("secret")
    );
    let mut nodes: Vec<ServerProcess> = (0..NODES)
        .map(|n| {
            let id = format!("node-{n}");
            ServerProcess::start(
                &url,
                MASTER_KEY,
                &[("HUBHOOK_NODE_ID", &id), ("HUBHOOK_POLL_LEASE", "3")],
                None,
            )
        })
        .collect();
    let http = reqwest::Client::new();
    let mut instances = BTreeSet::new();
    for n in 0..INSTANCES {
        // Each instance is created through a different node: all nodes write.
        let created: Value = http
            .post(nodes[n % NODES].api("/instances"))
            .header("Authorization", &auth)
            .json(&documented_body(&sim.base_url(), &receiver.url))
            .send()
            .await
            .expect("sent")
            .json()
            .await
            .expect("JSON");
        instances.insert(created["id"].as_i64().expect("an id").to_string());
    }
    wait_for_baselines(&url, &instances).await;
    let cursors = watch_cursors(&url, &instances).await;

    let contacts = sim.sim.ids("company/contacts");
    let mut changes = Changes::default();
    for round in 1..=ROUNDS {
        sim.sim
            .mass_update("company/contacts", contacts.len())
            .expect("touched");
        // Kill a node at a random moment of the round's polls and deliveries.
        tokio::time::sleep(Duration::from_millis(random() % 2500)).await;
        let victim = (random() % NODES as u64) as usize;
        nodes[victim].kill9();
        nodes[victim].restart();
        wait_for_changes(&receiver, &mut changes, &instances, &contacts, round).await;
        // The next round's changes must carry a later ConnectWise timestamp (seconds).
        tokio::time::sleep(Duration::from_millis(1100)).await;
    }

    let broken = cursors.stop().await;
    assert!(broken.is_empty(), "cursors moved backwards: {broken:?}");
    nothing_left_unclaimed(&url, &instances).await;
    for node in &mut nodes {
        node.kill9();
    }
}

/// A node stalled past its lease (SIGSTOP, as a network partition would) while its polls were
/// in flight: another node takes them over, and when the stalled node resumes (SIGCONT) its
/// late results are refused. Every change arrives, each under one event id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_stalled_past_its_lease_cannot_write_late() {
    let database = Database::create().await;
    let url = database.url();
    let sim = test_simulator().await;
    let receiver = Receiver::start().await;
    let org = org_create(&url, Some(MASTER_KEY));
    let auth = format!(
        "User {}, Organization {}",
        org["userSecret"].as_str().expect("secret"),
        org["organizationSecret"].as_str().expect("secret")
    );
    let nodes: Vec<ServerProcess> = (0..2)
        .map(|n| {
            let id = format!("node-{n}");
            ServerProcess::start(
                &url,
                MASTER_KEY,
                &[("HUBHOOK_NODE_ID", &id), ("HUBHOOK_POLL_LEASE", "3")],
                None,
            )
        })
        .collect();
    let http = reqwest::Client::new();
    let mut instances = BTreeSet::new();
    for n in 0..4 {
        let created: Value = http
            .post(nodes[n % 2].api("/instances"))
            .header("Authorization", &auth)
            .json(&documented_body(&sim.base_url(), &receiver.url))
            .send()
            .await
            .expect("sent")
            .json()
            .await
            .expect("JSON");
        instances.insert(created["id"].as_i64().expect("an id").to_string());
    }
    let contacts = sim.sim.ids("company/contacts");
    wait_for_baselines(&url, &instances).await;

    // Every contacts query now takes two seconds: polls are in flight when the node stalls.
    sim.sim.inject_faults(connectwise_sim::Fault {
        latency_ms: Some(2000),
        path_contains: Some("company/contacts".into()),
        ..connectwise_sim::Fault::default()
    });
    sim.sim
        .mass_update("company/contacts", contacts.len())
        .expect("touched");
    tokio::time::sleep(Duration::from_millis(3500)).await;
    nodes[0].signal("STOP");
    // Well past the 3 s lease: the other node takes the stalled node's polls over.
    tokio::time::sleep(Duration::from_secs(8)).await;
    nodes[0].signal("CONT");
    sim.sim.clear_faults();
    let mut changes = Changes::default();
    wait_for_changes(&receiver, &mut changes, &instances, &contacts, 1).await;
    // And the resumed node works on: one more round arrives, still one id per change.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    sim.sim
        .mass_update("company/contacts", contacts.len())
        .expect("touched");
    wait_for_changes(&receiver, &mut changes, &instances, &contacts, 2).await;
    nothing_left_unclaimed(&url, &instances).await;
}

/// Every UPDATED change delivered so far, by (instance, object, change date), with the event
/// ids it came under. Read incrementally, each callback once: reading every delivered body
/// again at each look made a round's wait grow with all the rounds before it (20,000 events
/// of 10-event bodies, parsed once per event, several times a second).
#[derive(Default)]
struct Changes {
    /// Requests of the receiver already read.
    read: usize,
    ids: BTreeMap<(String, String, String), BTreeSet<String>>,
}

impl Changes {
    fn read_new(&mut self, receiver: &Receiver) {
        let new = receiver.received_since(self.read);
        self.read += new.len();
        for received in new {
            if !received
                .answered
                .is_some_and(|status| (200..300).contains(&status))
            {
                continue;
            }
            let body = received.json();
            let instance = body["message"]["instanceId"].to_string();
            for event in body["message"]["events"].as_array().into_iter().flatten() {
                if event["eventType"] != "UPDATED" {
                    continue;
                }
                let key = (
                    instance.clone(),
                    event["objectId"].as_str().unwrap_or("").to_owned(),
                    event["eventDate"].to_string(),
                );
                self.ids
                    .entry(key)
                    .or_default()
                    .insert(event["id"].as_str().unwrap_or("").to_owned());
            }
        }
    }
}

/// Waits until every contact of every instance was announced in `rounds` distinct changes,
/// and checks that no change was ever announced under two event ids.
async fn wait_for_changes(
    receiver: &Receiver,
    changes: &mut Changes,
    instances: &BTreeSet<String>,
    contacts: &[i64],
    rounds: usize,
) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        changes.read_new(receiver);
        let twice: Vec<_> = changes
            .ids
            .iter()
            .filter(|(_, ids)| ids.len() > 1)
            .collect();
        assert!(twice.is_empty(), "changes under two event ids: {twice:?}");
        let mut counts: BTreeMap<(&str, &str), usize> = BTreeMap::new();
        for (instance, object, _) in changes.ids.keys() {
            *counts.entry((instance, object)).or_default() += 1;
        }
        let missing: Vec<_> = instances
            .iter()
            .flat_map(|i| contacts.iter().map(move |c| (i.clone(), c.to_string())))
            .filter(|(i, c)| counts.get(&(i.as_str(), c.as_str())).copied().unwrap_or(0) < rounds)
            .collect();
        if missing.is_empty() {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "round {rounds}: changes never delivered for {missing:?}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// Waits until every instance's first poll (its baseline, which announces nothing) is done,
/// plus a second, so that the changes that follow are changes to announce, on a later
/// ConnectWise second than anything the baseline saw.
async fn wait_for_baselines(url: &str, instances: &BTreeSet<String>) {
    let store = open(url).await;
    let deadline = tokio::time::Instant::now() + WAIT;
    for id in instances {
        let id = hubhook_core::InstanceId(id.parse().expect("numeric id"));
        loop {
            let jobs = store.poll_jobs(id).await.expect("read");
            if !jobs.is_empty() && jobs.iter().all(|job| job.cursor.is_some()) {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no baseline for {id:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    store.close().await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
}

/// Samples every poll job's cursor until stopped; what it returns is every backwards move.
struct CursorWatch {
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<Vec<String>>,
}

impl CursorWatch {
    async fn stop(self) -> Vec<String> {
        self.stop.store(true, Ordering::Relaxed);
        self.task.await.expect("the watch ran")
    }
}

async fn watch_cursors(url: &str, instances: &BTreeSet<String>) -> CursorWatch {
    let store = open(url).await;
    let instances: Vec<i64> = instances.iter().map(|i| i.parse().expect("id")).collect();
    let stop = Arc::new(AtomicBool::new(false));
    let stopping = stop.clone();
    let task = tokio::spawn(async move {
        let mut last = BTreeMap::new();
        let mut broken = Vec::new();
        while !stopping.load(Ordering::Relaxed) {
            for &id in &instances {
                let Ok(jobs) = store.poll_jobs(hubhook_core::InstanceId(id)).await else {
                    continue;
                };
                for job in jobs {
                    let key = (id, job.resource.clone());
                    if let Some(before) = last.get(&key)
                        && job.cursor < Some(*before)
                    {
                        broken.push(format!("{key:?}: {before} -> {:?}", job.cursor));
                    }
                    if let Some(cursor) = job.cursor {
                        last.insert(key, cursor);
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        store.close().await;
        broken
    });
    CursorWatch { stop, task }
}

async fn open(url: &str) -> hubhook_store::Store {
    hubhook_store::Store::open(
        url,
        hubhook_store::MasterKey::parse(MASTER_KEY).expect("key"),
    )
    .await
    .expect("the nodes' database opens beside them")
}

/// Every notification was delivered: none is pending, leased or queued.
async fn nothing_left_unclaimed(url: &str, instances: &BTreeSet<String>) {
    let store = open(url).await;
    for id in instances {
        let id = hubhook_core::InstanceId(id.parse().expect("numeric id"));
        let notifications = store.list_notifications(id, 100_000).await.expect("read");
        let undelivered: Vec<_> = notifications
            .iter()
            .filter(|n| n.status != "delivered")
            .map(|n| (&n.id, &n.status))
            .collect();
        assert!(undelivered.is_empty(), "not delivered: {undelivered:?}");
    }
    store.close().await;
}
