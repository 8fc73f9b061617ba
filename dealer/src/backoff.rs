//! How long to leave a broker that did not answer alone. A rest begins when a try fails; a
//! failure while resting (notifications sent before the rest began, timing out one after
//! another) is the same outage and changes nothing. Each failed try after a rest doubles
//! the next one up to a cap, and the first ACK ends it. Exec dealers share the rest through
//! the spool folder's `broker-down` file; the daemon keeps its own, capped at a second.

use std::{io, path::Path};

use bonnie_core::{config::DealerConfig, time::now_ms};

/// The longest rest of exec dealers: each try of a dead broker costs one Cyrus event the
/// whole ACK timeout.
const EXEC_MAX_REST_MS: i64 = 30_000;

/// The longest rest of the daemon's forwarder: its tries cost Cyrus nothing (they run beside
/// the serving thread), so forwarding resumes within about a second of the broker's return.
const DAEMON_MAX_REST_MS: i64 = 1_000;

/// The shared rest's file in the spool folder.
const FILE: &str = "broker-down";

/// A rest of the broker.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Rest {
    /// Not tried before this time (Unix milliseconds).
    pub until_ms: i64,
    /// How long this rest is, in milliseconds; 0 when the broker answered last.
    pub backoff_ms: i64,
}

impl Rest {
    /// True while the broker is not to be tried.
    pub fn resting(&self, now_ms: i64) -> bool {
        now_ms < self.until_ms
    }
}

/// When to try again after a failure.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    first_ms: i64,
    cap_ms: i64,
}

impl Backoff {
    /// Rests of `first_ms`, doubling up to `cap_ms`.
    pub fn new(first_ms: i64, cap_ms: i64) -> Self {
        let cap_ms = cap_ms.max(1);
        Self {
            first_ms: first_ms.clamp(1, cap_ms),
            cap_ms,
        }
    }

    /// Exec dealers': `[dealer] retry_after_s`, doubling up to 30 s.
    pub fn exec(config: &DealerConfig) -> Self {
        Self::new(
            (config.retry_after_s as i64).saturating_mul(1000),
            EXEC_MAX_REST_MS,
        )
    }

    /// The daemon forwarder's: `[dealer] retry_after_s`, at most a second.
    pub fn daemon(config: &DealerConfig) -> Self {
        Self::new(
            (config.retry_after_s as i64).saturating_mul(1000),
            DAEMON_MAX_REST_MS,
        )
    }

    /// The longest rest.
    pub fn cap_ms(&self) -> i64 {
        self.cap_ms
    }

    /// The rest after a failure at `now_ms`.
    pub fn failed(&self, rest: Rest, now_ms: i64) -> Rest {
        if rest.resting(now_ms) && rest.until_ms - now_ms <= self.cap_ms {
            return rest;
        }
        let backoff_ms = if rest.backoff_ms > 0 {
            rest.backoff_ms.saturating_mul(2).min(self.cap_ms)
        } else {
            self.first_ms
        };
        Rest {
            until_ms: now_ms + backoff_ms,
            backoff_ms,
        }
    }
}

/// The rest recorded in the spool folder (none if the file is missing or unreadable).
pub fn load(folder: &Path) -> Rest {
    let text = std::fs::read_to_string(folder.join(FILE)).unwrap_or_default();
    let mut parts = text.split_whitespace().map(|p| p.parse::<i64>().ok());
    match (parts.next().flatten(), parts.next().flatten()) {
        // Never a rest longer than the cap, whatever the file says (a clock set back).
        (Some(until_ms), Some(backoff_ms)) => Rest {
            until_ms: until_ms.min(now_ms().saturating_add(EXEC_MAX_REST_MS)),
            backoff_ms,
        },
        _ => Rest::default(),
    }
}

/// Records a failure in the spool folder; the new rest if one began.
pub fn note_failure(folder: &Path, backoff: &Backoff) -> io::Result<Option<Rest>> {
    let rest = load(folder);
    let next = backoff.failed(rest, now_ms());
    if next == rest {
        return Ok(None);
    }
    // Written whole and renamed, so that a dealer never reads half of it.
    let temporary = folder.join(format!(".{FILE}-{}", std::process::id()));
    std::fs::write(
        &temporary,
        format!("{} {}\n", next.until_ms, next.backoff_ms),
    )?;
    std::fs::rename(&temporary, folder.join(FILE))?;
    Ok(Some(next))
}

/// Records in the spool folder that the broker answered.
pub fn note_answer(folder: &Path) -> io::Result<()> {
    match std::fs::remove_file(folder.join(FILE)) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_during_a_rest_do_not_lengthen_it() {
        let backoff = Backoff::new(1000, 30_000);
        let rest = backoff.failed(Rest::default(), 0);
        assert_eq!(
            rest,
            Rest {
                until_ms: 1000,
                backoff_ms: 1000
            }
        );
        // Thousands of late ACKs of notifications sent before the rest began.
        let mut late = rest;
        for now in (0..1000).step_by(5) {
            late = backoff.failed(late, now);
        }
        assert_eq!(late, rest);
    }

    #[test]
    fn each_failed_try_after_a_rest_doubles_it_up_to_the_cap() {
        let backoff = Backoff::new(1000, 30_000);
        let (mut rest, mut now, mut rests) = (Rest::default(), 0, Vec::new());
        for _ in 0..10 {
            rest = backoff.failed(rest, now);
            rests.push(rest.backoff_ms);
            assert!(rest.backoff_ms <= backoff.cap_ms());
            now = rest.until_ms;
        }
        assert_eq!(
            rests,
            [
                1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000, 30000, 30000
            ]
        );
    }

    #[test]
    fn the_daemon_rests_a_second_at_most_whatever_the_configuration() {
        let config = DealerConfig {
            retry_after_s: 3600,
            ..DealerConfig::default()
        };
        let backoff = Backoff::daemon(&config);
        let (mut rest, mut now) = (Rest::default(), 0);
        for _ in 0..20 {
            rest = backoff.failed(rest, now);
            assert!(rest.backoff_ms <= 1000 && rest.until_ms - now <= 1000);
            now = rest.until_ms;
        }
    }

    #[test]
    fn a_rest_ends_at_the_first_answer_and_starts_over_short() {
        let folder = tempfile::tempdir().unwrap();
        let backoff = Backoff::new(1000, 30_000);
        assert!(note_failure(folder.path(), &backoff).unwrap().is_some());
        assert_eq!(
            note_failure(folder.path(), &backoff).unwrap(),
            None,
            "resting"
        );
        assert!(load(folder.path()).resting(now_ms()));
        note_answer(folder.path()).unwrap();
        assert_eq!(load(folder.path()), Rest::default());
        let next = note_failure(folder.path(), &backoff).unwrap().unwrap();
        assert_eq!(next.backoff_ms, 1000, "back to the first rest");
    }

    #[test]
    fn a_rest_beyond_the_cap_is_not_believed() {
        // A clock set back, or a file written by hand: never a rest longer than the cap.
        let backoff = Backoff::new(1000, 30_000);
        let rest = Rest {
            until_ms: 10_000_000,
            backoff_ms: 30_000,
        };
        assert_eq!(backoff.failed(rest, 0).until_ms, 30_000);
    }
}
