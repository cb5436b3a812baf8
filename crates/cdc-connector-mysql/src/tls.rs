//! TLS to the server: the `ssl.*` options, the mysql_async settings they become, and the two
//! things mysql_async lacks, supplied around the first connection of a source.
//!
//! * The options are checked when the pipeline is built (files read, certificates and keys
//!   parsed, client certificate and key matched), so `cdc validate` already names a wrong
//!   path. Connections use rustls with the ring provider.
//! * `preferred`: mysql_async either requires TLS or never uses it. The first connection
//!   tries TLS; when the server offers none, or the handshake fails, that connection and
//!   every later one of the source go in plaintext (without verification `preferred` only
//!   guards against eavesdropping, so nothing is lost by falling back).
//! * `verify-ca`: mysql_async's switch that skips the host-name check has no effect with
//!   rustls 0.23 (it looks for an error text rustls no longer prints; mysql_async issue
//!   #404). rustls checks the chain before the name, so a first connection that fails only
//!   on the name has proven that the certificate chains to `ssl.ca`; the source then checks
//!   a name the certificate holds instead of the host name, on every connection (each one
//!   verifies the chain and that name again).

use std::net::IpAddr;

use cdc_api::{ConfigOption, Error, Options, Result};
use mysql_async::{ClientIdentity, SslOpts};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};

pub(crate) const SSL_MODE: ConfigOption = ConfigOption::optional(
    "ssl.mode",
    "preferred",
    "disabled, preferred (TLS when the server offers it), required (TLS, certificate not checked), verify-ca (certificate signed by ssl.ca) or verify-identity (and issued for the host name); verify-ca when only ssl.ca is given",
);
pub(crate) const SSL_CA: ConfigOption = ConfigOption::optional_no_default(
    "ssl.ca",
    "PEM file of the CA certificate(s) that verify-ca / verify-identity trust (verify-identity without it: the public web CAs)",
);
pub(crate) const SSL_CERT: ConfigOption = ConfigOption::optional_no_default(
    "ssl.cert",
    "PEM file of the client certificate (chain) for accounts with REQUIRE X509 / SUBJECT / ISSUER; needs ssl.key",
);
pub(crate) const SSL_KEY: ConfigOption = ConfigOption::optional_no_default(
    "ssl.key",
    "PEM file of the client certificate's private key (PKCS#8, PKCS#1 or SEC1, unencrypted)",
);
pub(crate) const SSL_SERVER_NAME: ConfigOption = ConfigOption::optional_no_default(
    "ssl.server-name",
    "the name verify-identity checks the certificate against (and sends as SNI); default: hostname",
);

/// How the source secures its connections (`ssl.mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SslMode {
    /// Plaintext.
    Disabled,
    /// TLS when the server offers it, not verified; plaintext otherwise.
    Preferred,
    /// TLS, certificate not verified.
    Required,
    /// TLS, certificate chain verified against `ssl.ca`.
    VerifyCa,
    /// TLS, chain and host name verified.
    VerifyIdentity,
}

const MODE_NAMES: &str = "disabled, preferred, required, verify-ca, verify-identity";

impl SslMode {
    /// Accepts MySQL's (`VERIFY_CA`), Debezium's (`verify_ca`) and our (`verify-ca`) spelling.
    fn parse(text: &str) -> Option<Self> {
        match text.trim().to_ascii_lowercase().replace('_', "-").as_str() {
            "disabled" => Some(Self::Disabled),
            "preferred" => Some(Self::Preferred),
            "required" => Some(Self::Required),
            "verify-ca" => Some(Self::VerifyCa),
            "verify-identity" => Some(Self::VerifyIdentity),
            _ => None,
        }
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Disabled => "disabled",
            Self::Preferred => "preferred",
            Self::Required => "required",
            Self::VerifyCa => "verify-ca",
            Self::VerifyIdentity => "verify-identity",
        }
    }
}

/// The checked `ssl.*` options, with the files' contents.
#[derive(Clone)]
pub(crate) struct TlsConfig {
    pub(crate) mode: SslMode,
    ca: Option<Vec<u8>>,
    /// Client certificate chain and key, PEM.
    identity: Option<(Vec<u8>, Vec<u8>)>,
    server_name: Option<String>,
}

