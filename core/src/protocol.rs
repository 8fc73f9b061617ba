//! The wire protocol between the broker and its peers: multipart ZeroMQ messages whose first
//! frame names the command, parsed into types here so that malformed input is one error
//! value wherever it arrives. Frames are shown as the DEALER sends them; the broker's ROUTER
//! adds the peer's identity in front.
//!
//! | socket | from | frames |
//! |---|---|---|
//! | dealer | dealer | `NOTIFY id notification` → `ACK id` |
//! | controller | worker | `READY credit`, `HEARTBEAT`, `DONE id [leaves]`, `POSTPONE id reason`, `COLLECT id commands notification`, `FAIL id reason` |
//! | controller | broker | `TAKE id`, `HEARTBEAT` |
//! | worker | worker | `GET id` → `JOB id notification [meta]` or `NOJOB id` |
//! | collector | collector | `READY host commands credit`, `HEARTBEAT`, `DONE id notification`, `POSTPONE id reason`, `FAIL id reason` |
//! | collector | broker | `COLLECT id commands notification`, `HEARTBEAT` |
//! | admin | `bonnie`, `bonnie-api` | `STATUS`, `FAILED limit`, `RETRY id`, `RETRY-ALL`, `CHECKPOINT`, `AUDIT record` → `OK json` or `ERROR message` |
//!
//! `DONE`'s optional third frame is a JSON array of [`LeafReport`]s: what the worker stored, for
//! the broker's verifiable log. A worker from before it sends two frames; the broker logs such a
//! job with an unattested leaf (see `bonnie-broker`'s `ledger` module), never without one.
//!
//! `AUDIT`'s frame is an [`AuditRecord`] as JSON; the broker answers only once the record and
//! its leaf are committed (`OK {"seq": n}`), so an action whose answer is not `OK` must not
//! happen.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::ledger::LeafReport;

/// Longest job id accepted, in bytes.
pub const MAX_ID_LEN: usize = 128;

/// Why a message could not be understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    /// No frames at all.
    #[error("empty message")]
    Empty,
    /// The first frame is not a command of this socket.
    #[error("unknown command {0:?}")]
    UnknownCommand(String),
    /// The command has the wrong number of frames.
    #[error("{command} takes {expected} frames, got {got}")]
    FrameCount {
        /// The command.
        command: &'static str,
        /// Frames it takes, command included.
        expected: usize,
        /// Frames received.
        got: usize,
    },
    /// A frame that must be text is not, or is not a valid value.
    #[error("{command}: invalid {what}")]
    Invalid {
        /// The command.
        command: &'static str,
        /// Which frame.
        what: &'static str,
    },
}

impl ProtocolError {
    /// True for an unknown command (counted apart from malformed frames).
    pub fn is_unknown_command(&self) -> bool {
        matches!(self, ProtocolError::UnknownCommand(_))
    }
}

/// Frames of one message.
pub type Frames = Vec<Vec<u8>>;

fn command_of(frames: &[Vec<u8>]) -> Result<&[u8], ProtocolError> {
    frames
        .first()
        .map(Vec::as_slice)
        .ok_or(ProtocolError::Empty)
}

fn unknown(command: &[u8]) -> ProtocolError {
    let shown: String = String::from_utf8_lossy(command).chars().take(40).collect();
    ProtocolError::UnknownCommand(shown)
}

fn expect(frames: &[Vec<u8>], command: &'static str, expected: usize) -> Result<(), ProtocolError> {
    if frames.len() == expected {
        Ok(())
    } else {
        Err(ProtocolError::FrameCount {
            command,
            expected,
            got: frames.len(),
        })
    }
}

fn text(frame: &[u8], command: &'static str, what: &'static str) -> Result<String, ProtocolError> {
    String::from_utf8(frame.to_vec()).map_err(|_| ProtocolError::Invalid { command, what })
}

/// A job id: printable ASCII without spaces, at most [`MAX_ID_LEN`] bytes.
fn id(frame: &[u8], command: &'static str) -> Result<String, ProtocolError> {
    if frame.is_empty() || frame.len() > MAX_ID_LEN || !frame.iter().all(|b| b.is_ascii_graphic()) {
        return Err(ProtocolError::Invalid {
            command,
            what: "job id",
        });
    }
    text(frame, command, "job id")
}

