//! The restart strategy: what Flink's `restart-strategy.*` does for a Flink CDC job, inside
//! the process. There is no Flink to restart `cdc`, so when a failure that may go away
//! (a target or source away for longer than the connector's own retries, a lost
//! transaction) stops a run, the pipeline starts again from its last checkpoint after a
//! backoff, as a new run that claims the state afresh (the same path as a process restart).
//! Errors that a restart cannot fix (bad options, a wrong password, rejected rows, a schema
//! change the pipeline refuses, another run owning the state) stop at once.
//!
//! Option names and defaults are Flink's (`RestartStrategyOptions`, Flink 1.19+, where the
//! default with checkpointing is `exponential-delay`): initial backoff 1 s, multiplier 1.5,
//! at most 1 min, reset after 1 h without failure, jitter 10%, attempts unbounded.

use std::time::Duration;

use cdc_api::{ConfigOption, Options};
use tokio::time::Instant;

use crate::RuntimeError;

pub(crate) const TYPE: ConfigOption = ConfigOption::optional(
    "restart-strategy.type",
    "exponential-delay",
    "what to do when a run fails with an error that may go away: exponential-delay, fixed-delay or none",
);
pub(crate) const EXP_INITIAL: ConfigOption = ConfigOption::optional(
    "restart-strategy.exponential-delay.initial-backoff",
    "1s",
    "the wait before the first restart",
);
pub(crate) const EXP_MAX: ConfigOption = ConfigOption::optional(
    "restart-strategy.exponential-delay.max-backoff",
    "1min",
    "the longest wait between restarts",
);
pub(crate) const EXP_MULTIPLIER: ConfigOption = ConfigOption::optional(
    "restart-strategy.exponential-delay.backoff-multiplier",
    "1.5",
    "how much the wait grows after each failed restart",
);
pub(crate) const EXP_RESET: ConfigOption = ConfigOption::optional(
    "restart-strategy.exponential-delay.reset-backoff-threshold",
    "1h",
    "after running this long without failure, the wait and the attempt count start over",
);
pub(crate) const EXP_JITTER: ConfigOption = ConfigOption::optional(
    "restart-strategy.exponential-delay.jitter-factor",
    "0.1",
    "each wait varies randomly by up to this fraction, so pipelines sharing a target do not restart in step",
);
pub(crate) const EXP_ATTEMPTS: ConfigOption = ConfigOption::optional_no_default(
    "restart-strategy.exponential-delay.attempts-before-reset-backoff",
    "restarts allowed before the reset threshold passes; unbounded when unset",
);
pub(crate) const FIXED_ATTEMPTS: ConfigOption = ConfigOption::optional(
    "restart-strategy.fixed-delay.attempts",
    "1",
    "restarts allowed in all (fixed-delay)",
);
pub(crate) const FIXED_DELAY: ConfigOption = ConfigOption::optional(
    "restart-strategy.fixed-delay.delay",
    "1s",
    "the wait before each restart (fixed-delay)",
);

/// Every `restart-strategy.*` option the pipeline block accepts.
pub(crate) const OPTIONS: [ConfigOption; 9] = [
    TYPE,
    EXP_INITIAL,
    EXP_MAX,
    EXP_MULTIPLIER,
    EXP_RESET,
    EXP_JITTER,
    EXP_ATTEMPTS,
    FIXED_ATTEMPTS,
    FIXED_DELAY,
];

/// How a failed run is restarted (`restart-strategy.*`).
#[derive(Debug, Clone, PartialEq)]
pub enum RestartStrategy {
    /// `none`: a failed run stops the pipeline.
    None,
    /// `fixed-delay`: up to `attempts` restarts, `delay` apart.
    FixedDelay {
        /// Restarts allowed in all.
        attempts: u32,
        /// The wait before each.
        delay: Duration,
    },
    /// `exponential-delay`: waits that grow by `multiplier` from `initial` up to `max`,
    /// starting over after `reset_after` without a failure.
    ExponentialDelay {
        /// The first wait.
        initial: Duration,
        /// The longest wait.
        max: Duration,
        /// The growth factor (at least 1).
        multiplier: f64,
        /// A run this long without failure resets the wait and the count.
        reset_after: Duration,
        /// Each wait varies by up to this fraction (0 to 1).
        jitter: f64,
        /// Restarts allowed before a reset; `None` is unbounded.
        attempts: Option<u32>,
    },
}

