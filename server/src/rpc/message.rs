//! The JSON-RPC 2.0 message types and the one place that decides what a JSON value is.
//!
//! The rule kept here: every JSON value that reaches the server is classified exactly once,
//! by [`Message::from_value`], into a request, a notification, a response, or an
//! [`InvalidMessage`] that still carries the request id when one could be read, so that the
//! error answer names the request it refuses. Request ids keep `1` and `"1"` apart, as the
//! specification requires.

use std::fmt;

use serde::de::{self, Deserializer};
use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The version string every message carries.
const JSONRPC_VERSION: &str = "2.0";

/// A request id: an integer or a string, never confused with each other.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(untagged)]
pub enum RequestId {
    Number(i64),
    String(String),
}

impl From<i64> for RequestId {
    fn from(id: i64) -> Self {
        RequestId::Number(id)
    }
}

impl From<String> for RequestId {
    fn from(id: String) -> Self {
        RequestId::String(id)
    }
}

impl From<&str> for RequestId {
    fn from(id: &str) -> Self {
        RequestId::String(id.to_owned())
    }
}

impl fmt::Display for RequestId {
    /// Strings print quoted so that a log line tells `1` from `"1"`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RequestId::Number(n) => write!(f, "{n}"),
            RequestId::String(s) => write!(f, "{s:?}"),
        }
    }
}

/// A call that expects exactly one answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    pub id: RequestId,
    pub method: String,
    pub params: Option<Value>,
}

impl Request {
    pub fn new(id: impl Into<RequestId>, method: impl Into<String>, params: Option<Value>) -> Self {
        Request { id: id.into(), method: method.into(), params }
    }
}

/// A one-way message; nobody answers it.
#[derive(Debug, Clone, PartialEq)]
pub struct Notification {
    pub method: String,
    pub params: Option<Value>,
}

impl Notification {
    pub fn new(method: impl Into<String>, params: Option<Value>) -> Self {
        Notification { method: method.into(), params }
    }
}

/// The answer to a request. Exactly one of `result` and `error` is meant to be set; a
/// response with neither serializes as `"result": null`.
#[derive(Debug, Clone, PartialEq)]
pub struct Response {
    /// `None` only when the request's id could not be read (parse errors, invalid requests).
    pub id: Option<RequestId>,
    pub result: Option<Value>,
    pub error: Option<ResponseError>,
}

impl Response {
    pub fn ok(id: RequestId, result: Value) -> Self {
        Response { id: Some(id), result: Some(result), error: None }
    }

    pub fn err(id: Option<RequestId>, error: ResponseError) -> Self {
        Response { id, result: None, error: Some(error) }
    }

    /// The response for a handler's outcome.
    pub fn from_outcome(id: RequestId, outcome: Result<Value, ResponseError>) -> Self {
        match outcome {
            Ok(result) => Response::ok(id, result),
            Err(error) => Response::err(Some(id), error),
        }
    }
}

/// The JSON-RPC error codes this server answers with. Application errors use their own codes
/// through [`ResponseError::new`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(i32)]
pub enum ErrorCode {
    ParseError = -32700,
    InvalidRequest = -32600,
    MethodNotFound = -32601,
    InvalidParams = -32602,
    InternalError = -32603,
    RequestCancelled = -32800,
}

impl ErrorCode {
    pub fn code(self) -> i32 {
        self as i32
    }
}

impl From<ErrorCode> for i32 {
    fn from(code: ErrorCode) -> i32 {
        code.code()
    }
}

/// The `error` member of a response. Its `message` is shown to people, so it never holds a
/// token; machine-readable detail goes in `data`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, thiserror::Error)]
#[error("{message} ({code})")]
pub struct ResponseError {
    pub code: i32,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
}

impl ResponseError {
    /// An error with any code, JSON-RPC or application.
    pub fn new(code: impl Into<i32>, message: impl Into<String>) -> Self {
        ResponseError { code: code.into(), message: message.into(), data: None }
    }

    pub fn with_data(mut self, data: Value) -> Self {
        self.data = Some(data);
        self
    }

    pub fn parse_error(message: impl Into<String>) -> Self {
        ResponseError::new(ErrorCode::ParseError, message)
    }

