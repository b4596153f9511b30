//! `keyward serve`: the management API on the embedded store, in one process.
//!
//! The data directory holds the SQLite database and the pepper (mode 0600). The first start
//! bootstraps the account and prints a root admin key once; later starts print none.

use std::io::Write;
use std::net::SocketAddr;

use clap::Args;

use keyward_http::gateway::gateway_router;
use keyward_service::verification::Verifier;

use crate::deployment::{DeploymentArgs, ForServe};
use crate::error::CliError;

#[derive(Debug, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    deployment: DeploymentArgs<ForServe>,

    /// Address to listen on; port 0 picks a free one.
    #[arg(long, env = "KEYWARD_LISTEN", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,

    /// Port to listen on, overriding the port of --listen.
    #[arg(long, env = "KEYWARD_PORT")]
    port: Option<u16>,

    /// Run the local gateway too: verify every request with the route policy (--policy) and
    /// forward the allowed ones to this service (http://host:port).
    #[arg(long, env = "KEYWARD_UPSTREAM")]
    upstream: Option<axum::http::Uri>,

    /// Where the local gateway listens; port 0 picks a free one.
    #[arg(long, env = "KEYWARD_GATEWAY_LISTEN", default_value = "127.0.0.1:8081")]
    gateway_listen: SocketAddr,
}

pub async fn run(args: ServeArgs) -> Result<(), CliError> {
    let mut listen = args.listen;
    if let Some(port) = args.port {
        listen.set_port(port);
    }
    let config = &args.deployment.config;
    let gateway = match (args.upstream, &config.route_policy) {
        (Some(upstream), Some(policy)) => Some((upstream, policy.clone())),
        (None, None) => None,
        _ => {
            return Err(CliError::Input(
                "the local gateway needs both --upstream and --policy".into(),
            ));
        }
    };
    let app = args.deployment.open().await?;

    if let Some(root) = app.bootstrap().await? {
        // The one place a secret is printed: stdout, once, for the operator who started it.
        let mut out = std::io::stdout().lock();
        let _ = writeln!(
            out,
            "keyward: bootstrapped account '{}'. Root admin key (shown once, store it now):\n{}",
            app.settings().account,
            root.expose()
        );
    }

    if let Some((upstream, policy)) = gateway {
        let verifier = Verifier::new(app.engine().clone(), Some(policy));
        let gateway_shutdown = shutdown_signal();
        let gateway = tokio::net::TcpListener::bind(args.gateway_listen)
            .await
            .map_err(|source| CliError::Bind {
                addr: args.gateway_listen,
                source,
            })?;
        let addr = gateway.local_addr().map_err(CliError::Serve)?;
        {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(
                out,
                "keyward: gateway listening on http://{addr}, forwarding to {upstream}"
            );
            let _ = out.flush();
        }
        let router = gateway_router(verifier, upstream);
        tokio::spawn(async move {
            let served = axum::serve(
                gateway,
                router.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .with_graceful_shutdown(gateway_shutdown)
            .await;
            if let Err(e) = served {
                tracing::error!(error = %e, "the gateway stopped");
            }
        });
    }
    let shutdown = shutdown_signal();
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|source| CliError::Bind {
            addr: listen,
            source,
        })?;
    let bound = listener.local_addr().map_err(CliError::Serve)?;
    {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "keyward: listening on http://{bound}");
        let _ = out.flush();
    }
    tracing::info!(%bound, "serving");
    let _poller = app.engine().spawn_background();
    let router = keyward_http::router(app);
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
    .map_err(CliError::Serve)?;
    tracing::info!("stopped");
    Ok(())
}

/// Installs the Ctrl-C and SIGTERM handlers now, and answers a future that resolves on either,
/// so in-flight requests finish before exit. Installing them before the server says it listens
/// matters: a signal that arrives earlier would otherwise end the process at once.
fn shutdown_signal() -> impl std::future::Future<Output = ()> + Send + 'static {
    use tokio::signal::unix::{SignalKind, signal};
    let interrupt = signal(SignalKind::interrupt());
    let terminate = signal(SignalKind::terminate());
    async move {
        let wait = |s: std::io::Result<tokio::signal::unix::Signal>| async move {
            match s {
                Ok(mut s) => {
                    s.recv().await;
                }
                Err(_) => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            () = wait(interrupt) => {},
            () = wait(terminate) => {},
        }
    }
}
