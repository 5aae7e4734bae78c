//! GraphQL over WebSocket at `/graphql`, with the `graphql-transport-ws` protocol (what the
//! `graphql-ws` client, Apollo Client and urql speak;
//! <https://github.com/enisdenjo/graphql-ws/blob/master/PROTOCOL.md>).
//!
//! The protocol is served here rather than by async-graphql so that subscribers of one
//! operation share its execution across connections (`graphql::subscription_hub`). The
//! messages of a burst of changes are written as ready frames in one buffer, with one write
//! (see [`write_burst`]).
//!
//! - The API key comes in `connection_init`'s payload (`{"authorization": "Bearer sk-..."}`)
//!   or, failing that, the upgrade request's `Authorization` header. A missing or bad key
//!   closes the socket with 4403 (Forbidden).
//! - Protocol violations close it as the protocol says: 4400 for a message that is not one
//!   of the protocol's, 4401 for a `subscribe` before the connection is acknowledged, 4408
//!   without `connection_init` within `WS_PING_SECS`, 4409 for a `subscribe` whose id is in
//!   use, 4429 for a second `connection_init`.
//! - The server pings every `WS_PING_SECS`. A connection that sends nothing (not even a
//!   pong) for two of them is closed (4408). One whose key was revoked or expired since is
//!   closed with 4403 at the next ping.
//! - Only subscriptions run here: a query or mutation gets an `error` message
//!   (`BAD_REQUEST`) pointing to `POST /graphql`, where the request limits apply.
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use futures::stream::{AbortHandle, SelectAll};
use futures::{FutureExt, SinkExt, StreamExt};
use serde::Deserialize;
use tokio::io::AsyncWriteExt;
use tokio_tungstenite::tungstenite::protocol::frame::FrameHeader;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tokio_tungstenite::tungstenite::{self, Message};

use crate::auth::{AuthRejection, Principal};
use crate::graphql::ConnectionSubscriptions;
use crate::graphql::subscription::Slot;
use crate::graphql::subscription_hub::{Batch, Operation, Outgoing};
use crate::startup::AppState;

use super::websocket_upgrade::{Handshake, Socket};

/// Messages after which a connection stops taking more batches before it flushes (a
/// batch is written whole, so a write can hold a few batches more than this).
const BURST: usize = 256;

/// The subprotocol served.
pub const PROTOCOL: &str = "graphql-transport-ws";

/// Close codes of `graphql-transport-ws`.
mod close {
    pub const BAD_REQUEST: u16 = 4400;
    pub const UNAUTHORIZED: u16 = 4401;
    pub const FORBIDDEN: u16 = 4403;
    pub const TIMEOUT: u16 = 4408;
    pub const SUBSCRIBER_EXISTS: u16 = 4409;
    pub const TOO_MANY_INITIALISATION_REQUESTS: u16 = 4429;
}

/// A message from the client.
#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum ClientMessage {
    ConnectionInit {
        #[serde(default)]
        payload: Option<serde_json::Value>,
    },
    Ping {},
    Pong {},
    Subscribe {
        id: String,
        payload: SubscribePayload,
    },
    Complete {
        id: String,
    },
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SubscribePayload {
    query: String,
    #[serde(default)]
    operation_name: Option<String>,
    #[serde(default)]
    variables: serde_json::Value,
}

