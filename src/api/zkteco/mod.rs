//! ZKTeco's PUSH protocol ("ADMS", `/iclock/*`): the terminal is the HTTP
//! client, polls for work, and posts its records as text. See
//! docs/zkteco-protocol.md for the wire and every choice the protocol
//! leaves open.
//!
//! - `GET /iclock/cdata?SN=&options=all` (init) → the options it runs with;
//! - `GET /iclock/cdata?SN=&type=time` → the time on its clock;
//! - `POST /iclock/cdata?SN=&table=ATTLOG&Stamp=` → its punches;
//! - `GET /iclock/getrequest?SN=[&INFO=]` → its heartbeat, answered with
//!   the commands that keep its address book (`C:<id>:DATA …` lines);
//! - `POST /iclock/devicecmd?SN=` → the results of its commands;
//! - `GET|POST /iclock/ping?SN=` → PUSH 3.x's keep-alive;
//! - `GET|POST /iclock/registry?SN=` → an access terminal's registration
//!   (its capabilities), answered with its `RegistryCode`;
//! - `GET|POST /iclock/push?SN=` → the settings an access terminal runs with;
//! - `POST /iclock/cdata?SN=&table=rtlog|tabledata` and `POST
//!   /iclock/querydata?SN=&type=tabledata` → an access terminal's events
//!   and tables (see `access`).
//!
//! Every answer is `text/plain`. `OK` (HTTP 200) is the one answer a
//! terminal takes as done; anything else (`FAIL: …` with a 4xx or 5xx
//! status) makes it keep what it sent and try again after `ErrorDelay`.

pub mod access;
pub mod bio;
pub mod punches;
pub mod text;

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use http_body_util::BodyExt;
use serde::Deserialize;

use super::AppState;
use super::client::ClientIp;
use crate::domain::Core;
use crate::domain::devices::zk::{Refusal, ZkTerminal};
use crate::domain::devices::zk_bio::ZkTemplate;
use crate::model::PushInfo;
use access::Dialect;

pub fn router() -> Router<AppState> {
    // Older firmware calls the same endpoints with `.aspx`.
    let mut r = Router::new();
    for suffix in ["", ".aspx"] {
        r = r
            .route(
                &format!("/iclock/cdata{suffix}"),
                get(cdata_get).post(cdata_post),
            )
            .route(&format!("/iclock/getrequest{suffix}"), get(getrequest))
            .route(&format!("/iclock/devicecmd{suffix}"), post(devicecmd));
    }
    r.route("/iclock/ping", get(ping).post(ping))
        .route("/iclock/registry", get(registry).post(registry))
        .route("/iclock/push", get(push).post(push))
        .route("/iclock/querydata", post(querydata))
}

/// A text answer.
struct Answer(StatusCode, String);

impl Answer {
    fn ok(body: impl Into<String>) -> Answer {
        Answer(StatusCode::OK, body.into())
    }

    fn fail(status: StatusCode, why: impl std::fmt::Display) -> Answer {
        Answer(status, format!("FAIL: {why}"))
    }
}

impl IntoResponse for Answer {
    fn into_response(self) -> Response {
        (
            self.0,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            self.1,
        )
            .into_response()
    }
}

impl From<Refusal> for Answer {
    fn from(r: Refusal) -> Answer {
        // One answer whether the serial number is unknown, unbound or
        // calling from elsewhere, so that a caller learns neither which
        // serial numbers exist nor which are bound or fenced; the reason
        // goes to the log, for the administrator.
        let why = match r {
            Refusal::BadSn => {
                return Answer::fail(
                    StatusCode::BAD_REQUEST,
                    "SN must be 1 to 64 printable ASCII characters",
                );
            }
            Refusal::Failed(e) => return failed(&e),
            Refusal::Unknown => "not added (see facehub device pending)",
            Refusal::NotBound => "not bound",
            Refusal::Address => "calling from outside its --allow-from networks",
        };
        tracing::info!(why, "terminal refused");
        Answer::fail(
            StatusCode::FORBIDDEN,
            "this terminal is not admitted; an administrator adds and binds it by its SN",
        )
    }
}

