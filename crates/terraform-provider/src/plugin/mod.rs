//! go-plugin's server side, as Terraform expects it of a provider.
//!
//! # The handshake
//!
//! Terraform starts the provider with, in its environment: the magic cookie
//! (`TF_PLUGIN_MAGIC_COOKIE`, to refuse being run by hand), the plugin protocol versions it
//! speaks (`PLUGIN_PROTOCOL_VERSIONS=6,5`; we speak 6 only), the ports a plugin may listen on
//! (`PLUGIN_MIN_PORT`, `PLUGIN_MAX_PORT`), and its client certificate (`PLUGIN_CLIENT_CERT`,
//! PEM: go-plugin's AutoMTLS). The provider listens on 127.0.0.1, makes itself a certificate,
//! and prints one line on standard output,
//!
//! ```text
//! 1|6|tcp|127.0.0.1:10000|grpc|MIIB...   (core version|protocol|network|address|gRPC|cert)
//! ```
//!
//! with its certificate's DER in unpadded standard base64. Terraform connects over TLS
//! trusting exactly that certificate (for the name `localhost`), presents its own, and calls
//! the provider over gRPC, plus go-plugin's controller (`Shutdown`, when Terraform is done:
//! the server stops once the calls under way have finished) and the health service. Nothing
//! else is ever written to standard output; logs go to standard error. An interrupt (Ctrl-C
//! reaches the whole process group) is ignored: Terraform finishes its calls and stops the
//! provider itself.
//!
//! # Why a verifier of our own
//!
//! Terraform's certificate is self-signed, ECDSA P-521 with SHA-512, and says CA:TRUE. rustls's
//! webpki verifier refuses a CA certificate as a client's end entity, and ring, our rustls
//! crypto, has no P-521. So the client certificate is pinned (accepted only byte for byte as
//! Terraform handed it over, which is what go-plugin's own server amounts to), and the TLS
//! handshake signatures are checked with ring's algorithms plus a P-521 one on RustCrypto's
//! `p521` (`ecdsa_p521.rs`).

mod ecdsa_p521;
mod handshake;
mod services;
#[cfg(test)]
mod test_support;
mod tls;

use std::convert::Infallible;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, mpsc};
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::Server;

use crate::proto::health::health_server::HealthServer;
use crate::proto::plugin::grpc_controller_server::GrpcControllerServer;
use crate::proto::tfplugin6::provider_server::{Provider, ProviderServer};
use handshake::Settings;
use services::{Controller, HealthCheck};
use tls::ServerIdentity;

/// The largest gRPC message either way, as Terraform's own providers allow (256 MiB): a plan
/// or a state can be large.
const MAX_MESSAGE_SIZE: usize = 256 << 20;

/// How long a client has to finish its TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The pause after a failed `accept` (out of file descriptors, say), so as not to spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// TLS connections established and not yet taken by the gRPC server.
const CONNECTION_QUEUE: usize = 16;

