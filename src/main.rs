//! The `cloud-lb-controller` binary: parses the command line and hands over to the library.
#![forbid(unsafe_code)]

use clap::Parser;
use cloud_lb_controller::cli::{Cli, Command, LogFormat};
use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    // kube, reqwest and gcp_auth all use rustls; with only ring compiled in, install it before
    // any client exists.
    cloud_lb_controller::install_crypto_provider();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run(args) => {
            cloud_lb_controller::telemetry::logging::init(args.log_format);
            let cancel = cloud_lb_controller::run::shutdown_on_signals();
            cloud_lb_controller::run::run(*args, cancel).await
        }
        Command::Plan(args) => {
            cloud_lb_controller::telemetry::logging::init(LogFormat::Text);
            cloud_lb_controller::plan::run(&args)
        }
        Command::Sandbox(args) => cloud_lb_controller::sandbox::run(args).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // The cause chain, without a backtrace: these are messages for users.
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
