//! JSON-lines files that bonnie appends to (journals, outputs): reading them back after a
//! crash, when the last line may be torn.

use std::{fs::OpenOptions, io, path::Path};

/// The complete lines of `path` (lossily decoded), after cutting off a torn last line, so
/// that the next append starts on a line of its own. A missing file has no lines.
pub fn read_repairing(path: &Path) -> io::Result<Vec<String>> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let complete = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    if complete < bytes.len() {
        OpenOptions::new()
            .write(true)
            .open(path)?
            .set_len(complete as u64)?;
    }
    Ok(bytes[..complete]
        .split(|&b| b == b'\n')
        .filter(|line| !line.is_empty())
        .map(|line| String::from_utf8_lossy(line).into_owned())
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_torn_last_line_is_cut_off() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.jsonl");
        std::fs::write(&path, b"{\"a\":1}\n{\"b\":\xe2\x82").unwrap();
        assert_eq!(
            read_repairing(&path).unwrap(),
            vec!["{\"a\":1}".to_string()]
        );
        assert_eq!(std::fs::read(&path).unwrap(), b"{\"a\":1}\n");
        assert!(
            read_repairing(&dir.path().join("missing"))
                .unwrap()
                .is_empty()
        );
    }
}
