//! `bonnie-broker`: the broker (ZeroMQ routers and the durable job queue). Not built yet: it says so and exits with status 2.
#![forbid(unsafe_code)]

fn main() -> std::process::ExitCode {
    eprintln!("bonnie-broker: not built yet; this binary arrives with a later issue.");
    std::process::ExitCode::from(2)
}
