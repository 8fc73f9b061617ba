//! JSON-RPC 2.0 envelopes: requests with named parameters, results and errors.

use serde_json::{Map, Value, json};

/// A JSON-RPC error.
#[derive(Debug, Clone, PartialEq)]
pub struct RpcError {
    /// The code: -32700 parse error, -32600 invalid request, -32601 method not found, -32602
    /// invalid params, -32603 internal error, -32001 a method this client may not call.
    pub code: i64,
    /// What went wrong.
    pub message: String,
}

impl RpcError {
    /// -32700: the body is not JSON.
    pub fn parse(message: impl Into<String>) -> Self {
        Self::new(-32700, message)
    }
    /// -32600: not a valid request (or its signature is wrong).
    pub fn invalid_request(message: impl Into<String>) -> Self {
        Self::new(-32600, message)
    }
    /// -32601: no such method.
    pub fn method_not_found(method: &str) -> Self {
        Self::new(-32601, format!("Method not found: {method}"))
    }
    /// -32602: missing or mistyped parameters.
    pub fn invalid_params(message: impl Into<String>) -> Self {
        Self::new(-32602, message)
    }
    /// -32001 (in JSON-RPC's range for servers' own errors): the client may not call the
    /// method (`trace.find` without being in `[api] admin_clients`).
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(-32001, message)
    }
    /// -32002 (in JSON-RPC's range for servers' own errors): what the request would change is
    /// busy with another run (a restore into the same mailbox); it may be asked again later.
    pub fn busy(message: impl Into<String>) -> Self {
        Self::new(-32002, message)
    }
    /// -32603: the server failed.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(-32603, message)
    }
    fn new(code: i64, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

impl From<bonnie_plugin_api::PluginError> for RpcError {
    fn from(e: bonnie_plugin_api::PluginError) -> Self {
        Self::internal(e.to_string())
    }
}

/// A parsed request.
#[derive(Debug)]
pub struct Request {
    /// `id` as sent; `None` when the request has no `id` member: a notification, which is
    /// carried out and never answered.
    pub id: Option<Value>,
    /// The method name.
    pub method: String,
    /// Named parameters (none given: empty).
    pub params: Params,
}

/// One request of a body, or why it is not one, with the id to answer with (null when it
/// could not be read).
pub type Parsed = Result<Request, (Value, RpcError)>;

/// What a body holds.
#[derive(Debug)]
pub enum Body {
    /// One request: one answer (none for a notification).
    Single(Parsed),
    /// A batch (a non-empty array): an array of answers, one per request that is not a
    /// notification.
    Batch(Vec<Parsed>),
}

/// Parses a request body: one request, or a batch of at most `max_batch` (an empty array,
/// or a longer one, is one -32600 error).
pub fn parse_body(body: &[u8], max_batch: usize) -> Body {
    let value: Value = match serde_json::from_slice(body) {
        Ok(value) => value,
        Err(e) => {
            return Body::Single(Err((
                Value::Null,
                RpcError::parse(format!("Parse error: {e}")),
            )));
        }
    };
    match value {
        Value::Array(items) if items.is_empty() => Body::Single(Err((
            Value::Null,
            RpcError::invalid_request("Invalid Request: an empty batch"),
        ))),
        Value::Array(items) if items.len() > max_batch => Body::Single(Err((
            Value::Null,
            RpcError::invalid_request(format!(
                "Invalid Request: a batch holds at most {max_batch} requests (got {})",
                items.len()
            )),
        ))),
        Value::Array(items) => Body::Batch(items.into_iter().map(request).collect()),
        single => Body::Single(request(single)),
    }
}

/// One request of a body. The error comes with the id when one could be read.
fn request(value: Value) -> Parsed {
    let Value::Object(mut object) = value else {
        return Err((
            Value::Null,
            RpcError::invalid_request("Invalid Request: not a JSON object"),
        ));
    };
    let id = object.remove("id");
    if let Some(id) = &id
        && !matches!(id, Value::String(_) | Value::Number(_) | Value::Null)
    {
        return Err((
            Value::Null,
            RpcError::invalid_request("Invalid Request: id must be a string, a number or null"),
        ));
    }
    let invalid = |message: &str| {
        (
            id.clone().unwrap_or(Value::Null),
            RpcError::invalid_request(message),
        )
    };
    if object.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return Err(invalid("Invalid Request: jsonrpc must be \"2.0\""));
    }
    let Some(method) = object
        .get("method")
        .and_then(Value::as_str)
        .map(str::to_string)
    else {
        return Err(invalid("Invalid Request: method must be a string"));
    };
    let params = match object.remove("params") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(map)) => map,
        Some(_) => {
            return Err(invalid(
                "Invalid Request: params must be an object (named parameters)",
            ));
        }
    };
    Ok(Request {
        id,
        method,
        params: Params(params),
    })
}

