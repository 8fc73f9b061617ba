//! The broker's scheduling state in memory: unfinished jobs, the queues of pending jobs (in
//! arrival order, so a job that returns to the queue gets its old place back), the postponed
//! jobs by due time, and the connected workers and collectors with their credit. Every
//! change that must be stored comes back as an [`Update`]. Of a long queue for the workers
//! only its head ([`WORKER_WINDOW`] jobs) is in memory; the rest waits in the store and is
//! read back in arrival order as the head drains, so memory does not grow with a backlog.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use crate::store::{Kind, Rewrite, State, Unfinished, Update};

/// A peer's identity on its router.
pub type Identity = Vec<u8>;

/// An unfinished job.
#[derive(Debug, Clone)]
pub struct Job {
    seq: i64,
    host: String,
    state: State,
    kind: Kind,
    commands: Vec<String>,
    attempts: u32,
    owner: Option<Identity>,
    since_ms: i64,
    due_ms: i64,
    /// The notification, kept while the job waits so that `GET` needs no read of the store
    /// (absent when the cache was full, or after a restart).
    payload: Option<Vec<u8>>,
    /// True once a collector wrote the notification.
    collected: bool,
}

/// Notification bytes kept in memory at most; beyond, `GET` reads the store.
const PAYLOAD_CACHE_BYTES: usize = 256 * 1024 * 1024;

/// Pending worker jobs kept in memory at most; later ones wait in the store only. About
/// 500 bytes each: a million pending jobs held in memory took 470 MiB without their
/// notifications (750 MiB with them), where this head takes a few MiB.
pub const WORKER_WINDOW: usize = 10_000;

/// A connected worker or collector.
#[derive(Debug, Clone)]
pub struct Peer {
    /// Jobs it can take now.
    pub credit: u32,
    /// When it was last heard from (ms since the epoch).
    pub last_seen_ms: i64,
    /// Jobs allocated to it.
    pub jobs: HashSet<String>,
    /// For collectors: the IMAP host.
    pub host: String,
    /// For collectors: the commands it serves.
    pub commands: BTreeSet<String>,
    /// The name of the key it authenticated with (CURVE), which must be behind every message
    /// under its identity.
    pub user: Option<String>,
}

impl Peer {
    fn new(now_ms: i64) -> Self {
        Self {
            credit: 0,
            last_seen_ms: now_ms,
            jobs: HashSet::new(),
            host: String::new(),
            commands: BTreeSet::new(),
            user: None,
        }
    }
}

/// What a worker or collector said of a job.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// Processed and stored.
    Done,
    /// Retry later.
    Postpone(String),
    /// A collector must add data (commands, updated notification).
    Collect(Vec<String>, Vec<u8>),
    /// Collected: back to the workers with this notification.
    Collected(Vec<u8>),
    /// Failed for good.
    Fail(String),
}

/// How postponed jobs are retried.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// First delay (ms).
    pub delay_ms: i64,
    /// Longest delay (ms).
    pub max_delay_ms: i64,
    /// Postponements after which the job fails.
    pub max_postpones: u32,
}

impl RetryPolicy {
    fn delay(&self, attempts: u32) -> i64 {
        let doubled = self
            .delay_ms
            .saturating_mul(1i64 << attempts.saturating_sub(1).min(30));
        doubled.min(self.max_delay_ms)
    }
}

/// The scheduling state.
#[derive(Default)]
pub struct Jobs {
    jobs: HashMap<String, Job>,
    worker_queue: BTreeMap<i64, String>,
    collector_queues: HashMap<String, BTreeMap<i64, String>>,
    postponed: BTreeMap<(i64, i64), String>,
    /// Connected workers.
    pub workers: HashMap<Identity, Peer>,
    /// Connected collectors.
    pub collectors: HashMap<Identity, Peer>,
    round_robin: usize,
    cached_bytes: usize,
    /// Set while pending worker jobs wait in the store only: the arrival number from which
    /// on every PENDING worker job of the store is not in memory.
    backlog_from: Option<i64>,
    /// The highest arrival number of a job put in memory: a job below it (a FAILED job
    /// retried) always goes to memory, since reading the store from it would read again jobs
    /// that are in memory already.
    newest_in_memory: i64,
}

/// Jobs in memory, per state and kind, for `bonnie status`.
#[derive(Debug, Default, Clone, Copy, serde::Serialize)]
pub struct Counts {
    /// Waiting for a worker.
    pub pending_worker: usize,
    /// Waiting for a collector.
    pub pending_collector: usize,
    /// Allocated to a worker or collector.
    pub alloc: usize,
    /// Waiting to be retried.
    pub postponed: usize,
}

