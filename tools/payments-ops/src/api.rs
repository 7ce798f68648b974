//! The operations API, called with the operator's AWS credentials: each request
//! signed with SigV4 for `execute-api` (the API's IAM authorizer verifies it and
//! passes the caller's principal to the function). Its URL: `--url`, or the local
//! stack's `OPERATIONS_URL` in `.local/stack.env`.

use aws_credential_types::provider::ProvideCredentials;
use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use serde_json::Value;
use std::time::SystemTime;

/// A client of one deployment's operations API.
pub struct OperationsApi {
    url: String,
    region: String,
    identity: Identity,
    http: reqwest::Client,
}

/// Why a call got no answer from the function (a refusal is an answer).
pub type CallError = String;

impl OperationsApi {
    /// The API at `url`, signed with the default credential chain's credentials
    /// (environment, profile, SSO, instance role), in `AWS_REGION` (us-east-1 when
    /// unset). The local stack's (`local`) takes any: `AWS_ACCESS_KEY_ID` when set
    /// (the gateway names the operator after it), else `local-operator`.
    pub async fn connect(url: &str, local: bool) -> Result<Self, CallError> {
        let (region, credentials) = if local {
            let key_id =
                std::env::var("AWS_ACCESS_KEY_ID").unwrap_or_else(|_| "local-operator".into());
            let credentials = aws_credential_types::Credentials::new(
                key_id,
                "local",
                None,
                None,
                "payments-ops local stack",
            );
            ("us-east-1".to_string(), credentials)
        } else {
            let sdk = shared::aws::load_sdk_config().await;
            let region = sdk
                .region()
                .map(|r| r.to_string())
                .unwrap_or_else(|| "us-east-1".into());
            let provider = sdk
                .credentials_provider()
                .ok_or("no AWS credentials: set AWS_PROFILE or AWS_ACCESS_KEY_ID")?;
            let credentials = provider
                .provide_credentials()
                .await
                .map_err(|e| format!("no AWS credentials: {e}"))?;
            (region, credentials)
        };
        let http = shared::fintoc::http_client_builder()
            .timeout(std::time::Duration::from_secs(30))
            .build()
            .map_err(|e| format!("the HTTP client: {e}"))?;
        Ok(Self {
            url: url.trim_end_matches('/').to_string(),
            region,
            identity: credentials.into(),
            http,
        })
    }

    /// One signed call: the answer's status and JSON body.
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        query: &[(&str, &str)],
        body: Option<&Value>,
    ) -> Result<(u16, Value), CallError> {
        let mut url = reqwest::Url::parse(&format!("{}{path}", self.url))
            .map_err(|e| format!("{}{path}: {e}", self.url))?;
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        let host = match url.port() {
            Some(port) => format!("{}:{port}", url.host_str().unwrap_or_default()),
            None => url.host_str().unwrap_or_default().to_string(),
        };
        let url = url.to_string();
        let body = body.map(Value::to_string).unwrap_or_default();
        let headers = [
            ("host", host.as_str()),
            ("content-type", "application/json"),
        ];
        let params = v4::SigningParams::builder()
            .identity(&self.identity)
            .region(&self.region)
            .name("execute-api")
            .time(SystemTime::now())
            .settings(SigningSettings::default())
            .build()
            .map_err(|e| format!("signing: {e}"))?
            .into();
        let signable = SignableRequest::new(
            method,
            &url,
            headers.iter().copied(),
            SignableBody::Bytes(body.as_bytes()),
        )
        .map_err(|e| format!("signing: {e}"))?;
        let (instructions, _) = sign(signable, &params)
            .map_err(|e| format!("signing: {e}"))?
            .into_parts();
        let method = reqwest::Method::from_bytes(method.as_bytes()).map_err(|e| e.to_string())?;
        let mut request = self
            .http
            .request(method, &url)
            .header("content-type", "application/json")
            .body(body);
        for (name, value) in instructions.headers() {
            request = request.header(name, value);
        }
        let response = request
            .send()
            .await
            .map_err(|e| format!("{url}: no answer ({e})"))?;
        let status = response.status().as_u16();
        let text = response.text().await.map_err(|e| e.to_string())?;
        let json = serde_json::from_str(&text).unwrap_or_else(|_| {
            serde_json::json!({"error": {"type": "api_error", "code": "not_json", "message": text}})
        });
        Ok((status, json))
    }
}
