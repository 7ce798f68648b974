//! The HTTP routes of the deployed API, in one table: the functions' routers match
//! requests against it, the local gateway forwards by it, and a test checks that
//! `template.yaml` declares exactly these routes, each on its function with its
//! authentication.

/// The Lambda function that serves a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Function {
    /// The merchant's payment API of both flows (`functions/create-intent`).
    CreateIntent,
    /// Fintoc's signed webhook deliveries (`functions/webhook`).
    Webhook,
    /// The operators' API (`functions/operations`): its own API, IAM only.
    Operations,
}

impl Function {
    /// The function's name, as its crate and the local stack name it.
    pub fn name(self) -> &'static str {
        match self {
            Self::CreateIntent => "create-intent",
            Self::Webhook => "webhook",
            Self::Operations => "operations",
        }
    }

    /// Its resource's logical id in `template.yaml`.
    pub fn logical_id(self) -> &'static str {
        match self {
            Self::CreateIntent => "CreateIntentFunction",
            Self::Webhook => "WebhookFunction",
            Self::Operations => "OperationsFunction",
        }
    }

    /// Its `Timeout` in `template.yaml`, in seconds: how long one invocation may
    /// run. The local gateway answers `504` once it has passed, as a deployed
    /// request never outlives it.
    pub fn timeout_seconds(self) -> u64 {
        match self {
            Self::CreateIntent => 25,
            Self::Webhook => 10,
            Self::Operations => 25,
        }
    }

    /// The logical id of its API Gateway integration in `template.yaml`.
    pub fn integration_logical_id(self) -> &'static str {
        match self {
            Self::CreateIntent => "CreateIntentIntegration",
            Self::Webhook => "WebhookIntegration",
            Self::Operations => "OperationsIntegration",
        }
    }
}

/// What a route does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// `POST /payment-intents`.
    CreateIntent,
    /// `GET /payment-intents/{id}`.
    GetIntent,
    /// `POST /checkout-sessions`.
    CreateSession,
    /// `GET /checkout-sessions/{id}`.
    GetSession,
    /// `POST /checkout-sessions/{id}/expire`.
    ExpireSession,
    /// `POST /payment-intents/{id}/refunds`.
    RefundIntent,
    /// `POST /checkout-sessions/{id}/refunds`.
    RefundSession,
    /// `GET /refunds/{id}`.
    GetRefund,
    /// `POST /refunds/{id}/cancel`.
    CancelRefund,
    /// `POST /webhooks/fintoc`.
    ReceiveWebhook,
    /// `POST /ops/orders/{id}/resolve`: an operator resolves an order held in review.
    ResolveOrder,
    /// `GET /ops/audit-log`: operators' actions, oldest first.
    AuditLog,
    /// `GET /ops/queue`: everything that needs a person, oldest first.
    Queue,
    /// `GET /ops/find/{id}`: what any id names.
    Find,
    /// `POST /ops/events/{id}/resend`: a merchant event sent again.
    ResendEvent,
    /// `POST /ops/events/recover`: undelivered deliveries since a time, sent again.
    RecoverEvents,
    /// `GET /ops/endpoints`: the merchant events' destinations.
    ListEndpoints,
    /// `POST /ops/endpoints/{id}/enable`.
    EnableEndpoint,
    /// `POST /ops/endpoints/{id}/disable`.
    DisableEndpoint,
    /// `GET /ops/show/{id}`: an order, payment or refund whole, beside Fintoc's now.
    Show,
    /// `POST /ops/reconcile/{id}`: the reconciler's check of one payment, now.
    ReconcileOne,
    /// `POST /ops/queue/acknowledge`: a queue item that holds no money leaves it.
    Acknowledge,
}

/// How a route's caller is authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Auth {
    /// By API Gateway: the merchant's server (IAM, or a JWT with its scope).
    Merchant,
    /// Not by API Gateway: the `Fintoc-Signature` header is the authentication.
    FintocSignature,
    /// By API Gateway, always IAM (SigV4): an operator's AWS principal, on the
    /// operations API, which the merchant's callers are not allowed to invoke.
    Operator,
}

/// One route of the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    /// The HTTP method.
    pub method: &'static str,
    /// The path as API Gateway's route key writes it (`{id}`: one path segment).
    pub path: &'static str,
    /// The function that serves it.
    pub function: Function,
    /// What it does.
    pub operation: Operation,
    /// Who may call it.
    pub auth: Auth,
}

