//! Checkout sessions as the simulator serves them: idempotent create, get, expire,
//! the v2 cursor list, attempts and their events, clock expiry, the hosted page and
//! the widget opened with a session token.

use fintoc_sim::{DeliveryMode, Finish, Simulator, SimulatorConfig, DEFAULT_SECRET_KEY};
use serde_json::{json, Value};
use shared::clock::ManualClock;
use std::sync::Arc;

const T0: i64 = 1_767_225_600_000;

struct Sim {
    sim: Simulator,
    http: reqwest::Client,
    base: String,
}

async fn sim() -> Sim {
    let sim = Simulator::start(SimulatorConfig {
        clock: Arc::new(ManualClock::new(T0)),
        ..SimulatorConfig::default()
    })
    .await
    .unwrap();
    sim.set_delivery_mode(DeliveryMode::Off);
    let base = sim.base_url();
    Sim {
        sim,
        http: shared::fintoc::http_client_builder().build().unwrap(),
        base,
    }
}

impl Sim {
    async fn create(&self, key: &str, body: Value) -> (u16, Value, bool) {
        let response = self
            .http
            .post(format!("{}/v1/checkout_sessions", self.base))
            .header("authorization", DEFAULT_SECRET_KEY)
            .header("idempotency-key", key)
            .header("fintoc-version", "2026-02-01")
            .json(&body)
            .send()
            .await
            .unwrap();
        let replayed = response.headers().contains_key("idempotent-replayed");
        (
            response.status().as_u16(),
            response.json().await.unwrap(),
            replayed,
        )
    }

    async fn get(&self, path: &str, version: Option<&str>) -> (u16, Value, Option<String>) {
        let mut request = self
            .http
            .get(format!("{}{path}", self.base))
            .header("authorization", DEFAULT_SECRET_KEY);
        if let Some(v) = version {
            request = request.header("fintoc-version", v);
        }
        let response = request.send().await.unwrap();
        let link = response
            .headers()
            .get("link")
            .map(|l| l.to_str().unwrap().to_string());
        (
            response.status().as_u16(),
            response.json().await.unwrap(),
            link,
        )
    }

    async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        let response = self
            .http
            .post(format!("{}{path}", self.base))
            .header("authorization", DEFAULT_SECRET_KEY)
            .json(&body)
            .send()
            .await
            .unwrap();
        (response.status().as_u16(), response.json().await.unwrap())
    }

    fn event_types(&self) -> Vec<String> {
        self.sim
            .deliveries()
            .into_iter()
            .map(|d| d.event_type)
            .collect()
    }
}

fn body() -> Value {
    json!({"amount": 5000, "currency": "CLP", "metadata": {"order_id": "o-1"},
           "success_url": "https://shop.example/paid", "cancel_url": "https://shop.example/back"})
}

#[tokio::test]
async fn a_session_is_created_once_per_key_and_its_token_shown_once() {
    let s = sim().await;
    let (status, created, replayed) = s.create("k1", body()).await;
    assert_eq!((status, replayed), (201, false));
    let id = created["id"].as_str().unwrap();
    assert_eq!(created["status"], "created");
    assert!(created["session_token"].as_str().unwrap().len() > 20);
    assert_eq!(created["redirect_url"], format!("{}/checkout/{id}", s.base));
    assert_eq!(created["expires_at"], "2026-01-02T00:00:00.000Z");
    let (status, again, replayed) = s.create("k1", body()).await;
    assert_eq!(
        (status, replayed, &again["id"]),
        (201, true, &created["id"])
    );
    let (status, reused, _) = s
        .create("k1", json!({"amount": 1, "currency": "CLP"}))
        .await;
    assert_eq!(
        (status, reused["error"]["code"].as_str()),
        (400, Some("idempotency_key_reused"))
    );
    assert_eq!(s.sim.sessions_created(), 1);
    let (status, read, _) = s.get(&format!("/v1/checkout_sessions/{id}"), None).await;
    assert_eq!((status, &read["session_token"]), (200, &Value::Null));
    assert_eq!(read["payment_resource"]["payment_intent"], Value::Null);
    assert_eq!(s.sim.last_api_version().as_deref(), Some("2026-02-01"));
    assert_eq!(s.sim.unversioned_requests(), 1);
    let (status, bad, _) = s
        .create(
            "k2",
            json!({"amount": 5, "currency": "CLP", "success_url": "ftp://x"}),
        )
        .await;
    assert_eq!(
        (status, bad["error"]["param"].as_str()),
        (400, Some("success_url"))
    );
}