fn number(frame: &[u8], command: &'static str, what: &'static str) -> Result<u32, ProtocolError> {
    text(frame, command, what)?
        .parse()
        .map_err(|_| ProtocolError::Invalid { command, what })
}

fn commands(frame: &[u8], command: &'static str) -> Result<Vec<String>, ProtocolError> {
    let list: Vec<String> = text(frame, command, "commands")?
        .split_whitespace()
        .map(str::to_string)
        .collect();
    if list.is_empty() {
        Err(ProtocolError::Invalid {
            command,
            what: "commands",
        })
    } else {
        Ok(list)
    }
}

/// The identity a dealer on `host` with process id `pid` connects with.
pub fn dealer_identity(host: &str, pid: u32) -> Vec<u8> {
    format!("Dealer-{host}-{pid}").into_bytes()
}

/// The identity of connection `n` of a dealer daemon on `host` with process id `pid`.
pub fn dealer_connection_identity(host: &str, pid: u32, n: usize) -> Vec<u8> {
    format!("Dealer-{host}-{pid}.{n}").into_bytes()
}

/// The IMAP host named by a dealer's identity (`Dealer-<host>-<pid>` or
/// `Dealer-<host>-<pid>.<n>`).
pub fn host_of_dealer(identity: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(identity).ok()?;
    let (host, pid) = text.strip_prefix("Dealer-")?.rsplit_once('-')?;
    let pid_like = !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit() || b == b'.');
    (!host.is_empty() && pid_like).then(|| host.to_string())
}

/// Dealer to broker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DealerMsg {
    /// A notification to store; `id` is the dealer's submission id, which becomes the job id.
    Notify {
        /// Submission id, stable across resends.
        id: String,
        /// The notification's bytes, as Cyrus gave them.
        notification: Vec<u8>,
    },
}

impl DealerMsg {
    /// Parses a message from a dealer.
    pub fn parse(frames: &[Vec<u8>]) -> Result<Self, ProtocolError> {
        match command_of(frames)? {
            b"NOTIFY" => {
                expect(frames, "NOTIFY", 3)?;
                Ok(Self::Notify {
                    id: id(&frames[1], "NOTIFY")?,
                    notification: frames[2].clone(),
                })
            }
            other => Err(unknown(other)),
        }
    }

    /// The frames of this message.
    pub fn frames(&self) -> Frames {
        match self {
            Self::Notify { id, notification } => vec![
                b"NOTIFY".to_vec(),
                id.as_bytes().to_vec(),
                notification.clone(),
            ],
        }
    }
}

/// The broker's acknowledgement of a stored notification: `ACK id`.
pub fn ack_frames(id: &str) -> Frames {
    vec![b"ACK".to_vec(), id.as_bytes().to_vec()]
}

/// The id an `ACK` acknowledges.
pub fn parse_ack(frames: &[Vec<u8>]) -> Result<String, ProtocolError> {
    match command_of(frames)? {
        b"ACK" => {
            expect(frames, "ACK", 2)?;
            id(&frames[1], "ACK")
        }
        other => Err(unknown(other)),
    }
}

/// Worker to broker, on the controller socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ControlMsg {
    /// The worker can take `credit` more jobs now (replaces what it said before).
    Ready {
        /// Jobs it can take.
        credit: u32,
    },
    /// Still alive.
    Heartbeat,
    /// The job is processed and stored.
    Done {
        /// The job.
        id: String,
        /// The leaves of what it stored; `None` from a worker that does not report them.
        leaves: Option<Vec<LeafReport>>,
    },
    /// Retry the job later.
    Postpone {
        /// The job.
        id: String,
        /// Why.
        reason: String,
    },
    /// A collector must add data first.
    Collect {
        /// The job.
        id: String,
        /// Collector commands.
        commands: Vec<String>,
        /// The notification as the handlers left it.
        notification: Vec<u8>,
    },
    /// The job failed for good.
    Fail {
        /// The job.
        id: String,
        /// Why.
        reason: String,
    },
}