impl std::fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the key.
        f.debug_struct("TlsConfig")
            .field("mode", &self.mode)
            .field("ca", &self.ca.is_some())
            .field("client_certificate", &self.identity.is_some())
            .field("server_name", &self.server_name)
            .finish()
    }
}

fn bad(o: &Options, key: &str, message: impl Into<String>) -> Error {
    Error::invalid_option(o.qualified(key), message)
}

impl TlsConfig {
    /// Reads and checks the `ssl.*` options (and the SSL properties of Connector/J given as
    /// `jdbc.properties.*`, so a Flink CDC pipeline file keeps its meaning).
    pub(crate) fn from_options(o: &Options) -> Result<Self> {
        let explicit = match o.get_raw(SSL_MODE.name) {
            Some(text) => Some(SslMode::parse(text).ok_or_else(|| {
                bad(
                    o,
                    SSL_MODE.name,
                    format!("'{text}' is not one of {MODE_NAMES}"),
                )
            })?),
            None => None,
        };
        let explicit = match (explicit, jdbc_mode(o)?) {
            (Some(ours), Some((theirs, key))) if ours != theirs => {
                return Err(bad(
                    o,
                    &key,
                    format!(
                        "means ssl.mode {} but ssl.mode is {}; keep one of them",
                        theirs.name(),
                        ours.name()
                    ),
                ));
            }
            (Some(ours), _) => Some(ours),
            (None, jdbc) => jdbc.map(|(m, _)| m),
        };
        let ca = read_ca(o)?;
        let identity = read_identity(o)?;
        let server_name = match o.get_raw(SSL_SERVER_NAME.name).map(str::trim) {
            None => None,
            Some(name) => {
                if ServerName::try_from(name).is_err() {
                    return Err(bad(
                        o,
                        SSL_SERVER_NAME.name,
                        format!("'{name}' is not a DNS name or IP address"),
                    ));
                }
                Some(name.to_string())
            }
        };
        // A CA alone says "verify the server": do that rather than ignore it.
        let mode = explicit.unwrap_or(if ca.is_some() {
            SslMode::VerifyCa
        } else {
            SslMode::Preferred
        });
        match mode {
            SslMode::Disabled => {
                for key in [SSL_CA, SSL_CERT, SSL_KEY, SSL_SERVER_NAME] {
                    if o.contains(key.name) {
                        return Err(bad(
                            o,
                            key.name,
                            "has no effect with ssl.mode: disabled; remove it or choose another ssl.mode",
                        ));
                    }
                }
            }
            SslMode::Preferred | SslMode::Required if ca.is_some() => {
                return Err(bad(
                    o,
                    SSL_CA.name,
                    format!(
                        "is only used to verify the server, which ssl.mode {} does not do; set ssl.mode: verify-ca (or verify-identity), or remove ssl.ca",
                        mode.name()
                    ),
                ));
            }
            SslMode::VerifyCa if ca.is_none() => {
                return Err(bad(
                    o,
                    SSL_MODE.name,
                    "verify-ca checks the server's certificate against ssl.ca: set ssl.ca to the PEM file of the CA that signed it",
                ));
            }
            _ => {}
        }
        Ok(Self {
            mode,
            ca,
            identity,
            server_name,
        })
    }

    /// How the first connection goes.
    pub(crate) fn first_attempt(&self) -> Attempt {
        Attempt {
            tls: self.mode != SslMode::Disabled,
            server_name: self.server_name.clone(),
            learned_name: false,
            plaintext_reason: None,
        }
    }

