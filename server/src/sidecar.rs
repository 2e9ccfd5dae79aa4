//! The sidecar: the service behind a JSON-RPC connection. It turns method names and params
//! into service calls, service failures into protocol errors, and the service's change
//! announcements into `account/didChange` notifications.

use std::sync::Arc;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{broadcast, mpsc};

use crate::protocol::{AliasParams, StatusParams, method};
use crate::rpc::{self, BoxFuture, ErrorCode, Framing, Handler, Notification, ResponseError};
use crate::service::{Service, ServiceError};

/// Serves one client on `input` and `output` until it hangs up or says `exit`, forwarding
/// every change the service announces.
pub async fn run<R, W>(
    service: Arc<Service>,
    input: R,
    output: W,
    framing: Option<Framing>,
) -> std::io::Result<rpc::ExitStatus>
where
    R: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let (notifications, outbox) = mpsc::unbounded_channel();
    let forwarder = tokio::spawn(forward_changes(service.subscribe(), notifications));
    let watcher = crate::watch::spawn(service.clone());
    let status = rpc::serve(input, output, framing, Arc::new(Sidecar { service }), outbox).await;
    forwarder.abort();
    watcher.abort();
    status
}

async fn forward_changes(
    mut changes: broadcast::Receiver<crate::protocol::DidChange>,
    notifications: mpsc::UnboundedSender<Notification>,
) {
    loop {
        match changes.recv().await {
            Ok(change) => {
                let params = serde_json::to_value(&change).ok();
                let note = Notification { method: method::DID_CHANGE.to_owned(), params };
                if notifications.send(note).is_err() {
                    return;
                }
            }
            // Each notification carries the whole view, so a client that missed some is whole
            // again with the next one.
            Err(broadcast::error::RecvError::Lagged(missed)) => {
                tracing::warn!(missed, "a slow client missed change notifications");
            }
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}

/// The JSON-RPC handler for the account methods.
#[derive(Debug)]
pub struct Sidecar {
    service: Arc<Service>,
}

impl Sidecar {
    pub fn new(service: Arc<Service>) -> Self {
        Sidecar { service }
    }
}

impl Handler for Sidecar {
    fn handle(
        &self,
        method: &str,
        params: Option<Value>,
    ) -> BoxFuture<'static, Result<Value, ResponseError>> {
        let service = self.service.clone();
        let method = method.to_owned();
        Box::pin(async move { dispatch(&service, &method, params).await })
    }

    /// The changes run in the order they arrived: a client that sends `use work` then
    /// `use home` without waiting ends on `home`.
    fn is_ordered(&self, method: &str) -> bool {
        matches!(method, method::USE | method::ADD | method::REMOVE)
    }
}

async fn dispatch(
    service: &Service,
    name: &str,
    params: Option<Value>,
) -> Result<Value, ResponseError> {
    match name {
        method::LIST => {
            no_params(name, params)?;
            answer(service.list())
        }
        method::STATUS => {
            let params: StatusParams = parse(name, params)?;
            answer(service.status(params).await)
        }
        method::USE => {
            let params: AliasParams = parse(name, params)?;
            // A switch writes two stores; once started it finishes or undoes itself, so a
            // cancel arriving later is answered by its normal result.
            rpc::cancel::commit()?;
            answer(service.use_account(&params.alias).await)
        }
        method::ADD => {
            let params: AliasParams = parse(name, params)?;
            rpc::cancel::commit()?;
            answer(service.add_account(&params.alias).await)
        }
        method::REMOVE => {
            let params: AliasParams = parse(name, params)?;
            rpc::cancel::commit()?;
            answer(service.remove_account(&params.alias).await)
        }
        _ => Err(ResponseError::method_not_found(name)),
    }
}

fn answer<T: Serialize>(result: Result<T, ServiceError>) -> Result<Value, ResponseError> {
    match result {
        Ok(value) => serde_json::to_value(value).map_err(|e| {
            ResponseError::new(
                ErrorCode::InternalError,
                format!("could not encode the answer: {e}"),
            )
        }),
        Err(error) => Err(to_response_error(&error)),
    }
}

/// A service failure as a protocol error: the kind's code, the sentence, and `data`.
pub fn to_response_error(error: &ServiceError) -> ResponseError {
    let code = error.kind().map_or(ErrorCode::InvalidParams as i32, |kind| kind.code());
    ResponseError { code, message: error.to_string(), data: Some(error.data()) }
}

fn parse<T: DeserializeOwned>(name: &str, params: Option<Value>) -> Result<T, ResponseError> {
    let params = match params {
        None | Some(Value::Null) => Value::Object(Default::default()),
        Some(params) => params,
    };
    serde_json::from_value(params).map_err(|e| {
        ResponseError::new(ErrorCode::InvalidParams, format!("invalid params for {name}: {e}"))
    })
}

fn no_params(name: &str, params: Option<Value>) -> Result<(), ResponseError> {
    match params {
        None | Some(Value::Null) => Ok(()),
        Some(Value::Object(map)) if map.is_empty() => Ok(()),
        Some(Value::Array(items)) if items.is_empty() => Ok(()),
        Some(_) => {
            Err(ResponseError::new(ErrorCode::InvalidParams, format!("{name} takes no params")))
        }
    }
}
