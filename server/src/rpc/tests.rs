//! End-to-end cases for the rpc module: a table of messages run through the in-memory pair
//! and through raw byte streams in both framings, then the behaviours a table cannot show
//! (framing choice, damaged input, lifecycle, cancellation, concurrency, notifications, end
//! of input, logging).

use std::collections::HashMap;
use std::io;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use super::*;
use crate::rpc::framing::{Frame, FrameReader};

/// Long enough for anything that should happen to happen; tests wait on events, not on time,
/// except where they prove that something does not happen.
const PATIENCE: Duration = Duration::from_secs(10);

/// A handler with one method per behaviour under test.
#[derive(Default)]
struct TestHandler {
    notifier: OnceLock<mpsc::UnboundedSender<Notification>>,
    gates: Mutex<HashMap<String, watch::Sender<bool>>>,
    /// Names of `wait` requests whose futures were dropped before finishing.
    dropped: Arc<Mutex<Vec<String>>>,
}

impl TestHandler {
    fn new() -> Arc<Self> {
        Arc::new(TestHandler::default())
    }

    fn gate(&self, name: &str) -> watch::Sender<bool> {
        let mut gates = self.gates.lock().unwrap();
        gates.entry(name.to_owned()).or_insert_with(|| watch::channel(false).0).clone()
    }

    fn open(&self, name: &str) {
        self.gate(name).send_replace(true);
    }

    fn dropped(&self) -> Vec<String> {
        self.dropped.lock().unwrap().clone()
    }

    fn announce(&self, method: &str, params: Value) {
        if let Some(notifier) = self.notifier.get() {
            let _ = notifier.send(Notification::new(method, Some(params)));
        }
    }
}

/// Records the name of a request whose future is dropped before it finishes.
struct DropWitness {
    name: String,
    dropped: Arc<Mutex<Vec<String>>>,
    finished: bool,
}

impl Drop for DropWitness {
    fn drop(&mut self) {
        if !self.finished {
            self.dropped.lock().unwrap().push(self.name.clone());
        }
    }
}

impl Handler for Arc<TestHandler> {
    fn handle(
        &self,
        method: &str,
        params: Option<Value>,
    ) -> BoxFuture<'static, Result<Value, ResponseError>> {
        let this = Arc::clone(self);
        let method = method.to_owned();
        Box::pin(async move {
            let gate_name = || {
                params
                    .as_ref()
                    .and_then(|p| p.get("gate"))
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            };
            match method.as_str() {
                "echo" => Ok(params.clone().unwrap_or(Value::Null)),
                "fail" => Err(ResponseError::new(-32001, "no account has that alias")
                    .with_data(json!({"kind": "unknownAccount", "alias": "x"}))),
                "needsAlias" => match params.as_ref().and_then(|p| p.get("alias")) {
                    Some(Value::String(alias)) => Ok(json!({"alias": alias})),
                    _ => Err(ResponseError::invalid_params("expected {\"alias\": string}")),
                },
                "panic" => panic!("the test handler panics on purpose"),
                "announce" => {
                    this.announce("test/announced", json!({"n": 1}));
                    Ok(json!("announced"))
                }
                "wait" | "commitThenWait" => {
                    let name = gate_name().ok_or_else(|| ResponseError::invalid_params("gate"))?;
                    let mut witness = DropWitness {
                        name: name.clone(),
                        dropped: Arc::clone(&this.dropped),
                        finished: false,
                    };
                    if params.as_ref().and_then(|p| p.get("announce")).is_some() {
                        this.announce("test/waiting", json!({"gate": name}));
                    }
                    if method == "commitThenWait" {
                        CancelToken::current().commit()?;
                        this.announce("test/committed", json!({"gate": name}));
                    }
                    let mut open = this.gate(&name).subscribe();
                    open.wait_for(|open| *open)
                        .await
                        .map_err(|_| ResponseError::internal("gate"))?;
                    witness.finished = true;
                    Ok(json!({"opened": name}))
                }
                other => Err(ResponseError::method_not_found(other)),
            }
        })
    }
}

fn pair(handler: &Arc<TestHandler>, framing: Framing) -> MemoryPair {
    let pair = memory_pair(Arc::new(Arc::clone(handler)), framing);
    let _ = handler.notifier.set(pair.notifications.clone());
    pair
}

/// A server on two raw pipes: the test writes bytes and reads bytes.
struct Raw {
    input: DuplexStream,
    output: DuplexStream,
    notifications: mpsc::UnboundedSender<Notification>,
    server: JoinHandle<io::Result<ExitStatus>>,
}

