//! What a Postfix log line says, as typed events: one variant per line form that tracing a
//! message needs, `Unknown` (with the text) for every other line.

use crate::queue_id::QueueId;
use serde::{Deserialize, Serialize};

/// A Postfix program from a syslog tag: `postfix/smtpd` is daemon `smtpd` of instance
/// `postfix`; `postfix-relay/smtp` is a second instance's (its `syslog_name`); in
/// `postfix/submission/smtpd` the service's own `syslog_name` adds a middle part.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Program {
    /// The first part of the tag: the instance whose queue the line's IDs belong to.
    pub instance: String,
    /// The last part: the daemon (`smtpd`, `cleanup`, `qmgr`, `lmtp`, ...).
    pub daemon: String,
}

/// One Postfix log line's meaning.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// smtpd: `connect from name[addr]`.
    Connect {
        /// `name[addr]` (with `:port` where `smtpd_client_port_logging` is on).
        client: String,
    },
    /// smtpd: `disconnect from name[addr] ehlo=1 mail=1 ...`.
    Disconnect {
        /// `name[addr]`.
        client: String,
        /// The command counts, as logged.
        commands: String,
    },
    /// smtpd (or qmqpd): `QID: client=name[addr]` with the SASL login, if any.
    Client {
        /// The queue file.
        queue_id: QueueId,
        /// Who handed the message in.
        client: ClientInfo,
    },
    /// pickup: `QID: uid=N from=<sender>`, mail from the local `sendmail`.
    Pickup {
        /// The queue file.
        queue_id: QueueId,
        /// The submitting user's uid.
        uid: u32,
        /// The envelope sender.
        sender: String,
    },
    /// cleanup: `QID: message-id=<...>`.
    MessageId {
        /// The queue file.
        queue_id: QueueId,
        /// The header's value as logged (usually with its angle brackets).
        message_id: String,
    },
    /// qmgr: `QID: from=<sender>, size=N, nrcpt=N (queue active)`.
    Queued {
        /// The queue file.
        queue_id: QueueId,
        /// The envelope sender (empty for a bounce).
        sender: String,
        /// The message's size in bytes.
        size: u64,
        /// Its number of recipients.
        nrcpt: u32,
    },
    /// qmgr: `QID: removed`, the queue file is gone.
    Removed {
        /// The queue file.
        queue_id: QueueId,
    },
    /// qmgr: `QID: from=<sender>, status=expired, returned to sender`.
    Expired {
        /// The queue file.
        queue_id: QueueId,
        /// The envelope sender.
        sender: String,
    },
    /// smtp, lmtp, local, virtual, pipe, error, ...: `QID: to=<...>, relay=..., status=...`.
    Delivery {
        /// The queue file.
        queue_id: QueueId,
        /// The recipient's outcome.
        delivery: Delivery,
    },
    /// bounce: `QID: sender non-delivery notification: NEWQID` (and delay and success
    /// notifications, and the postmaster's copies).
    Notification {
        /// The original message's queue file.
        queue_id: QueueId,
        /// To whom, about what.
        kind: NotificationKind,
        /// The notification's own queue file.
        notification_id: QueueId,
    },
    /// A decision of smtpd, postscreen, a milter or header/body checks: `reject`,
    /// `milter-hold`, `discard`, `warning`, ... with the context Postfix logs.
    Verdict {
        /// The queue file; `None` for `NOQUEUE`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        queue_id: Option<QueueId>,
        /// The decision.
        verdict: Verdict,
    },
    /// postscreen: `CONNECT from [addr]:port to [addr]:port`.
    PostscreenConnect {
        /// `[addr]:port` of the client.
        client: String,
    },
    /// postscreen: `PASS NEW [addr]:port` or `PASS OLD [addr]:port`.
    PostscreenPass {
        /// `[addr]:port`.
        client: String,
        /// `NEW`: passed all tests now; `OLD`: known from the cache.
        new: bool,
    },
    /// postscreen: `DNSBL rank N for [addr]:port`.
    PostscreenDnsbl {
        /// `[addr]:port`.
        client: String,
        /// The summed DNSBL score.
        rank: i32,
    },
    /// `warning:`, `error:`, `fatal:` or `panic:` lines.
    Diagnostic {
        /// How bad.
        severity: Severity,
        /// The queue file the line names, if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        queue_id: Option<QueueId>,
        /// The text after the severity.
        text: String,
    },
    /// A Postfix line of a form not modelled here, or not a Postfix line at all.
    Unknown {
        /// The message text, unchanged.
        text: String,
    },
}

