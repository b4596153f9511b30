//! The mutual TLS of go-plugin's AutoMTLS: the provider's own certificate, generated at
//! start-up and handed to Terraform in the handshake line, and the client side pinned to the
//! one certificate Terraform handed over in `PLUGIN_CLIENT_CERT`.

use std::fmt;
use std::sync::{Arc, LazyLock};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose, PKCS_ECDSA_P256_SHA256,
};
use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::{
    WebPkiSupportedAlgorithms, ring, verify_tls12_signature, verify_tls13_signature,
};
use rustls::pki_types::{
    CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, SignatureVerificationAlgorithm, UnixTime,
};
use rustls::server::ParsedCertificate;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{CertificateError, DigitallySignedStruct, ServerConfig, SignatureScheme};
use time::{Duration, OffsetDateTime};

use super::PluginError;
use super::ecdsa_p521::ECDSA_P521_SHA512;

/// The name both certificates are for, and the one Terraform checks ours against.
const SERVER_NAME: &str = "localhost";

/// go-plugin backdates its certificate by 30 seconds, for clocks a little apart.
const BACKDATE: Duration = Duration::seconds(30);

/// go-plugin's certificates are valid for 262,980 hours (30 years).
const VALIDITY: Duration = Duration::hours(262_980);

/// The provider's TLS identity for this run: a self-signed certificate for `localhost` and its
/// P-256 key, made at start-up and never stored.
pub(crate) struct ServerIdentity {
    certificate: CertificateDer<'static>,
    key: PrivatePkcs8KeyDer<'static>,
}

impl fmt::Debug for ServerIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerIdentity")
            .field("certificate", &self.certificate)
            .field("key", &"[redacted]")
            .finish()
    }
}

impl ServerIdentity {
    /// A new key and certificate shaped like go-plugin's own: CA:TRUE (Terraform trusts it as
    /// the root of a one-certificate chain), both TLS usages, `localhost`, 30 years from 30
    /// seconds ago.
    pub(crate) fn generate() -> Result<Self, PluginError> {
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)
            .map_err(|source| PluginError::ServerCertificate { source })?;
        let mut params = CertificateParams::new(vec![SERVER_NAME.to_owned()])
            .map_err(|source| PluginError::ServerCertificate { source })?;
        let mut name = DistinguishedName::new();
        name.push(DnType::OrganizationName, "keyward");
        name.push(DnType::CommonName, SERVER_NAME);
        params.distinguished_name = name;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
            KeyUsagePurpose::KeyAgreement,
            KeyUsagePurpose::KeyCertSign,
        ];
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        params.not_before = OffsetDateTime::now_utc() - BACKDATE;
        params.not_after = params.not_before + VALIDITY;
        let certificate = params
            .self_signed(&key)
            .map_err(|source| PluginError::ServerCertificate { source })?;
        Ok(Self {
            certificate: certificate.der().clone(),
            key: PrivatePkcs8KeyDer::from(key.serialize_der()),
        })
    }

    /// The certificate (DER), as the handshake line carries it.
    pub(crate) fn certificate(&self) -> &CertificateDer<'static> {
        &self.certificate
    }
}

/// The server side of the TLS: TLS 1.3 on ring, ALPN `h2` (gRPC), our certificate, and a
/// client certificate required and pinned to `client_certificates`.
pub(crate) fn server_config(
    identity: &ServerIdentity,
    client_certificates: Vec<CertificateDer<'static>>,
) -> Result<Arc<ServerConfig>, PluginError> {
    let verifier = PinnedClientCertificate::new(client_certificates)?;
    let mut config = ServerConfig::builder_with_provider(Arc::new(ring::default_provider()))
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|source| PluginError::Tls { source })?
        .with_client_cert_verifier(Arc::new(verifier))
        .with_single_cert(
            vec![identity.certificate.clone()],
            PrivateKeyDer::Pkcs8(identity.key.clone_key()),
        )
        .map_err(|source| PluginError::Tls { source })?;
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(Arc::new(config))
}

/// Accepts exactly the certificates Terraform handed over (byte for byte, without
/// intermediates), and checks the handshake signatures made with their keys, P-521 included.
///
/// Not webpki's client verifier: it refuses Terraform's certificate as an end entity because
/// it says CA:TRUE, and ring cannot check its P-521 signatures. Pinning is what go-plugin's
/// own server amounts to (that certificate is its only root, and its own leaf).
#[derive(Debug)]
pub(crate) struct PinnedClientCertificate {
    pinned: Vec<CertificateDer<'static>>,
}

