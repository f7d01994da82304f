//! The WeCom device protocol: one WebSocket per terminal, one JSON object
//! per text frame. Requests are `{cmd, headers:{req_id}, body}`; replies
//! echo `req_id` with `errcode`/`errmsg` and carry no `cmd`; pushes are
//! `push_*` frames. A frame that cannot be read as a request gets a
//! connection-level error (no `headers`) and the connection keeps going.
//! See docs/device-protocol.md for the choices the platform leaves open.

pub mod admission;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::Response;
use axum::routing::get;
use futures_util::{SinkExt, StreamExt};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

use self::admission::{Allowance, AnonymousSlot, Metered, UNMETERED};
use super::AppState;
use super::client::ClientIp;
use super::ratelimit::RateLimiter;
use crate::domain::Core;
use crate::domain::devices::hub::{Link, Outgoing, QUEUE};
use crate::domain::devices::sync::{DEFAULT_PAGE, flag, int_field, user_items};
use crate::domain::devices::{DeviceUser, Session, Subscription, clip, codes};
use crate::domain::guard::ClientKey;
use crate::model::error::{Error, Result};

/// Replies one connection may have queued, in KiB (a full page of
/// templates is about 6.5 MiB; one larger frame still goes out alone).
const REPLY_BUDGET_KIB: usize = 16 * 1024;

/// Refused credentials (a `register` signature, an active code, a secret)
/// one connection may present before it is closed: a terminal that fails
/// retries on a new connection after a pause, a guesser is made to pay
/// for a connection (and its pre-login place) every few guesses.
const MAX_FAILED_BRING_UPS: u32 = 5;

pub fn router() -> Router<AppState> {
    // The platform's URL is the host root; firmware seen in the wild dials
    // `/websocket`.
    Router::new()
        .route("/", get(upgrade))
        .route("/websocket", get(upgrade))
}

/// The WebSocket upgrade, performed here rather than by axum so that the
/// socket under the WebSocket library is [`Metered`] until login (see
/// [`admission`]).
async fn upgrade(
    State(state): State<AppState>,
    ClientIp(client): ClientIp,
    mut req: axum::extract::Request,
) -> Result<Response> {
    let core = state.core.clone();
    let sec = &core.config.security;
    admission::check_origin(req.headers(), &sec.device_origins)
        .inspect_err(|_| core.metrics.attempt_refused("device_connect", "origin"))?;
    let accept = admission::accept_key(admission::upgrade_key(req.headers())?);
    let slot = state
        .device_anonymous
        .admit(ClientKey::of(client))
        .map_err(|msg| {
            core.metrics
                .attempt_refused("device_connect", "prelogin_cap");
            Error::Throttled {
                msg,
                retry_after_secs: 5,
            }
        })?;
    let on_upgrade = req
        .extensions_mut()
        .remove::<hyper::upgrade::OnUpgrade>()
        .ok_or_else(|| {
            Error::param(
                "this endpoint takes a WebSocket upgrade: the connection cannot be upgraded",
            )
        })?;
    let limiter = state.limiter.clone();
    tokio::spawn(async move {
        let upgraded = match on_upgrade.await {
            Ok(u) => u,
            Err(e) => {
                tracing::debug!(error = %e, "device upgrade failed");
                return;
            }
        };
        let sec = &core.config.security;
        let allowance = Allowance::new(sec.prelogin_bytes.max(1024));
        let max = core.config.device.max_frame_mib.max(1) << 20;
        let config = WebSocketConfig::default()
            .max_message_size(Some(max))
            .max_frame_size(Some(max))
            // Each connection keeps this much for reading; a fleet of
            // idle terminals should not cost 128 KiB each.
            .read_buffer_size(16 * 1024);
        let io = Metered::new(TokioIo::new(upgraded), allowance.clone());
        let socket = WebSocketStream::from_raw_socket(io, Role::Server, Some(config)).await;
        let admitted = Admitted {
            client,
            slot,
            allowance,
            limiter,
        };
        serve(core, socket, admitted).await
    });
    Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header(header::CONNECTION, "upgrade")
        .header(header::UPGRADE, "websocket")
        .header(header::SEC_WEBSOCKET_ACCEPT, accept)
        .body(Body::empty())
        .map_err(|e| Error::internal(e.to_string()))
}

