//! The query parser: recursive descent over the query's characters, its depth bounded by
//! [`MAX_DEPTH`], each error naming the column it found.
//!
//! ```text
//! query     = sequence
//! sequence  = either { ["AND"] either }          (implicit AND)
//! either    = unary { "OR" unary }
//! unary     = ("-" | "NOT") unary | primary
//! primary   = "(" sequence ")" | field ":" value | value
//! value     = "(" sequence ")" | quoted | bare   (a group: every value inside is the field's)
//! ```

use bonnie_mail::index_words;
use bonnie_plugin_api::items::{ExactField, RangeField, TextField, TextMatch};
use jiff::{Timestamp, civil};

use super::{
    Context, Direction, ITEM_TYPES, MAX_DEPTH, MAX_QUERY_BYTES, Query, QueryError, SYSTEM_FLAGS,
    Term,
};

/// What a value is read as: the field before its `:`, or (bare words) [`Field::Text`] of
/// [`TextField::Any`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    Text(TextField),
    MessageId,
    Type,
    Larger,
    Smaller,
    After,
    Before,
    Has,
    Direction,
    Folder,
    User,
    Flag,
    Deleted,
}

/// Every field a query can name, as it names them.
const FIELDS: [(&str, Field); 20] = [
    ("from", Field::Text(TextField::From)),
    ("to", Field::Text(TextField::To)),
    ("cc", Field::Text(TextField::Cc)),
    ("bcc", Field::Text(TextField::Bcc)),
    ("addr", Field::Text(TextField::Addr)),
    ("subject", Field::Text(TextField::Subject)),
    ("body", Field::Text(TextField::Body)),
    ("filename", Field::Text(TextField::Filename)),
    ("has", Field::Has),
    ("larger", Field::Larger),
    ("smaller", Field::Smaller),
    ("after", Field::After),
    ("before", Field::Before),
    ("folder", Field::Folder),
    ("user", Field::User),
    ("message-id", Field::MessageId),
    ("flag", Field::Flag),
    ("direction", Field::Direction),
    ("deleted", Field::Deleted),
    ("type", Field::Type),
];

impl Field {
    /// How the query names it (`from:`), for messages; a bare word has no field.
    fn label(self) -> String {
        FIELDS
            .iter()
            .find(|(_, f)| *f == self)
            .map_or_else(String::new, |(name, _)| format!("{name}:"))
    }

    /// A value as the query wrote it with this field, for messages: `from:"jane"`.
    fn written(self, value: &str) -> String {
        format!("{}\"{value}\"", self.label())
    }
}

/// Parses `text` into a query tree, reading dates in `ctx.zone` and `direction:` against
/// `ctx.local_domains` (see the module documentation of [`super`] for the language).
pub fn parse(text: &str, ctx: &Context) -> Result<Query, QueryError> {
    if text.len() > MAX_QUERY_BYTES {
        let column = text
            .char_indices()
            .take_while(|(at, _)| *at < MAX_QUERY_BYTES)
            .count()
            + 1;
        return Err(QueryError {
            column,
            message: format!(
                "the query is {} bytes long; at most {MAX_QUERY_BYTES} are accepted",
                text.len()
            ),
        });
    }
    let chars: Vec<char> = text.chars().collect();
    if let Some(at) = chars
        .iter()
        .position(|c| c.is_control() && !matches!(c, '\t' | '\n' | '\r'))
    {
        return Err(QueryError {
            column: at + 1,
            message: format!("control character U+{:04X} in the query", chars[at] as u32),
        });
    }
    let mut parser = Parser {
        chars,
        pos: 0,
        ctx,
        depth: 0,
        field: Field::Text(TextField::Any),
    };
    parser.skip_space();
    if parser.peek().is_none() {
        return Err(parser.error(0, "the query is empty (`*` matches every item)"));
    }
    let query = parser.sequence()?;
    match parser.peek() {
        Some(')') => Err(parser.error(
            parser.pos,
            "unbalanced parentheses: this ) closes no (".to_string(),
        )),
        _ => Ok(query),
    }
}

/// A value as written: its text (a quoted one unescaped), whether it was quoted, and where it
/// begins.
struct Value {
    text: String,
    quoted: bool,
    at: usize,
}

