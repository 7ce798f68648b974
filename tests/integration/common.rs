//! Test harness: DynamoDB Local (started by `scripts/test.sh`), the Fintoc simulator
//! in process, and the functions' handlers called with real `lambda_http` requests.
#![allow(dead_code)]

use aws_sdk_dynamodb::config::{Credentials, Region};
use fintoc_sim::{Simulator, SimulatorConfig, DEFAULT_SECRET_KEY};
use lambda_http::{Body, Response};
use serde_json::{json, Value};
use shared::app::payments::{PaymentService, PaymentSettings};
use shared::domain::session::SessionSettings;

/// The configured return URLs of the session flow in tests.
pub const SUCCESS_URL: &str = "https://shop.example/paid";
/// The configured cancel URL.
pub const CANCEL_URL: &str = "https://shop.example/cancelled";
use shared::app::receive_webhook::{WebhookService, WebhookSettings};
use shared::clock::ManualClock;
use shared::domain::create::CreateLimits;
use shared::domain::deployment::Deployment;
use shared::domain::deployment::ForeignEvent;
use shared::domain::idempotency::{
    AcquireOutcome, AcquireRequest, CompleteRequest, IdempotencyKey, LeaseId,
};
use shared::domain::order::{OpenRequest, OrderRecord, ReserveOutcome, ReserveRequest};
use shared::domain::payment::{PaymentKind, StoredPayment};
use shared::domain::refund::StoredRefund;
use shared::domain::transition::{PaymentPatch, PaymentState};
use shared::fintoc::{ApiVersions, FintocHttpClient, RecipientAccount, RetryPolicy};
use shared::secrets::SecretString;
use shared::store::{
    CreateStore, DynamoStore, EventStore, IdempotencyStore, KeyAndOrder, KeyAndRefund, OrderStore,
    PaymentStore, RefundChange, RefundStore, RefundWrite, ReserveRefund, StoreError, WriteResult,
};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// 2026-01-01T00:00:00Z: tests run on a manual clock.
pub const T0_MS: i64 = 1_767_225_600_000;

/// DynamoDB Local's URL, from `scripts/test.sh`.
pub fn endpoint() -> String {
    std::env::var("DYNAMODB_ENDPOINT").expect(
        "DYNAMODB_ENDPOINT is not set: run the tests with `make test`, which starts DynamoDB Local",
    )
}

/// A DynamoDB client for `endpoint` with dummy credentials.
pub fn dynamodb_at(endpoint: &str) -> aws_sdk_dynamodb::Client {
    let config = aws_sdk_dynamodb::Config::builder()
        .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("local", "local", None, None, "tests"))
        .endpoint_url(endpoint)
        .build();
    aws_sdk_dynamodb::Client::from_conf(config)
}

/// A new, empty table on DynamoDB Local with the product's definition.
pub async fn fresh_table() -> (aws_sdk_dynamodb::Client, String) {
    let client = dynamodb_at(&endpoint());
    let name = format!("test-{}", uuid::Uuid::new_v4());
    shared::store::create_table(&client, &name)
        .await
        .expect("create table on DynamoDB Local");
    (client, name)
}

/// One item by its key (strongly consistent), if present.
pub async fn stored_item(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    pk: &str,
) -> Option<std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>> {
    client
        .get_item()
        .table_name(table)
        .key(
            "pk",
            aws_sdk_dynamodb::types::AttributeValue::S(pk.to_string()),
        )
        .consistent_read(true)
        .send()
        .await
        .expect("GetItem on DynamoDB Local")
        .item
}

/// Every item in a table.
pub async fn scan_all(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
) -> Vec<std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>> {
    client
        .scan()
        .table_name(table)
        .consistent_read(true)
        .send()
        .await
        .expect("scan")
        .items
        .unwrap_or_default()
}

/// A store that can be told to fail, wrapping the real DynamoDB store.
#[derive(Clone)]
pub struct FaultyStore {
    pub inner: DynamoStore,
    pub fail_saves: Arc<AtomicU32>,
    pub fail_completes: Arc<AtomicU32>,
}

fn take(counter: &AtomicU32) -> bool {
    counter
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok()
}

