//! The end of an export: `manifest.json` written from the journal of items (streamed, so
//! memory does not grow with the export), `SHA256SUMS` over every other file, and the state
//! folder removed last, so that a crash in between leaves an export a rerun finishes again.

use std::{
    fs,
    io::{self, BufRead as _, Write},
    path::Path,
};

use bonnie_ledger::Checkpoint;

use crate::{
    ExportError,
    export::{CHECKPOINT_FILE, JOURNAL, MANIFEST_JSON, PUBLIC_KEY_FILE, SUMS_FILE, zone},
    files::{self, Digests},
    item::Options,
    manifest::{CheckpointRef, ExportInfo},
    state::{STATE_DIR, State},
};

/// Ends an export: `manifest.json` from the journal, `SHA256SUMS` over every file, the state
/// folder removed. Done again whole if a crash interrupts it.
pub(crate) fn finish(
    out: &Path,
    options: &Options,
    state: &State,
    checkpoint: &Checkpoint,
) -> Result<(), ExportError> {
    let header = &state.header;
    let info = ExportInfo {
        format: options.format,
        query: header.query.clone(),
        case: header.case.clone(),
        zone: header.zone.clone(),
        created: jiff::Timestamp::from_millisecond(header.created_ms)
            .ok()
            .and_then(|t| zone(&header.zone).ok().map(|z| t.to_zoned(z)))
            .map(|t| t.strftime("%Y-%m-%dT%H:%M:%S%:z").to_string())
            .unwrap_or_default(),
        items: header.items.clone(),
        part_bytes: options.part_bytes,
        parts: state.part,
        checkpoint: CheckpointRef {
            origin: checkpoint.origin.clone(),
            size: checkpoint.size,
            root: files::hex(&checkpoint.root),
            file: CHECKPOINT_FILE.to_string(),
            public_key_file: PUBLIC_KEY_FILE.to_string(),
        },
        exported: state.exported,
        per_custodian: state.per_custodian.clone(),
        exceptions: state.exceptions.clone(),
    };
    let manifest_path = out.join(MANIFEST_JSON);
    let temporary = out.join("manifest.json.partial");
    let corrupt = |message: String| ExportError::Corrupt {
        path: out.join(JOURNAL),
        message,
    };
    {
        let mut file = io::BufWriter::new(files::create(&temporary)?);
        let io_error = ExportError::io(&temporary);
        let info = serde_json::to_string_pretty(&info)
            .map_err(|e| corrupt(format!("cannot encode the export: {e}")))?;
        let journal = io::BufReader::new(
            fs::File::open(out.join(JOURNAL)).map_err(ExportError::io(&out.join(JOURNAL)))?,
        );
        let result = (|| -> io::Result<()> {
            write!(file, "{{\n\"export\": {info},\n\"items\": [")?;
            for (i, line) in journal.lines().enumerate() {
                let line = line?;
                write!(file, "{}\n{line}", if i == 0 { "" } else { "," })?;
            }
            writeln!(file, "\n]\n}}")?;
            file.flush()?;
            file.get_ref().sync_all()
        })();
        result.map_err(io_error)?;
    }
    fs::rename(&temporary, &manifest_path).map_err(ExportError::io(&manifest_path))?;
    let mut sums = String::new();
    for relative in files::walk(out, &[STATE_DIR, SUMS_FILE])? {
        let path = out.join(&relative);
        let mut file = fs::File::open(&path).map_err(ExportError::io(&path))?;
        let digested = Digests::of_reader(&mut file).map_err(ExportError::io(&path))?;
        sums.push_str(&format!("{}  {relative}\n", digested.sha256));
    }
    files::write_whole(&out.join(SUMS_FILE), sums.as_bytes())?;
    let state_dir = out.join(STATE_DIR);
    fs::remove_dir_all(&state_dir).map_err(ExportError::io(&state_dir))?;
    files::sync_dir(&state_dir)
}
