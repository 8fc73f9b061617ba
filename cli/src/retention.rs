//! `bonnie hold create|list|release` and `bonnie retention plan`. Holds are kept in the
//! storage (`bonnie_retention::holds`); placing or releasing one is audited before it is made
//! (an action whose record the broker does not keep does not happen), and listings and plans
//! are audited reads. The plan changes nothing. Rules naming directory groups have them read
//! from `[collector.ldap]`'s directory once, when the policy is built ([`Directory`]).

use std::{
    collections::{BTreeSet, VecDeque},
    io::IsTerminal as _,
    sync::{Arc, atomic::AtomicBool},
    time::Duration,
};

use anyhow::Context as _;
use bonnie_core::{Config, config::LdapConfig, time::now_ms};
use bonnie_plugin_api::storage::StorageClient;
use bonnie_retention::{Hold, Holds, Policy, Release, RetentionConfig, holds};
use jiff::{Timestamp, civil::Date, tz::TimeZone};
use ldap3::{LdapConn, LdapConnSettings, Scope, SearchEntry, ldap_escape};
use serde_json::json;

use crate::audit::{Auditor, os_user};

/// `bonnie hold ...`
#[derive(Debug, clap::Subcommand)]
pub enum HoldCommand {
    /// Places a legal hold: nothing it covers is purged until it is released.
    Create {
        /// The case the hold is for (unique among standing holds).
        case: String,
        /// A custodian whose entries it covers (as actor or folder owner); repeat for more.
        #[arg(long = "custodian", required = true)]
        custodians: Vec<String>,
        /// Only folders matching this IMAP pattern (`*` anything, `%` one level).
        #[arg(long)]
        folder: Option<String>,
        /// Only entries from this time on: RFC 3339 (`2025-01-01T00:00:00+01:00`) or a date
        /// (`2025-01-01`, midnight UTC).
        #[arg(long)]
        from: Option<String>,
        /// Only entries before this time (same forms as --from).
        #[arg(long)]
        to: Option<String>,
        /// Only entries whose text holds every word of this.
        #[arg(long)]
        query: Option<String>,
        /// Why the hold is placed.
        #[arg(long, required = true)]
        reason: String,
    },
    /// Lists the holds, standing and released.
    List {
        /// JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Releases a standing hold; purges may then remove what only it kept.
    Release {
        /// The case.
        case: String,
        /// Why it is released.
        #[arg(long, required = true)]
        reason: String,
    },
}

/// `bonnie retention ...`
#[derive(Debug, clap::Subcommand)]
pub enum RetentionCommand {
    /// Shows what the rules would purge now and what holds keep, per rule, with a sample;
    /// changes nothing.
    Plan {
        /// JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Purges what the rules say has expired and no hold keeps: each batch written to the
    /// verifiable log first, then its entries purged and the payloads no kept entry names
    /// removed. Run `bonnie retention plan` first to see what goes.
    Apply {
        /// Purge without asking (for a timer); without it, only the plan's totals are shown.
        #[arg(long)]
        yes: bool,
        /// JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

/// The storage, opened as the workers open it.
fn storage(config: &Config) -> anyhow::Result<StorageClient> {
    let (_, storage) = bonnie_host::open_storage(config, Arc::new(AtomicBool::new(false)))?;
    Ok(StorageClient::new(storage))
}

/// The policy of `[retention]`, the groups its rules name read from the directory.
pub fn policy(config: &Config) -> anyhow::Result<Policy> {
    let retention: RetentionConfig = toml::Value::Table(config.retention.clone())
        .try_into()
        .with_context(|| format!("[retention] in {}", config.path.display()))?;
    let mut directory = Directory::new(config);
    Ok(Policy::new(&retention, |group| directory.members(group))?)
}

/// The attributes holding a member's addresses: an entry's actor or folder owner is the
/// address its Cyrus login is.
const ADDRESS_ATTRIBUTES: [&str; 2] = ["mail", "mailAlternateAddress"];

/// LDAP's result code for a DN the directory has no entry for.
const NO_SUCH_OBJECT: u32 = 32;

/// The directory of `[collector.ldap]`, read for the members of the groups retention rules
/// name. A group is a static group entry, named by its DN or by its `cn` under `base`; its
/// members are the DNs in its `member` and `uniqueMember` values, a member that is a group
/// itself is expanded in turn, and each person's addresses are its `mail` and
/// `mailAlternateAddress`. Read so, rather than by the members' `memberOf`, because that needs
/// an overlay (OpenLDAP) or plugin (389-ds) a directory may not run, and without it every
/// group would look empty. Whatever cannot be read (the server, a group, a member's entry) is
/// an error: a purge must not run on a guess of who is in a group.
struct Directory<'c> {
    config: &'c Config,
    /// Bound on first use, so that a policy naming no group never asks the directory.
    connection: Option<LdapConn>,
}

impl<'c> Directory<'c> {
    fn new(config: &'c Config) -> Self {
        Self {
            config,
            connection: None,
        }
    }

    fn ldap(&self) -> &LdapConfig {
        &self.config.collector.ldap
    }

    /// The connection, bound as configured (the password read from `bind_password_file` as the
    /// daemons read it).
    fn connection(&mut self) -> Result<&mut LdapConn, String> {
        if self.connection.is_none() {
            let mut secrets = self.config.clone();
            secrets.load_secrets().map_err(|e| e.to_string())?;
            let ldap = &secrets.collector.ldap;
            let timeout = Duration::from_millis(ldap.timeout_ms);
            let settings = LdapConnSettings::new().set_conn_timeout(timeout);
            let mut connection = LdapConn::with_settings(settings, &ldap.url).map_err(|e| {
                format!(
                    "cannot reach LDAP at {} ([collector.ldap] url): {e}",
                    ldap.url
                )
            })?;
            connection.with_timeout(timeout);
            if !ldap.bind_dn.is_empty() {
                connection
                    .simple_bind(&ldap.bind_dn, &ldap.bind_password)
                    .and_then(|r| r.success())
                    .map_err(|e| {
                        format!(
                            "LDAP at {} refuses the bind as {} ([collector.ldap] bind_dn): {e}",
                            ldap.url, ldap.bind_dn
                        )
                    })?;
            }
            self.connection = Some(connection);
        }
        Ok(self.connection.as_mut().expect("connected above"))
    }

    /// The entries under `base` in `scope` matching `filter`, with `attributes`; `None` when
    /// the directory has no entry `base`.
    fn search(
        &mut self,
        base: &str,
        scope: Scope,
        filter: &str,
        attributes: &[&str],
    ) -> Result<Option<Vec<SearchEntry>>, String> {
        let url = self.ldap().url.clone();
        let result = self
            .connection()?
            .search(base, scope, filter, attributes.to_vec())
            .map_err(|e| format!("LDAP at {url}: the search of {base} failed: {e}"))?;
        if result.1.rc == NO_SUCH_OBJECT {
            return Ok(None);
        }
        let (entries, _) = result
            .success()
            .map_err(|e| format!("LDAP at {url}: the search of {base} failed: {e}"))?;
        Ok(Some(
            entries.into_iter().map(SearchEntry::construct).collect(),
        ))
    }

    /// The entry `dn` with `attributes`; `None` when the directory has none.
    fn read(&mut self, dn: &str, attributes: &[&str]) -> Result<Option<SearchEntry>, String> {
        Ok(self
            .search(dn, Scope::Base, "(objectClass=*)", attributes)?
            .and_then(|entries| entries.into_iter().next()))
    }

    /// The group entry a rule names: `group` itself if it is a DN (it holds `=`), else the one
    /// group whose `cn` it is under `base`.
    fn group_entry(&mut self, group: &str) -> Result<SearchEntry, String> {
        let attributes = group_attributes();
        let url = self.ldap().url.clone();
        if group.contains('=') {
            return self
                .read(group, &attributes)?
                .ok_or_else(|| format!("LDAP at {url} has no entry {group}"));
        }
        let base = self.ldap().group_base().to_string();
        let classes: String = LdapConfig::GROUP_CLASSES
            .iter()
            .map(|(class, _)| format!("(objectClass={class})"))
            .collect();
        let filter = format!("(&(|{classes})(cn={}))", ldap_escape(group));
        let mut found = self
            .search(&base, Scope::Subtree, &filter, &attributes)?
            .ok_or_else(|| {
                format!(
                    "LDAP at {url} has no entry {base} ([collector.ldap] group_base, else base)"
                )
            })?;
        match found.len() {
            0 => Err(format!(
                "LDAP at {url} has no group with cn={group} under {base} ([collector.ldap] group_base, else \
                 base; name a group elsewhere by its DN)"
            )),
            1 => Ok(found.remove(0)),
            _ => Err(format!(
                "LDAP at {url} has {} groups with cn={group} under {base}: name the one meant by \
                 its DN ({})",
                found.len(),
                found
                    .iter()
                    .map(|e| e.dn.as_str())
                    .collect::<Vec<_>>()
                    .join("; ")
            )),
        }
    }

    /// The addresses of the members of `group`, nested groups expanded (each once).
    fn members(&mut self, group: &str) -> Result<Vec<String>, String> {
        let url = self.ldap().url.clone();
        let entry = self.group_entry(group)?;
        if group_members(&entry).is_none() {
            return Err(format!(
                "{} in LDAP at {url} is not a static group (objectClass groupOfNames or \
                 groupOfUniqueNames)",
                entry.dn
            ));
        }
        let mut addresses = BTreeSet::new();
        let mut groups_seen = BTreeSet::new();
        let mut pending = VecDeque::from([entry]);
        let mut attributes = group_attributes();
        attributes.extend(ADDRESS_ATTRIBUTES);
        while let Some(entry) = pending.pop_front() {
            if let Some(members) = group_members(&entry) {
                if groups_seen.insert(entry.dn.to_lowercase()) {
                    for member in members {
                        let found = self.read(&member, &attributes)?.ok_or_else(|| {
                            format!(
                                "group {} in LDAP at {url} names the member {member}, which the \
                                 directory has no entry for",
                                entry.dn
                            )
                        })?;
                        pending.push_back(found);
                    }
                }
                continue;
            }
            // A member without an address (a service account) is no one's mail: it covers
            // no entry.
            for name in ADDRESS_ATTRIBUTES {
                addresses.extend(values(&entry, name).iter().map(|a| a.trim().to_lowercase()));
            }
        }
        Ok(addresses.into_iter().collect())
    }
}

/// The attributes read of a group or member to tell whether it is a group, and its members.
fn group_attributes() -> Vec<&'static str> {
    let mut attributes = vec!["objectClass"];
    attributes.extend(
        LdapConfig::GROUP_CLASSES
            .iter()
            .map(|(_, attribute)| *attribute),
    );
    attributes
}

/// The values of an attribute, its name without regard to case (servers spell names their
/// own way).
fn values<'e>(entry: &'e SearchEntry, name: &str) -> &'e [String] {
    entry
        .attrs
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_slice())
        .unwrap_or_default()
}

