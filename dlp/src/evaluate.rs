//! One event as the rules see it ([`ScanInput`]), what a rule that fires says about it
//! ([`RuleHit`]), and the evaluation: each detector runs once per text part whatever the
//! number of rules using it, on at most [`crate::Settings::max_part_bytes`] of the part.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::{
    confidence::{Confidence, Level},
    detector::{Detected, DetectorKind},
    rules::{AclRule, Action, RuleSet, Severity},
};

/// What happened, as far as rules tell events apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EventKind {
    /// A message appended to a folder by a user (IMAP APPEND: a draft, a sent copy, an upload).
    Append,
    /// A message delivered to a folder (LMTP).
    Delivery,
    /// A message copied into a folder.
    Copy,
    /// A message moved into a folder.
    Move,
    /// A folder's access control list changed.
    Acl,
}

/// What kind of text a part is; rules say which kinds they scan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PartKind {
    /// The subject.
    Subject,
    /// A body text part.
    Body,
    /// The text of an attachment.
    #[serde(alias = "attachments")]
    Attachment,
    /// A field of a groupware object (an event's description, a contact's note).
    #[serde(alias = "fields")]
    Field,
}

/// One text of an event.
#[derive(Debug, Clone)]
pub struct ScanPart<'a> {
    /// What it is.
    pub kind: PartKind,
    /// Its name in evidence: `subject`, `body 1`, `attachment 2 (invoice.txt)`,
    /// `field description`.
    pub name: String,
    /// The text.
    pub text: &'a str,
}

impl<'a> ScanPart<'a> {
    /// A part of `kind` named `name`.
    pub fn new(kind: PartKind, name: impl Into<String>, text: &'a str) -> Self {
        ScanPart {
            kind,
            name: name.into(),
            text,
        }
    }
}

/// The folder an event is about.
#[derive(Debug, Clone, Default)]
pub struct Folder<'a> {
    /// Its name as Cyrus writes it with `/` as separator (`user/alice/Sent`, `shared/finance`).
    pub name: &'a str,
    /// The user it belongs to, for personal folders; scopes' `users` match it when the event
    /// has no user (a delivery).
    pub owner: Option<&'a str>,
    /// True for folders outside every user's hierarchy (Cyrus shared folders).
    pub shared: bool,
    /// True if its ACL lets `anyone` (or `anonymous`) read it.
    pub readable_by_anyone: bool,
}

/// An ACL change: who was given which rights on the event's folder.
#[derive(Debug, Clone, Default)]
pub struct AclChange<'a> {
    /// The identifier given rights: a user, `group:<name>`, `anyone`, `anonymous`.
    pub identifier: &'a str,
    /// Its rights after the change, in IMAP ACL letters (RFC 4314: `lrs` reads).
    pub rights: &'a str,
    /// The groups the folder's owner belongs to (without `group:`), as far as the caller
    /// knows them: a group among them does not widen the folder beyond its owner's own.
    pub owner_groups: Vec<&'a str>,
}

/// One event to evaluate.
#[derive(Debug, Clone)]
pub struct ScanInput<'a> {
    /// What happened.
    pub event: EventKind,
    /// Who did it (the IMAP user), when known; a delivery has none.
    pub user: Option<&'a str>,
    /// The folder it happened in.
    pub folder: Option<Folder<'a>>,
    /// A message's sender address.
    pub sender: Option<&'a str>,
    /// A message's recipient addresses (To, Cc, Bcc).
    pub recipients: Vec<&'a str>,
    /// The ACL change of an `acl` event.
    pub acl: Option<AclChange<'a>>,
    /// The texts to scan.
    pub parts: Vec<ScanPart<'a>>,
}

impl<'a> ScanInput<'a> {
    /// An event of `kind` with nothing else known yet.
    pub fn new(event: EventKind) -> Self {
        ScanInput {
            event,
            user: None,
            folder: None,
            sender: None,
            recipients: Vec::new(),
            acl: None,
            parts: Vec::new(),
        }
    }
}

/// A supporting keyword near a match.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NearbyKeyword {
    /// The keyword as the text writes it.
    pub keyword: String,
    /// Characters between it and the match (0 when they touch or overlap).
    pub distance: usize,
}

/// One matched value in one part: the evidence of a hit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Evidence {
    /// The detector's name in the rule file.
    pub detector: String,
    /// What kind of detector it is.
    pub kind: DetectorKind,
    /// The card's brand (`visa`), the IBAN's country (`DE`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// The part it is in ([`ScanPart::name`]).
    pub part: String,
    /// The best confidence among its occurrences in the part.
    pub confidence: Confidence,
    /// That confidence's level.
    pub level: Level,
    /// How often the value occurs in the part at or above the rule's minimum confidence.
    pub count: usize,
    /// The match, masked: a validated number never appears whole (`4539 **** **** 6467`).
    pub excerpt: String,
    /// The supporting keywords near its best occurrence, nearest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub keywords: Vec<NearbyKeyword>,
}

/// The ACL change an ACL rule fired on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AclEvidence {
    /// The folder.
    pub folder: String,
    /// Who was given read rights.
    pub identifier: String,
    /// Its rights.
    pub rights: String,
}