fn update(id: &str, job: &Job, notification: Option<Rewrite>, reason: Option<String>) -> Update {
    Update {
        id: id.to_string(),
        state: if job.state == State::Alloc {
            State::Pending
        } else {
            job.state
        },
        kind: job.kind,
        commands: job.commands.clone(),
        notification,
        attempts: job.attempts,
        reason,
        due_ms: job.due_ms,
        collected: job.collected,
    }
}

impl Jobs {
    /// Loads the unfinished jobs of the store: every one but the pending worker jobs from
    /// `backlog_from` on, which stay in the store.
    pub fn load(&mut self, unfinished: Vec<Unfinished>, backlog_from: Option<i64>) {
        self.backlog_from = backlog_from;
        self.take_from_store(unfinished);
    }

    /// Adds jobs read from the store (without their notifications).
    fn take_from_store(&mut self, unfinished: Vec<Unfinished>) {
        for u in unfinished {
            self.newest_in_memory = self.newest_in_memory.max(u.seq);
            let job = Job {
                seq: u.seq,
                host: u.host,
                state: u.state,
                kind: u.kind,
                commands: u.commands,
                attempts: u.attempts,
                owner: None,
                since_ms: 0,
                due_ms: u.due_ms,
                payload: None,
                collected: u.collected,
            };
            self.enqueue(&u.id, &job);
            self.jobs.insert(u.id, job);
        }
    }

    /// A job just stored as PENDING for the workers: new, or a FAILED job retried. It waits
    /// in the store only when the head of the queue is full (or jobs before it wait there).
    pub fn add(&mut self, seq: i64, id: String, host: String, payload: Option<Vec<u8>>) {
        let spill = match self.backlog_from {
            Some(from) => seq >= from,
            None => seq > self.newest_in_memory && self.worker_queue.len() >= WORKER_WINDOW,
        };
        if spill {
            self.backlog_from.get_or_insert(seq);
            return;
        }
        self.newest_in_memory = self.newest_in_memory.max(seq);
        let payload = self.cacheable(payload);
        let job = Job {
            seq,
            host,
            state: State::Pending,
            kind: Kind::Worker,
            commands: Vec::new(),
            attempts: 0,
            owner: None,
            since_ms: 0,
            due_ms: 0,
            payload,
            collected: false,
        };
        self.enqueue(&id, &job);
        self.jobs.insert(id, job);
    }

    /// When the head of the workers' queue is half empty and jobs wait in the store: the
    /// arrival number to read PENDING worker jobs from, and how many to read.
    pub fn wanted_from_store(&self) -> Option<(i64, usize)> {
        let from = self.backlog_from?;
        let room = WORKER_WINDOW - self.worker_queue.len().min(WORKER_WINDOW);
        (room >= WORKER_WINDOW / 2).then_some((from, room))
    }

    /// Takes the pending worker jobs read from the store as [`Jobs::wanted_from_store`] asked
    /// (`asked` of them, in arrival order); fewer than asked means none waits there any more.
    pub fn read_from_store(&mut self, jobs: Vec<Unfinished>, asked: usize) {
        let next = jobs.last().map(|u| u.seq + 1);
        let exhausted = jobs.len() < asked;
        self.take_from_store(jobs);
        self.backlog_from = if exhausted {
            None
        } else {
            next.or(self.backlog_from)
        };
    }

    /// The payload to keep in memory, if the cache has room for it.
    fn cacheable(&mut self, payload: Option<Vec<u8>>) -> Option<Vec<u8>> {
        let payload = payload?;
        if self.cached_bytes + payload.len() > PAYLOAD_CACHE_BYTES {
            return None;
        }
        self.cached_bytes += payload.len();
        Some(payload)
    }

    /// True when a collector wrote the job's notification.
    pub fn collected(&self, id: &str) -> bool {
        self.jobs.get(id).is_some_and(|j| j.collected)
    }

    /// A waiting job's notification, if it is kept in memory.
    pub fn payload(&self, id: &str) -> Option<&[u8]> {
        self.jobs.get(id).and_then(|j| j.payload.as_deref())
    }

