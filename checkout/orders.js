// The merchant's order page: lists an order's payments (GET
// /_merchant/orders/{id}/payments, the merchant's server asking the backend for
// each) with their refunds, and refunds part or all of what is left of one (POST
// /_merchant/orders/{id}/refunds with an Idempotency-Key made once per click, so a
// retried request never refunds twice). The backend refuses more than is
// refundable; this page only shows what it answers. It also lists the merchant
// events the order received (GET /_merchant/orders/{id}/events: the deliveries
// whose Standard Webhooks signature the merchant's server checked).
(function () {
  "use strict";
  var params = new URLSearchParams(location.search);
  var orderId = params.get("order") || "";
  var base = "/_merchant/orders/" + encodeURIComponent(orderId);
  var list = document.getElementById("payments");
  var message = document.getElementById("message");
  document.getElementById("order").textContent = orderId;

  function money(amount, currency) {
    return amount.toLocaleString("es-CL") + " " + currency;
  }

  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function render(payments) {
    list.textContent = "";
    if (!payments.length) list.appendChild(el("p", { "class": "hint" }, "No payment yet."));
    payments.forEach(function (p) {
      var card = el("article", { "class": "payment", "data-payment-id": p.id, "data-status": p.status,
        "data-refunded": String(p.refunded_amount || 0), "data-refundable": String(p.refundable_amount || 0) });
      card.appendChild(el("h2", {}, (p.id.indexOf("cs_") === 0 ? "Checkout session " : "Payment intent ") + p.id));
      card.appendChild(el("p", {}, money(p.amount, p.currency) + " — " + p.status +
        (p.paid ? " (paid this order)" : "")));
      card.appendChild(el("p", { "class": "hint" }, "Refunded " + money(p.refunded_amount || 0, p.currency) +
        ", refundable " + money(p.refundable_amount || 0, p.currency)));
      var refunds = el("ul", { "aria-label": "Refunds of " + p.id });
      (p.refunds || []).forEach(function (r) {
        refunds.appendChild(el("li", { "class": "refund", "data-refund-id": r.id, "data-status": r.status,
          "data-amount": String(r.amount) }, money(r.amount, p.currency) + " — " + r.status));
      });
      card.appendChild(refunds);
      if ((p.refundable_amount || 0) > 0) {
        var form = el("form", { "class": "row refund-form" });
        var amount = el("input", { type: "number", min: "1", max: String(p.refundable_amount),
          value: String(p.refundable_amount), "aria-label": "Amount to refund of " + p.id });
        var button = el("button", { type: "submit" }, "Refund");
        form.appendChild(amount);
        form.appendChild(button);
        form.addEventListener("submit", function (e) {
          e.preventDefault();
          button.disabled = true;
          refund(p.id, Number(amount.value)).finally(function () { button.disabled = false; });
        });
        card.appendChild(form);
      }
      list.appendChild(card);
    });
  }

  var events = document.getElementById("events");

  function renderEvents(received) {
    events.textContent = "";
    if (!received.length) events.appendChild(el("li", { "class": "hint" }, "None yet."));
    received.forEach(function (e) {
      events.appendChild(el("li", { "class": "event", "data-event-id": e.id, "data-type": e.type },
        e.type + " — " + e.timestamp + " (" + e.id + ")"));
    });
  }

  function load() {
    fetch(base + "/events").then(function (r) { return r.json(); }).then(function (body) {
      if (body.events) renderEvents(body.events);
    });
    return fetch(base + "/payments").then(function (r) { return r.json(); }).then(function (body) {
      if (body.error) { message.textContent = body.error.message; return; }
      render(body.payments);
    });
  }

  function refund(paymentId, amount) {
    return fetch(base + "/refunds", {
      method: "POST",
      headers: { "content-type": "application/json", "idempotency-key": crypto.randomUUID() },
      body: JSON.stringify({ payment_id: paymentId, amount: amount }),
    }).then(function (r) { return r.json().then(function (body) { return { status: r.status, body: body }; }); })
      .then(function (answer) {
        message.dataset.status = String(answer.status);
        message.textContent = answer.body.error
          ? "Refused: " + answer.body.error.message
          : "Refund " + answer.body.id + " of " + answer.body.amount + " is " + answer.body.status + ".";
        return load();
      });
  }

  // Refunds move on with Fintoc's webhooks: the page follows them.
  load();
  setInterval(load, 1000);
}());
