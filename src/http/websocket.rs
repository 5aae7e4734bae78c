//! GraphQL over WebSocket at `/graphql`, with the `graphql-transport-ws` protocol (what the
//! `graphql-ws` client, Apollo Client and urql speak; async-graphql runs the protocol).
//!
//! The API key comes in `connection_init`'s payload (`{"authorization": "Bearer sk-..."}`)
//! or, failing that, the upgrade request's `Authorization` header. A missing or bad key
//! closes the socket with 4403 (Forbidden); a `subscribe` before the connection is
//! acknowledged with 4401 (Unauthorized), as the protocol says. The server pings every
//! `WS_PING_SECS`; a connection that sends nothing (not even a pong) for two of them is
//! closed (4408), and one whose key was revoked or expired since is closed with 4403 at the
//! next ping. Only subscriptions run here: a query or mutation gets an `error` message
//! (`BAD_REQUEST`) pointing to `POST /graphql`, where the request limits apply.
use std::sync::Arc;
use std::time::Instant;

use async_graphql::Data;
use async_graphql::http::{WebSocket as GraphqlWebSocket, WebSocketProtocols, WsMessage};
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::http::HeaderMap;
use axum::response::Response;
use futures::{FutureExt, SinkExt, StreamExt};

use crate::auth::{AuthRejection, Principal};
use crate::graphql::{ConnectionSubscriptions, Loaders};
use crate::startup::AppState;

/// Most messages written at once.
const BURST: usize = 64;

/// The subprotocol served.
pub const PROTOCOL: &str = "graphql-transport-ws";

/// Close codes of `graphql-transport-ws`.
mod close {
    pub const UNAUTHORIZED: u16 = 4401;
    pub const FORBIDDEN: u16 = 4403;
    pub const TIMEOUT: u16 = 4408;
}

/// Upgrades `GET /graphql` to a `graphql-transport-ws` connection.
pub fn upgrade(state: AppState, headers: &HeaderMap, upgrade: WebSocketUpgrade) -> Response {
    let authorization = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    // A client sends small messages (a query is at most MAX_QUERY_BYTES): small buffers
    // keep 1,000 idle connections in a few MiB, and a large message is refused.
    let largest = state
        .limits
        .max_query_bytes
        .saturating_mul(2)
        .max(16 * 1024);
    upgrade
        .protocols([PROTOCOL])
        .read_buffer_size(4 * 1024)
        .write_buffer_size(8 * 1024)
        .max_message_size(largest)
        .max_frame_size(largest)
        .on_upgrade(move |socket| serve(state, socket, authorization))
}

/// The key of a `connection_init` payload, else of the upgrade request.
fn authorization_of(payload: &serde_json::Value, header: Option<String>) -> Option<String> {
    payload
        .get("authorization")
        .or_else(|| payload.get("Authorization"))
        .and_then(|v| v.as_str())
        .map(str::to_string)
        .or(header)
}

