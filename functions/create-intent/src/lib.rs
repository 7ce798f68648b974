//! The create-intent Lambda: `POST /payment-intents` and `GET /payment-intents/{id}`
//! behind an API Gateway HTTP API (payload v2).
//!
//! Thin by design: route, pull headers and body out of the request, call
//! [`shared::app::create_intent::PaymentIntentService`], map its answer to HTTP.

use lambda_http::http::Method;
use lambda_http::request::RequestContext;
use lambda_http::{Body, Request, RequestExt, Response};
use shared::app::create_intent::{CreateInput, PaymentIntentService};
use shared::clock::{Clock, SystemClock};
use shared::config::CreateIntentConfig;
use shared::domain::idempotency::CallerId;
use shared::fintoc::{FintocApi, FintocHttpClient};
use shared::http::{error_response, to_response, ApiError};
use shared::store::{DynamoStore, IdempotencyStore, IntentStore, OrderStore};

/// The service as deployed.
pub type DeployedService = PaymentIntentService<DynamoStore, FintocHttpClient, SystemClock>;

/// Builds every client once, at cold start: AWS config, the secret key, DynamoDB
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
        config.fintoc_api_version.clone(),
        config.retry.clone(),
    )?;
    Ok(PaymentIntentService::new(
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

/// Handles one HTTP request. Never fails: every problem is an HTTP answer.
pub async fn handle<S, F, C>(
    service: &PaymentIntentService<S, F, C>,
    request: Request,
) -> Response<Body>
where
    S: IdempotencyStore + IntentStore + OrderStore,
    F: FintocApi,
    C: Clock,
{
    let path = request.raw_http_path().trim_end_matches('/').to_string();
    let path_id = request
        .path_parameters_ref()
        .and_then(|p| p.first("id"))
        .map(str::to_string);
    let is_collection = path.ends_with("/payment-intents");
    let item_id = path_id.or_else(|| {
        path.rsplit_once("/payment-intents/")
            .map(|(_, id)| id.to_string())
            .filter(|id| !id.contains('/'))
    });
    match (request.method(), is_collection, item_id) {
        (&Method::POST, true, _) => {
            let header = |name: &str| request.headers().get(name).and_then(|v| v.to_str().ok());
            let deadline_ms = request
                .lambda_context_ref()
                .map(|c| c.deadline as i64)
                .filter(|d| *d > 0);
            let caller = caller(&request);
            let input = CreateInput {
                caller: &caller,
                idempotency_key: header("idempotency-key"),
                content_type: header("content-type"),
                body: request.body().as_ref(),
                deadline_ms,
            };
            to_response(service.create(input).await)
        }
        (&Method::GET, false, Some(id)) => to_response(service.get(&id).await),
        (_, true, _) | (_, false, Some(_)) => error_response(&ApiError::method_not_allowed(
            request.method().as_str(),
            &path,
        )),
        _ => error_response(&ApiError::route_not_found(request.method().as_str(), &path)),
    }
}
