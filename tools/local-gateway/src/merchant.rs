//! A stand-in for the merchant's own server, which the checkout page talks to: it
//! knows each order's cart and price, and creates the payment intent with that
//! amount — the browser never sends an amount. Deterministic demo carts, keyed by
//! order id.

use serde::Serialize;

/// One line of a demo cart.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Line {
    /// What is bought.
    pub name: &'static str,
    /// How many.
    pub quantity: u64,
    /// Price of one, in pesos.
    pub unit_price: u64,
}

/// An order as the merchant's server prices it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Cart {
    /// The order id.
    pub order_id: String,
    /// Its lines.
    pub lines: Vec<Line>,
    /// The total, in minor units (CLP has none).
    pub amount: u64,
    /// Always CLP here.
    pub currency: &'static str,
}

const CATALOG: [(&str, u64); 5] = [
    ("Café de grano 250 g", 6_990),
    ("Taza de cerámica", 4_500),
    ("Filtro de papel x100", 2_490),
    ("Molinillo manual", 18_900),
    ("Chocolate 70 %", 3_290),
];

/// Whether `order_id` is one this stand-in serves: 1–64 of `A-Z a-z 0-9 _ -`.
pub fn valid_order_id(order_id: &str) -> bool {
    (1..=64).contains(&order_id.len())
        && order_id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// The cart of `order_id`: the same every time (FNV-1a of the id picks the lines).
pub fn cart(order_id: &str) -> Cart {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in order_id.bytes() {
        hash = (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
    }
    let count = 1 + (hash % 3) as usize;
    let lines: Vec<Line> = (0..count)
        .map(|i| {
            let (name, unit_price) = CATALOG[((hash >> (8 * i)) % CATALOG.len() as u64) as usize];
            Line {
                name,
                quantity: 1 + (hash >> (8 * i + 4)) % 2,
                unit_price,
            }
        })
        .collect();
    let amount = lines.iter().map(|l| l.quantity * l.unit_price).sum();
    Cart {
        order_id: order_id.to_string(),
        lines,
        amount,
        currency: "CLP",
    }
}

/// The body the merchant's server sends to `POST /payment-intents` for the order.
pub fn create_body(cart: &Cart) -> serde_json::Value {
    serde_json::json!({
        "amount": cart.amount,
        "currency": cart.currency,
        "order_id": cart.order_id,
    })
}

/// Which of the backend's resources a payment is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resource {
    /// A payment intent.
    Intent,
    /// A checkout session.
    Session,
}

impl Resource {
    /// Its collection in the backend's API.
    pub fn path(self) -> &'static str {
        match self {
            Self::Intent => "payment-intents",
            Self::Session => "checkout-sessions",
        }
    }
}

/// The payments this stand-in made, by order (in memory: a stand-in's records).
#[derive(Debug, Default)]
pub struct OrderBook(std::sync::Mutex<std::collections::HashMap<String, Vec<(Resource, String)>>>);

impl OrderBook {
    fn lock(
        &self,
    ) -> std::sync::MutexGuard<'_, std::collections::HashMap<String, Vec<(Resource, String)>>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records a payment made for `order_id` (once, whatever the replays).
    pub fn add(&self, order_id: &str, resource: Resource, id: &str) {
        let mut orders = self.lock();
        let payments = orders.entry(order_id.to_string()).or_default();
        if !payments.iter().any(|(_, known)| known == id) {
            payments.push((resource, id.to_string()));
        }
    }

    /// The payments made for `order_id`, oldest first.
    pub fn payments(&self, order_id: &str) -> Vec<(Resource, String)> {
        self.lock().get(order_id).cloned().unwrap_or_default()
    }

    /// Which resource `payment_id` is, when it was made for `order_id`.
    pub fn resource_of(&self, order_id: &str, payment_id: &str) -> Option<Resource> {
        self.lock()
            .get(order_id)?
            .iter()
            .find(|(_, id)| id == payment_id)
            .map(|(resource, _)| *resource)
    }
}

/// A refund the merchant's staff asks for from the order page.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct RefundRequest {
    /// The payment to refund (one made for the order).
    pub payment_id: String,
    /// Minor units; absent: all that is left.
    #[serde(default)]
    pub amount: Option<u64>,
}

impl RefundRequest {
    /// The body sent to the backend's refund route.
    pub fn backend_body(&self) -> serde_json::Value {
        match self.amount {
            Some(amount) => serde_json::json!({"amount": amount}),
            None => serde_json::json!({}),
        }
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn the_order_book_knows_which_payments_are_an_orders() {
        let book = OrderBook::default();
        book.add("o-1", Resource::Intent, "pi_1");
        book.add("o-1", Resource::Intent, "pi_1");
        book.add("o-1", Resource::Session, "cs_2");
        assert_eq!(
            book.payments("o-1"),
            vec![
                (Resource::Intent, "pi_1".to_string()),
                (Resource::Session, "cs_2".to_string())
            ]
        );
        assert_eq!(book.resource_of("o-1", "cs_2"), Some(Resource::Session));
        assert_eq!(
            book.resource_of("o-2", "pi_1"),
            None,
            "another order's payment"
        );
        assert_eq!(
            RefundRequest {
                payment_id: "pi_1".into(),
                amount: None
            }
            .backend_body(),
            serde_json::json!({})
        );
    }
    use super::*;

    #[test]
    fn a_cart_is_priced_by_the_server_the_same_every_time() {
        let a = cart("web-1234");
        assert_eq!(a, cart("web-1234"));
        assert!(!a.lines.is_empty() && a.lines.len() <= 3);
        assert_eq!(
            a.amount,
            a.lines
                .iter()
                .map(|l| l.quantity * l.unit_price)
                .sum::<u64>()
        );
        assert_eq!(create_body(&a)["amount"], a.amount);
        assert_ne!(cart("web-1").amount + cart("web-2").amount, 0);
    }

    #[test]
    fn order_ids_are_checked() {
        assert!(valid_order_id("web-1a_B"));
        assert!(!valid_order_id(""));
        assert!(!valid_order_id("a/b"));
        assert!(!valid_order_id(&"x".repeat(65)));
    }
}
