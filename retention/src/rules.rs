//! Retention rules: how long an archived entry is kept, by who it belongs to, where it lived,
//! what kind of event it is and how old it is. Where several rules match an entry the longest
//! keep wins (forever above any duration); an entry no rule matches keeps the default.
//! A rule may name directory groups: they are resolved to their members' addresses once, when
//! the policy is built, by a resolver the caller passes (the CLI's reads LDAP), so that this
//! crate knows no directory and an entry is decided without asking one.

use std::collections::{BTreeMap, BTreeSet};

use jiff::{Span, Timestamp, Zoned, tz::TimeZone};
use serde::Deserialize;
use serde_json::Value;

use crate::{RetentionError, pattern};

/// How long entries are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keep {
    /// Never purged.
    Forever,
    /// Purged once older than this calendar span ("7y", "90d", "18 months").
    For(KeepSpan),
}

/// A calendar span of whole days, weeks, months and years.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeepSpan {
    years: i16,
    months: i32,
    weeks: i32,
    days: i32,
}

impl KeepSpan {
    fn span(&self) -> Span {
        Span::new()
            .years(self.years)
            .months(self.months)
            .weeks(self.weeks)
            .days(self.days)
    }

    /// Roughly in days (a year counts 365.2425 days), for comparing keeps.
    fn approximate_days(&self) -> i64 {
        i64::from(self.years) * 3_652_425 / 10_000
            + i64::from(self.months) * 3_652_425 / 120_000
            + i64::from(self.weeks) * 7
            + i64::from(self.days)
    }
}

impl Keep {
    /// Parses `forever` or a span in jiff's friendly or ISO 8601 form (`7y`, `90 days`, `P1Y6M`).
    pub fn parse(text: &str) -> Result<Keep, RetentionError> {
        if text.trim().eq_ignore_ascii_case("forever") {
            return Ok(Keep::Forever);
        }
        let bad = |why: String| RetentionError::Config(format!("keep = {text:?}: {why}"));
        let span: Span = text.trim().parse().map_err(|e| bad(format!("{e}")))?;
        if span.is_negative() || span.is_zero() {
            return Err(bad("a keep is a positive span, or \"forever\"".into()));
        }
        if span.get_hours() != 0
            || span.get_minutes() != 0
            || span.get_seconds() != 0
            || span.get_milliseconds() != 0
            || span.get_microseconds() != 0
            || span.get_nanoseconds() != 0
        {
            return Err(bad("a keep is whole days, weeks, months or years".into()));
        }
        Ok(Keep::For(KeepSpan {
            years: span.get_years(),
            months: span.get_months(),
            weeks: span.get_weeks(),
            days: span.get_days(),
        }))
    }

    /// The time before which an entry kept this long has expired at `now` (calendar arithmetic in
    /// UTC, so "1y" from 29 February is 28 February); `None` for forever.
    pub fn cutoff_ms(&self, now: Timestamp) -> Option<i64> {
        match self {
            Keep::Forever => None,
            Keep::For(keep) => {
                let now = Zoned::new(now, TimeZone::UTC);
                // A span that reaches before year -9999 keeps everything.
                Some(
                    now.checked_sub(keep.span())
                        .map(|z| z.timestamp().as_millisecond())
                        .unwrap_or(i64::MIN),
                )
            }
        }
    }

    /// True if `self` keeps longer than `other`.
    fn longer_than(&self, other: &Keep) -> bool {
        match (self, other) {
            (Keep::Forever, Keep::Forever) => false,
            (Keep::Forever, _) => true,
            (Keep::For(_), Keep::Forever) => false,
            (Keep::For(a), Keep::For(b)) => a.approximate_days() > b.approximate_days(),
        }
    }
}

impl std::fmt::Display for Keep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Keep::Forever => f.write_str("forever"),
            Keep::For(keep) => write!(f, "{:#}", keep.span()),
        }
    }
}