/// What the upgrade settled about a connection.
struct Admitted {
    client: IpAddr,
    slot: AnonymousSlot,
    allowance: Allowance,
    limiter: Arc<RateLimiter>,
}

/// The state of one connection.
struct Conn {
    core: Arc<Core>,
    id: u64,
    tx: mpsc::Sender<Outgoing>,
    /// How the hub reaches this connection.
    link: Link,
    /// KiB of replies queued but not yet written: a device that sends
    /// requests without reading replies waits instead of growing memory.
    budget: Arc<tokio::sync::Semaphore>,
    /// The device named by `register`/`active` on this connection.
    sn: Option<String>,
    session: Option<Session>,
    client: IpAddr,
    limiter: Arc<RateLimiter>,
    /// Held until the connection proves who it is.
    anonymous: Option<AnonymousSlot>,
    /// What the peer may still send before login.
    allowance: Allowance,
    failed_bring_ups: u32,
}

async fn serve(
    core: Arc<Core>,
    socket: WebSocketStream<Metered<TokioIo<hyper::upgrade::Upgraded>>>,
    admitted: Admitted,
) {
    let (mut sink, mut stream) = socket.split();
    let (tx, mut rx) = mpsc::channel::<Outgoing>(QUEUE);
    // One writer, so replies and pushes never interleave inside a frame.
    // A device that stops reading is cut off rather than held forever.
    // The allowance per frame grows with its size, so slow links can still
    // receive full pages.
    let idle_secs = core.config.device.idle_timeout_secs.max(1);
    let rate = core.config.device.min_send_rate_kib.max(1) * 1024;
    let write_timeout = move |len: usize| Duration::from_secs(idle_secs + len as u64 / rate);
    let writer = tokio::spawn(async move {
        while let Some(mut out) = rx.recv().await {
            // The permit of a held frame is released once it is written.
            let mut _permit = None;
            if let Outgoing::Held(inner, permit) = out {
                out = *inner;
                _permit = Some(permit);
            }
            let msg = match out {
                Outgoing::Text(t) => Message::Text(Utf8Bytes::from(t.as_ref())),
                Outgoing::Binary(b) => Message::Binary(b),
                Outgoing::Close(code, reason) => {
                    let close = Message::Close(Some(CloseFrame {
                        code: code.into(),
                        reason: reason.into(),
                    }));
                    let _ = tokio::time::timeout(write_timeout(0), sink.send(close)).await;
                    break;
                }
                Outgoing::Held(..) => continue, // never nested
            };
            let len = match &msg {
                Message::Text(t) => t.len(),
                Message::Binary(b) => b.len(),
                _ => 0,
            };
            match tokio::time::timeout(write_timeout(len), sink.send(msg)).await {
                Ok(Ok(())) => {}
                _ => break,
            }
        }
    });
    let idle = Duration::from_secs(core.config.device.idle_timeout_secs.max(1));
    let prelogin_bytes = core.config.security.prelogin_bytes.max(1024);
    let deadline_secs = core.config.security.prelogin_deadline_secs.max(1);
    let deadline = tokio::time::sleep(Duration::from_secs(deadline_secs));
    tokio::pin!(deadline);
    let id = core.hub.new_connection_id();
    let (link, mut kill) = Link::new(id, tx.clone());
    let mut conn = Conn {
        id,
        core,
        tx,
        link,
        budget: Arc::new(tokio::sync::Semaphore::new(REPLY_BUDGET_KIB)),
        sn: None,
        session: None,
        client: admitted.client,
        limiter: admitted.limiter,
        anonymous: Some(admitted.slot),
        allowance: admitted.allowance,
        failed_bring_ups: 0,
    };
    loop {
        let next = tokio::select! {
            n = tokio::time::timeout(idle, stream.next()) => n,
            // The writer gave up on the device.
            () = conn.tx.closed() => break,
            // Replaced by a newer connection, unbound, or the server stops.
            _ = kill.changed() => {
                let (code, reason) = kill.borrow().unwrap_or((1000, ""));
                conn.send(Outgoing::Close(code, reason)).await;
                break;
            }
            // An anonymous connection has a short time to prove itself.
            () = &mut deadline, if conn.anonymous.is_some() => {
                conn.core.metrics.attempt_refused("device_connect", "prelogin_deadline");
                conn.send(Outgoing::Close(1008, "not registered within the pre-login deadline"))
                    .await;
                break;
            }
        };
        match next {
            Err(_) => {
                conn.send(Outgoing::Close(1001, "no frame within the idle timeout"))
                    .await;
                break;
            }
            Ok(None) | Ok(Some(Ok(Message::Close(_)))) => break,
            Ok(Some(Err(e))) => {
                use tokio_tungstenite::tungstenite::Error as WsError;
                use tokio_tungstenite::tungstenite::error::CapacityError;
                match &e {
                    // Oversize frames end here: tungstenite stops reading.
                    WsError::Capacity(CapacityError::MessageTooLong { .. }) => {
                        conn.send(Outgoing::Close(1009, "frame too large")).await;
                    }
                    // The pre-login allowance (admission::Metered).
                    WsError::Io(io) if io.kind() == std::io::ErrorKind::InvalidData => {
                        conn.core
                            .metrics
                            .attempt_refused("device_connect", "prelogin_bytes");
                        conn.send(Outgoing::Close(1009, "frames before login are limited"))
                            .await;
                    }
                    _ => {}
                }
                tracing::debug!(error = %e, "device connection error");
                break;
            }
            Ok(Some(Ok(Message::Text(text)))) => {
                conn.handle(text).await;
                if conn.failed_bring_ups >= MAX_FAILED_BRING_UPS {
                    conn.send(Outgoing::Close(1008, "too many failed attempts"))
                        .await;
                    break;
                }
            }
            Ok(Some(Ok(Message::Binary(_)))) => {
                conn.reply_error(None, Error::param("binary frames are not accepted"))
                    .await;
            }
            Ok(Some(Ok(_))) => {} // ping/pong: answered by the library
        }
        // Identified but not logged in: each further frame is small.
        if conn.anonymous.is_none() && conn.session.is_none() {
            conn.allowance.set(prelogin_bytes);
        }
    }
    if let Some(sn) = &conn.sn
        && let Some(version) = conn.core.hub.detach(sn, conn.id)
        && let Err(e) = conn.core.record_sync_position(sn, version).await
    {
        tracing::warn!(error = %e, "could not record a device's sync position");
    }
    drop(conn);
    let _ = writer.await;
}

