//! Serves the simulator without the `hubhook` binary, for the fidelity
//! scripts and for trying the simulator alone:
//! `cargo run -p connectwise-sim --example sim -- --listen 127.0.0.1:8081 [--records N] [--seed S] [--client-id ID]`

use connectwise_sim::{SimConfig, Simulator};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut config = SimConfig::default();
    let mut listen = "127.0.0.1:8081".to_string();
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--listen" => listen = value,
            "--records" => config.records = value.parse()?,
            "--seed" => config.seed = value.parse()?,
            "--client-id" => config.client_id = Some(value),
            "--company" => config.company = value,
            "--public-key" => config.public_key = value,
            "--private-key" => config.private_key = value,
            other => return Err(format!("unknown flag {other}").into()),
        }
    }
    let listener = tokio::net::TcpListener::bind(&listen).await?;
    println!(
        "connectwise simulator on http://{}/v4_6_release/apis/3.0",
        listener.local_addr()?
    );
    Simulator::new(config).serve(listener).await?;
    Ok(())
}