/// A rule that fired on an event, with why: the evidence stored in the archive's log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleHit {
    /// The rule's name.
    pub rule: String,
    /// The rule's severity.
    pub severity: Severity,
    /// What the rule says to do.
    pub actions: Vec<Action>,
    /// Distinct values found at or above the rule's minimum confidence (one card number
    /// quoted three times counts once); 1 for an ACL rule.
    pub count: usize,
    /// The highest confidence among them (100 for an ACL rule).
    pub confidence: Confidence,
    /// The evidence, in part order, at most [`crate::MAX_EVIDENCE`] entries.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub matches: Vec<Evidence>,
    /// The parts scanned only in part: longer than the scan limit, cut there.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub truncated_parts: Vec<String>,
    /// The ACL change of an ACL rule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acl: Option<AclEvidence>,
}

/// A hit names at most this many matched values (its `count` has them all).
pub const MAX_EVIDENCE: usize = 20;

/// `text` cut to at most `max` bytes on a character boundary, and whether it was cut.
fn cut(text: &str, max: usize) -> (&str, bool) {
    let end = text.floor_char_boundary(max);
    (&text[..end], end < text.len())
}

/// True if ACL `rights` let the identifier read the folder's messages.
fn reads(rights: &str) -> bool {
    rights.contains('r')
}

impl RuleSet {
    /// The rules that fire on `input`, in rule order, each with its evidence.
    pub fn evaluate(&self, input: &ScanInput) -> Vec<RuleHit> {
        let texts: Vec<(&str, bool)> = input
            .parts
            .iter()
            .map(|p| cut(p.text, self.settings.max_part_bytes))
            .collect();
        let covering: Vec<_> = self
            .rules
            .iter()
            .filter(|r| r.scope.covers(input, &self.settings.local_domains))
            .collect();
        // detected[detector][part], for the pairs some covering rule needs, each run once.
        let mut detected: Vec<Vec<Option<Vec<Detected>>>> = self
            .detectors
            .iter()
            .map(|_| (0..texts.len()).map(|_| None).collect())
            .collect();
        for rule in covering.iter().filter(|r| r.rule.acl.is_none()) {
            for (p, part) in input.parts.iter().enumerate() {
                if rule.rule.scan.contains(&part.kind) {
                    for &d in &rule.detectors {
                        detected[d][p].get_or_insert_with(|| self.detectors[d].detect(texts[p].0));
                    }
                }
            }
        }
        let mut hits = Vec::new();
        for rule in covering {
            if let Some(acl) = rule.rule.acl {
                hits.extend(acl_hit(rule, acl, input));
                continue;
            }
            let threshold = rule.rule.min_confidence.threshold();
            // The distinct (detector, value) pairs found, for the count.
            let mut values: BTreeSet<(usize, &str)> = BTreeSet::new();
            let mut evidence: Vec<Evidence> = Vec::new();
            let mut truncated = Vec::new();
            let mut best = Confidence(0);
            for (p, part) in input.parts.iter().enumerate() {
                if !rule.rule.scan.contains(&part.kind) {
                    continue;
                }
                if texts[p].1 {
                    truncated.push(part.name.clone());
                }
                for &d in &rule.detectors {
                    let Some(found) = &detected[d][p] else {
                        continue;
                    };
                    // One entry per value in the part, in the order of first occurrence.
                    let mut in_part: BTreeMap<&str, usize> = BTreeMap::new();
                    for m in found.iter().filter(|m| m.confidence >= threshold) {
                        values.insert((d, m.value.as_str()));
                        best = best.max(m.confidence);
                        let at = *in_part.entry(m.value.as_str()).or_insert_with(|| {
                            evidence.push(Evidence {
                                detector: self.detectors[d].name.clone(),
                                kind: self.detectors[d].kind,
                                label: m.label.clone(),
                                part: part.name.clone(),
                                confidence: m.confidence,
                                level: m.confidence.level(),
                                count: 0,
                                excerpt: m.excerpt.clone(),
                                keywords: m.keywords.clone(),
                            });
                            evidence.len() - 1
                        });
                        let entry = &mut evidence[at];
                        entry.count += 1;
                        if m.confidence > entry.confidence {
                            entry.confidence = m.confidence;
                            entry.level = m.confidence.level();
                            entry.excerpt = m.excerpt.clone();
                            entry.keywords = m.keywords.clone();
                        }
                    }
                }
            }
            if values.is_empty() || values.len() < rule.rule.min_count {
                continue;
            }
            evidence.truncate(MAX_EVIDENCE);
            hits.push(RuleHit {
                rule: rule.rule.name.clone(),
                severity: rule.rule.severity,
                actions: rule.rule.actions.clone(),
                count: values.len(),
                confidence: best,
                matches: evidence,
                truncated_parts: truncated,
                acl: None,
            });
        }
        hits
    }
}

/// The hit of an ACL rule, if the event's ACL change is what it looks for.
fn acl_hit(rule: &crate::rules::CompiledRule, kind: AclRule, input: &ScanInput) -> Option<RuleHit> {
    let change = input.acl.as_ref()?;
    if !reads(change.rights) {
        return None;
    }
    let identifier = change.identifier;
    let fires = match kind {
        AclRule::Anyone => matches!(identifier, "anyone" | "anonymous"),
        AclRule::Group => identifier
            .strip_prefix("group:")
            .is_some_and(|group| !change.owner_groups.contains(&group)),
    };
    fires.then(|| RuleHit {
        rule: rule.rule.name.clone(),
        severity: rule.rule.severity,
        actions: rule.rule.actions.clone(),
        count: 1,
        confidence: Confidence(100),
        matches: Vec::new(),
        truncated_parts: Vec::new(),
        acl: Some(AclEvidence {
            folder: input
                .folder
                .as_ref()
                .map(|f| f.name.to_string())
                .unwrap_or_default(),
            identifier: identifier.to_string(),
            rights: change.rights.to_string(),
        }),
    })
}