/// Why the provider could not be served.
#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    /// The magic cookie is missing or wrong: not started by Terraform.
    #[error(
        "This binary is a plugin for Terraform. It is not meant to be run directly; see docs/terraform.md"
    )]
    NotStartedByTerraform,
    /// Terraform does not offer plugin protocol 6.
    #[error(
        "Terraform offers plugin protocol versions {offered:?} (PLUGIN_PROTOCOL_VERSIONS), but this provider speaks only version 6: use Terraform 1.0 or later"
    )]
    UnsupportedProtocol {
        /// `PLUGIN_PROTOCOL_VERSIONS` as Terraform set it (empty when unset).
        offered: String,
    },
    /// `PLUGIN_CLIENT_CERT` is unset or empty.
    #[error(
        "PLUGIN_CLIENT_CERT is not set: Terraform hands its plugins a client certificate (go-plugin's AutoMTLS), and this provider serves only over mutual TLS"
    )]
    MissingClientCertificate,
    /// `PLUGIN_CLIENT_CERT` is not a PEM certificate rustls can read.
    #[error("PLUGIN_CLIENT_CERT is not a usable PEM certificate: {reason}")]
    InvalidClientCertificate {
        /// What is wrong with it.
        reason: String,
    },
    /// `PLUGIN_MIN_PORT` or `PLUGIN_MAX_PORT` is not a port number.
    #[error("{variable} is not a port number (0 to 65535): {value:?}")]
    InvalidPort {
        /// The variable.
        variable: &'static str,
        /// Its value.
        value: String,
    },
    /// `PLUGIN_MIN_PORT` is above `PLUGIN_MAX_PORT`.
    #[error("PLUGIN_MIN_PORT ({min}) is greater than PLUGIN_MAX_PORT ({max})")]
    InvalidPortRange {
        /// `PLUGIN_MIN_PORT`.
        min: u16,
        /// `PLUGIN_MAX_PORT`.
        max: u16,
    },
    /// No port of the range could be listened on.
    #[error("could not listen on 127.0.0.1 {}: {source}", ports(*.min, *.max))]
    NoFreePort {
        /// The lowest port tried.
        min: u16,
        /// The highest port tried.
        max: u16,
        /// The last port's error.
        source: io::Error,
    },
    /// The listener's address could not be read.
    #[error("could not read the listening address: {source}")]
    Listen {
        /// The error.
        source: io::Error,
    },
    /// The provider's own certificate could not be made.
    #[error("could not generate the provider's TLS certificate: {source}")]
    ServerCertificate {
        /// rcgen's error.
        source: rcgen::Error,
    },
    /// rustls refused the TLS configuration.
    #[error("could not configure TLS: {source}")]
    Tls {
        /// rustls's error.
        source: rustls::Error,
    },
    /// The handshake line could not be written.
    #[error("could not write the handshake line for Terraform on standard output: {source}")]
    Announce {
        /// The error.
        source: io::Error,
    },
    /// The interrupt handler could not be installed.
    #[error("could not install the interrupt handler: {source}")]
    Signal {
        /// The error.
        source: io::Error,
    },
    /// The gRPC server failed.
    #[error("the provider's gRPC server failed: {source}")]
    Serve {
        /// tonic's error.
        source: tonic::transport::Error,
    },
}

/// "on port N" or "on ports N to M", for [`PluginError::NoFreePort`].
fn ports(min: u16, max: u16) -> String {
    if min == max {
        format!("port {min}")
    } else {
        format!("ports {min} to {max} (PLUGIN_MIN_PORT, PLUGIN_MAX_PORT)")
    }
}

/// Serves `provider` to the Terraform that started this process, until Terraform asks it to
/// stop (go-plugin's `Shutdown`).
///
/// When the process was not started by Terraform (no magic cookie), prints so on standard
/// error and answers [`PluginError::NotStartedByTerraform`] (whose text is that message). Any
/// other error is only answered.
pub async fn serve<P: Provider>(provider: P) -> Result<(), PluginError> {
    let settings = match Settings::from_env() {
        Ok(settings) => settings,
        Err(error @ PluginError::NotStartedByTerraform) => {
            eprintln!("{error}");
            return Err(error);
        }
        Err(error) => return Err(error),
    };
    let interrupts = ignore_interrupts()?;
    let served = serve_with(settings, provider, handshake::announce_on_stdout).await;
    if let Some(interrupts) = interrupts {
        interrupts.abort();
    }
    served
}

