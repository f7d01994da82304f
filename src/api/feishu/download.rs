//! Streaming a stored file back: the headers every download carries.

use axum::body::Body;
use axum::http::{HeaderValue, header};
use axum::response::Response;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

use crate::domain::files::FileDownload;

/// Characters left as they are in an RFC 5987 `filename*` value.
const ATTR_CHAR: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'!')
    .remove(b'#')
    .remove(b'$')
    .remove(b'&')
    .remove(b'+')
    .remove(b'-')
    .remove(b'.')
    .remove(b'^')
    .remove(b'_')
    .remove(b'`')
    .remove(b'|')
    .remove(b'~');

/// `attachment; filename="…"` plus RFC 6266 `filename*` when the name is not
/// plain ASCII or holds characters clients mangle in the plain form
/// (lark-oapi splits the header on `;` and percent-decodes `filename`).
pub fn content_disposition(name: &str) -> String {
    let fallback: String = name
        .chars()
        .map(|c| {
            let plain =
                c.is_ascii() && !c.is_ascii_control() && !matches!(c, '"' | '\\' | ';' | '%' | ',');
            if plain { c } else { '_' }
        })
        .collect();
    if fallback == name {
        format!("attachment; filename=\"{name}\"")
    } else {
        format!(
            "attachment; filename=\"{fallback}\"; filename*=UTF-8''{}",
            utf8_percent_encode(name, ATTR_CHAR)
        )
    }
}

/// The file's bytes with its type, length and name. The body is decrypted
/// as it streams; the first chunk was verified before this point, so a
/// broken blob is still an error status rather than a truncated 200.
pub fn file_response(file: FileDownload) -> Response {
    let mut resp = Response::new(Body::from_stream(file.body.into_stream()));
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(file.format.mime()),
    );
    h.insert(header::CONTENT_LENGTH, file.record.size.into());
    if let Ok(v) = HeaderValue::from_str(&content_disposition(&file.record.file_name)) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    // Biometric data: no shared cache may keep a copy.
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-store"),
    );
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disposition_ascii_and_utf8() {
        assert_eq!(
            content_disposition("face.jpg"),
            "attachment; filename=\"face.jpg\""
        );
        assert_eq!(
            content_disposition("人脸照片.jpg"),
            "attachment; filename=\"____.jpg\"; filename*=UTF-8''%E4%BA%BA%E8%84%B8%E7%85%A7%E7%89%87.jpg"
        );
        assert!(content_disposition("a\"b.png").contains("filename*=UTF-8''a%22b.png"));
        assert_eq!(
            content_disposition("a;b%20c,d.png"),
            "attachment; filename=\"a_b_20c_d.png\"; filename*=UTF-8''a%3Bb%2520c%2Cd.png"
        );
    }
}
