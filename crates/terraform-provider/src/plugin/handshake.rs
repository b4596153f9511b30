//! go-plugin's handshake, the plugin's half: what Terraform says in the environment, the
//! listener, and the one line the plugin answers on standard output.

use std::io::{self, Write};
use std::net::{Ipv4Addr, SocketAddr};

use base64::Engine;
use base64::engine::general_purpose::STANDARD_NO_PAD;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use tokio::net::TcpListener;

use super::PluginError;

/// The variable Terraform sets to tell a plugin it was started by Terraform.
pub(crate) const MAGIC_COOKIE_KEY: &str = "TF_PLUGIN_MAGIC_COOKIE";
/// Terraform's magic cookie (the same for every provider and every Terraform since 0.12).
pub(crate) const MAGIC_COOKIE_VALUE: &str =
    "d602bf8f470bc67ca7faa0386276bbdd4330efaf76d1a219cb4d6991ca9872b2";
/// The plugin protocol versions Terraform speaks, comma-separated (`6,5`).
pub(crate) const PROTOCOL_VERSIONS_KEY: &str = "PLUGIN_PROTOCOL_VERSIONS";
/// The lowest port Terraform lets its plugins listen on.
pub(crate) const MIN_PORT_KEY: &str = "PLUGIN_MIN_PORT";
/// The highest port Terraform lets its plugins listen on.
pub(crate) const MAX_PORT_KEY: &str = "PLUGIN_MAX_PORT";
/// Terraform's client certificate (PEM), to which the TLS is pinned.
pub(crate) const CLIENT_CERT_KEY: &str = "PLUGIN_CLIENT_CERT";

/// go-plugin's own protocol version, the first field of the handshake line.
pub(crate) const CORE_PROTOCOL_VERSION: u32 = 1;
/// The Terraform plugin protocol this provider speaks (`tfplugin6`).
pub(crate) const PROTOCOL_VERSION: u32 = 6;

/// What Terraform asked for in the environment, checked.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    /// Where to listen.
    pub(crate) ports: PortRange,
    /// The certificates a client may present (Terraform sends one).
    pub(crate) client_certificates: Vec<CertificateDer<'static>>,
}

/// The ports to try, in order, `min..=max`; `0..=0` lets the system choose.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PortRange {
    pub(crate) min: u16,
    pub(crate) max: u16,
}

impl Settings {
    /// Reads the process environment.
    pub(crate) fn from_env() -> Result<Self, PluginError> {
        Self::from_lookup(|key| std::env::var(key).ok())
    }

    /// Reads the environment through `lookup`: the cookie first (anything else is moot when it
    /// is wrong), then the protocol versions, the ports and the client certificate.
    pub(crate) fn from_lookup(
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, PluginError> {
        if lookup(MAGIC_COOKIE_KEY).as_deref() != Some(MAGIC_COOKIE_VALUE) {
            return Err(PluginError::NotStartedByTerraform);
        }
        let versions = lookup(PROTOCOL_VERSIONS_KEY).unwrap_or_default();
        if !offers_protocol(&versions, PROTOCOL_VERSION) {
            return Err(PluginError::UnsupportedProtocol { offered: versions });
        }
        let min = port(MIN_PORT_KEY, lookup(MIN_PORT_KEY))?;
        let max = port(MAX_PORT_KEY, lookup(MAX_PORT_KEY))?;
        if min > max {
            return Err(PluginError::InvalidPortRange { min, max });
        }
        let pem = lookup(CLIENT_CERT_KEY).unwrap_or_default();
        if pem.trim().is_empty() {
            return Err(PluginError::MissingClientCertificate);
        }
        Ok(Self {
            ports: PortRange { min, max },
            client_certificates: certificates(&pem)?,
        })
    }
}

/// Whether the comma-separated `versions` include `version` (go-plugin skips entries that are
/// not numbers).
fn offers_protocol(versions: &str, version: u32) -> bool {
    versions
        .split(',')
        .any(|offered| offered.trim().parse::<u32>() == Ok(version))
}

/// A port variable: absent or empty is 0, as in go-plugin.
fn port(variable: &'static str, value: Option<String>) -> Result<u16, PluginError> {
    match value.as_deref().map(str::trim) {
        None | Some("") => Ok(0),
        Some(text) => text.parse().map_err(|_| PluginError::InvalidPort {
            variable,
            value: text.to_owned(),
        }),
    }
}

/// The certificates of a PEM text; at least one.
fn certificates(pem: &str) -> Result<Vec<CertificateDer<'static>>, PluginError> {
    let certificates = CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| PluginError::InvalidClientCertificate {
            reason: error.to_string(),
        })?;
    if certificates.is_empty() {
        return Err(PluginError::InvalidClientCertificate {
            reason: "no CERTIFICATE block in it".to_owned(),
        });
    }
    Ok(certificates)
}