fn raw(handler: &Arc<TestHandler>, forced: Option<Framing>) -> Raw {
    let (input, server_input) = tokio::io::duplex(1024);
    let (server_output, output) = tokio::io::duplex(1024);
    let (notifications, queue) = mpsc::unbounded_channel();
    let _ = handler.notifier.set(notifications.clone());
    let server = tokio::spawn(serve(
        server_input,
        server_output,
        forced,
        Arc::new(Arc::clone(handler)),
        queue,
    ));
    Raw { input, output, notifications, server }
}

/// Writes `chunks` one write at a time, ends the input, and returns everything the server
/// wrote together with how it ended.
async fn exchange(
    handler: &Arc<TestHandler>,
    forced: Option<Framing>,
    chunks: Vec<Vec<u8>>,
) -> (Vec<u8>, io::Result<ExitStatus>) {
    let Raw { mut input, mut output, server, .. } = raw(handler, forced);
    let writer = tokio::spawn(async move {
        for chunk in chunks {
            input.write_all(&chunk).await?;
            input.flush().await?;
            tokio::task::yield_now().await;
        }
        input.shutdown().await
    });
    let mut written = Vec::new();
    tokio::time::timeout(PATIENCE, output.read_to_end(&mut written)).await.unwrap().unwrap();
    writer.await.unwrap().unwrap();
    let status = tokio::time::timeout(PATIENCE, server).await.unwrap().unwrap();
    (written, status)
}

/// Parses what the server wrote, checking that it is framed in `framing` throughout.
async fn messages(framing: Framing, written: &[u8]) -> Vec<Value> {
    let mut reader = FrameReader::new(written, Some(framing));
    let mut values = Vec::new();
    while let Some(frame) = reader.next_frame().await.unwrap() {
        match frame {
            Frame::Message(bytes) => values.push(serde_json::from_slice(&bytes).unwrap()),
            other => panic!("the server wrote a damaged {framing} frame: {other:?}"),
        }
    }
    values
}

/// Error messages are sentences for people; the table compares codes, ids and data.
fn without_messages(mut value: Value) -> Value {
    match &mut value {
        Value::Array(items) => {
            for item in items {
                *item = without_messages(item.take());
            }
        }

        Value::Object(object) => {
            if let Some(Value::Object(error)) = object.get_mut("error") {
                assert!(
                    error.get("message").and_then(Value::as_str).is_some_and(|m| !m.is_empty()),
                    "every error has a message: {error:?}"
                );
                error.remove("message");
            }
        }
        _ => {}
    }
    value
}

/// What the server sent, without error messages, in a stable order.
fn sorted(values: Vec<Value>) -> Vec<Value> {
    expected(values.into_iter().map(without_messages).collect())
}

/// What a test expects, in the same stable order.
fn expected(mut values: Vec<Value>) -> Vec<Value> {
    values.sort_by_key(Value::to_string);
    values
}

/// An expected error answer; the table leaves messages out.
fn error(id: Value, code: i32) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "error": {"code": code}})
}

fn result(id: Value, result: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "result": result})
}

/// One message in, the answers expected (in any order, messages ignored).
struct Case {
    name: &'static str,
    input: &'static [u8],
    expect: Vec<Value>,
}

fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "request with an integer id",
            input: br#"{"jsonrpc":"2.0","id":1,"method":"echo","params":{"a":1}}"#,
            expect: vec![result(json!(1), json!({"a": 1}))],
        },
        Case {
            name: "request with a string id",
            input: br#"{"jsonrpc":"2.0","id":"1","method":"echo","params":[true]}"#,
            expect: vec![result(json!("1"), json!([true]))],
        },
        Case {
            name: "malformed JSON",
            input: br#"{"jsonrpc":"2.0","id":1,"method":"#,
            expect: vec![error(Value::Null, -32700)],
        },
        Case {
            name: "bad UTF-8 inside a string",
            input: b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"echo\",\"params\":[\"\xff\xfe\"]}",
            expect: vec![error(Value::Null, -32700)],
        },
        Case {
            name: "JSON that is not an object",
            input: b"42",
            expect: vec![error(Value::Null, -32600)],
        },
        Case {
            name: "no method, result or error",
            input: br#"{"jsonrpc":"2.0","id":2}"#,
            expect: vec![error(json!(2), -32600)],
        },
        Case {
            name: "wrong jsonrpc version",
            input: br#"{"jsonrpc":"1.0","id":3,"method":"echo"}"#,
            expect: vec![error(json!(3), -32600)],
        },
        Case {
            name: "method not a string",
            input: br#"{"jsonrpc":"2.0","id":4,"method":5}"#,
            expect: vec![error(json!(4), -32600)],
        },
        Case {
            name: "fractional id",
            input: br#"{"jsonrpc":"2.0","id":1.5,"method":"echo"}"#,
            expect: vec![error(Value::Null, -32600)],
        },
        Case {
            name: "scalar params",
            input: br#"{"jsonrpc":"2.0","id":5,"method":"echo","params":7}"#,
            expect: vec![error(json!(5), -32600)],
        },
        Case {
            name: "notification with scalar params",
            input: br#"{"jsonrpc":"2.0","method":"echo","params":7}"#,
            expect: vec![error(Value::Null, -32600)],
        },
        Case {
            name: "unknown method",
            input: br#"{"jsonrpc":"2.0","id":6,"method":"account/fly"}"#,
            expect: vec![error(json!(6), -32601)],
        },
        Case {
            name: "invalid params",
            input: br#"{"jsonrpc":"2.0","id":7,"method":"needsAlias","params":{"alias":3}}"#,
            expect: vec![error(json!(7), -32602)],
        },
        Case {
            name: "handler panics",
            input: br#"{"jsonrpc":"2.0","id":8,"method":"panic"}"#,
            expect: vec![error(json!(8), -32603)],
        },
        Case {
            name: "application error keeps code and data",
            input: br#"{"jsonrpc":"2.0","id":9,"method":"fail"}"#,
            expect: vec![json!({"jsonrpc": "2.0", "id": 9, "error": {"code": -32001,
                "data": {"kind": "unknownAccount", "alias": "x"}}})],
        },
        Case {
            name: "initialize",
            input: br#"{"jsonrpc":"2.0","id":10,"method":"initialize","params":{"anything":1}}"#,
            expect: vec![result(
                json!(10),
                json!({"protocolVersion": 1,
                    "serverInfo": {"name": "switchboard", "version": env!("CARGO_PKG_VERSION")},
                    "capabilities": {"accounts": true, "didChange": true}}),
            )],
        },
        Case {
            name: "initialized is ignored",
            input: br#"{"jsonrpc":"2.0","method":"initialized","params":{}}"#,
            expect: vec![],
        },
        Case {
            name: "unknown notification is ignored",
            input: br#"{"jsonrpc":"2.0","method":"$/setTrace","params":{"value":"off"}}"#,
            expect: vec![],
        },
        Case {
            name: "cancel of an unknown request is ignored",
            input: br#"{"jsonrpc":"2.0","method":"$/cancelRequest","params":{"id":99}}"#,
            expect: vec![],
        },
        Case {
            name: "a response from the client is ignored",
            input: br#"{"jsonrpc":"2.0","id":11,"result":null}"#,
            expect: vec![],
        },
        Case { name: "empty batch", input: b"[]", expect: vec![error(Value::Null, -32600)] },
        Case {
            name: "batch of invalid elements",
            input: b"[1,2]",
            expect: vec![json!([error(Value::Null, -32600), error(Value::Null, -32600)])],
        },
        Case {
            name: "mixed batch answered in order, notifications left out",
            input: br#"[{"jsonrpc":"2.0","id":"b","method":"echo","params":["b"]},
                {"jsonrpc":"2.0","method":"initialized"},
                {"jsonrpc":"2.0","id":12},
                {"jsonrpc":"2.0","id":"a","method":"initialize"},
                {"jsonrpc":"2.0","id":13,"method":"nope"}]"#,
            expect: vec![json!([
                result(json!("b"), json!(["b"])),
                error(json!(12), -32600),
                result(json!("a"), initialize_result()),
                error(json!(13), -32601),
            ])],
        },
        Case {
            name: "batch of notifications gets no answer",
            input: br#"[{"jsonrpc":"2.0","method":"initialized"},{"jsonrpc":"2.0","method":"x"}]"#,
            expect: vec![],
        },
    ]
}

/// A request sent after every case, proving the connection is still up.
const FOLLOW_UP: &[u8] = br#"{"jsonrpc":"2.0","id":"after","method":"echo","params":["alive"]}"#;

fn follow_up_answer() -> Value {
    result(json!("after"), json!(["alive"]))
}

/// ndjson needs one line per message; the table's batch spans lines for readability.
fn one_line(input: &[u8]) -> Vec<u8> {
    input.iter().copied().filter(|&byte| byte != b'\n').collect()
}