/// A fault of the server's (or a full disk): the terminal tries again.
fn failed(e: &crate::model::Error) -> Answer {
    match e {
        crate::model::Error::Internal(detail) => {
            tracing::error!(error = format!("{detail:#}"), "push protocol call failed");
            Answer::fail(StatusCode::SERVICE_UNAVAILABLE, "server error; try again")
        }
        other => {
            tracing::info!(error = %other, "push protocol call refused");
            Answer::fail(StatusCode::SERVICE_UNAVAILABLE, other)
        }
    }
}

/// The query parameters terminals send (others are ignored).
#[derive(Debug, Default, Deserialize)]
struct Params {
    #[serde(rename = "SN", alias = "sn")]
    sn: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    table: Option<String>,
    #[serde(rename = "Stamp")]
    stamp: Option<String>,
    pushver: Option<String>,
    #[serde(rename = "INFO")]
    info: Option<String>,
    #[serde(rename = "DeviceType")]
    device_type: Option<String>,
    tablename: Option<String>,
}

/// The query read, the caller's rate checked and the terminal admitted.
async fn admit(
    state: &AppState,
    client: ClientIp,
    query: Option<&str>,
) -> Result<(Params, ZkTerminal), Answer> {
    let params: Params = serde_urlencoded::from_str(query.unwrap_or(""))
        .map_err(|e| Answer::fail(StatusCode::BAD_REQUEST, format!("query: {e}")))?;
    // One limit per client address, taken before any lookup: an unknown
    // caller costs at most this many store reads a second.
    state
        .device_commands
        .check(&format!("iclock:{}", client.0), "device.push", false)
        .await
        .map_err(|_| Answer::fail(StatusCode::SERVICE_UNAVAILABLE, "too many requests"))?;
    let sn = params.sn.clone().unwrap_or_default();
    let terminal = state.core.zk_terminal(&sn, client.0).await?;
    Ok((params, terminal))
}

/// A call from an admitted terminal: its query and its row. Extracting it
/// reads the query, checks the caller's rate and admits the terminal.
struct Admitted {
    params: Params,
    terminal: ZkTerminal,
}

impl FromRequestParts<AppState> for Admitted {
    type Rejection = Answer;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Answer> {
        let client = ClientIp::from_request_parts(parts, state)
            .await
            .map_err(|e| failed(&e))?;
        let (params, terminal) = admit(state, client, parts.uri.query()).await?;
        Ok(Admitted { params, terminal })
    }
}

/// What a handler answers: its refusals are answers too.
type Answered = Result<Answer, Answer>;

/// Records a call (presence, and what the terminal reported).
async fn called(core: &Core, t: &mut ZkTerminal, report: Option<PushInfo>) -> Result<(), Answer> {
    core.zk_called(t, report).await.map_err(|e| failed(&e))
}

async fn cdata_get(State(state): State<AppState>, mut call: Admitted) -> Answered {
    let (core, t) = (&state.core, &mut call.terminal);
    if call.params.kind.as_deref() == Some("time") {
        called(core, t, None).await?;
        return Ok(Answer::ok(text::time(core.now(), t.row.utc_offset_min)));
    }
    let report = PushInfo {
        push_version: call.params.pushver.as_deref().and_then(text::stamp),
        device_type: call.params.device_type.as_deref().and_then(text::stamp),
        ..PushInfo::default()
    };
    called(core, t, Some(report)).await?;
    let poll = core.config().device.push_poll_secs;
    let access = (Dialect::of(t.row.push_info.as_ref()) == Dialect::Access).then(|| {
        let (code, session) = core.zk_registration(t);
        access::init_lines(&code, &session, poll)
    });
    Ok(Answer::ok(text::options(
        t.sn(),
        t.row.utc_offset_min,
        poll,
        &t.row.push_info.clone().unwrap_or_default(),
        access,
    )))
}

