//! A batch of log lines as bonnie-logd hands it to the broker (`vnd.bonnie.LogLines`): the
//! reading every handler of such batches shares, and the batch written back as its log record
//! with what a handler made of it.

use jiff::Timestamp;
use serde_json::{Map, Value};

/// One batch: its lines, when it was received, and its other fields as they came.
#[derive(Debug)]
pub struct LogBatch {
    fields: Map<String, Value>,
    lines: Vec<Value>,
    /// When bonnie-logd received the batch (its `received`), else when the broker did, else
    /// now; a line without a year or a stamp of its own is read against it, so a replayed batch
    /// reads the same.
    pub received: Timestamp,
}

impl LogBatch {
    /// Reads a batch's JSON; `broker_received_ms` is when the broker received the job. The
    /// error says why the job is not a batch (a handler rejects it with that reason).
    pub fn parse(
        notification: &str,
        broker_received_ms: Option<i64>,
    ) -> Result<Self, &'static str> {
        let Ok(Value::Object(mut fields)) = serde_json::from_str(notification) else {
            return Err("the batch is not a JSON object");
        };
        let Some(Value::Array(lines)) = fields.remove("lines") else {
            return Err("the batch has no array of lines");
        };
        let received = fields
            .get("received")
            .and_then(Value::as_str)
            .and_then(|r| r.parse::<Timestamp>().ok())
            .or_else(|| broker_received_ms.and_then(|ms| Timestamp::from_millisecond(ms).ok()))
            .unwrap_or_else(Timestamp::now);
        Ok(Self {
            fields,
            lines,
            received,
        })
    }

    /// The lines, in the order they were read (each a JSON string, or something else a
    /// handler counts as not a line it reads).
    pub fn lines(&self) -> &[Value] {
        &self.lines
    }

    /// The host that read the lines (a plain log file's lines name none).
    pub fn host(&self) -> Option<&str> {
        self.fields.get("host").and_then(Value::as_str)
    }

    /// The batch as its log record: every field it came with, its lines, and `summary` (what
    /// the handler made of it) under `name`.
    pub fn into_record(mut self, name: &str, summary: Value) -> String {
        self.fields
            .insert("lines".to_string(), Value::Array(self.lines));
        self.fields.insert(name.to_string(), summary);
        Value::Object(self.fields).to_string()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_batch_keeps_its_fields_and_lines_and_reads_its_own_received_time() {
        let text = r#"{"event":"vnd.bonnie.LogLines","host":"mx1","received":"2026-12-01T12:00:00Z","lines":["a",3]}"#;
        let batch = LogBatch::parse(text, Some(0)).unwrap();
        assert_eq!(batch.lines(), [json!("a"), json!(3)]);
        assert_eq!(batch.host(), Some("mx1"));
        assert_eq!(batch.received.to_string(), "2026-12-01T12:00:00Z");
        let record: Value = serde_json::from_str(&batch.into_record("seen", json!(2))).unwrap();
        assert_eq!(
            record,
            json!({"event":"vnd.bonnie.LogLines","host":"mx1","received":"2026-12-01T12:00:00Z","lines":["a",3],"seen":2})
        );
    }

    #[test]
    fn without_a_received_time_the_brokers_is_taken() {
        let batch = LogBatch::parse(r#"{"lines":[]}"#, Some(1_000)).unwrap();
        assert_eq!(batch.received.as_millisecond(), 1_000);
    }

    #[test]
    fn what_is_not_a_batch_says_why() {
        assert_eq!(
            LogBatch::parse("[]", None).unwrap_err(),
            "the batch is not a JSON object"
        );
        assert_eq!(
            LogBatch::parse(r#"{"lines": 3}"#, None).unwrap_err(),
            "the batch has no array of lines"
        );
    }
}
