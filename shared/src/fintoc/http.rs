//! [`FintocHttpClient`], the ports over Fintoc's REST API: one request per attempt,
//! retries with backoff within the invocation's budget, lists read page by page.

use super::ports::*;
use super::types::*;
use super::verdicts::*;
use crate::domain::idempotency::FintocKey;
use crate::domain::refund::RefundReport;
use crate::domain::report::PaymentReport;
use crate::domain::session::SessionReport;
use crate::secrets::SecretString;
use std::future::Future;
use std::time::Duration;

/// One HTTP answer: status, `Retry-After`, body.
pub(super) type Answer = (u16, Option<Duration>, Vec<u8>);

/// The query of the `rel="next"` link of a `Link` header (Fintoc pages its lists
/// so), to ask the next page of the same list at this client's own base URL.
pub fn next_page_query(link: &str) -> Option<String> {
    link.split(',').find_map(|part| {
        let (target, params) = part.split_once(';')?;
        let is_next = params
            .split(';')
            .any(|p| matches!(p.trim(), "rel=\"next\"" | "rel=next"));
        let target = target.trim().strip_prefix('<')?.strip_suffix('>')?;
        is_next.then(|| target.split_once('?').map(|(_, q)| q.to_string()))?
    })
}

/// Retry behaviour for calls to Fintoc.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries after the first attempt.
    pub max_retries: u32,
    /// First backoff; doubles per retry.
    pub base_delay: Duration,
    /// Largest backoff (also caps a `Retry-After` from Fintoc).
    pub max_delay: Duration,
    /// Timeout of each attempt.
    pub attempt_timeout: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_retries: 2,
            base_delay: Duration::from_millis(250),
            max_delay: Duration::from_secs(4),
            attempt_timeout: Duration::from_secs(8),
        }
    }
}

/// The shortest attempt worth starting: less time than this left in the budget
/// and the client gives up instead.
pub const MIN_USEFUL_ATTEMPT: Duration = Duration::from_millis(1_000);

impl RetryPolicy {
    /// The timeout of an attempt started `elapsed` into a call with `budget`: the
    /// configured one, cut to what is left; `None` when too little is left to try.
    pub fn attempt_timeout_within(
        &self,
        elapsed: Duration,
        budget: Option<Duration>,
    ) -> Option<Duration> {
        let Some(budget) = budget else {
            return Some(self.attempt_timeout);
        };
        let left = budget.checked_sub(elapsed)?;
        let needed = MIN_USEFUL_ATTEMPT.min(self.attempt_timeout);
        (left >= needed).then(|| self.attempt_timeout.min(left))
    }

    /// Backoff before retry number `retry` (0-based): exponential with full jitter
    /// on top, capped. `retry_after` from a 429 is honoured up to the cap.
    pub fn delay(&self, retry: u32, retry_after: Option<Duration>, jitter: f64) -> Duration {
        let exp = self
            .base_delay
            .saturating_mul(2u32.saturating_pow(retry.min(16)));
        let base = retry_after.unwrap_or(exp).max(exp).min(self.max_delay);
        let jitter = self.base_delay.mul_f64(jitter.clamp(0.0, 1.0));
        (base + jitter).min(self.max_delay.max(self.base_delay))
    }
}

/// A `reqwest` client builder on the process's one TLS stack (rustls with aws-lc-rs,
/// shared with the AWS SDK). Every HTTP client of the project starts here. It trusts
/// the Mozilla roots compiled in (`webpki-roots`: nothing read from disk), plus the
/// certificates of `SSL_CERT_FILE` when it is set — the variable the AWS SDK's client
/// honours too; Lambda does not set it (the benchmark's throwaway CA does).
pub fn http_client_builder() -> reqwest::ClientBuilder {
    // Installing twice is harmless: the first provider stays.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let mut builder = reqwest::Client::builder();
    for root in extra_roots(std::env::var_os("SSL_CERT_FILE").as_deref()) {
        builder = builder.add_root_certificate(root);
    }
    builder
}

/// The certificates of the PEM file `path` (none when unset or unreadable; a warning
/// says which).
pub(super) fn extra_roots(path: Option<&std::ffi::OsStr>) -> Vec<reqwest::Certificate> {
    let Some(path) = path else {
        return Vec::new();
    };
    match std::fs::read(path).map(|pem| reqwest::Certificate::from_pem_bundle(&pem)) {
        Ok(Ok(roots)) => roots,
        Ok(Err(e)) => {
            tracing::warn!(file = ?path, error = %e, "SSL_CERT_FILE holds no PEM certificates");
            Vec::new()
        }
        Err(e) => {
            tracing::warn!(file = ?path, error = %e, "SSL_CERT_FILE cannot be read");
            Vec::new()
        }
    }
}