impl IdempotencyStore for FaultyStore {
    async fn acquire(&self, request: &AcquireRequest<'_>) -> Result<AcquireOutcome, StoreError> {
        self.inner.acquire(request).await
    }
    async fn complete(&self, request: &CompleteRequest<'_>) -> Result<bool, StoreError> {
        if take(&self.fail_completes) {
            return Err(StoreError::unavailable("complete", "injected failure"));
        }
        self.inner.complete(request).await
    }
    async fn release(&self, key: &IdempotencyKey, lease_id: &LeaseId) -> Result<(), StoreError> {
        self.inner.release(key, lease_id).await
    }

    async fn next_fintoc_key_generation(
        &self,
        key: &IdempotencyKey,
        lease_id: &LeaseId,
        from: u32,
    ) -> Result<bool, StoreError> {
        self.inner
            .next_fintoc_key_generation(key, lease_id, from)
            .await
    }
}

/// A create's two writes: the last one (a transaction holding the payment's save
/// and the key's completion) fails when either is told to.
impl CreateStore for FaultyStore {
    async fn acquire_reserving(
        &self,
        acquire: &AcquireRequest<'_>,
        order_id: &str,
    ) -> Result<KeyAndOrder, StoreError> {
        self.inner.acquire_reserving(acquire, order_id).await
    }
    async fn record_created(
        &self,
        payment: &StoredPayment,
        open: &OpenRequest<'_>,
        complete: &CompleteRequest<'_>,
    ) -> Result<bool, StoreError> {
        if take(&self.fail_saves) || take(&self.fail_completes) {
            return Err(StoreError::unavailable(
                "record_created",
                "injected failure",
            ));
        }
        self.inner.record_created(payment, open, complete).await
    }
    async fn acquire_reserving_refund(
        &self,
        acquire: &AcquireRequest<'_>,
        reserve: &ReserveRefund<'_>,
    ) -> Result<KeyAndRefund, StoreError> {
        self.inner.acquire_reserving_refund(acquire, reserve).await
    }
}

impl OrderStore for FaultyStore {
    async fn reserve_order(
        &self,
        request: &ReserveRequest<'_>,
    ) -> Result<ReserveOutcome, StoreError> {
        self.inner.reserve_order(request).await
    }
    async fn open_order(&self, request: &OpenRequest<'_>) -> Result<bool, StoreError> {
        self.inner.open_order(request).await
    }
}

impl PaymentStore for FaultyStore {
    async fn save_created(&self, intent: &StoredPayment) -> Result<(), StoreError> {
        if take(&self.fail_saves) {
            return Err(StoreError::unavailable("save_created", "injected failure"));
        }
        self.inner.save_created(intent).await
    }
    async fn get_payment(
        &self,
        kind: PaymentKind,
        id: &str,
    ) -> Result<Option<StoredPayment>, StoreError> {
        self.inner.get_payment(kind, id).await
    }
    async fn session_of_attempt(&self, intent_id: &str) -> Result<Option<String>, StoreError> {
        self.inner.session_of_attempt(intent_id).await
    }
}

impl EventStore for FaultyStore {
    async fn payment_state(
        &self,
        kind: PaymentKind,
        id: &str,
    ) -> Result<Option<PaymentState>, StoreError> {
        self.inner.payment_state(kind, id).await
    }
    async fn apply(&self, patch: &PaymentPatch) -> Result<WriteResult, StoreError> {
        self.inner.apply(patch).await
    }
    async fn keep_apart(&self, event: &ForeignEvent) -> Result<(), StoreError> {
        self.inner.keep_apart(event).await
    }
    async fn order(&self, order_id: &str) -> Result<Option<OrderRecord>, StoreError> {
        EventStore::order(&self.inner, order_id).await
    }
}

impl RefundStore for FaultyStore {
    async fn reserve_refund(&self, request: &ReserveRefund<'_>) -> Result<RefundWrite, StoreError> {
        self.inner.reserve_refund(request).await
    }
    /// Fails, when a completion is told to, if the change completes a key.
    async fn change_refund(
        &self,
        change: &RefundChange<'_>,
    ) -> Result<shared::store::RefundWrite, StoreError> {
        if change.complete.is_some() && take(&self.fail_completes) {
            return Err(StoreError::unavailable("change_refund", "injected failure"));
        }
        self.inner.change_refund(change).await
    }
    async fn drop_refund(
        &self,
        kind: PaymentKind,
        payment_id: &str,
        refund: &StoredRefund,
    ) -> Result<bool, StoreError> {
        self.inner.drop_refund(kind, payment_id, refund).await
    }
    async fn next_key_generation(
        &self,
        kind: PaymentKind,
        payment_id: &str,
        key: &shared::domain::refund::RefundKey,
        from: u32,
    ) -> Result<bool, StoreError> {
        self.inner
            .next_key_generation(kind, payment_id, key, from)
            .await
    }
    async fn refund_sweep_cursor(&self) -> Result<Option<String>, StoreError> {
        self.inner.refund_sweep_cursor().await
    }
    async fn advance_refund_sweep(&self, to: &str) -> Result<bool, StoreError> {
        self.inner.advance_refund_sweep(to).await
    }
}