/// What kind of archived entry, as rules name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// A message arriving, copied, moved, expunged or expired.
    Messages,
    /// Flags set or cleared, a message read or trashed.
    Flags,
    /// Logins and logouts.
    Sessions,
    /// Folders made, renamed, deleted, subscribed, their ACLs and annotations.
    Folders,
    /// Anything in a groupware folder (events, contacts, tasks, notes...).
    Groupware,
    /// Everything else (quota changes, modseq ticks, unknown events).
    Other,
}

impl Kind {
    /// Every kind, in order.
    pub const ALL: [Kind; 6] = [
        Kind::Messages,
        Kind::Flags,
        Kind::Sessions,
        Kind::Folders,
        Kind::Groupware,
        Kind::Other,
    ];

    /// The kind of an entry with this event in a folder of this type (`folder_type`: `mail`,
    /// `event`, `contact`..., absent outside folders).
    pub fn of(event: &str, folder_type: Option<&str>) -> Kind {
        let event = event.strip_prefix("vnd.cmu.").unwrap_or(event);
        if folder_type.is_some_and(|t| !t.is_empty() && t != "mail") && event.starts_with("Message")
        {
            return Kind::Groupware;
        }
        match event {
            "MessageAppend" | "MessageNew" | "MessageCopy" | "MessageMove" | "MessageExpunge"
            | "MessageExpire" => Kind::Messages,
            "FlagsSet" | "FlagsClear" | "MessageRead" | "MessageTrash" => Kind::Flags,
            "Login" | "Logout" => Kind::Sessions,
            e if e.starts_with("Mailbox") || e == "AclChange" => Kind::Folders,
            _ => Kind::Other,
        }
    }

    /// Its name in the configuration.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Messages => "messages",
            Kind::Flags => "flags",
            Kind::Sessions => "sessions",
            Kind::Folders => "folders",
            Kind::Groupware => "groupware",
            Kind::Other => "other",
        }
    }
}

/// One archived entry as the rules see it: read from a log entry's record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The job id that keys the entry.
    pub id: String,
    /// The event's time, ms since the epoch (absent: never expires by age).
    pub time_ms: Option<i64>,
    /// Who acted, and whose folder it was: a rule or hold naming either covers the entry.
    pub users: Vec<String>,
    /// The folder's name as its owner sees it (`INBOX/Sent`), if any.
    pub folder: Option<String>,
    /// The event's name.
    pub event: String,
    /// Its kind.
    pub kind: Kind,
}

impl Entry {
    /// The entry of a log record (the storage's record body: the normalized notification).
    pub fn of_record(id: &str, time_ms: Option<i64>, record: &Value) -> Entry {
        let text = |key: &str| record.get(key).and_then(Value::as_str);
        let mut users: Vec<String> = ["user", "folder_owner"]
            .into_iter()
            .filter_map(text)
            .map(str::to_lowercase)
            .collect();
        users.dedup();
        let event = text("event").unwrap_or("").to_string();
        Entry {
            id: id.to_string(),
            time_ms,
            users,
            folder: text("folder_name").map(str::to_string),
            kind: Kind::of(&event, text("folder_type")),
            event,
        }
    }
}

/// A rule as configured (`[[retention.rule]]`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleConfig {
    /// Its name, in reports and purge records.
    pub name: String,
    /// Users it covers, as address patterns (`*` any run of characters); with no `users` nor
    /// `groups`: everyone.
    #[serde(default)]
    pub users: Vec<String>,
    /// Directory groups whose members it covers (a DN, or a name the resolver looks up): an
    /// entry is covered if it matches `users` or its actor or folder owner is a member.
    #[serde(default)]
    pub groups: Vec<String>,
    /// Folder patterns as IMAP LIST has them (`*` anything, `%` anything but `/`); none: all.
    #[serde(default)]
    pub folders: Vec<String>,
    /// Kinds it covers; none: all.
    #[serde(default)]
    pub kinds: Vec<Kind>,
    /// How long it keeps what it covers: `forever` or a span.
    pub keep: String,
}

