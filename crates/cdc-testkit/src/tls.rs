//! A throw-away certificate authority and a server certificate for `127.0.0.1` /
//! `localhost`, so the emulators can serve HTTPS in tests.
//!
//! Made fresh on every start with `rcgen` (ECDSA P-256, the `ring` provider): nothing is
//! read from or left on the machine except the CA's PEM file in a private temporary
//! directory that is removed with the [`TestTls`].

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// Makes `ring` the process's rustls crypto provider unless one is installed already.
///
/// The workspace builds reqwest with rustls but without a provider of its own (no aws-lc
/// build), so a process must install one before it builds a `reqwest::Client`: the Doris
/// and StarRocks sinks and the emulators call this; a test that builds its own client
/// calls it first.
pub fn install_crypto_provider() {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
}

/// A CA and a server certificate it signed, ready for a TLS listener.
pub struct TestTls {
    ca_pem: String,
    ca_path: PathBuf,
    _dir: tempfile::TempDir,
    pub(crate) server_config: Arc<rustls::ServerConfig>,
}

impl std::fmt::Debug for TestTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestTls")
            .field("ca_path", &self.ca_path)
            .finish_non_exhaustive()
    }
}

impl TestTls {
    /// Generates the CA and the server certificate and writes the CA's PEM to a temporary
    /// file.
    pub fn generate() -> Result<Self, String> {
        install_crypto_provider();
        let err = |what: &str, e: &dyn std::fmt::Display| format!("{what}: {e}");
        let mut ca_params =
            CertificateParams::new(Vec::<String>::new()).map_err(|e| err("CA parameters", &e))?;
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "cdc-testkit test CA");
        ca_params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca_key = KeyPair::generate().map_err(|e| err("CA key", &e))?;
        let ca_cert = ca_params
            .self_signed(&ca_key)
            .map_err(|e| err("CA certificate", &e))?;
        let issuer = Issuer::new(ca_params, ca_key);

        let mut params = CertificateParams::new(vec!["localhost".to_string()])
            .map_err(|e| err("server parameters", &e))?;
        params
            .subject_alt_names
            .push(SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)));
        params
            .distinguished_name
            .push(DnType::CommonName, "cdc-testkit emulator");
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let key = KeyPair::generate().map_err(|e| err("server key", &e))?;
        let cert = params
            .signed_by(&key, &issuer)
            .map_err(|e| err("server certificate", &e))?;

        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let server_config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| err("TLS versions", &e))?
            .with_no_client_auth()
            .with_single_cert(
                vec![
                    CertificateDer::from(cert.der().to_vec()),
                    CertificateDer::from(ca_cert.der().to_vec()),
                ],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
            )
            .map_err(|e| err("TLS server configuration", &e))?;

        let dir = tempfile::Builder::new()
            .prefix("cdc-testkit-tls-")
            .tempdir()
            .map_err(|e| err("temporary directory", &e))?;
        let ca_pem = ca_cert.pem();
        let ca_path = dir.path().join("ca.pem");
        std::fs::write(&ca_path, &ca_pem).map_err(|e| err("writing ca.pem", &e))?;
        Ok(Self {
            ca_pem,
            ca_path,
            _dir: dir,
            server_config: Arc::new(server_config),
        })
    }

    /// The CA certificate, PEM.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// A file holding [`ca_pem`](Self::ca_pem) (removed when this is dropped).
    pub fn ca_path(&self) -> &Path {
        &self.ca_path
    }
}