    /// The mysql_async TLS settings of an attempt (`None`: plaintext).
    pub(crate) fn ssl_opts(&self, attempt: &Attempt) -> Option<SslOpts> {
        if !attempt.tls {
            return None;
        }
        install_crypto_provider();
        let mut ssl = SslOpts::default();
        if let Some((cert, key)) = &self.identity {
            ssl = ssl.with_client_identity(Some(ClientIdentity::new(
                cert.clone().into(),
                key.clone().into(),
            )));
        }
        ssl = match (self.mode, &self.ca) {
            (SslMode::Disabled, _) => return None,
            (SslMode::Preferred | SslMode::Required, _) => {
                ssl.with_danger_accept_invalid_certs(true)
            }
            (SslMode::VerifyCa | SslMode::VerifyIdentity, Some(ca)) => ssl
                .with_root_certs(vec![ca.clone().into()])
                .with_disable_built_in_roots(true),
            // verify-identity without ssl.ca: the public web CAs (webpki-roots).
            (_, None) => ssl,
        };
        if let Some(name) = &attempt.server_name {
            ssl = ssl.with_danger_tls_hostname_override(Some(name.clone()));
        }
        Some(ssl)
    }

    /// After the first connection failed with `err`: the attempt that gets around the
    /// failure in this mode (`Ok(None)`: none, report `err`).
    pub(crate) fn next_attempt(
        &self,
        attempt: &Attempt,
        context: &str,
        err: &mysql_async::Error,
    ) -> Result<Option<Attempt>> {
        if !attempt.tls {
            return Ok(None);
        }
        match self.mode {
            SslMode::Preferred => {
                let reason = if matches!(
                    err,
                    mysql_async::Error::Driver(mysql_async::DriverError::NoClientSslFlagFromServer)
                ) {
                    "the server offers no TLS".to_string()
                } else if let Some(e) = rustls_error(err) {
                    format!("the TLS handshake failed: {e}")
                } else {
                    return Ok(None);
                };
                Ok(Some(Attempt {
                    tls: false,
                    plaintext_reason: Some(reason),
                    ..attempt.clone()
                }))
            }
            SslMode::VerifyCa if !attempt.learned_name => {
                let Some(rustls::Error::InvalidCertificate(
                    rustls::CertificateError::NotValidForNameContext { presented, .. },
                )) = rustls_error(err)
                else {
                    return Ok(None);
                };
                match presented.iter().find_map(|p| checkable_name(p)) {
                    Some(name) => Ok(Some(Attempt {
                        server_name: Some(name),
                        learned_name: true,
                        ..attempt.clone()
                    })),
                    None => Err(Error::permanent(
                        context,
                        "the server's TLS certificate is signed by ssl.ca but names no host (no DNS name or IP address in its subjectAltName), and this TLS library cannot verify the CA alone",
                    )
                    .with_hint(
                        "issue the server a certificate with a subjectAltName (any host name), or use ssl.mode: required (encrypted, not verified)",
                    )),
                }
            }
            _ => Ok(None),
        }
    }

    /// One line for `cdc validate --connect`: how the connection is secured.
    pub(crate) fn describe(&self, attempt: &Attempt, host: &str, cipher: Option<&str>) -> String {
        match (attempt.tls, cipher.filter(|c| !c.is_empty())) {
            (false, _) => match &attempt.plaintext_reason {
                Some(why) => format!(
                    "plaintext: {why} (ssl.mode {}; required or verify-* would refuse this)",
                    self.mode.name()
                ),
                None => format!("plaintext (ssl.mode {})", self.mode.name()),
            },
            (true, cipher) => {
                let checked = match self.mode {
                    SslMode::VerifyIdentity => format!(
                        "certificate verified for {}",
                        attempt.server_name.as_deref().unwrap_or(host)
                    ),
                    SslMode::VerifyCa => "certificate verified against ssl.ca".to_string(),
                    _ => "certificate not verified".to_string(),
                };
                format!(
                    "TLS ({}), {checked} (ssl.mode {})",
                    cipher.unwrap_or("cipher unknown"),
                    self.mode.name()
                )
            }
        }
    }
}

/// How a connection uses TLS; settled by the first connection, then used for all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Attempt {
    pub(crate) tls: bool,
    /// The name the certificate is checked against, when not the host name.
    server_name: Option<String>,
    /// verify-ca: `server_name` comes from the certificate the first connection verified.
    learned_name: bool,
    /// preferred: why the source went plaintext.
    pub(crate) plaintext_reason: Option<String>,
}