impl Conn {
    async fn send(&self, out: Outgoing) {
        // A full queue means the device does not read; the writer's
        // timeout closes it, so waiting is bounded.
        let _ = self.tx.send(out).await;
    }

    /// Queues a reply of `len` bytes within the connection's reply budget.
    async fn send_reply(&self, out: Outgoing, len: usize) {
        let kib = u32::try_from(len.div_ceil(1024).clamp(1, REPLY_BUDGET_KIB)).unwrap_or(u32::MAX);
        tokio::select! {
            permit = self.budget.clone().acquire_many_owned(kib) => {
                if let Ok(permit) = permit {
                    self.send(Outgoing::Held(Box::new(out), permit)).await;
                }
            }
            // The writer gave up on the device.
            () = self.tx.closed() => {}
        }
    }

    async fn reply(&self, req_id: &str, body: Value) {
        let frame =
            json!({"headers": {"req_id": req_id}, "body": body, "errcode": 0, "errmsg": "ok"})
                .to_string();
        let len = frame.len();
        self.send_reply(Outgoing::Text(frame.into()), len).await;
    }

    /// An error reply; with no `req_id`, a connection-level error.
    async fn reply_error(&self, req_id: Option<&str>, e: Error) {
        if let Error::Internal(inner) = &e {
            tracing::error!(error = format!("{inner:#}"), "device request failed");
        }
        let frame = error_frame(req_id, &e);
        let len = frame.len();
        self.send_reply(Outgoing::Text(frame.into()), len).await;
    }

