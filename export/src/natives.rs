//! Writing natives: read in chunks with their digests, into a file of their own (EML, DAT) or
//! quoted into an mbox part; undone when the native cannot be read, so that nothing of it is
//! left. Attachments and texts, already in memory, are written whole.

use std::{
    fs,
    io::{self, Read, Write},
    path::Path,
};

use crate::{
    ExportError,
    export::Skip,
    files::{self, CHUNK, Digested, Digests},
    item::ItemMeta,
    mbox,
};

/// Reads `native` in chunks, handing each to `write`; the native's digests, or the error
/// reading it (`Ok(Err(..))`: the caller undoes what `write` wrote).
fn stream(
    native: &mut dyn Read,
    write: &mut dyn FnMut(&[u8]) -> Result<(), ExportError>,
) -> Result<Result<Digested, io::Error>, ExportError> {
    let mut digests = Digests::default();
    let mut chunk = vec![0; CHUNK];
    loop {
        let n = match native.read(&mut chunk) {
            Ok(0) => return Ok(Ok(digests.finish())),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Ok(Err(e)),
        };
        digests.update(&chunk[..n]);
        write(&chunk[..n])?;
    }
}

/// Streams a native to its own file (made durable at the next commit); `Ok(Err(..))` (and no file) when it cannot be
/// read.
pub(crate) fn write_native(
    path: &Path,
    native: &mut dyn Read,
) -> Result<Result<Digested, Skip>, ExportError> {
    let mut file = files::create(path)?;
    let streamed = stream(native, &mut |chunk| {
        file.write_all(chunk).map_err(ExportError::io(path))
    })?;
    match streamed {
        Ok(digested) => Ok(Ok(digested)),
        Err(e) => {
            drop(file);
            fs::remove_file(path).map_err(ExportError::io(path))?;
            Ok(Err(format!("its native could not be read: {e}")))
        }
    }
}

/// Appends a native to the mbox part, quoted; cut back when it cannot be read.
pub(crate) fn write_mbox(
    path: &Path,
    file: &mut fs::File,
    meta: &ItemMeta,
    native: &mut dyn Read,
) -> Result<Result<Digested, Skip>, ExportError> {
    let start = file.metadata().map_err(ExportError::io(path))?.len();
    let from = mbox::from_line(&meta.envelope.from, meta.received_ms.or(meta.sent_ms));
    file.write_all(from.as_bytes())
        .map_err(ExportError::io(path))?;
    let mut quoter = mbox::Quoter::default();
    let mut quoted = Vec::with_capacity(CHUNK + CHUNK / 4);
    let streamed = stream(native, &mut |chunk| {
        quoted.clear();
        quoter.push(chunk, &mut quoted);
        file.write_all(&quoted).map_err(ExportError::io(path))
    })?;
    let digested = match streamed {
        Ok(digested) => digested,
        Err(e) => {
            file.set_len(start).map_err(ExportError::io(path))?;
            return Ok(Err(format!("its native could not be read: {e}")));
        }
    };
    quoted.clear();
    quoter.finish(&mut quoted);
    file.write_all(&quoted).map_err(ExportError::io(path))?;
    Ok(Ok(digested))
}

/// Writes a small file whole (attachments and texts are in memory already).
pub(crate) fn write_file(path: &Path, bytes: &[u8]) -> Result<(), ExportError> {
    let mut file = files::create(path)?;
    file.write_all(bytes).map_err(ExportError::io(path))
}

/// A file extension taken from an attachment's (hostile) name: `.` and 1 to 10 ASCII letters
/// or digits, lower case; `.bin` otherwise.
pub(crate) fn extension(name: &str) -> String {
    match name.rsplit_once('.') {
        Some((_, ext))
            if (1..=10).contains(&ext.len()) && ext.bytes().all(|b| b.is_ascii_alphanumeric()) =>
        {
            format!(".{}", ext.to_ascii_lowercase())
        }
        _ => ".bin".to_string(),
    }
}
