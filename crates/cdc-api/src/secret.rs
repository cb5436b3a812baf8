//! A secret option value (a password): kept out of `Debug` output, so a logged or printed
//! connector config never shows it.

/// A secret, such as a password. `Debug` prints `"***"` (or `""` when empty); only
/// [`expose`](Self::expose) gives the text, for authentication.
///
/// ```
/// let s = cdc_api::Secret::new("s3cret".to_string());
/// assert_eq!(format!("{s:?}"), "\"***\"");
/// assert_eq!(s.expose(), "s3cret");
/// ```
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(text: String) -> Self {
        Self(text)
    }

    /// The secret itself, for authentication only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_empty() { "\"\"" } else { "\"***\"" })
    }
}