/// Every route of the API.
pub const ROUTES: &[Route] = &[
    Route {
        method: "POST",
        path: "/payment-intents",
        function: Function::CreateIntent,
        operation: Operation::CreateIntent,
        auth: Auth::Merchant,
    },
    Route {
        method: "GET",
        path: "/payment-intents/{id}",
        function: Function::CreateIntent,
        operation: Operation::GetIntent,
        auth: Auth::Merchant,
    },
    Route {
        method: "POST",
        path: "/checkout-sessions",
        function: Function::CreateIntent,
        operation: Operation::CreateSession,
        auth: Auth::Merchant,
    },
    Route {
        method: "GET",
        path: "/checkout-sessions/{id}",
        function: Function::CreateIntent,
        operation: Operation::GetSession,
        auth: Auth::Merchant,
    },
    Route {
        method: "POST",
        path: "/checkout-sessions/{id}/expire",
        function: Function::CreateIntent,
        operation: Operation::ExpireSession,
        auth: Auth::Merchant,
    },
    Route {
        method: "POST",
        path: "/payment-intents/{id}/refunds",
        function: Function::CreateIntent,
        operation: Operation::RefundIntent,
        auth: Auth::Merchant,
    },
    Route {
        method: "POST",
        path: "/checkout-sessions/{id}/refunds",
        function: Function::CreateIntent,
        operation: Operation::RefundSession,
        auth: Auth::Merchant,
    },
    Route {
        method: "GET",
        path: "/refunds/{id}",
        function: Function::CreateIntent,
        operation: Operation::GetRefund,
        auth: Auth::Merchant,
    },
    Route {
        method: "POST",
        path: "/refunds/{id}/cancel",
        function: Function::CreateIntent,
        operation: Operation::CancelRefund,
        auth: Auth::Merchant,
    },
    Route {
        method: "POST",
        path: "/webhooks/fintoc",
        function: Function::Webhook,
        operation: Operation::ReceiveWebhook,
        auth: Auth::FintocSignature,
    },
    Route {
        method: "POST",
        path: "/ops/orders/{id}/resolve",
        function: Function::Operations,
        operation: Operation::ResolveOrder,
        auth: Auth::Operator,
    },
    Route {
        method: "GET",
        path: "/ops/find/{id}",
        function: Function::Operations,
        operation: Operation::Find,
        auth: Auth::Operator,
    },
    Route {
        method: "GET",
        path: "/ops/queue",
        function: Function::Operations,
        operation: Operation::Queue,
        auth: Auth::Operator,
    },
    Route {
        method: "GET",
        path: "/ops/audit-log",
        function: Function::Operations,
        operation: Operation::AuditLog,
        auth: Auth::Operator,
    },
    Route {
        method: "POST",
        path: "/ops/events/{id}/resend",
        function: Function::Operations,
        operation: Operation::ResendEvent,
        auth: Auth::Operator,
    },
    Route {
        method: "POST",
        path: "/ops/events/recover",
        function: Function::Operations,
        operation: Operation::RecoverEvents,
        auth: Auth::Operator,
    },
    Route {
        method: "GET",
        path: "/ops/endpoints",
        function: Function::Operations,
        operation: Operation::ListEndpoints,
        auth: Auth::Operator,
    },
    Route {
        method: "POST",
        path: "/ops/endpoints/{id}/enable",
        function: Function::Operations,
        operation: Operation::EnableEndpoint,
        auth: Auth::Operator,
    },
    Route {
        method: "POST",
        path: "/ops/endpoints/{id}/disable",
        function: Function::Operations,
        operation: Operation::DisableEndpoint,
        auth: Auth::Operator,
    },
    Route {
        method: "GET",
        path: "/ops/show/{id}",
        function: Function::Operations,
        operation: Operation::Show,
        auth: Auth::Operator,
    },
    Route {
        method: "POST",
        path: "/ops/reconcile/{id}",
        function: Function::Operations,
        operation: Operation::ReconcileOne,
        auth: Auth::Operator,
    },
    Route {
        method: "POST",
        path: "/ops/queue/acknowledge",
        function: Function::Operations,
        operation: Operation::Acknowledge,
        auth: Auth::Operator,
    },
];