    /// Puts a PENDING or POSTPONED job where it waits.
    fn enqueue(&mut self, id: &str, job: &Job) {
        match (job.state, job.kind) {
            (State::Postponed, _) => {
                self.postponed.insert((job.due_ms, job.seq), id.to_string());
            }
            (_, Kind::Worker) => {
                self.worker_queue.insert(job.seq, id.to_string());
            }
            (_, Kind::Collector) => {
                self.collector_queues
                    .entry(job.host.clone())
                    .or_default()
                    .insert(job.seq, id.to_string());
            }
        }
    }

    fn dequeue(&mut self, job: &Job) {
        match (job.state, job.kind) {
            (State::Postponed, _) => {
                self.postponed.remove(&(job.due_ms, job.seq));
            }
            (State::Pending, Kind::Worker) => {
                self.worker_queue.remove(&job.seq);
            }
            (State::Pending, Kind::Collector) => {
                if let Some(queue) = self.collector_queues.get_mut(&job.host) {
                    queue.remove(&job.seq);
                }
            }
            _ => {}
        }
    }

    /// Whether a job is unfinished here.
    #[cfg(test)]
    pub fn contains(&self, id: &str) -> bool {
        self.jobs.contains_key(id)
    }

    /// The peer a job is allocated to.
    pub fn owner(&self, id: &str) -> Option<&Identity> {
        self.jobs.get(id).and_then(|j| j.owner.as_ref())
    }

    /// A worker announced its credit.
    pub fn worker_ready(&mut self, identity: &[u8], credit: u32, now_ms: i64, user: Option<&str>) {
        let peer = self
            .workers
            .entry(identity.to_vec())
            .or_insert_with(|| Peer::new(now_ms));
        peer.user = user.map(str::to_string);
        peer.credit = credit;
        peer.last_seen_ms = now_ms;
    }

    /// A collector announced itself.
    pub fn collector_ready(
        &mut self,
        identity: &[u8],
        host: String,
        commands: Vec<String>,
        credit: u32,
        now_ms: i64,
        user: Option<&str>,
    ) {
        let peer = self
            .collectors
            .entry(identity.to_vec())
            .or_insert_with(|| Peer::new(now_ms));
        peer.user = user.map(str::to_string);
        peer.credit = credit;
        peer.last_seen_ms = now_ms;
        peer.host = host;
        peer.commands = commands.into_iter().collect();
    }

    /// A peer was heard from; false if it is not registered.
    pub fn seen(peers: &mut HashMap<Identity, Peer>, identity: &[u8], now_ms: i64) -> bool {
        match peers.get_mut(identity) {
            Some(peer) => {
                peer.last_seen_ms = now_ms;
                true
            }
            None => false,
        }
    }

    /// Allocates pending worker jobs to workers with credit, round robin; `(worker, job)`.
    pub fn assign_workers(&mut self, now_ms: i64) -> Vec<(Identity, String)> {
        let mut assigned = Vec::new();
        let mut ready: Vec<Identity> = self
            .workers
            .iter()
            .filter(|(_, p)| p.credit > 0)
            .map(|(i, _)| i.clone())
            .collect();
        ready.sort();
        while !ready.is_empty() && !self.worker_queue.is_empty() {
            let index = self.round_robin % ready.len();
            self.round_robin = self.round_robin.wrapping_add(1);
            let identity = ready[index].clone();
            let Some((_, id)) = self.worker_queue.pop_first() else {
                break;
            };
            let peer = self.workers.get_mut(&identity).expect("a ready worker");
            peer.credit -= 1;
            peer.jobs.insert(id.clone());
            if peer.credit == 0 {
                ready.swap_remove(index);
            }
            if let Some(job) = self.jobs.get_mut(&id) {
                job.state = State::Alloc;
                job.owner = Some(identity.clone());
                job.since_ms = now_ms;
            }
            assigned.push((identity, id));
        }
        assigned
    }