    pub fn invalid_request(message: impl Into<String>) -> Self {
        ResponseError::new(ErrorCode::InvalidRequest, message)
    }

    /// What a handler answers for a method it does not know.
    pub fn method_not_found(method: &str) -> Self {
        ResponseError::new(ErrorCode::MethodNotFound, format!("unknown method '{method}'"))
    }

    pub fn invalid_params(message: impl Into<String>) -> Self {
        ResponseError::new(ErrorCode::InvalidParams, message)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        ResponseError::new(ErrorCode::InternalError, message)
    }

    pub fn cancelled() -> Self {
        ResponseError::new(ErrorCode::RequestCancelled, "the request was cancelled")
    }
}

/// Any message on the wire.
#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    Request(Request),
    Response(Response),
    Notification(Notification),
}

impl From<Request> for Message {
    fn from(request: Request) -> Self {
        Message::Request(request)
    }
}

impl From<Response> for Message {
    fn from(response: Response) -> Self {
        Message::Response(response)
    }
}

impl From<Notification> for Message {
    fn from(notification: Notification) -> Self {
        Message::Notification(notification)
    }
}

/// A JSON value that is not a valid message. `id` is the request id when it could be read, so
/// that the `-32600` answer can name the request.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{reason}")]
pub struct InvalidMessage {
    pub id: Option<RequestId>,
    pub reason: String,
}

impl InvalidMessage {
    fn new(id: Option<RequestId>, reason: impl Into<String>) -> Self {
        InvalidMessage { id, reason: reason.into() }
    }

    /// The answer this invalid message gets.
    pub fn to_response(&self) -> Response {
        Response::err(self.id.clone(), ResponseError::invalid_request(self.reason.clone()))
    }
}

impl Message {
    /// Classifies one JSON value (one element of a batch, or a whole message).
    pub fn from_value(value: Value) -> Result<Message, InvalidMessage> {
        let Value::Object(mut object) = value else {
            return Err(InvalidMessage::new(None, "a message must be a JSON object"));
        };

        // The id is read first so that every later complaint can be addressed to it.
        let id = match object.remove("id") {
            None => IdField::Absent,
            Some(Value::Null) => IdField::Null,
            Some(raw) => match RequestId::deserialize(raw) {
                Ok(id) => IdField::Present(id),
                Err(_) => {
                    return Err(InvalidMessage::new(None, "\"id\" must be a string or an integer"));
                }
            },
        };
        let known_id = match &id {
            IdField::Present(id) => Some(id.clone()),
            IdField::Absent | IdField::Null => None,
        };

        if object.get("jsonrpc").and_then(Value::as_str) != Some(JSONRPC_VERSION) {
            return Err(InvalidMessage::new(known_id, "\"jsonrpc\" must be \"2.0\""));
        }

        match object.remove("method") {
            Some(Value::String(method)) => {
                let params = match object.remove("params") {
                    None | Some(Value::Null) => None,
                    Some(params @ (Value::Object(_) | Value::Array(_))) => Some(params),
                    Some(_) => {
                        return Err(InvalidMessage::new(
                            known_id,
                            "\"params\" must be an object or an array",
                        ));
                    }
                };
                match id {
                    IdField::Absent => Ok(Message::Notification(Notification { method, params })),
                    IdField::Present(id) => Ok(Message::Request(Request { id, method, params })),
                    IdField::Null => {
                        Err(InvalidMessage::new(None, "a request id must not be null"))
                    }
                }
            }
            Some(_) => Err(InvalidMessage::new(known_id, "\"method\" must be a string")),
            None => {
                let result = object.remove("result");
                let error = match object.remove("error") {
                    None | Some(Value::Null) => None,
                    Some(raw) => match ResponseError::deserialize(raw) {
                        Ok(error) => Some(error),
                        Err(_) => {
                            return Err(InvalidMessage::new(
                                known_id,
                                "\"error\" must be an object with a code and a message",
                            ));
                        }
                    },
                };
                if result.is_none() && error.is_none() {
                    return Err(InvalidMessage::new(
                        known_id,
                        "a message needs a \"method\", a \"result\" or an \"error\"",
                    ));
                }
                Ok(Message::Response(Response { id: known_id, result, error }))
            }
        }
    }

