//! Mail system logs as bonnie reads them: the syslog frame of a line, what a Postfix line
//! says, and the stitching of lines from any number of hosts into one trace per message.
//!
//! # Reading a line
//! [`parse_line`] reads one line into a [`ParsedLine`]: its [`SyslogLine`] frame (RFC 5424,
//! RFC 3164, or the plain lines of a mail.log or Postfix's `maillog_file`, with syslog's
//! `Dec  1 10:00:00`, `maillog_file`'s `Dec 01 10:00:00` and RFC 3339 stamps), the Postfix
//! [`Program`] that logged it, and its [`Event`]. A stamp without a year gets the latest year
//! that does not put it more than a day after the line was received, so a line stamped Dec 31
//! and received on Jan 1 is last year's. Nothing fails: a line of a form not modelled is
//! [`Event::Unknown`] with its text, and the [`Stitcher`] counts it.
//!
//! # Stitching: facts keyed by queue file, merged in any order
//! Postfix names a message by its queue ID, which is unique only within one instance's queue
//! on one host, so every fact is keyed by a [`QueueKey`] (host, instance, queue ID). Each line
//! contributes a one-fact [`QueueFacts`] ([`LineFacts::of`]); the state of a queue file is the
//! merge of all of them. The merge is a union of sets (deliveries, notifications, verdicts)
//! and the least value of each single-valued field (first seen, client, Message-ID, envelope,
//! expiry, removal), so it is commutative, associative and idempotent: two workers that see
//! a message's lines in any order, or the same line twice, and a store that merges their
//! facts with compare-and-swap (as bonnie's derived views are written, decision 24), reach
//! the same state as one reader of the whole log.
//!
//! Links between queue files are facts of the linking side only, resolved when a trace is
//! read, so they need no order either: a delivery's `250 ... queued as NEWQID` names the
//! next hop's queue ID (among the queue files with that ID first seen within an hour of the
//! delivery, the one on the host `relay=` names, else the nearest), and a bounce daemon's `sender non-delivery
//! notification: NEWQID` names the notification's queue file in the same instance. A
//! [`Trace`] is the set of queue files linked either way to the one looked up, ordered from
//! the first one along the links. Look-ups go by Message-ID, queue ID or address; a trace
//! carries each recipient's outcomes and the `SESSIONID` Cyrus's LMTP reply names, which joins
//! it to the archive's MessageNew.
//!
//! # Storing
//! [`store`] is how the facts are kept in bonnie's storage (one record per queue file in
//! `postfix-queues`, merged into with compare-and-swap, and its index terms), shared by the
//! `postfix` handler that writes them and `bonnie trace`, which reads them back into a
//! [`Stitcher`] with [`Stitcher::merge_queue`].
//!
//! Short queue IDs repeat once the inode is reused; two messages with the same short ID on
//! the same host and instance share a key here. Long queue IDs (`enable_long_queue_ids`)
//! do not repeat.

#![forbid(unsafe_code)]

pub mod batch;
mod event;
mod facts;
mod postfix;
mod queue_id;
pub mod roundcube;
pub mod sample;
mod stamp;
mod stitch;
pub mod store;
mod syslog;
mod trace;

pub use event::{
    ClientInfo, Delays, Delivery, Event, NotificationKind, Program, Severity, Status, Verdict,
    VerdictSource,
};
pub use facts::{
    Envelope, Expiry, LineFacts, Notification, Pickup, QueueFacts, QueueKey, Timed, Unqueued,
};
pub use postfix::{parse_message, parse_program};
pub use queue_id::{QueueId, QueueIdForm};
pub use stitch::{LineCounts, Stitcher};
pub use syslog::{SyslogLine, SyslogParser};
pub use trace::{Hop, Trace, Via};

use jiff::Timestamp;

/// One log line read: its frame, the Postfix program that logged it (`None` for other
/// programs and unframed lines) and what it says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedLine {
    /// Who logged what when.
    pub frame: SyslogLine,
    /// The Postfix instance and daemon.
    pub program: Option<Program>,
    /// The line's meaning; `Unknown` for other programs' lines.
    pub event: Event,
}

/// Reads `line`, received at `received`, with `parser`'s zone for stamps without one.
pub fn parse_line(parser: &SyslogParser, line: &str, received: Timestamp) -> ParsedLine {
    let frame = parser.parse(line, received);
    let program = frame.program.as_deref().and_then(parse_program);
    let event = match &program {
        Some(program) => parse_message(program, &frame.message),
        None => Event::Unknown {
            text: frame.message.clone(),
        },
    };
    ParsedLine {
        frame,
        program,
        event,
    }
}