    /// Allocates pending collector jobs to a collector on the job's host that serves all its
    /// commands; `(collector, job, commands)`.
    pub fn assign_collectors(&mut self, now_ms: i64) -> Vec<(Identity, String, Vec<String>)> {
        let mut assigned = Vec::new();
        let mut identities: Vec<Identity> = self.collectors.keys().cloned().collect();
        identities.sort();
        for identity in identities {
            let (host, serves, mut credit) = {
                let peer = &self.collectors[&identity];
                (peer.host.clone(), peer.commands.clone(), peer.credit)
            };
            let Some(queue) = self.collector_queues.get_mut(&host) else {
                continue;
            };
            let fitting: Vec<(i64, String)> = queue
                .iter()
                .filter(|(_, id)| {
                    self.jobs
                        .get(*id)
                        .is_some_and(|j| j.commands.iter().all(|c| serves.contains(c)))
                })
                .take(credit as usize)
                .map(|(seq, id)| (*seq, id.clone()))
                .collect();
            for (seq, id) in fitting {
                queue.remove(&seq);
                credit -= 1;
                let job = self.jobs.get_mut(&id).expect("a queued job");
                job.state = State::Alloc;
                job.owner = Some(identity.clone());
                job.since_ms = now_ms;
                assigned.push((identity.clone(), id.clone(), job.commands.clone()));
                self.collectors
                    .get_mut(&identity)
                    .expect("a collector")
                    .jobs
                    .insert(id);
            }
            self.collectors
                .get_mut(&identity)
                .expect("a collector")
                .credit = credit;
        }
        assigned
    }

    /// Applies an outcome. Returns the update to store, or `None` if the job is not
    /// unfinished here (a late or repeated report).
    pub fn finish(
        &mut self,
        id: &str,
        outcome: Outcome,
        policy: RetryPolicy,
        now_ms: i64,
    ) -> Option<Update> {
        let mut job = self.jobs.remove(id)?;
        self.dequeue(&job);
        if let Some(payload) = job.payload.take() {
            self.cached_bytes -= payload.len();
        }
        if let Some(owner) = job.owner.take() {
            for peers in [&mut self.workers, &mut self.collectors] {
                if let Some(peer) = peers.get_mut(&owner) {
                    peer.jobs.remove(id);
                }
            }
        }
        let (notification, reason) = match outcome {
            Outcome::Done => {
                job.state = State::Done;
                (None, None)
            }
            Outcome::Fail(reason) => {
                job.state = State::Failed;
                (None, Some(reason))
            }
            Outcome::Postpone(reason) => {
                job.attempts += 1;
                if job.attempts > policy.max_postpones {
                    job.state = State::Failed;
                    let reason = format!("postponed {} times, last: {reason}", job.attempts);
                    (None, Some(reason))
                } else {
                    job.state = State::Postponed;
                    job.due_ms = now_ms + policy.delay(job.attempts);
                    (None, Some(reason))
                }
            }
            Outcome::Collect(commands, notification) => {
                job.state = State::Pending;
                job.kind = Kind::Collector;
                job.commands = commands;
                (Some(Rewrite::Worker(notification)), None)
            }
            Outcome::Collected(notification) => {
                job.state = State::Pending;
                job.kind = Kind::Worker;
                job.commands = Vec::new();
                job.collected = true;
                (Some(Rewrite::Collector(notification)), None)
            }
        };
        if job.state == State::Pending
            && let Some(Rewrite::Worker(n) | Rewrite::Collector(n)) = &notification
        {
            job.payload = self.cacheable(Some(n.clone()));
        }
        let stored = update(id, &job, notification, reason);
        if matches!(job.state, State::Pending | State::Postponed) {
            self.enqueue(id, &job);
            self.jobs.insert(id.to_string(), job);
        }
        Some(stored)
    }

    /// Returns an allocated job to its queue (its peer vanished or it timed out).
    fn requeue(&mut self, id: &str) {
        let Some(mut job) = self.jobs.remove(id) else {
            return;
        };
        if job.state == State::Alloc {
            job.state = State::Pending;
            job.owner = None;
            self.enqueue(id, &job);
        }
        self.jobs.insert(id.to_string(), job);
    }

    /// Drops workers and collectors silent since `before_ms`; their jobs return to the queue.
    /// Returns the identities dropped.
    pub fn expire_peers(&mut self, before_ms: i64) -> Vec<Identity> {
        let mut dropped = Vec::new();
        for kind in [true, false] {
            let peers = if kind {
                &mut self.workers
            } else {
                &mut self.collectors
            };
            let silent: Vec<Identity> = peers
                .iter()
                .filter(|(_, p)| p.last_seen_ms < before_ms)
                .map(|(i, _)| i.clone())
                .collect();
            for identity in silent {
                let peers = if kind {
                    &mut self.workers
                } else {
                    &mut self.collectors
                };
                if let Some(peer) = peers.remove(&identity) {
                    for id in peer.jobs {
                        self.requeue(&id);
                    }
                }
                dropped.push(identity);
            }
        }
        dropped
    }