impl ControlMsg {
    /// Parses a message from a worker's controller socket.
    pub fn parse(frames: &[Vec<u8>]) -> Result<Self, ProtocolError> {
        match command_of(frames)? {
            b"READY" => {
                expect(frames, "READY", 2)?;
                Ok(Self::Ready {
                    credit: number(&frames[1], "READY", "credit")?,
                })
            }
            b"HEARTBEAT" => {
                expect(frames, "HEARTBEAT", 1)?;
                Ok(Self::Heartbeat)
            }
            b"DONE" => {
                if frames.len() != 3 {
                    expect(frames, "DONE", 2)?;
                }
                let leaves = frames
                    .get(2)
                    .map(|json| serde_json::from_slice(json))
                    .transpose()
                    .map_err(|_| ProtocolError::Invalid {
                        command: "DONE",
                        what: "leaves",
                    })?;
                Ok(Self::Done {
                    id: id(&frames[1], "DONE")?,
                    leaves,
                })
            }
            b"POSTPONE" => {
                expect(frames, "POSTPONE", 3)?;
                Ok(Self::Postpone {
                    id: id(&frames[1], "POSTPONE")?,
                    reason: lossy(&frames[2]),
                })
            }
            b"COLLECT" => {
                expect(frames, "COLLECT", 4)?;
                Ok(Self::Collect {
                    id: id(&frames[1], "COLLECT")?,
                    commands: commands(&frames[2], "COLLECT")?,
                    notification: frames[3].clone(),
                })
            }
            b"FAIL" => {
                expect(frames, "FAIL", 3)?;
                Ok(Self::Fail {
                    id: id(&frames[1], "FAIL")?,
                    reason: lossy(&frames[2]),
                })
            }
            other => Err(unknown(other)),
        }
    }

    /// The frames of this message.
    pub fn frames(&self) -> Frames {
        match self {
            Self::Ready { credit } => vec![b"READY".to_vec(), credit.to_string().into_bytes()],
            Self::Heartbeat => vec![b"HEARTBEAT".to_vec()],
            Self::Done { id, leaves } => {
                let mut frames = vec![b"DONE".to_vec(), id.as_bytes().to_vec()];
                if let Some(leaves) = leaves {
                    // A list of plain structs of strings always serializes.
                    frames.push(serde_json::to_vec(leaves).unwrap_or_default());
                }
                frames
            }
            Self::Postpone { id, reason } => {
                vec![
                    b"POSTPONE".to_vec(),
                    id.as_bytes().to_vec(),
                    reason.as_bytes().to_vec(),
                ]
            }
            Self::Collect {
                id,
                commands,
                notification,
            } => vec![
                b"COLLECT".to_vec(),
                id.as_bytes().to_vec(),
                commands.join(" ").into_bytes(),
                notification.clone(),
            ],
            Self::Fail { id, reason } => vec![
                b"FAIL".to_vec(),
                id.as_bytes().to_vec(),
                reason.as_bytes().to_vec(),
            ],
        }
    }
}

fn lossy(frame: &[u8]) -> String {
    String::from_utf8_lossy(frame).into_owned()
}

/// Broker to worker, on the controller socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToWorker {
    /// Take this job: fetch it with `GET`.
    Take {
        /// The job.
        id: String,
    },
    /// The broker is alive.
    Heartbeat,
}

impl ToWorker {
    /// Parses a message from the broker's controller socket.
    pub fn parse(frames: &[Vec<u8>]) -> Result<Self, ProtocolError> {
        match command_of(frames)? {
            b"TAKE" => {
                expect(frames, "TAKE", 2)?;
                Ok(Self::Take {
                    id: id(&frames[1], "TAKE")?,
                })
            }
            b"HEARTBEAT" => Ok(Self::Heartbeat),
            other => Err(unknown(other)),
        }
    }

    /// The frames of this message.
    pub fn frames(&self) -> Frames {
        match self {
            Self::Take { id } => vec![b"TAKE".to_vec(), id.as_bytes().to_vec()],
            Self::Heartbeat => vec![b"HEARTBEAT".to_vec()],
        }
    }
}

/// Worker to broker on the worker socket: `GET id`.
pub fn parse_get(frames: &[Vec<u8>]) -> Result<String, ProtocolError> {
    match command_of(frames)? {
        b"GET" => {
            expect(frames, "GET", 2)?;
            id(&frames[1], "GET")
        }
        other => Err(unknown(other)),
    }
}

/// `GET id`.
pub fn get_frames(id: &str) -> Frames {
    vec![b"GET".to_vec(), id.as_bytes().to_vec()]
}