/// The member DNs of a static group entry; `None` if it is not one. A `uniqueMember`'s
/// optional `#'0101'B` unique id (RFC 4517 nameAndOptionalUID) is dropped.
fn group_members(entry: &SearchEntry) -> Option<Vec<String>> {
    let classes = values(entry, "objectClass");
    let mut is_group = false;
    let mut members = Vec::new();
    for (class, attribute) in LdapConfig::GROUP_CLASSES {
        if classes.iter().any(|c| c.eq_ignore_ascii_case(class)) {
            is_group = true;
            members.extend(
                values(entry, attribute)
                    .iter()
                    .map(|dn| match dn.rsplit_once('#') {
                        Some((name, uid)) if uid.starts_with('\'') && uid.ends_with("'B") => {
                            name.to_string()
                        }
                        _ => dn.clone(),
                    }),
            );
        }
    }
    is_group.then_some(members)
}

/// A time given on the command line, in ms since the epoch.
fn parse_time(text: &str, flag: &str) -> anyhow::Result<i64> {
    if let Ok(timestamp) = text.parse::<Timestamp>() {
        return Ok(timestamp.as_millisecond());
    }
    let date: Date = text.parse().with_context(|| {
        format!("{flag} {text:?}: not an RFC 3339 time (2025-01-01T00:00:00+01:00) or a date (2025-01-01)")
    })?;
    Ok(date
        .to_zoned(TimeZone::UTC)
        .with_context(|| format!("{flag} {text:?}"))?
        .timestamp()
        .as_millisecond())
}