/// A response body.
pub fn response(id: &Value, result: Result<Value, RpcError>) -> Value {
    match result {
        Ok(result) => json!({ "jsonrpc": "2.0", "result": result, "id": id }),
        Err(e) => json!({
            "jsonrpc": "2.0",
            "error": { "code": e.code, "message": e.message },
            "id": id,
        }),
    }
}

/// Named parameters.
#[derive(Debug, Default)]
pub struct Params(pub Map<String, Value>);

impl Params {
    /// A required text parameter.
    pub fn text(&self, name: &str) -> Result<&str, RpcError> {
        self.optional_text(name)?
            .ok_or_else(|| RpcError::invalid_params(format!("Invalid params: {name} is required")))
    }

    /// An optional text parameter (null or absent: none).
    pub fn optional_text(&self, name: &str) -> Result<Option<&str>, RpcError> {
        match self.0.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(RpcError::invalid_params(format!(
                "Invalid params: {name} must be a string"
            ))),
        }
    }

    /// A required revision (a number, or its digits as a string).
    pub fn revision(&self, name: &str) -> Result<i64, RpcError> {
        let bad = || {
            RpcError::invalid_params(format!("Invalid params: {name} must be a revision number"))
        };
        match self.0.get(name) {
            Some(Value::Number(n)) => n.as_i64().ok_or_else(bad),
            Some(Value::String(s)) => s.trim().parse().map_err(|_| bad()),
            None | Some(Value::Null) => Err(RpcError::invalid_params(format!(
                "Invalid params: {name} is required"
            ))),
            Some(_) => Err(bad()),
        }
    }

    /// Refuses parameters the method does not take.
    pub fn only(&self, known: &[&str]) -> Result<(), RpcError> {
        match self.0.keys().find(|k| !known.contains(&k.as_str())) {
            Some(unknown) => Err(RpcError::invalid_params(format!(
                "Invalid params: unexpected parameter {unknown:?} (takes {})",
                known.join(", ")
            ))),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One request (not a batch) from a body.
    fn parse(body: &[u8]) -> Parsed {
        match parse_body(body, 1) {
            Body::Single(parsed) => parsed,
            Body::Batch(items) => panic!("not one request: {items:?}"),
        }
    }

    #[test]
    fn requests_are_checked_and_errors_keep_the_id() {
        let ok = parse(
            br#"{"jsonrpc":"2.0","method":"event.get","params":{"uid":"x","rev":"12"},"id":7}"#,
        )
        .unwrap();
        assert_eq!(
            (ok.method.as_str(), ok.id.clone()),
            ("event.get", Some(json!(7)))
        );
        assert_eq!(ok.params.text("uid").unwrap(), "x");
        assert_eq!(ok.params.revision("rev").unwrap(), 12);
        assert_eq!(ok.params.text("mailbox").unwrap_err().code, -32602);
        assert_eq!(ok.params.only(&["uid"]).unwrap_err().code, -32602);
        assert_eq!(parse(b"{nope").unwrap_err().1.code, -32700);
        let (id, e) =
            parse(br#"{"jsonrpc":"2.0","method":"x","params":[1],"id":"a"}"#).unwrap_err();
        assert_eq!((id, e.code), (json!("a"), -32600));
        let (id, e) = parse(br#"{"method":"x","id":1}"#).unwrap_err();
        assert_eq!((id, e.code), (json!(1), -32600));
        let (id, e) = parse(br#"{"jsonrpc":"2.0","method":"x","id":[1]}"#).unwrap_err();
        assert_eq!((id, e.code), (Value::Null, -32600));
        assert_eq!(parse(b"[]").unwrap_err().1.code, -32600);
        let body = response(&json!(3), Err(RpcError::method_not_found("a.b")));
        assert_eq!(body["error"]["code"], -32601);
        assert_eq!(body["id"], 3);
    }

    #[test]
    fn notifications_have_no_id_member_and_batches_are_arrays() {
        let notification = parse(br#"{"jsonrpc":"2.0","method":"system.keygen"}"#).unwrap();
        assert_eq!(notification.id, None);
        let null_id = parse(br#"{"jsonrpc":"2.0","method":"system.keygen","id":null}"#).unwrap();
        assert_eq!(
            null_id.id,
            Some(Value::Null),
            "id null is a call, not a notification"
        );
        let Body::Batch(items) = parse_body(
            br#"[{"jsonrpc":"2.0","method":"a.b","id":1},1,{"jsonrpc":"2.0","method":"c.d"}]"#,
            10,
        ) else {
            panic!("an array is a batch");
        };
        assert_eq!(items.len(), 3);
        assert_eq!(items[0].as_ref().unwrap().id, Some(json!(1)));
        assert_eq!(items[1].as_ref().unwrap_err().1.code, -32600);
        assert_eq!(items[2].as_ref().unwrap().id, None);
        for refused in [&b"[]"[..], br#"[1,2,3]"#] {
            let Body::Single(Err((id, e))) = parse_body(refused, 2) else {
                panic!("{refused:?} is one error");
            };
            assert_eq!((id, e.code), (Value::Null, -32600));
        }
    }
}
