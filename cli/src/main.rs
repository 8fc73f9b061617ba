//! `bonnie`: the admin command line (status, jobs). Not built yet: it says so and exits with status 2.
#![forbid(unsafe_code)]

fn main() -> std::process::ExitCode {
    eprintln!("bonnie: not built yet; this binary arrives with a later issue.");
    std::process::ExitCode::from(2)
}