fn time_text(ms: i64) -> String {
    Timestamp::from_millisecond(ms)
        .map(|t| t.to_string())
        .unwrap_or_else(|_| ms.to_string())
}

/// Runs a `bonnie hold` command.
pub fn hold(config: &Config, auditor: &Auditor<'_>, command: &HoldCommand) -> anyhow::Result<()> {
    match command {
        HoldCommand::Create {
            case,
            custodians,
            folder,
            from,
            to,
            query,
            reason,
        } => {
            let hold = Hold {
                case: case.clone(),
                custodians: custodians.iter().map(|c| c.trim().to_lowercase()).collect(),
                folder: folder.clone(),
                from_ms: from
                    .as_deref()
                    .map(|t| parse_time(t, "--from"))
                    .transpose()?,
                to_ms: to.as_deref().map(|t| parse_time(t, "--to")).transpose()?,
                query: query.clone(),
                reason: reason.clone(),
                created_by: os_user(),
                created_ms: now_ms(),
                released: None,
                discovery: None,
            };
            hold.validate()?;
            let storage = storage(config)?;
            let params = serde_json::to_value(&hold)?;
            auditor.change("hold create", params, Some(1), || {
                Ok(holds::create(&storage, &hold)?)
            })?;
            println!(
                "Case {:?} is on hold: {} custodian{}; nothing it covers is purged until `bonnie hold release`.",
                hold.case,
                hold.custodians.len(),
                if hold.custodians.len() == 1 { "" } else { "s" }
            );
        }
        HoldCommand::List { json } => {
            let storage = storage(config)?;
            let all = holds::list(&storage)?;
            auditor.read("hold list", json!({}), all.len() as u64)?;
            if *json {
                println!("{}", serde_json::to_value(&all)?);
            } else if all.is_empty() {
                println!("No holds.");
            } else {
                for hold in &all {
                    print!("{}", render_hold(hold));
                }
            }
        }
        HoldCommand::Release { case, reason } => {
            let storage = storage(config)?;
            let release = Release {
                by: os_user(),
                at_ms: now_ms(),
                reason: reason.clone(),
            };
            let params = json!({ "case": case, "reason": reason });
            auditor.change("hold release", params, Some(1), || {
                Ok(holds::release(&storage, case, release)?)
            })?;
            println!("The hold of case {case:?} is released.");
        }
    }
    Ok(())
}

