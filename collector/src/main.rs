//! `bonnie-collector`: the collector (message payloads, folder metadata, ACLs and LDAP users from the IMAP host). Not built yet: it says so and exits with status 2.
#![forbid(unsafe_code)]

fn main() -> std::process::ExitCode {
    eprintln!("bonnie-collector: not built yet; this binary arrives with a later issue.");
    std::process::ExitCode::from(2)
}