/// Makes ring the process's rustls provider (as the Doris / StarRocks sinks do), unless one
/// is installed already: mysql_async builds its TLS settings with the process default.
fn install_crypto_provider() {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
}

/// The rustls error inside a mysql_async error (a failed handshake), if any.
pub(crate) fn rustls_error(err: &mysql_async::Error) -> Option<&rustls::Error> {
    match err {
        mysql_async::Error::Io(mysql_async::IoError::Io(io)) => {
            io.get_ref()?.downcast_ref::<rustls::Error>()
        }
        mysql_async::Error::Io(mysql_async::IoError::Tls(mysql_async::TlsError::Tls(e))) => Some(e),
        _ => None,
    }
}

/// A name from rustls's list of the names a certificate holds (`DnsName("db.example")`,
/// `IpAddress(10.0.0.1)`) that a connection can be checked against.
fn checkable_name(presented: &str) -> Option<String> {
    let inner = |prefix: &str| {
        presented
            .strip_prefix(prefix)
            .and_then(|rest| rest.strip_suffix(')'))
    };
    let name = if let Some(dns) = inner("DnsName(") {
        let dns = dns.trim_matches('"');
        // A wildcard covers any name of its shape.
        match dns.strip_prefix("*.") {
            Some(parent) => format!("cdc-verify-ca.{parent}"),
            None => dns.to_string(),
        }
    } else {
        inner("IpAddress(")?.parse::<IpAddr>().ok()?.to_string()
    };
    ServerName::try_from(name.as_str()).ok()?;
    Some(name)
}

/// The file an option names, read; errors name the option and the path.
fn read_file(o: &Options, key: &str) -> Result<Option<(String, Vec<u8>)>> {
    let Some(path) = o.get_raw(key).map(str::trim) else {
        return Ok(None);
    };
    if path.is_empty() {
        return Err(bad(o, key, "is empty; give the path of a PEM file"));
    }
    let bytes =
        std::fs::read(path).map_err(|e| bad(o, key, format!("cannot read '{path}': {e}")))?;
    Ok(Some((path.to_string(), bytes)))
}

fn parse_certs(
    o: &Options,
    key: &str,
    path: &str,
    bytes: &[u8],
) -> Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_slice_iter(bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(o, key, format!("'{path}' is not valid PEM: {e}")))?;
    if certs.is_empty() {
        return Err(bad(
            o,
            key,
            format!("'{path}' holds no certificate (a PEM block -----BEGIN CERTIFICATE-----)"),
        ));
    }
    Ok(certs)
}

fn read_ca(o: &Options) -> Result<Option<Vec<u8>>> {
    let Some((path, bytes)) = read_file(o, SSL_CA.name)? else {
        return Ok(None);
    };
    let certs = parse_certs(o, SSL_CA.name, &path, &bytes)?;
    let (_, invalid) = rustls::RootCertStore::empty().add_parsable_certificates(certs);
    if invalid > 0 {
        return Err(bad(
            o,
            SSL_CA.name,
            format!("'{path}' holds {invalid} certificate(s) that are not valid X.509"),
        ));
    }
    Ok(Some(bytes))
}

fn read_identity(o: &Options) -> Result<Option<(Vec<u8>, Vec<u8>)>> {
    let cert = read_file(o, SSL_CERT.name)?;
    let key = read_file(o, SSL_KEY.name)?;
    let ((cert_path, cert), (key_path, key)) = match (cert, key) {
        (None, None) => return Ok(None),
        (Some(_), None) => {
            return Err(bad(
                o,
                SSL_CERT.name,
                "needs ssl.key, the PEM file of the certificate's private key",
            ));
        }
        (None, Some(_)) => {
            return Err(bad(
                o,
                SSL_KEY.name,
                "needs ssl.cert, the PEM file of the client certificate",
            ));
        }
        (Some(c), Some(k)) => (c, k),
    };
    let certs = parse_certs(o, SSL_CERT.name, &cert_path, &cert)?;
    let private_key = PrivateKeyDer::from_pem_slice(&key).map_err(|e| {
        let why = match e {
            rustls::pki_types::pem::Error::NoItemsFound => {
                "holds no private key (PEM PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY; an encrypted key must be decrypted first, e.g. `openssl pkey -in key.pem -out plain.pem`)".to_string()
            }
            other => format!("is not a valid PEM private key: {other}"),
        };
        bad(o, SSL_KEY.name, format!("'{key_path}' {why}"))
    })?;
    let provider = rustls::crypto::ring::default_provider();
    rustls::sign::CertifiedKey::from_der(certs, private_key, &provider).map_err(|e| {
        let why = match e {
            rustls::Error::InconsistentKeys(_) => {
                format!("does not belong to the certificate in ssl.cert ('{cert_path}')")
            }
            other => format!("cannot be used: {other}"),
        };
        bad(o, SSL_KEY.name, format!("'{key_path}' {why}"))
    })?;
    Ok(Some((cert, key)))
}

