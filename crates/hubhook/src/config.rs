//! Server configuration: defaults, then `HUBHOOK_*` environment variables, then flags.

use std::{path::PathBuf, time::Duration};

use anyhow::{Context as _, bail};
use figment::{
    Figment,
    providers::{Env, Serialized},
};
use hubhook_core::RetrySchedule;
use hubhook_store::MasterKey;
use serde::{Deserialize, Serialize};

/// Everything `hubhook serve` needs. Field names are the environment names without the
/// `HUBHOOK_` prefix, lowercased (`HUBHOOK_DATABASE_URL` → `database_url`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ServeConfig {
    /// Address of the HTTP API and console.
    pub listen: String,
    /// `sqlite://PATH` or `postgres://...`.
    pub database_url: String,
    /// Key that encrypts stored provider secrets: 64 hex digits or base64 of 32 bytes.
    pub master_key: Option<SecretText>,
    /// A file holding the master key (what `master_key` would hold).
    pub master_key_file: Option<PathBuf>,
    /// Seconds; the floor under every instance's refresh interval.
    pub min_refresh_interval: u64,
    /// Allow callback URLs that resolve to loopback or private addresses.
    pub allow_private_callbacks: bool,
    /// Delays between delivery attempts, e.g. "4s,16s,64s"; default: Cloud Elements' 4^x s, 9 retries.
    pub retry_schedule: Option<String>,
    /// This node's name in the database's lease columns; see [`ServeConfig::node_id`].
    pub node_id: Option<String>,
    /// Client connections held at once; keep it well below the open-files limit
    /// (`ulimit -n`), so that the database and outbound calls always have descriptors.
    pub max_connections: usize,
    /// Seconds a claimed poll job stays leased without renewal (renewed every third of it while
    /// the poll runs): how long a dead node's poll waits before another node takes it over.
    pub poll_lease: u64,
    /// Seconds a claimed notification stays leased; must exceed the delivery timeout.
    pub delivery_lease: u64,
    /// Seconds one ConnectWise request may take (a poll's page, a hub call).
    pub connectwise_timeout: u64,
    /// Polls running at once on this node, whatever their site.
    pub poll_concurrency: u32,
    /// Polls running at once against one ConnectWise site (base URL and company).
    pub site_poll_concurrency: usize,
    /// Requests per minute to one ConnectWise site from this node; 0: no budget (a `429`
    /// still pauses the site for its `Retry-After`).
    pub site_requests_per_minute: u32,
    /// Seconds one callback POST may take.
    pub delivery_timeout: u64,
    /// Seconds a rotated Standard Webhooks secret keeps signing beside the new one.
    pub webhook_secret_overlap: u64,
    /// Days delivered notifications and their attempts are kept.
    pub delivery_retention_days: u64,
    /// Days event metadata is kept.
    pub event_retention_days: u64,
    /// Deliveries in flight to one receiver (callback origin) from this node.
    pub receiver_concurrency: u32,
    /// Deliveries per second to one receiver from this node; 0 = unlimited.
    pub receiver_rate: f64,
}

impl Default for ServeConfig {
    fn default() -> Self {
        ServeConfig {
            listen: "127.0.0.1:8080".into(),
            database_url: "sqlite://hubhook.db".into(),
            master_key: None,
            master_key_file: None,
            min_refresh_interval: 60,
            allow_private_callbacks: false,
            retry_schedule: None,
            node_id: None,
            max_connections: 4096,
            poll_lease: 60,
            delivery_lease: 60,
            connectwise_timeout: 120,
            poll_concurrency: 16,
            site_poll_concurrency: 2,
            site_requests_per_minute: 1000,
            delivery_timeout: 15,
            webhook_secret_overlap: 86_400,
            delivery_retention_days: 30,
            event_retention_days: 90,
            receiver_concurrency: 4,
            receiver_rate: 0.0,
        }
    }
}

impl ServeConfig {
    /// Merge defaults, environment and the flags that were given (`overrides` serializes only
    /// those that are `Some`).
    pub fn load(overrides: impl Serialize) -> anyhow::Result<ServeConfig> {
        Figment::from(Serialized::defaults(ServeConfig::default()))
            .merge(Env::prefixed("HUBHOOK_"))
            .merge(Serialized::defaults(overrides))
            .extract()
            .context("invalid configuration")
    }

    pub fn retry_schedule(&self) -> anyhow::Result<RetrySchedule> {
        match &self.retry_schedule {
            None => Ok(RetrySchedule::cloud_elements()),
            Some(text) => RetrySchedule::parse(text).map_err(|e| {
                anyhow::anyhow!("retry_schedule `{text}`: {e}, expected delays like \"4s,16s,64s\"")
            }),
        }
    }

