//! The attendance photo API as the process tests call it on a server they
//! started: plain requests that tell a server gone under them (status 0)
//! from a refusal.

use std::time::Duration;

/// An attendance photo upload as the Python SDK sends it: (status,
/// envelope); status 0 when the server went away under the request (not
/// acknowledged).
pub async fn upload_photo(base: &str, token: &str, photo: &[u8]) -> (u16, serde_json::Value) {
    let (ct, body) = crate::common::sdk_file_body(photo);
    match reqwest::Client::new()
        .post(format!(
            "{base}/open-apis/attendance/v1/files/upload?file_name=p.png"
        ))
        .bearer_auth(token)
        .header("content-type", ct)
        .body(body)
        .timeout(Duration::from_secs(60))
        .send()
        .await
    {
        Ok(r) => {
            let status = r.status().as_u16();
            (status, r.json().await.unwrap_or(serde_json::Value::Null))
        }
        Err(_) => (0, serde_json::Value::Null),
    }
}

/// An attendance photo download: (status, body).
pub async fn download_photo(base: &str, token: &str, id: &str) -> (u16, Vec<u8>) {
    let r = reqwest::Client::new()
        .get(format!(
            "{base}/open-apis/attendance/v1/files/{id}/download"
        ))
        .bearer_auth(token)
        .timeout(Duration::from_secs(60))
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.bytes().await.unwrap().to_vec())
}