/// The `[retention]` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionConfig {
    /// What no rule covers is kept this long; `forever` unless configured.
    #[serde(default = "forever")]
    pub default: String,
    /// The rules, in any order (the longest keep among those that match wins).
    #[serde(default, rename = "rule")]
    pub rules: Vec<RuleConfig>,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        Self {
            default: forever(),
            rules: Vec::new(),
        }
    }
}

fn forever() -> String {
    "forever".into()
}

/// A rule, checked.
#[derive(Debug, Clone)]
pub struct Rule {
    /// Its name.
    pub name: String,
    users: Vec<String>,
    /// The addresses of the members of its groups, lowercase; `None` when it names no group.
    members: Option<BTreeSet<String>>,
    folders: Vec<String>,
    kinds: Vec<Kind>,
    /// How long it keeps.
    pub keep: Keep,
}

impl Rule {
    /// True if the rule covers `entry`: every criterion it has matches.
    /// A rule with users or groups covers an entry one of whose users matches either.
    pub fn covers(&self, entry: &Entry) -> bool {
        let named = entry
            .users
            .iter()
            .any(|u| self.users.iter().any(|p| pattern::matches_address(p, u)));
        let member = self
            .members
            .as_ref()
            .is_some_and(|m| entry.users.iter().any(|u| m.contains(u)));
        ((self.users.is_empty() && self.members.is_none()) || named || member)
            && (self.folders.is_empty()
                || entry
                    .folder
                    .as_deref()
                    .is_some_and(|f| self.folders.iter().any(|p| pattern::matches_folder(p, f))))
            && (self.kinds.is_empty() || self.kinds.contains(&entry.kind))
    }
}

/// The default rule's name in reports and purge records.
pub const DEFAULT_RULE: &str = "default";

/// The rules and the default: the retention policy.
#[derive(Debug, Clone)]
pub struct Policy {
    /// The rules.
    pub rules: Vec<Rule>,
    /// What no rule covers keeps.
    pub default: Keep,
}

/// The rule that decides an entry's keep: its name and keep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision<'p> {
    /// The winning rule's name ([`DEFAULT_RULE`] when none matched).
    pub rule: &'p str,
    /// Its keep.
    pub keep: Keep,
}

impl Policy {
    /// Checks a configuration (every keep parses, names are unique and not `default`) and
    /// resolves the groups its rules name with `members_of`, once each: the addresses of a
    /// group's members, or why they cannot be read. A group that cannot be resolved fails the
    /// whole policy, so that no plan or purge runs on a guess of who is in it.
    pub fn new(
        config: &RetentionConfig,
        mut members_of: impl FnMut(&str) -> Result<Vec<String>, String>,
    ) -> Result<Policy, RetentionError> {
        let default = Keep::parse(&config.default)
            .map_err(|e| RetentionError::Config(format!("[retention] default: {e}")))?;
        let mut rules = Vec::with_capacity(config.rules.len());
        let mut resolved: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
        for rule in &config.rules {
            let name = rule.name.trim();
            if name.is_empty() || name == DEFAULT_RULE {
                return Err(RetentionError::Config(format!(
                    "[[retention.rule]] name {:?}: a rule needs a name of its own (not \"{DEFAULT_RULE}\")",
                    rule.name
                )));
            }
            if rules.iter().any(|r: &Rule| r.name == name) {
                return Err(RetentionError::Config(format!(
                    "[[retention.rule]] name {name:?} is used twice"
                )));
            }
            let keep = Keep::parse(&rule.keep)
                .map_err(|e| RetentionError::Config(format!("rule {name:?}: {e}")))?;
            let mut members = BTreeSet::new();
            for group in &rule.groups {
                let group = group.trim();
                if group.is_empty() {
                    return Err(RetentionError::Config(format!(
                        "rule {name:?}: groups holds an empty name"
                    )));
                }
                if !resolved.contains_key(group) {
                    let addresses = members_of(group).map_err(|reason| RetentionError::Group {
                        rule: name.to_string(),
                        group: group.to_string(),
                        reason,
                    })?;
                    resolved.insert(
                        group,
                        addresses.iter().map(|a| a.trim().to_lowercase()).collect(),
                    );
                }
                members.extend(resolved[group].iter().cloned());
            }
            rules.push(Rule {
                name: name.to_string(),
                users: rule.users.iter().map(|u| u.to_lowercase()).collect(),
                members: (!rule.groups.is_empty()).then_some(members),
                folders: rule.folders.clone(),
                kinds: rule.kinds.clone(),
                keep,
            });
        }
        Ok(Policy { rules, default })
    }