/// Fintoc over HTTPS with `reqwest`; built once at init and shared.
#[derive(Debug, Clone)]
pub struct FintocHttpClient {
    http: reqwest::Client,
    base_url: String,
    secret_key: SecretString,
    versions: ApiVersions,
    retry: RetryPolicy,
}

impl FintocHttpClient {
    /// A client for `base_url` (e.g. `https://api.fintoc.com`).
    pub fn new(
        base_url: &str,
        secret_key: SecretString,
        versions: ApiVersions,
        retry: RetryPolicy,
    ) -> Result<Self, reqwest::Error> {
        let http = http_client_builder()
            .timeout(retry.attempt_timeout)
            .connect_timeout(retry.attempt_timeout.min(Duration::from_secs(3)))
            .pool_idle_timeout(Duration::from_secs(50))
            .user_agent(concat!(
                "fintoc-payment-intents-lambda/",
                env!("CARGO_PKG_VERSION")
            ))
            .build()?;
        Ok(Self {
            http,
            base_url: base_url.trim_end_matches('/').to_string(),
            secret_key,
            versions,
            retry,
        })
    }

    /// Opens (and verifies) the connection to Fintoc before the first request needs
    /// it: one `GET /v1/payment_intents/pi_warm_up` (no such intent: Fintoc answers
    /// 404), which pays DNS, TCP and the TLS handshake at init. Returns Fintoc's HTTP
    /// status: 401 means the secret key was refused.
    pub async fn open_connection(&self, timeout: Duration) -> Result<u16, FintocError> {
        let path = ["v1", "payment_intents", "pi_warm_up"];
        self.attempt(
            &path,
            &self.versions.payment_intents,
            false,
            None,
            None,
            timeout,
        )
        .await
        .map(|(status, _, _)| status)
        .map_err(|e| FintocError::NoAnswer {
            timed_out: e.is_timeout(),
            detail: describe_transport_error(&e),
            attempts: 1,
        })
    }

    /// One request to `path` (segments, each escaped) under `version`: a `POST` of
    /// `body` with `idempotency_key` when there is a body, else a `GET` (or a bare
    /// `POST` when `post` is set).
    #[allow(clippy::too_many_arguments)]
    async fn attempt(
        &self,
        path: &[&str],
        version: &str,
        post: bool,
        body: Option<&(dyn erased::Body + Sync)>,
        idempotency_key: Option<&FintocKey>,
        timeout: Duration,
    ) -> Result<Answer, reqwest::Error> {
        let mut url = reqwest::Url::parse(&self.base_url).expect("a valid base URL");
        url.path_segments_mut()
            .expect("a base URL that can have a path")
            .pop_if_empty()
            .extend(path);
        let mut builder = if post || body.is_some() {
            self.http.post(url)
        } else {
            self.http.get(url)
        }
        .timeout(timeout)
        .header("Authorization", self.secret_key.expose())
        .header("Fintoc-Version", version);
        if let Some(key) = idempotency_key {
            builder = builder.header("Idempotency-Key", key.as_str());
        }
        if let Some(body) = body {
            builder = builder
                .header("Content-Type", "application/json")
                .body(body.to_json());
        }
        read_answer(builder.send().await?).await
    }
}

/// Request bodies as JSON, behind one object-safe trait.
mod erased {
    /// A body that serializes to JSON.
    pub trait Body {
        /// Its JSON bytes.
        fn to_json(&self) -> Vec<u8>;
    }

    impl<T: serde::Serialize> Body for T {
        fn to_json(&self) -> Vec<u8> {
            serde_json::to_vec(self).expect("request bodies serialize")
        }
    }
}

/// The status, `Retry-After` (seconds) and body of a response.
async fn read_answer(response: reqwest::Response) -> Result<Answer, reqwest::Error> {
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    let body = response.bytes().await?;
    Ok((status, retry_after, body.to_vec()))
}

