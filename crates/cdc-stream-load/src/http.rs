//! HTTP pieces both sinks need the same way: following an FE's redirect (credentials out
//! of the Location, never downgrading https), the TLS setup, and error texts that show the
//! cause but never a credential.

use percent_encoding::percent_decode_str;
use reqwest::StatusCode;
use url::Url;

/// Moves `user:pass@` out of `url` into `user` / `password`.
pub fn take_credentials(url: &mut Url, user: &mut String, password: &mut String) {
    if !url.username().is_empty() || url.password().is_some() {
        *user = percent_decode_str(url.username())
            .decode_utf8_lossy()
            .into_owned();
        *password = percent_decode_str(url.password().unwrap_or(""))
            .decode_utf8_lossy()
            .into_owned();
        let _ = url.set_username("");
        let _ = url.set_password(None);
    }
}

/// The next URL of a redirect: `location` resolved against `from`, its credentials moved
/// into `user` / `password`, and `https` kept when the chain started over TLS. Errors
/// never contain the Location (it carries the password).
pub fn follow(
    from: &Url,
    location: &str,
    tls: bool,
    user: &mut String,
    password: &mut String,
) -> Result<Url, String> {
    let mut next = from.join(location).map_err(|e| {
        format!("HTTP redirect from {from} with an unusable Location ({e}; Location not shown, it may carry credentials)")
    })?;
    take_credentials(&mut next, user, password);
    match next.scheme() {
        "https" => {}
        "http" if tls => {
            // never downgrade: the credentials travel with the request
            next.set_scheme("https")
                .map_err(|()| format!("HTTP redirect from {from}: cannot keep https"))?;
        }
        "http" => {}
        other => {
            return Err(format!(
                "HTTP redirect from {from} to an unsupported scheme '{other}'"
            ));
        }
    }
    Ok(next)
}

/// Makes `ring` the process's rustls provider unless one is installed already (reqwest is
/// built without a provider of its own, so nothing needs a C toolchain beyond ring's).
pub fn install_crypto_provider() {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
}

/// Reads the PEM certificates of `path` (`sink.ssl.ca-path`).
pub fn read_ca(path: &std::path::Path) -> Result<Vec<reqwest::Certificate>, String> {
    let pem = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let certs = reqwest::Certificate::from_pem_bundle(&pem)
        .map_err(|e| format!("{} is not a PEM certificate file: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!(
            "{} holds no PEM certificate (-----BEGIN CERTIFICATE-----)",
            path.display()
        ));
    }
    Ok(certs)
}

/// Whether an HTTP status is a redirect the sinks follow themselves (all methods, body
/// resent), as the Flink connectors do.
pub fn is_redirect(status: StatusCode) -> bool {
    matches!(status.as_u16(), 301 | 302 | 303 | 307 | 308)
}

/// The error and its causes on one line (reqwest's own message hides the cause), with a
/// hint when the TLS handshake failed. URLs here never carry credentials (they are taken
/// out before a request is made), and any that would are cut out anyway.
pub fn describe(e: reqwest::Error) -> String {
    let url = e.url().cloned();
    let mut causes = String::new();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        causes.push_str(": ");
        causes.push_str(&s.to_string());
        source = s.source();
    }
    let mut text = e.without_url().to_string();
    if let Some(mut url) = url {
        let _ = url.set_username("");
        let _ = url.set_password(None);
        text.push_str(" (");
        text.push_str(url.as_str());
        text.push(')');
    }
    text.push_str(&causes);
    let lower = text.to_ascii_lowercase();
    if lower.contains("certificate") || lower.contains("tls") || lower.contains("handshake") {
        text.push_str(
            " (TLS: the server's certificate was not accepted; set sink.ssl.ca-path to the PEM file of the CA that signed it, and check that the certificate names this host)",
        );
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirects_take_credentials_out_and_keep_https() {
        let from = Url::parse("https://fe:8030/api/d/t/_stream_load").unwrap();
        let (mut user, mut password) = ("root".to_string(), String::new());
        let next = follow(
            &from,
            "http://cdc:s%40cret@be:8040/api/d/t/_stream_load?",
            true,
            &mut user,
            &mut password,
        )
        .unwrap();
        assert_eq!(next.as_str(), "https://be:8040/api/d/t/_stream_load?");
        assert_eq!((user.as_str(), password.as_str()), ("cdc", "s@cret"));

        let from = Url::parse("http://fe:8030/x").unwrap();
        let next = follow(&from, "http://be:8040/y", false, &mut user, &mut password).unwrap();
        assert_eq!(next.scheme(), "http");
        assert_eq!((user.as_str(), password.as_str()), ("cdc", "s@cret"));
    }

    #[test]
    fn redirect_errors_never_show_the_location() {
        let from = Url::parse("http://fe:8030/x").unwrap();
        let (mut user, mut password) = (String::new(), String::new());
        for location in [
            "http://root:s3cr3tpw@[::1",
            "ftp://root:s3cr3tpw@be:21/x",
            "http://root:s3cr3tpw@be:99999/x",
        ] {
            let e = follow(&from, location, false, &mut user, &mut password).unwrap_err();
            assert!(!e.contains("s3cr3tpw"), "{e}");
        }
    }
}