    /// The method a request or notification names.
    pub fn method(&self) -> Option<&str> {
        match self {
            Message::Request(request) => Some(&request.method),
            Message::Notification(notification) => Some(&notification.method),
            Message::Response(_) => None,
        }
    }
}

/// The three states of an `id` member; `null` is not the same as missing.
enum IdField {
    Absent,
    Null,
    Present(RequestId),
}

impl Serialize for Request {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("jsonrpc", JSONRPC_VERSION)?;
        map.serialize_entry("id", &self.id)?;
        map.serialize_entry("method", &self.method)?;
        if let Some(params) = &self.params {
            map.serialize_entry("params", params)?;
        }
        map.end()
    }
}

impl Serialize for Notification {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("jsonrpc", JSONRPC_VERSION)?;
        map.serialize_entry("method", &self.method)?;
        if let Some(params) = &self.params {
            map.serialize_entry("params", params)?;
        }
        map.end()
    }
}

impl Serialize for Response {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("jsonrpc", JSONRPC_VERSION)?;
        map.serialize_entry("id", &self.id)?;
        match (&self.error, &self.result) {
            (Some(error), _) => map.serialize_entry("error", error)?,
            (None, Some(result)) => map.serialize_entry("result", result)?,
            (None, None) => map.serialize_entry("result", &Value::Null)?,
        }
        map.end()
    }
}

impl Serialize for Message {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Message::Request(request) => request.serialize(serializer),
            Message::Response(response) => response.serialize(serializer),
            Message::Notification(notification) => notification.serialize(serializer),
        }
    }
}

impl<'de> Deserialize<'de> for Message {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        Message::from_value(value).map_err(de::Error::custom)
    }
}