/// What the table says of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Matched<'a> {
    /// A route: its operation, and the `{id}` segment when it has one.
    Route {
        /// The route matched.
        route: &'static Route,
        /// The path's `{id}`.
        id: Option<&'a str>,
    },
    /// The path is a route's, with another method: the methods it allows (for
    /// `Allow`), sorted.
    MethodNotAllowed {
        /// The methods the path's routes take.
        allowed: Vec<&'static str>,
    },
    /// No route has this path.
    NotFound,
}

/// Whether `path` has `route`'s path (after any stage prefix, such as `/prod`):
/// `Some` with its `{id}` segment when it does. An empty segment is never an id.
fn match_path<'a>(route: &Route, path: &'a str) -> Option<Option<&'a str>> {
    let segments: Vec<&str> = path.trim_end_matches('/').split('/').collect();
    let pattern: Vec<&str> = route.path.split('/').skip(1).collect();
    let start = segments.len().checked_sub(pattern.len())?;
    let mut id = None;
    for (want, got) in pattern.iter().zip(&segments[start..]) {
        match *want {
            "{id}" if !got.is_empty() => id = Some(*got),
            literal if literal == *got => {}
            _ => return None,
        }
    }
    Some(id)
}

/// The routes among `routes` whose path `path` has, the most specific (longest)
/// only.
fn paths_matched(
    routes: impl Iterator<Item = &'static Route>,
    path: &str,
) -> Vec<(&'static Route, Option<&str>)> {
    let matched: Vec<_> = routes
        .filter_map(|route| match_path(route, path).map(|id| (route, id)))
        .collect();
    let longest = matched.iter().map(|(r, _)| r.path.len()).max();
    matched
        .into_iter()
        .filter(|(r, _)| Some(r.path.len()) == longest)
        .collect()
}

/// The function a path belongs to, whatever the method (how the local gateway
/// forwards a request: the function answers a wrong method itself).
pub fn function_of_path(path: &str) -> Option<Function> {
    paths_matched(ROUTES.iter(), path)
        .first()
        .map(|(route, _)| route.function)
}

