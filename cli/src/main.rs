//! `bonnie`: the administrator's command line. It asks the broker, over its admin socket, for
//! its status and its FAILED jobs, and returns FAILED jobs to the queue; it manages the API's
//! clients and the CURVE keys that let peers in; it checks the configuration file as the daemons
//! would use it (`config check`); it archives what Cyrus holds and the archive lacks
//! (`backfill`, `reconcile`) and runs archived records through handlers enabled later
//! (`reprocess`); every command that reads or changes the archive is audited in
//! the verifiable log with the OS user who ran it (`audit`).
#![forbid(unsafe_code)]

mod audit;
mod backfill;
mod cases;
mod checkpoint;
mod config_check;
mod discovery;
mod dlp;
mod export;
mod keys;
mod logins;
mod reconcile;
mod reprocess;
mod restore;
mod retention;
mod spool;
mod trace;
mod verify;

use std::{path::PathBuf, process::ExitCode, time::Duration};

use anyhow::Context as _;
use bonnie_api::{
    admin::Admin,
    clients::{Clients, Role},
};
use bonnie_core::{Config, protocol::AdminRequest};
use clap::{Parser, Subcommand};
use serde_json::{Value, json};

/// bonnie's admin command line.
#[derive(Parser)]
#[command(name = "bonnie", version)]
struct Args {
    /// Configuration file [default: $BONNIE_CONFIG, else /etc/bonnie/bonnie.toml]
    #[arg(short, long, value_name = "PATH", global = true)]
    config: Option<PathBuf>,
    /// Seconds to wait for the broker's answer
    #[arg(long, value_name = "SECONDS", default_value_t = 5, global = true)]
    timeout: u64,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Jobs per state, workers and collectors with when they were last heard from, the age of
    /// the oldest unfinished job, what the broker ignored, and the damaged bytes this host's
    /// dealers quarantined
    Status {
        /// Print the status as one JSON object
        #[arg(long)]
        json: bool,
    },
    /// Jobs in the broker's queue
    Jobs {
        #[command(subcommand)]
        command: JobsCommand,
    },
    /// Clients of bonnie-api (the [api] clients file)
    ApiClient {
        #[command(subcommand)]
        command: ApiClientCommand,
    },
    /// The verifiable log's signing key
    Ledger {
        #[command(subcommand)]
        command: LedgerCommand,
    },
    /// Legal holds: what they cover is never purged while they stand
    Hold {
        #[command(subcommand)]
        command: retention::HoldCommand,
    },
    /// e-Discovery: the items (messages, groupware objects) a query matches, deleted ones
    /// included, as the mailboxes stand now or stood at a moment. Query language: from: to:
    /// cc: bcc: addr: subject: body: filename: has:attachment larger: smaller: after: before:
    /// folder: user: message-id: flag: direction: deleted: type:, bare words, "phrases",
    /// word*, OR, NOT or -, parentheses (docs/ediscovery.md)
    Search {
        /// The query
        query: String,
        /// Only among the items of this case's custodians
        #[arg(long, value_name = "NAME")]
        case: Option<String>,
        /// Answer as the mailboxes stood then: a date or a time ([discovery] time_zone unless
        /// it has an offset)
        #[arg(long, value_name = "WHEN")]
        as_of: Option<String>,
        /// At most this many items, newest first
        #[arg(long, value_name = "N", default_value_t = 100)]
        limit: usize,
        /// Print the items as one JSON array
        #[arg(long)]
        json: bool,
    },
    /// e-Discovery cases: custodians, saved queries, holds placed from them, their exports
    Case {
        #[command(subcommand)]
        command: cases::CaseCommand,
    },
    /// Export items for review (EML, mboxrd, DAT load file) with a manifest, checksums and
    /// inclusion proofs; `bonnie export verify <dir>` checks an export offline
    Export(export::ExportArgs),
    /// Restore into live Cyrus a user's folder or message as it was at a moment (by default
    /// into a new folder Restored/<date>/..., so nothing live is touched)
    Restore(restore::RestoreArgs),
    /// One item: its headers, text, attachments, every place it lived and its flag history
    Show {
        /// The item: its digest (or its first 12 or more digits), or its Message-ID
        item: String,
        /// Its flags and places as they stood then
        #[arg(long, value_name = "WHEN")]
        as_of: Option<String>,
        /// Print the item as one JSON object
        #[arg(long)]
        json: bool,
    },
    /// Data-loss prevention: the rules ([plugins.dlp]), their incidents, scans of the archive
    Dlp {
        #[command(subcommand)]
        command: dlp::DlpCommand,
    },
    /// Retention: how long archived entries are kept ([retention] rules)
    Retention {
        #[command(subcommand)]
        command: retention::RetentionCommand,
    },
    /// Ask the broker to sign a checkpoint of the verifiable log now, and print it
    Checkpoint {
        /// Print the checkpoint as JSON
        #[arg(long)]
        json: bool,
    },
    /// Check the verifiable log: every record and payload against its leaf, the tree against
    /// the signed checkpoints; names the first bad sequence number, fails on any finding
    Verify {
        /// Read back records from this sequence number on
        #[arg(long, value_name = "N")]
        from: Option<u64>,
        /// Read back records before this sequence number
        #[arg(long, value_name = "N")]
        to: Option<u64>,
        /// The archive's public key file [default: [ledger] signing_key's]
        #[arg(long, value_name = "PATH")]
        public_key: Option<PathBuf>,
        /// The broker's job store (or a copy) holding the log [default: [broker] database]
        #[arg(long, value_name = "PATH")]
        job_store: Option<PathBuf>,
        /// Print the report as JSON
        #[arg(long)]
        json: bool,
    },
    /// The configuration file
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// CURVE keys of the broker and its peers ([curve] keys_dir)
    Keys {
        #[command(subcommand)]
        command: keys::KeysCommand,
    },
    /// A message's way through Postfix into its folder: every queue file on every host,
    /// each recipient's outcome, and the archive's entries of it
    Trace {
        /// A Message-ID, a queue ID or an address
        what: String,
        /// Only messages first seen since: an RFC 3339 instant, a date, or a span such as 24h
        #[arg(long, value_name = "WHEN")]
        since: Option<String>,
        /// Print the traces as one JSON array
        #[arg(long)]
        json: bool,
    },
    /// A user's IMAP Logins; those from a webmail host ([plugins.webmail] webmail_hosts) with
    /// the browser's address and the Roundcube session behind them
    Logins {
        /// The IMAP user
        user: String,
        /// Only logins since: an RFC 3339 instant, a date, or a span such as 24h
        #[arg(long, value_name = "WHEN")]
        since: Option<String>,
        /// Print the logins as one JSON array
        #[arg(long)]
        json: bool,
    },
    /// Archive what Cyrus already holds: every folder and message of the users (or all) the
    /// archive lacks, as records marked back-filled; throttled, resumable, idempotent
    Backfill {
        /// This user's folders (repeatable)
        #[arg(
            long = "user",
            value_name = "USER",
            required_unless_present = "all",
            conflicts_with = "all"
        )]
        users: Vec<String>,
        /// Every folder, shared ones too
        #[arg(long)]
        all: bool,
        /// Only folders whose name matches (`*` anything, `%` anything but `/`)
        #[arg(long, value_name = "PATTERN")]
        folder: Option<String>,
        /// Only messages whose INTERNALDATE is since: an RFC 3339 instant, a date, or a span
        #[arg(long, value_name = "WHEN")]
        since: Option<String>,
        /// At most this many messages a second (halved while Cyrus answers slowly)
        #[arg(long, value_name = "MSGS", default_value_t = 200.0)]
        rate: f64,
        /// Stop after this many messages; a rerun continues
        #[arg(long, value_name = "N")]
        limit: Option<u64>,
        /// Print the counts as one JSON object
        #[arg(long)]
        json: bool,
    },
    /// Compare each folder in Cyrus with the archive and fill the gaps: unknown folders,
    /// missing messages, folders gone without a delete event; each gap a record
    Reconcile {
        /// This user's folders
        #[arg(
            long,
            value_name = "USER",
            required_unless_present = "all",
            conflicts_with = "all"
        )]
        user: Option<String>,
        /// Every folder, shared ones too
        #[arg(long)]
        all: bool,
        /// At most this many records a second
        #[arg(long, value_name = "MSGS", default_value_t = 200.0)]
        rate: f64,
        /// Print the counts per kind of gap as one JSON object
        #[arg(long)]
        json: bool,
    },
    /// Run the archive's records through a handler enabled after they were archived
    /// (changelog: the messages' trails and the Kolab objects' revisions), writing nothing twice
    Reprocess {
        /// The handler: changelog (message trails, object revisions), freebusy (parsed events)
        /// or items (e-discovery's item documents and custodian records, for an archive made
        /// before they were kept)
        #[arg(long, value_name = "NAME")]
        handler: String,
        /// Only records since: an RFC 3339 instant, a date, or a span such as 24h
        #[arg(long, value_name = "WHEN")]
        since: Option<String>,
        /// With --handler items: write every item document again from its payload, not only
        /// the missing ones (once after an upgrade that changed how items are indexed)
        #[arg(long)]
        rewrite: bool,
        /// Print the counts as one JSON object
        #[arg(long)]
        json: bool,
    },
    /// The audit records of the verifiable log: who did what to the archive, when, with how
    /// many items, through this command line or bonnie-api; each checked against its leaf
    Audit {
        /// Only actions since: an RFC 3339 instant, a date, or a span such as 24h
        #[arg(long, value_name = "WHEN")]
        since: Option<String>,
        /// Only actions of this user (the OS user, or the user an API client acted for)
        #[arg(long, value_name = "USER")]
        user: Option<String>,
        /// The broker's job store (or a copy) holding the log [default: [broker] database]
        #[arg(long, value_name = "PATH")]
        job_store: Option<PathBuf>,
        /// Print the records as one JSON array
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Check the whole file as the daemons would use it: its keys, the folders and files it
    /// names with their permissions, the plugins (loaded and started as the worker does) and,
    /// unless --offline, the peers it names; one line a problem, a non-zero exit on any
    Check {
        /// Only the parts of these daemons, e.g. --role dealer,collector [default: those whose
        /// tables the file has]
        #[arg(long, value_delimiter = ',', value_name = "ROLES")]
        role: Vec<config_check::Role>,
        /// Do not ask the peers (broker, LDAP, IMAP, Elasticsearch)
        #[arg(long)]
        offline: bool,
        /// Print the findings as one JSON object
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum LedgerCommand {
    /// Make the archive's signing key ([ledger] signing_key) and its public key beside it
    Init {
        /// The key's name, the checkpoints' origin (no spaces, no '+'), e.g.
        /// archive.example.org/bonnie
        #[arg(long, default_value = "bonnie")]
        name: String,
    },
}

#[derive(Subcommand)]
enum ApiClientCommand {
    /// Create a client; its password and signing secret are printed once, here
    Add {
        /// The client's name (its HTTP Basic user), e.g. roundcube
        name: String,
        /// What it is for: groupware (Roundcube) or ediscovery (discovery.search and
        /// discovery.show over every custodian's items)
        #[arg(long, value_enum, default_value = "groupware")]
        role: Role,
    },
    /// The clients, with when each was added and their role
    List,
    /// Remove a client: its requests are refused from bonnie-api's next start
    Remove {
        /// The client's name
        name: String,
    },
}

#[derive(Subcommand)]
enum JobsCommand {
    /// The newest FAILED jobs, with why they failed
    Failed {
        /// How many to list
        #[arg(long, default_value_t = 100)]
        limit: u32,
        /// Print them as JSON
        #[arg(long)]
        json: bool,
    },
    /// Return FAILED jobs to PENDING so workers run them again
    Retry {
        /// The job to retry
        #[arg(required_unless_present = "all", conflicts_with = "all")]
        id: Option<String>,
        /// Retry every FAILED job
        #[arg(long)]
        all: bool,
    },
}

fn main() -> ExitCode {
    let args = Args::parse();
    // Its own exit statuses (0 no hit, 1 hit, 2 error), and no broker or full configuration.
    if let Command::Dlp {
        command: command @ dlp::DlpCommand::Check { .. },
    } = &args.command
    {
        return dlp::run(args.config.as_deref(), command);
    }
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bonnie: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> anyhow::Result<()> {
    let path = Config::locate(args.config.as_deref());
    // The check reads the file itself: a file the others refuse is what it is there to explain.
    if let Command::Config {
        command:
            ConfigCommand::Check {
                role,
                offline,
                json,
            },
    } = &args.command
    {
        return config_check::run(&config_check::CheckArgs {
            path: &path,
            roles: role,
            offline: *offline,
            timeout: Duration::from_secs(args.timeout),
            json: *json,
        });
    }
    let config = match Config::load(&path) {
        Ok(config) => config,
        Err(e) => {
            let e = anyhow::Error::from(e);
            // An export is checked wherever it was taken, without bonnie's configuration.
            if let Command::Export(export) = &args.command
                && let Some(verified) = export::verify_without_config(export, &e)
            {
                return verified;
            }
            return Err(e);
        }
    };
    let broker = Admin::new(
        &config.broker.admin_address,
        Duration::from_secs(args.timeout),
        &config.curve,
    );
    let auditor = audit::Auditor::new(&broker, &config.curve);
    match &args.command {
        Command::ApiClient { command } => match command {
            ApiClientCommand::Add { name, .. } | ApiClientCommand::Remove { name } => {
                let (action, params) = match command {
                    ApiClientCommand::Add { role, .. } => {
                        ("api-client add", json!({ "name": name, "role": role }))
                    }
                    _ => ("api-client remove", json!({ "name": name })),
                };
                auditor.setup_change(action, params, Some(1), || api_client(&config, command))?
            }
            ApiClientCommand::List => api_client(&config, command)?,
        },
        Command::Keys { command } => match keys::audited(command) {
            Some((action, params)) => {
                auditor.setup_change(action, params, Some(1), || keys::run(&config, command))?
            }
            None => keys::run(&config, command)?,
        },
        Command::Ledger {
            command: LedgerCommand::Init { name },
        } => checkpoint::init(&config, name)?,
        Command::Config { .. } => unreachable!("run before the configuration is loaded"),
        Command::Dlp { command } => dlp::admin(&config, &auditor, command)?,
        Command::Checkpoint { json } => auditor.change("checkpoint", json!({}), None, || {
            checkpoint::run(&broker, *json)
        })?,
        Command::Audit {
            since,
            user,
            job_store,
            json,
        } => audit::list(
            &config,
            &auditor,
            &audit::ListArgs {
                since: since.as_deref(),
                user: user.as_deref(),
                job_store: job_store.as_deref(),
                json: *json,
            },
        )?,
        Command::Verify {
            from,
            to,
            public_key,
            job_store,
            json,
        } => verify::run(
            &config,
            &auditor,
            &verify::VerifyArgs {
                from: *from,
                to: *to,
                public_key: public_key.as_deref(),
                job_store: job_store.as_deref(),
                json: *json,
            },
        )?,
        Command::Hold { command } => retention::hold(&config, &auditor, command)?,
        Command::Retention { command } => retention::retention(&config, &auditor, command)?,
        Command::Trace { what, since, json } => trace::run(
            &config,
            &auditor,
            &trace::TraceArgs {
                what,
                since: since.as_deref(),
                json: *json,
            },
        )?,
        Command::Logins { user, since, json } => logins::run(
            &config,
            &auditor,
            &logins::LoginsArgs {
                user,
                since: since.as_deref(),
                json: *json,
            },
        )?,
        Command::Backfill {
            users,
            all,
            folder,
            since,
            rate,
            limit,
            json,
        } => backfill::run(
            &config,
            &auditor,
            &backfill::BackfillArgs {
                users,
                all: *all,
                folder: folder.as_deref(),
                since: since.as_deref(),
                rate: *rate,
                limit: *limit,
                json: *json,
            },
        )?,
        Command::Reconcile {
            user,
            all,
            rate,
            json,
        } => reconcile::run(&config, &auditor, user.as_deref(), *all, *rate, *json)?,
        Command::Search {
            query,
            case,
            as_of,
            limit,
            json,
        } => discovery::search(
            &config,
            &auditor,
            query,
            case.as_deref(),
            as_of.as_deref(),
            *limit,
            *json,
        )?,
        Command::Case { command } => cases::run(&config, &auditor, command)?,
        Command::Export(args) => export::run(&config, &auditor, args)?,
        Command::Restore(args) => restore::run(&config, &auditor, args)?,
        Command::Show { item, as_of, json } => {
            discovery::show(&config, &auditor, item, as_of.as_deref(), *json)?
        }
        Command::Reprocess {
            handler,
            since,
            rewrite,
            json,
        } => reprocess::run(
            &config,
            &auditor,
            handler,
            since.as_deref(),
            *rewrite,
            *json,
        )?,
        Command::Status { json } => {
            let mut status = broker.ask(&AdminRequest::Status)?;
            if let (Some(run), Some(fields)) = (backfill::status(&config), status.as_object_mut()) {
                fields.insert("backfill".to_string(), run);
            }
            if let (Some(spool), Some(fields)) = (
                spool::status(&config.dealer.spool_dir),
                status.as_object_mut(),
            ) {
                fields.insert("dealer_spool".to_string(), spool);
            }
            if *json {
                println!("{status}");
            } else {
                print!("{}", render_status(&status));
            }
        }
        Command::Jobs {
            command: JobsCommand::Failed { limit, json },
        } => {
            let failed = broker.ask(&AdminRequest::Failed { limit: *limit })?;
            if *json {
                println!("{failed}");
            } else {
                let list = failed
                    .as_array()
                    .context("the broker's answer is not a list")?;
                if list.is_empty() {
                    println!("No FAILED jobs.");
                }
                for job in list {
                    println!(
                        "{}  {}  {}  {}",
                        job["id"].as_str().unwrap_or("?"),
                        bonnie_core::time::format_rfc3339_s(
                            job["updated_ms"].as_i64().unwrap_or(0)
                        ),
                        job["event"].as_str().unwrap_or("(not a notification)"),
                        job["reason"].as_str().unwrap_or("")
                    );
                }
            }
        }
        Command::Jobs {
            command: JobsCommand::Retry { id, all },
        } => {
            let (request, params, count) = match (id, all) {
                (Some(id), false) => (
                    AdminRequest::Retry { id: id.clone() },
                    json!({ "id": id }),
                    Some(1),
                ),
                _ => (AdminRequest::RetryAll, json!({ "all": true }), None),
            };
            let answer = auditor.change("jobs retry", params, count, || broker.ask(&request))?;
            let retried = answer["retried"].as_array().map_or(0, Vec::len);
            println!("{retried} job(s) returned to PENDING.");
        }
    }
    Ok(())
}

/// The line for Roundcube's `config.inc.php` with every key libkolab's `kolab_bonnie_api`
/// reads (`uri`, `user`, `pass`, `secret`, `timeout`, `debug`): HTTPS when bonnie-api has a
/// certificate, and an address Roundcube can reach when bonnie-api listens on all of them.
fn roundcube_config(
    api: &bonnie_core::config::ApiConfig,
    user: &str,
    pass: &str,
    secret: &str,
) -> String {
    let scheme = if api.tls_certificate.is_some() {
        "https"
    } else {
        "http"
    };
    let address = match api.listen.parse::<std::net::SocketAddr>() {
        Ok(std::net::SocketAddr::V4(a)) if a.ip().is_unspecified() => {
            format!("127.0.0.1:{}", a.port())
        }
        Ok(std::net::SocketAddr::V6(a)) if a.ip().is_unspecified() => format!("[::1]:{}", a.port()),
        _ => api.listen.clone(),
    };
    // A PHP single-quoted string: only the quote and the backslash are special.
    let php = |text: &str| text.replace('\\', "\\\\").replace('\'', "\\'");
    format!(
        "$config['kolab_bonnie_api'] = array('uri' => '{}', 'user' => '{}', 'pass' => '{}', 'secret' => '{}', 'timeout' => 30, 'debug' => false);",
        php(&format!("{scheme}://{address}/api/rpc")),
        php(user),
        php(pass),
        php(secret)
    )
}

fn api_client(config: &Config, command: &ApiClientCommand) -> anyhow::Result<()> {
    let path = &config.api.clients;
    let mut clients = Clients::load(path)?;
    match command {
        ApiClientCommand::Add { name, role } => {
            let made = clients.add(name, *role)?;
            println!("API client {:?} added to {}.", made.name, path.display());
            if *role == Role::Ediscovery {
                println!(
                    "An e-discovery client: discovery.search and discovery.show over every custodian's items."
                );
                println!("Its password and secret are shown this once:");
            } else {
                println!(
                    "Its password and secret are shown this once; in Roundcube's config.inc.php:"
                );
                println!(
                    "{}",
                    roundcube_config(&config.api, &made.name, &made.password, &made.secret)
                );
            }
            println!(
                "user:     {}\npassword: {}\nsecret:   {}",
                made.name, made.password, made.secret
            );
            println!("Restart bonnie-api to let it in.");
        }
        ApiClientCommand::List => {
            if clients.clients.is_empty() {
                println!("No API clients in {}.", path.display());
            }
            for (name, client) in &clients.clients {
                let admin = if config.api.admin_clients.contains(name) {
                    "  (admin)"
                } else {
                    ""
                };
                let role = if client.role == Role::Ediscovery {
                    "  (ediscovery)"
                } else {
                    ""
                };
                println!("{name}  added {}{admin}{role}", client.created);
            }
        }
        ApiClientCommand::Remove { name } => {
            if !clients.remove(name)? {
                anyhow::bail!("no API client named {name:?} in {}", path.display());
            }
            println!("API client {name:?} removed; restart bonnie-api to shut it out.");
        }
    }
    Ok(())
}

fn render_status(status: &Value) -> String {
    let mut out = String::new();
    let jobs = &status["jobs"];
    out.push_str(&format!(
        "Jobs: PENDING {}, ALLOC {}, DONE {}, POSTPONED {}, FAILED {} (waiting for collectors: {})\n",
        jobs["PENDING"], jobs["ALLOC"], jobs["DONE"], jobs["POSTPONED"], jobs["FAILED"], status["waiting_for_collectors"]
    ));
    match status["oldest_unfinished_age_s"].as_f64() {
        Some(age) => out.push_str(&format!("Oldest unfinished job: {age:.1} s old\n")),
        None => out.push_str("Oldest unfinished job: none\n"),
    }
    for (title, key) in [("Workers", "workers"), ("Collectors", "collectors")] {
        let peers = status[key].as_array().cloned().unwrap_or_default();
        out.push_str(&format!("{title}: {}\n", peers.len()));
        for peer in peers {
            let host = peer
                .get("host")
                .and_then(Value::as_str)
                .map(|h| format!("  host {h}"))
                .unwrap_or_default();
            out.push_str(&format!(
                "  {}{host}  credit {}  jobs {}  last seen {:.1} s ago\n",
                peer["identity"].as_str().unwrap_or("?"),
                peer["credit"],
                peer["jobs"],
                peer["last_seen_s_ago"].as_f64().unwrap_or(0.0)
            ));
        }
    }
    if status.get("backfill").is_some() {
        out.push_str(&backfill::render_status(&status["backfill"]));
    }
    if status.get("dealer_spool").is_some() {
        out.push_str(&spool::render(&status["dealer_spool"]));
    }
    if let Some(routers) = status["routers"].as_object() {
        out.push_str("Ignored messages:\n");
        for (router, c) in routers {
            out.push_str(&format!(
                "  {router}: malformed {}, unknown commands {}, unknown peers {} ({} received)\n",
                c["malformed"], c["unknown_commands"], c["unknown_peers"], c["messages"]
            ));
        }
        out.push_str("Refused (see the broker's log):\n");
        for (router, c) in routers {
            out.push_str(&format!(
                "  {router}: connections {}, messages {}\n",
                c["refused_connections"], c["refused_messages"]
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_roundcube_line_has_every_key_a_reachable_uri_and_php_quoting() {
        let mut api = bonnie_core::config::ApiConfig {
            listen: "0.0.0.0:8080".into(),
            ..Default::default()
        };
        assert_eq!(
            roundcube_config(&api, "round'cube", "p\\w", "s"),
            "$config['kolab_bonnie_api'] = array('uri' => 'http://127.0.0.1:8080/api/rpc', \
             'user' => 'round\\'cube', 'pass' => 'p\\\\w', 'secret' => 's', 'timeout' => 30, 'debug' => false);"
        );
        api.listen = "[::]:8443".into();
        api.tls_certificate = Some("/etc/bonnie/api.pem".into());
        assert!(
            roundcube_config(&api, "rc", "p", "s")
                .contains("'uri' => 'https://[::1]:8443/api/rpc'")
        );
    }
}
