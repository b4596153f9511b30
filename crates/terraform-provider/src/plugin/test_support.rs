//! Test helpers: client certificates and keys (P-256 from rcgen, P-521 built here as ring and
//! rcgen-on-ring cannot), a rustls client like go-plugin's, and a TLS handshake over TCP.

use std::fmt;
use std::io;
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::Duration;

use p521::ecdsa::signature::RandomizedSigner;
use p521::ecdsa::{Signature, VerifyingKey};
use p521::elliptic_curve::rand_core::{CryptoRng, RngCore};
use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair, PKCS_ECDSA_P256_SHA256};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{ring, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use rustls::sign::{CertifiedKey, SigningKey, SingleCertAndKey};
use rustls::{ClientConfig, DigitallySignedStruct, ServerConfig, SignatureScheme};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::{TlsAcceptor, TlsConnector, client, server};

/// The client certificate Terraform 1.11.4 handed to a plugin (public; its key is gone).
pub(crate) const FIXTURE_PEM: &str = include_str!("testdata/terraform-client.pem");

/// [`FIXTURE_PEM`] as DER.
pub(crate) fn fixture_client_certificate() -> CertificateDer<'static> {
    CertificateDer::from_pem_slice(FIXTURE_PEM.as_bytes()).expect("fixture PEM")
}

/// Randomness from ring (the provider rustls uses), for p521's signing.
#[derive(Debug)]
pub(crate) struct TestRng;

impl RngCore for TestRng {
    fn next_u32(&mut self) -> u32 {
        let mut bytes = [0; 4];
        self.fill_bytes(&mut bytes);
        u32::from_le_bytes(bytes)
    }

    fn next_u64(&mut self) -> u64 {
        let mut bytes = [0; 8];
        self.fill_bytes(&mut bytes);
        u64::from_le_bytes(bytes)
    }

    fn fill_bytes(&mut self, dest: &mut [u8]) {
        ring::default_provider()
            .secure_random
            .fill(dest)
            .expect("random bytes");
    }

    fn try_fill_bytes(
        &mut self,
        dest: &mut [u8],
    ) -> Result<(), p521::elliptic_curve::rand_core::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}

impl CryptoRng for TestRng {}

/// A new P-521 key.
pub(crate) fn p521_key() -> p521::ecdsa::SigningKey {
    let mut scalar = [0u8; 66];
    TestRng.fill_bytes(&mut scalar[1..]); // below 2^520, so below the group order
    p521::ecdsa::SigningKey::from_slice(&scalar).expect("P-521 scalar")
}

/// A P-521 key as rustls signs with it (ECDSA, SHA-512, DER), as Go's client does.
struct P521Key(Arc<p521::ecdsa::SigningKey>);

impl fmt::Debug for P521Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("P521Key")
    }
}

impl SigningKey for P521Key {
    fn choose_scheme(&self, offered: &[SignatureScheme]) -> Option<Box<dyn rustls::sign::Signer>> {
        offered
            .contains(&SignatureScheme::ECDSA_NISTP521_SHA512)
            .then(|| Box::new(P521Key(self.0.clone())) as Box<dyn rustls::sign::Signer>)
    }

    fn algorithm(&self) -> rustls::SignatureAlgorithm {
        rustls::SignatureAlgorithm::ECDSA
    }
}

impl rustls::sign::Signer for P521Key {
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, rustls::Error> {
        let signature: Signature = self.0.sign_with_rng(&mut TestRng, message);
        Ok(signature.to_der().as_bytes().to_vec())
    }

    fn scheme(&self) -> SignatureScheme {
        SignatureScheme::ECDSA_NISTP521_SHA512
    }
}

/// A DER element: tag, length, content.
fn der(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let length = content.len();
    if length < 0x80 {
        out.push(u8::try_from(length).expect("short"));
    } else if length < 0x100 {
        out.extend([0x81, u8::try_from(length).expect("one byte")]);
    } else {
        out.push(0x82);
        out.extend(u16::try_from(length).expect("two bytes").to_be_bytes());
    }
    out.extend_from_slice(content);
    out
}

fn sequence(parts: &[Vec<u8>]) -> Vec<u8> {
    der(0x30, &parts.concat())
}

/// A self-signed P-521 certificate shaped like Terraform's (CN localhost, CA:TRUE critical,
/// ecdsa-with-SHA512), written out by hand since rcgen on ring has no P-521.
fn p521_certificate(key: &p521::ecdsa::SigningKey) -> CertificateDer<'static> {
    let ecdsa_with_sha512 =
        sequence(&[der(0x06, &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x04])]);
    let name = sequence(&[der(
        0x31,
        &sequence(&[der(0x06, &[0x55, 0x04, 0x03]), der(0x0c, b"localhost")]),
    )]);
    let validity = sequence(&[der(0x17, b"250101000000Z"), der(0x18, b"20991231235959Z")]);
    let point = VerifyingKey::from(key).to_encoded_point(false);
    let spki = sequence(&[
        sequence(&[
            der(0x06, &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01]),
            der(0x06, &[0x2b, 0x81, 0x04, 0x00, 0x23]),
        ]),
        der(0x03, &[&[0x00], point.as_bytes()].concat()),
    ]);
    let basic_constraints = sequence(&[
        der(0x06, &[0x55, 0x1d, 0x13]),
        der(0x01, &[0xff]),
        der(0x04, &sequence(&[der(0x01, &[0xff])])),
    ]);
    let tbs = sequence(&[
        der(0xa0, &der(0x02, &[0x02])),
        der(0x02, &[0x01]),
        ecdsa_with_sha512.clone(),
        name.clone(),
        validity,
        name,
        spki,
        der(0xa3, &sequence(&[basic_constraints])),
    ]);
    let signature: Signature = key.sign_with_rng(&mut TestRng, &tbs);
    let signature = der(0x03, &[&[0x00], signature.to_der().as_bytes()].concat());
    CertificateDer::from(sequence(&[tbs, ecdsa_with_sha512, signature]))
}