/// Listens on 127.0.0.1 on the first free port of `ports`, in order, as go-plugin does.
pub(crate) async fn bind(ports: PortRange) -> Result<TcpListener, PluginError> {
    let mut last_error = None;
    for port in ports.min..=ports.max {
        match TcpListener::bind((Ipv4Addr::LOCALHOST, port)).await {
            Ok(listener) => return Ok(listener),
            Err(error) => last_error = Some(error),
        }
    }
    Err(PluginError::NoFreePort {
        min: ports.min,
        max: ports.max,
        source: last_error.unwrap_or_else(|| io::Error::other("no port in the range")),
    })
}

/// The line Terraform reads: `1|6|tcp|127.0.0.1:PORT|grpc|CERT`, the certificate being our
/// DER in standard base64 without padding (Go's `RawStdEncoding`).
pub(crate) fn handshake_line(address: SocketAddr, certificate: &CertificateDer<'_>) -> String {
    format!(
        "{CORE_PROTOCOL_VERSION}|{PROTOCOL_VERSION}|tcp|{address}|grpc|{}",
        STANDARD_NO_PAD.encode(certificate.as_ref())
    )
}

/// Writes the handshake line on standard output, and flushes it: the only thing this process
/// ever writes there.
pub(crate) fn announce_on_stdout(line: &str) -> io::Result<()> {
    let mut stdout = io::stdout().lock();
    stdout.write_all(line.as_bytes())?;
    stdout.write_all(b"\n")?;
    stdout.flush()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugin::test_support::{FIXTURE_PEM, fixture_client_certificate};
    use std::collections::HashMap;

    fn terraform_env() -> HashMap<&'static str, String> {
        HashMap::from([
            (MAGIC_COOKIE_KEY, MAGIC_COOKIE_VALUE.to_owned()),
            (PROTOCOL_VERSIONS_KEY, "6,5".to_owned()),
            (MIN_PORT_KEY, "10000".to_owned()),
            (MAX_PORT_KEY, "25000".to_owned()),
            (CLIENT_CERT_KEY, FIXTURE_PEM.to_owned()),
        ])
    }

    fn settings(env: &HashMap<&'static str, String>) -> Result<Settings, PluginError> {
        Settings::from_lookup(|key| env.get(key).cloned())
    }

    #[test]
    fn terraforms_environment_is_read() {
        let settings = settings(&terraform_env()).expect("settings");
        assert_eq!(
            settings.ports,
            PortRange {
                min: 10000,
                max: 25000
            }
        );
        assert_eq!(
            settings.client_certificates,
            vec![fixture_client_certificate()]
        );
    }

    #[test]
    fn a_missing_or_wrong_cookie_is_refused() {
        let mut env = terraform_env();
        env.remove(MAGIC_COOKIE_KEY);
        let error = settings(&env).expect_err("refused");
        assert!(matches!(error, PluginError::NotStartedByTerraform));
        assert!(
            error.to_string().contains("not meant to be run directly"),
            "{error}"
        );
        assert!(error.to_string().contains("docs/terraform.md"), "{error}");

        env.insert(MAGIC_COOKIE_KEY, "d602bf8f".to_owned());
        assert!(matches!(
            settings(&env),
            Err(PluginError::NotStartedByTerraform)
        ));
        // The cookie is checked before anything else.
        let only_wrong_cookie = HashMap::from([(MAGIC_COOKIE_KEY, String::new())]);
        assert!(matches!(
            settings(&only_wrong_cookie),
            Err(PluginError::NotStartedByTerraform)
        ));
    }

    #[test]
    fn protocol_6_must_be_offered() {
        let mut env = terraform_env();
        for offered in ["6", "5,6", " 5 , 6 ", "x,6", "7,6,5"] {
            env.insert(PROTOCOL_VERSIONS_KEY, offered.to_owned());
            assert!(settings(&env).is_ok(), "{offered}");
        }
        for offered in ["5", "4,5", "", "60", "6.0", "16"] {
            env.insert(PROTOCOL_VERSIONS_KEY, offered.to_owned());
            let error = settings(&env).expect_err(offered);
            assert!(
                matches!(&error, PluginError::UnsupportedProtocol { offered: o } if o == offered),
                "{offered}: {error}"
            );
            assert!(error.to_string().contains("only version 6"), "{error}");
        }
        env.remove(PROTOCOL_VERSIONS_KEY);
        assert!(matches!(
            settings(&env),
            Err(PluginError::UnsupportedProtocol { .. })
        ));
    }

    #[test]
    fn ports_default_to_zero_and_are_checked() {
        let mut env = terraform_env();
        env.remove(MIN_PORT_KEY);
        env.remove(MAX_PORT_KEY);
        assert_eq!(
            settings(&env).expect("settings").ports,
            PortRange { min: 0, max: 0 }
        );

        env.insert(MIN_PORT_KEY, "20000".to_owned());
        env.insert(MAX_PORT_KEY, "10000".to_owned());
        assert!(matches!(
            settings(&env),
            Err(PluginError::InvalidPortRange {
                min: 20000,
                max: 10000
            })
        ));

        env.insert(MAX_PORT_KEY, "70000".to_owned());
        let error = settings(&env).expect_err("not a port");
        assert!(
            matches!(&error, PluginError::InvalidPort { variable, value } if *variable == MAX_PORT_KEY && value == "70000"),
            "{error}"
        );
        env.insert(MAX_PORT_KEY, "-1".to_owned());
        assert!(matches!(
            settings(&env),
            Err(PluginError::InvalidPort { .. })
        ));
    }

    #[test]
    fn the_client_certificate_is_required_and_read() {
        let mut env = terraform_env();
        env.remove(CLIENT_CERT_KEY);
        assert!(matches!(
            settings(&env),
            Err(PluginError::MissingClientCertificate)
        ));
        env.insert(CLIENT_CERT_KEY, "  \n".to_owned());
        assert!(matches!(
            settings(&env),
            Err(PluginError::MissingClientCertificate)
        ));
        env.insert(CLIENT_CERT_KEY, "not a certificate".to_owned());
        assert!(matches!(
            settings(&env),
            Err(PluginError::InvalidClientCertificate { .. })
        ));
        let broken = FIXTURE_PEM.replace("-----END CERTIFICATE-----", "");
        env.insert(CLIENT_CERT_KEY, broken);
        assert!(matches!(
            settings(&env),
            Err(PluginError::InvalidClientCertificate { .. })
        ));
    }

    #[tokio::test]
    async fn the_first_free_port_of_the_range_is_taken() {
        let taken = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .expect("bind");
        let port = taken.local_addr().expect("address").port();
        let Some(max) = port.checked_add(20) else {
            return; // at the very top of the port space: nothing above to try
        };

        let error = bind(PortRange {
            min: port,
            max: port,
        })
        .await
        .expect_err("taken");
        assert!(matches!(error, PluginError::NoFreePort { .. }), "{error}");

        let listener = bind(PortRange { min: port, max })
            .await
            .expect("a free port");
        let address = listener.local_addr().expect("address");
        assert!(address.ip().is_loopback());
        assert!((port + 1..=max).contains(&address.port()), "{address}");
    }

    #[tokio::test]
    async fn zero_lets_the_system_choose() {
        let listener = bind(PortRange { min: 0, max: 0 }).await.expect("bind");
        let address = listener.local_addr().expect("address");
        assert_eq!(address.ip(), Ipv4Addr::LOCALHOST);
        assert_ne!(address.port(), 0);
    }

    #[test]
    fn the_handshake_line_is_go_plugins() {
        let certificate = CertificateDer::from(vec![0x30, 0x82, 0x01, 0xff, 0xfe, 0x00, 0x7f]);
        let address = SocketAddr::from((Ipv4Addr::LOCALHOST, 10123));
        let line = handshake_line(address, &certificate);
        assert_eq!(line, "1|6|tcp|127.0.0.1:10123|grpc|MIIB//4Afw");

        let fields: Vec<&str> = line.split('|').collect();
        assert_eq!(fields.len(), 6);
        assert!(!line.contains('=') && !line.contains('\n'));
        let decoded = STANDARD_NO_PAD.decode(fields[5]).expect("base64");
        assert_eq!(decoded, certificate.as_ref());
    }

    #[test]
    fn a_real_certificate_round_trips_through_the_line() {
        for certificate in [
            fixture_client_certificate(),
            crate::plugin::test_support::rcgen_certificate_der(),
        ] {
            let address = SocketAddr::from((Ipv4Addr::LOCALHOST, 25000));
            let line = handshake_line(address, &certificate);
            let encoded = line.rsplit('|').next().expect("field");
            assert!(!encoded.ends_with('='));
            assert!(!encoded.contains(['-', '_']));
            let decoded = STANDARD_NO_PAD.decode(encoded).expect("base64");
            assert_eq!(decoded, certificate.as_ref());
        }
    }
}
