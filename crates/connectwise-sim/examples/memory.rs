//! Benchmark (not a test): how long seeding takes and how much memory the seeded
//! simulator holds.
//!
//! `cargo run --release -p connectwise-sim --example memory -- --records 100 --contacts 1000000`
//!
//! Prints the seed time, `VmRSS` (now) and `VmHWM` (peak) of the process after seeding, and
//! the same before, so the difference is the simulator's; docs/benchmarks.md records them.

use std::time::Instant;

use connectwise_sim::{SimConfig, Simulator};

const RESOURCES: &[&str] = &[
    "system/members",
    "company/companies",
    "company/contacts",
    "sales/opportunities",
    "project/projects",
    "service/tickets",
    "sales/activities",
    "time/entries",
    "service/boards",
    "system/userDefinedFields",
    "system/callbacks",
];

/// `VmRSS` and `VmHWM` of this process in MB (Linux; zero elsewhere).
fn memory_mb() -> (f64, f64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<f64>().ok())
            .map_or(0.0, |kb| kb / 1024.0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut config = SimConfig::default();
    let mut digest = false;
    let mut show: Option<String> = None;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().ok_or("missing value")?;
        match flag.as_str() {
            "--records" => config.records = value.parse()?,
            "--contacts" => config.contacts = Some(value.parse()?),
            "--seed" => config.seed = value.parse()?,
            "--digest" => digest = value == "yes",
            "--show" => show = Some(value),
            other => return Err(format!("unknown flag {other}").into()),
        }
    }
    let (rss_before, _) = memory_mb();
    let t = Instant::now();
    let sim = Simulator::new(config.clone());
    let secs = t.elapsed().as_secs_f64();
    let (rss, hwm) = memory_mb();
    let total: usize = RESOURCES.iter().map(|r| sim.ids(r).len()).sum();
    let contacts = sim.ids("company/contacts").len();
    println!(
        "records {} per resource, contacts {contacts}, {total} records outside ticket notes: \
         seeded in {secs:.1} s; VmRSS {rss:.0} MB (before seeding {rss_before:.0} MB), \
         peak VmHWM {hwm:.0} MB",
        config.records
    );
    if let Some(resource) = show {
        // One record as GET shows it (hrefs on 127.0.0.1), to see what a record costs.
        let id = sim.ids(&resource).first().copied().ok_or("no records")?;
        let rec = sim.get(&resource, id).ok_or("a listed record is missing")?;
        println!("{rec}");
    }
    if digest {
        // Every record as GET shows it: the same seed must give the same data whatever the
        // storage, so this digest is compared across storage changes.
        use sha2::Digest;
        let mut hash = sha2::Sha256::new();
        let mut resources: Vec<String> = RESOURCES.iter().map(|r| r.to_string()).collect();
        for ticket in sim.ids("service/tickets") {
            resources.push(format!("service/tickets/{ticket}/notes"));
        }
        for r in &resources {
            for id in sim.ids(r) {
                let rec = sim.get(r, id).ok_or("a listed record is missing")?;
                hash.update(serde_json::to_vec(&rec)?);
            }
        }
        let hex: String = hash.finalize().iter().map(|b| format!("{b:02x}")).collect();
        println!("digest of every record: {hex}");
    }
    Ok(())
}
