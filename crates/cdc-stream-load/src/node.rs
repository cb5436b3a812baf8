//! Connection settings both sinks read the same way: node addresses and passwords.

/// A password: [`cdc_api::Secret`], kept out of `Debug` output.
pub type Password = cdc_api::Secret;

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