/// [`serve`] with the settings read and the line's destination given.
async fn serve_with<P: Provider>(
    settings: Settings,
    provider: P,
    announce: impl FnOnce(&str) -> io::Result<()>,
) -> Result<(), PluginError> {
    let identity = ServerIdentity::generate()?;
    let tls = tls::server_config(&identity, settings.client_certificates)?;
    let listener = handshake::bind(settings.ports).await?;
    let address = listener
        .local_addr()
        .map_err(|source| PluginError::Listen { source })?;

    let (connections, incoming) = mpsc::channel(CONNECTION_QUEUE);
    let accepting = tokio::spawn(accept(listener, TlsAcceptor::from(tls), connections));
    let line = handshake::handshake_line(address, identity.certificate());
    if let Err(source) = announce(&line) {
        accepting.abort();
        return Err(PluginError::Announce { source });
    }
    tracing::info!(%address, "serving Terraform plugin protocol 6");

    let shutdown = Arc::new(Notify::new());
    let stop = {
        let shutdown = shutdown.clone();
        async move { shutdown.notified().await }
    };
    let served = Server::builder()
        .add_service(
            ProviderServer::new(provider)
                .max_decoding_message_size(MAX_MESSAGE_SIZE)
                .max_encoding_message_size(MAX_MESSAGE_SIZE),
        )
        .add_service(GrpcControllerServer::new(Controller::new(shutdown)))
        .add_service(HealthServer::new(HealthCheck))
        .serve_with_incoming_shutdown(ReceiverStream::new(incoming), stop)
        .await;
    accepting.abort();
    served.map_err(|source| PluginError::Serve { source })?;
    tracing::info!("the provider has stopped");
    Ok(())
}

/// Accepts connections and does each one's TLS handshake in a task of its own, handing the
/// established ones to the gRPC server; a failed handshake is logged and dropped. Ends when the
/// server is gone.
async fn accept(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    connections: mpsc::Sender<Result<TlsStream<TcpStream>, Infallible>>,
) {
    loop {
        let (tcp, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                tracing::warn!(%error, "could not accept a connection");
                tokio::time::sleep(ACCEPT_BACKOFF).await;
                continue;
            }
        };
        if connections.is_closed() {
            return;
        }
        if let Err(error) = tcp.set_nodelay(true) {
            tracing::debug!(%peer, %error, "could not set TCP_NODELAY");
        }
        let acceptor = acceptor.clone();
        let connections = connections.clone();
        tokio::spawn(async move {
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                Ok(Ok(stream)) => {
                    tracing::debug!(%peer, "TLS connection established");
                    if connections.send(Ok(stream)).await.is_err() {
                        tracing::debug!(%peer, "the server has stopped; connection dropped");
                    }
                }
                Ok(Err(error)) => tracing::warn!(%peer, %error, "TLS handshake failed"),
                Err(_) => tracing::warn!(%peer, "TLS handshake timed out"),
            }
        });
    }
}