async fn serve(state: AppState, socket: WebSocket, header: Option<String>) {
    let (mut sink, stream) = socket.split();
    let last_heard = Arc::new(std::sync::Mutex::new(Instant::now()));
    let heard = last_heard.clone();
    // Queries and mutations are refused here (answered on `refusals`): over HTTP they have
    // the request timeout, metrics and batch limits; a socket would run any number at once.
    let (refuse, mut refusals) = tokio::sync::mpsc::unbounded_channel::<String>();
    let input = stream
        .take_while(|message| {
            futures::future::ready(!matches!(message, Ok(Message::Close(_)) | Err(_)))
        })
        .filter_map(move |message| {
            if let Ok(mut at) = heard.lock() {
                *at = Instant::now();
            }
            let bytes = match message {
                Ok(Message::Text(text)) => Some(text.as_str().as_bytes().to_vec()),
                Ok(Message::Binary(bytes)) => Some(bytes.to_vec()),
                _ => None,
            };
            futures::future::ready(match bytes.as_deref().and_then(refusal) {
                Some(answer) => {
                    let _ = refuse.send(answer);
                    None
                }
                None => bytes,
            })
        });
    let auth = state.auth.clone();
    let db = state.db.clone();
    // The key the connection was accepted with, checked again at every ping (a revoked or
    // expired key closes it).
    let accepted: Arc<std::sync::Mutex<Option<String>>> = Arc::default();
    let accepted_key = accepted.clone();
    let mut graphql =
        GraphqlWebSocket::new(state.schema.clone(), input, WebSocketProtocols::GraphQLWS)
            .on_connection_init(move |payload| async move {
                let authorization = authorization_of(&payload, header);
                if let Ok(mut key) = accepted_key.lock() {
                    key.clone_from(&authorization);
                }
                let principal: Principal = match auth.verify(authorization.as_deref()).await {
                    Ok(principal) => principal,
                    Err(AuthRejection::Unauthenticated(reason)) => {
                        return Err(async_graphql::Error::new(format!("Forbidden: {reason}")));
                    }
                    Err(_) => {
                        return Err(async_graphql::Error::new(
                            "Forbidden: the API key could not be checked; try again",
                        ));
                    }
                };
                let mut data = Data::default();
                data.insert(Arc::new(Loaders::uncached(&db, principal.tenant)));
                data.insert(Arc::new(ConnectionSubscriptions::default()));
                data.insert(principal);
                Ok(data)
            })
            .boxed();
    // Operations that ended in an `error` message (no `complete` follows one).
    let mut failed = std::collections::HashSet::new();
    let mut pending_close: Option<(u16, String)> = None;
    let period = state.ws_ping;
    let mut ping = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    loop {
        tokio::select! {
            Some(answer) = refusals.recv() => {
                if sink.send(Message::Text(answer.into())).await.is_err() {
                    return;
                }
            }
            message = graphql.next() => match message {
                Some(WsMessage::Text(text)) => {
                    // Messages that are ready together go out in one write (a burst of
                    // changes is not one system call each).
                    let mut ready = vec![text];
                    while ready.len() < BURST {
                        match graphql.next().now_or_never() {
                            Some(Some(WsMessage::Text(text))) => ready.push(text),
                            Some(Some(WsMessage::Close(code, reason))) => {
                                pending_close = Some((code, reason));
                                break;
                            }
                            Some(None) => {
                                pending_close = Some((1000, String::new()));
                                break;
                            }
                            None => break,
                        }
                    }
                    for text in ready {
                        let Some(text) = as_protocol_says(text, &mut failed) else { continue };
                        if sink.feed(Message::Text(text.into())).await.is_err() {
                            return;
                        }
                    }
                    if sink.flush().await.is_err() {
                        return;
                    }
                    if let Some((code, reason)) = pending_close.take() {
                        let _ = sink.send(Message::Close(Some(CloseFrame { code, reason: reason.into() }))).await;
                        return;
                    }
                }
                Some(WsMessage::Close(code, reason)) => {
                    let code = match code {
                        // async-graphql's codes for a refused init and a subscribe before it.
                        1002 if reason.starts_with("Forbidden") => close::FORBIDDEN,
                        1011 => close::UNAUTHORIZED,
                        other => other,
                    };
                    let reason = if code == close::UNAUTHORIZED { "Unauthorized".to_string() } else { reason };
                    let _ = sink.send(Message::Close(Some(CloseFrame { code, reason: reason.into() }))).await;
                    return;
                }
                None => {
                    // The client closed (or stopped): answer its close handshake.
                    let _ = sink.send(Message::Close(Some(CloseFrame { code: 1000, reason: "".into() }))).await;
                    return;
                }
            },
            _ = ping.tick() => {
                let key = accepted.lock().ok().and_then(|k| k.clone());
                if key.is_some()
                    && let Err(AuthRejection::Unauthenticated(reason)) =
                        state.auth.verify(key.as_deref()).await
                {
                    let _ = sink.send(Message::Close(Some(CloseFrame {
                        code: close::FORBIDDEN,
                        reason: format!("Forbidden: {reason}").into(),
                    }))).await;
                    return;
                }
                let idle = last_heard.lock().map(|at| at.elapsed()).unwrap_or_default();
                if idle > period * 2 {
                    let _ = sink.send(Message::Close(Some(CloseFrame {
                        code: close::TIMEOUT,
                        reason: "no answer to pings".into(),
                    }))).await;
                    return;
                }
                if sink.send(Message::Ping(Vec::new().into())).await.is_err() {
                    return;
                }
            }
        }
    }
}

