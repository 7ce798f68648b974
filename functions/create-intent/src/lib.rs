//! The create-intent Lambda — the merchant's payment API of both flows, behind an
//! API Gateway HTTP API (payload v2): `POST /payment-intents`,
//! `GET /payment-intents/{id}`, `POST /checkout-sessions`,
//! `GET /checkout-sessions/{id}` and `POST /checkout-sessions/{id}/expire`.
//!
//! Thin by design: route, pull headers and body out of the request, call
//! [`shared::app::payments::PaymentService`], map its answer to HTTP.

use lambda_http::http::Method;
use lambda_http::request::RequestContext;
use lambda_http::{Body, Request, RequestExt, Response};
use shared::app::payments::{CreateInput, PaymentService};
use shared::clock::{Clock, SystemClock};
use shared::config::CreateIntentConfig;
use shared::domain::idempotency::CallerId;
use shared::fintoc::{FintocApi, FintocHttpClient};
use shared::http::{error_response, to_response, ApiError};
use shared::store::{DynamoStore, EventStore, IdempotencyStore, OrderStore, PaymentStore};

/// The service as deployed.
pub type DeployedService = PaymentService<DynamoStore, FintocHttpClient, SystemClock>;

/// Builds every client once, at cold start (and opens their connections unless
/// `CONNECT_AT_INIT=false`): AWS config, the secret key, DynamoDB
/// and the Fintoc HTTP client.
pub async fn init(config: &CreateIntentConfig) -> Result<DeployedService, lambda_http::Error> {
    let sdk = shared::aws::load_sdk_config().await;
    let secret_key = config
        .secret_key_source
        .resolve(&sdk)
        .await
        .map_err(|e| format!("loading the Fintoc secret key: {e}"))?;
    config.check_key_mode(&secret_key)?;
    let dynamodb = shared::aws::dynamodb_client(&sdk, config.table.endpoint.as_deref());
    let store = DynamoStore::new(dynamodb, &config.table.table_name);
    let fintoc = FintocHttpClient::new(
        &config.fintoc_base_url,
        secret_key,
        config.fintoc_versions.clone(),
        config.retry.clone(),
    )?;
    if config.connect_at_init {
        shared::app::open_connections::open_connections(&store, Some(&fintoc)).await;
    }
    Ok(PaymentService::new(
        store,
        fintoc,
        SystemClock,
        config.create_settings(),
    ))
}

/// Who is calling, from the authorizer API Gateway ran: the IAM principal, else the
/// JWT's issuer and subject, else anonymous (no authorizer, as in the local stack).
pub fn caller(request: &Request) -> CallerId {
    let authorizer = match request.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(ctx)) => ctx.authorizer.as_ref(),
        _ => None,
    };
    let Some(authorizer) = authorizer else {
        return CallerId::anonymous();
    };
    if let Some(arn) = authorizer.iam.as_ref().and_then(|i| i.user_arn.as_deref()) {
        return CallerId::iam(arn);
    }
    if let Some(jwt) = &authorizer.jwt {
        if let Some(subject) = jwt.claims.get("sub") {
            let issuer = jwt.claims.get("iss").map_or("", String::as_str);
            return CallerId::jwt(issuer, subject);
        }
    }
    CallerId::anonymous()
}

/// Which resource a path names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// `/payment-intents`.
    Intents,
    /// `/payment-intents/{id}`.
    Intent(String),
    /// `/checkout-sessions`.
    Sessions,
    /// `/checkout-sessions/{id}`.
    Session(String),
    /// `/checkout-sessions/{id}/expire`.
    ExpireSession(String),
}

/// Reads the route from the request path (after any stage prefix).
pub fn route(path: &str) -> Option<Route> {
    let segments: Vec<&str> = path.trim_end_matches('/').split('/').collect();
    let at = segments
        .iter()
        .rposition(|s| *s == "payment-intents" || *s == "checkout-sessions")?;
    let id = |s: &&str| !s.is_empty();
    match (segments[at], &segments[at + 1..]) {
        ("payment-intents", []) => Some(Route::Intents),
        ("payment-intents", [id_]) if id(id_) => Some(Route::Intent(id_.to_string())),
        ("checkout-sessions", []) => Some(Route::Sessions),
        ("checkout-sessions", [id_]) if id(id_) => Some(Route::Session(id_.to_string())),
        ("checkout-sessions", [id_, "expire"]) if id(id_) => {
            Some(Route::ExpireSession(id_.to_string()))
        }
        _ => None,
    }
}

/// Handles one HTTP request. Never fails: every problem is an HTTP answer.
pub async fn handle<S, F, C>(service: &PaymentService<S, F, C>, request: Request) -> Response<Body>
where
    S: IdempotencyStore + PaymentStore + OrderStore + EventStore,
    F: FintocApi,
    C: Clock,
{
    let path = request.raw_http_path().trim_end_matches('/').to_string();
    let deadline_ms = request
        .lambda_context_ref()
        .map(|c| c.deadline as i64)
        .filter(|d| *d > 0);
    let header = |name: &str| request.headers().get(name).and_then(|v| v.to_str().ok());
    let caller = caller(&request);
    let input = CreateInput {
        caller: &caller,
        idempotency_key: header("idempotency-key"),
        content_type: header("content-type"),
        body: request.body().as_ref(),
        deadline_ms,
    };
    let method = request.method();
    match (method, route(&path)) {
        (&Method::POST, Some(Route::Intents)) => to_response(service.create(input).await),
        (&Method::GET, Some(Route::Intent(id))) => to_response(service.get(&id).await),
        (&Method::POST, Some(Route::Sessions)) => to_response(service.create_session(input).await),
        (&Method::GET, Some(Route::Session(id))) => to_response(service.get_session(&id).await),
        (&Method::POST, Some(Route::ExpireSession(id))) => {
            to_response(service.expire_session(&id, deadline_ms).await)
        }
        (_, Some(_)) => error_response(&ApiError::method_not_allowed(method.as_str(), &path)),
        (_, None) => error_response(&ApiError::route_not_found(method.as_str(), &path)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_of_both_flows() {
        assert_eq!(route("/payment-intents"), Some(Route::Intents));
        assert_eq!(
            route("/prod/payment-intents/pi_1"),
            Some(Route::Intent("pi_1".into()))
        );
        assert_eq!(route("/checkout-sessions/"), Some(Route::Sessions));
        assert_eq!(
            route("/checkout-sessions/cs_1"),
            Some(Route::Session("cs_1".into()))
        );
        assert_eq!(
            route("/checkout-sessions/cs_1/expire"),
            Some(Route::ExpireSession("cs_1".into()))
        );
        for none in [
            "/",
            "/payment-intents/pi_1/expire",
            "/checkout-sessions/cs_1/x",
            "/other",
        ] {
            assert_eq!(route(none), None, "{none}");
        }
    }
}