    /// Drops one peer now (its socket is gone); its jobs return to the queue.
    pub fn drop_peer(&mut self, identity: &[u8]) {
        let peer = self
            .workers
            .remove(identity)
            .or_else(|| self.collectors.remove(identity));
        for id in peer.map(|p| p.jobs).unwrap_or_default() {
            self.requeue(&id);
        }
    }

    /// Returns jobs allocated before `before_ms` to the queue; how many.
    pub fn expire_allocations(&mut self, before_ms: i64) -> usize {
        let late: Vec<(String, Option<Identity>)> = self
            .jobs
            .iter()
            .filter(|(_, j)| j.state == State::Alloc && j.since_ms < before_ms)
            .map(|(id, j)| (id.clone(), j.owner.clone()))
            .collect();
        for (id, owner) in &late {
            if let Some(owner) = owner {
                for peers in [&mut self.workers, &mut self.collectors] {
                    if let Some(peer) = peers.get_mut(owner) {
                        peer.jobs.remove(id);
                    }
                }
            }
            self.requeue(id);
        }
        late.len()
    }

    /// Moves postponed jobs that are due back to their queue; the updates to store.
    pub fn release_due(&mut self, now_ms: i64) -> Vec<Update> {
        let mut updates = Vec::new();
        while let Some((&(due, seq), _)) = self.postponed.first_key_value() {
            if due > now_ms {
                break;
            }
            let Some(id) = self.postponed.remove(&(due, seq)) else {
                break;
            };
            if let Some(job) = self.jobs.get_mut(&id) {
                job.state = State::Pending;
                let job = job.clone();
                updates.push(update(&id, &job, None, None));
                self.enqueue(&id, &job);
            }
        }
        updates
    }

