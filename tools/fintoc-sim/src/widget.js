// Stand-in for Fintoc's widget script (https://js.fintoc.com/v1/), served by the
// Fintoc simulator at /widget/v1/. Same entry point as the real widget:
//
//   const widget = Fintoc.create({holderType, product: 'payments', publicKey,
//                                 widgetToken, onSuccess, onExit, onEvent});
//   // or, for a Checkout Session: Fintoc.create({publicKey, sessionToken, ...})
//   widget.open();
//
// Instead of a bank login it shows a small dialog whose buttons drive the
// simulator: Pay (the transfer succeeds), Reject (the bank rejects it), Fail (it
// fails) and Close (the payer leaves). The simulator then sends the signed webhooks,
// as Fintoc would. Only those webhooks are the truth: onSuccess just closes the UI.
(function () {
  "use strict";
  var script = document.currentScript;
  var simulator = new URL(script ? script.src : "/", window.location.href).origin;

  function post(path, body) {
    return fetch(simulator + "/_sim/widget" + path, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body),
    }).then(function (response) {
      return response.json().then(function (json) {
        if (!response.ok) {
          throw new Error((json.error && json.error.message) || "HTTP " + response.status);
        }
        return json;
      });
    });
  }

  function check(options) {
    if (!options || typeof options !== "object") throw new Error("Fintoc.create needs an options object");
    if (!/^pk_(test|live)_/.test(options.publicKey || "")) throw new Error("publicKey must be a pk_test_ or pk_live_ key");
    if (options.sessionToken) return;
    if (options.product !== "payments") throw new Error("product must be 'payments'");
    if (["individual", "business"].indexOf(options.holderType) < 0) {
      throw new Error("holderType must be 'individual' or 'business'");
    }
    if (!options.widgetToken) throw new Error("widgetToken (or sessionToken) is required for payments");
  }

  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    if (text) node.textContent = text;
    return node;
  }

  function create(options) {
    check(options);
    var root = null;
    function token() {
      return options.sessionToken ? { session_token: options.sessionToken } : { widget_token: options.widgetToken };
    }
    function emit(name) { if (typeof options.onEvent === "function") options.onEvent(name); }
    function destroy() { if (root) { root.remove(); root = null; } }

    function open() {
      if (root) return;
      root = el("div", { id: "fintoc-sim-widget", role: "dialog", "aria-modal": "true", "aria-label": "Fintoc (simulated)" });
      root.style.cssText = "position:fixed;inset:0;background:rgba(15,23,42,.55);display:flex;align-items:center;justify-content:center;z-index:2147483647;font-family:system-ui,sans-serif";
      var card = el("div");
      card.style.cssText = "background:#fff;border-radius:12px;padding:24px;width:320px;box-shadow:0 10px 40px rgba(0,0,0,.3)";
      card.appendChild(el("h2", { style: "margin:0 0 4px;font-size:18px" }, "Fintoc (simulated)"));
      var summary = el("p", { "data-role": "summary", style: "margin:0 0 16px;color:#475569" }, "Loading payment…");
      card.appendChild(summary);
      var message = el("p", { "data-role": "message", style: "min-height:1.2em;color:#b91c1c;margin:0 0 8px" });
      var buttons = el("div", { style: "display:grid;gap:8px" });
      [["Pay", "succeeded", "#2563eb"], ["Reject", "rejected", "#64748b"], ["Fail", "failed", "#64748b"]].forEach(function (b) {
        var button = el("button", { type: "button", "data-outcome": b[1], style: "padding:10px;border:0;border-radius:8px;color:#fff;font:inherit;background:" + b[2] + ";cursor:pointer" }, b[0]);
        button.addEventListener("click", function () { finish(b[1], buttons, message); });
        buttons.appendChild(button);
      });
      var close = el("button", { type: "button", "data-outcome": "exit", style: "padding:10px;border:1px solid #cbd5e1;border-radius:8px;background:#fff;color:#0f172a;font:inherit;cursor:pointer" }, "Close");
      close.addEventListener("click", function () { destroy(); emit("on_exit"); if (typeof options.onExit === "function") options.onExit(); });
      buttons.appendChild(close);
      card.appendChild(message);
      card.appendChild(buttons);
      root.appendChild(card);
      document.body.appendChild(root);
      emit("opened");
      post("/session", token()).then(function (s) {
        summary.textContent = "Pay " + new Intl.NumberFormat(undefined, { style: "currency", currency: s.currency }).format(s.amount) + " by bank transfer";
      }, function (e) { summary.textContent = ""; message.textContent = e.message; });
    }

    function finish(outcome, buttons, message) {
      Array.prototype.forEach.call(buttons.querySelectorAll("button"), function (b) { b.disabled = true; });
      message.textContent = "";
      var body = token();
      body.outcome = outcome;
      post("/complete", body).then(function (answer) {
        destroy();
        if (outcome === "succeeded") {
          emit("on_success");
          if (typeof options.onSuccess === "function") options.onSuccess({ id: answer.id });
        } else {
          emit("on_exit");
          if (typeof options.onExit === "function") options.onExit();
        }
      }, function (e) {
        message.textContent = e.message;
        Array.prototype.forEach.call(buttons.querySelectorAll("button"), function (b) { b.disabled = false; });
      });
    }

    return { open: open, destroy: destroy };
  }

  window.Fintoc = { create: create };
})();