#[tokio::test]
async fn table_through_raw_streams_in_both_framings() {
    for framing in [Framing::Lsp, Framing::Ndjson] {
        for case in cases() {
            let handler = TestHandler::new();
            let mut input = framing.encode(&one_line(case.input));
            input.extend(framing.encode(FOLLOW_UP));
            let (written, status) = exchange(&handler, Some(framing), vec![input]).await;
            assert_eq!(status.unwrap(), ExitStatus::EndOfInput, "{framing} {}", case.name);
            let mut expect = case.expect;
            expect.push(follow_up_answer());
            assert_eq!(
                sorted(messages(framing, &written).await),
                expected(expect),
                "{framing} {}",
                case.name
            );
        }
    }
}

#[tokio::test]
async fn table_through_the_memory_pair() {
    for framing in [Framing::Lsp, Framing::Ndjson] {
        for case in cases() {
            let handler = TestHandler::new();
            let MemoryPair { mut client, server, .. } = pair(&handler, framing);
            client.send_json(&one_line(case.input)).await.unwrap();
            client.send_json(FOLLOW_UP).await.unwrap();
            let answer = client.response(&"after".into()).await.unwrap();
            assert_eq!(answer.result, Some(json!(["alive"])), "{framing} {}", case.name);
            client.close().await.unwrap();
            let mut received = Vec::new();
            while let Some(message) = client.recv().await.unwrap() {
                received.push(match message {
                    Received::Single(message) => serde_json::to_value(&message).unwrap(),
                    Received::Batch(messages) => serde_json::to_value(&messages).unwrap(),
                });
            }
            assert_eq!(sorted(received), expected(case.expect), "{framing} {}", case.name);
            assert_eq!(server.await.unwrap().unwrap(), ExitStatus::EndOfInput);
        }
    }
}

#[tokio::test]
async fn error_messages_say_what_was_wrong() {
    let handler = TestHandler::new();
    let MemoryPair { mut client, .. } = pair(&handler, Framing::Ndjson);
    let unknown = client.call("account/fly", None).await.unwrap();
    assert_eq!(unknown.error.unwrap().message, "unknown method 'account/fly'");

    client.send_json(br#"{"jsonrpc":"2.0","id":"v","method":"x","params":"s"}"#).await.unwrap();
    let invalid = client.response(&"v".into()).await.unwrap();
    assert_eq!(invalid.error.unwrap().message, "\"params\" must be an object or an array");

    client.send_json(b"{").await.unwrap();
    let Some(Received::Single(Message::Response(parse))) = client.recv().await.unwrap() else {
        panic!("expected a parse error");
    };
    assert_eq!(parse.id, None);
    assert!(parse.error.unwrap().message.starts_with("invalid JSON: "));
}

#[tokio::test]
async fn framing_is_detected_from_the_first_byte() {
    // ndjson after leading white space: answers are bare lines.
    let handler = TestHandler::new();
    let input = b" \r\n\t{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"echo\"}\n".to_vec();
    let (written, status) = exchange(&handler, None, vec![input]).await;
    assert_eq!(status.unwrap(), ExitStatus::EndOfInput);
    assert_eq!(written, b"{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":null}\n");

    // A batch is ndjson too.
    let input = b"[{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"echo\"}]\n".to_vec();
    let (written, _) = exchange(&handler, None, vec![input]).await;
    assert_eq!(written, b"[{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":null}]\n");

    // LSP, header names in any case, Content-Type accepted and ignored.
    let body = br#"{"jsonrpc":"2.0","id":2,"method":"echo","params":[2]}"#;
    let mut input = format!(
        "\r\ncontent-length: {}\r\nContent-Type: application/vscode-jsonrpc; charset=utf-8\r\n\r\n",
        body.len()
    )
    .into_bytes();
    input.extend_from_slice(body);
    let (written, _) = exchange(&handler, None, vec![input]).await;
    let answer = br#"{"jsonrpc":"2.0","id":2,"result":[2]}"#;
    assert_eq!(written, Framing::Lsp.encode(answer));

    // Anything else is taken for LSP, and garbage gets a parse error in LSP framing.
    let mut input = b"hello\r\n\r\n".to_vec();
    input.extend(Framing::Lsp.encode(FOLLOW_UP));
    let (written, _) = exchange(&handler, None, vec![input]).await;
    assert_eq!(
        sorted(messages(Framing::Lsp, &written).await),
        expected(vec![error(Value::Null, -32700), follow_up_answer()])
    );

    // Nothing at all is a clean end of input with nothing written.
    let (written, status) = exchange(&handler, None, vec![b"  \n".to_vec()]).await;
    assert!(written.is_empty());
    assert_eq!(status.unwrap(), ExitStatus::EndOfInput);
}

