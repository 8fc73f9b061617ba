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