impl FintocHttpClient {
    /// Sends a request with `send` until `judge` is done with an answer, retrying
    /// what may pass on a retry (with backoff, `Retry-After` on a 429), and giving
    /// up in time to answer within `budget`.
    async fn with_retries<T, F, Fut>(
        &self,
        budget: Option<Duration>,
        send: F,
        judge: fn(u16, &[u8]) -> Verdict<T>,
    ) -> Result<T, FintocError>
    where
        F: Fn(Duration) -> Fut,
        Fut: Future<Output = Result<Answer, reqwest::Error>>,
    {
        let started = std::time::Instant::now();
        let mut attempts = 0;
        loop {
            attempts += 1;
            let timeout = self
                .retry
                .attempt_timeout_within(started.elapsed(), budget)
                .unwrap_or(MIN_USEFUL_ATTEMPT);
            let (failure, retry_after) = match send(timeout).await {
                Ok((status, retry_after, body)) => match judge(status, &body) {
                    Verdict::Done(result) => return result,
                    Verdict::Retry => (
                        FintocError::Unavailable { status, attempts },
                        retry_after.filter(|_| status == 429),
                    ),
                },
                Err(e) => (
                    FintocError::NoAnswer {
                        timed_out: e.is_timeout(),
                        detail: describe_transport_error(&e),
                        attempts,
                    },
                    None,
                ),
            };
            if attempts > self.retry.max_retries {
                tracing::warn!(error = %failure, "giving up on Fintoc");
                return Err(failure);
            }
            let delay = self.retry.delay(attempts - 1, retry_after, fastrand::f64());
            let next_start = started.elapsed() + delay;
            if self
                .retry
                .attempt_timeout_within(next_start, budget)
                .is_none()
            {
                tracing::warn!(error = %failure, "giving up on Fintoc: no time left in the invocation for another attempt");
                return Err(failure);
            }
            tracing::info!(error = %failure, delay_ms = delay.as_millis() as u64, "retrying Fintoc");
            tokio::time::sleep(delay).await;
        }
    }
}

impl FintocApi for FintocHttpClient {
    async fn create_payment_intent(
        &self,
        request: &CreatePaymentIntent,
        idempotency_key: &FintocKey,
        budget: Option<Duration>,
    ) -> Result<FintocPaymentIntent, FintocError> {
        let version = &self.versions.payment_intents;
        self.with_retries(
            budget,
            |timeout| {
                self.attempt(
                    &["v1", "payment_intents"],
                    version,
                    true,
                    Some(request),
                    Some(idempotency_key),
                    timeout,
                )
            },
            judge,
        )
        .await
    }

    async fn create_checkout_session(
        &self,
        request: &CreateCheckoutSession,
        idempotency_key: &FintocKey,
        budget: Option<Duration>,
    ) -> Result<FintocCheckoutSession, FintocError> {
        let version = &self.versions.checkout_sessions;
        self.with_retries(
            budget,
            |timeout| {
                self.attempt(
                    &["v1", "checkout_sessions"],
                    version,
                    true,
                    Some(request),
                    Some(idempotency_key),
                    timeout,
                )
            },
            judge,
        )
        .await
    }

    async fn expire_checkout_session(
        &self,
        id: &str,
        budget: Option<Duration>,
    ) -> Result<Option<SessionReport>, FintocError> {
        let version = &self.versions.checkout_sessions;
        let path = ["v1", "checkout_sessions", id, "expire"];
        self.with_retries(
            budget,
            |timeout| self.attempt(&path, version, true, None, None, timeout),
            judge_expire,
        )
        .await
    }

    async fn expire_payment_intent(
        &self,
        id: &str,
        budget: Option<Duration>,
    ) -> Result<Option<PaymentReport>, FintocError> {
        let version = &self.versions.payment_intents;
        let path = ["v1", "payment_intents", id, "expire"];
        self.with_retries(
            budget,
            |timeout| self.attempt(&path, version, true, None, None, timeout),
            judge_intent_expire,
        )
        .await
    }
}

impl FintocLookup for FintocHttpClient {
    async fn get_payment_intent(
        &self,
        id: &str,
        budget: Option<Duration>,
    ) -> Result<Option<PaymentReport>, FintocError> {
        let version = &self.versions.payment_intents;
        let path = ["v1", "payment_intents", id];
        self.with_retries(
            budget,
            |timeout| self.attempt(&path, version, false, None, None, timeout),
            judge_lookup,
        )
        .await
    }