/// The `error` answer to a `subscribe` message whose operation is a query or a mutation
/// (those go to `POST /graphql`); `None` for every other message (a document that does not
/// parse is left to the GraphQL layer, which reports it).
fn refusal(message: &[u8]) -> Option<String> {
    use async_graphql::parser::types::{DocumentOperations, OperationType};
    let message: serde_json::Value = serde_json::from_slice(message).ok()?;
    if message["type"] != "subscribe" {
        return None;
    }
    let query = message["payload"]["query"].as_str()?;
    let document = async_graphql::parser::parse_query(query).ok()?;
    let name = message["payload"]["operationName"].as_str();
    let ty = match (&document.operations, name) {
        (DocumentOperations::Single(op), _) => op.node.ty,
        (DocumentOperations::Multiple(ops), Some(name)) => ops.get(name)?.node.ty,
        (DocumentOperations::Multiple(ops), None) if ops.len() == 1 => ops.values().next()?.node.ty,
        _ => return None,
    };
    if ty == OperationType::Subscription {
        return None;
    }
    Some(
        serde_json::json!({
            "id": message["id"],
            "type": "error",
            "payload": [{
                "message": "only subscriptions run over WebSocket; send queries and mutations to POST /graphql",
                "extensions": { "code": crate::code::Code::BadRequest.as_str() },
            }],
        })
        .to_string(),
    )
}

/// async-graphql sends an operation that fails before it runs (validation, a refused
/// scope, a resolver error) as a `next` with `data: null` and then `complete`;
/// `graphql-transport-ws` says `error` with the errors, and no `complete` after it.
fn as_protocol_says(
    text: String,
    failed: &mut std::collections::HashSet<String>,
) -> Option<String> {
    // Most messages are data: only those that may be errors or completions are parsed.
    if !text.contains("\"errors\"") && !text.contains("\"complete\"") {
        return Some(text);
    }
    let Ok(message) = serde_json::from_str::<serde_json::Value>(&text) else {
        return Some(text);
    };
    let id = message["id"].as_str().unwrap_or_default().to_string();
    match message["type"].as_str() {
        Some("next")
            if message["payload"]["data"].is_null()
                && message["payload"]["errors"]
                    .as_array()
                    .is_some_and(|e| !e.is_empty()) =>
        {
            let error = serde_json::json!({
                "id": id,
                "type": "error",
                "payload": message["payload"]["errors"],
            });
            failed.insert(id);
            Some(error.to_string())
        }
        Some("complete") if failed.remove(&id) => None,
        _ => Some(text),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_subscriptions_are_taken() {
        let subscribe = |query: &str| {
            serde_json::json!({ "id": "7", "type": "subscribe", "payload": { "query": query } })
                .to_string()
        };
        let refused = refusal(subscribe("{ contacts { totalCount } }").as_bytes());
        let refused: serde_json::Value =
            serde_json::from_str(&refused.unwrap_or_default()).unwrap_or_default();
        assert_eq!(refused["type"], "error");
        assert_eq!(refused["id"], "7");
        assert_eq!(refused["payload"][0]["extensions"]["code"], "BAD_REQUEST");
        assert!(refusal(subscribe("mutation { x }").as_bytes()).is_some());
        assert!(
            refusal(subscribe("subscription { contactChanged { kind } }").as_bytes()).is_none()
        );
        // Not parsable, or not a subscribe: the GraphQL layer answers.
        assert!(refusal(subscribe("{ broken").as_bytes()).is_none());
        assert!(refusal(br#"{"type":"ping"}"#).is_none());
    }

    #[test]
    fn an_operation_that_fails_is_an_error_without_complete() {
        let mut failed = std::collections::HashSet::new();
        let next =
            r#"{"id":"1","type":"next","payload":{"data":null,"errors":[{"message":"no"}]}}"#;
        let error: serde_json::Value =
            serde_json::from_str(&as_protocol_says(next.into(), &mut failed).unwrap_or_default())
                .unwrap_or_default();
        assert_eq!(error["type"], "error");
        assert_eq!(error["payload"][0]["message"], "no");
        assert_eq!(
            as_protocol_says(r#"{"id":"1","type":"complete"}"#.into(), &mut failed),
            None
        );
        let data = r#"{"id":"2","type":"next","payload":{"data":{"x":1}}}"#;
        assert_eq!(
            as_protocol_says(data.into(), &mut failed).as_deref(),
            Some(data)
        );
        let done = r#"{"id":"2","type":"complete"}"#;
        assert_eq!(
            as_protocol_says(done.into(), &mut failed).as_deref(),
            Some(done)
        );
    }
}
