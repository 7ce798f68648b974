//! Verification of the `Fintoc-Signature` header.
//!
//! Format `t=<unix seconds>,v1=<64 lowercase hex>`: split on `,`, then on the first `=`,
//! trim spaces, ignore other schemes, accept if any `v1` matches. The MAC is
//! HMAC-SHA256 keyed with the whole secret string (including `whsec_`) over
//! `<t as sent>.<raw body bytes>`, compared in constant time; `|now - t|` must be
//! within the tolerance.

use crate::secrets::SecretString;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// Fintoc's default tolerance.
pub const DEFAULT_TOLERANCE_SECS: u64 = 300;

/// Shortest random part accepted after `whsec_`.
pub const MIN_SECRET_RANDOM_CHARS: usize = 24;

/// Secrets that are documentation, not secrets: the README's placeholder and the
/// secret of Fintoc's published test vector.
const KNOWN_PLACEHOLDERS: [&str; 2] = ["whsec_...", "whsec_test_secret"];

/// Why a configured webhook secret is refused at cold start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum WeakSecret {
    /// No `whsec_` prefix: not a Fintoc webhook secret.
    #[error("it does not start with whsec_ (copy the whole secret from Fintoc's dashboard)")]
    NoPrefix,
    /// A placeholder or published example.
    #[error("it is a placeholder or a published example, not the endpoint's secret")]
    Placeholder,
    /// Too short or too repetitive to be random.
    #[error("it is too short or too repetitive to be a random secret (at least {MIN_SECRET_RANDOM_CHARS} characters after whsec_, mostly distinct)")]
    TooWeak,
}

/// Refuses a secret that cannot be the endpoint's real one. The error never
/// contains the secret.
pub fn check_secret_strength(secret: &SecretString) -> Result<(), WeakSecret> {
    let value = secret.expose();
    if KNOWN_PLACEHOLDERS.contains(&value)
        || value.contains("...")
        || value.contains('<')
        || value.to_ascii_lowercase().contains("placeholder")
        || value.to_ascii_lowercase().contains("changeme")
    {
        return Err(WeakSecret::Placeholder);
    }
    let random = value.strip_prefix("whsec_").ok_or(WeakSecret::NoPrefix)?;
    let distinct: std::collections::BTreeSet<char> = random.chars().collect();
    if random.chars().count() < MIN_SECRET_RANDOM_CHARS || distinct.len() < 10 {
        return Err(WeakSecret::TooWeak);
    }
    Ok(())
}

/// Why a signature was refused. Each is answered with a 400 and nothing written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// No `Fintoc-Signature` header.
    #[error("the Fintoc-Signature header is missing")]
    Missing,
    /// The header has no usable `t` or no `v1`.
    #[error("the Fintoc-Signature header is malformed")]
    Malformed,
    /// `t` is further than the tolerance from now.
    #[error("the signature timestamp is outside the tolerance")]
    OutsideTolerance,
    /// No `v1` matches any configured secret.
    #[error("no signature matches")]
    Mismatch,
}

impl SignatureError {
    /// Stable error code for the HTTP answer.
    pub fn code(self) -> &'static str {
        match self {
            Self::Missing => "missing_signature",
            Self::Malformed => "malformed_signature",
            Self::OutsideTolerance => "signature_timestamp_out_of_tolerance",
            Self::Mismatch => "signature_mismatch",
        }
    }
}

/// A parsed header: the timestamp as sent and its value, and every `v1` digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureHeader<'a> {
    /// `t` exactly as sent (it is part of the signed message).
    pub timestamp_raw: &'a str,
    /// `t` as a number.
    pub timestamp: i64,
    /// Decoded `v1` digests (only well-formed 64-char lowercase hex ones).
    pub v1: Vec<[u8; 32]>,
}

fn decode_lower_hex(s: &str) -> Option<[u8; 32]> {
    if s.len() != 64
        || !s
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return None;
    }
    let mut out = [0u8; 32];
    hex::decode_to_slice(s, &mut out).ok()?;
    Some(out)
}

/// Parses the header value. Never panics, whatever the input.
pub fn parse_header(header: &str) -> Result<SignatureHeader<'_>, SignatureError> {
    let mut timestamp = None;
    let mut v1 = Vec::new();
    let mut saw_v1 = false;
    for part in header.split(',') {
        let Some((key, value)) = part.split_once('=') else {
            continue;
        };
        match key.trim() {
            "t" => {
                let raw = value.trim();
                let valid =
                    !raw.is_empty() && raw.len() <= 12 && raw.bytes().all(|b| b.is_ascii_digit());
                if !valid || timestamp.is_some() {
                    return Err(SignatureError::Malformed);
                }
                timestamp = Some((
                    raw,
                    raw.parse::<i64>().map_err(|_| SignatureError::Malformed)?,
                ));
            }
            "v1" => {
                saw_v1 = true;
                if let Some(digest) = decode_lower_hex(value.trim()) {
                    v1.push(digest);
                }
            }
            _ => {}
        }
    }
    let Some((timestamp_raw, timestamp)) = timestamp else {
        return Err(SignatureError::Malformed);
    };
    if !saw_v1 {
        return Err(SignatureError::Malformed);
    }
    Ok(SignatureHeader {
        timestamp_raw,
        timestamp,
        v1,
    })
}

/// HMAC-SHA256 of `<timestamp>.<body>` keyed with the whole secret string.
pub fn compute_signature(secret: &str, timestamp: &str, body: &[u8]) -> [u8; 32] {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.finalize().into_bytes().into()
}