/// Matches a request that reached `function` against that function's routes.
pub fn resolve<'a>(function: Function, method: &str, path: &'a str) -> Matched<'a> {
    let candidates = paths_matched(ROUTES.iter().filter(|r| r.function == function), path);
    match candidates.iter().find(|(route, _)| route.method == method) {
        Some((route, id)) => Matched::Route { route, id: *id },
        None if candidates.is_empty() => Matched::NotFound,
        None => {
            let mut allowed: Vec<&'static str> =
                candidates.iter().map(|(route, _)| route.method).collect();
            allowed.sort_unstable();
            allowed.dedup();
            Matched::MethodNotAllowed { allowed }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn operation(
        function: Function,
        method: &str,
        path: &str,
    ) -> Option<(Operation, Option<String>)> {
        match resolve(function, method, path) {
            Matched::Route { route, id } => Some((route.operation, id.map(str::to_string))),
            _ => None,
        }
    }

    #[test]
    fn every_route_of_both_flows_resolves_with_its_id() {
        use Function::CreateIntent as C;
        let id = |s: &str| Some(s.to_string());
        assert_eq!(
            operation(C, "POST", "/payment-intents"),
            Some((Operation::CreateIntent, None))
        );
        assert_eq!(
            operation(C, "GET", "/prod/payment-intents/pi_1"),
            Some((Operation::GetIntent, id("pi_1")))
        );
        assert_eq!(
            operation(C, "POST", "/checkout-sessions/"),
            Some((Operation::CreateSession, None))
        );
        assert_eq!(
            operation(C, "GET", "/checkout-sessions/cs_1"),
            Some((Operation::GetSession, id("cs_1")))
        );
        assert_eq!(
            operation(C, "POST", "/checkout-sessions/cs_1/expire"),
            Some((Operation::ExpireSession, id("cs_1")))
        );
        assert_eq!(
            operation(Function::Webhook, "POST", "/webhooks/fintoc"),
            Some((Operation::ReceiveWebhook, None))
        );
        assert_eq!(
            operation(C, "POST", "/payment-intents/pi_1/refunds"),
            Some((Operation::RefundIntent, id("pi_1")))
        );
        assert_eq!(
            operation(C, "POST", "/checkout-sessions/cs_1/refunds"),
            Some((Operation::RefundSession, id("cs_1")))
        );
        assert_eq!(
            operation(C, "GET", "/refunds/re_i.pi_1.k0123456789abcdef"),
            Some((Operation::GetRefund, id("re_i.pi_1.k0123456789abcdef")))
        );
        assert_eq!(
            operation(C, "POST", "/prod/refunds/re_1/cancel"),
            Some((Operation::CancelRefund, id("re_1")))
        );
        assert_eq!(
            operation(Function::Operations, "POST", "/ops/orders/o-1/resolve"),
            Some((Operation::ResolveOrder, id("o-1")))
        );
        assert_eq!(
            operation(Function::Operations, "GET", "/ops/audit-log"),
            Some((Operation::AuditLog, None))
        );
        assert_eq!(
            operation(Function::Operations, "GET", "/ops/queue"),
            Some((Operation::Queue, None))
        );
        assert_eq!(
            operation(
                Function::Operations,
                "GET",
                "/ops/find/re_i.pi_1.k0123456789abcdef"
            ),
            Some((Operation::Find, id("re_i.pi_1.k0123456789abcdef")))
        );
        assert_eq!(
            operation(Function::Operations, "POST", "/ops/events/evt_1/resend"),
            Some((Operation::ResendEvent, id("evt_1")))
        );
        assert_eq!(
            operation(Function::Operations, "POST", "/ops/events/recover"),
            Some((Operation::RecoverEvents, None))
        );
        assert_eq!(
            operation(Function::Operations, "GET", "/ops/endpoints"),
            Some((Operation::ListEndpoints, None))
        );
        assert_eq!(
            operation(
                Function::Operations,
                "POST",
                "/ops/endpoints/merchant/enable"
            ),
            Some((Operation::EnableEndpoint, id("merchant")))
        );
        assert_eq!(
            operation(
                Function::Operations,
                "POST",
                "/ops/endpoints/merchant/disable"
            ),
            Some((Operation::DisableEndpoint, id("merchant")))
        );
        assert_eq!(
            operation(Function::Operations, "GET", "/ops/show/pi_1"),
            Some((Operation::Show, id("pi_1")))
        );
        assert_eq!(
            operation(Function::Operations, "POST", "/ops/queue/acknowledge"),
            Some((Operation::Acknowledge, None))
        );
        assert_eq!(
            operation(Function::Operations, "POST", "/ops/reconcile/pi_1"),
            Some((Operation::ReconcileOne, id("pi_1")))
        );
        assert_eq!(
            resolve(C, "POST", "/ops/orders/o-1/resolve"),
            Matched::NotFound
        );
        assert_eq!(
            resolve(C, "GET", "/payment-intents/pi_1/refunds"),
            Matched::MethodNotAllowed {
                allowed: vec!["POST"]
            }
        );
    }

    #[test]
    fn unknown_paths_wrong_methods_and_other_functions_routes_are_told_apart() {
        use Function::CreateIntent as C;
        for none in [
            "/",
            "/payment-intents/pi_1/expire",
            "/checkout-sessions/cs_1/x",
            "/other",
        ] {
            assert_eq!(resolve(C, "GET", none), Matched::NotFound, "{none}");
        }
        assert_eq!(resolve(C, "GET", "/payment-intents//x"), Matched::NotFound);
        assert_eq!(
            resolve(C, "DELETE", "/payment-intents/pi_1"),
            Matched::MethodNotAllowed {
                allowed: vec!["GET"]
            }
        );
        assert_eq!(
            resolve(C, "GET", "/checkout-sessions/cs_1/expire"),
            Matched::MethodNotAllowed {
                allowed: vec!["POST"]
            }
        );
        assert_eq!(resolve(C, "POST", "/webhooks/fintoc"), Matched::NotFound);
        assert_eq!(
            resolve(Function::Webhook, "POST", "/payment-intents"),
            Matched::NotFound
        );
        assert_eq!(
            resolve(Function::Webhook, "GET", "/webhooks/fintoc"),
            Matched::MethodNotAllowed {
                allowed: vec!["POST"]
            }
        );
    }

    #[test]
    fn the_gateway_forwards_each_path_to_its_function() {
        assert_eq!(
            function_of_path("/payment-intents/pi_1"),
            Some(Function::CreateIntent)
        );
        assert_eq!(
            function_of_path("/checkout-sessions/cs_1/expire"),
            Some(Function::CreateIntent)
        );
        assert_eq!(
            function_of_path("/webhooks/fintoc"),
            Some(Function::Webhook)
        );
        assert_eq!(
            function_of_path("/ops/orders/o-1/resolve"),
            Some(Function::Operations)
        );
        assert_eq!(function_of_path("/elsewhere"), None);
    }
}
