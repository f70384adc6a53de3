//! The binary's interface contract: commands, flags, environment names and what they print.

use serde_json::json;

use crate::processes::{address_in, hubhook, org_create, start};

#[tokio::test]
async fn org_create_serve_and_sim_work_as_documented() {
    let dir = tempfile::tempdir().expect("tempdir");
    let database_url = format!("sqlite://{}", dir.path().join("cli.db").display());

    // `org create` prints exactly one JSON object with the four documented fields.
    let org = org_create(&database_url, None);
    for field in [
        "organizationId",
        "userId",
        "organizationSecret",
        "userSecret",
    ] {
        assert!(!org[field].is_null(), "missing {field}: {org}");
    }
    assert!(
        dir.path().join("cli.db.key").exists(),
        "a key file is generated beside the database"
    );

    // `sim connectwise` with its flags.
    let mut sim = hubhook();
    sim.args([
        "sim",
        "connectwise",
        "--listen",
        "127.0.0.1:0",
        "--company",
        "acme",
        "--public-key",
        "pub",
    ])
    .args(["--private-key", "priv", "--records", "3", "--seed", "7"]);
    let (_sim, line) = start(sim, "http://");
    let base_url = address_in(&line);
    let http = reqwest::Client::new();
    let info = http
        .get(format!("{base_url}/system/info"))
        .basic_auth("acme+pub", Some("priv"))
        .send()
        .await
        .expect("sent");
    assert_eq!(info.status(), 200);

    // `serve` configured through the environment, flags overriding it.
    let mut serve = hubhook();
    serve
        .arg("serve")
        .env("HUBHOOK_LISTEN", "127.0.0.1:1")
        .env("HUBHOOK_DATABASE_URL", &database_url)
        .env("HUBHOOK_MIN_REFRESH_INTERVAL", "1")
        .env("HUBHOOK_ALLOW_PRIVATE_CALLBACKS", "true")
        .args(["--listen", "127.0.0.1:0"]);
    let (_server, line) = start(serve, "listening on");
    let server = address_in(&line);
    for path in ["/healthz", "/readyz", "/"] {
        let response = http
            .get(format!("{server}{path}"))
            .send()
            .await
            .expect("sent");
        assert_eq!(response.status(), 200, "{path}");
    }

    // The secrets printed by `org create` authenticate against the running server.
    let auth = format!(
        "User {}, Organization {}",
        org["userSecret"].as_str().expect("secret"),
        org["organizationSecret"].as_str().expect("secret")
    );
    let mut body = hubhook_core::documented_instance_body(hubhook_core::DocumentedSite {
        base_url: &base_url,
        company: "acme",
        public_key: "pub",
        private_key: "priv",
        callback_url: "http://127.0.0.1:9/webhook",
    });
    body["configuration"]["event.poller.refresh_interval"] = json!(1);
    let created = http
        .post(format!("{server}/elements/api-v2/instances"))
        .header("Authorization", &auth)
        .json(&body)
        .send()
        .await
        .expect("sent");
    assert_eq!(
        created.status(),
        200,
        "{}",
        created.text().await.unwrap_or_default()
    );
    let poll = http
        .post(format!("{server}/elements/api-v2/instances/1/poll"))
        .header("Authorization", &auth)
        .send()
        .await
        .expect("sent");
    assert_eq!(poll.status(), 202);
}

#[test]
fn bad_configuration_is_refused_with_a_message() {
    let dir = tempfile::tempdir().expect("tempdir");
    let database_url = format!("sqlite://{}", dir.path().join("bad.db").display());
    let output = hubhook()
        .args([
            "serve",
            "--database-url",
            &database_url,
            "--master-key",
            "short",
        ])
        .output()
        .expect("runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("master key"), "{stderr}");

    let output = hubhook()
        .args([
            "serve",
            "--database-url",
            &database_url,
            "--retry-schedule",
            "4s,soon",
        ])
        .env("HUBHOOK_MASTER_KEY", "ab".repeat(32))
        .output()
        .expect("runs");
    assert!(!output.status.success());
    // Nothing was created for a configuration that was refused.
    assert_eq!(std::fs::read_dir(dir.path()).expect("dir").count(), 0);
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("retry"),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[tokio::test]
async fn users_sign_in_and_secrets_rotate_from_the_command_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let database_url = format!("sqlite://{}", dir.path().join("users.db").display());
    let run = |args: &[&str], password: Option<&str>| {
        let mut command = hubhook();
        command.args(args).args(["--database-url", &database_url]);
        if let Some(password) = password {
            command.env("HUBHOOK_PASSWORD", password);
        }
        let output = command.output().expect("runs");
        (
            output.status.success(),
            String::from_utf8_lossy(&output.stdout).to_string(),
            String::from_utf8_lossy(&output.stderr).to_string(),
        )
    };
    let json = |text: &str| serde_json::from_str::<serde_json::Value>(text).expect("JSON");

    let (ok, out, err) = run(
        &[
            "org",
            "create",
            "--name",
            "acme",
            "--email",
            "a@example.com",
        ],
        Some("long enough"),
    );
    assert!(ok, "{err}");
    let org = json(&out);
    let org_id = org["organizationId"].to_string();
    let (ok, out, err) = run(
        &[
            "user",
            "create",
            "--organization",
            &org_id,
            "--email",
            "b@example.com",
            "--password",
            "also long enough",
        ],
        None,
    );
    assert!(ok, "{err}");
    let user = json(&out);
    assert!(user["userSecret"].is_string());

    // Refusals name the problem.
    for (args, password, expected) in [
        (
            vec![
                "user",
                "create",
                "--organization",
                &org_id,
                "--email",
                "B@example.com",
            ],
            Some("long enough"),
            "already exists",
        ),
        (
            vec![
                "user",
                "create",
                "--organization",
                "999",
                "--email",
                "c@example.com",
            ],
            Some("long enough"),
            "no organization",
        ),
        (
            vec![
                "user",
                "create",
                "--organization",
                &org_id,
                "--email",
                "not-an-email",
            ],
            Some("long enough"),
            "--email",
        ),
        (
            vec![
                "user",
                "create",
                "--organization",
                &org_id,
                "--email",
                "d@example.com",
            ],
            Some("short"),
            "--password",
        ),
        // Names are one line of visible text, as an instance's name is.
        (
            vec!["org", "create", "--name", "evil\nname"],
            None,
            "`--name`: character 5 is `\\n`",
        ),
        (
            vec!["org", "create", "--name", "\u{200B}\u{2060}"],
            None,
            "--name must show something",
        ),
        (
            vec![
                "user",
                "create",
                "--organization",
                &org_id,
                "--email",
                "e@example.com",
                "--first-name",
                "invoice\u{202E}gpj.exe",
            ],
            Some("long enough"),
            "`--first-name`: character 8 is",
        ),
    ] {
        let (ok, _, err) = run(&args, password);
        assert!(!ok && err.contains(expected), "{args:?}: {err}");
    }

    let (ok, out, err) = run(&["org", "rotate-secret", "--organization", &org_id], None);
    assert!(ok, "{err}");
    let rotated = json(&out);
    assert_ne!(rotated["secret"], org["organizationSecret"]);
    let user_id = user["userId"].to_string();
    let (ok, out, err) = run(
        &[
            "user",
            "rotate-secret",
            "--organization",
            &org_id,
            "--user",
            &user_id,
        ],
        None,
    );
    assert!(ok, "{err}");
    assert_ne!(json(&out)["secret"], user["userSecret"]);
}
