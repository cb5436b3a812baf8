//! What a conformance run found: one [`Outcome`] per case, and the [`Failure`] returned when
//! any case failed.

use std::any::Any;
use std::fmt;
use std::future::Future;
use std::time::Duration;

/// How one case ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    /// The connector kept the rule. `note` says what was observed, where that helps (for
    /// example how many `next_batch` futures were really dropped).
    Passed {
        /// What the case observed, if worth telling.
        note: Option<String>,
    },
    /// The case did not run, because the declared capabilities say it does not apply or a
    /// case it depends on failed.
    Skipped {
        /// Why it did not run.
        reason: String,
    },
    /// The connector broke the rule.
    Failed {
        /// What the case did and what it saw instead of what the rule requires.
        detail: String,
    },
}

/// The result of one case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// The case's name, such as `nothing_visible_before_commit`.
    pub case: &'static str,
    /// The rule of the `cdc-api` contract the case checks.
    pub rule: &'static str,
    /// What usually fixes a connector that breaks the rule.
    pub hint: &'static str,
    /// How it ended.
    pub status: Status,
}

/// What a conformance run did: every selected case, passed, skipped or failed, in the order
/// they ran. `Display` prints one line per case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// `sink` or `source`.
    pub kind: &'static str,
    /// One entry per case, in the order they ran.
    pub outcomes: Vec<Outcome>,
}

impl Report {
    pub(crate) fn new(kind: &'static str) -> Self {
        Self {
            kind,
            outcomes: Vec::new(),
        }
    }

    /// The names of the cases that passed.
    pub fn passed(&self) -> Vec<&'static str> {
        self.names(|s| matches!(s, Status::Passed { .. }))
    }

    /// The names of the cases that were skipped.
    pub fn skipped(&self) -> Vec<&'static str> {
        self.names(|s| matches!(s, Status::Skipped { .. }))
    }

    /// The names of the cases that failed.
    pub fn failed(&self) -> Vec<&'static str> {
        self.names(|s| matches!(s, Status::Failed { .. }))
    }

    /// The outcome of the case called `case`, if it was selected.
    pub fn outcome(&self, case: &str) -> Option<&Outcome> {
        self.outcomes.iter().find(|o| o.case == case)
    }

    fn names(&self, keep: impl Fn(&Status) -> bool) -> Vec<&'static str> {
        self.outcomes
            .iter()
            .filter(|o| keep(&o.status))
            .map(|o| o.case)
            .collect()
    }

    /// `Ok(self)` when no case failed, else the [`Failure`] that describes them.
    pub(crate) fn into_result(self) -> Result<Self, Failure> {
        if self.failed().is_empty() {
            Ok(self)
        } else {
            Err(Failure { report: self })
        }
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{} conformance: {} passed, {} skipped, {} failed",
            self.kind,
            self.passed().len(),
            self.skipped().len(),
            self.failed().len()
        )?;
        for o in &self.outcomes {
            match &o.status {
                Status::Passed { note: None } => writeln!(f, "  passed  {}", o.case)?,
                Status::Passed { note: Some(n) } => writeln!(f, "  passed  {} ({n})", o.case)?,
                Status::Skipped { reason } => writeln!(f, "  skipped {} ({reason})", o.case)?,
                Status::Failed { .. } => writeln!(f, "  FAILED  {}", o.case)?,
            }
        }
        Ok(())
    }
}

/// At least one case failed. `Display` (and `Debug`, so `.unwrap()` prints it readably)
/// names each failed case, the rule it checks, what happened and how such failures are
/// usually fixed, followed by the whole [`Report`].
#[derive(Clone, PartialEq, Eq)]
pub struct Failure {
    /// Every case of the run, including the failed ones.
    pub report: Report,
}