pub type TestService = PaymentService<FaultyStore, FintocHttpClient, ManualClock>;

/// Everything one test needs, isolated in its own table and simulator.
pub struct Harness {
    pub sim: Simulator,
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub table: String,
    pub store: FaultyStore,
    pub clock: ManualClock,
    pub settings: PaymentSettings,
    pub service: Arc<TestService>,
}

pub fn recipient() -> RecipientAccount {
    RecipientAccount {
        holder_id: "771433855".into(),
        number: "123456789".into(),
        account_type: "checking_account".into(),
        institution_id: "cl_banco_de_chile".into(),
    }
}

pub fn fast_retries() -> RetryPolicy {
    RetryPolicy {
        max_retries: 2,
        base_delay: Duration::from_millis(5),
        max_delay: Duration::from_millis(50),
        attempt_timeout: Duration::from_millis(400),
    }
}

pub fn fintoc_client(sim: &Simulator, key: &str) -> FintocHttpClient {
    FintocHttpClient::new(
        &sim.base_url(),
        SecretString::new(key),
        ApiVersions::default(),
        fast_retries(),
    )
    .unwrap()
}

impl Harness {
    pub async fn new() -> Self {
        Self::with(recipient(), DEFAULT_SECRET_KEY).await
    }

    pub async fn with(recipient: RecipientAccount, secret_key: &str) -> Self {
        let sim = Simulator::start(SimulatorConfig {
            delivery: fintoc_sim::DeliveryPolicy {
                base_delay: Duration::from_millis(10),
                max_delay: Duration::from_millis(100),
                max_retries: 5,
                timeout: Duration::from_secs(5),
            },
            ..SimulatorConfig::default()
        })
        .await
        .unwrap();
        let (dynamodb, table) = fresh_table().await;
        let store = FaultyStore {
            inner: DynamoStore::new(dynamodb.clone(), &table),
            fail_saves: Arc::default(),
            fail_completes: Arc::default(),
        };
        let clock = ManualClock::new(T0_MS);
        let settings = PaymentSettings {
            limits: CreateLimits::default(),
            recipient: Some(recipient),
            idempotency_namespace: "tests".into(),
            lease: Duration::from_secs(30),
            record_ttl: Duration::from_secs(86_400),
            widget_token_ttl: Duration::from_secs(600),
            deployment_tag: DEPLOYMENT_TAG.into(),
            first_check_after: Duration::from_secs(120),
            sessions: Some(SessionSettings {
                success_url: SUCCESS_URL.into(),
                cancel_url: CANCEL_URL.into(),
                allowed_return_urls: vec![],
            }),
            // As the deployed init derives it: the secret key says its mode.
            mode: Some(
                shared::config::key_mode(None, &SecretString::new(secret_key))
                    .expect("the simulator's keys say their mode"),
            ),
        };
        let service = Arc::new(PaymentService::new(
            store.clone(),
            fintoc_client(&sim, secret_key),
            clock.clone(),
            settings.clone(),
        ));
        Self {
            sim,
            dynamodb,
            table,
            store,
            clock,
            settings,
            service,
        }
    }

    pub async fn call(&self, request: lambda_http::Request) -> Answer {
        Answer::from(create_intent::handle(self.service.as_ref(), request).await)
    }

    pub async fn post(&self, key: Option<&str>, body: &str) -> Answer {
        self.call(post_request(key, body)).await
    }

    pub async fn get(&self, id: &str) -> Answer {
        self.call(get_request(id)).await
    }

    pub async fn item_count(&self) -> usize {
        scan_all(&self.dynamodb, &self.table).await.len()
    }