impl PinnedClientCertificate {
    /// Refuses an empty list and a certificate rustls cannot read (so a bad
    /// `PLUGIN_CLIENT_CERT` fails at start-up rather than at Terraform's first connection).
    pub(crate) fn new(pinned: Vec<CertificateDer<'static>>) -> Result<Self, PluginError> {
        if pinned.is_empty() {
            return Err(PluginError::MissingClientCertificate);
        }
        for certificate in &pinned {
            ParsedCertificate::try_from(certificate).map_err(|error| {
                PluginError::InvalidClientCertificate {
                    reason: error.to_string(),
                }
            })?;
        }
        Ok(Self { pinned })
    }
}

impl ClientCertVerifier for PinnedClientCertificate {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        true
    }

    /// No hints: with none, Go's client sends its one certificate without looking at issuers.
    fn root_hint_subjects(&self) -> &[rustls::DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let pinned = self
            .pinned
            .iter()
            .any(|certificate| certificate.as_ref() == end_entity.as_ref());
        if pinned && intermediates.is_empty() {
            Ok(ClientCertVerified::assertion())
        } else {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::ApplicationVerificationFailure,
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, signature_algorithms())
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, signature_algorithms())
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        signature_algorithms().supported_schemes()
    }
}

/// ring's signature algorithms, plus ECDSA P-521 SHA-512 (Terraform's client key).
pub(crate) fn signature_algorithms() -> &'static WebPkiSupportedAlgorithms {
    type Algorithms = &'static [&'static dyn SignatureVerificationAlgorithm];
    static P521: Algorithms = &[ECDSA_P521_SHA512];
    static ALL: LazyLock<Vec<&'static dyn SignatureVerificationAlgorithm>> = LazyLock::new(|| {
        let ring = ring::default_provider().signature_verification_algorithms;
        ring.all
            .iter()
            .copied()
            .chain([ECDSA_P521_SHA512])
            .collect()
    });
    static MAPPING: LazyLock<Vec<(SignatureScheme, Algorithms)>> = LazyLock::new(|| {
        let ring = ring::default_provider().signature_verification_algorithms;
        let mut mapping = ring.mapping.to_vec();
        mapping.push((SignatureScheme::ECDSA_NISTP521_SHA512, P521));
        mapping
    });
    static ALGORITHMS: LazyLock<WebPkiSupportedAlgorithms> =
        LazyLock::new(|| WebPkiSupportedAlgorithms {
            all: ALL.as_slice(),
            mapping: MAPPING.as_slice(),
        });
    &ALGORITHMS
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugin::test_support::{
        client_config, fixture_client_certificate, handshake, p256_client, p521_client,
        rcgen_certificate_der,
    };

    fn server(client: &CertificateDer<'static>) -> (ServerIdentity, Arc<ServerConfig>) {
        let identity = ServerIdentity::generate().expect("identity");
        let config = server_config(&identity, vec![client.clone()]).expect("config");
        (identity, config)
    }

    #[test]
    fn the_server_certificate_is_like_go_plugins() {
        let identity = ServerIdentity::generate().expect("identity");
        let parsed = ParsedCertificate::try_from(identity.certificate()).expect("parses");
        // P-256 key: id-ecPublicKey with prime256v1.
        let spki = parsed.subject_public_key_info();
        let p256_oid = [0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
        assert!(spki.as_ref().windows(p256_oid.len()).any(|w| w == p256_oid));
        let der = identity.certificate().as_ref();
        let contains = |needle: &[u8]| der.windows(needle.len()).any(|w| w == needle);
        // basicConstraints, critical, CA:TRUE.
        assert!(contains(&[
            0x06, 0x03, 0x55, 0x1d, 0x13, 0x01, 0x01, 0xff, 0x04, 0x05, 0x30, 0x03, 0x01, 0x01,
            0xff
        ]));
        // extKeyUsage serverAuth and clientAuth.
        assert!(contains(&[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x01]));
        assert!(contains(&[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x02]));
        // SAN dNSName "localhost".
        assert!(contains(b"\x82\x09localhost"));
        // A fresh key every run.
        let other = ServerIdentity::generate().expect("identity");
        assert_ne!(other.certificate(), identity.certificate());
        assert!(
            !format!("{identity:?}").contains(&format!("{:?}", identity.key.secret_pkcs8_der()))
        );
    }

    #[test]
    fn only_the_pinned_certificate_is_accepted() {
        let pinned = rcgen_certificate_der();
        let other = rcgen_certificate_der();
        let verifier = PinnedClientCertificate::new(vec![pinned.clone()]).expect("verifier");
        let now = UnixTime::now();
        assert!(verifier.verify_client_cert(&pinned, &[], now).is_ok());
        assert!(verifier.verify_client_cert(&other, &[], now).is_err());
        assert!(
            verifier
                .verify_client_cert(&pinned, std::slice::from_ref(&other), now)
                .is_err()
        );
        assert!(verifier.client_auth_mandatory());
        assert!(verifier.offer_client_auth());
    }

    #[test]
    fn terraforms_p521_certificate_is_read_and_pinned() {
        let terraform = fixture_client_certificate();
        let verifier = PinnedClientCertificate::new(vec![terraform.clone()]).expect("verifier");
        assert!(
            verifier
                .verify_client_cert(&terraform, &[], UnixTime::now())
                .is_ok()
        );
        assert!(
            verifier
                .verify_client_cert(&rcgen_certificate_der(), &[], UnixTime::now())
                .is_err()
        );
    }

    #[test]
    fn an_empty_or_unreadable_pin_is_refused() {
        assert!(matches!(
            PinnedClientCertificate::new(vec![]),
            Err(PluginError::MissingClientCertificate)
        ));
        assert!(matches!(
            PinnedClientCertificate::new(vec![CertificateDer::from(vec![
                0x30, 0x03, 0x02, 0x01, 0x01
            ])]),
            Err(PluginError::InvalidClientCertificate { .. })
        ));
    }

    #[test]
    fn p521_is_offered_besides_rings_schemes() {
        let verifier = PinnedClientCertificate::new(vec![rcgen_certificate_der()]).expect("v");
        let schemes = verifier.supported_verify_schemes();
        assert!(schemes.contains(&SignatureScheme::ECDSA_NISTP521_SHA512));
        assert!(schemes.contains(&SignatureScheme::ECDSA_NISTP256_SHA256));
        assert!(schemes.contains(&SignatureScheme::ED25519));
        let all = signature_algorithms().all;
        assert_eq!(
            all.len(),
            ring::default_provider()
                .signature_verification_algorithms
                .all
                .len()
                + 1
        );
    }

    #[tokio::test]
    async fn a_p256_client_with_the_pinned_certificate_connects() {
        let (cert, key) = p256_client();
        let (identity, config) = server(&cert);
        let client = client_config(identity.certificate(), cert, key);
        let (server, client) = handshake(config, client).await;
        let server = server.expect("server side of the handshake");
        client.expect("client side of the handshake");
        assert_eq!(server.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
        assert_eq!(
            server.get_ref().1.protocol_version(),
            Some(rustls::ProtocolVersion::TLSv1_3)
        );
    }

    #[tokio::test]
    async fn a_p521_client_like_terraform_connects() {
        let (cert, key) = p521_client();
        let (identity, config) = server(&cert);
        let client = client_config(identity.certificate(), cert, key);
        let (server, client) = handshake(config, client).await;
        server.expect("server side of the handshake");
        client.expect("client side of the handshake");
    }

    #[tokio::test]
    async fn a_client_with_another_certificate_is_refused() {
        let (pinned, _) = p256_client();
        let (other, other_key) = p256_client();
        let (identity, config) = server(&pinned);
        let client = client_config(identity.certificate(), other, other_key);
        let (server, _client) = handshake(config, client).await;
        let error = server.expect_err("refused");
        assert!(error.to_string().contains("certificate"), "{error}");
    }

    #[tokio::test]
    async fn a_p521_client_with_another_certificate_is_refused() {
        let (pinned, _) = p521_client();
        let (other, other_key) = p521_client();
        let (identity, config) = server(&pinned);
        let client = client_config(identity.certificate(), other, other_key);
        let (server, _client) = handshake(config, client).await;
        assert!(server.is_err());
    }

    /// The pinned certificate with a key that is not its own: the handshake signature fails.
    #[tokio::test]
    async fn the_pinned_certificate_with_another_key_is_refused() {
        for (pinned, other_key) in [
            (p521_client().0, p521_client().1),
            (p256_client().0, p256_client().1),
        ] {
            let (identity, config) = server(&pinned);
            let client = client_config(identity.certificate(), pinned, other_key);
            let (server, _client) = handshake(config, client).await;
            let error = server.expect_err("refused");
            let tls_error = error
                .get_ref()
                .and_then(|e| e.downcast_ref::<rustls::Error>());
            assert!(
                matches!(
                    tls_error,
                    Some(rustls::Error::InvalidCertificate(
                        CertificateError::BadSignature
                    ))
                ),
                "{error}"
            );
        }
    }
}
