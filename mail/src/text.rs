//! The text search indexes of a message: its body parts, the names and texts of its
//! attachments and, in turn, of the messages attached to it, each part cut at a limit (on a
//! character boundary) so that one huge part cannot take the index; a cut is reported.

use crate::message::Message;

/// The default limit of indexed text per part: 1 MiB.
pub const DEFAULT_MAX_INDEXED_TEXT_BYTES: usize = 1 << 20;

/// What search indexes of a message.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SearchText {
    /// The texts, one per line, not folded yet (see [`crate::fold_for_search`]).
    pub text: String,
    /// True when at least one part was longer than the limit and is indexed in part.
    pub truncated: bool,
}

fn cut(text: &str, max: usize) -> (&str, bool) {
    if text.len() <= max {
        return (text, false);
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    (&text[..end], true)
}

impl SearchText {
    fn push(&mut self, text: &str, max: usize) {
        let (kept, was_cut) = cut(text.trim(), max);
        if kept.is_empty() {
            return;
        }
        self.truncated |= was_cut;
        if !self.text.is_empty() {
            self.text.push('\n');
        }
        self.text.push_str(kept);
    }
}

impl Message {
    /// The text search indexes of this message, at most `max_part_bytes` of each part (a
    /// body, an attachment's text, an attached message's header line).
    pub fn search_text(&self, max_part_bytes: usize) -> SearchText {
        let mut out = SearchText::default();
        self.collect(&mut out, max_part_bytes, false);
        out
    }

    fn collect(&self, out: &mut SearchText, max: usize, nested: bool) {
        if nested {
            // The record holds only the outer message's subject and addresses.
            let mut line: Vec<String> = self.subject.iter().cloned().collect();
            for a in self.from.iter().chain(&self.to).chain(&self.cc) {
                line.push(crate::format_address(a));
            }
            out.push(&line.join(" "), max);
        }
        for body in &self.bodies {
            out.push(&body.text, max);
        }
        for attachment in &self.attachments {
            if let Some(name) = &attachment.name {
                out.push(name, max);
            }
            if let Some(text) = &attachment.text {
                out.push(text, max);
            }
        }
        for message in &self.messages {
            message.collect(out, max, true);
        }
    }
}