/// Broker to worker on the worker socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DataReply {
    /// The job's notification.
    Job {
        /// The job.
        id: String,
        /// Its notification.
        notification: Vec<u8>,
        /// What the broker knows of the job, a JSON object: `collected` (true once a collector
        /// wrote the notification; only then may it hold the fields collectors add) and, for a
        /// notification with no `timestamp` of its own, `received_ms` (when the broker first
        /// stored it, so that every run of the job dates it alike). An optional fourth frame
        /// (brokers before it sent three).
        meta: Option<String>,
    },
    /// The job is not (or no longer) this worker's: drop it.
    NoJob {
        /// The job.
        id: String,
    },
}

impl DataReply {
    /// Parses a reply on the worker socket.
    pub fn parse(frames: &[Vec<u8>]) -> Result<Self, ProtocolError> {
        match command_of(frames)? {
            b"JOB" => {
                if frames.len() != 4 {
                    expect(frames, "JOB", 3)?;
                }
                let meta = match frames.get(3) {
                    Some(frame) => Some(text(frame, "JOB", "meta")?),
                    None => None,
                };
                Ok(Self::Job {
                    id: id(&frames[1], "JOB")?,
                    notification: frames[2].clone(),
                    meta,
                })
            }
            b"NOJOB" => {
                expect(frames, "NOJOB", 2)?;
                Ok(Self::NoJob {
                    id: id(&frames[1], "NOJOB")?,
                })
            }
            other => Err(unknown(other)),
        }
    }

    /// The frames of this message.
    pub fn frames(&self) -> Frames {
        match self {
            Self::Job {
                id,
                notification,
                meta,
            } => {
                let mut frames = vec![
                    b"JOB".to_vec(),
                    id.as_bytes().to_vec(),
                    notification.clone(),
                ];
                if let Some(meta) = meta {
                    frames.push(meta.as_bytes().to_vec());
                }
                frames
            }
            Self::NoJob { id } => vec![b"NOJOB".to_vec(), id.as_bytes().to_vec()],
        }
    }
}

/// Collector to broker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CollectorMsg {
    /// The collector on `host` serves `commands` and can take `credit` more jobs now.
    Ready {
        /// The IMAP host it runs on.
        host: String,
        /// Commands it serves.
        commands: Vec<String>,
        /// Jobs it can take.
        credit: u32,
    },
    /// Still alive.
    Heartbeat,
    /// The job with the collected data added.
    Done {
        /// The job.
        id: String,
        /// The updated notification.
        notification: Vec<u8>,
    },
    /// The data could not be collected now (Cyrus or LDAP unreachable or busy): retry the job
    /// later.
    Postpone {
        /// The job.
        id: String,
        /// Why.
        reason: String,
    },
    /// The job cannot be collected at all (its notification is not one): it fails for good.
    Fail {
        /// The job.
        id: String,
        /// Why.
        reason: String,
    },
}

impl CollectorMsg {
    /// Parses a message from a collector.
    pub fn parse(frames: &[Vec<u8>]) -> Result<Self, ProtocolError> {
        match command_of(frames)? {
            b"READY" => {
                expect(frames, "READY", 4)?;
                let host = text(&frames[1], "READY", "host")?;
                if host.is_empty() || host.contains(char::is_whitespace) {
                    return Err(ProtocolError::Invalid {
                        command: "READY",
                        what: "host",
                    });
                }
                Ok(Self::Ready {
                    host,
                    commands: commands(&frames[2], "READY")?,
                    credit: number(&frames[3], "READY", "credit")?,
                })
            }
            b"HEARTBEAT" => {
                expect(frames, "HEARTBEAT", 1)?;
                Ok(Self::Heartbeat)
            }
            b"DONE" => {
                expect(frames, "DONE", 3)?;
                Ok(Self::Done {
                    id: id(&frames[1], "DONE")?,
                    notification: frames[2].clone(),
                })
            }
            b"POSTPONE" => {
                expect(frames, "POSTPONE", 3)?;
                Ok(Self::Postpone {
                    id: id(&frames[1], "POSTPONE")?,
                    reason: lossy(&frames[2]),
                })
            }
            b"FAIL" => {
                expect(frames, "FAIL", 3)?;
                Ok(Self::Fail {
                    id: id(&frames[1], "FAIL")?,
                    reason: lossy(&frames[2]),
                })
            }
            other => Err(unknown(other)),
        }
    }

