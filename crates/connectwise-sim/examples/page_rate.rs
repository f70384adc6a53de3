//! Benchmark (not a test): pages of 1000 records served per second with a
//! `lastUpdated` condition, over real HTTP on loopback, with 1,000,000
//! records in memory across the simulated resources.
//!
//! `cargo run --release -p connectwise-sim --example page_rate -- [--total 1000000] [--seconds 10] [--clients 1,4]`
//! Results go to stdout; docs/benchmarks.md records them.

use std::time::{Duration, Instant};

use connectwise_sim::{SimConfig, Simulator};

const RESOURCE: &str = "company/contacts";

struct Run {
    pages: u64,
    bytes: u64,
    elapsed: Duration,
}

/// One client walking `conditions=lastUpdated>[since]` page by page (navigable
/// or forward-only), restarting at the end, until the deadline.
async fn walk(
    client: reqwest::Client,
    base: String,
    since: String,
    forward_only: bool,
    deadline: Instant,
) -> Run {
    let auth = format!("Basic {}", base64_encode(b"demo+demo-public:demo-private"));
    let start = Instant::now();
    let (mut pages, mut bytes) = (0u64, 0u64);
    let conditions = percent_encoding::utf8_percent_encode(
        &format!("lastUpdated > [{since}]"),
        percent_encoding::NON_ALPHANUMERIC,
    )
    .to_string();
    let first = format!("{base}/{RESOURCE}?conditions={conditions}&pageSize=1000");
    'outer: while Instant::now() < deadline {
        // Follow the server's Link header (rel="next") until it runs out,
        // as a ConnectWise client does; the body is counted, not parsed, so
        // the client's own JSON work does not eat the CPU being measured.
        let mut url = first.clone();
        loop {
            if Instant::now() >= deadline {
                break 'outer;
            }
            let mut req = client.get(&url).header("authorization", &auth);
            if forward_only {
                req = req.header("pagination-type", "forward-only");
            }
            let Ok(resp) = req.send().await else {
                break 'outer;
            };
            let next = resp
                .headers()
                .get("link")
                .and_then(|v| v.to_str().ok())
                .and_then(|l| {
                    l.split(", ")
                        .find(|p| p.ends_with("rel=\"next\""))
                        .map(String::from)
                })
                .and_then(|l| l.split(['<', '>']).nth(1).map(String::from));
            let Ok(body) = resp.bytes().await else {
                break 'outer;
            };
            pages += 1;
            bytes += body.len() as u64;
            match next {
                Some(n) => url = n,
                None => break,
            }
        }
    }
    Run {
        pages,
        bytes,
        elapsed: start.elapsed(),
    }
}

fn base64_encode(input: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(input)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut total = 1_000_000usize;
    let mut seconds = 10u64;
    let mut clients: Vec<usize> = vec![1, 4];
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().ok_or("missing value")?;
        match flag.as_str() {
            "--total" => total = value.parse()?,
            "--seconds" => seconds = value.parse()?,
            "--clients" => clients = value.split(',').map(str::parse).collect::<Result<_, _>>()?,
            other => return Err(format!("unknown flag {other}").into()),
        }
    }
    // Nine seeded resources share the total evenly.
    let per_resource = total.div_ceil(9);
    let t = Instant::now();
    let handle = Simulator::spawn(
        SimConfig {
            records: per_resource,
            ..SimConfig::default()
        },
        "127.0.0.1:0".parse()?,
    )
    .await?;
    let sim = handle.sim.clone();
    let seeded: usize = [
        "system/members",
        "company/companies",
        "company/contacts",
        "sales/opportunities",
        "project/projects",
        "service/tickets",
        "sales/activities",
        "time/entries",
    ]
    .iter()
    .map(|r| sim.ids(r).len())
    .sum::<usize>()
        + per_resource;
    println!(
        "seeded {seeded} records ({per_resource} per resource) in {:.1} s",
        t.elapsed().as_secs_f64()
    );

    // A cursor that matches about half of the contacts: the median lastUpdated.
    let mut stamps: Vec<String> = sim
        .ids(RESOURCE)
        .iter()
        .step_by(97)
        .filter_map(|id| sim.get(RESOURCE, *id))
        .filter_map(|r| r["_info"]["lastUpdated"].as_str().map(String::from))
        .collect();
    stamps.sort();
    let since = stamps.get(stamps.len() / 2).cloned().unwrap_or_default();
    println!("condition: lastUpdated > [{since}] on {RESOURCE}");
    println!("| paging | clients | pages of 1000/s | MB/s |");
    println!("|---|---|---|---|");
    for forward_only in [false, true] {
        for &n in &clients {
            let client = reqwest::Client::builder()
                .pool_max_idle_per_host(n)
                .build()?;
            let deadline = Instant::now() + Duration::from_secs(seconds);
            let tasks: Vec<_> = (0..n)
                .map(|_| {
                    tokio::spawn(walk(
                        client.clone(),
                        handle.base_url(),
                        since.clone(),
                        forward_only,
                        deadline,
                    ))
                })
                .collect();
            let (mut pages, mut bytes, mut secs) = (0u64, 0u64, 0f64);
            for task in tasks {
                let run = task.await?;
                pages += run.pages;
                bytes += run.bytes;
                secs = secs.max(run.elapsed.as_secs_f64());
            }
            println!(
                "| {} | {n} | {:.1} | {:.1} |",
                if forward_only {
                    "forward-only"
                } else {
                    "navigable"
                },
                pages as f64 / secs,
                bytes as f64 / secs / 1e6
            );
        }
    }
    Ok(())
}