/// Verifies a delivery against one or more secrets (two while rotating).
pub fn verify(
    header: Option<&str>,
    body: &[u8],
    secrets: &[SecretString],
    now_secs: i64,
    tolerance_secs: u64,
) -> Result<(), SignatureError> {
    let header = parse_header(header.ok_or(SignatureError::Missing)?)?;
    if now_secs.abs_diff(header.timestamp) > tolerance_secs {
        return Err(SignatureError::OutsideTolerance);
    }
    let mut matched = subtle::Choice::from(0u8);
    for secret in secrets {
        let expected = compute_signature(secret.expose(), header.timestamp_raw, body);
        for candidate in &header.v1 {
            matched |= expected.ct_eq(candidate);
        }
    }
    if bool::from(matched) {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weak_and_placeholder_secrets_are_refused() {
        let check = |s: &str| check_secret_strength(&SecretString::new(s));
        assert_eq!(check("whsec_..."), Err(WeakSecret::Placeholder));
        assert_eq!(check("whsec_test_secret"), Err(WeakSecret::Placeholder));
        assert_eq!(
            check("<whsec from the dashboard>"),
            Err(WeakSecret::Placeholder)
        );
        assert_eq!(
            check("sk_live_0123456789abcdefghijklmnop"),
            Err(WeakSecret::NoPrefix)
        );
        assert_eq!(check("whsec_short"), Err(WeakSecret::TooWeak));
        assert_eq!(
            check(&format!("whsec_{}", "a".repeat(40))),
            Err(WeakSecret::TooWeak)
        );
        assert_eq!(check("whsec_kQ3v9XzR1pL7mN2bT8cW4yH6"), Ok(()));
        let e = check("whsec_zq9").unwrap_err().to_string();
        assert!(!e.contains("zq9"), "never echoes the secret: {e}");
    }

    const VECTOR_SECRET: &str = "whsec_test_secret";
    const VECTOR_HEADER: &str =
        "t=1743890251,v1=11b98dd8f5500109246aa4d9875fad2e97d462560b012a5f50ff924411de0b0f";
    const VECTOR_TIME: i64 = 1_743_890_251;

    fn payload() -> Vec<u8> {
        std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/data/fintoc-signature-vector.payload.json"
        ))
        .expect("vector payload")
    }

    fn secrets(s: &[&str]) -> Vec<SecretString> {
        s.iter().map(|s| SecretString::new(*s)).collect()
    }

    #[test]
    fn official_vector_passes() {
        let body = payload();
        assert_eq!(body.len(), 785);
        assert_eq!(
            verify(
                Some(VECTOR_HEADER),
                &body,
                &secrets(&[VECTOR_SECRET]),
                VECTOR_TIME,
                300
            ),
            Ok(())
        );
        // Within tolerance on either side.
        assert!(verify(
            Some(VECTOR_HEADER),
            &body,
            &secrets(&[VECTOR_SECRET]),
            VECTOR_TIME + 300,
            300
        )
        .is_ok());
        assert!(verify(
            Some(VECTOR_HEADER),
            &body,
            &secrets(&[VECTOR_SECRET]),
            VECTOR_TIME - 300,
            300
        )
        .is_ok());
    }

    #[test]
    fn rotation_accepts_either_secret() {
        let body = payload();
        let both = secrets(&["whsec_new", VECTOR_SECRET]);
        assert!(verify(Some(VECTOR_HEADER), &body, &both, VECTOR_TIME, 300).is_ok());
    }

    #[test]
    fn each_bad_case_fails() {
        let body = payload();
        let ok = secrets(&[VECTOR_SECRET]);
        let check =
            |h: Option<&str>, b: &[u8], s: &[SecretString], now: i64| verify(h, b, s, now, 300);
        assert_eq!(
            check(
                Some(VECTOR_HEADER),
                &body,
                &secrets(&["whsec_wrong"]),
                VECTOR_TIME
            ),
            Err(SignatureError::Mismatch)
        );
        let mut changed = body.clone();
        changed[100] ^= 1;
        assert_eq!(
            check(Some(VECTOR_HEADER), &changed, &ok, VECTOR_TIME),
            Err(SignatureError::Mismatch)
        );
        let upper = VECTOR_HEADER.replace("11b98dd8f5", "11B98DD8F5");
        assert_eq!(
            check(Some(&upper), &body, &ok, VECTOR_TIME),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            check(None, &body, &ok, VECTOR_TIME),
            Err(SignatureError::Missing)
        );
        for malformed in [
            "",
            "garbage",
            "v1=11b98dd8f5500109246aa4d9875fad2e97d462560b012a5f50ff924411de0b0f",
            "t=1743890251",
            "t=abc,v1=00",
            "t=1,t=2,v1=00",
        ] {
            assert_eq!(
                check(Some(malformed), &body, &ok, VECTOR_TIME),
                Err(SignatureError::Malformed),
                "{malformed:?}"
            );
        }
        assert_eq!(
            check(Some(VECTOR_HEADER), &body, &ok, VECTOR_TIME + 301),
            Err(SignatureError::OutsideTolerance)
        );
        assert_eq!(
            check(Some(VECTOR_HEADER), &body, &ok, VECTOR_TIME - 301),
            Err(SignatureError::OutsideTolerance)
        );
        // The secret is used whole: without its prefix it does not match.
        assert_eq!(
            check(
                Some(VECTOR_HEADER),
                &body,
                &secrets(&["test_secret"]),
                VECTOR_TIME
            ),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn header_parsing_is_lenient_about_spaces_and_other_schemes() {
        let body = payload();
        let spaced = "t = 1743890251 , v0=abc, v1=0000000000000000000000000000000000000000000000000000000000000000 , v1= 11b98dd8f5500109246aa4d9875fad2e97d462560b012a5f50ff924411de0b0f";
        assert!(verify(
            Some(spaced),
            &body,
            &secrets(&[VECTOR_SECRET]),
            VECTOR_TIME,
            300
        )
        .is_ok());
    }
}
