//! One normalized record as the rules see it: which kind of event, who, which folder (its
//! owner, whether it is shared, whether `anyone` may read it), the ACL change, and for each
//! message its parts read by bonnie-mail, with a Kolab groupware object's fields as parts of
//! their own. Shared by the handler and `bonnie dlp scan`, so a retroactive scan sees a
//! record exactly as the handler did.

use bonnie_dlp::{AclChange, EventKind, Folder, PartKind, RuleHit, RuleSet, ScanInput, ScanPart};
use bonnie_model::{record::Object, users};
use bonnie_plugin_api::{PluginError, storage::StorageClient};
use serde_json::Value;

/// The value types of xCal and xCard: an element named so holds its parent property's value.
const VALUE_ELEMENTS: [&str; 9] = [
    "text",
    "uri",
    "cal-address",
    "date",
    "date-time",
    "integer",
    "boolean",
    "utc-offset",
    "language-tag",
];

/// The kind of event a record is, for the rules; `None` for the events they do not judge.
pub fn event_kind(record: &Object) -> Option<EventKind> {
    let event = record.get("event").and_then(Value::as_str)?;
    Some(match event {
        "MessageAppend" => EventKind::Append,
        "MessageNew" => EventKind::Delivery,
        "MessageCopy" | "vnd.cmu.MessageCopy" => EventKind::Copy,
        "MessageMove" | "vnd.cmu.MessageMove" => EventKind::Move,
        "AclChange" => EventKind::Acl,
        _ => return None,
    })
}

/// True if the ACL (`subject: rights`) lets `anyone` or `anonymous` read (RFC 4314 `r`).
pub fn readable_by_anyone(acl: &Object) -> bool {
    ["anyone", "anonymous"].iter().any(|who| {
        acl.get(*who)
            .and_then(Value::as_str)
            .is_some_and(|rights| rights.contains('r'))
    })
}

/// The ACL the record itself tells: the collector's (`acl`) or Cyrus's (`mailbox_acl`).
pub fn own_acl(record: &Object) -> Option<&Object> {
    record
        .get("acl")
        .or_else(|| record.get("mailbox_acl"))
        .and_then(Value::as_object)
}

/// A message of an event, read for the rules.
pub struct MessageText {
    /// Its UID in the event's folder, when known.
    pub uid: Option<u64>,
    /// bonnie-mail's reading, without the Kolab object's XML (whose text is in `fields`).
    message: bonnie_mail::Message,
    /// A Kolab object's fields: (property, text).
    fields: Vec<(String, String)>,
}

impl MessageText {
    /// Reads a message's bytes; a Kolab object's (`X-Kolab-Type`) XML becomes its fields.
    pub fn read(uid: Option<u64>, bytes: &[u8]) -> Self {
        let mut message = bonnie_mail::parse(bytes);
        let kolab = message
            .headers
            .iter()
            .any(|h| h.name.eq_ignore_ascii_case("X-Kolab-Type"));
        let mut fields = Vec::new();
        if kolab
            && let Ok(xml) = bonnie_calendar::object_xml(bytes)
            && let Ok(root) = bonnie_calendar::xml_tree(&String::from_utf8_lossy(&xml))
        {
            leaves(&root, "", &mut fields);
            // The fields stand for the XML: scanned once, named by property.
            message
                .attachments
                .retain(|a| !is_object_xml(&a.media_type));
        }
        Self {
            uid,
            message,
            fields,
        }
    }

    /// The parts to scan: subject, bodies, attachments' texts, the object's fields.
    pub fn parts(&self) -> Vec<ScanPart<'_>> {
        let mut parts = bonnie_dlp::message_parts(&self.message);
        parts.extend(
            self.fields
                .iter()
                .map(|(name, text)| ScanPart::new(PartKind::Field, format!("field {name}"), text)),
        );
        parts
    }

    /// The sender's address (From), if any.
    pub fn sender(&self) -> Option<&str> {
        self.message.from.iter().find_map(|a| a.address.as_deref())
    }

    /// The recipients' addresses (To, Cc, Bcc).
    pub fn recipients(&self) -> Vec<&str> {
        let m = &self.message;
        m.to.iter()
            .chain(&m.cc)
            .chain(&m.bcc)
            .filter_map(|a| a.address.as_deref())
            .collect()
    }
}

fn is_object_xml(media_type: &str) -> bool {
    matches!(
        media_type,
        "application/calendar+xml" | "application/vcard+xml" | "application/xml"
    ) || media_type.starts_with("application/x-vnd.kolab.")
}

