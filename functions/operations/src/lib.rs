//! The operations Lambda — the operators' API, on its own API Gateway HTTP API
//! where every route is IAM-authorized (SigV4): every route `shared::routes` gives
//! to `Function::Operations` — `POST /ops/orders/{id}/resolve`, `GET /ops/queue`,
//! `GET /ops/find/{id}`, `GET /ops/audit-log`, `POST /ops/events/{id}/resend`,
//! `POST /ops/events/recover`, `GET /ops/endpoints`,
//! `POST /ops/endpoints/{id}/enable`, `POST /ops/endpoints/{id}/disable`,
//! `GET /ops/show/{id}`, `POST /ops/reconcile/{id}` and `POST /ops/queue/acknowledge`
//! (`scripts/check_docs.py` holds this list to the table).
//! Its role is the only one allowed to write resolutions and audit entries.
//!
//! Thin by design: route, take the operator (the caller's IAM principal, which API
//! Gateway's authorizer verified) and the body, call [`shared::app::operations`],
//! map its answer to HTTP.

use lambda_http::request::RequestContext;
use lambda_http::{Body, Request, RequestExt, Response};
use serde_json::json;
use shared::app::operations::{
    acknowledge, audit_log, find, parse_resolve_body, queue, resolve, OperatorAct,
};
use shared::app::operator_events::{
    endpoints, parse_act_body, parse_since, recover_events, resend_event, set_endpoint,
};
use shared::app::operator_show::{reconcile, show};
use shared::app::reconcile::{ReconcileService, ReconcileSettings, TokioPause};
use shared::clock::{format_rfc3339_ms, Clock, SystemClock};
use shared::config::{OperationsConfig, LOCAL_OPERATOR_HEADER};
use shared::domain::resolution::ResolveRequest;
use shared::fintoc::{FintocHttpClient, FintocLookup};
use shared::http::{error_response, method_not_allowed_response, to_response, ApiError, Reply};
use shared::routes::{self, Function, Matched, Operation};
use shared::store::{
    DeliveryStore, DynamoStore, EventStore, OperationsStore, PaymentStore, RefundStore,
    ScheduleStore,
};

/// What the operations function works with.
pub struct OperationsService<S, F, C> {
    /// The table.
    pub store: S,
    /// Fintoc, asked about a payment before a resolution.
    pub fintoc: F,
    /// The time of resolutions and audit entries.
    pub clock: C,
    /// Whether the local gateway's `x-local-operator` header names the operator
    /// (the local stack only: see `OperationsConfig`).
    pub trust_local_operator_header: bool,
    /// The merchant events' destinations, as the dispatcher names them.
    pub destinations: Vec<String>,
}

/// The service as deployed.
pub type DeployedService = OperationsService<DynamoStore, FintocHttpClient, SystemClock>;

/// Builds every client once, at cold start.
pub async fn init(config: &OperationsConfig) -> Result<DeployedService, lambda_http::Error> {
    let sdk = shared::aws::load_sdk_config().await;
    let secret_key = config
        .fintoc
        .secret_key_source
        .resolve(&sdk)
        .await
        .map_err(|e| format!("loading the Fintoc secret key: {e}"))?;
    let mode = config.fintoc.key_mode(&secret_key)?;
    if config.trust_local_operator_header && mode == "live" {
        return Err("OPERATIONS_LOCAL_OPERATOR_HEADER is for the local stack: a live deployment takes its operator from the IAM authorizer only".into());
    }
    let dynamodb = shared::aws::dynamodb_client(&sdk, config.table.endpoint.as_deref());
    let fintoc = FintocHttpClient::new(
        &config.fintoc.base_url,
        secret_key,
        config.fintoc.versions.clone(),
        config.fintoc.retry.clone(),
    )?;
    Ok(OperationsService {
        store: DynamoStore::new(dynamodb, &config.table.table_name),
        fintoc,
        clock: SystemClock,
        trust_local_operator_header: config.trust_local_operator_header,
        destinations: config.destinations.clone(),
    })
}

/// The operator: the caller's IAM principal, as API Gateway's IAM authorizer
/// verified it — or, when `trust_local_header` (the local stack), the principal
/// the local gateway names in `x-local-operator`. `None`: no principal, and
/// nothing is done.
pub fn operator(request: &Request, trust_local_header: bool) -> Option<String> {
    let from_authorizer = match request.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(ctx)) => ctx
            .authorizer
            .as_ref()
            .and_then(|a| a.iam.as_ref())
            .and_then(|iam| iam.user_arn.clone()),
        _ => None,
    };
    let from_local_gateway = || {
        trust_local_header
            .then(|| request.headers().get(LOCAL_OPERATOR_HEADER))
            .flatten()
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    from_authorizer
        .or_else(from_local_gateway)
        .filter(|arn| !arn.trim().is_empty())
}