    /// The callback timeout: 1 s to 10 min, and shorter than the delivery lease (see
    /// [`ServeConfig::leases`]).
    pub fn delivery_timeout(&self) -> anyhow::Result<Duration> {
        if !(1..=600).contains(&self.delivery_timeout) {
            bail!(
                "delivery_timeout `{}`: expected 1 to 600 seconds",
                self.delivery_timeout
            );
        }
        Ok(Duration::from_secs(self.delivery_timeout))
    }

    /// Receiver isolation: concurrency 1 to 1000, rate 0 (unlimited) to 100000 per second.
    pub fn receiver_limits(&self) -> anyhow::Result<hubhook_engine::ReceiverLimits> {
        if !(1..=1000).contains(&self.receiver_concurrency) {
            bail!(
                "receiver_concurrency `{}`: expected 1 to 1000",
                self.receiver_concurrency
            );
        }
        if !(0.0..=100_000.0).contains(&self.receiver_rate) {
            bail!(
                "receiver_rate `{}`: expected 0 (unlimited) to 100000 per second",
                self.receiver_rate
            );
        }
        Ok(hubhook_engine::ReceiverLimits {
            concurrency: self.receiver_concurrency,
            rate_per_second: self.receiver_rate,
            ..hubhook_engine::ReceiverLimits::default()
        })
    }

    /// The retention periods (deliveries, events): 1 to 3650 days each.
    pub fn retention(&self) -> anyhow::Result<(Duration, Duration)> {
        for (name, days) in [
            ("delivery_retention_days", self.delivery_retention_days),
            ("event_retention_days", self.event_retention_days),
        ] {
            if !(1..=3650).contains(&days) {
                bail!("{name} `{days}`: expected 1 to 3650 days");
            }
        }
        let days = |n: u64| Duration::from_secs(n * 86_400);
        Ok((
            days(self.delivery_retention_days),
            days(self.event_retention_days),
        ))
    }

    /// How long a rotated webhook secret keeps signing: at most 30 days.
    pub fn webhook_secret_overlap(&self) -> anyhow::Result<Duration> {
        if self.webhook_secret_overlap > 30 * 86_400 {
            bail!(
                "webhook_secret_overlap `{}`: expected 0 to 2592000 seconds (30 days)",
                self.webhook_secret_overlap
            );
        }
        Ok(Duration::from_secs(self.webhook_secret_overlap))
    }

    /// The lease lengths, checked: a lease must be long enough to be renewed in time, and a
    /// delivery lease must outlast the delivery timeout, else a slow delivery would be taken
    /// over while still running.
    pub fn leases(&self) -> anyhow::Result<(Duration, Duration)> {
        if !(3..=86_400).contains(&self.poll_lease) {
            bail!(
                "poll_lease `{}`: expected 3 to 86400 seconds",
                self.poll_lease
            );
        }
        if !(self.delivery_timeout + 1..=86_400).contains(&self.delivery_lease) {
            bail!(
                "delivery_lease `{}`: expected {} to 86400 seconds (more than the {} s delivery timeout)",
                self.delivery_lease,
                self.delivery_timeout + 1,
                self.delivery_timeout
            );
        }
        Ok((
            Duration::from_secs(self.poll_lease),
            Duration::from_secs(self.delivery_lease),
        ))
    }

    pub fn min_refresh_interval(&self) -> Duration {
        Duration::from_secs(self.min_refresh_interval)
    }

    /// The ConnectWise request timeout; at least one second, so that no setting makes every
    /// request fail at once.
    pub fn connectwise_timeout(&self) -> anyhow::Result<Duration> {
        match self.connectwise_timeout {
            0 => bail!("connectwise_timeout: 0 seconds, expected at least 1"),
            seconds => Ok(Duration::from_secs(seconds)),
        }
    }

    /// Polls running at once on this node.
    pub fn poll_concurrency(&self) -> anyhow::Result<u32> {
        if !(1..=1000).contains(&self.poll_concurrency) {
            bail!(
                "poll_concurrency `{}`: expected 1 to 1000 polls",
                self.poll_concurrency
            );
        }
        Ok(self.poll_concurrency)
    }

    /// The limits per ConnectWise site.
    pub fn site_limits(&self) -> anyhow::Result<hubhook_engine::SiteLimits> {
        if !(1..=1000).contains(&self.site_poll_concurrency) {
            bail!(
                "site_poll_concurrency `{}`: expected 1 to 1000 polls",
                self.site_poll_concurrency
            );
        }
        Ok(hubhook_engine::SiteLimits {
            polls: self.site_poll_concurrency,
            requests_per_minute: std::num::NonZeroU32::new(self.site_requests_per_minute),
        })
    }