/// The texts of an XML tree's leaves, each named by its property (`description` for
/// `<description><text>…</text></description>`).
fn leaves(element: &bonnie_calendar::XmlElement, parent: &str, out: &mut Vec<(String, String)>) {
    let text = element.text.trim();
    if !text.is_empty() {
        let name = if VALUE_ELEMENTS.contains(&element.name.as_str()) && !parent.is_empty() {
            parent
        } else {
            &element.name
        };
        out.push((name.to_string(), text.to_string()));
    }
    for child in &element.children {
        leaves(child, &element.name, out);
    }
}

/// The directory groups of the record's folder owner (`folder_owner`), as the owner's users
/// record keeps them (bare `cn`s, as the engine compares a `group:<name>` ACL identifier
/// without its prefix); none for a folder without an owner or an owner the collector has
/// not resolved.
pub fn owner_groups(storage: &StorageClient, record: &Object) -> Result<Vec<String>, PluginError> {
    match record.get("folder_owner").and_then(Value::as_str) {
        Some(owner) => users::groups(storage, owner),
        None => Ok(Vec::new()),
    }
}

/// Evaluates `rules` on a record's event: on `message` for message events, on the ACL change
/// for an AclChange. `folder_acl` is the folder's ACL as far as it is known (the record's
/// own, else the folder's current state); `owner_groups` are the folder owner's directory
/// groups ([`owner_groups`]), a group ACL for one of which is no sharing beyond the owner's.
pub fn evaluate(
    rules: &RuleSet,
    record: &Object,
    folder_acl: Option<&Object>,
    owner_groups: &[String],
    message: Option<&MessageText>,
) -> Vec<RuleHit> {
    let Some(kind) = event_kind(record) else {
        return Vec::new();
    };
    let text = |field: &str| record.get(field).and_then(Value::as_str);
    let folder = text("folder").map(|name| {
        let owner = text("folder_owner");
        Folder {
            name,
            owner,
            shared: owner.is_none() && !name.starts_with("user/"),
            readable_by_anyone: folder_acl.is_some_and(readable_by_anyone),
        }
    });
    let mut input = ScanInput {
        user: text("user").filter(|u| !u.is_empty()),
        folder,
        ..ScanInput::new(kind)
    };
    if kind == EventKind::Acl {
        let Some(identifier) = text("acl_subject") else {
            return Vec::new();
        };
        input.acl = Some(AclChange {
            identifier,
            rights: text("acl_rights").unwrap_or_default(),
            owner_groups: owner_groups.iter().map(String::as_str).collect(),
        });
    }
    if let Some(message) = message {
        input.sender = message.sender();
        input.recipients = message.recipients();
        input.parts = message.parts();
    }
    rules.evaluate(&input)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kolab_objects_fields_are_parts_named_by_property_and_its_xml_is_not_scanned_twice() {
        let xml = "<?xml version=\"1.0\"?><icalendar xmlns=\"urn:ietf:params:xml:ns:icalendar-2.0\"><vcalendar><components><vevent><properties>\
            <uid><text>E1</text></uid><summary><text>Zahlung</text></summary>\
            <description><text>IBAN DE89 3704 0044 0532 0130 00</text></description></properties></vevent></components></vcalendar></icalendar>";
        let message = format!(
            "From: a@example.org\r\nTo: b@example.com, c@example.net\r\nX-Kolab-Type: application/x-vnd.kolab.event\r\nSubject: E1\r\n\
             MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nA Kolab object.\r\n\
             --b\r\nContent-Type: application/calendar+xml; charset=UTF-8\r\nContent-Disposition: attachment; filename=kolab.xml\r\n\r\n{xml}\r\n--b--\r\n"
        );
        let text = MessageText::read(Some(3), message.as_bytes());
        let parts: Vec<(PartKind, String)> =
            text.parts().into_iter().map(|p| (p.kind, p.name)).collect();
        assert!(
            parts.contains(&(PartKind::Field, "field description".to_string())),
            "{parts:?}"
        );
        assert!(
            parts.iter().all(|(kind, _)| *kind != PartKind::Attachment),
            "{parts:?}"
        );
        assert_eq!(text.sender(), Some("a@example.org"));
        assert_eq!(text.recipients(), ["b@example.com", "c@example.net"]);
    }

    #[test]
    fn only_read_rights_for_anyone_or_anonymous_make_a_folder_readable_by_anyone() {
        let acl = |pairs: &[(&str, &str)]| -> Object {
            pairs
                .iter()
                .map(|(s, r)| (s.to_string(), Value::from(*r)))
                .collect()
        };
        assert!(readable_by_anyone(&acl(&[("anyone", "lrs")])));
        assert!(readable_by_anyone(&acl(&[("anonymous", "lr")])));
        assert!(!readable_by_anyone(&acl(&[("anyone", "p")])));
        assert!(!readable_by_anyone(&acl(&[("jane@example.org", "lrs")])));
    }
}
