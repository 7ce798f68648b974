//! Fintoc's webhook signature, as the simulator and its `sign` / `send` /
//! `resign-event` commands produce it.

use serde_json::Value;
use sha2::Sha256;

/// `t=<now>,v1=<hex>` for `body`, signed the way Fintoc signs.
pub fn sign(secret: &str, timestamp: i64, body: &[u8]) -> String {
    use hmac::{Hmac, Mac};
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!(
        "t={timestamp},v1={}",
        hex::encode(mac.finalize().into_bytes())
    )
}

/// Re-signs an API Gateway event file (HTTP API v2) in place: the
/// `fintoc-signature` header becomes a signature of its `body` (base64-decoded when
/// `isBase64Encoded`) with `secret` at `timestamp`. Only that header's text changes.
pub fn resign_event_file(
    path: &std::path::Path,
    secret: &str,
    timestamp: i64,
) -> Result<String, String> {
    use base64::Engine;
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let event: Value =
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    let body = event["body"]
        .as_str()
        .ok_or_else(|| format!("{}: no body", path.display()))?;
    let bytes = if event["isBase64Encoded"].as_bool().unwrap_or(false) {
        base64::engine::general_purpose::STANDARD
            .decode(body)
            .map_err(|e| format!("{}: body is not base64: {e}", path.display()))?
    } else {
        body.as_bytes().to_vec()
    };
    let header = sign(secret, timestamp, &bytes);
    let marker = "\"fintoc-signature\": \"";
    let start = text.find(marker).ok_or_else(|| {
        format!(
            "{}: no \"fintoc-signature\" header to replace",
            path.display()
        )
    })? + marker.len();
    let end = start + text[start..].find('"').ok_or("unterminated header value")?;
    let updated = format!("{}{header}{}", &text[..start], &text[end..]);
    std::fs::write(path, updated).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(header)
}

/// Unix seconds now.
pub fn unix_now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// Signs `body` with the current time and POSTs it to `url` once.
pub async fn send_signed(url: &str, secret: &str, body: &[u8]) -> Result<(u16, String), String> {
    let response = shared::fintoc::http_client_builder()
        .build()
        .map_err(|e| e.to_string())?
        .post(url)
        .header("content-type", "application/json")
        .header("fintoc-signature", sign(secret, unix_now(), body))
        .body(body.to_vec())
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let status = response.status().as_u16();
    Ok((status, response.text().await.unwrap_or_default()))
}