    async fn handle(&mut self, text: Utf8Bytes) {
        // A full upload is megabytes of JSON: parse it off the async threads.
        let parsed = if text.len() > 256 * 1024 {
            tokio::task::spawn_blocking(move || parse_frame(text.as_str()))
                .await
                .unwrap_or_else(|e| {
                    Err(FrameError {
                        req_id: None,
                        error: Error::DeviceRefused(
                            codes::BAD_JSON,
                            format!("frame is not valid JSON: {e}"),
                        ),
                    })
                })
        } else {
            parse_frame(text.as_str())
        };
        let (req_id, cmd, body) = match parsed {
            Ok(Frame::Request { req_id, cmd, body }) => (req_id, cmd, body),
            Ok(Frame::Reply) => return,
            Err(FrameError { req_id, error }) => {
                return self.reply_error(req_id.as_deref(), error).await;
            }
        };
        let cmd = cmd.as_str();
        let core = self.core.clone();
        let metrics = |errcode: i64| core.metrics.device_command(cmd, errcode);
        if cmd == "download_photo" {
            return match self.download_photo(&body).await {
                Ok(photo) => {
                    metrics(0);
                    let frame = photo_frame(&req_id, &photo);
                    let len = frame.len();
                    self.send_reply(Outgoing::Binary(frame), len).await
                }
                Err(e) => {
                    metrics(device_code(&e).0);
                    self.reply_error(Some(&req_id), e).await
                }
            };
        }
        let result = if cmd == "upload_userinfo" {
            self.upload_userinfo(body).await
        } else {
            self.dispatch(cmd, &body).await
        };
        match result {
            Ok(reply) => {
                metrics(0);
                self.reply(&req_id, reply).await
            }
            Err(e) => {
                metrics(device_code(&e).0);
                self.reply_error(Some(&req_id), e).await
            }
        }
    }

    fn session(&self) -> Result<&Session> {
        let not_logged_in = || {
            Error::DeviceRefused(
                codes::NOT_LOGGED_IN,
                "not logged in: call subscribe_corp first".into(),
            )
        };
        let s = self.session.as_ref().ok_or_else(not_logged_in)?;
        // Replaced or unbound since: the session is over.
        if !self.core.hub.is_current(&s.sn, self.id) {
            return Err(not_logged_in());
        }
        Ok(s)
    }