struct Parser<'a> {
    chars: Vec<char>,
    pos: usize,
    ctx: &'a Context,
    /// How many parentheses, negations and field groups enclose the position.
    depth: usize,
    /// The field bare values are read as: a word's, or the one of the enclosing `field:(`.
    field: Field,
}

/// True for the characters that end an unquoted word or value.
fn ends_value(c: char) -> bool {
    c.is_whitespace() || matches!(c, '(' | ')' | '"')
}

impl Parser<'_> {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn error(&self, at: usize, message: impl Into<String>) -> QueryError {
        QueryError {
            column: at + 1,
            message: message.into(),
        }
    }

    fn skip_space(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.pos += 1;
        }
    }

    /// Where the unquoted run at the position ends; at a `:` too when `colon` (a field name
    /// ends there).
    fn run_end(&self, colon: bool) -> usize {
        let mut end = self.pos;
        while let Some(&c) = self.chars.get(end) {
            if ends_value(c) || (colon && c == ':') {
                break;
            }
            end += 1;
        }
        end
    }

    /// The operator (`OR`, `AND`, `NOT`) at the position, if a whole run is one.
    fn operator(&self) -> Option<&'static str> {
        let end = self.run_end(false);
        let run: String = self.chars[self.pos..end].iter().collect();
        ["OR", "AND", "NOT"].into_iter().find(|op| *op == run)
    }

    /// True if an operand begins at the position (after space).
    fn operand_follows(&self) -> bool {
        self.peek().is_some_and(|c| c != ')') && !matches!(self.operator(), Some("OR" | "AND"))
    }

    /// One level deeper (a parenthesis, negation or field group opened at `at`).
    fn enter(&mut self, at: usize) -> Result<(), QueryError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.error(
                at,
                format!("the query nests deeper than {MAX_DEPTH} parentheses and negations"),
            ));
        }
        Ok(())
    }

    /// Terms side by side up to the end or a `)`: all must match. At least one is there.
    fn sequence(&mut self) -> Result<Query, QueryError> {
        let mut parts: Vec<(usize, Query)> = Vec::new();
        loop {
            self.skip_space();
            if self.peek().is_none_or(|c| c == ')') {
                break;
            }
            let at = self.pos;
            match self.operator() {
                Some("AND") => {
                    if parts.is_empty() {
                        return Err(self.error(at, "AND with nothing before it"));
                    }
                    self.pos += 3;
                    self.skip_space();
                    if !self.operand_follows() {
                        return Err(self.error(at, "AND with nothing after it"));
                    }
                }
                Some("OR") => return Err(self.error(at, "OR with nothing before it")),
                _ => {}
            }
            let at = self.pos;
            parts.push((at, self.either()?));
        }
        check_ranges(&parts).map_err(|(at, message)| self.error(at, message))?;
        let mut parts: Vec<Query> = parts.into_iter().map(|(_, q)| q).collect();
        Ok(if parts.len() == 1 {
            parts.remove(0)
        } else {
            Query::And(parts)
        })
    }

    /// Operands joined by `OR`.
    fn either(&mut self) -> Result<Query, QueryError> {
        let mut parts = vec![self.unary()?];
        loop {
            let before = self.pos;
            self.skip_space();
            if self.operator() != Some("OR") {
                self.pos = before;
                break;
            }
            let at = self.pos;
            self.pos += 2;
            self.skip_space();
            if !self.operand_follows() {
                return Err(self.error(at, "OR with nothing after it"));
            }
            parts.push(self.unary()?);
        }
        Ok(if parts.len() == 1 {
            parts.remove(0)
        } else {
            Query::Or(parts)
        })
    }

    /// A negation or a primary.
    fn unary(&mut self) -> Result<Query, QueryError> {
        let at = self.pos;
        let negated = if self.operator() == Some("NOT") {
            self.pos += 3;
            self.skip_space();
            if !self.operand_follows() {
                return Err(self.error(at, "NOT with nothing after it"));
            }
            true
        } else if self.peek() == Some('-') {
            if self
                .chars
                .get(self.pos + 1)
                .is_none_or(|c| c.is_whitespace() || *c == ')')
            {
                return Err(self.error(
                    at,
                    "a - with nothing after it (-word leaves out the items with the word)",
                ));
            }
            self.pos += 1;
            true
        } else {
            false
        };
        if !negated {
            return self.primary();
        }
        self.enter(at)?;
        let inner = self.unary()?;
        self.depth -= 1;
        Ok(Query::Not(Box::new(inner)))
    }

    /// A group, a `field:value` or a value of the current field.
    fn primary(&mut self) -> Result<Query, QueryError> {
        let at = self.pos;
        match self.peek() {
            Some('(') => return self.group(),
            Some(')') => return Err(self.error(at, "unbalanced parentheses: this ) closes no (")),
            Some('"') => {
                let value = self.quoted()?;
                return self.term(self.field, value);
            }
            _ => {}
        }
        if let Some(op) = self.operator() {
            return Err(self.error(at, format!("{op} where a term belongs")));
        }
        let at_any = self.field == Field::Text(TextField::Any);
        let end = self.run_end(at_any);
        if at_any && self.chars.get(end) == Some(&':') {
            let name: String = self.chars[at..end].iter().collect();
            let field = lookup(&name).ok_or_else(|| {
                let known: Vec<&str> = FIELDS.iter().map(|(name, _)| *name).collect();
                self.error(
                    at,
                    if name.is_empty() {
                        format!("a : with no field before it (fields: {})", known.join(", "))
                    } else {
                        format!(
                            "unknown field \"{name}\" (fields: {}; text with a colon is \
                             quoted: \"10:30\")",
                            known.join(", ")
                        )
                    },
                )
            })?;
            self.pos = end + 1;
            return match self.peek() {
                Some('(') => {
                    let outer = std::mem::replace(&mut self.field, field);
                    let group = self.group();
                    self.field = outer;
                    group
                }
                Some('"') => {
                    let value = self.quoted()?;
                    self.term(field, value)
                }
                Some(c) if !ends_value(c) => {
                    let value = self.bare(false);
                    self.term(field, value)
                }
                _ => Err(self.error(at, format!("{} with no value", field.label()))),
            };
        }
        let value = self.bare(at_any);
        self.term(self.field, value)
    }

    /// `( sequence )` at the position.
    fn group(&mut self) -> Result<Query, QueryError> {
        let at = self.pos;
        self.enter(at)?;
        self.pos += 1;
        self.skip_space();
        match self.peek() {
            Some(')') => return Err(self.error(at, "empty parentheses")),
            None => {
                return Err(self.error(at, "unbalanced parentheses: this ( is never closed"));
            }
            _ => {}
        }
        let inner = self.sequence()?;
        if self.peek() != Some(')') {
            return Err(self.error(at, "unbalanced parentheses: this ( is never closed"));
        }
        self.pos += 1;
        self.depth -= 1;
        Ok(inner)
    }

    /// The unquoted value at the position.
    fn bare(&mut self, colon: bool) -> Value {
        let at = self.pos;
        let end = self.run_end(colon);
        self.pos = end;
        Value {
            text: self.chars[at..end].iter().collect(),
            quoted: false,
            at,
        }
    }

    /// The quoted value at the position (on its `"`), unescaped.
    fn quoted(&mut self) -> Result<Value, QueryError> {
        let at = self.pos;
        let mut text = String::new();
        let mut pos = at + 1;
        loop {
            match self.chars.get(pos) {
                None => return Err(self.error(at, "this quote is never closed")),
                Some('"') => break,
                Some('\\') if matches!(self.chars.get(pos + 1), Some('"' | '\\')) => {
                    text.push(self.chars[pos + 1]);
                    pos += 2;
                }
                Some(&c) => {
                    text.push(c);
                    pos += 1;
                }
            }
        }
        self.pos = pos + 1;
        if self.peek().is_some_and(|c| !c.is_whitespace() && c != ')') {
            return Err(self.error(
                self.pos,
                "a quoted value ends at its closing quote: put a space after it (a prefix is \
                 one word, unquoted: word*)",
            ));
        }
        Ok(Value {
            text,
            quoted: true,
            at,
        })
    }

    /// The term `field` makes of `value`.
    fn term(&self, field: Field, value: Value) -> Result<Query, QueryError> {
        let Value { text, quoted, at } = value;
        let label = field.label();
        let fail = |message: String| Err(self.error(at, message));
        if text.trim().is_empty() {
            return fail(format!("{label} with an empty value"));
        }
        let term = match field {
            Field::Text(field) => return self.text_term(field, text, quoted, at),
            Field::MessageId => {
                let id = text.trim();
                Term::Exact {
                    field: ExactField::MessageId,
                    value: if id.starts_with('<') {
                        id.to_string()
                    } else {
                        format!("<{id}>")
                    },
                }
            }
            Field::Type => match ITEM_TYPES
                .iter()
                .find(|(name, _)| name.eq_ignore_ascii_case(&text))
            {
                Some((name, _)) => Term::Exact {
                    field: ExactField::Type,
                    value: name.to_string(),
                },
                None => {
                    let names: Vec<&str> = ITEM_TYPES.iter().map(|(name, _)| *name).collect();
                    return fail(format!(
                        "type: \"{text}\" is no item type (types: {})",
                        names.join(", ")
                    ));
                }
            },
            Field::Larger | Field::Smaller => {
                let Some(bytes) = size(&text) else {
                    return fail(format!(
                        "{} is no size (bytes, or with K, M or G: 500K, 10M, \
                         1G; 1K = 1024 bytes; at most {} bytes)",
                        field.written(&text),
                        i64::MAX
                    ));
                };
                if field == Field::Larger {
                    let Some(from) = bytes.checked_add(1) else {
                        return fail(format!("larger: no item is larger than {bytes} bytes"));
                    };
                    range(RangeField::Size, Some(from), None)
                } else if bytes == 0 {
                    return fail("smaller:0 matches no item".to_string());
                } else {
                    range(RangeField::Size, None, Some(bytes))
                }
            }
            Field::After | Field::Before => {
                let Some(ms) = instant(&text, &self.ctx.zone) else {
                    let zone = self.ctx.zone.iana_name().unwrap_or("the configured zone");
                    return fail(format!(
                        "{} is no date (dates: 2026-11-28, 2026/11/28, \
                         2026-11-28T10:00, 2026-11-28T10:00:00 in {zone}; \
                         2026-11-28T10:00:00+01:00 and 2026-11-28T09:00:00Z with their offset)",
                        field.written(&text)
                    ));
                };
                if field == Field::After {
                    range(RangeField::Date, Some(ms), None)
                } else {
                    range(RangeField::Date, None, Some(ms))
                }
            }
            Field::Has => {
                if !text.eq_ignore_ascii_case("attachment") {
                    return fail(format!(
                        "has: \"{text}\" is unknown (has:attachment is the one)"
                    ));
                }
                Term::HasAttachment
            }
            Field::Direction => {
                if self.ctx.local_domains.is_empty() {
                    return fail(
                        "direction: needs the installation's local domains, and none are \
                         configured ([discovery] local_domains is empty)"
                            .to_string(),
                    );
                }
                Term::Direction(
                    match [Direction::Inbound, Direction::Outbound, Direction::Internal]
                        .into_iter()
                        .find(|d| d.name().eq_ignore_ascii_case(&text))
                    {
                        Some(direction) => direction,
                        None => {
                            return fail(format!(
                                "direction: \"{text}\" is unknown (inbound, outbound, internal)"
                            ));
                        }
                    },
                )
            }
            Field::Folder => {
                let subfolders = text.strip_suffix("/*").filter(|base| !base.is_empty());
                if subfolders.unwrap_or(&text).contains('*') {
                    return fail(format!(
                        "folder: \"{text}\": a * only ends a folder, after a /: Work/* is Work \
                         and its subfolders"
                    ));
                }
                Term::Folder(text)
            }
            Field::User => Term::User(text),
            Field::Flag => {
                let bare = text.strip_prefix('\\').unwrap_or(&text);
                match SYSTEM_FLAGS
                    .iter()
                    .find(|system| system[1..].eq_ignore_ascii_case(bare))
                {
                    Some(system) => Term::Flag(system.to_string()),
                    None if text.starts_with('\\') => {
                        return fail(format!(
                            "flag: \"{text}\" is no system flag (seen, answered, flagged, \
                             deleted, draft; a keyword has no backslash)"
                        ));
                    }
                    None => Term::Flag(text),
                }
            }
            Field::Deleted => Term::Deleted(match text.to_ascii_lowercase().as_str() {
                "yes" | "true" => true,
                "no" | "false" => false,
                _ => return fail(format!("deleted: \"{text}\" is neither yes nor no")),
            }),
        };
        Ok(Query::Term(term))
    }

    /// The term of words `text` in `field`.
    fn text_term(
        &self,
        field: TextField,
        text: String,
        quoted: bool,
        at: usize,
    ) -> Result<Query, QueryError> {
        let written = Field::Text(field).written(&text);
        let words = |text: &str| index_words(text).len();
        let no_word = || {
            self.error(
                at,
                format!("{written} has no word to look for (words are letters and digits)"),
            )
        };
        let matched = if quoted {
            if words(&text) == 0 {
                return Err(no_word());
            }
            TextMatch::Phrase(text)
        } else if text == "*" && field == TextField::Any {
            return Ok(Query::All);
        } else if let Some(stem) = text
            .strip_suffix('*')
            .filter(|s| !s.is_empty() && !s.contains('*'))
        {
            match words(stem) {
                0 => return Err(no_word()),
                1 => TextMatch::Prefix(stem.to_string()),
                _ => {
                    return Err(self.error(
                        at,
                        format!("{written}: a prefix is one word, and \"{stem}\" is several"),
                    ));
                }
            }
        } else if text.contains('*') {
            return Err(self.error(
                at,
                format!(
                    "{written}: a * only ends a word (jan* finds the words beginning \
                     with jan)"
                ),
            ));
        } else {
            match words(&text) {
                0 => return Err(no_word()),
                1 => TextMatch::Words(text),
                _ => TextMatch::Phrase(text),
            }
        };
        Ok(Query::Term(Term::Text {
            field,
            text: matched,
        }))
    }
}