impl RestartStrategy {
    /// Reads the `restart-strategy.*` options of the pipeline block.
    pub(crate) fn from_options(options: &Options, origin: &str) -> Result<Self, RuntimeError> {
        let bad = |key: &str, message: String| {
            RuntimeError::definition(format!("{origin}: pipeline.{key}"), message)
        };
        let wrap = |e: cdc_api::Error| RuntimeError::definition(origin, e.to_string());
        let kind = options
            .string(&TYPE)
            .unwrap_or_default()
            .to_ascii_lowercase()
            .replace('_', "-");
        let exponential_only = [
            EXP_INITIAL,
            EXP_MAX,
            EXP_MULTIPLIER,
            EXP_RESET,
            EXP_JITTER,
            EXP_ATTEMPTS,
        ];
        let fixed_only = [FIXED_ATTEMPTS, FIXED_DELAY];
        // An option for another strategy would be silently ignored: refuse it.
        let refuse_others = |others: &[ConfigOption], chosen: &str| match others
            .iter()
            .find(|o| options.contains(o.name))
        {
            Some(o) => Err(bad(
                o.name,
                format!("applies to another strategy than restart-strategy.type: {chosen}"),
            )),
            None => Ok(()),
        };
        match kind.as_str() {
            "none" | "off" | "disable" | "no-restart" | "norestart" => {
                refuse_others(&exponential_only, "none")?;
                refuse_others(&fixed_only, "none")?;
                Ok(Self::None)
            }
            "fixed-delay" | "fixeddelay" => {
                refuse_others(&exponential_only, "fixed-delay")?;
                let attempts = options.u64(&FIXED_ATTEMPTS).map_err(wrap)?.unwrap_or(1);
                let attempts = u32::try_from(attempts).map_err(|_| {
                    bad(FIXED_ATTEMPTS.name, format!("{attempts} is too large"))
                })?;
                let delay = options
                    .duration(&FIXED_DELAY)
                    .map_err(wrap)?
                    .unwrap_or(Duration::from_secs(1));
                Ok(Self::FixedDelay { attempts, delay })
            }
            "exponential-delay" | "exponentialdelay" => {
                refuse_others(&fixed_only, "exponential-delay")?;
                let initial = options
                    .duration(&EXP_INITIAL)
                    .map_err(wrap)?
                    .unwrap_or(Duration::from_secs(1));
                let max = options
                    .duration(&EXP_MAX)
                    .map_err(wrap)?
                    .unwrap_or(Duration::from_secs(60));
                if initial.is_zero() || max < initial {
                    return Err(bad(
                        EXP_MAX.name,
                        format!(
                            "the backoff must start above zero and max-backoff ({max:?}) be at least initial-backoff ({initial:?})"
                        ),
                    ));
                }
                let multiplier = options.f64(&EXP_MULTIPLIER).map_err(wrap)?.unwrap_or(1.5);
                if !(1.0..=1000.0).contains(&multiplier) {
                    return Err(bad(
                        EXP_MULTIPLIER.name,
                        format!("{multiplier} is not between 1 and 1000"),
                    ));
                }
                let jitter = options.f64(&EXP_JITTER).map_err(wrap)?.unwrap_or(0.1);
                if !(0.0..=1.0).contains(&jitter) {
                    return Err(bad(
                        EXP_JITTER.name,
                        format!("{jitter} is not between 0 and 1"),
                    ));
                }
                let reset_after = options
                    .duration(&EXP_RESET)
                    .map_err(wrap)?
                    .unwrap_or(Duration::from_secs(3600));
                let attempts = match options.u64(&EXP_ATTEMPTS).map_err(wrap)? {
                    None => None,
                    Some(n) => Some(u32::try_from(n).map_err(|_| {
                        bad(EXP_ATTEMPTS.name, format!("{n} is too large"))
                    })?),
                };
                Ok(Self::ExponentialDelay {
                    initial,
                    max,
                    multiplier,
                    reset_after,
                    jitter,
                    attempts,
                })
            }
            "failure-rate" | "failurerate" => Err(bad(
                TYPE.name,
                "failure-rate is not supported; exponential-delay (the default) or fixed-delay bound restarts instead".into(),
            )),
            other => Err(bad(
                TYPE.name,
                format!("'{other}' is not exponential-delay, fixed-delay or none"),
            )),
        }
    }
}

