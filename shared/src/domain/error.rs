//! Refusals of input: why a request (or a delivery) was refused before anything
//! was written or sent. The domain names their kind; the HTTP edge gives each kind
//! a status (`http/error.rs`).

/// What kind of refusal an [`InputError`] is; the HTTP edge maps each to a status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputErrorKind {
    /// The request is malformed: a field is missing, of the wrong type or invalid.
    Malformed,
    /// The body is larger than accepted.
    TooLarge,
    /// The body is not JSON.
    UnsupportedMediaType,
    /// Well-formed, but this merchant's limits refuse it.
    OverLimit,
    /// The resource asked for does not exist.
    NotFound,
}

/// Why a request was refused before anything was written or sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct InputError {
    /// What kind of refusal.
    pub kind: InputErrorKind,
    /// Stable machine-readable code, e.g. `invalid_amount`.
    pub code: &'static str,
    /// Human-readable explanation.
    pub message: String,
    /// The request field at fault, when there is one.
    pub param: Option<String>,
}

impl InputError {
    /// A refusal of `kind` that names no field.
    pub fn new(kind: InputErrorKind, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            kind,
            code,
            message: message.into(),
            param: None,
        }
    }

    /// A malformed request field.
    pub fn invalid_param(code: &'static str, param: &str, message: impl Into<String>) -> Self {
        Self::new(InputErrorKind::Malformed, code, message).with_param(param)
    }

    /// Names the field at fault.
    pub fn with_param(mut self, param: impl Into<String>) -> Self {
        self.param = Some(param.into());
        self
    }
}
