//! A PostgreSQL database of its own for one test, on the machine's server
//! (`HUBHOOK_TEST_POSTGRES_SERVER`, by default `postgres://postgres@127.0.0.1:5432`; `.ci/run`
//! makes sure it answers). Multi-node tests use it, and `spawn_app` does when
//! `HUBHOOK_TEST_DATABASE=postgres`, so the whole end-to-end suite can run on PostgreSQL.

use sqlx::Connection as _;

/// Whether `spawn_app` should run on PostgreSQL instead of SQLite.
pub fn wanted() -> bool {
    std::env::var("HUBHOOK_TEST_DATABASE").is_ok_and(|value| value == "postgres")
}

pub fn server_url(database: &str) -> String {
    let base = std::env::var("HUBHOOK_TEST_POSTGRES_SERVER")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".to_owned());
    format!("{base}/{database}")
}

/// A database of its own on the machine's PostgreSQL, dropped (with its connections) when the
/// guard goes, however the test ends.
pub struct Database {
    name: String,
}

impl Database {
    pub async fn create() -> Database {
        let name = format!("hubhook_test_{}_{}", std::process::id(), random());
        admin(format!("CREATE DATABASE {name}")).await;
        Database { name }
    }

    pub fn url(&self) -> String {
        server_url(&self.name)
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        // The test's runtime cannot block on itself: a thread with a runtime of its own.
        let _ = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime")
                .block_on(admin(sql))
        })
        .join();
    }
}

pub async fn admin(sql: String) {
    let mut conn = sqlx::PgConnection::connect(&server_url("postgres"))
        .await
        .expect("the machine's PostgreSQL answers");
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
        .execute(&mut conn)
        .await
        .expect("admin statement");
    let _ = conn.close().await;
}

/// A random number (the standard library's hasher keys are random per instance).
pub fn random() -> u64 {
    use std::hash::{BuildHasher as _, Hasher as _};
    std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish()
}
