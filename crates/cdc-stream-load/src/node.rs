//! Connection settings both sinks read the same way: node addresses and passwords.

/// A password: kept out of `Debug` output, so a logged or printed config never shows it.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Password(String);

impl Password {
    /// Wraps a password.
    pub fn new(text: String) -> Self {
        Self(text)
    }

    /// The password itself, for authentication only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_empty() { "\"\"" } else { "\"***\"" })
    }
}

/// Checks one node address (Doris `fenodes` / `benodes`, StarRocks `load-url`) and
/// returns its base URL: `host:port` and
/// `http://host:port` become `http://host:port`, `https://host:port` stays. Messages never
/// repeat an entry that carries credentials (`user:pass@host`).
pub fn parse_node(entry: &str) -> Result<String, String> {
    let entry = entry.trim().trim_end_matches('/');
    if entry.contains('@') {
        return Err("an address must not carry credentials (user:password@...); set username and password instead".into());
    }
    let (scheme, rest) = if let Some(rest) = entry.strip_prefix("https://") {
        ("https", rest)
    } else if let Some(rest) = entry.strip_prefix("http://") {
        ("http", rest)
    } else if entry.contains("://") {
        return Err(format!(
            "'{entry}' has an unknown scheme: use host:port, http://host:port or https://host:port"
        ));
    } else {
        ("http", entry)
    };
    let ok = !rest.contains('/')
        && rest
            .rsplit_once(':')
            .is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok());
    if ok {
        Ok(format!("{scheme}://{rest}"))
    } else {
        Err(format!(
            "'{entry}' is not host:port (or http://host:port, https://host:port)"
        ))
    }
}
