/// The candidate closest to `word` (by Jaro-Winkler similarity), when it is close enough to
/// be a plausible typo. Used to answer "unknown option" with "did you mean".
///
/// ```
/// let known = ["hostname", "port", "username"];
/// assert_eq!(cdc_runtime::nearest("hostnmae", known), Some("hostname"));
/// assert_eq!(cdc_runtime::nearest("zzz", known), None);
/// ```
pub fn nearest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| (strsim::jaro_winkler(word, c), c))
        .filter(|(score, _)| *score >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

/// " (did you mean 'x'?)" or nothing.
pub(crate) fn did_you_mean<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> String {
    nearest(word, candidates)
        .map(|n| format!(" (did you mean '{n}'?)"))
        .unwrap_or_default()
}
