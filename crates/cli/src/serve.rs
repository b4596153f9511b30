//! `keyward serve`: the management API on the embedded store, in one process.
//!
//! The data directory holds the SQLite database and the pepper (mode 0600). The first start
//! bootstraps the account and prints a root admin key once; later starts print none.
//!
//! Both listeners (the management API and the local gateway) are served by
//! [`keyward_http::serve()`] within the same [`Limits`], set by the flags of [`LimitArgs`];
//! docs/serving.md has the figures.

use std::io::Write;
use std::net::SocketAddr;
use std::time::Duration;

use clap::Args;

use keyward_http::gateway::gateway_router;
use keyward_http::serve::{Limit, Limits};
use keyward_service::aggregation::IN_PROCESS_INTERVAL;
use keyward_service::rotation;
use keyward_service::verification::Verifier;

use crate::deployment::{DeploymentArgs, ForServe};
use crate::error::CliError;
use crate::open_files::{self, Listeners};

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

    #[command(flatten)]
    limits: LimitArgs,
}

/// The serving limits, the same for both listeners (docs/serving.md).
#[derive(Debug, Args)]
pub struct LimitArgs {
    /// Connections served at once on each listener; beyond it a connection is answered 503
    /// with Retry-After and closed
    #[arg(
        long,
        env = "KEYWARD_MAX_CONNECTIONS",
        value_name = "N",
        default_value_t = Limits::DEFAULT.max_connections
    )]
    max_connections: usize,

    /// Time a connection has to send a complete request head, from accept and after each
    /// response, in milliseconds (at most 30000)
    #[arg(
        long,
        env = "KEYWARD_HEADER_TIMEOUT_MS",
        value_name = "MS",
        default_value_t = millis(Limits::DEFAULT.header_read_timeout)
    )]
    header_timeout_ms: u64,

    /// Time a kept-alive connection may stay silent after a response, in milliseconds (at most
    /// the header timeout)
    #[arg(
        long,
        env = "KEYWARD_IDLE_TIMEOUT_MS",
        value_name = "MS",
        default_value_t = millis(Limits::DEFAULT.idle_timeout)
    )]
    idle_timeout_ms: u64,

    /// Time a request has to be answered before it gets 503, in milliseconds
    #[arg(
        long,
        env = "KEYWARD_REQUEST_TIMEOUT_MS",
        value_name = "MS",
        default_value_t = millis(Limits::DEFAULT.request_timeout)
    )]
    request_timeout_ms: u64,
}

const fn millis(d: Duration) -> u64 {
    d.as_millis() as u64
}

impl LimitArgs {
    /// The limits, checked, with a refusal that names the flag and its variable.
    fn limits(&self) -> Result<Limits, CliError> {
        let limits = Limits {
            max_connections: self.max_connections,
            header_read_timeout: Duration::from_millis(self.header_timeout_ms),
            idle_timeout: Duration::from_millis(self.idle_timeout_ms),
            request_timeout: Duration::from_millis(self.request_timeout_ms),
        };
        limits.check().map_err(|e| {
            let (flag, variable) = match e.limit {
                Limit::MaxConnections => ("max-connections", "KEYWARD_MAX_CONNECTIONS"),
                Limit::HeaderReadTimeout => ("header-timeout-ms", "KEYWARD_HEADER_TIMEOUT_MS"),
                Limit::IdleTimeout => ("idle-timeout-ms", "KEYWARD_IDLE_TIMEOUT_MS"),
                Limit::RequestTimeout => ("request-timeout-ms", "KEYWARD_REQUEST_TIMEOUT_MS"),
            };
            CliError::Input(format!("--{flag} ({variable}) is invalid: {}", e.reason))
        })
    }
}

pub async fn run(args: ServeArgs) -> Result<(), CliError> {
    let limits = args.limits.limits()?;
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
    let listeners = if gateway.is_some() {
        Listeners::ApiAndGateway
    } else {
        Listeners::Api
    };
    let limits = open_files::fit(limits, listeners);
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

    let mut gateway_task = None;
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
        gateway_task = Some(tokio::spawn(keyward_http::serve(
            gateway,
            router,
            limits,
            gateway_shutdown,
        )));
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
    tracing::info!(
        %bound,
        max_connections = limits.max_connections,
        header_timeout_ms = limits.header_read_timeout.as_millis(),
        idle_timeout_ms = limits.idle_timeout.as_millis(),
        request_timeout_ms = limits.request_timeout.as_millis(),
        "serving"
    );
    let _poller = app.engine().spawn_background();
    // No stream here: the same aggregation as the aggregator function, in-process.
    let aggregator = app.aggregator();
    let _aggregation = aggregator.spawn(IN_PROCESS_INTERVAL);
    // No schedule here: the rotator's sweep, on a timer.
    let _sweep = app.spawn_sweep(rotation::IN_PROCESS_INTERVAL, config.expiry_warning);
    let engine = app.engine().clone();
    let router = keyward_http::router(app);
    let served = keyward_http::serve(listener, router, limits, shutdown).await;
    // The gateway heard the same signal; let its requests in flight finish too.
    if let Some(task) = gateway_task {
        match task.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::error!(error = %e, "the gateway stopped"),
            Err(e) => tracing::error!(error = %e, "the gateway stopped"),
        }
    }
    // Then what both counted since the last flush is written and rolled up.
    if let Err(e) = engine.flush_usage().await {
        tracing::error!(error = %e, "usage not written at shutdown");
    } else if let Err(e) = aggregator.apply_pending().await {
        tracing::error!(error = %e, "usage not rolled up at shutdown");
    }
    served.map_err(|e| CliError::Input(e.to_string()))?;
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
