//! Secret values the pipeline file brought in through `${VAR}` / `${file:...}`, so that no
//! message shows them: [`redact`] replaces each with `***`. The `cdc` command passes its
//! log lines, errors and `cdc validate` output through it; an embedding service can do the
//! same with its own output.
//!
//! Which substituted values are secret: those of a key that names a secret (`password`,
//! `secret`, `token`, `credential`, `key` as a word) and every `${file:...}` (files are how
//! Docker and Kubernetes hand out secrets). Values shorter than [`MIN_LEN`] are not
//! remembered: masking them would garble every message that happens to contain them.

use std::sync::{Mutex, PoisonError};

/// The shortest value that is masked.
pub const MIN_LEN: usize = 4;

static SECRETS: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// Remembers `value` as a secret for [`redact`].
pub(crate) fn remember(value: &str) {
    if value.chars().count() < MIN_LEN {
        return;
    }
    let mut secrets = SECRETS.lock().unwrap_or_else(PoisonError::into_inner);
    let mut forms = vec![value.to_string()];
    // Messages that quote a value with escapes (Debug, JSON) show it in that form.
    let quoted = format!("{value:?}");
    let escaped = &quoted[1..quoted.len() - 1];
    if escaped != value {
        forms.push(escaped.to_string());
    }
    for form in forms {
        if !secrets.contains(&form) {
            secrets.push(form);
        }
    }
    // Longest first, so that a secret containing another is masked whole.
    secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
}

/// Whether an option key names a secret.
pub fn is_secret_key(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    ["password", "passwd", "secret", "token", "credential"]
        .iter()
        .any(|w| k.contains(w))
        || k.split(['.', '-', '_']).any(|part| part == "key")
}

/// `text` with every remembered secret replaced by `***`.
pub fn redact(text: &str) -> String {
    let secrets = SECRETS.lock().unwrap_or_else(PoisonError::into_inner);
    let mut out = text.to_string();
    for s in secrets.iter() {
        if out.contains(s.as_str()) {
            out = out.replace(s.as_str(), "***");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembered_values_are_masked_in_every_form() {
        remember("p@ss\"word\n2");
        remember("abc");
        let text = redact("bad value 'p@ss\"word\n2' or \"p@ss\\\"word\\n2\" abc");
        assert_eq!(text, "bad value '***' or \"***\" abc");
        assert!(is_secret_key("password") && is_secret_key("sink.ssl.key"));
        assert!(is_secret_key("aws.secret-access-key") && !is_secret_key("keyspace"));
        assert!(!is_secret_key("hostname") && !is_secret_key("primary-keys"));
    }
}
