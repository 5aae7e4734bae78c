//! The WebSocket opening handshake on the server (RFC 6455 §4.2), over HTTP/1.1.
//!
//! Done here rather than by axum's `WebSocketUpgrade` because the connection needs the
//! socket itself (`tokio_tungstenite::WebSocketStream::get_mut`): a burst of subscription
//! messages is written as ready frames in one write (`http::websocket`), which axum's
//! `WebSocket` does not allow.
use axum::body::Body;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Version, header};
use axum::response::{IntoResponse, Response};
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};

/// A WebSocket connection on `/graphql`, once upgraded.
pub type Socket = WebSocketStream<TokioIo<hyper::upgrade::Upgraded>>;

/// A valid opening handshake, not answered yet.
pub struct Handshake {
    key: HeaderValue,
    on_upgrade: OnUpgrade,
    /// The subprotocol to answer with: `protocol` when the client offered it.
    protocol: Option<HeaderValue>,
}

/// Why a request is not a WebSocket opening handshake, answered as RFC 6455 §4.2.2 says.
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    /// 405: the handshake is a `GET`.
    MethodNotGet,
    /// 400: `Connection` lacks `upgrade`, `Upgrade` is not `websocket`, or there is no
    /// `Sec-WebSocket-Key`.
    BadRequest(&'static str),
    /// 426 (with `Upgrade: websocket` and `Sec-WebSocket-Version: 13`, as every 426 here):
    /// another version was asked for.
    UnsupportedVersion,
    /// 426: the connection cannot be upgraded (not HTTP/1.1).
    NotUpgradable,
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let (status, text) = match self {
            Self::MethodNotGet => (
                StatusCode::METHOD_NOT_ALLOWED,
                "a WebSocket handshake is a GET",
            ),
            Self::BadRequest(text) => (StatusCode::BAD_REQUEST, text),
            Self::UnsupportedVersion => (
                StatusCode::UPGRADE_REQUIRED,
                "only WebSocket version 13 is served",
            ),
            Self::NotUpgradable => (
                StatusCode::UPGRADE_REQUIRED,
                "WebSocket connections are upgraded from HTTP/1.1",
            ),
        };
        let mut response = (status, text).into_response();
        if status == StatusCode::UPGRADE_REQUIRED {
            // RFC 9110 §15.5.22: a 426 names the protocol to upgrade to.
            let headers = response.headers_mut();
            headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
            headers.insert(
                header::SEC_WEBSOCKET_VERSION,
                HeaderValue::from_static("13"),
            );
        }
        response
    }
}

/// The items of the comma-separated `name` headers.
fn items(headers: &HeaderMap, name: header::HeaderName) -> impl Iterator<Item = &[u8]> {
    headers
        .get_all(name)
        .into_iter()
        .flat_map(|value| value.as_bytes().split(|&b| b == b','))
        .map(<[u8]>::trim_ascii)
}

/// Whether the `name` headers list `token`, compared case-insensitively (RFC 9110 §7.6.1
/// and §7.8 for `Connection` and `Upgrade`).
fn lists(headers: &HeaderMap, name: header::HeaderName, token: &str) -> bool {
    items(headers, name).any(|item| item.eq_ignore_ascii_case(token.as_bytes()))
}

/// Whether the request asks to become a WebSocket (its `Upgrade` header lists
/// `websocket`); another upgrade, such as HTTP/2's `h2c`, is not answered.
pub fn is_requested(headers: &HeaderMap) -> bool {
    lists(headers, header::UPGRADE, "websocket")
}

impl Handshake {
    /// Checks the opening handshake in `parts` (RFC 6455 §4.2.1), taking its upgrade;
    /// `protocol` is chosen when the client offers it in `Sec-WebSocket-Protocol`.
    ///
    /// # Errors
    /// The [`Refusal`] to answer with.
    pub fn accept(parts: &mut Parts, protocol: &'static str) -> Result<Self, Refusal> {
        if parts.version != Version::HTTP_11 {
            return Err(Refusal::NotUpgradable);
        }
        if parts.method != Method::GET {
            return Err(Refusal::MethodNotGet);
        }
        let headers = &parts.headers;
        if !lists(headers, header::CONNECTION, "upgrade") {
            return Err(Refusal::BadRequest(
                "the Connection header does not include upgrade",
            ));
        }
        if !is_requested(headers) {
            return Err(Refusal::BadRequest("the Upgrade header is not websocket"));
        }
        if headers
            .get(header::SEC_WEBSOCKET_VERSION)
            .map(|v| v.as_bytes())
            != Some(b"13")
        {
            return Err(Refusal::UnsupportedVersion);
        }
        let key = headers
            .get(header::SEC_WEBSOCKET_KEY)
            .cloned()
            .ok_or(Refusal::BadRequest(
                "the Sec-WebSocket-Key header is missing",
            ))?;
        // Subprotocol names are compared as they are (RFC 6455 §4.1).
        let protocol = items(headers, header::SEC_WEBSOCKET_PROTOCOL)
            .any(|item| item == protocol.as_bytes())
            .then(|| HeaderValue::from_static(protocol));
        let on_upgrade = parts
            .extensions
            .remove::<OnUpgrade>()
            .ok_or(Refusal::NotUpgradable)?;
        Ok(Self {
            key,
            on_upgrade,
            protocol,
        })
    }