    /// Idempotency records still held or completed, and payments (an order's
    /// reservation left out: it lapses with its lease; a released key too: it only
    /// keeps its reservation for the retry, see [`Self::released_keys`]).
    pub async fn stored_count(&self) -> usize {
        scan_all(&self.dynamodb, &self.table)
            .await
            .iter()
            .filter(|i| {
                let text = |k: &str| i.get(k).and_then(|v| v.as_s().ok()).map(String::as_str);
                text("entity") != Some("order") && text("status") != Some("RELEASED")
            })
            .count()
    }

    /// Idempotency records released by a failed request (free for its retry).
    pub async fn released_keys(&self) -> usize {
        scan_all(&self.dynamodb, &self.table)
            .await
            .iter()
            .filter(|i| {
                let text = |k: &str| i.get(k).and_then(|v| v.as_s().ok()).map(String::as_str);
                text("entity") == Some("idempotency") && text("status") == Some("RELEASED")
            })
            .count()
    }
}

/// A response, read.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub headers: lambda_http::http::HeaderMap,
    pub json: Value,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// `error.code`, asserting the error envelope is complete.
    pub fn error_code(&self) -> &str {
        let error = &self.json["error"];
        assert!(
            error["type"].is_string(),
            "error.type missing in {}",
            self.json
        );
        assert!(
            error["message"].is_string(),
            "error.message missing in {}",
            self.json
        );
        error["code"]
            .as_str()
            .unwrap_or_else(|| panic!("error.code missing in {}", self.json))
    }
}

impl From<Response<Body>> for Answer {
    fn from(response: Response<Body>) -> Self {
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        assert_eq!(
            headers.get("content-type").and_then(|v| v.to_str().ok()),
            Some("application/json"),
            "every answer is JSON"
        );
        let json = serde_json::from_slice(response.body().as_ref()).expect("JSON body");
        Self {
            status,
            headers,
            json,
        }
    }
}

/// An API Gateway HTTP API (payload v2) event, parsed by lambda_http as the runtime
/// would parse it.
pub fn http_event(
    method: &str,
    path: &str,
    route: &str,
    headers: Value,
    body: Option<&str>,
    path_parameters: Option<Value>,
) -> lambda_http::Request {
    let event = http_event_json(method, path, route, headers, body, path_parameters);
    lambda_http::request::from_str(&event).expect("valid HTTP API v2 event")
}

/// The JSON of an HTTP API v2 event.
pub fn http_event_json(
    method: &str,
    path: &str,
    route: &str,
    headers: Value,
    body: Option<&str>,
    path_parameters: Option<Value>,
) -> String {
    let mut event = json!({
        "version": "2.0",
        "routeKey": route,
        "rawPath": path,
        "rawQueryString": "",
        "headers": headers,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "local",
            "domainName": "localhost",
            "domainPrefix": "localhost",
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1", "userAgent": "tests"},
            "requestId": uuid::Uuid::new_v4().to_string(),
            "routeKey": route,
            "stage": "$default",
            "time": "01/Jan/2026:00:00:00 +0000",
            "timeEpoch": T0_MS
        },
        "isBase64Encoded": false
    });
    if let Some(body) = body {
        event["body"] = json!(body);
    }
    if let Some(p) = path_parameters {
        event["pathParameters"] = p;
    }
    event.to_string()
}

pub fn post_request(key: Option<&str>, body: &str) -> lambda_http::Request {
    post_with_headers(key, "application/json", body)
}

/// A create request signed by the IAM principal `user_arn` (API Gateway's IAM
/// authorizer puts it in the request context).
pub fn post_as(user_arn: &str, key: &str, body: &str) -> lambda_http::Request {
    let mut event: Value = serde_json::from_str(&http_event_json(
        "POST",
        "/payment-intents",
        "POST /payment-intents",
        json!({"content-type": "application/json", "idempotency-key": key}),
        Some(body),
        None,
    ))
    .unwrap();
    event["requestContext"]["authorizer"] =
        json!({"iam": {"userArn": user_arn, "accountId": "123456789012", "callerId": "AIDA"}});
    lambda_http::request::from_str(&event.to_string()).expect("valid HTTP API v2 event")
}

pub fn post_with_headers(
    key: Option<&str>,
    content_type: &str,
    body: &str,
) -> lambda_http::Request {
    let mut headers = json!({"content-type": content_type});
    if let Some(key) = key {
        headers["idempotency-key"] = json!(key);
    }
    http_event(
        "POST",
        "/payment-intents",
        "POST /payment-intents",
        headers,
        Some(body),
        None,
    )
}