impl Failure {
    /// The names of the failed cases.
    pub fn failed_cases(&self) -> Vec<&'static str> {
        self.report.failed()
    }

    /// Whether the case called `case` failed.
    pub fn has_failed(&self, case: &str) -> bool {
        self.report
            .outcome(case)
            .is_some_and(|o| matches!(o.status, Status::Failed { .. }))
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let failed = self.report.failed();
        writeln!(
            f,
            "{} of {} {} conformance cases failed: {}",
            failed.len(),
            self.report.outcomes.len(),
            self.report.kind,
            failed.join(", ")
        )?;
        for o in &self.report.outcomes {
            if let Status::Failed { detail } = &o.status {
                writeln!(f)?;
                writeln!(f, "[{}] rule: {}", o.case, o.rule)?;
                writeln!(f, "  what happened: {detail}")?;
                writeln!(f, "  how to fix: {}", o.hint)?;
            }
        }
        writeln!(f)?;
        write!(f, "{}", self.report)
    }
}

impl fmt::Debug for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // `.unwrap()` on a failed check prints this: keep it the readable text.
        write!(f, "\n{self}")
    }
}

impl std::error::Error for Failure {}

/// Why a case failed: what was done and what was seen. Cases return it with `?`.
#[derive(Debug)]
pub(crate) struct Problem(pub(crate) String);

impl Problem {
    pub(crate) fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }
}

/// Runs one connector (or harness) call with a deadline that only guards against hangs.
pub(crate) async fn call<T, E: fmt::Display>(
    what: impl fmt::Display,
    limit: Duration,
    fut: impl Future<Output = Result<T, E>>,
) -> Result<T, Problem> {
    match tokio::time::timeout(limit, fut).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(Problem(format!("{what} failed: {e}"))),
        Err(_) => Err(Problem(format!(
            "{what} did not return within {limit:?}: it hangs (raise the call timeout in the \
             capabilities only if the target is really that slow)"
        ))),
    }
}

/// Runs a case on its own task, so that a panic in the connector fails that case only.
pub(crate) async fn isolated<T, F>(fut: F) -> Result<T, Problem>
where
    T: Send + 'static,
    F: Future<Output = Result<T, Problem>> + Send + 'static,
{
    match tokio::spawn(fut).await {
        Ok(result) => result,
        Err(e) if e.is_panic() => Err(Problem(format!(
            "panicked: {}",
            panic_text(e.into_panic().as_ref())
        ))),
        Err(e) => Err(Problem(format!("the case's task ended abnormally: {e}"))),
    }
}

/// The status of a finished case.
pub(crate) fn status_of(result: Result<Option<String>, Problem>) -> Status {
    match result {
        Ok(note) => Status::Passed { note },
        Err(Problem(detail)) => Status::Failed { detail },
    }
}

fn panic_text(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "(a non-text panic payload)".to_string()
    }
}

/// Multiset difference of two lists of rendered items, for messages: what `expected` has
/// that `actual` lacks, and what `actual` has beyond `expected` (duplicates included).
pub(crate) fn multiset_diff(expected: &[String], actual: &[String]) -> (Vec<String>, Vec<String>) {
    let mut counts: std::collections::BTreeMap<&str, i64> = std::collections::BTreeMap::new();
    for e in expected {
        *counts.entry(e).or_default() += 1;
    }
    for a in actual {
        *counts.entry(a).or_default() -= 1;
    }
    let mut missing = Vec::new();
    let mut extra = Vec::new();
    for (item, n) in counts {
        for _ in 0..n.max(0) {
            missing.push(item.to_string());
        }
        for _ in 0..(-n).max(0) {
            extra.push(item.to_string());
        }
    }
    (missing, extra)
}

/// At most `max` items joined for a message, with a count of the rest.
pub(crate) fn sample(items: &[String], max: usize) -> String {
    if items.is_empty() {
        return "none".to_string();
    }
    let mut text = items
        .iter()
        .take(max)
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join("; ");
    if items.len() > max {
        text.push_str(&format!("; ... ({} more)", items.len() - max));
    }
    text
}
