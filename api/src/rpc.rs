//! JSON-RPC 2.0 envelopes: requests with named parameters, results and errors.

use serde_json::{Map, Value, json};

/// A JSON-RPC error.
#[derive(Debug, Clone, PartialEq)]
pub struct RpcError {
    /// The code: -32700 parse error, -32600 invalid request, -32601 method not found, -32602
    /// invalid params, -32603 internal error.
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
    /// `id` as sent (null for a notification).
    pub id: Value,
    /// The method name.
    pub method: String,
    /// Named parameters (none given: empty).
    pub params: Params,
}

/// Parses a request body. The error comes with the id when one could be read.
pub fn parse(body: &[u8]) -> Result<Request, (Value, RpcError)> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| (Value::Null, RpcError::parse(format!("Parse error: {e}"))))?;
    let Value::Object(mut object) = value else {
        return Err((
            Value::Null,
            RpcError::invalid_request("Invalid Request: not a JSON object"),
        ));
    };
    let id = object.remove("id").unwrap_or(Value::Null);
    let invalid = |message: &str| (id.clone(), RpcError::invalid_request(message));
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

    #[test]
    fn requests_are_checked_and_errors_keep_the_id() {
        let ok = parse(
            br#"{"jsonrpc":"2.0","method":"event.get","params":{"uid":"x","rev":"12"},"id":7}"#,
        )
        .unwrap();
        assert_eq!((ok.method.as_str(), ok.id.clone()), ("event.get", json!(7)));
        assert_eq!(ok.params.text("uid").unwrap(), "x");
        assert_eq!(ok.params.revision("rev").unwrap(), 12);
        assert_eq!(ok.params.text("mailbox").unwrap_err().code, -32602);
        assert_eq!(ok.params.only(&["uid"]).unwrap_err().code, -32602);
        assert_eq!(parse(b"{nope").unwrap_err().1.code, -32700);
        let (id, e) =
            parse(br#"{"jsonrpc":"2.0","method":"x","params":[1],"id":"a"}"#).unwrap_err();
        assert_eq!((id, e.code), (json!("a"), -32600));
        assert_eq!(
            parse(br#"{"method":"x","id":1}"#).unwrap_err().1.code,
            -32600
        );
        assert_eq!(parse(b"[]").unwrap_err().1.code, -32600);
        let body = response(&json!(3), Err(RpcError::method_not_found("a.b")));
        assert_eq!(body["error"]["code"], -32601);
        assert_eq!(body["id"], 3);
    }
}