pub fn get_request(id: &str) -> lambda_http::Request {
    http_event(
        "GET",
        &format!("/payment-intents/{id}"),
        "GET /payment-intents/{id}",
        json!({}),
        None,
        Some(json!({"id": id})),
    )
}

pub const BODY: &str = r#"{"amount": 15000, "currency": "clp", "customer_email": "payer@example.cl", "metadata": {"cart": "c-1"}, "order_id": "order-1"}"#;

// ---------------------------------------------------------------------------
// Webhook side.

pub const WEBHOOK_SECRET: &str = "whsec_test_local";

pub type TestWebhookService<C> = WebhookService<DynamoStore, C>;

/// The deployment tag of the tests' functions, carried by their events.
pub const DEPLOYMENT_TAG: &str = "tests";

/// The tests' deployment: its tag, any mode.
pub fn deployment() -> Deployment {
    Deployment {
        tag: DEPLOYMENT_TAG.into(),
        mode: None,
    }
}

pub fn webhook_service<C: shared::clock::Clock>(
    store: DynamoStore,
    clock: C,
    secrets: &[&str],
) -> TestWebhookService<C> {
    webhook_service_for(store, clock, secrets, deployment())
}

pub fn webhook_service_for<C: shared::clock::Clock>(
    store: DynamoStore,
    clock: C,
    secrets: &[&str],
    deployment: Deployment,
) -> TestWebhookService<C> {
    webhook_service_writing(store, clock, secrets, deployment, true)
}

/// [`webhook_service_for`], writing first or reading first (`WEBHOOK_WRITE_FIRST`).
pub fn webhook_service_writing<C: shared::clock::Clock>(
    store: DynamoStore,
    clock: C,
    secrets: &[&str],
    deployment: Deployment,
    write_first: bool,
) -> TestWebhookService<C> {
    WebhookService::new(
        store,
        clock,
        WebhookSettings {
            secrets: secrets.iter().map(|s| SecretString::new(*s)).collect(),
            refresh: None,
            tolerance_secs: 300,
            deployment,
            write_first,
        },
    )
}

/// A webhook delivery as API Gateway (HTTP API v2) hands it to the function. The
/// body is sent base64-encoded, as API Gateway does for some content types, so the
/// handler must verify the decoded bytes.
pub fn webhook_request(
    body: &[u8],
    signature: Option<&str>,
    base64_body: bool,
) -> lambda_http::Request {
    use base64::Engine;
    let mut headers = json!({"content-type": "application/json"});
    if let Some(sig) = signature {
        headers["fintoc-signature"] = json!(sig);
    }
    let (body, encoded) = if base64_body {
        (base64::engine::general_purpose::STANDARD.encode(body), true)
    } else {
        (String::from_utf8(body.to_vec()).expect("utf-8 body"), false)
    };
    let mut event = json!({
        "version": "2.0",
        "routeKey": "POST /webhooks/fintoc",
        "rawPath": "/webhooks/fintoc",
        "rawQueryString": "",
        "headers": headers,
        "requestContext": {
            "accountId": "123456789012", "apiId": "local", "domainName": "localhost", "domainPrefix": "localhost",
            "http": {"method": "POST", "path": "/webhooks/fintoc", "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1", "userAgent": "Fintoc"},
            "requestId": uuid::Uuid::new_v4().to_string(), "routeKey": "POST /webhooks/fintoc", "stage": "$default",
            "time": "01/Jan/2026:00:00:00 +0000", "timeEpoch": T0_MS
        },
        "body": body,
        "isBase64Encoded": encoded
    });
    if !encoded {
        event["isBase64Encoded"] = json!(false);
    }
    lambda_http::request::from_str(&event.to_string()).expect("valid HTTP API v2 event")
}

pub async fn deliver<C: shared::clock::Clock>(
    service: &TestWebhookService<C>,
    body: &[u8],
    signature: Option<&str>,
) -> Answer {
    Answer::from(webhook::handle(service, webhook_request(body, signature, false)).await)
}

