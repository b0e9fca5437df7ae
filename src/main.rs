use clap::Parser;
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_env("PERSONA_LOG").unwrap_or_else(|_| EnvFilter::new("warn,persona=info,buoyant_kernel::snapshot::builder=off")))
        .with_writer(std::io::stderr)
        .init();
    match persona::cli::run(persona::cli::Cli::parse()).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("persona: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