async fn cdata_post(State(state): State<AppState>, mut call: Admitted, body: Body) -> Answered {
    let body = read(&state, body).await?;
    let params = &call.params;
    let table = params.table.as_deref().unwrap_or("").to_ascii_uppercase();
    let stamp = params.stamp.as_deref().and_then(text::stamp);
    let (core, t) = (&state.core, &mut call.terminal);
    let (answer, report) = match table.as_str() {
        "ATTLOG" => {
            let punches = punches::attlog(&body).map_err(malformed)?;
            let count = punches.len();
            core.zk_punches(t, punches).await.map_err(|e| failed(&e))?;
            let report = PushInfo {
                attlog_stamp: stamp,
                ..PushInfo::default()
            };
            (format!("OK: {count}"), report)
        }
        // An access terminal's events carry no stamp to resume from, and
        // its answer is the bare `OK` its servers send.
        "RTLOG" => {
            let punches = punches::rtlog(&body).map_err(malformed)?;
            core.zk_punches(t, punches).await.map_err(|e| failed(&e))?;
            ("OK".into(), PushInfo::default())
        }
        "OPERLOG" => {
            let lines = bio::operlog(&body).map_err(malformed)?;
            let count = lines.len();
            let report = PushInfo {
                operlog_stamp: stamp,
                written: templates(core, t, lines).await?,
                ..PushInfo::default()
            };
            (format!("OK: {count}"), report)
        }
        "BIODATA" => {
            let lines = bio::biodata(&body).map_err(malformed)?;
            let count = lines.len();
            // A terminal that posted BIODATA reads it: a stamp (`0` when
            // it sent none) marks it as one.
            let report = PushInfo {
                biodata_stamp: stamp.or_else(|| Some("0".into())),
                written: templates(core, t, lines).await?,
                ..PushInfo::default()
            };
            (format!("OK: {count}"), report)
        }
        "TABLEDATA" => tabledata(core, t, params.tablename.as_deref(), &body).await?,
        "OPTIONS" => ("OK".into(), bio::options_report(&body)),
        // Tables facehub does not take (capture photos, door states, error
        // logs, …): acknowledged unread, as other servers do, since a
        // refusal would make the terminal send them forever.
        _ => ("OK".into(), PushInfo::default()),
    };
    called(core, t, Some(report)).await?;
    Ok(Answer::ok(answer))
}

fn malformed(m: text::Malformed) -> Answer {
    Answer::fail(StatusCode::BAD_REQUEST, m)
}

/// Stores the templates of an upload (with their line numbers); the
/// algorithms written. A template the core refuses refuses the upload,
/// naming its line.
async fn templates(
    core: &Arc<Core>,
    t: &ZkTerminal,
    lines: Vec<(usize, ZkTemplate)>,
) -> Result<Vec<String>, Answer> {
    let (numbers, templates): (Vec<usize>, Vec<_>) = lines.into_iter().unzip();
    match core.zk_templates(t, templates).await {
        Ok(Ok(outcome)) => Ok(outcome.written),
        Ok(Err(fault)) => Err(malformed(text::Malformed {
            line: numbers[fault.index],
            why: fault.why,
        })),
        Err(e) => Err(failed(&e)),
    }
}

/// An access terminal's table (`tabledata`, or a query's result posted
/// to `querydata`): its templates (`biodata`) stored; the others (`user`,
/// `biophoto`, `userpic`, …) read past. The answer is `<table>=<count>`,
/// which is what tells the terminal the records are taken.
async fn tabledata(
    core: &Arc<Core>,
    t: &ZkTerminal,
    tablename: Option<&str>,
    body: &[u8],
) -> Result<(String, PushInfo), Answer> {
    let Some(name) = access::table_name(tablename) else {
        return Err(Answer::fail(
            StatusCode::BAD_REQUEST,
            "tablename must be 1 to 32 letters, digits or _",
        ));
    };
    if name != "biodata" {
        return Ok((
            format!("{name}={}", access::records(body)),
            PushInfo::default(),
        ));
    }
    let lines = bio::biodata(body).map_err(malformed)?;
    let written = templates(core, t, lines).await?;
    // A terminal that posts `biodata` takes it (as for `BIODATA`).
    let report = PushInfo {
        biodata_stamp: Some("0".into()),
        written,
        ..PushInfo::default()
    };
    Ok((format!("biodata={}", access::records(body)), report))
}

