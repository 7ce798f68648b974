//! The simulator's widget stand-in: the script the checkout page loads and the
//! endpoints its buttons call.

use fintoc_sim::{Simulator, SimulatorConfig, WebhookEndpoint, DEFAULT_SECRET_KEY};
use serde_json::{json, Value};

async fn post(url: &str, body: Value) -> (u16, Value) {
    let response = shared::fintoc::http_client_builder()
        .build()
        .unwrap()
        .post(url)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn the_widget_script_and_its_endpoints_work_like_the_widget() {
    let sim = Simulator::start(SimulatorConfig {
        // Deliveries go nowhere; this test looks at the simulator's side only.
        webhook: Some(WebhookEndpoint {
            url: "http://127.0.0.1:9/webhooks/fintoc".into(),
            secret: "whsec_widget_test".into(),
        }),
        ..SimulatorConfig::default()
    })
    .await
    .unwrap();
    let base = format!("http://{}", sim.addr());
    let http = shared::fintoc::http_client_builder().build().unwrap();

    let script = http.get(format!("{base}/widget/v1/")).send().await.unwrap();
    assert_eq!(script.status(), 200);
    assert!(script.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/javascript"));
    let text = script.text().await.unwrap();
    assert!(text.contains("window.Fintoc = { create: create }"));

    let created: Value = http
        .post(format!("{base}/v1/payment_intents"))
        .header("authorization", DEFAULT_SECRET_KEY)
        .json(&json!({"amount": 2500, "currency": "CLP"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = created["widget_token"].as_str().unwrap();
    let id = created["id"].as_str().unwrap();

    let (status, session) = post(
        &format!("{base}/_sim/widget/session"),
        json!({"widget_token": token}),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(session["id"], id);
    assert_eq!(session["amount"], 2500);

    let (status, answer) = post(
        &format!("{base}/_sim/widget/complete"),
        json!({"widget_token": "pi_x_sec_forged", "outcome": "succeeded"}),
    )
    .await;
    assert_eq!(status, 404);
    assert_eq!(answer["error"]["code"], "invalid_widget_token");

    // A browser on another origin asks first (CORS preflight).
    let preflight = http
        .request(
            reqwest::Method::OPTIONS,
            format!("{base}/_sim/widget/complete"),
        )
        .header("origin", "http://127.0.0.1:3000")
        .send()
        .await
        .unwrap();
    assert_eq!(preflight.status(), 204);
    assert_eq!(preflight.headers()["access-control-allow-origin"], "*");

    let (status, answer) = post(
        &format!("{base}/_sim/widget/complete"),
        json!({"widget_token": token, "outcome": "rejected"}),
    )
    .await;
    assert_eq!(status, 202, "{answer}");
    assert_eq!(answer["id"], id);
    let intent: Value = http
        .get(format!("{base}/v1/payment_intents/{id}"))
        .header("authorization", DEFAULT_SECRET_KEY)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(intent["status"], "rejected");

    // A finished payment cannot be paid again from a stale widget.
    let (status, answer) = post(
        &format!("{base}/_sim/widget/complete"),
        json!({"widget_token": token, "outcome": "succeeded"}),
    )
    .await;
    assert_eq!(status, 409);
    assert_eq!(answer["error"]["code"], "cannot_finish");
}