fn lookup(name: &str) -> Option<Field> {
    FIELDS
        .iter()
        .find(|(known, _)| known.eq_ignore_ascii_case(name))
        .map(|(_, field)| *field)
}

fn range(field: RangeField, from: Option<i64>, to: Option<i64>) -> Term {
    Term::Range { field, from, to }
}

/// The bytes of a size: digits, then `K`, `M` or `G` (binary multiples, any case).
fn size(text: &str) -> Option<i64> {
    let (digits, unit) = match text.char_indices().last()? {
        (at, c) if c.is_ascii_alphabetic() => (&text[..at], c.to_ascii_uppercase()),
        _ => (text, 'B'),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let shift = match unit {
        'B' => 0,
        'K' => 10,
        'M' => 20,
        'G' => 30,
        _ => return None,
    };
    digits.parse::<i64>().ok()?.checked_mul(1 << shift)
}

/// The instant (ms since the epoch) a date or time names: with an offset as written, without
/// one in `zone` (a date at its first instant there). What `after:` and `before:` read, and
/// `--as-of`.
pub fn instant(text: &str, zone: &jiff::tz::TimeZone) -> Option<i64> {
    if text.contains('[') {
        return None; // A zone annotation: this is not one of the forms accepted.
    }
    let text = text.replace('/', "-");
    let ms = match text.split_once(['T', 't', ' ']) {
        Some((_, time)) if time.contains(['Z', 'z', '+', '-']) => text.parse::<Timestamp>().ok()?,
        Some(_) => text
            .parse::<civil::DateTime>()
            .ok()?
            .to_zoned(zone.clone())
            .ok()?
            .timestamp(),
        None => text
            .parse::<civil::Date>()
            .ok()?
            .to_zoned(zone.clone())
            .ok()?
            .timestamp(),
    };
    Some(ms.as_millisecond())
}

/// An error when ranges side by side in one sequence leave no item: a lower bound at or past
/// an upper one of the same field.
pub(super) fn check_ranges(parts: &[(usize, Query)]) -> Result<(), (usize, String)> {
    for field in [RangeField::Date, RangeField::Size] {
        let bounds = |lower: bool| {
            parts.iter().filter_map(move |(at, q)| match q {
                Query::Term(Term::Range { field: f, from, to }) if *f == field => {
                    if lower { *from } else { *to }.map(|b| (*at, b))
                }
                _ => None,
            })
        };
        let lowest_upper = bounds(false).min_by_key(|(_, b)| *b);
        let highest_lower = bounds(true).max_by_key(|(_, b)| *b);
        if let (Some((upper_at, upper)), Some((lower_at, lower))) = (lowest_upper, highest_lower)
            && upper <= lower
        {
            let what = match field {
                RangeField::Date => "no date is both at or after the one and before the other",
                RangeField::Size => {
                    "no size is both larger than the one and smaller than the other"
                }
            };
            return Err((
                upper_at.max(lower_at),
                format!("these ranges leave nothing: {what}"),
            ));
        }
    }
    Ok(())
}