    async fn get_checkout_session(
        &self,
        id: &str,
        budget: Option<Duration>,
    ) -> Result<Option<SessionReport>, FintocError> {
        let version = &self.versions.checkout_sessions;
        let path = ["v1", "checkout_sessions", id];
        self.with_retries(
            budget,
            |timeout| self.attempt(&path, version, false, None, None, timeout),
            judge_session_lookup,
        )
        .await
    }
    async fn get_refund(
        &self,
        id: &str,
        budget: Option<Duration>,
    ) -> Result<Option<RefundReport>, FintocError> {
        let path = ["v1", "refunds", id];
        self.with_retries(
            budget,
            |timeout| self.attempt(&path, REFUNDS_API_VERSION, false, None, None, timeout),
            judge_refund_lookup,
        )
        .await
    }

    async fn list_refunds(
        &self,
        since: &str,
        until: Option<&str>,
        budget: Option<Duration>,
    ) -> Result<RefundList, FintocError> {
        let (refunds, complete) = self
            .list_pages(
                "refunds",
                REFUNDS_API_VERSION,
                since,
                until,
                budget,
                judge_refund_list,
            )
            .await?;
        Ok(RefundList { refunds, complete })
    }

    async fn list_payment_intents(
        &self,
        since: &str,
        budget: Option<Duration>,
    ) -> Result<PaymentList, FintocError> {
        let version = self.versions.payment_intents.clone();
        let (payments, complete) = self
            .list_pages(
                "payment_intents",
                &version,
                since,
                None,
                budget,
                judge_payment_list,
            )
            .await?;
        Ok(PaymentList { payments, complete })
    }
}

impl FintocHttpClient {
    /// `GET /v1/<resource>?since=…&until=…&per_page=300` under `version`, following
    /// Fintoc's `Link: rel="next"` pages up to [`MAX_LIST_PAGES`]: the items read
    /// and whether every page was.
    async fn list_pages<T>(
        &self,
        resource: &str,
        version: &str,
        since: &str,
        until: Option<&str>,
        budget: Option<Duration>,
        judge_page: fn(u16, &[u8]) -> Verdict<Vec<T>>,
    ) -> Result<(Vec<T>, bool), FintocError> {
        let mut url = reqwest::Url::parse(&self.base_url).expect("a valid base URL");
        url.path_segments_mut()
            .expect("a base URL that can have a path")
            .pop_if_empty()
            .extend(["v1", resource]);
        url.query_pairs_mut().append_pair("since", since);
        if let Some(until) = until {
            url.query_pairs_mut().append_pair("until", until);
        }
        url.query_pairs_mut().append_pair("per_page", "300");
        let mut items = Vec::new();
        for _ in 0..MAX_LIST_PAGES {
            let link = std::sync::Mutex::new(None::<String>);
            let page = self
                .with_retries(
                    budget,
                    |timeout| {
                        let request = self
                            .http
                            .get(url.clone())
                            .timeout(timeout)
                            .header("Authorization", self.secret_key.expose())
                            .header("Fintoc-Version", version);
                        let link = &link;
                        async move {
                            let response = request.send().await?;
                            *link.lock().unwrap_or_else(|e| e.into_inner()) = response
                                .headers()
                                .get("link")
                                .and_then(|v| v.to_str().ok())
                                .map(str::to_string);
                            read_answer(response).await
                        }
                    },
                    judge_page,
                )
                .await?;
            items.extend(page);
            let next = link
                .into_inner()
                .unwrap_or_else(|e| e.into_inner())
                .as_deref()
                .and_then(next_page_query);
            match next {
                Some(query) => url.set_query(Some(&query)),
                None => return Ok((items, true)),
            }
        }
        Ok((items, false))
    }
}

impl FintocRefunds for FintocHttpClient {
    async fn create_refund(
        &self,
        request: &CreateRefund,
        idempotency_key: &FintocKey,
        budget: Option<Duration>,
    ) -> Result<RefundReport, FintocError> {
        self.with_retries(
            budget,
            |timeout| {
                self.attempt(
                    &["v1", "refunds"],
                    REFUNDS_API_VERSION,
                    true,
                    Some(request),
                    Some(idempotency_key),
                    timeout,
                )
            },
            judge_refund_create,
        )
        .await
    }

    async fn cancel_refund(
        &self,
        id: &str,
        budget: Option<Duration>,
    ) -> Result<Option<RefundReport>, FintocError> {
        let path = ["v1", "refunds", id, "cancel"];
        self.with_retries(
            budget,
            |timeout| self.attempt(&path, REFUNDS_API_VERSION, true, None, None, timeout),
            judge_refund_cancel,
        )
        .await
    }
}

fn describe_transport_error(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timeout".into()
    } else if e.is_connect() {
        "connection failed".into()
    } else {
        "connection dropped".into()
    }
}