    async fn dispatch(&mut self, cmd: &str, body: &Value) -> Result<Value> {
        let core = self.core.clone();
        match cmd {
            "ping" => Ok(json!({})),
            "register" => {
                let sn = str_field(body, "sn")?;
                let key = format!("addr:{}", ClientKey::of(self.client));
                self.limiter.check(&key, "device.register", false).await?;
                let code = core
                    .register_device(
                        sn,
                        &scalar(body, "timestamp")?,
                        &scalar(body, "nonce")?,
                        str_field(body, "device_signature")?,
                        self.client,
                    )
                    .await
                    .inspect_err(|_| self.failed_bring_ups += 1)?;
                self.identified();
                self.attach(sn);
                Ok(json!({"active_code": code}))
            }
            "active" => {
                let code = str_field(body, "active_code")?;
                match core.activate_device(code).await {
                    Ok((sn, secret)) => {
                        self.identified();
                        self.attach(&sn);
                        Ok(json!({"secret": secret}))
                    }
                    // A live code of a terminal not bound yet: it has proved
                    // who it is, and waits here for push_bind_corp.
                    Err(e @ Error::DeviceRefused(codes::NOT_AUTHORISED, _)) => {
                        if let Some(sn) = core.active_code_device(code).await? {
                            self.identified();
                            self.attach(&sn);
                        }
                        Err(e)
                    }
                    Err(e) => {
                        if matches!(e, Error::DeviceRefused(codes::INVALID_ACTIVE_CODE, _)) {
                            self.failed_bring_ups += 1;
                        }
                        Err(e)
                    }
                }
            }
            "subscribe_corp" => {
                let ext = body.get("ext_args").cloned().unwrap_or(Value::Null);
                let sub = Subscription {
                    secret: str_field(body, "secret")?.to_string(),
                    firmware_version: body
                        .get("firmware_version")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_string(),
                    fa_algorithms: string_list(&ext, "fa_algorithm")?,
                    fp_algorithms: string_list(&ext, "fp_algorithm")?,
                };
                let session = core
                    .subscribe_device(&sub)
                    .await
                    .inspect_err(|_| self.failed_bring_ups += 1)?;
                let seen = core.sync_position(&session.sn).await?;
                if self.sn.as_deref() != Some(session.sn.as_str())
                    && let Some(old) = self.sn.take()
                {
                    core.hub.detach(&old, self.id);
                }
                self.sn = Some(session.sn.clone());
                core.hub.login(&session, &self.link, seen);
                self.session = Some(session);
                self.identified();
                self.allowance.set(UNMETERED);
                Ok(json!({}))
            }
            "get_secret_no" => Err(Error::param(
                "get_secret_no is not offered: devices are added with their SecretNo",
            )),
            "get_perm_version" => {
                let s = self.session()?;
                Ok(json!({"perm_version": core.perm_version(s.tenant_id).await?}))
            }
            "get_userinfo_by_ids" => {
                let s = self.session()?;
                let users = user_items(body, "user_item", "userids")?;
                let (people, _) = core.people_by_device_ids(s.tenant_id, &users).await?;
                Ok(json!({"userinfo": userinfo(&core, s, &people, body).await?}))
            }
            "get_userinfo_by_page" => {
                let s = self.session()?;
                let offset = opt_int(body, "offset")?.unwrap_or(0);
                let limit = opt_int(body, "limit")?.unwrap_or(DEFAULT_PAGE);
                let (people, is_last, version) =
                    core.people_page(s.tenant_id, offset, limit).await?;
                let info = userinfo(&core, s, &people, body).await?;
                Ok(json!({"is_last": is_last, "perm_version": version, "userinfo": info}))
            }
            "check_userid" => {
                let s = self.session()?;
                let old_form = body.get("userid_item").is_none_or(Value::is_null);
                let users = user_items(body, "userid_item", "userid")?;
                let (people, missing) = core.people_by_device_ids(s.tenant_id, &users).await?;
                let legal: Vec<DeviceUser> = people
                    .iter()
                    .map(|p| DeviceUser {
                        userid: p.user_id.clone(),
                        user_type: p.user_type.as_i64(),
                    })
                    .collect();
                let mut reply = json!({"legal_userid_item": legal, "illegal_userid_item": missing});
                if old_form {
                    reply["legal_userid"] =
                        json!(legal.iter().map(|u| &u.userid).collect::<Vec<_>>());
                    reply["illegal_userid"] =
                        json!(missing.iter().map(|u| &u.userid).collect::<Vec<_>>());
                }
                Ok(reply)
            }
            "checkin" => {
                let s = self.session()?;
                let data = array_field(body, "checkin_data")?;
                Ok(json!({"fail_list": core.checkin(s, data).await?}))
            }
            other => Err(Error::param(format!("unknown cmd {:?}", clip(other, 64)))),
        }
    }

    /// The connection proved a credential: it no longer counts as
    /// anonymous, and its pre-login deadline is lifted.
    fn identified(&mut self) {
        self.anonymous = None;
        self.failed_bring_ups = 0;
    }

    /// Remembers which device this connection speaks for, so pushes such
    /// as `push_bind_corp` reach it before it logs in.
    fn attach(&mut self, sn: &str) {
        if self.session.is_some() {
            return;
        }
        if let Some(old) = self.sn.replace(sn.to_string())
            && old != sn
        {
            self.core.hub.detach(&old, self.id);
        }
        self.core.hub.attach(sn, &self.link);
    }

