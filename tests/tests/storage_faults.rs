//! Races where workers write: several workers on one host appending the same jobs to one
//! JSON-lines output (as when a job is redelivered to another worker after a kill) write
//! each job once.

use std::{collections::HashMap, io::Write};

use bonnie_tests::{
    paths,
    process::{self, ChildGuard},
    worker::{WorkerLab, read_json_lines},
};

/// How many outcomes a journal holds with outcome `done`.
fn done_in(lab: &WorkerLab, journal: &str) -> usize {
    read_json_lines(&lab.path().join(journal))
        .iter()
        .filter(|line| line["outcome"] == "done")
        .count()
}

#[test]
fn two_workers_writing_the_same_jobs_to_one_jsonl_output_write_each_job_once() {
    const JOBS: usize = 300;
    let lab = WorkerLab::with_plugins(&["bonnie-sessions"], "");
    let config = std::fs::read_to_string(lab.config()).unwrap().replace(
        "files = [\"in.jsonl\"]",
        "files = [\"in.jsonl\"]\nfollow = true",
    );
    lab.write("bonnie.toml", &config);
    // The second worker: the same input file (so the same job ids), its own journal, the
    // same output file.
    lab.write(
        "second.toml",
        &config.replace(
            "retry_delay_ms = 10",
            "retry_delay_ms = 10\njournal = \"var/jsonl-input/second.jsonl\"",
        ),
    );
    lab.write("in.jsonl", "");
    let spawn = |config: &str, log: &str| {
        let log = lab.path().join(log);
        ChildGuard::spawn(
            "bonnie-worker",
            &mut lab.command_with_config(
                &lab.path().join(config),
                &["--log-file", log.to_str().unwrap()],
            ),
        )
    };
    let first = spawn("bonnie.toml", "first.log");
    let second = spawn("second.toml", "second.log");
    // Both have opened the output before any job exists.
    for log in ["first.log", "second.log"] {
        process::wait_until("both workers to open the output", || {
            std::fs::read_to_string(lab.path().join(log))
                .unwrap_or_default()
                .contains("Writing records.")
        });
    }
    let lines: String = (0..JOBS)
        .map(|_| paths::cyrus_event("Login-2.json") + "\n")
        .collect();
    std::fs::OpenOptions::new()
        .append(true)
        .open(lab.path().join("in.jsonl"))
        .unwrap()
        .write_all(lines.as_bytes())
        .unwrap();
    process::wait_until("both workers to finish every job", || {
        done_in(&lab, "var/jsonl-input/outcomes.jsonl") == JOBS
            && done_in(&lab, "var/jsonl-input/second.jsonl") == JOBS
    });
    for worker in [first, second] {
        worker.signal("TERM");
        let output = worker.wait();
        assert!(
            process::succeeded(&output.status),
            "{}",
            process::describe(&output)
        );
    }

    let mut lines_per_job: HashMap<String, usize> = HashMap::new();
    for line in lab.output_records() {
        *lines_per_job
            .entry(line["job_id"].as_str().unwrap().to_string())
            .or_default() += 1;
    }
    assert_eq!(lines_per_job.len(), JOBS, "every job is in the output");
    let repeated: Vec<_> = lines_per_job.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        repeated.is_empty(),
        "{} of {JOBS} jobs were written more than once, e.g. {:?}",
        repeated.len(),
        repeated.first()
    );
}