async fn getrequest(State(state): State<AppState>, mut call: Admitted) -> Answered {
    let report = call.params.info.as_deref().map(text::info);
    called(&state.core, &mut call.terminal, report).await?;
    let commands = state
        .core
        .zk_poll(&call.terminal)
        .await
        .map_err(|e| failed(&e))?;
    let dialect = Dialect::of(call.terminal.row.push_info.as_ref());
    Ok(Answer::ok(text::commands(&commands, dialect)))
}

async fn devicecmd(State(state): State<AppState>, mut call: Admitted, body: Body) -> Answered {
    let body = read(&state, body).await?;
    let results =
        text::command_results(&body).map_err(|m| Answer::fail(StatusCode::BAD_REQUEST, m))?;
    let results: Vec<(i64, i64)> = results.iter().map(|r| (r.id, r.code)).collect();
    state
        .core
        .zk_results(call.terminal.sn(), &results)
        .await
        .map_err(|e| failed(&e))?;
    called(&state.core, &mut call.terminal, None).await?;
    Ok(Answer::ok("OK"))
}

async fn ping(State(state): State<AppState>, mut call: Admitted) -> Answered {
    called(&state.core, &mut call.terminal, None).await?;
    Ok(Answer::ok("OK"))
}

/// An access terminal's registration: its capabilities (algorithms, kind,
/// firmware) kept, and its `RegistryCode`.
async fn registry(State(state): State<AppState>, mut call: Admitted, body: Body) -> Answered {
    let body = read(&state, body).await?;
    let report = bio::options_report(&body);
    called(&state.core, &mut call.terminal, Some(report)).await?;
    let (code, _) = state.core.zk_registration(&call.terminal);
    Ok(Answer::ok(format!("RegistryCode={code}\n")))
}

/// The settings an access terminal runs with.
async fn push(State(state): State<AppState>, mut call: Admitted) -> Answered {
    called(&state.core, &mut call.terminal, None).await?;
    let (_, session) = state.core.zk_registration(&call.terminal);
    let poll = state.core.config().device.push_poll_secs;
    Ok(Answer::ok(access::settings(&session, poll)))
}

/// The result of a `DATA QUERY` (or `DATA COUNT`, `GET OPTIONS`), posted
/// apart from its `devicecmd` result: a table's records are taken as
/// `tabledata`, options as a `table=options` report; other kinds are
/// acknowledged.
async fn querydata(State(state): State<AppState>, mut call: Admitted, body: Body) -> Answered {
    let body = read(&state, body).await?;
    let (core, t) = (&state.core, &mut call.terminal);
    let (answer, report) = match call.params.kind.as_deref() {
        Some("tabledata") => tabledata(core, t, call.params.tablename.as_deref(), &body).await?,
        // Its options, asked for by `GET OPTIONS` or sent on its own.
        Some("options") => ("OK".into(), bio::options_report(&body)),
        _ => ("OK".into(), PushInfo::default()),
    };
    called(core, t, Some(report)).await?;
    Ok(Answer::ok(answer))
}

/// A posted body, at most `device.push_body_mib`.
async fn read(state: &AppState, body: Body) -> Result<bytes::Bytes, Answer> {
    let limit = state
        .core
        .config()
        .device
        .push_body_mib
        .clamp(1, 1024)
        .saturating_mul(1 << 20);
    match http_body_util::Limited::new(body, limit).collect().await {
        Ok(b) => Ok(b.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(Answer::fail(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "the body is larger than {} MiB (device.push_body_mib)",
                limit >> 20
            ),
        )),
        Err(_) => Err(Answer::fail(
            StatusCode::BAD_REQUEST,
            "the body was cut off",
        )),
    }
}