    async fn upload_userinfo(&self, mut body: Value) -> Result<Value> {
        let s = self.session()?;
        let users = match body.get_mut("userinfo").map(Value::take) {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(a)) => a,
            Some(_) => return Err(Error::param("userinfo must be an array")),
        };
        // Who the upload names, and whether it carries faces / fingerprints:
        // what an enrolment answered by this upload needs to succeed.
        let uploaded: Vec<(DeviceUser, bool, bool)> = users
            .iter()
            .filter_map(|u| {
                let user = DeviceUser {
                    userid: u.get("userid")?.as_str()?.to_string(),
                    user_type: match u.get("user_type") {
                        None | Some(Value::Null) => 0,
                        Some(t) => int_field(t)?,
                    },
                };
                let nonempty = |f: &str| match u.get(f) {
                    Some(Value::Array(a)) => !a.is_empty(),
                    Some(Value::String(s)) => !s.is_empty(),
                    _ => false,
                };
                let faces = nonempty("fa_list") || (u.get("fa_list").is_none() && nonempty("fa"));
                Some((user, faces, nonempty("fp")))
            })
            .collect();
        let oper_id = body
            .get("oper_id")
            .and_then(Value::as_str)
            .filter(|o| !o.is_empty());
        // An errcode that is not a number is a failure, never success.
        let errcode = match body.get("errcode") {
            None | Some(Value::Null) => 0,
            Some(v) => int_field(v).unwrap_or(-1),
        };
        // The device reports the enrolment it answers as failed: whatever
        // it sent with that report is not stored.
        let outcome = if oper_id.is_some() && errcode != 0 {
            Default::default()
        } else {
            self.core.upload_userinfo(s, users).await?
        };
        if let Some(oper_id) = oper_id {
            let errmsg = body
                .get("errmsg")
                .and_then(Value::as_str)
                .unwrap_or_default();
            self.core
                .finish_enrolment(s, oper_id, errcode, errmsg, &uploaded, &outcome)
                .await?;
        }
        Ok(json!({"fail_list": outcome.fail_list}))
    }

    async fn download_photo(&self, body: &Value) -> Result<Vec<u8>> {
        let s = self.session()?;
        self.core
            .download_photo(s, str_field(body, "media_id")?)
            .await
    }
}

/// A text frame read as far as the connection needs it.
#[derive(Debug, Clone, PartialEq)]
pub enum Frame {
    /// A request; `body` is `{}` when the frame had none (or `null`).
    Request {
        req_id: String,
        cmd: String,
        body: Value,
    },
    /// A frame without `cmd`: a reply to one of our pushes (the platform
    /// documents none), ignored.
    Reply,
}

/// A frame that cannot be served, with the `req_id` to echo: `None` (a
/// connection-level error) unless the frame carried a valid one.
#[derive(Debug)]
pub struct FrameError {
    pub req_id: Option<String>,
    pub error: Error,
}

/// Reads a text frame: a JSON object (47001 otherwise) with `headers.req_id`
/// a string of 1 to 128 bytes or a number (echoed as text), then `cmd` a
/// string and `body` an object or null (40058 otherwise). Pure, so it can
/// be fuzzed and tested without a connection.
pub fn parse_frame(text: &str) -> std::result::Result<Frame, FrameError> {
    let refuse = |req_id: Option<&str>, error| FrameError {
        req_id: req_id.map(str::to_string),
        error,
    };
    let mut frame = match serde_json::from_str::<Value>(text) {
        Ok(v @ Value::Object(_)) => v,
        Ok(_) => {
            return Err(refuse(
                None,
                Error::DeviceRefused(codes::BAD_JSON, "frame is not a JSON object".into()),
            ));
        }
        Err(e) => {
            return Err(refuse(
                None,
                Error::DeviceRefused(codes::BAD_JSON, format!("frame is not valid JSON: {e}")),
            ));
        }
    };
    let req_id = match frame.pointer("/headers/req_id") {
        Some(Value::String(s)) if !s.is_empty() && s.len() <= 128 => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => {
            return Err(refuse(
                None,
                Error::param("headers.req_id is required (a string of 1 to 128 bytes)"),
            ));
        }
    };
    let cmd = match frame.get("cmd") {
        Some(Value::String(c)) => c.clone(),
        None => return Ok(Frame::Reply),
        Some(_) => return Err(refuse(Some(&req_id), Error::param("cmd must be a string"))),
    };
    let body = match frame.get_mut("body").map(Value::take) {
        None | Some(Value::Null) => json!({}),
        Some(b @ Value::Object(_)) => b,
        Some(_) => {
            return Err(refuse(
                Some(&req_id),
                Error::param("body must be an object"),
            ));
        }
    };
    Ok(Frame::Request { req_id, cmd, body })
}

