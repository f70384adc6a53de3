use tracing_subscriber::EnvFilter;

/// Logs go to stderr so that commands whose stdout is data (`org create`) stay parseable.
/// `quiet` keeps only warnings (the demo prints its own narrative). `RUST_LOG` overrides both.
pub fn init(quiet: bool) {
    let default = if quiet {
        "warn"
    } else {
        "info,sqlx=warn,tower_http=warn,hyper=warn,reqwest=warn"
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}
