//! Real `hubhook` processes for tests that need a process boundary: the command line's
//! contract, and crashes (`kill -9`) that no in-process test can imitate.

use std::{
    io::{BufRead, BufReader},
    process::{Child, Command, Stdio},
    time::Duration,
};

use serde_json::json;

use crate::app::{Receiver, documented_body, is_about, test_simulator};

/// The binary, with none of the runner's `HUBHOOK_*` settings leaking into it.
pub fn hubhook() -> Command {
    without_runner_settings(Command::new(env!("CARGO_BIN_EXE_hubhook")))
}

fn without_runner_settings(mut command: Command) -> Command {
    for (name, _) in std::env::vars() {
        if name.starts_with("HUBHOOK_") {
            command.env_remove(name);
        }
    }
    command
}

/// A child process killed when the test ends, however it ends.
pub struct Running(pub Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Start a long-running command and return it with the first stdout line containing `marker`,
/// failing the test if none comes within 30 s. Reading happens on a thread so that a child that
/// hangs cannot hang the test; the thread keeps draining stdout so later prints never fail.
pub fn start(mut command: Command, marker: &str) -> (Running, String) {
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn hubhook");
    let stdout = child.stdout.take().expect("stdout");
    let running = Running(child);
    let (lines, found) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = lines.send(line);
        }
    });
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match found.recv_timeout(left) {
            Ok(line) if line.contains(marker) => return (running, line),
            Ok(_) => continue,
            Err(err) => panic!("hubhook printed no line with `{marker}`: {err}"),
        }
    }
}

/// The `http://host:port` in a line such as `hubhook listening on http://127.0.0.1:1234 (...)`.
pub fn address_in(line: &str) -> String {
    let start = line.find("http://").expect("an address");
    line[start..]
        .split_whitespace()
        .next()
        .expect("address")
        .to_string()
}

