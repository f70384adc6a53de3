//! The command line. Flags override `HUBHOOK_*` environment variables, which override defaults.

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};
use serde::Serialize;

use crate::config::{ServeConfig, resolve_master_key};

#[derive(Debug, Parser)]
#[command(
    name = "hubhook",
    version,
    about = "Self-hosted events engine for ConnectWise Manage, compatible with Cloud Elements events"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the API, the poller and the dispatcher.
    Serve(ServeArgs),
    /// Manage organizations.
    #[command(subcommand)]
    Org(OrgCommand),
    /// Manage users of an organization.
    #[command(subcommand)]
    User(UserCommand),
    /// Run a simulator.
    #[command(subcommand)]
    Sim(SimCommand),
    /// One command, no setup: simulator, server and a callback receiver, with changing data.
    Demo(DemoArgs),
}

/// Flags of `serve`; each is optional so that only given flags override the environment.
#[derive(Debug, Args, Serialize, Default)]
pub struct ServeArgs {
    /// Address to listen on [env: HUBHOOK_LISTEN] [default: 127.0.0.1:8080]
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<String>,
    #[command(flatten)]
    #[serde(flatten)]
    pub database: DatabaseArgs,
    /// Seconds; floor under every instance's refresh interval [env: HUBHOOK_MIN_REFRESH_INTERVAL] [default: 60]
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_refresh_interval: Option<u64>,
    /// Allow callback URLs on loopback or private addresses [env: HUBHOOK_ALLOW_PRIVATE_CALLBACKS] [default: false]
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allow_private_callbacks: Option<bool>,
    /// Delays between delivery attempts, e.g. "4s,16s,64s" [env: HUBHOOK_RETRY_SCHEDULE] [default: 4^x s, 9 retries]
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_schedule: Option<String>,
    /// This node's name in lease columns, unique per node and stable across its restarts [env: HUBHOOK_NODE_ID] [default: host name and listen address]
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node_id: Option<String>,
    /// Client connections held at once; beyond it the longest-idle connection is closed, or the newcomer gets 503 [env: HUBHOOK_MAX_CONNECTIONS] [default: 4096]
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_connections: Option<usize>,
    /// Seconds a poll job stays leased without renewal: how long a dead node's poll waits to be taken over [env: HUBHOOK_POLL_LEASE] [default: 60]
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub poll_lease: Option<u64>,
    /// Seconds a notification stays leased while being delivered [env: HUBHOOK_DELIVERY_LEASE] [default: 60]
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delivery_lease: Option<u64>,
    /// Seconds one ConnectWise request may take (a poll's page, a hub call; a hub call that runs out answers 504) [env: HUBHOOK_CONNECTWISE_TIMEOUT] [default: 120]
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connectwise_timeout: Option<u64>,
    /// Polls running at once on this node [env: HUBHOOK_POLL_CONCURRENCY] [default: 16]
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub poll_concurrency: Option<u32>,
    /// Polls running at once against one ConnectWise site (base URL and company) [env: HUBHOOK_SITE_POLL_CONCURRENCY] [default: 2]
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub site_poll_concurrency: Option<usize>,
    /// Requests per minute to one ConnectWise site, polls and hub calls together; 0 for no budget (a 429 still pauses the site) [env: HUBHOOK_SITE_REQUESTS_PER_MINUTE] [default: 1000]
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub site_requests_per_minute: Option<u32>,
    /// Seconds one callback POST may take; less than --delivery-lease [env: HUBHOOK_DELIVERY_TIMEOUT] [default: 15]
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delivery_timeout: Option<u64>,
    /// Seconds a rotated webhook secret keeps signing beside the new one [env: HUBHOOK_WEBHOOK_SECRET_OVERLAP] [default: 86400]
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub webhook_secret_overlap: Option<u64>,
    /// Days delivered notifications and their attempts are kept [env: HUBHOOK_DELIVERY_RETENTION_DAYS] [default: 30]
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delivery_retention_days: Option<u64>,
    /// Days event metadata is kept [env: HUBHOOK_EVENT_RETENTION_DAYS] [default: 90]
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_retention_days: Option<u64>,
    /// Deliveries in flight to one receiver (callback origin) from this node [env: HUBHOOK_RECEIVER_CONCURRENCY] [default: 4]
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub receiver_concurrency: Option<u32>,
    /// Deliveries per second to one receiver from this node, 0 = unlimited [env: HUBHOOK_RECEIVER_RATE] [default: 0]
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub receiver_rate: Option<f64>,
}