#[tokio::test]
async fn the_v2_list_pages_newest_first_with_cursors() {
    let s = sim().await;
    let mut ids = Vec::new();
    for n in 0..5 {
        let (_, created, _) = s.create(&format!("k{n}"), body()).await;
        ids.push(created["id"].as_str().unwrap().to_string());
    }
    let (status, refused, _) = s.get("/v2/checkout_sessions", None).await;
    assert_eq!(
        (status, refused["error"]["code"].as_str()),
        (400, Some("api_version_not_supported"))
    );
    let mut seen = Vec::new();
    let mut path = "/v2/checkout_sessions?limit=2".to_string();
    loop {
        let (status, page, link) = s.get(&path, Some("2026-02-01")).await;
        assert_eq!(status, 200);
        seen.extend(
            page["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| s["id"].as_str().unwrap().to_string()),
        );
        match link {
            Some(link) => {
                assert_eq!(page["has_more"], true);
                path = link
                    .trim_start_matches('<')
                    .split('>')
                    .next()
                    .unwrap()
                    .to_string();
            }
            None => break,
        }
    }
    let newest_first: Vec<String> = ids.iter().rev().cloned().collect();
    assert_eq!(seen, newest_first);
    let (_, before, _) = s
        .get(
            &format!("/v2/checkout_sessions?limit=2&ending_before={}", ids[1]),
            Some("2026-02-01"),
        )
        .await;
    let before: Vec<&str> = before["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert_eq!(before, [ids[3].as_str(), ids[2].as_str()]);
}

#[tokio::test]
async fn a_failed_attempt_leaves_the_session_open_and_a_success_finishes_it() {
    let s = sim().await;
    let (_, created, _) = s.create("k", body()).await;
    let id = created["id"].as_str().unwrap();
    let (first, _) = s.sim.pay_session(id, &Finish::outcome("failed")).unwrap();
    assert_eq!(s.sim.session(id).unwrap()["status"], "in_progress");
    let (status, refused) = s
        .post(&format!("/v1/checkout_sessions/{id}/expire"), json!({}))
        .await;
    assert_eq!(
        (status, refused["error"]["code"].as_str()),
        (400, Some("checkout_session_not_expirable"))
    );
    let (second, _) = s
        .sim
        .pay_session(id, &Finish::outcome("succeeded"))
        .unwrap();
    assert_ne!(first, second);
    let session = s.sim.session(id).unwrap();
    assert_eq!(session["status"], "finished");
    let payment = &session["payment_resource"]["payment_intent"];
    assert_eq!(
        (payment["id"].as_str(), payment["status"].as_str()),
        (Some(second.as_str()), Some("succeeded"))
    );
    assert_eq!(
        payment["metadata"]["order_id"], "o-1",
        "the session's metadata is passed on"
    );
    assert_eq!(
        s.event_types(),
        [
            "payment_intent.failed",
            "payment_intent.succeeded",
            "checkout_session.finished"
        ]
    );
    assert!(
        s.sim
            .pay_session(id, &Finish::outcome("succeeded"))
            .is_err(),
        "finished"
    );
}

#[tokio::test]
async fn sessions_expire_by_the_merchant_or_by_the_clock() {
    let s = sim().await;
    let (_, a, _) = s.create("a", body()).await;
    let (_, b, _) = s.create("b", body()).await;
    let (a, b) = (a["id"].as_str().unwrap(), b["id"].as_str().unwrap());
    let (status, expired) = s
        .post(&format!("/v1/checkout_sessions/{a}/expire"), json!({}))
        .await;
    assert_eq!((status, expired["status"].as_str()), (200, Some("expired")));
    let (status, _) = s
        .post(&format!("/v1/checkout_sessions/{a}/expire"), json!({}))
        .await;
    assert_eq!(status, 400);
    s.sim
        .pay_session(
            b,
            &Finish {
                pending_until_ms: Some(T0 + 48 * 3_600_000),
                ..Finish::outcome("succeeded")
            },
        )
        .unwrap();
    s.sim.advance_clock_ms(24 * 3_600_000);
    let session = s.sim.session(b).unwrap();
    assert_eq!(session["status"], "expired");
    assert_eq!(
        session["payment_resource"]["payment_intent"]["status"],
        "expired"
    );
    assert_eq!(
        s.event_types(),
        [
            "checkout_session.expired",
            "payment_intent.pending",
            "payment_intent.expired",
            "checkout_session.expired"
        ]
    );
}

#[tokio::test]
async fn the_hosted_page_pays_or_cancels_and_sends_the_payer_back() {
    let s = sim().await;
    let (_, created, _) = s.create("k", body()).await;
    let id = created["id"].as_str().unwrap();
    let page = s
        .http
        .get(created["redirect_url"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains(id));
    let (status, cancel) = s
        .post(
            &format!("/_sim/checkout/{id}/complete"),
            json!({"outcome": "cancel"}),
        )
        .await;
    assert_eq!(
        (status, cancel["redirect"].as_str()),
        (200, Some("https://shop.example/back"))
    );
    let (status, rejected) = s
        .post(
            &format!("/_sim/checkout/{id}/complete"),
            json!({"outcome": "rejected"}),
        )
        .await;
    assert_eq!(
        (status, &rejected["redirect"]),
        (202, &Value::Null),
        "the payer may try again"
    );
    let (status, paid) = s
        .post(
            &format!("/_sim/checkout/{id}/complete"),
            json!({"outcome": "succeeded"}),
        )
        .await;
    assert_eq!(
        (status, paid["redirect"].as_str()),
        (202, Some("https://shop.example/paid"))
    );
    assert_eq!(s.sim.session(id).unwrap()["status"], "finished");
}

#[tokio::test]
async fn the_widget_opens_with_a_session_token() {
    let s = sim().await;
    let (_, created, _) = s.create("k", body()).await;
    let token = created["session_token"].as_str().unwrap();
    let (status, session) = s
        .post("/_sim/widget/session", json!({"session_token": token}))
        .await;
    assert_eq!((status, session["amount"].as_u64()), (200, Some(5000)));
    let (status, _) = s
        .post("/_sim/widget/session", json!({"session_token": "nope"}))
        .await;
    assert_eq!(status, 404);
    let (status, done) = s
        .post(
            "/_sim/widget/complete",
            json!({"session_token": token, "outcome": "succeeded"}),
        )
        .await;
    assert_eq!(status, 202);
    assert!(done["payment_intent"].as_str().unwrap().starts_with("pi_"));
    assert_eq!(
        s.sim.session(created["id"].as_str().unwrap()).unwrap()["status"],
        "finished"
    );
    assert!(fintoc_sim::WIDGET_SCRIPT.contains("sessionToken"));
}
