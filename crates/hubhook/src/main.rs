//! `hubhook`: the binary. Parsing and wiring only; see the library for each command.

use clap::Parser as _;

fn main() -> std::process::ExitCode {
    let cli = hubhook::cli::Cli::parse();
    // The demo prints its own narrative; routine logs would drown it.
    hubhook::telemetry::init(matches!(cli.command, hubhook::cli::Command::Demo(_)));
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(hubhook::cli::run(cli)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