    /// Jobs in memory per state.
    pub fn counts(&self) -> Counts {
        let mut counts = Counts::default();
        for job in self.jobs.values() {
            match (job.state, job.kind) {
                (State::Alloc, _) => counts.alloc += 1,
                (State::Postponed, _) => counts.postponed += 1,
                (_, Kind::Worker) => counts.pending_worker += 1,
                (_, Kind::Collector) => counts.pending_collector += 1,
            }
        }
        counts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: RetryPolicy = RetryPolicy {
        delay_ms: 1000,
        max_delay_ms: 4000,
        max_postpones: 3,
    };

    fn jobs_with(n: i64) -> Jobs {
        let mut jobs = Jobs::default();
        for seq in 1..=n {
            jobs.add(seq, format!("j{seq}"), "imap1".to_string(), None);
        }
        jobs
    }

    #[test]
    fn credit_limits_what_a_worker_gets_and_order_is_kept() {
        let mut jobs = jobs_with(5);
        jobs.worker_ready(b"w1", 3, 0, None);
        let first = jobs.assign_workers(0);
        assert_eq!(
            first.iter().map(|(_, id)| id.as_str()).collect::<Vec<_>>(),
            ["j1", "j2", "j3"]
        );
        assert!(jobs.assign_workers(0).is_empty(), "no credit left");
        assert!(jobs.finish("j1", Outcome::Done, POLICY, 0).is_some());
        assert!(
            jobs.finish("j1", Outcome::Done, POLICY, 0).is_none(),
            "a repeated report changes nothing"
        );
    }

    #[test]
    fn a_dropped_worker_gives_its_jobs_back_in_their_old_place() {
        let mut jobs = jobs_with(3);
        jobs.worker_ready(b"w1", 1, 0, None);
        assert_eq!(jobs.assign_workers(0)[0].1, "j1");
        assert_eq!(jobs.expire_peers(1), vec![b"w1".to_vec()]);
        jobs.worker_ready(b"w2", 3, 2, None);
        let order: Vec<String> = jobs
            .assign_workers(2)
            .into_iter()
            .map(|(_, id)| id)
            .collect();
        assert_eq!(order, ["j1", "j2", "j3"]);
    }

    #[test]
    fn postponed_jobs_back_off_then_fail() {
        let mut jobs = jobs_with(1);
        let mut now = 0;
        for attempt in 1..=3 {
            let stored = jobs
                .finish("j1", Outcome::Postpone("not yet".into()), POLICY, now)
                .unwrap();
            assert_eq!(stored.state, State::Postponed);
            assert_eq!(stored.due_ms - now, [1000, 2000, 4000][attempt - 1]);
            assert!(jobs.release_due(stored.due_ms - 1).is_empty());
            now = stored.due_ms;
            assert_eq!(jobs.release_due(now).len(), 1);
        }
        let stored = jobs
            .finish("j1", Outcome::Postpone("still not".into()), POLICY, now)
            .unwrap();
        assert_eq!(stored.state, State::Failed);
        assert!(!jobs.contains("j1"));
    }

    #[test]
    fn collector_jobs_go_to_a_fitting_collector_of_their_host_only() {
        let mut jobs = jobs_with(1);
        jobs.worker_ready(b"w", 1, 0, None);
        jobs.assign_workers(0);
        jobs.finish(
            "j1",
            Outcome::Collect(vec!["FETCH".into(), "GETACL".into()], b"{}".to_vec()),
            POLICY,
            0,
        );
        jobs.collector_ready(
            b"other-host",
            "imap2".into(),
            vec!["FETCH".into(), "GETACL".into()],
            5,
            0,
            None,
        );
        jobs.collector_ready(b"no-acl", "imap1".into(), vec!["FETCH".into()], 5, 0, None);
        assert!(
            jobs.assign_collectors(0).is_empty(),
            "the job waits for a fitting collector"
        );
        jobs.collector_ready(
            b"right",
            "imap1".into(),
            vec!["FETCH".into(), "GETACL".into(), "HEADER".into()],
            1,
            0,
            None,
        );
        let assigned = jobs.assign_collectors(0);
        assert_eq!(assigned.len(), 1);
        assert_eq!(assigned[0].0, b"right".to_vec());
        let back = jobs
            .finish("j1", Outcome::Collected(b"{\"x\":1}".to_vec()), POLICY, 0)
            .unwrap();
        assert_eq!((back.state, back.kind), (State::Pending, Kind::Worker));
        assert_eq!(jobs.counts().pending_worker, 1);
    }

    /// The jobs of `seqs` as the store gives them back, PENDING for the workers.
    fn stored(seqs: std::ops::Range<i64>) -> Vec<Unfinished> {
        seqs.map(|seq| Unfinished {
            seq,
            id: format!("j{seq}"),
            host: "imap1".to_string(),
            state: State::Pending,
            kind: Kind::Worker,
            commands: Vec::new(),
            attempts: 0,
            due_ms: 0,
            collected: false,
        })
        .collect()
    }

    #[test]
    fn a_backlog_beyond_the_window_waits_in_the_store_and_comes_back_in_order() {
        let window = WORKER_WINDOW as i64;
        let mut jobs = jobs_with(window + 100);
        assert_eq!(jobs.counts().pending_worker, WORKER_WINDOW);
        assert_eq!(jobs.wanted_from_store(), None, "the head is full");
        jobs.worker_ready(b"w", (WORKER_WINDOW / 2) as u32, 0, None);
        let taken = jobs.assign_workers(0);
        assert_eq!(taken.last().unwrap().1, format!("j{}", window / 2));
        let (from, limit) = jobs.wanted_from_store().expect("half of the head is gone");
        assert_eq!(from, window + 1, "the first job not in memory");
        jobs.read_from_store(stored(from..window + 101), limit);
        assert_eq!(jobs.wanted_from_store(), None, "the store has no more");
        jobs.worker_ready(b"w", u32::MAX, 0, None);
        let order: Vec<String> = jobs
            .assign_workers(0)
            .into_iter()
            .map(|(_, id)| id)
            .collect();
        let expected: Vec<String> = (window / 2 + 1..=window + 100)
            .map(|s| format!("j{s}"))
            .collect();
        assert_eq!(order, expected, "every job once, in arrival order");
        jobs.add(window + 101, "new".into(), "imap1".into(), None);
        assert_eq!(
            jobs.counts().pending_worker,
            1,
            "the queue is short again: in memory"
        );
    }

    #[test]
    fn a_retried_job_older_than_the_head_goes_to_memory_even_when_the_head_is_full() {
        let window = WORKER_WINDOW as i64;
        let mut jobs = jobs_with(window);
        jobs.add(1_000_000, "old".into(), "imap1".into(), None);
        jobs.add(window / 2, "retried".into(), "imap1".into(), None);
        assert!(jobs.contains("retried"));
        assert!(
            !jobs.contains("old"),
            "a new job behind a full head waits in the store"
        );
        assert_eq!(jobs.wanted_from_store(), None);
    }

    #[test]
    fn allocations_time_out() {
        let mut jobs = jobs_with(2);
        jobs.worker_ready(b"w", 2, 0, None);
        jobs.assign_workers(0);
        assert_eq!(jobs.expire_allocations(1), 2);
        assert_eq!(jobs.counts().pending_worker, 2);
    }
}