/// A Fintoc-shaped event for intent `pi` claiming `status`.
pub fn event_body(event_id: &str, pi: &str, status: &str) -> String {
    json!({
        "id": event_id,
        "object": "event",
        "type": format!("payment_intent.{status}"),
        "mode": "test",
        "created_at": "2026-01-01T00:00:00Z",
        "data": {
            "id": pi, "object": "payment_intent", "amount": 15000, "currency": "CLP", "status": status,
            "mode": "test", "metadata": {"order_id": format!("order-{pi}"), "deployment_tag": DEPLOYMENT_TAG}, "created_at": "2026-01-01T00:00:00Z",
            "error_reason": if matches!(status, "failed" | "rejected" | "expired") { json!("insufficient_funds") } else { json!(null) },
            "sender_account": {"holder_id": "183917137", "institution_id": "cl_banco_estado", "number": "000012345678", "type": "checking_account"},
            "transaction_date": if status == "succeeded" { json!("2026-01-01T00:00:05Z") } else { json!(null) },
            "reference_id": if status == "succeeded" { json!("987654") } else { json!(null) },
            "widget_token": null
        }
    })
    .to_string()
}

pub fn signed(body: &str, now_ms: i64) -> String {
    fintoc_sim::sign(WEBHOOK_SECRET, now_ms / 1000, body.as_bytes())
}

/// Webhooks from the harness's simulator to a webhook function on its store, over
/// HTTP (the system clock).
pub async fn wire_webhooks(h: &Harness) {
    wire_webhooks_at(h, shared::clock::SystemClock).await;
}

/// The same, the webhook function reading `clock` (one that follows the
/// simulator's when a test moves it: signatures are checked against it).
pub async fn wire_webhooks_at<C: shared::clock::Clock + 'static>(h: &Harness, clock: C) {
    let webhook = Arc::new(webhook_service(
        h.store.inner.clone(),
        clock,
        &[WEBHOOK_SECRET],
    ));
    let url = serve_webhook(webhook, Arc::new(AtomicU32::new(0))).await;
    h.sim.set_webhook(fintoc_sim::WebhookEndpoint {
        url,
        secret: WEBHOOK_SECRET.into(),
    });
}

/// Serves a webhook service over HTTP on loopback, the way API Gateway would call
/// the function: each request becomes an HTTP API v2 event for `webhook::handle`.
/// The first `fail_first` requests are answered 500 without reaching the function.
pub async fn serve_webhook<C: shared::clock::Clock + 'static>(
    service: Arc<TestWebhookService<C>>,
    fail_first: Arc<AtomicU32>,
) -> String {
    use http_body_util::BodyExt;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/webhooks/fintoc", listener.local_addr().unwrap());
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let service = service.clone();
            let fail_first = fail_first.clone();
            tokio::spawn(async move {
                let handler = hyper::service::service_fn(
                    move |req: hyper::Request<hyper::body::Incoming>| {
                        let service = service.clone();
                        let fail_first = fail_first.clone();
                        async move {
                            let signature = req
                                .headers()
                                .get("fintoc-signature")
                                .and_then(|v| v.to_str().ok())
                                .map(str::to_string);
                            let body = req
                                .into_body()
                                .collect()
                                .await
                                .map(|b| b.to_bytes())
                                .unwrap_or_default();
                            let (status, text) = if take(&fail_first) {
                                (500, "{\"error\":\"injected\"}".to_string())
                            } else {
                                let response = webhook::handle(
                                    service.as_ref(),
                                    webhook_request(&body, signature.as_deref(), true),
                                )
                                .await;
                                let status = response.status().as_u16();
                                (
                                    status,
                                    String::from_utf8_lossy(response.body().as_ref()).to_string(),
                                )
                            };
                            Ok::<_, std::convert::Infallible>(
                                hyper::Response::builder()
                                    .status(status)
                                    .body(http_body_util::Full::new(bytes::Bytes::from(text)))
                                    .unwrap(),
                            )
                        }
                    },
                );
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), handler)
                    .await;
            });
        }
    });
    url
}

// ---------------------------------------------------------------------------
// Reconciler side.

use shared::app::reconcile::{ManualPause, ReconcileService, ReconcileSettings};
use shared::clock::Clock as _;
use shared::domain::report::PaymentReport;
use shared::fintoc::{FintocError, FintocLookup};
use std::sync::Mutex;

/// The Fintoc client, with every lookup recorded at the reconciler's clock.
#[derive(Clone)]
pub struct RecordedLookups {
    pub inner: FintocHttpClient,
    pub clock: ManualClock,
    pub calls: Arc<Mutex<Vec<(String, i64)>>>,
}

impl FintocLookup for RecordedLookups {
    async fn get_payment_intent(
        &self,
        id: &str,
        budget: Option<Duration>,
    ) -> Result<Option<PaymentReport>, FintocError> {
        self.calls
            .lock()
            .unwrap()
            .push((id.to_string(), self.clock.now_ms()));
        self.inner.get_payment_intent(id, budget).await
    }