/// `ssl.mode` as Connector/J's properties under `jdbc.properties.*` give it (`sslMode`, or
/// the older `useSSL` / `requireSSL` / `verifyServerCertificate`), with the key that says so.
fn jdbc_mode(o: &Options) -> Result<Option<(SslMode, String)>> {
    const PREFIX: &str = "jdbc.properties.";
    // (lower-case property name, key as written, value): Connector/J's names are matched
    // without regard to case.
    let props: Vec<(String, &str, &str)> = o
        .iter()
        .filter_map(|(k, v)| {
            k.strip_prefix(PREFIX)
                .map(|p| (p.to_ascii_lowercase(), k, v))
        })
        .collect();
    let find = |name: &str| {
        props
            .iter()
            .find(|(lower, _, _)| lower == name)
            .map(|(_, key, value)| (key.to_string(), value.to_string()))
    };
    for store in [
        "trustcertificatekeystoreurl",
        "clientcertificatekeystoreurl",
    ] {
        if let Some((key, _)) = find(store) {
            return Err(bad(
                o,
                &key,
                "Java key stores cannot be read here: give the CA as a PEM file in ssl.ca, a client certificate in ssl.cert and ssl.key",
            ));
        }
    }
    let flag = |name: &str| -> Result<Option<(bool, String)>> {
        let Some((key, value)) = find(name) else {
            return Ok(None);
        };
        match value.trim().to_ascii_lowercase().as_str() {
            "true" | "yes" => Ok(Some((true, key))),
            "false" | "no" => Ok(Some((false, key))),
            _ => Err(bad(o, &key, format!("'{value}' is not true or false"))),
        }
    };
    if let Some((key, value)) = find("sslmode") {
        let mode = SslMode::parse(&value).ok_or_else(|| {
            bad(
                o,
                &key,
                format!(
                    "'{value}' is not one of DISABLED, PREFERRED, REQUIRED, VERIFY_CA, VERIFY_IDENTITY"
                ),
            )
        })?;
        return Ok(Some((mode, key)));
    }
    // Connector/J's translation of its legacy properties.
    let Some((use_ssl, key)) = flag("usessl")? else {
        return Ok(None);
    };
    if !use_ssl {
        return Ok(Some((SslMode::Disabled, key)));
    }
    if let Some((true, key)) = flag("verifyservercertificate")? {
        return Ok(Some((SslMode::VerifyCa, key)));
    }
    match flag("requiressl")? {
        Some((true, key)) => Ok(Some((SslMode::Required, key))),
        _ => Ok(Some((SslMode::Preferred, key))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_from_rustls_become_checkable_names() {
        assert_eq!(
            checkable_name("DnsName(\"db.example\")").as_deref(),
            Some("db.example")
        );
        assert_eq!(
            checkable_name("DnsName(\"*.example.com\")").as_deref(),
            Some("cdc-verify-ca.example.com")
        );
        assert_eq!(
            checkable_name("IpAddress(10.0.0.1)").as_deref(),
            Some("10.0.0.1")
        );
        assert_eq!(checkable_name("IpAddress(::1)").as_deref(), Some("::1"));
        assert_eq!(
            checkable_name("UniformResourceIdentifier(\"spiffe://x\")"),
            None
        );
        assert_eq!(checkable_name("DirectoryName"), None);
    }

    fn config(pairs: &[(&str, &str)]) -> Result<TlsConfig> {
        let mut o = Options::new("source");
        for (k, v) in pairs {
            o.insert(*k, *v);
        }
        TlsConfig::from_options(&o)
    }

    #[test]
    fn the_mode_comes_from_ssl_mode_or_connector_j_properties() {
        let mode = |pairs: &[(&str, &str)]| config(pairs).unwrap().mode;
        assert_eq!(mode(&[]), SslMode::Preferred);
        assert_eq!(
            mode(&[("ssl.mode", "VERIFY_IDENTITY")]),
            SslMode::VerifyIdentity
        );
        assert_eq!(
            mode(&[("jdbc.properties.sslMode", "REQUIRED")]),
            SslMode::Required
        );
        assert_eq!(
            mode(&[("jdbc.properties.useSSL", "false")]),
            SslMode::Disabled
        );
        assert_eq!(
            mode(&[("jdbc.properties.usessl", "true")]),
            SslMode::Preferred
        );
        assert_eq!(
            mode(&[
                ("jdbc.properties.useSSL", "true"),
                ("jdbc.properties.requireSSL", "true")
            ]),
            SslMode::Required
        );
        // sslMode wins over the legacy flags, as in Connector/J.
        assert_eq!(
            mode(&[
                ("jdbc.properties.useSSL", "false"),
                ("jdbc.properties.sslMode", "required")
            ]),
            SslMode::Required
        );
        assert_eq!(
            mode(&[
                ("ssl.mode", "disabled"),
                ("jdbc.properties.useSSL", "false")
            ]),
            SslMode::Disabled
        );
    }

    #[test]
    fn bad_options_are_named() {
        let cases: &[(&[(&str, &str)], &str)] = &[
            (
                &[("ssl.mode", "true")],
                "option 'source.ssl.mode': 'true' is not one of disabled, preferred, required, verify-ca, verify-identity",
            ),
            (
                &[("ssl.cert", "/nonexistent/cdc-client.pem")],
                "option 'source.ssl.cert': cannot read '/nonexistent/cdc-client.pem'",
            ),
            (
                &[("ssl.ca", "/nonexistent/cdc-ca.pem")],
                "option 'source.ssl.ca': cannot read '/nonexistent/cdc-ca.pem'",
            ),
            (&[("ssl.ca", " ")], "option 'source.ssl.ca': is empty"),
            (
                &[("ssl.mode", "verify-ca")],
                "option 'source.ssl.mode': verify-ca checks the server's certificate against ssl.ca",
            ),
            (
                &[("ssl.mode", "disabled"), ("ssl.server-name", "db")],
                "option 'source.ssl.server-name': has no effect with ssl.mode: disabled",
            ),
            (
                &[("jdbc.properties.sslMode", "STRICT")],
                "option 'source.jdbc.properties.sslMode': 'STRICT' is not one of DISABLED",
            ),
            (
                &[("jdbc.properties.useSSL", "maybe")],
                "option 'source.jdbc.properties.useSSL': 'maybe' is not true or false",
            ),
            (
                &[
                    ("ssl.mode", "preferred"),
                    ("jdbc.properties.sslMode", "VERIFY_IDENTITY"),
                ],
                "means ssl.mode verify-identity but ssl.mode is preferred",
            ),
            (
                &[(
                    "jdbc.properties.clientCertificateKeyStoreUrl",
                    "file:/k.jks",
                )],
                "Java key stores cannot be read here",
            ),
        ];
        for (pairs, expected) in cases {
            let err = config(pairs).unwrap_err().to_string();
            assert!(err.contains(expected), "{pairs:?}: {err}");
        }
    }

    #[test]
    fn modes_parse_in_every_spelling() {
        for (text, mode) in [
            ("verify-ca", SslMode::VerifyCa),
            ("VERIFY_CA", SslMode::VerifyCa),
            ("verify_identity", SslMode::VerifyIdentity),
            (" Required ", SslMode::Required),
            ("DISABLED", SslMode::Disabled),
        ] {
            assert_eq!(SslMode::parse(text), Some(mode), "{text}");
        }
        assert_eq!(SslMode::parse("on"), None);
    }
}