/// Ignores interrupts (logging them): Terraform passes Ctrl-C on to the whole process group,
/// then finishes its calls and stops the provider with `Shutdown`.
fn ignore_interrupts() -> Result<Option<JoinHandle<()>>, PluginError> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut interrupts =
            signal(SignalKind::interrupt()).map_err(|source| PluginError::Signal { source })?;
        Ok(Some(tokio::spawn(async move {
            while interrupts.recv().await.is_some() {
                tracing::info!("interrupt ignored: Terraform stops the provider when it is done");
            }
        })))
    }
    #[cfg(windows)]
    {
        let mut interrupts =
            tokio::signal::windows::ctrl_c().map_err(|source| PluginError::Signal { source })?;
        Ok(Some(tokio::spawn(async move {
            while interrupts.recv().await.is_some() {
                tracing::info!("interrupt ignored: Terraform stops the provider when it is done");
            }
        })))
    }
    #[cfg(not(any(unix, windows)))]
    {
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugin::test_support::{
        anonymous_client_config, client_config, connect, p256_client, p521_client,
    };
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD_NO_PAD;
    use bytes::Bytes;
    use handshake::PortRange;
    use rustls::pki_types::CertificateDer;
    use std::net::SocketAddr;
    use tokio::io::{AsyncRead, AsyncWrite};
    use tokio::sync::oneshot;

    /// A provider that implements nothing (every call answers "unimplemented").
    #[derive(Debug)]
    struct Unimplemented;

    #[tonic::async_trait]
    impl Provider for Unimplemented {}

    /// Starts [`serve_with`] on port 0 for a client with `client_certificate`, and answers the
    /// server's task, the address and the certificate from its handshake line.
    async fn start(
        client_certificate: CertificateDer<'static>,
    ) -> (
        JoinHandle<Result<(), PluginError>>,
        SocketAddr,
        CertificateDer<'static>,
    ) {
        let settings = Settings {
            ports: PortRange { min: 0, max: 0 },
            client_certificates: vec![client_certificate],
        };
        let (line_tx, line_rx) = oneshot::channel();
        let server = tokio::spawn(serve_with(settings, Unimplemented, move |line: &str| {
            line_tx
                .send(line.to_owned())
                .map_err(|_| io::Error::other("nobody listens"))
        }));
        let line = tokio::time::timeout(Duration::from_secs(30), line_rx)
            .await
            .expect("a line in time")
            .expect("a line");
        let fields: Vec<&str> = line.split('|').collect();
        assert_eq!(fields[..3], ["1", "6", "tcp"], "{line}");
        assert_eq!(fields[4], "grpc", "{line}");
        let address: SocketAddr = fields[3].parse().expect("address");
        assert!(address.ip().is_loopback());
        let certificate = STANDARD_NO_PAD.decode(fields[5]).expect("base64");
        (server, address, CertificateDer::from(certificate))
    }

    /// One unary gRPC call over raw HTTP/2: answers `grpc-status` and the response body.
    async fn call(
        client: &h2::client::SendRequest<Bytes>,
        path: &str,
        message: &[u8],
    ) -> (String, Vec<u8>) {
        let mut client = client.clone().ready().await.expect("ready");
        let request = http::Request::builder()
            .method("POST")
            .uri(format!("https://localhost{path}"))
            .header("content-type", "application/grpc")
            .header("te", "trailers")
            .body(())
            .expect("request");
        let (response, mut body) = client.send_request(request, false).expect("send");
        let mut frame = vec![0];
        frame.extend(u32::try_from(message.len()).expect("small").to_be_bytes());
        frame.extend_from_slice(message);
        body.send_data(Bytes::from(frame), true).expect("data");

        let response = response.await.expect("response");
        let status_in_headers = response.headers().get("grpc-status").cloned();
        let mut body = response.into_body();
        let mut data = Vec::new();
        while let Some(chunk) = body.data().await {
            let chunk = chunk.expect("chunk");
            let _ = body.flow_control().release_capacity(chunk.len());
            data.extend_from_slice(&chunk);
        }
        let trailers = body.trailers().await.expect("trailers");
        let status = trailers
            .and_then(|trailers| trailers.get("grpc-status").cloned())
            .or(status_in_headers)
            .expect("grpc-status");
        (status.to_str().expect("ascii").to_owned(), data)
    }

    async fn h2_client<T>(tls: T) -> h2::client::SendRequest<Bytes>
    where
        T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let (client, connection) = h2::client::handshake(tls).await.expect("HTTP/2");
        tokio::spawn(connection);
        client
    }

    /// Whether a gRPC call over `tls` fails for want of a connection (a call that reaches the
    /// server gets an answer, if only an error status).
    async fn is_refused(tls: io::Result<tokio_rustls::client::TlsStream<TcpStream>>) -> bool {
        let Ok(tls) = tls else {
            return true;
        };
        let outcome = tokio::time::timeout(Duration::from_secs(30), async {
            let (client, connection) = h2::client::handshake(tls).await?;
            tokio::spawn(connection);
            let mut client = client.ready().await?;
            let request = http::Request::builder()
                .method("POST")
                .uri("https://localhost/grpc.health.v1.Health/Check")
                .header("content-type", "application/grpc")
                .body(())
                .expect("request");
            let (response, _) = client.send_request(request, true)?;
            response.await
        })
        .await
        .expect("an outcome in time");
        outcome.is_err()
    }

    #[tokio::test]
    async fn terraform_connects_calls_and_shuts_the_provider_down() {
        let (certificate, key) = p256_client();
        let (server, address, server_certificate) = start(certificate.clone()).await;

        // Strangers are refused (the server drops the connection), and the server carries on.
        let (other, other_key) = p256_client();
        let stranger = connect(
            address,
            client_config(&server_certificate, other, other_key),
        )
        .await;
        assert!(is_refused(stranger).await);
        let anonymous = connect(address, anonymous_client_config(&server_certificate)).await;
        assert!(is_refused(anonymous).await);

        // (and is_refused tells a working connection apart)
        let welcome = connect(
            address,
            client_config(&server_certificate, certificate.clone(), key.clone()),
        )
        .await;
        assert!(!is_refused(welcome).await);

        let tls = connect(
            address,
            client_config(&server_certificate, certificate, key),
        )
        .await
        .expect("TLS");
        assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
        let client = h2_client(tls).await;

        // go-plugin's ping.
        let (status, body) = call(&client, "/grpc.health.v1.Health/Check", b"\x0a\x06plugin").await;
        assert_eq!(status, "0");
        assert_eq!(body, [0, 0, 0, 0, 2, 0x08, 0x01]); // status: SERVING

        // The provider service is there (this one implements nothing).
        let (status, _) = call(&client, "/tfplugin6.Provider/GetProviderSchema", b"").await;
        assert_eq!(status, "12");
        // go-plugin's services that are not: unimplemented, which go-plugin tolerates.
        let (status, _) = call(&client, "/plugin.GRPCStdio/StreamStdio", b"").await;
        assert_eq!(status, "12");

        assert!(!server.is_finished());
        let (status, body) = call(&client, "/plugin.GRPCController/Shutdown", b"").await;
        assert_eq!(status, "0");
        assert_eq!(body, [0, 0, 0, 0, 0]);
        let served = tokio::time::timeout(Duration::from_secs(30), server)
            .await
            .expect("stops after Shutdown")
            .expect("task");
        assert!(served.is_ok(), "{served:?}");
    }

    #[tokio::test]
    async fn a_p521_client_like_terraform_is_served() {
        let (certificate, key) = p521_client();
        let (server, address, server_certificate) = start(certificate.clone()).await;
        let tls = connect(
            address,
            client_config(&server_certificate, certificate, key),
        )
        .await
        .expect("TLS");
        let client = h2_client(tls).await;
        let (status, _) = call(&client, "/grpc.health.v1.Health/Check", b"").await;
        assert_eq!(status, "0");
        let (status, _) = call(&client, "/plugin.GRPCController/Shutdown", b"").await;
        assert_eq!(status, "0");
        tokio::time::timeout(Duration::from_secs(30), server)
            .await
            .expect("stops")
            .expect("task")
            .expect("served");
    }

    #[tokio::test]
    async fn a_failed_announcement_is_an_error() {
        let (certificate, _) = p256_client();
        let settings = Settings {
            ports: PortRange { min: 0, max: 0 },
            client_certificates: vec![certificate],
        };
        let error = serve_with(settings, Unimplemented, |_| Err(io::Error::other("closed")))
            .await
            .expect_err("refused");
        assert!(matches!(error, PluginError::Announce { .. }), "{error}");
    }

    /// Ctrl-C reaches the provider too (the whole process group): it carries on.
    #[cfg(unix)]
    #[tokio::test]
    async fn an_interrupt_is_survived() {
        let handler = ignore_interrupts().expect("handler").expect("a task");
        for _ in 0..3 {
            rustix::process::kill_process(rustix::process::getpid(), rustix::process::Signal::INT)
                .expect("kill");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // Still here (the default action would have ended the test process), still listening.
        assert!(!handler.is_finished());
        handler.abort();
    }

    #[test]
    fn errors_read_well() {
        let error = PluginError::NoFreePort {
            min: 10000,
            max: 25000,
            source: io::Error::other("address in use"),
        };
        assert_eq!(
            error.to_string(),
            "could not listen on 127.0.0.1 ports 10000 to 25000 (PLUGIN_MIN_PORT, PLUGIN_MAX_PORT): address in use"
        );
        assert_eq!(
            PluginError::NotStartedByTerraform.to_string(),
            "This binary is a plugin for Terraform. It is not meant to be run directly; see docs/terraform.md"
        );
    }
}
