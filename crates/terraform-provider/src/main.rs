//! `terraform-provider-keyward`: started by Terraform, never by hand (docs/terraform.md). It
//! serves the provider until Terraform asks it to stop; its standard output belongs to the
//! plugin protocol, so logs go to standard error (Terraform shows them with `TF_LOG`).

use std::process::ExitCode;

use terraform_provider_keyward::plugin;
use terraform_provider_keyward::provider::KeywardProvider;
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_env_filter(
            EnvFilter::try_from_env("KEYWARD_PROVIDER_LOG")
                .unwrap_or_else(|_| EnvFilter::new("warn")),
        )
        .init();
    match plugin::serve(KeywardProvider::new()).await {
        Ok(()) => ExitCode::SUCCESS,
        // serve has said why on standard error already.
        Err(plugin::PluginError::NotStartedByTerraform) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("terraform-provider-keyward: {e}");
            ExitCode::FAILURE
        }
    }
}