fn render_hold(hold: &Hold) -> String {
    let state = match &hold.released {
        None => "STANDING".to_string(),
        Some(r) => format!("released {} by {}: {}", time_text(r.at_ms), r.by, r.reason),
    };
    let mut out = format!(
        "{}  {state}\n  placed {} by {}: {}\n  custodians: {}\n",
        hold.case,
        time_text(hold.created_ms),
        hold.created_by,
        hold.reason,
        hold.custodians.join(", ")
    );
    if let Some(folder) = &hold.folder {
        out.push_str(&format!("  folders: {folder}\n"));
    }
    if hold.from_ms.is_some() || hold.to_ms.is_some() {
        out.push_str(&format!(
            "  from {} to {}\n",
            hold.from_ms
                .map(time_text)
                .unwrap_or_else(|| "the start".into()),
            hold.to_ms.map(time_text).unwrap_or_else(|| "now on".into())
        ));
    }
    if let Some(query) = &hold.query {
        out.push_str(&format!("  query: {query}\n"));
    }
    if let Some(criteria) = &hold.discovery {
        out.push_str("  placed from the case's queries (every entry of the items they match):\n");
        for query in &criteria.queries {
            out.push_str(&format!("    {query}\n"));
        }
    }
    out
}

/// Runs a `bonnie retention` command.
pub fn retention(
    config: &Config,
    auditor: &Auditor<'_>,
    command: &RetentionCommand,
) -> anyhow::Result<()> {
    match command {
        RetentionCommand::Plan { json } => {
            let policy = policy(config)?;
            let storage = storage(config)?;
            let holds = Holds::standing(&storage)?;
            let plan = bonnie_retention::plan(&storage, &policy, &holds, Timestamp::now())?;
            auditor.read(
                "retention plan",
                json!({ "purged": plan.purged, "held": plan.held }),
                plan.purged + plan.held,
            )?;
            if *json {
                println!("{}", serde_json::to_value(&plan)?);
            } else {
                print!("{}", render_plan(&plan));
            }
        }
        RetentionCommand::Apply { yes, json } => {
            let policy = policy(config)?;
            let storage = storage(config)?;
            if !yes {
                let holds = Holds::standing(&storage)?;
                let plan = bonnie_retention::plan(&storage, &policy, &holds, Timestamp::now())?;
                print!("{}", render_plan(&plan));
                anyhow::bail!(
                    "nothing was purged: `bonnie retention apply --yes` purges the {} entries above",
                    plan.purged
                );
            }
            let terminal = std::io::stderr().is_terminal();
            let report = auditor.change("retention apply", json!({}), None, || {
                Ok(bonnie_retention::purge(
                    &storage,
                    &policy,
                    Timestamp::now(),
                    |batch| {
                        let params = serde_json::to_value(batch).unwrap_or_default();
                        auditor
                            .step("retention purge", params, batch.entries.len() as u64)
                            .map_err(|e| {
                                bonnie_retention::RetentionError::NotRecorded(format!("{e:#}"))
                            })
                    },
                    |done, total| {
                        if terminal {
                            eprint!("\rbonnie retention apply: {done} of {total} expired entries");
                            if done == total {
                                eprintln!();
                            }
                        }
                    },
                )?)
            })?;
            auditor.step(
                "retention apply",
                serde_json::to_value(&report)?,
                report.purged,
            )?;
            if *json {
                println!("{}", serde_json::to_value(&report)?);
            } else {
                println!(
                    "Purged {} entries and {} payloads ({} payloads kept for entries kept); {} expired entries are kept by holds. {} purge records are in the log.",
                    report.purged,
                    report.payloads_removed,
                    report.payloads_kept,
                    report.held,
                    report.records
                );
            }
        }
    }
    Ok(())
}

fn render_plan(plan: &bonnie_retention::Plan) -> String {
    let mut out = format!(
        "Retention plan at {}: {} entries would be purged, {} are kept by {} standing hold{} ({} examined).\n",
        plan.at,
        plan.purged,
        plan.held,
        plan.holds,
        if plan.holds == 1 { "" } else { "s" },
        plan.examined
    );
    for (name, rule) in &plan.rules {
        out.push_str(&format!(
            "  {name} (keep {}): {} expired, {} to purge, {} held\n",
            rule.keep, rule.expired, rule.purged, rule.held
        ));
        for sampled in rule.sample.iter().chain(&rule.held_sample) {
            let held = if sampled.held_by.is_empty() {
                String::new()
            } else {
                format!("  held by {}", sampled.held_by.join(", "))
            };
            out.push_str(&format!(
                "    {}  {}  {}  {}{held}\n",
                sampled.time,
                sampled.event,
                sampled.users.join(","),
                sampled.folder.as_deref().unwrap_or("-"),
            ));
        }
    }
    out
}