    /// The frames of this message.
    pub fn frames(&self) -> Frames {
        match self {
            Self::Ready {
                host,
                commands,
                credit,
            } => vec![
                b"READY".to_vec(),
                host.as_bytes().to_vec(),
                commands.join(" ").into_bytes(),
                credit.to_string().into_bytes(),
            ],
            Self::Heartbeat => vec![b"HEARTBEAT".to_vec()],
            Self::Done { id, notification } => vec![
                b"DONE".to_vec(),
                id.as_bytes().to_vec(),
                notification.clone(),
            ],
            Self::Postpone { id, reason } => vec![
                b"POSTPONE".to_vec(),
                id.as_bytes().to_vec(),
                reason.as_bytes().to_vec(),
            ],
            Self::Fail { id, reason } => vec![
                b"FAIL".to_vec(),
                id.as_bytes().to_vec(),
                reason.as_bytes().to_vec(),
            ],
        }
    }
}

/// Broker to collector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToCollector {
    /// Run these commands for this job.
    Collect {
        /// The job.
        id: String,
        /// The commands.
        commands: Vec<String>,
        /// The notification.
        notification: Vec<u8>,
    },
    /// The broker is alive.
    Heartbeat,
}

impl ToCollector {
    /// Parses a message from the broker to a collector.
    pub fn parse(frames: &[Vec<u8>]) -> Result<Self, ProtocolError> {
        match command_of(frames)? {
            b"COLLECT" => {
                expect(frames, "COLLECT", 4)?;
                Ok(Self::Collect {
                    id: id(&frames[1], "COLLECT")?,
                    commands: commands(&frames[2], "COLLECT")?,
                    notification: frames[3].clone(),
                })
            }
            b"HEARTBEAT" => Ok(Self::Heartbeat),
            other => Err(unknown(other)),
        }
    }

    /// The frames of this message.
    pub fn frames(&self) -> Frames {
        match self {
            Self::Collect {
                id,
                commands,
                notification,
            } => vec![
                b"COLLECT".to_vec(),
                id.as_bytes().to_vec(),
                commands.join(" ").into_bytes(),
                notification.clone(),
            ],
            Self::Heartbeat => vec![b"HEARTBEAT".to_vec()],
        }
    }
}

/// The admin command line to the broker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdminRequest {
    /// Jobs per state, workers, collectors, counters.
    Status,
    /// The newest FAILED jobs, at most `limit`.
    Failed {
        /// How many.
        limit: u32,
    },
    /// Return one FAILED job to PENDING.
    Retry {
        /// The job.
        id: String,
    },
    /// Return every FAILED job to PENDING.
    RetryAll,
    /// Sign a checkpoint of the verifiable log now.
    Checkpoint,
    /// Keep an audit record in the verifiable log; answered once it is committed.
    Audit(Box<AuditRecord>),
}

/// One action on the archive by an administrator or an API client, as the broker keeps it (its
/// canonical bytes in the job store, their digest in an audit leaf). Never holds a secret: the
/// callers leave passwords, signing secrets and private keys out of `params`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditRecord {
    /// The action's id, unique (the leaf's id): an `AUDIT` sent again with it appends nothing.
    pub id: String,
    /// When the action was done, RFC 3339 UTC with milliseconds.
    pub time: String,
    /// What acted: `cli` (the admin command line) or `api` (bonnie-api).
    pub source: String,
    /// Who: the OS user running `bonnie`, or the user an API client acts for
    /// (`X-Request-User`; empty when it names none).
    pub user: String,
    /// The API client (its HTTP Basic name); none for the command line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client: Option<String>,
    /// Where an API request came from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer: Option<String>,
    /// What: the JSON-RPC method, or the command (`keys allow`).
    pub action: String,
    /// The action's parameters, secrets left out.
    pub params: Value,
    /// How many items it read or changed, when that is known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u64>,
    /// `ok`, `error` (see `error`), or `requested` for a change recorded before it is made.
    pub outcome: String,
    /// What went wrong, when `outcome` is `error`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The longest `AUDIT` record accepted, as JSON, in bytes: callers cut long strings first.
pub const MAX_AUDIT_BYTES: usize = 64 * 1024;

