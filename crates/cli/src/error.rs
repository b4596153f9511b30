//! Everything a command can fail with, each with a message that says what to do.

use std::path::PathBuf;

use thiserror::Error;

#[derive(Debug, Error)]
pub enum CliError {
    #[error("{action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "{0} holds a database but no pepper file; without the pepper no stored key can be verified. Restore the pepper file, or start with an empty --data-dir"
    )]
    MissingPepper(PathBuf),
    #[error("{place} holds no keyward deployment: {missing}. {fix}")]
    NoDeployment {
        /// The flag and value that name the deployment.
        place: String,
        missing: String,
        fix: String,
    },
    #[error("the pepper file {path} is unusable: {source}")]
    BadPepper {
        path: PathBuf,
        source: keyward_core::hash::PepperError,
    },
    #[error("store: {0}")]
    Store(#[from] keyward_store::StoreError),
    #[error("{0}")]
    Service(#[from] keyward_service::ServiceError),
    #[error("could not listen on {addr}: {source}")]
    Bind {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
    #[error("{0}")]
    Input(String),
    #[error("the server stopped: {0}")]
    Serve(std::io::Error),
    /// A call to the management API failed (the client commands).
    #[error("{}", client_message(.0))]
    Client(#[from] keyward_client::ClientError),
    #[error("could not start the async runtime: {0}")]
    Runtime(std::io::Error),
}

/// The client's message, with what to do next where the status says it.
fn client_message(e: &keyward_client::ClientError) -> String {
    let hint = if e.is_unauthenticated() {
        "\n  (the admin key comes from KEYWARD_API_KEY or --api-key-file)"
    } else if e.is_precondition_failed() {
        "\n  (`keyward keys get ID` shows the key's current version)"
    } else {
        ""
    };
    format!("{e}{hint}")
}