#[derive(Debug, Args, Serialize, Default)]
pub struct DatabaseArgs {
    /// sqlite://PATH or postgres://... [env: HUBHOOK_DATABASE_URL] [default: sqlite://hubhook.db]
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database_url: Option<String>,
    /// Key encrypting stored provider secrets, 64 hex digits. Discouraged on the command line,
    /// which every local user can read (ps); prefer HUBHOOK_MASTER_KEY or --master-key-file
    /// [env: HUBHOOK_MASTER_KEY] [default: a key file beside the SQLite database]
    #[arg(long, value_parser = clap::builder::TypedValueParser::map(clap::builder::StringValueParser::new(), crate::config::SecretText))]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub master_key: Option<crate::config::SecretText>,
    /// File holding the master key [env: HUBHOOK_MASTER_KEY_FILE]
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub master_key_file: Option<std::path::PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum OrgCommand {
    /// Create an organization and its first user; prints their ids and secrets as JSON.
    Create {
        /// Organization name.
        #[arg(long)]
        name: String,
        /// The first user's sign-in (with --password); without it the user has secrets only.
        #[arg(long, requires = "password")]
        email: Option<String>,
        #[command(flatten)]
        login: LoginArgs,
        #[command(flatten)]
        database: DatabaseArgs,
    },
    /// Replace the organization's secret; prints the new one as JSON.
    RotateSecret {
        #[arg(long)]
        organization: i64,
        #[command(flatten)]
        database: DatabaseArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Add a user who signs in with an email and a password; prints its id and secret as JSON.
    Create {
        #[arg(long)]
        organization: i64,
        #[arg(long)]
        email: String,
        #[command(flatten)]
        login: LoginArgs,
        #[command(flatten)]
        database: DatabaseArgs,
    },
    /// Replace a user's secret; prints the new one as JSON.
    RotateSecret {
        #[arg(long)]
        organization: i64,
        #[arg(long)]
        user: i64,
        #[command(flatten)]
        database: DatabaseArgs,
    },
}

/// A password and names. The password is better given in HUBHOOK_PASSWORD: every local user
/// can read a process's arguments.
#[derive(Debug, Args)]
pub struct LoginArgs {
    /// 8 to 1024 characters [env: HUBHOOK_PASSWORD]
    #[arg(long, env = "HUBHOOK_PASSWORD", hide_env_values = true)]
    pub password: Option<String>,
    #[arg(long, default_value = "")]
    pub first_name: String,
    #[arg(long, default_value = "")]
    pub last_name: String,
}

impl LoginArgs {
    fn login(self, email: String) -> anyhow::Result<crate::org::Login> {
        Ok(crate::org::Login {
            email,
            password: self
                .password
                .context("--password (or HUBHOOK_PASSWORD) is required with an email")?,
            first_name: self.first_name,
            last_name: self.last_name,
        })
    }
}

/// Opens the database of an administration command, runs `work` on it, closes it, and prints
/// what `work` returned as one JSON line.
async fn with_store<T: Serialize>(
    database: &DatabaseArgs,
    work: impl AsyncFnOnce(&hubhook_store::Store) -> anyhow::Result<T>,
) -> anyhow::Result<()> {
    let config = ServeConfig::load(database)?;
    let key = resolve_master_key(&config.database_url, config.master_key_text()?.as_deref())?;
    let store = hubhook_store::Store::open(&config.database_url, key)
        .await
        .with_context(|| {
            format!(
                "opening the database {}",
                crate::server::redact_url(&config.database_url)
            )
        })?;
    let done = work(&store).await;
    store.close().await;
    println!("{}", serde_json::to_string(&done?)?);
    Ok(())
}

#[derive(Debug, Subcommand)]
pub enum SimCommand {
    /// A ConnectWise Manage REST API simulator.
    Connectwise(SimArgs),
}

#[derive(Debug, Args)]
pub struct SimArgs {
    #[arg(long, default_value = "127.0.0.1:8081")]
    pub listen: String,
    /// Company id API members log in with.
    #[arg(long, default_value = "demo")]
    pub company: String,
    #[arg(long, default_value = "demo-public")]
    pub public_key: String,
    #[arg(long, default_value = "demo-private")]
    pub private_key: String,
    /// When given, requests must carry this `clientId` header.
    #[arg(long)]
    pub client_id: Option<String>,
    /// Seeded records per resource.
    #[arg(long, default_value_t = 100)]
    pub records: usize,
    /// Seed of the generated data.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Address of the hubhook API and console; a free port is used if it is taken.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: String,
    /// Seconds between simulated changes in ConnectWise.
    #[arg(long, default_value_t = 4)]
    pub change_every: u64,
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve(args) => crate::server::serve(ServeConfig::load(&args)?).await,
        Command::Org(OrgCommand::Create {
            name,
            email,
            login,
            database,
        }) => {
            let login = email.map(|email| login.login(email)).transpose()?;
            with_store(&database, async |store| {
                crate::org::create_with_login(store, &name, login).await
            })
            .await
        }
        Command::Org(OrgCommand::RotateSecret {
            organization,
            database,
        }) => {
            with_store(&database, async |store| {
                crate::org::rotate_organization_secret(store, organization).await
            })
            .await
        }
        Command::User(UserCommand::Create {
            organization,
            email,
            login,
            database,
        }) => {
            let login = login.login(email)?;
            with_store(&database, async |store| {
                crate::org::create_user(store, organization, login).await
            })
            .await
        }
        Command::User(UserCommand::RotateSecret {
            organization,
            user,
            database,
        }) => {
            with_store(&database, async |store| {
                crate::org::rotate_user_secret(store, organization, user).await
            })
            .await
        }
        Command::Sim(SimCommand::Connectwise(args)) => {
            let config = connectwise_sim::SimConfig {
                company: args.company,
                public_key: args.public_key,
                private_key: args.private_key,
                client_id: args.client_id,
                records: args.records,
                contacts: None,
                seed: args.seed,
            };
            let listener = tokio::net::TcpListener::bind(&args.listen)
                .await
                .with_context(|| format!("listening on {}", args.listen))?;
            let addr = listener.local_addr()?;
            println!(
                "ConnectWise simulator on http://{addr}/v4_6_release/apis/3.0 (company `{}`)",
                config.company
            );
            let sim = connectwise_sim::Simulator::new(config);
            tokio::select! {
                served = sim.serve(listener) => served.context("simulator stopped"),
                _ = crate::server::shutdown_signal() => Ok(()),
            }
        }
        Command::Demo(args) => crate::demo::run(args).await,
    }
}