impl AdminRequest {
    /// Parses an admin request.
    pub fn parse(frames: &[Vec<u8>]) -> Result<Self, ProtocolError> {
        match command_of(frames)? {
            b"STATUS" => Ok(Self::Status),
            b"FAILED" => {
                expect(frames, "FAILED", 2)?;
                Ok(Self::Failed {
                    limit: number(&frames[1], "FAILED", "limit")?,
                })
            }
            b"RETRY" => {
                expect(frames, "RETRY", 2)?;
                Ok(Self::Retry {
                    id: id(&frames[1], "RETRY")?,
                })
            }
            b"RETRY-ALL" => Ok(Self::RetryAll),
            b"CHECKPOINT" => Ok(Self::Checkpoint),
            b"AUDIT" => {
                expect(frames, "AUDIT", 2)?;
                let invalid = ProtocolError::Invalid {
                    command: "AUDIT",
                    what: "record",
                };
                if frames[1].len() > MAX_AUDIT_BYTES {
                    return Err(invalid);
                }
                let record: AuditRecord =
                    serde_json::from_slice(&frames[1]).map_err(|_| invalid.clone())?;
                id(record.id.as_bytes(), "AUDIT")?;
                Ok(Self::Audit(Box::new(record)))
            }
            other => Err(unknown(other)),
        }
    }

    /// The frames of this message.
    pub fn frames(&self) -> Frames {
        match self {
            Self::Status => vec![b"STATUS".to_vec()],
            Self::Failed { limit } => vec![b"FAILED".to_vec(), limit.to_string().into_bytes()],
            Self::Retry { id } => vec![b"RETRY".to_vec(), id.as_bytes().to_vec()],
            Self::RetryAll => vec![b"RETRY-ALL".to_vec()],
            Self::Checkpoint => vec![b"CHECKPOINT".to_vec()],
            // A struct of strings, numbers and a JSON value always serializes.
            Self::Audit(record) => vec![
                b"AUDIT".to_vec(),
                serde_json::to_vec(record).unwrap_or_default(),
            ],
        }
    }
}

/// The broker's answer to an admin request: `OK json` or `ERROR message`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdminReply {
    /// The answer, JSON text.
    Ok(String),
    /// What went wrong.
    Error(String),
}

impl AdminReply {
    /// Parses the broker's answer.
    pub fn parse(frames: &[Vec<u8>]) -> Result<Self, ProtocolError> {
        match command_of(frames)? {
            b"OK" => {
                expect(frames, "OK", 2)?;
                Ok(Self::Ok(text(&frames[1], "OK", "JSON")?))
            }
            b"ERROR" => {
                expect(frames, "ERROR", 2)?;
                Ok(Self::Error(lossy(&frames[1])))
            }
            other => Err(unknown(other)),
        }
    }

