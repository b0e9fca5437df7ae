use clap::Parser;
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let filter = persona::cli::log_filter(std::env::var("PERSONA_LOG").ok().as_deref());
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new(persona::cli::log_filter(None))))
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
