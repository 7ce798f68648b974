//! Signatures of the merchant events' deliveries, per the Standard Webhooks
//! specification: `webhook-id` (the event's id), `webhook-timestamp` (Unix
//! seconds) and `webhook-signature: v1,<base64 HMAC-SHA256 of
//! "{id}.{timestamp}.{body}">`, one signature per secret during a rotation,
//! space-separated. The MAC is the `standardwebhooks` crate's (pinned at 1.0.1,
//! which refuses an empty `v1,` signature that 1.0.0 accepted).

use standardwebhooks::Webhook;
use std::sync::Arc;

/// The prefix of a Standard Webhooks secret; base64 of the key follows.
pub const SECRET_PREFIX: &str = "whsec_";

/// A signing secret: `whsec_` and the base64 of at least 24 bytes of key. Its
/// `Debug` never shows the key.
#[derive(Clone)]
pub struct SigningSecret {
    signer: Arc<Webhook>,
}

impl std::fmt::Debug for SigningSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SigningSecret(whsec_…)")
    }
}

/// A secret that is not `whsec_` + base64 of at least 24 bytes; says why, never
/// the secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a webhook signing secret must be whsec_ followed by the base64 of at least 24 bytes: {0}")]
pub struct SecretError(&'static str);

/// The least key a secret may hold, in bytes (Standard Webhooks: 24 to 64).
pub const MIN_KEY_BYTES: usize = 24;

impl SigningSecret {
    /// Reads a `whsec_…` secret.
    pub fn parse(secret: &str) -> Result<Self, SecretError> {
        use base64::Engine as _;
        let encoded = secret
            .strip_prefix(SECRET_PREFIX)
            .ok_or(SecretError("it does not start with whsec_"))?;
        let key = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .map_err(|_| SecretError("what follows whsec_ is not base64"))?;
        if key.len() < MIN_KEY_BYTES {
            return Err(SecretError("the key is shorter than 24 bytes"));
        }
        Ok(Self {
            signer: Arc::new(Webhook::from_bytes(key).map_err(|_| SecretError("unusable key"))?),
        })
    }

    /// `v1,<base64 MAC>` of one delivery.
    pub fn sign(&self, id: &str, timestamp_secs: i64, body: &str) -> String {
        self.signer
            .sign(id, timestamp_secs, body.as_bytes())
            .expect("a str body is UTF-8")
    }
}

/// The `webhook-signature` header of one delivery: one `v1,…` per secret (the new
/// and the old during a rotation), space-separated.
pub fn signature_header(
    secrets: &[SigningSecret],
    id: &str,
    timestamp_secs: i64,
    body: &str,
) -> String {
    secrets
        .iter()
        .map(|secret| secret.sign(id, timestamp_secs, body))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use standardwebhooks::{HEADER_WEBHOOK_ID, HEADER_WEBHOOK_SIGNATURE, HEADER_WEBHOOK_TIMESTAMP};

    /// The specification's published example (checked independently with Python's
    /// hmac and base64).
    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const TIMESTAMP: i64 = 1_614_265_330;
    const BODY: &str = r#"{"test": 2432232314}"#;
    const SIGNATURE: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

    #[test]
    fn signs_the_specifications_example() {
        let secret = SigningSecret::parse(SECRET).unwrap();
        assert_eq!(secret.sign(ID, TIMESTAMP, BODY), SIGNATURE);
    }

    #[test]
    fn a_rotation_signs_with_every_secret() {
        let old = SigningSecret::parse(SECRET).unwrap();
        let new = SigningSecret::parse("whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD").unwrap();
        let header = signature_header(&[new.clone(), old], ID, TIMESTAMP, BODY);
        let parts: Vec<&str> = header.split(' ').collect();
        assert_eq!(parts, [new.sign(ID, TIMESTAMP, BODY).as_str(), SIGNATURE]);
    }

    #[test]
    fn secrets_are_whsec_and_base64_of_enough_key_and_never_shown() {
        assert!(SigningSecret::parse("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").is_err());
        assert!(SigningSecret::parse("whsec_not base64!").is_err());
        assert!(SigningSecret::parse("whsec_c2hvcnQ=").is_err(), "5 bytes");
        let secret = SigningSecret::parse(SECRET).unwrap();
        assert!(!format!("{secret:?}").contains("MfKQ"));
        let refused = SigningSecret::parse("whsec_x").unwrap_err().to_string();
        assert!(!refused.contains("whsec_x"), "{refused}");
    }

    /// 1.0.0 of the crate accepted an empty signature after `v1,`; the pinned
    /// version refuses it (and the receiver's check is the crate's).
    #[test]
    fn an_empty_v1_signature_is_refused() {
        let key = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let receiver = Webhook::new(key).unwrap();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        let headers = |signature: &str| {
            let mut h = http::HeaderMap::new();
            h.insert(HEADER_WEBHOOK_ID, ID.parse().unwrap());
            h.insert(HEADER_WEBHOOK_TIMESTAMP, now.to_string().parse().unwrap());
            h.insert(HEADER_WEBHOOK_SIGNATURE, signature.parse().unwrap());
            h
        };
        let signed = SigningSecret::parse(key).unwrap().sign(ID, now, BODY);
        assert!(receiver.verify(BODY.as_bytes(), &headers(&signed)).is_ok());
        for forged in ["v1,", "v1, v1,", "v2,", ""] {
            assert!(
                receiver.verify(BODY.as_bytes(), &headers(forged)).is_err(),
                "{forged:?} accepted"
            );
        }
    }
}