    /// The frames of this message.
    pub fn frames(&self) -> Frames {
        match self {
            Self::Ok(json) => vec![b"OK".to_vec(), json.as_bytes().to_vec()],
            Self::Error(message) => vec![b"ERROR".to_vec(), message.as_bytes().to_vec()],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(parts: &[&[u8]]) -> Frames {
        parts.iter().map(|p| p.to_vec()).collect()
    }

    #[test]
    fn every_message_round_trips() {
        let control = [
            ControlMsg::Ready { credit: 64 },
            ControlMsg::Heartbeat,
            ControlMsg::Done {
                id: "a1".into(),
                leaves: None,
            },
            ControlMsg::Done {
                id: "a1".into(),
                leaves: Some(vec![LeafReport {
                    id: "a1".into(),
                    record_digest: "00".repeat(32),
                    payload_digests: vec!["11".repeat(32)],
                }]),
            },
            ControlMsg::Postpone {
                id: "a1".into(),
                reason: "Logout before Login".into(),
            },
            ControlMsg::Collect {
                id: "a1".into(),
                commands: vec!["FETCH".into(), "HEADER".into()],
                notification: b"{}".to_vec(),
            },
            ControlMsg::Fail {
                id: "a1".into(),
                reason: "bad".into(),
            },
        ];
        for msg in control {
            assert_eq!(ControlMsg::parse(&msg.frames()).unwrap(), msg);
        }
        let collector = [
            CollectorMsg::Ready {
                host: "imap1".into(),
                commands: vec!["FETCH".into()],
                credit: 4,
            },
            CollectorMsg::Postpone {
                id: "a1".into(),
                reason: "Cyrus is unreachable".into(),
            },
            CollectorMsg::Fail {
                id: "a1".into(),
                reason: "not a notification".into(),
            },
        ];
        for msg in collector {
            assert_eq!(CollectorMsg::parse(&msg.frames()).unwrap(), msg);
        }
        let notify = DealerMsg::Notify {
            id: "x".into(),
            notification: vec![0xff, 0xfe],
        };
        assert_eq!(DealerMsg::parse(&notify.frames()).unwrap(), notify);
        assert_eq!(parse_ack(&ack_frames("x")).unwrap(), "x");
        for meta in [None, Some(r#"{"collected":true}"#.to_string())] {
            let job = DataReply::Job {
                id: "x".into(),
                notification: b"{}".to_vec(),
                meta,
            };
            assert_eq!(DataReply::parse(&job.frames()).unwrap(), job);
        }
        let bad_time = [b"JOB".to_vec(), b"x".to_vec(), b"{}".to_vec(), vec![0xff]];
        assert!(DataReply::parse(&bad_time).is_err());
        for request in [
            AdminRequest::Status,
            AdminRequest::Failed { limit: 5 },
            AdminRequest::RetryAll,
            AdminRequest::Checkpoint,
            AdminRequest::Audit(Box::new(audit_record())),
        ] {
            assert_eq!(AdminRequest::parse(&request.frames()).unwrap(), request);
        }
    }

    fn audit_record() -> AuditRecord {
        AuditRecord {
            id: "api-1764590000000-00ff".into(),
            time: "2025-12-01T11:53:20.000Z".into(),
            source: "api".into(),
            user: "john.doe@example.org".into(),
            client: Some("roundcube".into()),
            peer: Some("127.0.0.1:4242".into()),
            action: "event.changelog".into(),
            params: serde_json::json!({ "uid": "e1", "folder": "Calendar" }),
            count: Some(3),
            outcome: "ok".into(),
            error: None,
        }
    }

    #[test]
    fn an_audit_record_with_an_unknown_field_a_bad_id_or_too_many_bytes_is_refused() {
        let mut json = serde_json::to_value(audit_record()).unwrap();
        json["password"] = serde_json::json!("hunter2");
        let frames = f(&[b"AUDIT", json.to_string().as_bytes()]);
        assert!(AdminRequest::parse(&frames).is_err());
        let spaced = AuditRecord {
            id: "has space".into(),
            ..audit_record()
        };
        assert!(AdminRequest::parse(&AdminRequest::Audit(Box::new(spaced)).frames()).is_err());
        let huge = AuditRecord {
            params: serde_json::json!("x".repeat(MAX_AUDIT_BYTES)),
            ..audit_record()
        };
        assert!(AdminRequest::parse(&AdminRequest::Audit(Box::new(huge)).frames()).is_err());
        assert!(AdminRequest::parse(&f(&[b"AUDIT"])).is_err());
    }

    #[test]
    fn the_dealer_identity_names_its_host() {
        assert_eq!(
            host_of_dealer(&dealer_identity("imap-1.example.org", 42)).as_deref(),
            Some("imap-1.example.org")
        );
        assert_eq!(
            host_of_dealer(&dealer_connection_identity("imap-1", 42, 7)).as_deref(),
            Some("imap-1")
        );
        assert_eq!(
            host_of_dealer(&dealer_connection_identity("imap-1", 42, 7)).as_deref(),
            Some("imap-1")
        );
        assert_eq!(host_of_dealer(b"Dealer-imap1"), None);
        assert_eq!(host_of_dealer(b"\x00\x01"), None);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert_eq!(ControlMsg::parse(&[]), Err(ProtocolError::Empty));
        assert!(
            ControlMsg::parse(&f(&[b"LAUNCH"]))
                .unwrap_err()
                .is_unknown_command()
        );
        assert!(matches!(
            ControlMsg::parse(&f(&[b"DONE"])),
            Err(ProtocolError::FrameCount { .. })
        ));
        assert!(matches!(
            ControlMsg::parse(&f(&[b"DONE", b"a1", b"not json"])),
            Err(ProtocolError::Invalid { what: "leaves", .. })
        ));
        assert!(matches!(
            ControlMsg::parse(&f(&[b"READY", b"many"])),
            Err(ProtocolError::Invalid { .. })
        ));
        assert!(matches!(
            ControlMsg::parse(&f(&[b"DONE", b"has space"])),
            Err(ProtocolError::Invalid { .. })
        ));
        assert!(matches!(
            ControlMsg::parse(&f(&[b"DONE", &[0xff]])),
            Err(ProtocolError::Invalid { .. })
        ));
        assert!(DealerMsg::parse(&f(&[&[0u8; 3], b"", b""])).is_err());
        assert!(CollectorMsg::parse(&f(&[b"READY", b"imap1", b"", b"1"])).is_err());
    }
}
