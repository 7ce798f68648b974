//! The create-intent Lambda — the merchant's payment API of both flows, behind an
//! API Gateway HTTP API (payload v2): every route `shared::routes` gives to
//! `Function::CreateIntent` — `POST /payment-intents`, `GET /payment-intents/{id}`,
//! `POST /checkout-sessions`, `GET /checkout-sessions/{id}`,
//! `POST /checkout-sessions/{id}/expire`, `POST /payment-intents/{id}/refunds`,
//! `POST /checkout-sessions/{id}/refunds`, `GET /refunds/{id}` and
//! `POST /refunds/{id}/cancel` (`scripts/check_docs.py` holds this list to the table).
//!
//! Thin by design: route (by the one route table, `shared::routes`), pull headers and body out of the request, call
//! [`shared::app::payments::PaymentService`], map its answer to HTTP.

use lambda_http::request::RequestContext;
use lambda_http::{Body, Request, RequestExt, Response};
use shared::app::payments::{CreateInput, PaymentService, PaymentSettings};
use shared::clock::{Clock, SystemClock};
use shared::config::CreateIntentConfig;
use shared::domain::idempotency::CallerId;
use shared::domain::payment::PaymentKind;
use shared::fintoc::{FintocApi, FintocHttpClient, FintocLookup, FintocRefunds};
use shared::http::{error_response, method_not_allowed_response, to_response, ApiError};
use shared::routes::{self, Function, Matched, Operation};
use shared::store::{CreateStore, DynamoStore, EventStore, OrderStore, PaymentStore, RefundStore};

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
    let mode = config.key_mode(&secret_key)?;
    let dynamodb = shared::aws::dynamodb_client(&sdk, config.table.endpoint.as_deref());
    let mut store = DynamoStore::new(dynamodb, &config.table.table_name);
    if let Some(table) = &config.table.idempotency_table_name {
        store = store.with_idempotency_table(table);
    }
    let fintoc = FintocHttpClient::new(
        &config.fintoc_base_url,
        secret_key,
        config.fintoc_versions.clone(),
        config.retry.clone(),
    )?;
    if config.connect_at_init {
        shared::app::open_connections::open_connections(&store, Some(&fintoc)).await;
    }
    let settings = PaymentSettings {
        mode: Some(mode),
        ..config.create_settings()
    };
    Ok(PaymentService::new(store, fintoc, SystemClock, settings))
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
pub async fn handle<S, F, C>(service: &PaymentService<S, F, C>, request: Request) -> Response<Body>
where
    S: CreateStore + PaymentStore + OrderStore + EventStore + RefundStore,
    F: FintocApi + FintocRefunds + FintocLookup,
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
    let method = request.method().as_str();
    match routes::resolve(Function::CreateIntent, method, &path) {
        Matched::Route { route, id } => {
            let id = id.unwrap_or_default();
            to_response(match route.operation {
                Operation::CreateIntent => service.create(input).await,
                Operation::GetIntent => service.get(id).await,
                Operation::CreateSession => service.create_session(input).await,
                Operation::GetSession => service.get_session(id).await,
                Operation::ExpireSession => service.expire_session(id, deadline_ms).await,
                Operation::RefundIntent => {
                    service.create_refund(PaymentKind::Intent, id, input).await
                }
                Operation::RefundSession => {
                    service.create_refund(PaymentKind::Session, id, input).await
                }
                Operation::GetRefund => service.get_refund(id).await,
                Operation::CancelRefund => service.cancel_refund(id, deadline_ms).await,
                // Not this function's: the table never resolves them here.
                Operation::ReceiveWebhook
                | Operation::ResolveOrder
                | Operation::AuditLog
                | Operation::Queue
                | Operation::Find
                | Operation::ResendEvent
                | Operation::RecoverEvents
                | Operation::ListEndpoints
                | Operation::EnableEndpoint
                | Operation::DisableEndpoint
                | Operation::Show
                | Operation::ReconcileOne
                | Operation::Acknowledge => Err(ApiError::route_not_found(method, &path)),
            })
        }
        Matched::MethodNotAllowed { allowed } => {
            method_not_allowed_response(method, &path, &allowed)
        }
        Matched::NotFound => error_response(&ApiError::route_not_found(method, &path)),
    }
}
