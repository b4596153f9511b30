//! ECDSA on P-521 with SHA-512, the signature of Terraform's client certificate, for rustls's
//! handshake-signature checks. ring, rustls's crypto here, has no P-521: RustCrypto's `p521`
//! does the arithmetic.

use p521::ecdsa::signature::Verifier;
use p521::ecdsa::{Signature, VerifyingKey};
use rustls::pki_types::{
    AlgorithmIdentifier, InvalidSignature, SignatureVerificationAlgorithm, alg_id,
};

/// ECDSA over NIST P-521 with SHA-512 (TLS's `ecdsa_secp521r1_sha512`).
#[derive(Debug)]
pub(crate) struct EcdsaP521Sha512;

/// The one instance, as rustls's algorithm tables take it.
pub(crate) static ECDSA_P521_SHA512: &dyn SignatureVerificationAlgorithm = &EcdsaP521Sha512;

/// The first byte of an uncompressed SEC1 point.
const UNCOMPRESSED_POINT: u8 = 0x04;

impl SignatureVerificationAlgorithm for EcdsaP521Sha512 {
    /// `public_key` is the SubjectPublicKeyInfo's key (an uncompressed SEC1 point, as X.509 and
    /// TLS carry it), `signature` a DER `ECDSA-Sig-Value`; `message` is hashed with SHA-512.
    fn verify_signature(
        &self,
        public_key: &[u8],
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), InvalidSignature> {
        if public_key.first() != Some(&UNCOMPRESSED_POINT) {
            return Err(InvalidSignature);
        }
        let key = VerifyingKey::from_sec1_bytes(public_key).map_err(|_| InvalidSignature)?;
        let signature = Signature::from_der(signature).map_err(|_| InvalidSignature)?;
        key.verify(message, &signature)
            .map_err(|_| InvalidSignature)
    }

    fn public_key_alg_id(&self) -> AlgorithmIdentifier {
        alg_id::ECDSA_P521
    }

    fn signature_alg_id(&self) -> AlgorithmIdentifier {
        alg_id::ECDSA_SHA512
    }

    fn fips(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugin::test_support::{TestRng, p521_key};
    use p521::ecdsa::signature::RandomizedSigner;

    fn public_key(key: &p521::ecdsa::SigningKey) -> Vec<u8> {
        VerifyingKey::from(key)
            .to_encoded_point(false)
            .as_bytes()
            .to_vec()
    }

    fn sign(key: &p521::ecdsa::SigningKey, message: &[u8]) -> Vec<u8> {
        let signature: Signature = key.sign_with_rng(&mut TestRng, message);
        signature.to_der().as_bytes().to_vec()
    }

    #[test]
    fn a_p521_signature_verifies() {
        let key = p521_key();
        let message = b"TLS 1.3, client CertificateVerify";
        let signature = sign(&key, message);
        assert!(
            ECDSA_P521_SHA512
                .verify_signature(&public_key(&key), message, &signature)
                .is_ok()
        );
    }

    #[test]
    fn a_tampered_message_or_signature_or_another_key_fails() {
        let key = p521_key();
        let message = b"TLS 1.3, client CertificateVerify";
        let signature = sign(&key, message);
        let public = public_key(&key);

        assert!(
            ECDSA_P521_SHA512
                .verify_signature(&public, b"TLS 1.3, client CertificateVerifz", &signature)
                .is_err()
        );
        let mut tampered = signature.clone();
        let last = tampered.len() - 1;
        tampered[last] ^= 0x01;
        assert!(
            ECDSA_P521_SHA512
                .verify_signature(&public, message, &tampered)
                .is_err()
        );
        assert!(
            ECDSA_P521_SHA512
                .verify_signature(&public_key(&p521_key()), message, &signature)
                .is_err()
        );
        // Not DER: the fixed-size r || s encoding is refused.
        let fixed = Signature::from_der(&signature)
            .expect("DER")
            .to_bytes()
            .to_vec();
        assert!(
            ECDSA_P521_SHA512
                .verify_signature(&public, message, &fixed)
                .is_err()
        );
    }

    #[test]
    fn only_an_uncompressed_point_is_a_public_key() {
        let key = p521_key();
        let message = b"message";
        let signature = sign(&key, message);
        let compressed = VerifyingKey::from(&key)
            .to_encoded_point(true)
            .as_bytes()
            .to_vec();
        assert!(
            ECDSA_P521_SHA512
                .verify_signature(&compressed, message, &signature)
                .is_err()
        );
        assert!(
            ECDSA_P521_SHA512
                .verify_signature(&[], message, &signature)
                .is_err()
        );
    }

    #[test]
    fn it_names_p521_and_sha512() {
        assert_eq!(ECDSA_P521_SHA512.public_key_alg_id(), alg_id::ECDSA_P521);
        assert_eq!(ECDSA_P521_SHA512.signature_alg_id(), alg_id::ECDSA_SHA512);
    }
}