/// Whether a restart from the last checkpoint may get past this error: the connector's
/// transient failures (its own retries ran out) and lost transactions (the restart rewinds
/// to the last fully committed checkpoint). Not: definitions, permanent connector errors,
/// the state store (a full disk or a lock held by another run needs a person), fencing.
pub(crate) fn may_recover(error: &RuntimeError) -> bool {
    match error {
        RuntimeError::Connector { source, .. } => {
            source.is_retryable() || source.is_transaction_lost()
        }
        _ => false,
    }
}

/// The restarts of one pipeline so far.
#[derive(Debug)]
pub(crate) struct Restarts {
    strategy: RestartStrategy,
    /// Restarts since the start (fixed-delay) or the last reset (exponential-delay).
    attempts: u32,
    /// The wait of the last restart (exponential-delay).
    last_backoff: Option<Duration>,
    /// When the last failure happened.
    last_failure: Option<Instant>,
    /// A small generator for the jitter; the seed only needs to differ between processes.
    rng: u64,
}

impl Restarts {
    pub(crate) fn new(strategy: RestartStrategy) -> Self {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0x9e37_79b9, |d| d.as_nanos() as u64)
            ^ u64::from(std::process::id());
        Self {
            strategy,
            attempts: 0,
            last_backoff: None,
            last_failure: None,
            rng: seed | 1,
        }
    }

    /// Restarts made so far (since the last reset).
    pub(crate) fn attempts(&self) -> u32 {
        self.attempts
    }

    /// After a failure at `now`: how long to wait before the next run, or `None` when the
    /// strategy allows no more restarts.
    pub(crate) fn next_delay(&mut self, now: Instant) -> Option<Duration> {
        let since_last = self.last_failure.map(|t| now.duration_since(t));
        self.last_failure = Some(now);
        match self.strategy.clone() {
            RestartStrategy::None => None,
            RestartStrategy::FixedDelay { attempts, delay } => {
                if self.attempts >= attempts {
                    return None;
                }
                self.attempts += 1;
                Some(delay)
            }
            RestartStrategy::ExponentialDelay {
                initial,
                max,
                multiplier,
                reset_after,
                jitter,
                attempts,
            } => {
                if since_last.is_some_and(|d| d >= reset_after) {
                    // A long good run: as if this were the first failure.
                    self.attempts = 0;
                    self.last_backoff = None;
                }
                if attempts.is_some_and(|a| self.attempts >= a) {
                    return None;
                }
                self.attempts += 1;
                let backoff = match self.last_backoff {
                    None => initial,
                    Some(b) => b.mul_f64(multiplier).min(max),
                };
                self.last_backoff = Some(backoff);
                Some(
                    self.jittered(backoff, jitter)
                        .min(max.mul_f64(1.0 + jitter)),
                )
            }
        }
    }

    fn jittered(&mut self, backoff: Duration, jitter: f64) -> Duration {
        if jitter == 0.0 {
            return backoff;
        }
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        // A uniform value in [-1, 1).
        let unit = (self.rng >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0;
        backoff.mul_f64((1.0 + unit * jitter).max(0.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(pairs: &[(&str, &str)]) -> Result<RestartStrategy, String> {
        let mut o = Options::new("pipeline");
        for (k, v) in pairs {
            o.insert(*k, *v);
        }
        RestartStrategy::from_options(&o, "p.yaml").map_err(|e| e.to_string())
    }

    #[test]
    fn the_default_is_flinks_exponential_delay() {
        assert_eq!(
            parse(&[]).unwrap(),
            RestartStrategy::ExponentialDelay {
                initial: Duration::from_secs(1),
                max: Duration::from_secs(60),
                multiplier: 1.5,
                reset_after: Duration::from_secs(3600),
                jitter: 0.1,
                attempts: None,
            }
        );
        assert_eq!(
            parse(&[("restart-strategy.type", "fixed-delay")]).unwrap(),
            RestartStrategy::FixedDelay {
                attempts: 1,
                delay: Duration::from_secs(1)
            }
        );
        assert_eq!(
            parse(&[("restart-strategy.type", "none")]).unwrap(),
            RestartStrategy::None
        );
    }

    #[test]
    fn bad_or_misplaced_options_are_refused() {
        let e = parse(&[("restart-strategy.type", "sometimes")]).unwrap_err();
        assert!(e.contains("pipeline.restart-strategy.type"), "{e}");
        let e = parse(&[("restart-strategy.type", "failure-rate")]).unwrap_err();
        assert!(e.contains("not supported"), "{e}");
        let e = parse(&[
            ("restart-strategy.type", "fixed-delay"),
            ("restart-strategy.exponential-delay.max-backoff", "5s"),
        ])
        .unwrap_err();
        assert!(e.contains("another strategy"), "{e}");
        let e = parse(&[("restart-strategy.exponential-delay.jitter-factor", "2")]).unwrap_err();
        assert!(e.contains("jitter-factor"), "{e}");
        let e =
            parse(&[("restart-strategy.exponential-delay.backoff-multiplier", "x")]).unwrap_err();
        assert!(e.contains("not a number"), "{e}");
        let e = parse(&[
            ("restart-strategy.exponential-delay.initial-backoff", "10s"),
            ("restart-strategy.exponential-delay.max-backoff", "1s"),
        ])
        .unwrap_err();
        assert!(e.contains("max-backoff"), "{e}");
    }

    #[test]
    fn exponential_waits_grow_to_the_cap_and_reset_after_a_good_run() {
        let mut r = Restarts::new(RestartStrategy::ExponentialDelay {
            initial: Duration::from_secs(1),
            max: Duration::from_secs(4),
            multiplier: 2.0,
            reset_after: Duration::from_secs(3600),
            jitter: 0.0,
            attempts: Some(5),
        });
        let t = Instant::now();
        let waits: Vec<_> = (0..6)
            .map(|i| r.next_delay(t + Duration::from_secs(i)))
            .collect();
        let s = |n| Some(Duration::from_secs(n));
        assert_eq!(waits, [s(1), s(2), s(4), s(4), s(4), None]);
        // An hour without failure: back to the first wait.
        assert_eq!(r.next_delay(t + Duration::from_secs(3700)), s(1));
    }

    #[test]
    fn jitter_stays_within_its_fraction() {
        let mut r = Restarts::new(RestartStrategy::ExponentialDelay {
            initial: Duration::from_secs(10),
            max: Duration::from_secs(10),
            multiplier: 1.0,
            reset_after: Duration::from_secs(3600),
            jitter: 0.1,
            attempts: None,
        });
        let t = Instant::now();
        for _ in 0..100 {
            let d = r.next_delay(t).unwrap();
            assert!(
                d >= Duration::from_secs(9) && d <= Duration::from_secs(11),
                "{d:?}"
            );
        }
    }

    #[test]
    fn fixed_delay_counts_every_restart() {
        let mut r = Restarts::new(RestartStrategy::FixedDelay {
            attempts: 2,
            delay: Duration::from_millis(5),
        });
        let t = Instant::now();
        assert_eq!(r.next_delay(t), Some(Duration::from_millis(5)));
        assert_eq!(r.next_delay(t), Some(Duration::from_millis(5)));
        assert_eq!(r.next_delay(t), None);
        let mut r = Restarts::new(RestartStrategy::None);
        assert_eq!(r.next_delay(t), None);
    }

    #[test]
    fn only_errors_a_restart_can_get_past_restart() {
        let connector = |e: cdc_api::Error| RuntimeError::Connector {
            pipeline: "p".into(),
            source: e,
        };
        assert!(may_recover(&connector(cdc_api::Error::transient(
            "x", "reset"
        ))));
        assert!(may_recover(&connector(cdc_api::Error::transaction_lost(
            "x", "aborted"
        ))));
        assert!(!may_recover(&connector(cdc_api::Error::permanent(
            "x",
            "access denied"
        ))));
        assert!(!may_recover(&RuntimeError::Fenced {
            location: "s".into(),
            message: "m".into()
        }));
    }
}
