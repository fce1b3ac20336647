//! `devsignal`: parses the command line and hands over to the library.

use std::process::ExitCode;

use clap::Parser;
use devsignal_server::cli::{Cli, run};

fn main() -> ExitCode {
    // Before anything builds a TLS client: one crypto provider for the whole process.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cli = Cli::parse();
    match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime.block_on(run(cli)),
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            ExitCode::FAILURE
        }
    }
}
