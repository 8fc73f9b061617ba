//! A message as rules scan it: bonnie-mail's reading of it cut into named parts (the subject,
//! each body, each attachment's text, and the same of every attached message in turn).

use bonnie_mail::Message;

use crate::evaluate::{PartKind, ScanPart};

/// The parts of `message` to scan, named for evidence: `subject`, `body 1`,
/// `attachment 2 (card.txt)`, `message 3: body 1`.
pub fn message_parts(message: &Message) -> Vec<ScanPart<'_>> {
    let mut parts = Vec::new();
    collect(message, "", &mut parts);
    parts
}

fn collect<'a>(message: &'a Message, prefix: &str, parts: &mut Vec<ScanPart<'a>>) {
    if let Some(subject) = &message.subject {
        parts.push(ScanPart::new(
            PartKind::Subject,
            format!("{prefix}subject"),
            subject,
        ));
    }
    for body in &message.bodies {
        parts.push(ScanPart::new(
            PartKind::Body,
            format!("{prefix}body {}", body.part),
            &body.text,
        ));
    }
    for attachment in &message.attachments {
        if let Some(text) = &attachment.text {
            let name = match &attachment.name {
                Some(file) => format!("{prefix}attachment {} ({file})", attachment.part),
                None => format!("{prefix}attachment {}", attachment.part),
            };
            parts.push(ScanPart::new(PartKind::Attachment, name, text));
        }
    }
    for (i, nested) in message.messages.iter().enumerate() {
        collect(nested, &format!("{prefix}message {}: ", i + 1), parts);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subject_bodies_attachments_and_attached_messages_are_named_parts() {
        let raw = "Subject: outer\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n\
            --b\r\nContent-Type: text/plain\r\n\r\nbody text\r\n\
            --b\r\nContent-Type: text/csv\r\nContent-Disposition: attachment; filename=cards.csv\r\n\r\nname,card\r\n\
            --b\r\nContent-Type: message/rfc822\r\n\r\nSubject: inner\r\n\r\ninner body\r\n\
            --b--\r\n";
        let message = bonnie_mail::parse(raw.as_bytes());
        let parts: Vec<(PartKind, String, String)> = message_parts(&message)
            .into_iter()
            .map(|p| (p.kind, p.name, p.text.trim().to_string()))
            .collect();
        let names: Vec<&str> = parts.iter().map(|p| p.1.as_str()).collect();
        assert_eq!(
            names,
            [
                "subject",
                "body 1",
                "attachment 2 (cards.csv)",
                "message 1: subject",
                "message 1: body 1"
            ],
            "{parts:?}"
        );
        assert_eq!(parts[2].0, PartKind::Attachment);
        assert_eq!(parts[2].2, "name,card");
        assert_eq!(parts[4].2, "inner body");
    }
}
