//! Logging with tracing: human-readable by default, JSON lines with `--log-format json`.
//! `RUST_LOG` filters as usual (default `info`).

use tracing_subscriber::EnvFilter;

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub(crate) enum Format {
    Human,
    Json,
}

pub(crate) fn init(format: Format) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let b = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        Format::Human => b.try_init(),
        Format::Json => b.json().flatten_event(true).try_init(),
    };
}