/// The text of an error reply; with no `req_id`, a connection-level error
/// (no `headers`), the shape vendor firmware reads.
pub fn error_frame(req_id: Option<&str>, e: &Error) -> String {
    let (code, msg) = device_code(e);
    match req_id {
        Some(id) => json!({"headers": {"req_id": id}, "body": {}, "errcode": code, "errmsg": msg}),
        None => json!({"errcode": code, "errmsg": msg}),
    }
    .to_string()
}

/// The binary reply to `download_photo`: little-endian `int32
/// format_version (1)`, `int32 req_id_len`, `req_id`, `int32 data_len`,
/// `data` — the layout both device implementations in the notes parse.
pub fn photo_frame(req_id: &str, photo: &[u8]) -> bytes::Bytes {
    let mut out = Vec::with_capacity(12 + req_id.len() + photo.len());
    out.extend_from_slice(&1i32.to_le_bytes());
    out.extend_from_slice(&(req_id.len() as i32).to_le_bytes());
    out.extend_from_slice(req_id.as_bytes());
    out.extend_from_slice(&(photo.len() as i32).to_le_bytes());
    out.extend_from_slice(photo);
    out.into()
}

/// `userinfo[]` for a pull, with the request's `is_req_fa_info` /
/// `is_req_fp_info` (both default 1).
async fn userinfo(
    core: &Core,
    s: &Session,
    people: &[crate::domain::Person],
    body: &Value,
) -> Result<Vec<Value>> {
    let faces = flag(body, "is_req_fa_info", true)?;
    let prints = flag(body, "is_req_fp_info", true)?;
    core.userinfo(s, people, faces, prints).await
}

fn str_field<'a>(body: &'a Value, name: &str) -> Result<&'a str> {
    match body.get(name) {
        Some(Value::String(s)) if !s.is_empty() && s.len() <= 1024 => Ok(s),
        _ => Err(Error::param(format!(
            "{name} is required (a non-empty string)"
        ))),
    }
}

/// A number or numeric string, as the text it was sent as (signatures are
/// computed over that text).
fn scalar(body: &Value, name: &str) -> Result<String> {
    match body.get(name) {
        Some(Value::Number(n)) if n.is_u64() => Ok(n.to_string()),
        Some(Value::String(s))
            if !s.is_empty() && s.len() <= 32 && s.bytes().all(|b| b.is_ascii_digit()) =>
        {
            Ok(s.clone())
        }
        _ => Err(Error::param(format!(
            "{name} is required (an unsigned integer)"
        ))),
    }
}

fn opt_int(body: &Value, name: &str) -> Result<Option<i64>> {
    match body.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => int_field(v)
            .map(Some)
            .ok_or_else(|| Error::param(format!("{name} must be an integer"))),
    }
}

fn array_field<'a>(body: &'a Value, name: &str) -> Result<&'a [Value]> {
    match body.get(name) {
        Some(Value::Array(a)) => Ok(a),
        _ => Err(Error::param(format!("{name} is required (an array)"))),
    }
}