#[tokio::test]
async fn forced_framing_overrides_detection() {
    let handler = TestHandler::new();

    // Forced ndjson reading LSP: the header line is a parse error and the body, alone on the
    // last line, is a message; both answered as lines.
    let (written, _) =
        exchange(&handler, Some(Framing::Ndjson), vec![Framing::Lsp.encode(FOLLOW_UP)]).await;
    assert!(written.ends_with(b"\n") && !written.starts_with(b"Content-Length"));
    assert_eq!(
        sorted(messages(Framing::Ndjson, &written).await),
        expected(vec![error(Value::Null, -32700), follow_up_answer()])
    );

    // Forced LSP reading an ndjson line: one parse error, then the next real frame is found.
    let mut input = FOLLOW_UP.to_vec();
    input.push(b'\n');
    input.extend(Framing::Lsp.encode(FOLLOW_UP));
    let (written, _) = exchange(&handler, Some(Framing::Lsp), vec![input]).await;
    assert_eq!(
        sorted(messages(Framing::Lsp, &written).await),
        expected(vec![error(Value::Null, -32700), follow_up_answer()])
    );
}

#[tokio::test]
async fn oversize_messages_are_refused_and_skipped() {
    let handler = TestHandler::new();
    let big = format!(
        r#"{{"jsonrpc":"2.0","id":1,"method":"echo","params":["{}"]}}"#,
        "x".repeat(MAX_MESSAGE_BYTES)
    );
    for framing in [Framing::Lsp, Framing::Ndjson] {
        let mut input = framing.encode(big.as_bytes());
        input.extend(framing.encode(FOLLOW_UP));
        let chunks = input.chunks(100_000).map(<[u8]>::to_vec).collect();
        let (written, status) = exchange(&handler, Some(framing), chunks).await;
        assert_eq!(status.unwrap(), ExitStatus::EndOfInput);
        let answers = messages(framing, &written).await;
        assert_eq!(
            sorted(answers.clone()),
            expected(vec![error(Value::Null, -32600), follow_up_answer()]),
            "{framing}"
        );
        let refusal = answers.iter().find(|a| a["id"].is_null()).unwrap();
        assert!(refusal["error"]["message"].as_str().unwrap().contains("exceeds the limit"));
    }
}

#[tokio::test]
async fn frames_split_across_reads() {
    let handler = TestHandler::new();
    let second = br#"{"jsonrpc":"2.0","id":2,"method":"echo","params":[2]}"#;
    for framing in [Framing::Lsp, Framing::Ndjson] {
        let mut input = framing.encode(FOLLOW_UP);
        input.extend(framing.encode(second));
        // One byte per write, then everything in one write.
        let byte_by_byte = input.iter().map(|&byte| vec![byte]).collect();
        for chunks in [byte_by_byte, vec![input.clone()]] {
            let (written, _) = exchange(&handler, None, chunks).await;
            assert_eq!(
                sorted(messages(framing, &written).await),
                expected(vec![follow_up_answer(), result(json!(2), json!([2]))]),
                "{framing}"
            );
        }
    }
}