/// Handles one HTTP request. Never fails: every problem is an HTTP answer.
pub async fn handle<S, F, C>(
    service: &OperationsService<S, F, C>,
    request: Request,
) -> Response<Body>
where
    S: EventStore
        + PaymentStore
        + OperationsStore
        + DeliveryStore
        + ScheduleStore
        + RefundStore
        + Clone,
    F: FintocLookup + Clone,
    C: Clock + Clone,
{
    let path = request.raw_http_path().trim_end_matches('/').to_string();
    let method = request.method().as_str();
    let route = match routes::resolve(Function::Operations, method, &path) {
        Matched::Route { route, id } => (route.operation, id.unwrap_or_default().to_string()),
        Matched::MethodNotAllowed { allowed } => {
            return method_not_allowed_response(method, &path, &allowed)
        }
        Matched::NotFound => return error_response(&ApiError::route_not_found(method, &path)),
    };
    let Some(actor) = operator(&request, service.trust_local_operator_header) else {
        return error_response(&ApiError::invalid_request(
            403,
            "operator_required",
            "The operations API answers IAM principals only (SigV4, through its API's IAM authorizer).",
        ));
    };
    to_response(match route {
        (Operation::ResolveOrder, order_id) => {
            resolve_order(service, &request, order_id, actor).await
        }
        (Operation::Find, id) => find(&service.store, &id)
            .await
            .map(|matches| Reply::new(200, json!({ "matches": matches }).to_string()))
            .map_err(ApiError::from),
        (Operation::Queue, _) => queue(&service.store)
            .await
            .map(|items| Reply::new(200, json!({ "items": items }).to_string()))
            .map_err(ApiError::from),
        (Operation::AuditLog, _) => {
            let subject = request
                .query_string_parameters_ref()
                .and_then(|q| q.first("subject").map(str::to_string));
            audit_log(&service.store, subject.as_deref())
                .await
                .map(|entries| Reply::new(200, json!({ "entries": entries }).to_string()))
                .map_err(ApiError::from)
        }
        (Operation::Show, id) => show(&service.store, &service.fintoc, &service.destinations, &id)
            .await
            .map(|shown| Reply::new(200, shown.to_string()))
            .map_err(ApiError::from),
        (Operation::ReconcileOne, id) => {
            let reconciler = ReconcileService::new(
                service.store.clone(),
                service.fintoc.clone(),
                service.clock.clone(),
                TokioPause,
                ReconcileSettings::default(),
            );
            reconcile(&reconciler, &id)
                .await
                .map(|checked| Reply::new(200, checked.to_string()))
                .map_err(ApiError::from)
        }
        (Operation::ListEndpoints, _) => endpoints(&service.store, &service.destinations)
            .await
            .map(|list| Reply::new(200, json!({ "endpoints": list }).to_string()))
            .map_err(ApiError::from),
        (operation, id) => act(service, &request, operation, &id, actor).await,
    })
}

/// The operator's writes on merchant events, endpoints and the queue, each with its audit
/// entry.
async fn act<S, F, C>(
    service: &OperationsService<S, F, C>,
    request: &Request,
    operation: Operation,
    id: &str,
    actor: String,
) -> Result<Reply, ApiError>
where
    S: OperationsStore + DeliveryStore,
    C: Clock,
{
    let body = parse_act_body(request.body().as_ref())?;
    let act = OperatorAct {
        actor,
        reason: body.reason.unwrap_or_default(),
        ticket: body.ticket.filter(|t| !t.trim().is_empty()),
        entry_id: format!("act_{}", uuid::Uuid::new_v4().simple()),
        at_ms: service.clock.now_ms(),
    };
    let (store, configured) = (&service.store, &service.destinations);
    let answer = match operation {
        Operation::ResendEvent => {
            let resent =
                resend_event(store, configured, id, body.destination.as_deref(), &act).await?;
            json!({ "resent": resent })
        }
        Operation::RecoverEvents => {
            let since_ms = parse_since(body.since.as_deref())?;
            json!(recover_events(store, configured, since_ms, &act).await?)
        }
        Operation::Acknowledge => {
            let id = body.id.as_deref().unwrap_or_default();
            json!({ "acknowledged": acknowledge(store, id, &act).await? })
        }
        Operation::EnableEndpoint | Operation::DisableEndpoint => {
            let disabled = operation == Operation::DisableEndpoint;
            json!({ "endpoint": set_endpoint(store, configured, id, disabled, &act).await? })
        }
        _ => return Err(ApiError::route_not_found(request.method().as_str(), id)),
    };
    Ok(Reply::new(200, answer.to_string()))
}

async fn resolve_order<S, F, C>(
    service: &OperationsService<S, F, C>,
    request: &Request,
    order_id: String,
    actor: String,
) -> Result<Reply, ApiError>
where
    S: EventStore + PaymentStore + OperationsStore,
    F: FintocLookup,
    C: Clock,
{
    let body = parse_resolve_body(request.body().as_ref())?;
    let at_ms = service.clock.now_ms();
    let command = ResolveRequest {
        order_id,
        resolve_as: body.resolve_as,
        reason: body.reason,
        ticket: body.ticket,
        actor,
        resolution_id: format!("res_{}", uuid::Uuid::new_v4().simple()),
        at: format_rfc3339_ms(at_ms),
        at_ms,
    };
    let entry = resolve(&service.store, &service.fintoc, &command).await?;
    Ok(Reply::new(200, json!({ "resolution": entry }).to_string()))
}
