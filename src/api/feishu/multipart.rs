//! Streaming multipart bodies with memory that does not grow with the
//! upload's size.
//!
//! multer (which axum's own `Multipart` wraps) pulls from the body stream
//! until it returns `Pending`. On a fast connection that is never, so the
//! whole upload would pile up in its buffer whenever storing is slower than
//! receiving. [`Paced`] hands it one chunk per poll, so the buffer holds at
//! most about one network read ahead of the consumer.

use std::pin::Pin;
use std::task::{Context, Poll};

use axum::body::Body;
use axum::http::HeaderMap;
use axum::http::header::CONTENT_TYPE;
use bytes::Bytes;
use futures_util::Stream;

use crate::model::error::Error;

pub struct Paced<S> {
    inner: S,
    just_yielded: bool,
}

impl<S> Paced<S> {
    pub fn new(inner: S) -> Self {
        Paced {
            inner,
            just_yielded: false,
        }
    }
}

impl<S: Stream + Unpin> Stream for Paced<S> {
    type Item = S::Item;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<S::Item>> {
        if self.just_yielded {
            // Let the reader consume what it has before taking more; wake
            // at once so no readiness is lost.
            self.just_yielded = false;
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        let item = Pin::new(&mut self.inner).poll_next(cx);
        if matches!(item, Poll::Ready(Some(_))) {
            self.just_yielded = true;
        }
        item
    }
}

/// Room the whole body gets beyond its largest allowed content: part
/// headers and boundaries, plus one network read of look-ahead (hyper
/// reads up to ~400 KiB at once). With less, which limit trips first
/// would depend on how the body was chunked, and an oversize file would
/// sometimes be refused as an oversize body.
const FRAMING_SLACK: u64 = 1024 * 1024;

/// A multipart reader over the request body, refusing bodies larger than
/// `content_limit` (enforced precisely per field by the caller) plus
/// framing as they stream.
pub fn reader(
    headers: &HeaderMap,
    body: Body,
    content_limit: u64,
) -> Result<multer::Multipart<'static>, Error> {
    let limit = content_limit.saturating_add(FRAMING_SLACK);
    let content_type = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let boundary = multer::parse_boundary(content_type)
        .map_err(|_| Error::param("body must be multipart/form-data with a boundary"))?;
    let stream = Paced::new(body.into_data_stream());
    let constraints =
        multer::Constraints::new().size_limit(multer::SizeLimit::new().whole_stream(limit));
    Ok(multer::Multipart::with_constraints(
        stream,
        boundary,
        constraints,
    ))
}

/// A multipart failure as the client's error.
pub fn error(e: multer::Error) -> Error {
    match e {
        multer::Error::StreamSizeExceeded { limit } => {
            Error::param(format!("request body exceeds {limit} bytes"))
        }
        multer::Error::StreamReadFailed(_) => Error::param("request body could not be read"),
        other => Error::param(format!("malformed multipart body: {other}")),
    }
}

/// The bytes of a field as the core's stream type.
pub fn field_stream(
    field: multer::Field<'static>,
) -> impl Stream<Item = Result<Bytes, Error>> + Send + 'static {
    use futures_util::TryStreamExt;
    field.map_err(error)
}

/// The next multipart field, waiting at most `idle` for its headers.
pub async fn next_field(
    form: &mut multer::Multipart<'static>,
    idle: std::time::Duration,
) -> Result<Option<multer::Field<'static>>, Error> {
    match tokio::time::timeout(idle, form.next_field()).await {
        Ok(r) => r.map_err(error),
        Err(_) => Err(stalled(idle)),
    }
}

pub fn stalled(idle: std::time::Duration) -> Error {
    Error::param(format!("upload stalled: no data for {} s", idle.as_secs()))
}

/// Ends a body stream with an error when no bytes arrive for `idle`, so a
/// stalled client cannot hold an upload (and its temporary blob) open.
pub fn idle_timeout<S>(
    body: S,
    idle: std::time::Duration,
) -> impl futures_util::Stream<Item = Result<Bytes, Error>> + Send
where
    S: futures_util::Stream<Item = Result<Bytes, Error>> + Send,
{
    futures_util::stream::unfold(Box::pin(body), move |mut body| async move {
        use futures_util::StreamExt;
        match tokio::time::timeout(idle, body.next()).await {
            Ok(Some(item)) => Some((item, body)),
            Ok(None) => None,
            Err(_) => Some((Err(stalled(idle)), body)),
        }
    })
}