fn string_list(ext: &Value, name: &str) -> Result<Vec<String>> {
    match ext.get(name) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|i| {
                i.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| Error::param(format!("ext_args.{name} must list strings")))
            })
            .collect(),
        Some(_) => Err(Error::param(format!("ext_args.{name} must be an array"))),
    }
}

/// `(errcode, errmsg)` on the WeCom device protocol. The protocol's own
/// codes (6000xx) come from [`Error::DeviceRefused`]; the rest are
/// WeCom's global codes: 40058 invalid parameter, 45009 frequency
/// limit, -1 system busy (see docs/device-protocol.md).
pub fn device_code(e: &Error) -> (i64, String) {
    match e {
        Error::DeviceRefused(code, m) => (*code, m.clone()),
        Error::InvalidParam(m) => (40058, format!("invalid parameter: {m}")),
        Error::UserNotFound(_) => (40003, e.to_string()),
        Error::RateLimited { .. } => (45009, "api freq out of limit".into()),
        Error::Throttled { msg, .. } => (45009, format!("api freq out of limit: {msg}")),
        Error::Internal(_) => (-1, "system busy".into()),
        other => (40058, other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(text: &str) -> (Option<String>, i64) {
        let e = parse_frame(text).unwrap_err();
        (e.req_id, device_code(&e.error).0)
    }

    #[test]
    fn requests_are_read() {
        let f = parse_frame(r#"{"cmd":"ping","headers":{"req_id":"r1"}}"#).unwrap();
        assert_eq!(
            f,
            Frame::Request {
                req_id: "r1".into(),
                cmd: "ping".into(),
                body: json!({})
            }
        );
        let f = parse_frame(r#"{"cmd":"x","headers":{"req_id":7},"body":{"a":1}}"#).unwrap();
        assert_eq!(
            f,
            Frame::Request {
                req_id: "7".into(),
                cmd: "x".into(),
                body: json!({"a": 1})
            }
        );
        let f = parse_frame(r#"{"cmd":"x","headers":{"req_id":"r"},"body":null}"#).unwrap();
        assert!(matches!(f, Frame::Request { body, .. } if body == json!({})));
        // No cmd: a reply, whatever its body.
        let f = parse_frame(r#"{"headers":{"req_id":"r"},"body":5,"errcode":0}"#).unwrap();
        assert_eq!(f, Frame::Reply);
    }

    #[test]
    fn unreadable_frames_are_connection_errors() {
        assert_eq!(refused("not json"), (None, codes::BAD_JSON));
        assert_eq!(refused("[1]"), (None, codes::BAD_JSON));
        assert_eq!(refused(r#"{"cmd":"ping"}"#), (None, 40058));
        assert_eq!(
            refused(r#"{"cmd":"ping","headers":{"req_id":""}}"#),
            (None, 40058)
        );
        let long = "r".repeat(129);
        let text = json!({"cmd": "ping", "headers": {"req_id": long}}).to_string();
        assert_eq!(refused(&text), (None, 40058));
        // Without a valid req_id even a reply is refused.
        assert_eq!(refused(r#"{"headers":{"req_id":[]}}"#), (None, 40058));
    }

    #[test]
    fn request_errors_echo_the_req_id() {
        let id = Some("r".to_string());
        assert_eq!(
            refused(r#"{"cmd":1,"headers":{"req_id":"r"}}"#),
            (id.clone(), 40058)
        );
        assert_eq!(
            refused(r#"{"cmd":"x","headers":{"req_id":"r"},"body":[]}"#),
            (id, 40058)
        );
    }

    #[test]
    fn error_frames() {
        let e = Error::param("nope");
        let v: Value = serde_json::from_str(&error_frame(Some("r"), &e)).unwrap();
        assert_eq!(
            v,
            json!({"headers": {"req_id": "r"}, "body": {}, "errcode": 40058,
                   "errmsg": "invalid parameter: nope"})
        );
        let v: Value = serde_json::from_str(&error_frame(None, &e)).unwrap();
        assert_eq!(
            v,
            json!({"errcode": 40058, "errmsg": "invalid parameter: nope"})
        );
    }
}