/// A client certificate and key like Terraform's: P-521, self-signed, CA:TRUE.
pub(crate) fn p521_client() -> (CertificateDer<'static>, Arc<dyn SigningKey>) {
    let key = p521_key();
    let certificate = p521_certificate(&key);
    (certificate, Arc::new(P521Key(Arc::new(key))))
}

/// A client certificate and key like Terraform's but on P-256 (which ring signs with):
/// self-signed for localhost, CA:TRUE.
pub(crate) fn p256_client() -> (CertificateDer<'static>, Arc<dyn SigningKey>) {
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).expect("key");
    let mut params = CertificateParams::new(vec!["localhost".to_owned()]).expect("params");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let certificate = params.self_signed(&key).expect("certificate");
    let key = ring::default_provider()
        .key_provider
        .load_private_key(PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
            key.serialize_der(),
        )))
        .expect("rustls key");
    (certificate.der().clone(), key)
}

/// A P-256 certificate from rcgen (its key thrown away).
pub(crate) fn rcgen_certificate_der() -> CertificateDer<'static> {
    p256_client().0
}

/// What go-plugin's client trusts: exactly the certificate of the handshake line.
#[derive(Debug)]
struct PinnedServer(CertificateDer<'static>);

impl ServerCertVerifier for PinnedServer {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let localhost = ServerName::try_from("localhost").expect("name");
        if end_entity.as_ref() == self.0.as_ref()
            && intermediates.is_empty()
            && *server_name == localhost
        {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::General(
                "not the server's certificate".to_owned(),
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let algorithms = ring::default_provider().signature_verification_algorithms;
        verify_tls12_signature(message, cert, dss, &algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let algorithms = ring::default_provider().signature_verification_algorithms;
        verify_tls13_signature(message, cert, dss, &algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        ring::default_provider()
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// A client like go-plugin's: trusts `server` only, presents `certificate` signed with `key`,
/// offers ALPN h2.
pub(crate) fn client_config(
    server: &CertificateDer<'static>,
    certificate: CertificateDer<'static>,
    key: Arc<dyn SigningKey>,
) -> Arc<ClientConfig> {
    let resolver = SingleCertAndKey::from(CertifiedKey::new(vec![certificate], key));
    let mut config = ClientConfig::builder_with_provider(Arc::new(ring::default_provider()))
        .with_safe_default_protocol_versions()
        .expect("versions")
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(PinnedServer(server.clone())))
        .with_client_cert_resolver(Arc::new(resolver));
    config.alpn_protocols = vec![b"h2".to_vec()];
    Arc::new(config)
}

/// A client that presents no certificate.
pub(crate) fn anonymous_client_config(server: &CertificateDer<'static>) -> Arc<ClientConfig> {
    let mut config = ClientConfig::builder_with_provider(Arc::new(ring::default_provider()))
        .with_safe_default_protocol_versions()
        .expect("versions")
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(PinnedServer(server.clone())))
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec()];
    Arc::new(config)
}

/// Connects a TLS client to `addr` as go-plugin's would (server name "localhost").
pub(crate) async fn connect(
    address: std::net::SocketAddr,
    client: Arc<ClientConfig>,
) -> io::Result<client::TlsStream<TcpStream>> {
    let tcp = TcpStream::connect(address).await?;
    let localhost = ServerName::try_from("localhost").expect("name");
    TlsConnector::from(client).connect(localhost, tcp).await
}

/// Runs one TLS handshake over TCP on 127.0.0.1 between `server` and `client`, and answers
/// both sides' outcomes. (In TLS 1.3 the client finishes before the server has checked its
/// certificate: a refusal shows on the server side.)
pub(crate) async fn handshake(
    server: Arc<ServerConfig>,
    client: Arc<ClientConfig>,
) -> (
    io::Result<server::TlsStream<TcpStream>>,
    io::Result<client::TlsStream<TcpStream>>,
) {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .await
        .expect("bind");
    let address = listener.local_addr().expect("address");
    let server_side = async move {
        let (tcp, _) = listener.accept().await?;
        TlsAcceptor::from(server).accept(tcp).await
    };
    tokio::time::timeout(Duration::from_secs(30), async {
        tokio::join!(server_side, connect(address, client))
    })
    .await
    .expect("the handshake ends")
}