/// Runs an upload under `limits.upload_deadline_secs`.
pub async fn within_deadline<T>(
    state: &crate::api::AppState,
    upload: impl std::future::Future<Output = Result<T, Error>>,
) -> Result<T, Error> {
    let deadline = std::time::Duration::from_secs(state.core.config().limits.upload_deadline_secs);
    tokio::time::timeout(deadline, upload)
        .await
        .unwrap_or_else(|_| {
            Err(Error::param(format!(
                "upload did not complete within {} s",
                deadline.as_secs()
            )))
        })
}

/// A form's fields (or its refusal) and the image it staged: both, or the
/// refusal with any staged image discarded; a form without its image is
/// refused as missing `field`.
pub async fn with_image<T>(
    form: Result<T, Error>,
    staged: Option<crate::domain::files::StagedImage>,
    field: &str,
) -> Result<(T, crate::domain::files::StagedImage), Error> {
    let form = match form {
        Ok(f) => f,
        Err(e) => {
            if let Some(s) = staged {
                s.discard().await;
            }
            return Err(e);
        }
    };
    let Some(staged) = staged else {
        return Err(Error::param(format!(
            "multipart field `{field}` is required"
        )));
    };
    Ok((form, staged))
}

/// A text field's value, refused once it passes `max` bytes or is not
/// UTF-8.
pub async fn read_text(
    field: multer::Field<'static>,
    max: usize,
    idle: std::time::Duration,
) -> Result<String, Error> {
    use futures_util::StreamExt;
    let name = field.name().unwrap_or("").to_string();
    let mut body = std::pin::pin!(idle_timeout(field_stream(field), idle));
    let mut out = Vec::new();
    while let Some(piece) = body.next().await {
        let piece = piece?;
        if out.len() + piece.len() > max {
            return Err(Error::param(format!(
                "multipart field `{name}` is longer than {max} bytes"
            )));
        }
        out.extend_from_slice(&piece);
    }
    String::from_utf8(out)
        .map_err(|_| Error::param(format!("multipart field `{name}` is not valid UTF-8")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::StreamExt;

    #[tokio::test]
    async fn paced_stream_yields_everything_in_order() {
        let items: Vec<Result<Bytes, std::io::Error>> =
            (0..10).map(|i| Ok(Bytes::from(vec![i as u8; 3]))).collect();
        let paced = Paced::new(futures_util::stream::iter(items));
        let got: Vec<_> = paced.map(|r| r.unwrap()[0]).collect().await;
        assert_eq!(got, (0..10).collect::<Vec<u8>>());
    }

    #[tokio::test]
    async fn multer_reads_at_most_one_chunk_per_poll() {
        // 100 chunks are ready at once; after reading the first bytes of the
        // field, the multipart buffer must not have swallowed them all.
        let mut body = b"--B\r\nContent-Disposition: form-data; name=\"file\"\r\n\r\n".to_vec();
        let chunk = vec![b'x'; 16 * 1024];
        let mut chunks: Vec<Result<Bytes, std::io::Error>> =
            vec![Ok(Bytes::from(body.split_off(0)))];
        for _ in 0..100 {
            chunks.push(Ok(Bytes::from(chunk.clone())));
        }
        chunks.push(Ok(Bytes::from_static(b"\r\n--B--\r\n")));
        let remaining = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(chunks.len()));
        let counter = remaining.clone();
        let source = futures_util::stream::iter(chunks).inspect(move |_| {
            counter.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
        });
        let mut mp = multer::Multipart::new(Paced::new(source), "B");
        let mut field = mp.next_field().await.unwrap().unwrap();
        let first = field.next().await.unwrap().unwrap();
        assert!(!first.is_empty());
        let left = remaining.load(std::sync::atomic::Ordering::SeqCst);
        assert!(left > 90, "multer pulled {} chunks ahead", 102 - left);
        let mut total = first.len();
        while let Some(b) = field.next().await {
            total += b.unwrap().len();
        }
        assert_eq!(total, 100 * 16 * 1024);
    }
}
