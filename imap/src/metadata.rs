//! METADATA answers (RFC 5464) as Cyrus sends them, parsed with imap-proto's own string
//! parsers. imap-proto's METADATA parser refuses what Cyrus's `GETMETADATA (DEPTH infinity)`
//! answers: entries outside `/vendor`, `/comment` and `/admin` (`/private/specialuse`), and
//! it unwraps values that are not UTF-8. Here any astring is an entry and values are taken
//! as bytes (read lossily as UTF-8 for imap-proto's `Metadata`).

use std::borrow::Cow;

use imap_proto::{
    MailboxDatum, Metadata, Response,
    parser::core::{astring, nstring, parenthesized_nonempty_list},
};
use nom::{
    IResult,
    bytes::streaming::{tag, tag_no_case},
    combinator::map,
    sequence::{separated_pair, tuple},
};

fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// `* METADATA <mailbox> (<entry> <value> ...)\r\n`.
pub(crate) fn metadata(i: &[u8]) -> IResult<&[u8], Response<'static>> {
    let (i, (_, mailbox, _)) = tuple((tag_no_case("* METADATA "), astring, tag(" ")))(i)?;
    let (i, values) = parenthesized_nonempty_list(map(
        separated_pair(astring, tag(" "), nstring),
        |(entry, value)| Metadata {
            entry: lossy(entry),
            value: value.map(lossy),
        },
    ))(i)?;
    let (i, _) = tag("\r\n")(i)?;
    Ok((
        i,
        Response::MailboxData(MailboxDatum::MetadataSolicited {
            mailbox: Cow::Owned(lossy(mailbox)),
            values,
        }),
    ))
}
