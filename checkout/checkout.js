// The merchant's checkout page logic. The same code runs against Fintoc's real widget:
// only window.CHECKOUT_CONFIG (config.js) differs between local and production.
//
// 1. Show the order as the merchant's server prices it, and ask that server to pay
//    it: the server creates the Payment Intent (POST /payment-intents) with the amount
//    it knows — the browser never sends an amount, so a payer cannot change it.
//    Locally the server is the gateway's stand-in (/_merchant/orders/...).
// 2. Open Fintoc's widget with the intent's widget_token.
// 3. Whatever the widget says (onSuccess, onExit), ask the backend for the status
//    (GET /payment-intents/{id}): only Fintoc's signed webhook moves it to a final
//    state. onSuccess alone is never taken as a payment.
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
    awaiting_webhook: "Waiting for Fintoc to confirm the payment…",
    succeeded: "Payment received — confirmed by Fintoc's webhook.",
    failed: "The payment failed.",
    rejected: "The bank rejected the payment.",
    expired: "The payment expired.",
    unconfirmed: "No confirmation yet. We will email you when Fintoc confirms the payment.",
  };
  // Every status the page showed, in order (read by the browser test).
  window.checkoutStatusHistory = [];
  // One order per page (or ?order=...): the backend pays an order at most once and
  // keeps at most one open intent for it, so a second Pay while a transfer is pending
  // is refused.
  var orderId = new URLSearchParams(location.search).get("order") ||
    "web-" + crypto.randomUUID().slice(0, 13);
  document.getElementById("order").textContent = orderId;
  var orderPath = "/_merchant/orders/" + encodeURIComponent(orderId);

  function show(status, detail) {
    window.checkoutStatusHistory.push(status);
    statusLine.dataset.status = status;
    statusLine.textContent = detail || MESSAGES[status] || status;
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

  function api(method, path, body, headers, base) {
    return fetch((base === undefined ? config.apiBase : base) + path, {
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
    payButton.disabled = false;
  }

  fetch(config.merchantBase + orderPath).then(function (r) { return r.json(); }).then(showCart,
    function (e) { show("error", "Could not load the order: " + e.message); });

  function createIntent(idempotencyKey) {
    // A retry of this call (network error, 5xx) reuses the key: no second charge.
    function attempt(n) {
      return api("POST", orderPath + "/pay", null, { "Idempotency-Key": idempotencyKey }, config.merchantBase)
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

  function confirmStatus(id) {
    show("awaiting_webhook");
    var started = Date.now();
    function poll() {
      return api("GET", "/payment-intents/" + encodeURIComponent(id)).then(function (intent) {
        if (FINAL.indexOf(intent.status) >= 0) {
          show(intent.status);
          payButton.disabled = false;
          return;
        }
        if (Date.now() - started > 120000) {
          show("unconfirmed");
          payButton.disabled = false;
          return;
        }
        return new Promise(function (r) { setTimeout(r, 1000); }).then(poll);
      }, function () {
        return new Promise(function (r) { setTimeout(r, 2000); }).then(poll);
      });
    }
    return poll();
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    payButton.disabled = true;
    var idempotencyKey = crypto.randomUUID();
    show("creating");
    Promise.all([createIntent(idempotencyKey), loadWidgetScript()])
      .then(function (results) {
        var intent = results[0], Fintoc = results[1];
        intentLine.textContent = "Payment intent " + intent.id;
        intentLine.dataset.intentId = intent.id;
        var widget = Fintoc.create({
          holderType: config.holderType,
          product: "payments",
          publicKey: config.publicKey,
          widgetToken: intent.widget_token,
          onSuccess: function () { confirmStatus(intent.id); },
          onExit: function () { confirmStatus(intent.id); },
        });
        show("widget_open");
        widget.open();
      })
      .catch(function (e) {
        show("error", "Could not start the payment: " + e.message);
        payButton.disabled = false;
      });
  });
})();