/// Serializes anything this module defines. The values involved hold only strings, integers
/// and `serde_json::Value`s, none of which can fail to serialize.
pub(crate) fn to_json<T: Serialize>(message: &T) -> Vec<u8> {
    serde_json::to_vec(message).unwrap_or_else(|error| {
        // Unreachable in practice; answering an internal error keeps the peer informed.
        tracing::error!(%error, "could not serialize an outgoing message");
        let mut fallback = Map::new();
        fallback.insert("jsonrpc".into(), JSONRPC_VERSION.into());
        fallback.insert("id".into(), Value::Null);
        fallback.insert(
            "error".into(),
            serde_json::json!({"code": ErrorCode::InternalError.code(), "message": "internal error"}),
        );
        Value::Object(fallback).to_string().into_bytes()
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn request_ids_keep_numbers_and_strings_apart() {
        let number: RequestId = serde_json::from_value(json!(1)).unwrap();
        let string: RequestId = serde_json::from_value(json!("1")).unwrap();
        assert_eq!(number, RequestId::Number(1));
        assert_eq!(string, RequestId::String("1".into()));
        assert_ne!(number, string);
        assert_eq!(serde_json::to_value(&number).unwrap(), json!(1));
        assert_eq!(serde_json::to_value(&string).unwrap(), json!("1"));
        assert_eq!(number.to_string(), "1");
        assert_eq!(string.to_string(), "\"1\"");
    }

    #[test]
    fn classifies_values() {
        let cases: Vec<(Value, Result<Message, InvalidMessage>)> = vec![
            (
                json!({"jsonrpc": "2.0", "id": 1, "method": "a", "params": {"x": 1}}),
                Ok(Request::new(1, "a", Some(json!({"x": 1}))).into()),
            ),
            (
                json!({"jsonrpc": "2.0", "id": "7", "method": "a", "params": null}),
                Ok(Request::new("7", "a", None).into()),
            ),
            (
                json!({"jsonrpc": "2.0", "method": "n", "params": [1]}),
                Ok(Notification::new("n", Some(json!([1]))).into()),
            ),
            (
                json!({"jsonrpc": "2.0", "id": 3, "result": null}),
                Ok(Response::ok(3.into(), Value::Null).into()),
            ),
            (json!(42), Err(InvalidMessage::new(None, "a message must be a JSON object"))),
            (
                json!({"jsonrpc": "2.0", "id": 1.5, "method": "a"}),
                Err(InvalidMessage::new(None, "\"id\" must be a string or an integer")),
            ),
            (
                json!({"jsonrpc": "2.0", "id": true, "method": "a"}),
                Err(InvalidMessage::new(None, "\"id\" must be a string or an integer")),
            ),
            (
                json!({"jsonrpc": "2.0", "id": null, "method": "a"}),
                Err(InvalidMessage::new(None, "a request id must not be null")),
            ),
            (
                json!({"id": 4, "method": "a"}),
                Err(InvalidMessage::new(Some(4.into()), "\"jsonrpc\" must be \"2.0\"")),
            ),
            (
                json!({"jsonrpc": "1.0", "id": 4, "method": "a"}),
                Err(InvalidMessage::new(Some(4.into()), "\"jsonrpc\" must be \"2.0\"")),
            ),
            (
                json!({"jsonrpc": "2.0", "id": 5, "method": 5}),
                Err(InvalidMessage::new(Some(5.into()), "\"method\" must be a string")),
            ),
            (
                json!({"jsonrpc": "2.0", "id": 6, "method": "a", "params": "x"}),
                Err(InvalidMessage::new(
                    Some(6.into()),
                    "\"params\" must be an object or an array",
                )),
            ),
            (
                json!({"jsonrpc": "2.0", "id": 7}),
                Err(InvalidMessage::new(
                    Some(7.into()),
                    "a message needs a \"method\", a \"result\" or an \"error\"",
                )),
            ),
            (
                json!({"jsonrpc": "2.0", "id": 8, "error": "boom"}),
                Err(InvalidMessage::new(
                    Some(8.into()),
                    "\"error\" must be an object with a code and a message",
                )),
            ),
        ];
        for (value, expected) in cases {
            assert_eq!(Message::from_value(value.clone()), expected, "classifying {value}");
        }
    }

    #[test]
    fn responses_serialize_with_exactly_one_outcome() {
        let ok = Response::ok("a".into(), Value::Null);
        assert_eq!(
            serde_json::to_value(&ok).unwrap(),
            json!({"jsonrpc": "2.0", "id": "a", "result": null})
        );
        let error = Response::err(
            None,
            ResponseError::new(-32001, "no account has that alias")
                .with_data(json!({"kind": "unknownAccount"})),
        );
        assert_eq!(
            serde_json::to_value(&error).unwrap(),
            json!({"jsonrpc": "2.0", "id": null, "error": {"code": -32001,
                "message": "no account has that alias", "data": {"kind": "unknownAccount"}}})
        );
        let neither = Response { id: Some(2.into()), result: None, error: None };
        assert_eq!(
            serde_json::to_value(&neither).unwrap(),
            json!({"jsonrpc": "2.0", "id": 2, "result": null})
        );
    }

    #[test]
    fn messages_round_trip() {
        let messages: Vec<Message> = vec![
            Request::new(9, "account/list", None).into(),
            Request::new("x", "account/use", Some(json!({"alias": "work"}))).into(),
            Notification::new("account/didChange", Some(json!({"reason": "use"}))).into(),
            Response::err(Some(1.into()), ResponseError::method_not_found("nope")).into(),
            Response::ok(2.into(), json!([1, 2])).into(),
        ];
        for message in messages {
            let bytes = to_json(&message);
            let back: Message = serde_json::from_slice(&bytes).unwrap();
            assert_eq!(back, message);
        }
    }

    #[test]
    fn error_codes_have_the_json_rpc_numbers() {
        let codes = [
            (ErrorCode::ParseError, -32700),
            (ErrorCode::InvalidRequest, -32600),
            (ErrorCode::MethodNotFound, -32601),
            (ErrorCode::InvalidParams, -32602),
            (ErrorCode::InternalError, -32603),
            (ErrorCode::RequestCancelled, -32800),
        ];
        for (code, number) in codes {
            assert_eq!(code.code(), number);
        }
        assert_eq!(ResponseError::method_not_found("x/y").code, -32601);
        assert_eq!(ResponseError::method_not_found("x/y").message, "unknown method 'x/y'");
        assert_eq!(ResponseError::invalid_params("bad").code, -32602);
        assert_eq!(ResponseError::cancelled().code, -32800);
    }
}
