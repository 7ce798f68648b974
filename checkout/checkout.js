// The merchant's checkout page logic. The same code runs against Fintoc's real widget
// and hosted page: only window.CHECKOUT_CONFIG (config.js) differs between local and
// production.
//
// 1. Show the order as the merchant's server prices it, and ask that server to pay
//    it: the server creates the payment with the amount it knows — the browser never
//    sends an amount, so a payer cannot change it. Locally the server is the
//    gateway's stand-in (/_merchant/orders/...).
// 2. Let the payer pay, in one of three flows (config.flow, or ?flow= on the page):
//    - payment_intent: a Payment Intent, Fintoc's widget opened with its widget_token;
//    - session_widget: a Checkout Session, the widget opened with its session_token;
//    - session_redirect: a Checkout Session, the payer sent to Fintoc's hosted page
//      (redirect_url), which sends them back here (?return=success|cancel).
// 3. Whatever the widget or the hosted page says, ask the merchant's server for the
//    status (GET /_merchant/orders/{order}/payments/{id}; it reads the backend's GET
//    /payment-intents/{id} or /checkout-sessions/{id} with its own credentials, which
//    the page never holds): only Fintoc's signed
//    webhook (or the backend's own check with Fintoc) marks a payment paid. onSuccess
//    or a return to the success URL alone is never taken as a payment.
(function () {
  "use strict";
  var config = window.CHECKOUT_CONFIG;
  var form = document.getElementById("checkout");
  var payButton = document.getElementById("pay");
  var statusLine = document.getElementById("status");
  var intentLine = document.getElementById("intent");
  var FINAL = ["succeeded", "failed", "rejected", "expired"];
  var MESSAGES = {
    creating: "Creating the payment…",
    widget_open: "Complete the transfer in the Fintoc widget.",
    redirecting: "Taking you to Fintoc's payment page…",
    awaiting_webhook: "Waiting for Fintoc to confirm the payment…",
    succeeded: "Payment received — confirmed by Fintoc's webhook.",
    failed: "The payment failed.",
    rejected: "The bank rejected the payment.",
    expired: "The payment expired.",
    cancelled: "You left Fintoc's page without paying; nothing was charged.",
    unconfirmed: "No confirmation yet. We will email you when Fintoc confirms the payment.",
  };
  var SAVED = "checkout.session";
  // Every status the page showed, in order (read by the browser test).
  window.checkoutStatusHistory = [];
  var params = new URLSearchParams(location.search);
  var returned = params.get("return");
  var saved = returned ? JSON.parse(sessionStorage.getItem(SAVED) || "null") : null;
  var flow = (saved && saved.flow) || params.get("flow") || config.flow || "payment_intent";
  document.body.dataset.flow = flow;
  // One order per page (or ?order=...): the backend pays an order at most once and
  // keeps at most one open payment for it, so a second Pay while a transfer is
  // pending is refused.
  var orderId = (saved && saved.orderId) || params.get("order") ||
    "web-" + crypto.randomUUID().slice(0, 13);
  document.getElementById("order").textContent = orderId;
  var orderPath = "/_merchant/orders/" + encodeURIComponent(orderId);
  // A checkout session still open: Pay again reopens it (the payer may try again
  // inside it; a new one would be refused while it is open).
  var openSession = null;
  // The session's latest payment attempt the page has seen: an attempt's outcome is
  // shown only for an attempt made after the widget opened.
  var seenAttempt = null;
  // Pay is enabled once the order is shown, unless a payment is being started or
  // confirmed, or the order is paid.
  var busy = !!saved, paid = false;
  function updatePay() { payButton.disabled = busy || paid || !cartShown; }
  var cartShown = false;

  function show(status, detail) {
    window.checkoutStatusHistory.push(status);
    statusLine.dataset.status = status;
    statusLine.textContent = detail || MESSAGES[status] || status;
  }

  function showPayment(kind, id) {
    intentLine.textContent = (kind === "session" ? "Checkout session " : "Payment intent ") + id;
    intentLine.dataset.intentId = id;
  }

  function loadWidgetScript() {
    if (window.Fintoc) return Promise.resolve(window.Fintoc);
    return new Promise(function (resolve, reject) {
      var tag = document.createElement("script");
      tag.src = config.widgetScript;
      tag.onload = function () { resolve(window.Fintoc); };
      tag.onerror = function () { reject(new Error("could not load the Fintoc widget")); };
      document.head.appendChild(tag);
    });
  }

  // Every call goes to the merchant's server (locally the gateway's stand-in), which
  // calls the payments API with its own credentials: the page never holds them.
  function api(method, path, body, headers) {
    return fetch(config.merchantBase + path, {
      method: method,
      headers: Object.assign({ "content-type": "application/json" }, headers || {}),
      body: body ? JSON.stringify(body) : undefined,
    }).then(function (response) {
      return response.json().then(function (json) {
        if (!response.ok) {
          var e = new Error((json.error && json.error.message) || "HTTP " + response.status);
          e.status = response.status;
          e.code = json.error && json.error.code;
          throw e;
        }
        return json;
      });
    });
  }

  function showCart(cart) {
    var list = document.getElementById("cart");
    cart.lines.forEach(function (line) {
      var item = document.createElement("li");
      item.textContent = line.quantity + " × " + line.name + " — " + line.unit_price + " " + cart.currency;
      list.appendChild(item);
    });
    var total = document.getElementById("total");
    total.textContent = cart.amount + " " + cart.currency;
    total.dataset.amount = String(cart.amount);
    cartShown = true;
    updatePay();
  }

  fetch(config.merchantBase + orderPath).then(function (r) { return r.json(); }).then(showCart,
    function (e) { show("error", "Could not load the order: " + e.message); });

  // Asks the merchant's server to create the payment; a retry of this call (network
  // error, 5xx) reuses the key: no second charge.
  function createPayment(action, idempotencyKey) {
    function attempt(n) {
      return api("POST", orderPath + "/" + action, null, { "Idempotency-Key": idempotencyKey })
        .catch(function (e) {
          // Retry what may pass with the same key; never a refusal of the order.
          var retryable = !e.status || e.code === "request_in_progress" || e.status >= 500;
          if (retryable && n < 3) {
            return new Promise(function (r) { setTimeout(r, 500 * (n + 1)); }).then(function () { return attempt(n + 1); });
          }
          throw e;
        });
    }
    return attempt(0);
  }

  // Polls `read` until `decide` names a status to show (or two minutes pass).
  function poll(read, decide) {
    show("awaiting_webhook");
    var started = Date.now();
    function again() {
      return read().then(function (payment) {
        var status = decide(payment);
        if (status) {
          show(status);
          busy = false;
          paid = status === "succeeded";
          updatePay();
          return;
        }
        if (Date.now() - started > 120000) {
          show("unconfirmed");
          busy = false;
          updatePay();
          return;
        }
        return new Promise(function (r) { setTimeout(r, 1000); }).then(again);
      }, function () {
        return new Promise(function (r) { setTimeout(r, 2000); }).then(again);
      });
    }
    return again();
  }

  function confirmIntent(id) {
    return poll(function () { return api("GET", orderPath + "/payments/" + encodeURIComponent(id)); },
      function (intent) { return FINAL.indexOf(intent.status) >= 0 ? intent.status : null; });
  }

  // A session is paid only when the backend says `paid`. A finished or expired one
  // shows its payment's outcome; an open one shows its latest attempt's, once that
  // ended (the payer may try again in it), or `cancelled` when the payer left
  // Fintoc's page without paying.
  function confirmSession(id, how) {
    return poll(function () { return api("GET", orderPath + "/payments/" + encodeURIComponent(id)); },
      function (session) {
        if (session.paid) { openSession = null; return "succeeded"; }
        if (session.status === "finished" || session.status === "expired") {
          openSession = null;
          return session.payment_status || "expired";
        }
        if (how.cancelled) return "cancelled";
        var newAttempt = session.payment_intent_id && session.payment_intent_id !== how.before;
        if (how.attemptEnded && newAttempt && FINAL.indexOf(session.payment_status) >= 0) {
          seenAttempt = session.payment_intent_id;
          return session.payment_status;
        }
        return null;
      });
  }

  function openWidget(Fintoc, options) {
    var widget = Fintoc.create(Object.assign({ publicKey: config.publicKey }, options));
    show("widget_open");
    widget.open();
  }

  function payIntent(idempotencyKey) {
    return Promise.all([createPayment("pay", idempotencyKey), loadWidgetScript()]).then(function (results) {
      var intent = results[0];
      showPayment("intent", intent.id);
      openWidget(results[1], {
        holderType: config.holderType,
        product: "payments",
        widgetToken: intent.widget_token,
        onSuccess: function () { confirmIntent(intent.id); },
        onExit: function () { confirmIntent(intent.id); },
      });
    });
  }

  function paySessionInWidget(idempotencyKey) {
    var session = openSession ? Promise.resolve(openSession) : createPayment("checkout-session", idempotencyKey);
    return Promise.all([session, loadWidgetScript()]).then(function (results) {
      var created = results[0];
      openSession = created;
      showPayment("session", created.id);
      var before = seenAttempt;
      var ended = function () { confirmSession(created.id, { attemptEnded: true, before: before }); };
      openWidget(results[1], { sessionToken: created.session_token, onSuccess: ended, onExit: ended });
    });
  }

  function paySessionOnFintocsPage(idempotencyKey) {
    var session = openSession ? Promise.resolve(openSession) : createPayment("checkout-session", idempotencyKey);
    return session.then(function (created) {
      showPayment("session", created.id);
      sessionStorage.setItem(SAVED, JSON.stringify({
        orderId: orderId, id: created.id, flow: flow, redirect_url: created.redirect_url,
      }));
      show("redirecting");
      location.assign(created.redirect_url);
    });
  }

  if (saved) {
    // Back from Fintoc's hosted page: what the URL says is only where the payer
    // clicked; the backend says whether it is paid. Pay again returns to the same
    // session while it is open.
    openSession = saved;
    showPayment("session", saved.id);
    confirmSession(saved.id, { cancelled: returned === "cancel" });
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    busy = true;
    updatePay();
    var idempotencyKey = crypto.randomUUID();
    show("creating");
    var pay = flow === "session_widget" ? paySessionInWidget
      : flow === "session_redirect" ? paySessionOnFintocsPage
        : payIntent;
    pay(idempotencyKey).catch(function (e) {
      show("error", "Could not start the payment: " + e.message);
      busy = false;
      updatePay();
    });
  });
})();