/// Upgrades `GET /graphql` to a `graphql-transport-ws` connection (a request that is no
/// WebSocket handshake is refused as [`websocket_upgrade::Refusal`] says).
///
/// [`websocket_upgrade::Refusal`]: super::websocket_upgrade::Refusal
pub fn upgrade(state: AppState, parts: &mut Parts) -> Response {
    let handshake = match Handshake::accept(parts, PROTOCOL) {
        Ok(handshake) => handshake,
        Err(refusal) => return refusal.into_response(),
    };
    let authorization = parts
        .headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    // A client sends small messages (a query is at most MAX_QUERY_BYTES): small buffers
    // keep 1,000 idle connections in a few MiB, and a large message is refused. Bursts of
    // subscription messages do not go through tungstenite's write buffer ([`write_burst`]).
    let largest = state
        .limits
        .max_query_bytes
        .saturating_mul(2)
        .max(16 * 1024);
    let config = WebSocketConfig::default()
        .read_buffer_size(4 * 1024)
        .write_buffer_size(8 * 1024)
        .max_message_size(Some(largest))
        .max_frame_size(Some(largest));
    handshake.answer(config, move |socket| serve(state, socket, authorization))
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

/// A subscription as its messages name it, made once when it starts.
struct Tag {
    /// The id the client chose.
    id: String,
    /// Which subscription of this id it is (an id may be reused once completed).
    generation: u64,
    /// The id in JSON.
    id_json: String,
    /// What each of its `next` messages starts with: `{"id":…,"type":"next","payload":`.
    next: String,
}

impl Tag {
    fn new(id: String, id_json: String, generation: u64) -> Self {
        let next = format!(r#"{{"id":{id_json},"type":"next","payload":"#);
        Self {
            id,
            generation,
            id_json,
            next,
        }
    }
}

/// A batch of a subscription's messages, with its tag.
type Tagged = (Arc<Tag>, Batch);

/// One connection's protocol state.
struct Connection {
    state: AppState,
    header: Option<String>,
    /// Whether `connection_init` came (a second one closes the connection).
    initialised: bool,
    /// Who the connection was acknowledged for.
    principal: Option<Principal>,
    /// The authorization it was acknowledged with, checked again at every ping.
    authorization: Option<String>,
    /// Running subscriptions by id: their generation (an id may be reused once completed),
    /// how to stop them, and their slot (freed as soon as the entry goes).
    active: HashMap<String, (u64, AbortHandle, Slot)>,
    generation: u64,
    outgoing: SelectAll<futures::stream::BoxStream<'static, Tagged>>,
    counted: Arc<ConnectionSubscriptions>,
}

/// What a client message asks of the connection.
enum Answer {
    Nothing,
    Send(String),
    Close(u16, String),
}

impl Connection {
    async fn on_text(&mut self, text: &str) -> Answer {
        let Ok(message) = serde_json::from_str::<ClientMessage>(text) else {
            return Answer::Close(close::BAD_REQUEST, "Invalid message received".into());
        };
        match message {
            ClientMessage::ConnectionInit { payload } => {
                if self.initialised {
                    return Answer::Close(
                        close::TOO_MANY_INITIALISATION_REQUESTS,
                        "Too many initialisation requests".into(),
                    );
                }
                self.initialised = true;
                let authorization =
                    authorization_of(&payload.unwrap_or_default(), self.header.take());
                match self.state.auth.verify(authorization.as_deref()).await {
                    Ok(principal) => {
                        self.principal = Some(principal);
                        self.authorization = authorization;
                        Answer::Send(r#"{"type":"connection_ack"}"#.into())
                    }
                    Err(AuthRejection::Unauthenticated(reason)) => {
                        Answer::Close(close::FORBIDDEN, format!("Forbidden: {reason}"))
                    }
                    Err(_) => Answer::Close(
                        close::FORBIDDEN,
                        "Forbidden: the API key could not be checked; try again".into(),
                    ),
                }
            }
            ClientMessage::Ping {} => Answer::Send(r#"{"type":"pong"}"#.into()),
            ClientMessage::Pong {} => Answer::Nothing,
            ClientMessage::Subscribe { id, payload } => self.subscribe(id, payload),
            ClientMessage::Complete { id } => {
                if let Some((_, running, _slot)) = self.active.remove(&id) {
                    running.abort();
                }
                Answer::Nothing
            }
        }
    }

    fn subscribe(&mut self, id: String, payload: SubscribePayload) -> Answer {
        let Some(principal) = &self.principal else {
            return Answer::Close(close::UNAUTHORIZED, "Unauthorized".into());
        };
        if self.active.contains_key(&id) {
            return Answer::Close(
                close::SUBSCRIBER_EXISTS,
                format!("Subscriber for {id} already exists"),
            );
        }
        let id_json = serde_json::Value::from(id.as_str()).to_string();
        let operation = Operation {
            query: payload.query,
            operation_name: payload.operation_name,
            variables: payload.variables,
        };
        match self
            .state
            .subscriptions
            .subscribe(principal, &self.counted, operation)
        {
            Ok((stream, slot)) => {
                self.generation += 1;
                let tag = Arc::new(Tag::new(id.clone(), id_json, self.generation));
                let (stream, running) = futures::stream::abortable(stream);
                self.active.insert(id, (self.generation, running, slot));
                self.outgoing
                    .push(stream.map(move |batch| (tag.clone(), batch)).boxed());
                Answer::Nothing
            }
            Err(Outgoing::Error(errors)) => Answer::Send(message(&id_json, "error", Some(&errors))),
            Err(_) => Answer::Nothing,
        }
    }

    /// Appends the frame of one of a subscription's messages to `frames`; a subscription
    /// that ends is forgotten.
    fn frame(&mut self, tag: &Tag, outgoing: &Outgoing, frames: &mut Vec<u8>) {
        if !matches!(outgoing, Outgoing::Next(_))
            && self
                .active
                .get(&tag.id)
                .is_some_and(|(g, _, _)| *g == tag.generation)
        {
            self.active.remove(&tag.id);
        }
        push_message(frames, tag, outgoing);
    }
}

/// Appends the frame of `tag`'s message for `outgoing` to `frames`.
fn push_message(frames: &mut Vec<u8>, tag: &Tag, outgoing: &Outgoing) {
    let (kind, payload) = match outgoing {
        // Once per change and subscriber: the message's start is made already.
        Outgoing::Next(payload) => return push_frame(frames, &[&tag.next, payload, "}"]),
        Outgoing::Error(errors) => ("error", Some(&**errors)),
        Outgoing::Complete => ("complete", None),
    };
    push_frame(frames, &message_parts(&tag.id_json, kind, payload));
}

/// The pieces of `{"id":…,"type":…,"payload":…}`, from an id already in JSON and a payload
/// in JSON (empty pieces at the end when there is no payload).
fn message_parts<'a>(id_json: &'a str, kind: &'a str, payload: Option<&'a str>) -> [&'a str; 7] {
    match payload {
        Some(payload) if !payload.is_empty() => [
            r#"{"id":"#,
            id_json,
            r#","type":""#,
            kind,
            r#"","payload":"#,
            payload,
            "}",
        ],
        _ => [r#"{"id":"#, id_json, r#","type":""#, kind, r#""}"#, "", ""],
    }
}

/// `{"id":…,"type":…,"payload":…}` as one string.
fn message(id_json: &str, kind: &str, payload: Option<&str>) -> String {
    message_parts(id_json, kind, payload).concat()
}

/// Appends one unmasked text frame (RFC 6455 §5.2; a server's frames are not masked) whose
/// payload is `parts` one after the other. No allocation but the buffer's growth.
fn push_frame(frames: &mut Vec<u8>, parts: &[&str]) {
    let length = parts.iter().map(|p| p.len()).sum::<usize>();
    let header = FrameHeader {
        opcode: OpCode::Data(Data::Text),
        ..FrameHeader::default()
    };
    // Writing to a Vec cannot fail.
    let _ = header.format(length as u64, frames);
    for part in parts {
        frames.extend_from_slice(part.as_bytes());
    }
}

/// What woke a connection up.
enum Event {
    Incoming(Option<Result<Message, tungstenite::Error>>),
    Outgoing(Tagged),
    InitTimeout,
    Ping,
}

/// Writes the protocol messages of `first` and of the batches ready with it (until
/// [`BURST`] messages are written): a burst of changes is one buffer of frames and one
/// write, not a message each. `Err` when the socket failed.
///
/// The frames go to the socket itself, not through tungstenite (which would copy each
/// message into its own buffer, a frame at a time). This holds because:
/// - tungstenite writes only control frames and single messages here, from `serve`'s one
///   task (the socket is not split), and its buffer is flushed first, so that a frame of
///   its own (a `pong` it queued while reading) is written whole before these;
/// - no extension is negotiated (the handshake answers none), so a frame is its bare
///   header and payload;
/// - a failed or cancelled write ends the connection (a frame may be half written).
async fn write_burst(
    connection: &mut Connection,
    socket: &mut Socket,
    first: Tagged,
) -> Result<(), std::io::Error> {
    let mut frames = Vec::with_capacity(16 * 1024);
    let mut written = 0;
    let mut next = Some(first);
    while let Some((tag, batch)) = next.take() {
        for outgoing in batch.iter().flat_map(|messages| messages.iter()) {
            connection.frame(&tag, outgoing, &mut frames);
            written += 1;
        }
        if written >= BURST {
            break;
        }
        next = connection.outgoing.next().now_or_never().flatten();
    }
    socket.flush().await.map_err(std::io::Error::other)?;
    let stream = socket.get_mut();
    stream.write_all(&frames).await?;
    stream.flush().await
}

/// Sends one message through tungstenite: whether it was written within `period` (a
/// client that stops reading gets no longer than that, as for bursts).
async fn send(socket: &mut Socket, message: Message, period: std::time::Duration) -> bool {
    matches!(
        tokio::time::timeout(period, socket.send(message)).await,
        Ok(Ok(()))
    )
}

async fn serve(state: AppState, mut socket: Socket, header: Option<String>) {
    let period = state.ws_ping;
    let mut connection = Connection {
        state,
        header,
        initialised: false,
        principal: None,
        authorization: None,
        active: HashMap::new(),
        generation: 0,
        outgoing: SelectAll::new(),
        counted: Arc::default(),
    };
    let mut last_heard = Instant::now();
    let init_deadline = tokio::time::sleep(period);
    tokio::pin!(init_deadline);
    let mut ping = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    let closing = |code: u16, reason: String| {
        Message::Close(Some(CloseFrame {
            code: code.into(),
            reason: reason.into(),
        }))
    };
    loop {
        // Only reading borrows the socket while waiting (it is cancel-safe); each write
        // happens after, so the socket is not split (no lock per message).
        let event = tokio::select! {
            message = socket.next() => Event::Incoming(message),
            Some(tagged) = connection.outgoing.next(), if !connection.outgoing.is_empty() => {
                Event::Outgoing(tagged)
            }
            _ = &mut init_deadline, if !connection.initialised => Event::InitTimeout,
            _ = ping.tick() => Event::Ping,
        };
        match event {
            Event::Incoming(message) => {
                last_heard = Instant::now();
                let answer = match message {
                    Some(Ok(Message::Text(text))) => connection.on_text(text.as_str()).await,
                    Some(Ok(Message::Binary(bytes))) => match std::str::from_utf8(&bytes) {
                        Ok(text) => connection.on_text(text).await,
                        Err(_) => {
                            Answer::Close(close::BAD_REQUEST, "Invalid message received".into())
                        }
                    },
                    Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => {
                        Answer::Nothing
                    }
                    // The client closed (or the socket failed): tungstenite has queued the
                    // answer to its close handshake; the sink's `close` flushes it (the
                    // socket's own `close` would send a second Close, which it refuses).
                    Some(Ok(Message::Close(_))) | Some(Err(_)) | None => {
                        let _ = tokio::time::timeout(period, SinkExt::close(&mut socket)).await;
                        return;
                    }
                };
                match answer {
                    Answer::Nothing => {}
                    Answer::Send(text) => {
                        if !send(&mut socket, Message::Text(text.into()), period).await {
                            return;
                        }
                    }
                    Answer::Close(code, reason) => {
                        send(&mut socket, closing(code, reason), period).await;
                        return;
                    }
                }
            }
            Event::Outgoing(tagged) => {
                // A client that stops reading would hold the connection (and its
                // subscriptions' slots) for ever: it gets one ping period.
                let written =
                    tokio::time::timeout(period, write_burst(&mut connection, &mut socket, tagged))
                        .await;
                if !matches!(written, Ok(Ok(()))) {
                    return;
                }
            }
            Event::InitTimeout => {
                let timeout = closing(close::TIMEOUT, "Connection initialisation timeout".into());
                send(&mut socket, timeout, period).await;
                return;
            }
            Event::Ping => {
                if connection.authorization.is_some()
                    && let Err(AuthRejection::Unauthenticated(reason)) = connection
                        .state
                        .auth
                        .verify(connection.authorization.as_deref())
                        .await
                {
                    let forbidden = closing(close::FORBIDDEN, format!("Forbidden: {reason}"));
                    send(&mut socket, forbidden, period).await;
                    return;
                }
                if last_heard.elapsed() > period * 2 {
                    let silent = closing(close::TIMEOUT, "no answer to pings".into());
                    send(&mut socket, silent, period).await;
                    return;
                }
                if !send(&mut socket, Message::Ping(Default::default()), period).await {
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_the_protocol_s() {
        let id = serde_json::Value::from("a\"b").to_string();
        let next: serde_json::Value =
            serde_json::from_str(&message(&id, "next", Some(r#"{"data":{"x":1}}"#)))
                .unwrap_or_default();
        assert_eq!(next["id"], "a\"b");
        assert_eq!(next["type"], "next");
        assert_eq!(next["payload"]["data"]["x"], 1);
        let done: serde_json::Value =
            serde_json::from_str(&message(&id, "complete", None)).unwrap_or_default();
        assert_eq!(
            done,
            serde_json::json!({ "id": "a\"b", "type": "complete" })
        );
    }

    #[test]
    fn a_burst_is_the_protocol_s_messages_in_text_frames() {
        // Payloads whose frames have each length form: 7 bits, 16 bits, 64 bits.
        let payload = |n: usize| format!(r#"{{"data":{{"x":"{}"}}}}"#, "y".repeat(n));
        let (short, middle, long) = (payload(1), payload(1_000), payload(70_000));
        let sent = [
            Outgoing::Next(short.as_str().into()),
            Outgoing::Next(middle.as_str().into()),
            Outgoing::Next(long.as_str().into()),
            Outgoing::Error(r#"[{"message":"no"}]"#.into()),
            Outgoing::Complete,
        ];
        let tag = Tag::new("a\"b".into(), r#""a\"b""#.into(), 1);
        let mut frames = Vec::new();
        for outgoing in &sent {
            push_message(&mut frames, &tag, outgoing);
        }
        let mut cursor = std::io::Cursor::new(&frames[..]);
        let mut received = Vec::new();
        while (cursor.position() as usize) < frames.len() {
            let (header, length) = FrameHeader::parse(&mut cursor)
                .ok()
                .flatten()
                .unwrap_or_else(|| panic!("a frame header after {received:?}"));
            assert!(header.is_final && header.mask.is_none());
            assert_eq!(header.opcode, OpCode::Data(Data::Text));
            let start = cursor.position() as usize;
            let text = &frames[start..start + length as usize];
            received.push(serde_json::from_slice::<serde_json::Value>(text).unwrap_or_default());
            cursor.set_position((start + length as usize) as u64);
        }
        let json = |text: &str| serde_json::from_str::<serde_json::Value>(text).unwrap_or_default();
        assert_eq!(
            received,
            [
                serde_json::json!({ "id": "a\"b", "type": "next", "payload": json(&short) }),
                serde_json::json!({ "id": "a\"b", "type": "next", "payload": json(&middle) }),
                serde_json::json!({ "id": "a\"b", "type": "next", "payload": json(&long) }),
                serde_json::json!({ "id": "a\"b", "type": "error", "payload": [{ "message": "no" }] }),
                serde_json::json!({ "id": "a\"b", "type": "complete" }),
            ]
        );
    }

    #[test]
    fn client_messages_parse_as_the_protocol_says() {
        let parse = |text: &str| serde_json::from_str::<ClientMessage>(text).ok();
        assert!(matches!(
            parse(r#"{"type":"connection_init"}"#),
            Some(ClientMessage::ConnectionInit { payload: None })
        ));
        assert!(matches!(
            parse(
                r#"{"type":"subscribe","id":"1","payload":{"query":"subscription { x }","variables":null}}"#
            ),
            Some(ClientMessage::Subscribe { .. })
        ));
        assert!(matches!(
            parse(r#"{"type":"ping","payload":{"a":1}}"#),
            Some(ClientMessage::Ping {})
        ));
        assert!(parse(r#"{"type":"subscribe","id":"1"}"#).is_none());
        assert!(parse(r#"{"type":"next","id":"1","payload":{}}"#).is_none());
        assert!(parse("not json").is_none());
    }
}