    async fn get_checkout_session(
        &self,
        id: &str,
        budget: Option<Duration>,
    ) -> Result<Option<shared::domain::session::SessionReport>, FintocError> {
        self.calls
            .lock()
            .unwrap()
            .push((id.to_string(), self.clock.now_ms()));
        self.inner.get_checkout_session(id, budget).await
    }

    async fn get_refund(
        &self,
        id: &str,
        budget: Option<Duration>,
    ) -> Result<Option<shared::domain::refund::RefundReport>, FintocError> {
        self.calls
            .lock()
            .unwrap()
            .push((id.to_string(), self.clock.now_ms()));
        self.inner.get_refund(id, budget).await
    }

    async fn list_refunds(
        &self,
        since: &str,
        until: Option<&str>,
        budget: Option<Duration>,
    ) -> Result<shared::fintoc::RefundList, FintocError> {
        self.inner.list_refunds(since, until, budget).await
    }

    async fn list_payment_intents(
        &self,
        since: &str,
        budget: Option<Duration>,
    ) -> Result<shared::fintoc::PaymentList, FintocError> {
        self.inner.list_payment_intents(since, budget).await
    }
}

pub type Reconciler = ReconcileService<DynamoStore, RecordedLookups, ManualClock, ManualPause>;

pub fn reconciler_with(h: &Harness, settings: ReconcileSettings) -> (Reconciler, RecordedLookups) {
    let lookups = RecordedLookups {
        inner: fintoc_client(&h.sim, fintoc_sim::DEFAULT_SECRET_KEY),
        clock: h.clock.clone(),
        calls: Arc::default(),
    };
    let service = ReconcileService::new(
        h.store.inner.clone(),
        lookups.clone(),
        h.clock.clone(),
        ManualPause(h.clock.clone()),
        settings,
    );
    (service, lookups)
}

/// The reconciler with its default settings.
pub fn reconciler_for(h: &Harness) -> (Reconciler, RecordedLookups) {
    reconciler_with(h, ReconcileSettings::default())
}

// Refunds.

/// `POST /payment-intents/{intent}/refunds` under idempotency key `key`.
pub fn refund_of(intent: &str, key: &str, body: &str) -> lambda_http::Request {
    http_event(
        "POST",
        &format!("/payment-intents/{intent}/refunds"),
        "POST /payment-intents/{id}/refunds",
        json!({"content-type": "application/json", "idempotency-key": key}),
        Some(body),
        Some(json!({"id": intent})),
    )
}

/// Settles a refund at the simulator and waits until its events were delivered.
pub async fn settle(h: &Harness, fintoc_id: &str, settle: fintoc_sim::Settle) {
    let before = h.sim.deliveries().len();
    let events = h.sim.settle_refund(fintoc_id, &settle).unwrap();
    let copies = if settle.duplicate { 2 } else { 1 };
    let deliveries = h.sim.wait_settled(before + events.len() * copies).await;
    assert!(deliveries.iter().all(|d| d.delivered), "{deliveries:?}");
}

/// A plain settlement: `outcome`, once, in order.
pub fn settle_as(outcome: &str) -> fintoc_sim::Settle {
    fintoc_sim::Settle {
        outcome: outcome.into(),
        failure_code: None,
        duplicate: false,
        out_of_order: false,
    }
}

/// An operations API request as API Gateway's IAM authorizer passes it on
/// (`operator`: the caller's principal; `None`: no authorizer ran).
pub fn operator_request(
    method: &str,
    path: &str,
    route: &str,
    body: Option<&str>,
    query: Option<(&str, &str)>,
    operator: Option<&str>,
) -> lambda_http::Request {
    let mut event: Value = serde_json::from_str(&http_event_json(
        method,
        path,
        route,
        json!({"content-type": "application/json"}),
        body,
        None,
    ))
    .unwrap();
    if let Some((name, value)) = query {
        event["rawQueryString"] = json!(format!("{name}={value}"));
        event["queryStringParameters"] = json!({ name: value });
    }
    if let Some(arn) = operator {
        event["requestContext"]["authorizer"] =
            json!({"iam": {"userArn": arn, "accountId": "123456789012", "callerId": "AIDA"}});
    }
    lambda_http::request::from_str(&event.to_string()).expect("valid HTTP API v2 event")
}