    /// The rule deciding how long `entry` is kept: the longest keep among the rules covering it,
    /// the first of them on a tie; the default when none does.
    pub fn decide(&self, entry: &Entry) -> Decision<'_> {
        let mut best: Option<&Rule> = None;
        for rule in self.rules.iter().filter(|r| r.covers(entry)) {
            if best.is_none_or(|b| rule.keep.longer_than(&b.keep)) {
                best = Some(rule);
            }
        }
        match best {
            Some(rule) => Decision {
                rule: &rule.name,
                keep: rule.keep,
            },
            None => Decision {
                rule: DEFAULT_RULE,
                keep: self.default,
            },
        }
    }

    /// True if `entry` has outlived its keep at `now` (an entry without a time never has).
    pub fn expired(&self, entry: &Entry, now: Timestamp) -> bool {
        let keep = self.decide(entry).keep;
        match (entry.time_ms, keep.cutoff_ms(now)) {
            (Some(time), Some(cutoff)) => time < cutoff,
            _ => false,
        }
    }

    /// The oldest cutoff of any rule or the default at `now`: no entry newer than it can have
    /// expired. `None` when everything is kept forever.
    pub fn latest_cutoff_ms(&self, now: Timestamp) -> Option<i64> {
        self.rules
            .iter()
            .map(|r| r.keep)
            .chain([self.default])
            .filter_map(|k| k.cutoff_ms(now))
            .max()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The resolver of a policy that names no group.
    fn no_directory(group: &str) -> Result<Vec<String>, String> {
        panic!("no group is named, yet {group:?} was resolved")
    }

    fn policy(toml_text: &str) -> Policy {
        let config: RetentionConfig = toml::from_str(toml_text).unwrap();
        Policy::new(&config, no_directory).unwrap()
    }

    /// A directory with the groups `legal` (John, written as the directory spells him) and
    /// `cn=board,ou=groups,dc=example,dc=org` (Anna); any other group does not exist.
    fn directory(group: &str) -> Result<Vec<String>, String> {
        match group {
            "legal" => Ok(vec!["John.Doe@Example.org".into()]),
            "cn=board,ou=groups,dc=example,dc=org" => Ok(vec!["anna@example.org".into()]),
            _ => Err(format!("the directory has no group {group}")),
        }
    }

    const GROUP_POLICY: &str = r#"
        default = "10y"
        [[rule]]
        name = "sessions"
        kinds = ["sessions"]
        keep = "1d"
        [[rule]]
        name = "legal"
        groups = ["legal"]
        keep = "forever"
        [[rule]]
        name = "board-or-bob"
        users = ["bob@*"]
        groups = ["cn=board,ou=groups,dc=example,dc=org", "legal"]
        kinds = ["sessions"]
        keep = "30d"
        [[rule]]
        name = "board-mail"
        groups = ["cn=board,ou=groups,dc=example,dc=org"]
        kinds = ["messages"]
        keep = "2d"
    "#;

    #[test]
    fn a_group_rule_covers_its_members_and_the_longest_keep_still_wins() {
        let config: RetentionConfig = toml::from_str(GROUP_POLICY).unwrap();
        let mut asked = Vec::new();
        let policy = Policy::new(&config, |group| {
            asked.push(group.to_string());
            directory(group)
        })
        .unwrap();
        assert_eq!(asked, ["legal", "cn=board,ou=groups,dc=example,dc=org"]);
        let now: Timestamp = "2026-12-01T00:00:00Z".parse().unwrap();
        let decide = |user: &str, event: &str| {
            let e = entry(user, "INBOX", event, "2026-01-01T00:00:00Z");
            (policy.decide(&e).rule.to_string(), policy.expired(&e, now))
        };
        // John is in legal: forever beats the 1d and 30d of the session rules.
        assert_eq!(
            decide("john.doe@example.org", "Login"),
            ("legal".into(), false)
        );
        assert_eq!(
            decide("john.doe@example.org", "MessageNew"),
            ("legal".into(), false)
        );
        // Anna is on the board, Bob named by address: 30d beats 1d, and has passed.
        assert_eq!(
            decide("anna@example.org", "Login"),
            ("board-or-bob".into(), true)
        );
        assert_eq!(
            decide("bob@example.org", "Login"),
            ("board-or-bob".into(), true)
        );
        // Her mail is the board's (the default is for what no rule covers).
        assert_eq!(
            decide("anna@example.org", "MessageNew"),
            ("board-mail".into(), true)
        );
        // A rule of groups alone covers its members only, not everyone.
        assert_eq!(
            decide("jane.doe@example.org", "MessageNew"),
            ("default".into(), false)
        );
        assert_eq!(
            decide("jane.doe@example.org", "Login"),
            ("sessions".into(), true)
        );
        // The folder's owner counts as the actor does: Jane in John's folder is his entry too.
        let in_johns = Entry {
            users: vec!["jane.doe@example.org".into(), "john.doe@example.org".into()],
            ..entry(
                "jane.doe@example.org",
                "Calendar",
                "Login",
                "2026-01-01T00:00:00Z",
            )
        };
        assert_eq!(policy.decide(&in_johns).rule, "legal");
    }

    #[test]
    fn a_group_that_cannot_be_resolved_fails_the_policy_naming_rule_and_group() {
        let config: RetentionConfig = toml::from_str(
            "[[rule]]\nname = \"counsel\"\ngroups = [\"legal\", \"counsel\"]\nkeep = \"forever\"",
        )
        .unwrap();
        let error = Policy::new(&config, directory).unwrap_err().to_string();
        assert!(
            error.contains("rule \"counsel\"")
                && error.contains("group \"counsel\"")
                && error.contains("the directory has no group counsel"),
            "{error}"
        );
        let config: RetentionConfig =
            toml::from_str("[[rule]]\nname = \"x\"\ngroups = [\" \"]\nkeep = \"1d\"").unwrap();
        let error = Policy::new(&config, directory).unwrap_err().to_string();
        assert!(error.contains("empty name"), "{error}");
    }

    fn entry(user: &str, folder: &str, event: &str, time: &str) -> Entry {
        Entry {
            id: format!("{user}/{folder}/{event}"),
            time_ms: Some(time.parse::<Timestamp>().unwrap().as_millisecond()),
            users: vec![user.to_string()],
            folder: Some(folder.to_string()),
            event: event.to_string(),
            kind: Kind::of(event, Some("mail")),
        }
    }

    const POLICY: &str = r#"
        default = "10y"
        [[rule]]
        name = "sessions"
        kinds = ["sessions"]
        keep = "90d"
        [[rule]]
        name = "legal"
        users = ["*@legal.example.org"]
        keep = "forever"
        [[rule]]
        name = "drafts"
        folders = ["Drafts", "Drafts/*"]
        keep = "30 days"
        [[rule]]
        name = "board"
        users = ["*@example.org"]
        folders = ["Board/%"]
        keep = "12y"
    "#;

    #[test]
    fn the_longest_keep_among_matching_rules_wins_and_the_default_covers_the_rest() {
        let policy = policy(POLICY);
        let decide = |e: &Entry| policy.decide(e).rule.to_string();
        let login = entry("anna@example.org", "INBOX", "Login", "2020-01-01T00:00:00Z");
        assert_eq!(decide(&login), "sessions");
        // Forever beats the session rule's 90 days.
        let lawyer = entry(
            "bob@legal.example.org",
            "INBOX",
            "Login",
            "2020-01-01T00:00:00Z",
        );
        assert_eq!(decide(&lawyer), "legal");
        assert_eq!(policy.decide(&lawyer).keep, Keep::Forever);
        let draft = entry(
            "anna@example.org",
            "Drafts/Old",
            "MessageAppend",
            "2020-01-01T00:00:00Z",
        );
        assert_eq!(decide(&draft), "drafts");
        // Board/% is one level only; 12y beats the default's 10y.
        let board = entry(
            "anna@example.org",
            "Board/2020",
            "MessageAppend",
            "2020-01-01T00:00:00Z",
        );
        assert_eq!(decide(&board), "board");
        let deeper = entry(
            "anna@example.org",
            "Board/2020/Q1",
            "MessageAppend",
            "2020-01-01T00:00:00Z",
        );
        assert_eq!(decide(&deeper), DEFAULT_RULE);
        let mail = entry(
            "anna@example.org",
            "INBOX",
            "MessageNew",
            "2020-01-01T00:00:00Z",
        );
        assert_eq!(decide(&mail), DEFAULT_RULE);
    }

    #[test]
    fn an_entry_expires_once_older_than_its_keep_by_the_calendar() {
        let policy = policy(POLICY);
        let now: Timestamp = "2026-12-01T00:00:00Z".parse().unwrap();
        let old_login = entry("anna@example.org", "INBOX", "Login", "2026-09-01T23:59:59Z");
        let new_login = entry("anna@example.org", "INBOX", "Login", "2026-09-02T00:00:00Z");
        assert!(policy.expired(&old_login, now));
        assert!(
            !policy.expired(&new_login, now),
            "90 days back is 2026-09-02"
        );
        let lawyer = entry(
            "bob@legal.example.org",
            "INBOX",
            "Login",
            "1990-01-01T00:00:00Z",
        );
        assert!(!policy.expired(&lawyer, now), "forever");
        let mail = entry(
            "anna@example.org",
            "INBOX",
            "MessageNew",
            "2016-11-30T23:59:59Z",
        );
        assert!(policy.expired(&mail, now));
        let timeless = Entry {
            time_ms: None,
            ..old_login
        };
        assert!(!policy.expired(&timeless, now), "no time, no age");
    }

    #[test]
    fn bad_keeps_and_names_are_refused_naming_the_rule() {
        for (text, expected) in [
            ("default = \"soon\"", "[retention] default"),
            ("[[rule]]\nname = \"x\"\nkeep = \"-3d\"", "rule \"x\""),
            ("[[rule]]\nname = \"x\"\nkeep = \"5h\"", "whole days"),
            (
                "[[rule]]\nname = \"default\"\nkeep = \"5d\"",
                "a name of its own",
            ),
            (
                "[[rule]]\nname = \"x\"\nkeep = \"5d\"\n[[rule]]\nname = \"x\"\nkeep = \"6d\"",
                "used twice",
            ),
        ] {
            let config: RetentionConfig = toml::from_str(text).unwrap();
            let error = Policy::new(&config, no_directory).unwrap_err().to_string();
            assert!(error.contains(expected), "{text}: {error}");
        }
        assert!(
            toml::from_str::<RetentionConfig>(
                "[[rule]]\nname = \"x\"\nkeep = \"5d\"\nkinds = [\"spam\"]"
            )
            .is_err()
        );
    }

    #[test]
    fn kinds_follow_the_event_and_the_folder_type() {
        assert_eq!(Kind::of("MessageNew", Some("mail")), Kind::Messages);
        assert_eq!(Kind::of("vnd.cmu.MessageMove", None), Kind::Messages);
        assert_eq!(Kind::of("MessageAppend", Some("event")), Kind::Groupware);
        assert_eq!(Kind::of("FlagsSet", None), Kind::Flags);
        assert_eq!(Kind::of("Logout", None), Kind::Sessions);
        assert_eq!(Kind::of("MailboxRename", None), Kind::Folders);
        assert_eq!(Kind::of("AclChange", None), Kind::Folders);
        assert_eq!(Kind::of("QuotaChange", None), Kind::Other);
    }
}