#[tokio::test]
async fn damaged_lsp_headers_get_an_answer_and_resynchronise() {
    let handler = TestHandler::new();
    let damage: [&[u8]; 5] = [
        b"Content-Type: x\r\n\r\n{}",
        b"Content-Length: twelve\r\n\r\n{}",
        b"Content-Length: 3\r\n\r\n{\"a\":1}",
        b"X-\xff: y\r\n\r\n",
        b"no colon here\r\n\r\n",
    ];
    for garbage in damage {
        let mut input = Framing::Lsp.encode(FOLLOW_UP);
        input.extend_from_slice(garbage);
        input.extend(Framing::Lsp.encode(br#"{"jsonrpc":"2.0","id":3,"method":"echo"}"#));
        let (written, status) = exchange(&handler, Some(Framing::Lsp), vec![input]).await;
        assert_eq!(status.unwrap(), ExitStatus::EndOfInput);
        let answers = sorted(messages(Framing::Lsp, &written).await);
        let mut want = if garbage.starts_with(b"Content-Length: 3") {
            // The three announced bytes are a message of their own (and bad JSON), the tail is
            // a bad header line.
            vec![error(Value::Null, -32700), error(Value::Null, -32700)]
        } else {
            vec![error(Value::Null, -32700)]
        };
        want.extend([follow_up_answer(), result(json!(3), Value::Null)]);
        assert_eq!(answers, expected(want), "after {}", String::from_utf8_lossy(garbage));
    }
}

#[tokio::test]
async fn lifecycle() {
    let handler = TestHandler::new();
    let MemoryPair { mut client, server, .. } = pair(&handler, Framing::Lsp);
    let init = client.call("initialize", Some(json!({"processId": null}))).await.unwrap();
    assert_eq!(init.result, Some(initialize_result()));
    client.notify("initialized", Some(json!({}))).await.unwrap();
    assert_eq!(client.call("echo", Some(json!([1]))).await.unwrap().result, Some(json!([1])));

    let shutdown = client.call("shutdown", None).await.unwrap();
    assert_eq!(shutdown, Response::ok(shutdown.id.clone().unwrap(), Value::Null));
    let refused = client.call("echo", Some(json!([1]))).await.unwrap();
    assert_eq!(refused.error.unwrap().code, -32600);
    let refused = client.call("initialize", None).await.unwrap();
    assert_eq!(refused.error.unwrap().code, -32600);

    client.notify("exit", None).await.unwrap();
    let status = tokio::time::timeout(PATIENCE, server).await.unwrap().unwrap().unwrap();
    assert_eq!(status, ExitStatus::Exit { after_shutdown: true });
    assert_eq!(status.code(), 0);
    assert_eq!(client.recv().await.unwrap(), None, "the server closed its output");
}

#[tokio::test]
async fn exit_without_shutdown() {
    let handler = TestHandler::new();
    let MemoryPair { mut client, server, .. } = pair(&handler, Framing::Ndjson);
    client.notify("exit", None).await.unwrap();
    let status = tokio::time::timeout(PATIENCE, server).await.unwrap().unwrap().unwrap();
    assert_eq!(status, ExitStatus::Exit { after_shutdown: false });
    assert_eq!(status.code(), 1);
    assert_eq!(ExitStatus::EndOfInput.code(), 0);
}

#[tokio::test]
async fn cancel_aborts_a_running_request() {
    let handler = TestHandler::new();
    let MemoryPair { mut client, .. } = pair(&handler, Framing::Lsp);
    let waiting =
        client.request("wait", Some(json!({"gate": "g1", "announce": true}))).await.unwrap();
    let Some(Received::Single(Message::Notification(started))) = client.recv().await.unwrap()
    else {
        panic!("expected the handler to say it is waiting");
    };
    assert_eq!(started.method, "test/waiting");
    // The same number as a string names another request and cancels nothing.
    client.notify("$/cancelRequest", Some(json!({"id": "1"}))).await.unwrap();
    assert_eq!(waiting, RequestId::Number(1));
    client.notify("$/cancelRequest", Some(json!({"id": 1}))).await.unwrap();
    let answer = tokio::time::timeout(PATIENCE, client.response(&waiting)).await.unwrap().unwrap();
    assert_eq!(answer.error.unwrap().code, -32800);
    assert_eq!(handler.dropped(), vec!["g1".to_owned()], "the handler's future was dropped");

    // The id is free again and the connection works.
    assert_eq!(client.call("echo", None).await.unwrap().result, Some(Value::Null));
}

#[tokio::test]
async fn cancel_after_the_point_of_no_return_is_ignored() {
    let handler = TestHandler::new();
    let MemoryPair { mut client, .. } = pair(&handler, Framing::Ndjson);
    let committed = client.request("commitThenWait", Some(json!({"gate": "g2"}))).await.unwrap();
    let Some(Received::Single(Message::Notification(note))) = client.recv().await.unwrap() else {
        panic!("expected the handler's commit notice");
    };
    assert_eq!(note.method, "test/committed");
    client.notify("$/cancelRequest", Some(json!({"id": committed}))).await.unwrap();
    // The cancel has been read once a later request is answered.
    assert_eq!(client.call("echo", None).await.unwrap().result, Some(Value::Null));
    handler.open("g2");
    let answer = client.response(&committed).await.unwrap();
    assert_eq!(answer.result, Some(json!({"opened": "g2"})));
    assert!(handler.dropped().is_empty());
}

#[tokio::test]
async fn requests_run_concurrently_and_answer_out_of_order() {
    let handler = TestHandler::new();
    let MemoryPair { mut client, .. } = pair(&handler, Framing::Lsp);
    let slow = client.request("wait", Some(json!({"gate": "slow"}))).await.unwrap();
    let fast = client.request("echo", Some(json!(["fast"]))).await.unwrap();
    let Some(Received::Single(Message::Response(first))) = client.recv().await.unwrap() else {
        panic!("expected a response");
    };
    assert_eq!(first.id, Some(fast));
    handler.open("slow");
    let Some(Received::Single(Message::Response(second))) = client.recv().await.unwrap() else {
        panic!("expected a response");
    };
    assert_eq!(second.id, Some(slow));

    // A batch waits for its slowest element and keeps its order.
    let batch = [
        Request::new("w", "wait", Some(json!({"gate": "batch"}))).into(),
        Request::new("e", "echo", None).into(),
    ];
    client.send_batch(&batch).await.unwrap();
    let alone = client.call("echo", Some(json!(["alone"]))).await.unwrap();
    assert_eq!(alone.result, Some(json!(["alone"])), "answered while the batch waits");
    handler.open("batch");
    let Some(Received::Batch(answers)) = client.recv().await.unwrap() else {
        panic!("expected a batch answer");
    };
    let ids: Vec<_> = answers
        .iter()
        .map(|m| match m {
            Message::Response(r) => r.id.clone().unwrap(),
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    assert_eq!(ids, vec![RequestId::from("w"), RequestId::from("e")]);
}

#[tokio::test]
async fn duplicate_ids_in_flight_are_refused() {
    let handler = TestHandler::new();
    let MemoryPair { mut client, .. } = pair(&handler, Framing::Ndjson);
    client.send(Request::new(5, "wait", Some(json!({"gate": "dup"})))).await.unwrap();
    client.send(Request::new(5, "echo", None)).await.unwrap();
    let refused = client.response(&5.into()).await.unwrap();
    assert_eq!(refused.error.unwrap().code, -32600);
    handler.open("dup");
    let answered = client.response(&5.into()).await.unwrap();
    assert_eq!(answered.result, Some(json!({"opened": "dup"})));
}

#[tokio::test]
async fn notifications_interleave_with_answers() {
    let handler = TestHandler::new();
    let MemoryPair { mut client, notifications, .. } = pair(&handler, Framing::Lsp);
    let waiting = client.request("wait", Some(json!({"gate": "n"}))).await.unwrap();
    notifications.send(Notification::new("account/didChange", Some(json!({"n": 1})))).unwrap();
    let Some(Received::Single(Message::Notification(pushed))) = client.recv().await.unwrap() else {
        panic!("expected the pushed notification");
    };
    assert_eq!(pushed, Notification::new("account/didChange", Some(json!({"n": 1}))));

    // A notification the handler queues before answering arrives before the answer.
    let announce = client.request("announce", None).await.unwrap();
    let Some(Received::Single(Message::Notification(announced))) = client.recv().await.unwrap()
    else {
        panic!("expected the announcement first");
    };
    assert_eq!(announced.method, "test/announced");
    assert_eq!(client.response(&announce).await.unwrap().result, Some(json!("announced")));

    handler.open("n");
    assert!(client.response(&waiting).await.unwrap().error.is_none());
}

#[tokio::test]
async fn end_of_input_waits_for_running_requests() {
    let handler = TestHandler::new();
    let MemoryPair { mut client, server, .. } = pair(&handler, Framing::Ndjson);
    let waiting = client.request("wait", Some(json!({"gate": "eof"}))).await.unwrap();
    client.close().await.unwrap();
    // Time is the only witness that the server keeps waiting rather than ending early.
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(!server.is_finished(), "the server waits for the running request");
    handler.open("eof");
    let answer = client.response(&waiting).await.unwrap();
    assert_eq!(answer.result, Some(json!({"opened": "eof"})));
    let status = tokio::time::timeout(PATIENCE, server).await.unwrap().unwrap().unwrap();
    assert_eq!(status, ExitStatus::EndOfInput);
    assert_eq!(client.recv().await.unwrap(), None);
}

#[tokio::test]
async fn exit_cancels_what_it_can_and_finishes_the_rest() {
    let handler = TestHandler::new();
    let MemoryPair { mut client, server, .. } = pair(&handler, Framing::Lsp);
    let cancellable = client.request("wait", Some(json!({"gate": "c"}))).await.unwrap();
    let committed = client.request("commitThenWait", Some(json!({"gate": "k"}))).await.unwrap();
    let Some(Received::Single(Message::Notification(_))) = client.recv().await.unwrap() else {
        panic!("expected the commit notice");
    };
    client.notify("exit", None).await.unwrap();
    let answer = client.response(&cancellable).await.unwrap();
    assert_eq!(answer.error.unwrap().code, -32800);
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(!server.is_finished(), "a committed request is never cut short");
    handler.open("k");
    assert_eq!(client.response(&committed).await.unwrap().result, Some(json!({"opened": "k"})));
    let status = tokio::time::timeout(PATIENCE, server).await.unwrap().unwrap().unwrap();
    assert_eq!(status, ExitStatus::Exit { after_shutdown: false });
}

#[tokio::test]
async fn a_closed_output_ends_the_connection_with_an_error() {
    let handler = TestHandler::new();
    let Raw { mut input, output, server, notifications } = raw(&handler, Some(Framing::Ndjson));
    drop(output);
    notifications.send(Notification::new("account/didChange", None)).unwrap();
    input.write_all(&Framing::Ndjson.encode(FOLLOW_UP)).await.unwrap();
    let ended = tokio::time::timeout(PATIENCE, server).await.unwrap().unwrap();
    assert_eq!(ended.unwrap_err().kind(), io::ErrorKind::BrokenPipe);
}

/// Captures log output for one test.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl io::Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn logs_carry_method_and_id_but_never_bodies() {
    let captured = Captured::default();
    let sink = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || sink.clone())
        .finish();
    let _default = tracing::subscriber::set_default(subscriber);

    let handler = TestHandler::new();
    let MemoryPair { mut client, server, .. } = pair(&handler, Framing::Ndjson);
    let marker = "sk-ant-ort01-MARKER";
    client.call("echo", Some(json!({"refreshToken": marker}))).await.unwrap();
    client.call("needsAlias", Some(json!({"alias": 1, "t": marker}))).await.unwrap();
    client.call(&format!("account/{marker}"), None).await.unwrap();
    client.send_json(format!("{{\"{marker}\": ").as_bytes()).await.unwrap();
    client.send_json(format!("[\"{marker}\"]").as_bytes()).await.unwrap();
    client.close().await.unwrap();
    while client.recv().await.unwrap().is_some() {}
    server.await.unwrap().unwrap();

    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(logs.contains("method=echo"), "spans name the method: {logs}");
    assert!(logs.contains("id=1"), "spans name the id: {logs}");
    assert!(logs.contains("code=-32602"), "failures name their code: {logs}");
    // The method name is logged by design; every other place the marker appeared is a body.
    let leaks: Vec<&str> = logs
        .lines()
        .filter(|line| {
            line.contains("MARKER") && !line.contains(&format!("method=account/{marker}"))
        })
        .collect();
    assert!(leaks.is_empty(), "bodies leaked into logs: {leaks:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_request_is_answered_exactly_once_under_cancel_races() {
    let handler = TestHandler::new();
    let MemoryPair { mut client, server, .. } = pair(&handler, Framing::Ndjson);
    // More requests than may run at once, so the in-flight limit is exercised too.
    let count = 150;
    for i in 0..count {
        let method = if i % 3 == 0 { "commitThenWait" } else { "wait" };
        let params = json!({"gate": format!("s{i}")});
        client.send(Request::new(i, method, Some(params))).await.unwrap();
    }
    for i in 0..count {
        if i % 2 == 0 {
            client.notify("$/cancelRequest", Some(json!({"id": i}))).await.unwrap();
        }
        handler.open(&format!("s{i}"));
    }
    client.close().await.unwrap();

    let mut answers: HashMap<i64, Vec<Response>> = HashMap::new();
    let mut committed = Vec::new();
    while let Some(received) = tokio::time::timeout(PATIENCE, client.recv()).await.unwrap().unwrap()
    {
        match received {
            Received::Single(Message::Response(response)) => {
                let Some(RequestId::Number(id)) = response.id else {
                    panic!("unexpected id in {response:?}");
                };
                answers.entry(id).or_default().push(response);
            }
            Received::Single(Message::Notification(note)) => {
                let gate = note.params.unwrap()["gate"].as_str().unwrap().to_owned();
                committed.push(gate[1..].parse::<i64>().unwrap());
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(answers.len(), count as usize, "every request answered");
    for (id, responses) in &answers {
        assert_eq!(responses.len(), 1, "request {id} answered once: {responses:?}");
        let response = &responses[0];
        let cancelled = response.error.as_ref().map(|error| error.code) == Some(-32800);
        assert!(cancelled || response.result.is_some(), "{response:?}");
        if id % 2 == 1 || committed.contains(id) {
            assert!(!cancelled, "request {id} was cancelled though it could not be");
        }
    }
    let status = tokio::time::timeout(PATIENCE, server).await.unwrap().unwrap().unwrap();
    assert_eq!(status, ExitStatus::EndOfInput);
}
