// The operations page of the local stack: the queue (GET /ops/queue), one order,
// payment or refund beside Fintoc's answer now (GET /ops/show/{id}), the actions
// whose preconditions hold — resolve an order held in review as paid (Fintoc says
// its payment succeeded) or closed (nothing paid is held), check a payment with
// Fintoc now, resend a merchant event, acknowledge a queue item that holds no
// money — each asking for a reason and a
// confirmation, and the audit log. Calls go to the local gateway's /_local/ops/…,
// which forwards them to the operations API naming the operator typed above (a
// browser holds no AWS credentials to sign with). The API decides; the page only
// offers what would not be refused and shows what it answers.
(function () {
  "use strict";
  var FINAL = ["succeeded", "failed", "rejected", "expired"];
  // The queue reasons that hold no money: a person may acknowledge them.
  var ACKNOWLEDGEABLE = ["stuck", "not_found_at_fintoc", "refund_failed", "delivery_exhausted"];
  var queueItems = [];
  var $ = function (id) { return document.getElementById(id); };
  var message = $("message");
  var current = null;
  var pending = null;

  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function call(method, path, body) {
    var init = { method: method, headers: { "x-ops-operator": $("operator").value.trim() } };
    if (body !== undefined) {
      init.headers["content-type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    return fetch("/_local/ops/" + path, init).then(function (response) {
      return response.json().then(function (json) { return { status: response.status, body: json }; });
    });
  }

  function say(text, kind) {
    message.textContent = text;
    message.dataset.kind = kind || "info";
  }

  function refused(answer) {
    var e = (answer.body && answer.body.error) || {};
    say("Refused (" + answer.status + " " + (e.code || "?") + "): " + (e.message || ""), "error");
  }

  function loadQueue() {
    return call("GET", "queue").then(function (answer) {
      var body = $("queue").querySelector("tbody");
      body.textContent = "";
      queueItems = answer.body.items || [];
      queueItems.forEach(function (item) {
        var row = el("tr", { "data-id": item.id, "data-reason": item.reason });
        [item.since, item.reason, item.kind, item.id].forEach(function (text) { row.appendChild(el("td", {}, text)); });
        var open = el("button", { type: "button" }, "Show");
        open.addEventListener("click", function () { show(item.kind === "delivery" ? item.id.split("/")[0] : item.id); });
        var cell = el("td");
        cell.appendChild(open);
        row.appendChild(cell);
        body.appendChild(row);
      });
      $("queue").dataset.loaded = String(Date.now());
    });
  }

  function loadAudit() {
    return call("GET", "audit-log").then(function (answer) {
      var body = $("audit").querySelector("tbody");
      body.textContent = "";
      (answer.body.entries || []).forEach(function (e) {
        var row = el("tr", { "data-entry": e.id, "data-subject": e.subject });
        [e.at, e.actor, e.action, e.subject, e.reason, e.ticket || ""].forEach(function (text) {
          row.appendChild(el("td", {}, text));
        });
        body.appendChild(row);
      });
    });
  }

  // What nothing paid still held means for `closed`: the payment never
  // succeeded, or its succeeded refunds give back all it paid.
  function holdsMoney(payment) {
    if (!payment || payment.status !== "succeeded") return false;
    var refunded = (payment.refunds.entries || []).filter(function (r) { return r.status === "succeeded"; })
      .reduce(function (sum, r) { return sum + r.amount; }, 0);
    return refunded < payment.amount;
  }

  function offer(label, what, needsReason, run) {
    var button = el("button", { type: "button", "data-action": label }, label);
    button.addEventListener("click", function () {
      pending = { needsReason: needsReason, run: run };
      $("confirm-what").textContent = what;
      $("reason").value = "";
      $("ticket").value = "";
      $("confirm").hidden = false;
      updateConfirm();
      $("reason").focus();
    });
    $("actions").appendChild(button);
  }

  function actionsFor(shown) {
    $("actions").textContent = "";
    var order = shown.ours.order;
    var payment = shown.ours.payment;
    var fintoc = shown.fintoc || {};
    if (order && order.state === "review") {
      if (fintoc.status === "succeeded") {
        offer("Resolve as paid", "Resolve order " + shown.order_id + " as paid at Fintoc's " +
          fintoc.amount + " " + fintoc.currency + ".", true, function (reason, ticket) {
          return call("POST", "orders/" + encodeURIComponent(shown.order_id) + "/resolve",
            { as: "paid", reason: reason, ticket: ticket || undefined });
        });
      }
      if (!holdsMoney(payment)) {
        offer("Resolve as closed", "Close order " + shown.order_id + ": nothing paid is held.", true,
          function (reason, ticket) {
            return call("POST", "orders/" + encodeURIComponent(shown.order_id) + "/resolve",
              { as: "closed", reason: reason, ticket: ticket || undefined });
          });
      }
    }
    if (payment && (payment.schedule || FINAL.indexOf(payment.status) < 0)) {
      offer("Check with Fintoc now", "Check " + payment.id + " with Fintoc now and record what it says.", false,
        function () { return call("POST", "reconcile/" + encodeURIComponent(payment.id), {}); });
    }
    shown.timeline.filter(function (e) { return e.what === "merchant_event_recorded"; }).forEach(function (e) {
      offer("Resend " + e.detail.type, "Send merchant event " + e.detail.event_id + " (" + e.detail.type +
        ") to the merchant again.", false, function (reason, ticket) {
        return call("POST", "events/" + encodeURIComponent(e.detail.event_id) + "/resend",
          { reason: reason || undefined, ticket: ticket || undefined });
      });
    });
    queueItems.filter(function (i) {
      return ACKNOWLEDGEABLE.indexOf(i.reason) >= 0 && (i.id === shown.id || i.id.indexOf(shown.id + "/") === 0);
    }).forEach(function (i) {
      offer("Acknowledge " + i.reason, "Acknowledge " + i.kind + " " + i.id + " (" + i.reason +
        "): it leaves the queue.", true, function (reason, ticket) {
        return call("POST", "queue/acknowledge", { id: i.id, reason: reason, ticket: ticket || undefined });
      });
    });
    if (!$("actions").children.length) $("actions").appendChild(el("p", { "class": "hint" }, "Nothing to do here."));
  }

  function render(shown) {
    current = shown;
    $("detail").hidden = false;
    $("detail").dataset.id = shown.id;
    $("detail-title").textContent = shown.kind + " " + shown.id + (shown.order_id ? " (order " + shown.order_id + ")" : "");
    $("ours").textContent = JSON.stringify(shown.ours, null, 2);
    $("fintoc").textContent = JSON.stringify(shown.fintoc, null, 2);
    var list = $("discrepancies");
    list.textContent = "";
    shown.discrepancies.forEach(function (d) {
      list.appendChild(el("li", { "data-field": d.field },
        d.field + ": ours " + JSON.stringify(d.ours) + ", Fintoc's " + JSON.stringify(d.fintoc)));
    });
    if (!shown.discrepancies.length) list.appendChild(el("li", { "class": "hint", "data-field": "" }, "none: ours and Fintoc's agree"));
    var timeline = $("timeline");
    timeline.textContent = "";
    shown.timeline.forEach(function (e) {
      timeline.appendChild(el("li", { "data-what": e.what }, e.at + " " + e.what + " " + JSON.stringify(e.detail)));
    });
    $("confirm").hidden = true;
    actionsFor(shown);
    $("detail").dataset.loaded = String(Date.now());
  }

  function show(id) {
    return call("GET", "show/" + encodeURIComponent(id)).then(function (answer) {
      if (answer.status !== 200) return refused(answer);
      render(answer.body);
    });
  }

  // The queue first: the actions offered depend on it.
  function refresh() {
    return loadQueue().then(function () {
      return Promise.all([loadAudit(), current ? show(current.id) : null]);
    });
  }

  function updateConfirm() {
    $("confirm-action").disabled = !pending || (pending.needsReason && !$("reason").value.trim());
  }

  $("reason").addEventListener("input", updateConfirm);
  $("cancel-action").addEventListener("click", function () { pending = null; $("confirm").hidden = true; });
  $("confirm").addEventListener("submit", function (event) {
    event.preventDefault();
    if (!pending) return;
    var run = pending.run;
    pending = null;
    $("confirm-action").disabled = true;
    run($("reason").value.trim(), $("ticket").value.trim()).then(function (answer) {
      if (answer.status !== 200) refused(answer);
      else say("Done: " + JSON.stringify(answer.body).slice(0, 300), "ok");
      return refresh();
    });
  });
  $("show").addEventListener("click", function () { if ($("lookup").value.trim()) show($("lookup").value.trim()); });
  refresh();
})();