    /// The `101 Switching Protocols` answer; once the client has it, `serve` runs with the
    /// socket (configured by `config`) in a task of its own.
    pub fn answer<F, Fut>(self, config: WebSocketConfig, serve: F) -> Response
    where
        F: FnOnce(Socket) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        // Base64 is always a valid header value; should it not be, nothing is upgraded.
        let Ok(accept) = HeaderValue::from_str(&derive_accept_key(self.key.as_bytes())) else {
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        };
        let on_upgrade = self.on_upgrade;
        tokio::spawn(async move {
            // A client that goes away before the upgrade completes leaves nothing to serve.
            if let Ok(upgraded) = on_upgrade.await {
                let socket = WebSocketStream::from_raw_socket(
                    TokioIo::new(upgraded),
                    Role::Server,
                    Some(config),
                )
                .await;
                serve(socket).await;
            }
        });
        let mut response = Response::new(Body::empty());
        *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
        let headers = response.headers_mut();
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        headers.insert(header::SEC_WEBSOCKET_ACCEPT, accept);
        if let Some(protocol) = self.protocol {
            headers.insert(header::SEC_WEBSOCKET_PROTOCOL, protocol);
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A valid opening handshake, changed by `change`.
    fn refusal(change: impl FnOnce(&mut Parts)) -> Option<Refusal> {
        let request = axum::http::Request::get("/graphql")
            .version(Version::HTTP_11)
            .header(header::CONNECTION, "keep-alive, Upgrade")
            .header(header::UPGRADE, "websocket")
            .header(header::SEC_WEBSOCKET_VERSION, "13")
            .header(header::SEC_WEBSOCKET_KEY, "dGhlIHNhbXBsZSBub25jZQ==")
            .body(())
            .unwrap_or_default();
        let mut parts = request.into_parts().0;
        change(&mut parts);
        Handshake::accept(&mut parts, "p").err()
    }

    #[test]
    fn a_handshake_is_checked_as_rfc_6455_says() {
        let set = |name, value| {
            move |parts: &mut Parts| {
                parts.headers.insert(name, HeaderValue::from_static(value));
            }
        };
        // Everything right but the upgrade itself, which only a served connection has.
        assert_eq!(refusal(|_| {}), Some(Refusal::NotUpgradable));
        assert_eq!(
            refusal(|p| p.method = Method::POST),
            Some(Refusal::MethodNotGet)
        );
        assert_eq!(
            refusal(|p| p.version = Version::HTTP_10),
            Some(Refusal::NotUpgradable)
        );
        assert!(matches!(
            refusal(set(header::CONNECTION, "close")),
            Some(Refusal::BadRequest(_))
        ));
        assert!(matches!(
            refusal(set(header::UPGRADE, "h2c")),
            Some(Refusal::BadRequest(_))
        ));
        assert_eq!(
            refusal(set(header::SEC_WEBSOCKET_VERSION, "8")),
            Some(Refusal::UnsupportedVersion)
        );
        assert!(matches!(
            refusal(|p| {
                p.headers.remove(header::SEC_WEBSOCKET_KEY);
            }),
            Some(Refusal::BadRequest(_))
        ));
    }

    #[test]
    fn header_lists_are_read_item_by_item() {
        let mut headers = HeaderMap::new();
        headers.append(header::CONNECTION, HeaderValue::from_static("keep-alive"));
        headers.append(header::CONNECTION, HeaderValue::from_static("x , UPGRADE"));
        assert!(lists(&headers, header::CONNECTION, "upgrade"));
        assert!(!lists(&headers, header::CONNECTION, "keep"));
        let items: Vec<&[u8]> = items(&headers, header::CONNECTION).collect();
        assert_eq!(items, [&b"keep-alive"[..], b"x", b"UPGRADE"]);
    }
}