/// smtpd's `client=` line (`smtpd_sasl_mail_log`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ClientInfo {
    /// `name[addr]` of the SMTP client.
    pub client: String,
    /// `sasl_method=`, the SASL mechanism of an authenticated client.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sasl_method: Option<String>,
    /// `sasl_username=`, the login.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sasl_username: Option<String>,
    /// `sasl_sender=`, the MAIL FROM AUTH= parameter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sasl_sender: Option<String>,
    /// `orig_queue_id=`, the before-filter queue ID an XFORWARD client named.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub orig_queue_id: Option<String>,
    /// `orig_client=`, the client an XCLIENT/XFORWARD proxy named.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub orig_client: Option<String>,
}

/// A delivery agent's outcome for one recipient (`global/log_adhoc.c`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Delivery {
    /// `to=<...>`: the recipient.
    pub recipient: String,
    /// `orig_to=<...>`: the address before aliasing or rewriting, if it differed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub orig_recipient: Option<String>,
    /// `relay=`: `host[addr]:port`, `local`, `none`, `private/dovecot-lmtp`...
    pub relay: String,
    /// `conn_use=`: the how-manieth delivery over a reused connection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conn_use: Option<u32>,
    /// `delay=`: seconds from arrival to this outcome, in microseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay_us: Option<u64>,
    /// `delays=a/b/c/d`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delays: Option<Delays>,
    /// `dsn=`: the enhanced status code.
    pub dsn: String,
    /// `status=`.
    pub status: Status,
    /// The parenthesised reply or reason after the status.
    pub reply: String,
    /// The next hop's queue ID from `250 ... queued as NEWQID`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queued_as: Option<QueueId>,
    /// The `SESSIONID=<...>` of Cyrus's LMTP reply: the session id of its notifications.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lmtp_session_id: Option<String>,
}

/// `delays=a/b/c/d`, each in microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Delays {
    /// Before the queue manager: arrival until the active queue.
    pub before_qmgr_us: u64,
    /// In the queue manager: active queue until the delivery agent.
    pub in_qmgr_us: u64,
    /// Connection set-up (DNS, HELO, TLS).
    pub connect_us: u64,
    /// Transmission.
    pub transmit_us: u64,
}

/// `status=` of a delivery line.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Delivered (or relayed).
    Sent,
    /// Will be retried.
    Deferred,
    /// Permanently failed; a non-delivery notification follows.
    Bounced,
    /// Given up after `maximal_queue_lifetime`.
    Expired,
    /// An address verification probe found the address deliverable.
    Deliverable,
    /// ... or undeliverable.
    Undeliverable,
    /// Any other word.
    Other(String),
}

/// Which notification the bounce daemon sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NotificationKind {
    /// `sender non-delivery notification`: the bounce.
    SenderNonDelivery,
    /// `sender delay notification`.
    SenderDelay,
    /// `sender delivery status notification`: a requested success DSN.
    SenderDeliveryStatus,
    /// `postmaster non-delivery notification`: the postmaster's copy of a bounce.
    PostmasterNonDelivery,
    /// `postmaster delay notification`.
    PostmasterDelay,
}

/// Who decided a [`Verdict`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VerdictSource {
    /// smtpd's access restrictions (`smtpd_check.c`'s `log_whatsup`).
    Smtpd,
    /// postscreen's after-220 tests.
    Postscreen,
    /// A milter (`milter-reject`, `milter-hold`, `milter-discard`).
    Milter,
    /// cleanup's header_checks and body_checks.
    ContentCheck,
}

/// A reject, hold, discard or warning with the context Postfix logs after `;`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Verdict {
    /// Who decided.
    pub source: VerdictSource,
    /// `reject`, `reject_warning`, `milter-reject`, `hold`, `discard`, `warning`, ...
    pub action: String,
    /// The SMTP stage (`RCPT`, `END-OF-MESSAGE`, ...) or, for content checks, the class
    /// and the header or body line (`header Subject: ...`).
    pub stage: String,
    /// `name[addr]` of the client (`[addr]:port` for postscreen).
    pub client: String,
    /// The reply or reason text.
    pub text: String,
    /// `from=<...>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sender: Option<String>,
    /// `to=<...>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recipient: Option<String>,
    /// `proto=`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proto: Option<String>,
    /// `helo=<...>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub helo: Option<String>,
}

/// The severity word of a diagnostic line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// `warning:`.
    Warning,
    /// `error:`.
    Error,
    /// `fatal:`.
    Fatal,
    /// `panic:`.
    Panic,
}