/// The organization `hubhook org create` made, as it printed it (with this master key, or
/// the key file it generates beside the database).
pub fn org_create(database_url: &str, master_key: Option<&str>) -> serde_json::Value {
    let mut command = hubhook();
    command.args([
        "org",
        "create",
        "--name",
        "acme",
        "--database-url",
        database_url,
    ]);
    if let Some(key) = master_key {
        command.env("HUBHOOK_MASTER_KEY", key);
    }
    let output = command.output().expect("org create runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("one JSON object")
}

/// `hubhook serve` as a real process on a database that outlives it, so that a test can kill
/// it with SIGKILL at any moment and start it again on the same database and node id.
pub struct ServerProcess {
    command: Vec<(String, String)>,
    /// The open-files limit (`ulimit -n`) to run the server under, if not the runner's.
    open_files: Option<u32>,
    running: Option<Running>,
    pub url: String,
}

impl ServerProcess {
    /// Starts `hubhook serve` on `database_url` with settings as `HUBHOOK_*` environment
    /// variables (`env`), on a free port, with callbacks to loopback allowed, 1 s minimum
    /// interval and the node id `node-1`, unless `env` says otherwise; under an open-files
    /// limit (`ulimit -n`) of `open_files` when given.
    pub fn start(
        database_url: &str,
        master_key: &str,
        env: &[(&str, &str)],
        open_files: Option<u32>,
    ) -> ServerProcess {
        let mut settings: Vec<(String, String)> = [
            ("HUBHOOK_LISTEN", "127.0.0.1:0"),
            ("HUBHOOK_DATABASE_URL", database_url),
            ("HUBHOOK_MASTER_KEY", master_key),
            ("HUBHOOK_MIN_REFRESH_INTERVAL", "1"),
            ("HUBHOOK_ALLOW_PRIVATE_CALLBACKS", "true"),
            ("HUBHOOK_NODE_ID", "node-1"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        for (name, value) in env {
            settings.retain(|(k, _)| k != name);
            settings.push((name.to_string(), value.to_string()));
        }
        let mut server = ServerProcess {
            command: settings,
            open_files,
            running: None,
            url: String::new(),
        };
        server.restart();
        server
    }

    /// SIGKILL: no shutdown, no flush, leases left as they are.
    pub fn kill9(&mut self) {
        if let Some(mut running) = self.running.take() {
            running.0.kill().expect("SIGKILL");
            running.0.wait().expect("reaped");
        }
    }

    /// Sends `signal` (such as `STOP` or `CONT`) to the running server: a stalled node.
    pub fn signal(&self, signal: &str) {
        let running = self.running.as_ref().expect("the server runs");
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(running.0.id().to_string())
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill -{signal}");
    }

    /// Starts the server again (on a new port) after a kill.
    pub fn restart(&mut self) {
        self.kill9();
        let mut command = match self.open_files {
            None => {
                let mut command = hubhook();
                command.arg("serve");
                command
            }
            Some(limit) => {
                let mut command = without_runner_settings(Command::new("sh"));
                command
                    .arg("-c")
                    .arg(format!("ulimit -n {limit} && exec \"$0\" serve"))
                    .arg(env!("CARGO_BIN_EXE_hubhook"));
                command
            }
        };
        for (name, value) in &self.command {
            command.env(name, value);
        }
        let (running, line) = start(command, "listening on");
        self.url = address_in(&line);
        self.running = Some(running);
    }

    /// A platform API URL.
    pub fn api(&self, path: &str) -> String {
        format!("{}/elements/api-v2{path}", self.url)
    }
}

pub const MASTER_KEY: &str = "5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a";

/// How long tests wait for something that should happen within seconds.
pub const WAIT: Duration = Duration::from_secs(60);

/// A real server process with an in-process simulator and receiver, an organization and the
/// documented instance, its baseline done.
pub struct ProcessApp {
    _dir: tempfile::TempDir,
    pub sim: connectwise_sim::SimHandle,
    pub receiver: Receiver,
    pub server: ServerProcess,
    pub database_url: String,
    pub auth: String,
    pub http: reqwest::Client,
}

impl ProcessApp {
    /// Starts everything, with server settings `env`, the server under an open-files limit
    /// of `open_files` when given.
    pub async fn start(env: &[(&str, &str)], open_files: Option<u32>) -> ProcessApp {
        let dir = tempfile::tempdir().expect("tempdir");
        let database_url = format!("sqlite://{}", dir.path().join("crash.db").display());
        let sim = test_simulator().await;
        let receiver = Receiver::start().await;
        let org = org_create(&database_url, Some(MASTER_KEY));
        let server = ServerProcess::start(&database_url, MASTER_KEY, env, open_files);
        let auth = format!(
            "User {}, Organization {}",
            org["userSecret"].as_str().expect("secret"),
            org["organizationSecret"].as_str().expect("secret")
        );
        let app = ProcessApp {
            _dir: dir,
            sim,
            receiver,
            server,
            database_url,
            auth,
            http: reqwest::Client::new(),
        };
        let created = app
            .http
            .post(app.server.api("/instances"))
            .header("Authorization", &app.auth)
            .json(&documented_body(&app.sim.base_url(), &app.receiver.url))
            .send()
            .await
            .expect("sent");
        assert_eq!(created.status(), 200);
        // A first change delivered: the baseline is done and the chain works.
        app.change_and_wait(app.contact(0)).await;
        app
    }

    pub fn contact(&self, n: usize) -> i64 {
        self.sim.sim.ids("company/contacts")[n]
    }

    pub fn change(&self, id: i64) {
        self.sim
            .sim
            .patch(
                "company/contacts",
                id,
                json!([{ "op": "replace", "path": "title", "value": format!("title {}", rand_suffix()) }]),
            )
            .expect("patched");
    }

    pub async fn change_and_wait(&self, id: i64) {
        self.change(id);
        self.receiver
            .wait_for_event(WAIT, |e| is_about(e, id))
            .await;
    }
}

fn rand_suffix() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}
