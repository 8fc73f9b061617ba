//! What `bonnie status` tells of this host's dealer spool folder (`[dealer] spool_dir`): the
//! damaged bytes dealers moved out of their spools into `quarantine-*` files.

use std::path::Path;

use serde_json::{Value, json};

/// The quarantine files in the spool folder and its spools, as JSON; `None` without a folder.
pub fn status(folder: &Path) -> Option<Value> {
    let spools = std::fs::read_dir(folder).ok()?.filter_map(Result::ok);
    let dirs = std::iter::once(folder.to_path_buf())
        .chain(spools.map(|e| e.path()).filter(|p| p.is_dir()));
    let sizes: Vec<u64> = dirs
        .filter_map(|dir| std::fs::read_dir(dir).ok())
        .flatten()
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().starts_with("quarantine-"))
        .filter_map(|e| e.metadata().ok().map(|m| m.len()))
        .collect();
    Some(json!({
        "dir": folder.display().to_string(),
        "quarantined_files": sizes.len(),
        "quarantined_bytes": sizes.iter().sum::<u64>(),
    }))
}

/// The status line of the spool folder.
pub fn render(spool: &Value) -> String {
    format!(
        "Dealer spool {}: {} damaged bytes in quarantine ({} files)\n",
        spool["dir"].as_str().unwrap_or("?"),
        spool["quarantined_bytes"],
        spool["quarantined_files"]
    )
}
