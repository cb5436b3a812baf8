//! A throw-away certificate authority and a server certificate it signed (for `127.0.0.1` /
//! `localhost` by default), so the emulators can serve HTTPS and a [`MariaDb`] TLS in
//! tests; client certificates on demand.
//!
//! Made fresh on every start with `rcgen` (ECDSA P-256, the `ring` provider): nothing is
//! read from or left on the machine except PEM files in a private temporary directory that
//! is removed with the [`TestTls`].
//!
//! [`MariaDb`]: crate::MariaDb

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
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
    server_cert_path: PathBuf,
    server_key_path: PathBuf,
    issuer: Issuer<'static, KeyPair>,
    dir: tempfile::TempDir,
    pub(crate) server_config: Arc<rustls::ServerConfig>,
}

impl std::fmt::Debug for TestTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestTls")
            .field("ca_path", &self.ca_path)
            .finish_non_exhaustive()
    }
}

fn err(what: &str, e: &dyn std::fmt::Display) -> String {
    format!("{what}: {e}")
}

impl TestTls {
    /// Generates the CA and a server certificate for `localhost` and `127.0.0.1`, and
    /// writes their PEM files to a temporary directory.
    pub fn generate() -> Result<Self, String> {
        Self::generate_for(&["localhost", "127.0.0.1"])
    }

    /// Like [`generate`](Self::generate) with a server certificate for exactly these names
    /// (IP addresses or DNS names; none: a certificate without subjectAltName).
    pub fn generate_for(names: &[&str]) -> Result<Self, String> {
        install_crypto_provider();
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

        let names: Vec<String> = names.iter().map(|n| (*n).to_string()).collect();
        let mut params = CertificateParams::new(names).map_err(|e| err("server parameters", &e))?;
        params
            .distinguished_name
            .push(DnType::CommonName, "cdc-testkit server");
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
        let write = |name: &str, text: &str| -> Result<PathBuf, String> {
            let path = dir.path().join(name);
            std::fs::write(&path, text).map_err(|e| err(&format!("writing {name}"), &e))?;
            Ok(path)
        };
        let ca_pem = ca_cert.pem();
        let ca_path = write("ca.pem", &ca_pem)?;
        let server_cert_path = write("server.pem", &cert.pem())?;
        let server_key_path = write("server-key.pem", &key.serialize_pem())?;
        Ok(Self {
            ca_pem,
            ca_path,
            server_cert_path,
            server_key_path,
            issuer,
            dir,
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

    /// The server certificate, a PEM file.
    pub fn server_cert_path(&self) -> &Path {
        &self.server_cert_path
    }

    /// The server certificate's private key, a PKCS#8 PEM file.
    pub fn server_key_path(&self) -> &Path {
        &self.server_key_path
    }

    /// `mariadbd` arguments that serve TLS with this CA and server certificate (the CA also
    /// verifies client certificates, for accounts with `REQUIRE X509`).
    pub fn mariadb_args(&self) -> Vec<String> {
        vec![
            format!("--ssl-ca={}", self.ca_path.display()),
            format!("--ssl-cert={}", self.server_cert_path.display()),
            format!("--ssl-key={}", self.server_key_path.display()),
        ]
    }

    /// Issues a client certificate with common name `name`, signed by this CA; returns the
    /// PEM files of the certificate and of its PKCS#8 private key (removed with this).
    pub fn client_cert(&self, name: &str) -> Result<(PathBuf, PathBuf), String> {
        let mut params = CertificateParams::new(Vec::<String>::new())
            .map_err(|e| err("client parameters", &e))?;
        params.distinguished_name.push(DnType::CommonName, name);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let key = KeyPair::generate().map_err(|e| err("client key", &e))?;
        let cert = params
            .signed_by(&key, &self.issuer)
            .map_err(|e| err("client certificate", &e))?;
        let file: String = name
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        let cert_path = self.dir.path().join(format!("client-{file}.pem"));
        let key_path = self.dir.path().join(format!("client-{file}-key.pem"));
        std::fs::write(&cert_path, cert.pem())
            .map_err(|e| err("writing the client certificate", &e))?;
        std::fs::write(&key_path, key.serialize_pem())
            .map_err(|e| err("writing the client key", &e))?;
        Ok((cert_path, key_path))
    }
}