    /// The node id: as configured, or the host name and the listen address, which is unique
    /// among nodes sharing a database (two nodes on one host listen on different addresses)
    /// and the same after a restart, so a restarted node takes its own leases back at once.
    /// A listener on port 0 has no stable address; it gets a random id.
    pub fn node_id(&self) -> anyhow::Result<String> {
        if let Some(id) = &self.node_id {
            let id = id.trim();
            if id.is_empty() || id.len() > 200 || id.chars().any(char::is_control) {
                bail!(
                    "node_id `{}`: expected 1 to 200 printable characters",
                    id.escape_debug()
                );
            }
            return Ok(id.to_string());
        }
        if self.listen.ends_with(":0") {
            return Ok(hubhook_engine::random_node_id());
        }
        Ok(format!("{}-{}", host_name(), self.listen))
    }
}

/// The machine's name, for node ids.
fn host_name() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|name| name.trim().to_string())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "hubhook".to_string())
}

/// A secret read from the environment or the command line. Its `Debug` prints a mask, so a
/// logged configuration never shows it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SecretText(pub String);

impl From<String> for SecretText {
    fn from(text: String) -> SecretText {
        SecretText(text)
    }
}

impl std::fmt::Debug for SecretText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("\"********\"")
    }
}

impl ServeConfig {
    /// The master key as configured: the key itself, or the contents of the key file.
    pub fn master_key_text(&self) -> anyhow::Result<Option<String>> {
        match (&self.master_key, &self.master_key_file) {
            (Some(_), Some(_)) => {
                bail!("give either master_key or master_key_file, not both")
            }
            (Some(key), None) => Ok(Some(key.0.clone())),
            (None, Some(path)) => std::fs::read_to_string(path)
                .map(|text| Some(text.trim().to_string()))
                .with_context(|| format!("reading master_key_file {}", path.display())),
            (None, None) => Ok(None),
        }
    }
}

/// The SQLite file behind a `sqlite:` URL, if it is one.
pub fn sqlite_path(database_url: &str) -> Option<PathBuf> {
    let rest = database_url
        .strip_prefix("sqlite://")
        .or_else(|| database_url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or(rest);
    Some(PathBuf::from(path))
}

/// The master key from configuration or, with SQLite and none given, from a key file beside
/// the database (created on first use). PostgreSQL deployments share one database between
/// nodes, so each node must be given the same key explicitly.
pub fn resolve_master_key(
    database_url: &str,
    master_key: Option<&str>,
) -> anyhow::Result<MasterKey> {
    if let Some(key) = master_key {
        return MasterKey::parse(key).context("HUBHOOK_MASTER_KEY / --master-key");
    }
    let Some(db_path) = sqlite_path(database_url) else {
        bail!(
            "a master key is required with {database_url}: set HUBHOOK_MASTER_KEY or --master-key (64 hex digits)"
        );
    };
    let mut key_path = db_path.clone().into_os_string();
    key_path.push(".key");
    let key_path = PathBuf::from(key_path);
    if key_path.exists() {
        let text = std::fs::read_to_string(&key_path)
            .with_context(|| format!("reading {}", key_path.display()))?;
        return MasterKey::parse(text.trim())
            .with_context(|| format!("key file {}", key_path.display()));
    }
    // A database that exists without its key file holds secrets no new key can read: stop
    // rather than start with a key that makes every stored instance fail.
    if db_path.exists() {
        bail!(
            "the database {} exists but its key file {} is missing: restore the key file or set HUBHOOK_MASTER_KEY to the key it was created with",
            db_path.display(),
            key_path.display()
        );
    }
    let key = MasterKey::generate();
    write_private_file(&key_path, &key.to_hex())
        .with_context(|| format!("writing {}", key_path.display()))?;
    tracing::warn!(
        path = %key_path.display(),
        "no master key given: generated one beside the database; keep this file with the database, or set HUBHOOK_MASTER_KEY"
    );
    Ok(key)
}

fn write_private_file(path: &std::path::Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(contents.as_bytes())?;
    file.write_all(b"\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_paths() {
        assert_eq!(
            sqlite_path("sqlite://hubhook.db"),
            Some(PathBuf::from("hubhook.db"))
        );
        assert_eq!(
            sqlite_path("sqlite:///tmp/x.db?mode=rwc"),
            Some(PathBuf::from("/tmp/x.db"))
        );
        assert_eq!(sqlite_path("postgres://localhost/test"), None);
    }

    #[test]
    fn key_file_is_created_once_and_reused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = format!("sqlite://{}", dir.path().join("h.db").display());
        let first = resolve_master_key(&url, None).expect("generated");
        let second = resolve_master_key(&url, None).expect("read back");
        assert_eq!(first.to_hex(), second.to_hex());
        assert!(resolve_master_key("postgres://localhost/x", None).is_err());
        // A database without its key file is not given a new key.
        std::fs::write(dir.path().join("h.db"), b"").expect("db file");
        std::fs::remove_file(dir.path().join("h.db.key")).expect("remove key");
        let err = resolve_master_key(&url, None).expect_err("refused");
        assert!(err.to_string().contains("key file"), "{err}");
        assert!(resolve_master_key(&url, Some("not a key")).is_err());
    }
}
