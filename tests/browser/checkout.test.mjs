// Browser test of the checkout page (checkout/) against the running local stack:
// headless Debian Chromium driven by playwright-core. Run by scripts/browser-test.sh,
// which brings the stack up and down; STACK_ENV names the stack's env file.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { env, launchBrowser } from "./stack.mjs";

const FINAL = ["succeeded", "failed", "rejected", "expired"];
let browser;

before(async () => {
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
});

// The API's routes want the stack's credential (API_TOKEN), as the deployed
// authorizer wants one; the gateway's own routes (/_local, /_merchant) do not.
async function api(path, init = {}) {
  const headers = { ...(init.headers || {}) };
  if (env.API_TOKEN && !path.startsWith("/_")) headers.Authorization = `Bearer ${env.API_TOKEN}`;
  const response = await fetch(env.API_URL + path, { ...init, headers });
  return { status: response.status, body: await response.json() };
}

// Pays on the checkout page and clicks `button` in the widget; returns the page, the
// intent id and the statuses the page showed.
async function checkout(button, { delayFirstWebhook = false } = {}) {
  if (delayFirstWebhook) {
    const faults = await api("/_local/faults", { method: "POST", body: JSON.stringify({ webhook: [503] }) });
    assert.equal(faults.status, 200);
  }
  const page = await browser.newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(e.message));
  await page.goto(env.CHECKOUT_URL);
  await page.locator("#total[data-amount]:not([data-amount=''])").waitFor();
  await page.click("#pay");
  const widget = page.locator("#fintoc-sim-widget");
  await widget.waitFor({ state: "visible", timeout: 30_000 });
  await widget.locator("[data-role=summary]").filter({ hasText: "Pay" }).waitFor({ timeout: 10_000 });
  const intentId = await page.locator("#intent").getAttribute("data-intent-id");
  assert.match(intentId, /^pi_/);
  await widget.getByRole("button", { name: button, exact: true }).click();
  await page.waitForFunction((final) => final.includes(document.querySelector("#status").dataset.status),
    FINAL, { timeout: 60_000 });
  const history = await page.evaluate(() => window.checkoutStatusHistory);
  assert.deepEqual(errors, [], "no JavaScript errors on the page");
  return { page, intentId, history };
}

test("a paid checkout shows succeeded only once the webhook confirmed it", async () => {
  const { page, intentId, history } = await checkout("Pay", { delayFirstWebhook: true });
  assert.equal(await page.locator("#status").getAttribute("data-status"), "succeeded");
  assert.match(await page.locator("#status").textContent(), /confirmed by Fintoc's webhook/);
  // onSuccess came first, but the page waited: the first delivery was refused (503)
  // and the status appeared only after Fintoc's retry had been applied.
  assert.deepEqual(history, ["creating", "widget_open", "awaiting_webhook", "succeeded"]);
  const { status, body } = await api(`/payment-intents/${intentId}`);
  assert.equal(status, 200);
  assert.equal(body.status, "succeeded");
  // The amount the merchant's server priced the order at; the page never sent one.
  assert.equal(body.amount, Number(await page.locator("#total").getAttribute("data-amount")));
  assert.match(body.order_id, /^web-/);
  const deliveries = await (await fetch(`${env.FINTOC_SIM_URL}/_sim/deliveries`)).json();
  assert.ok(deliveries.some((d) => d.attempts >= 2 && d.delivered), "a delivery was retried after the 503");
  await page.close();
});

test("a rejected checkout shows rejected", async () => {
  const { page, intentId, history } = await checkout("Reject");
  assert.equal(await page.locator("#status").getAttribute("data-status"), "rejected");
  assert.deepEqual(history, ["creating", "widget_open", "awaiting_webhook", "rejected"]);
  const { body } = await api(`/payment-intents/${intentId}`);
  assert.equal(body.status, "rejected");
  await page.close();
});

test("closing the widget without paying never shows a payment", async () => {
  const page = await browser.newPage();
  await page.goto(env.CHECKOUT_URL);
  await page.locator("#total[data-amount]:not([data-amount=''])").waitFor();
  await page.click("#pay");
  const widget = page.locator("#fintoc-sim-widget");
  await widget.waitFor({ state: "visible", timeout: 30_000 });
  const intentId = await page.locator("#intent").getAttribute("data-intent-id");
  await widget.getByRole("button", { name: "Close", exact: true }).click();
  await page.locator('#status[data-status="awaiting_webhook"]').waitFor();
  // The page keeps asking the backend, which still says created: nothing to show.
  const { body } = await api(`/payment-intents/${intentId}`);
  assert.equal(body.status, "created");
  assert.equal(await page.locator("#fintoc-sim-widget").count(), 0);
  await page.close();
});

test("a second Pay for an order whose payment is still open is refused, not a second intent", async () => {
  const page = await browser.newPage();
  await page.goto(env.CHECKOUT_URL);
  await page.locator("#total[data-amount]:not([data-amount=''])").waitFor();
  await page.click("#pay");
  const widget = page.locator("#fintoc-sim-widget");
  await widget.waitFor({ state: "visible", timeout: 30_000 });
  const intentId = await page.locator("#intent").getAttribute("data-intent-id");
  await widget.getByRole("button", { name: "Close", exact: true }).click();
  await page.locator('#status[data-status="awaiting_webhook"]').waitFor();
  const stats = async () => (await (await fetch(`${env.FINTOC_SIM_URL}/_sim/stats`)).json()).intents_created;
  const before = await stats();
  // The page re-enables Pay when no final status comes (after 120 s); do it now.
  await page.evaluate(() => { document.getElementById("pay").disabled = false; });
  await page.click("#pay");
  await page.locator('#status[data-status="error"]').waitFor({ timeout: 30_000 });
  const message = await page.locator("#status").textContent();
  assert.match(message, /open payment/);
  assert.ok(message.includes(intentId), message);
  assert.equal(await stats(), before, "no second intent at Fintoc");
  await page.close();
});

test("the page has no amount to type: the merchant's server prices the order", async () => {
  const page = await browser.newPage();
  await page.goto(`${env.CHECKOUT_URL}?order=web-fixed-1`);
  await page.locator("#total[data-amount]:not([data-amount=''])").waitFor();
  assert.equal(await page.locator("input").count(), 0, "no input the payer could edit");
  const cart = await (await fetch(`${env.API_URL}/_merchant/orders/web-fixed-1`)).json();
  assert.equal(await page.locator("#total").getAttribute("data-amount"), String(cart.amount));
  await page.close();
});

// ---------------------------------------------------------------- checkout sessions

async function openCheckout(flow) {
  const page = await browser.newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(e.message));
  await page.goto(`${env.CHECKOUT_URL}?flow=${flow}`);
  await page.locator("#total[data-amount]:not([data-amount=''])").waitFor();
  return { page, errors };
}

async function finalStatus(page) {
  await page.waitForFunction((final) => final.includes(document.querySelector("#status").dataset.status),
    [...FINAL, "cancelled"], { timeout: 60_000 });
  return page.locator("#status").getAttribute("data-status");
}

const sessionsCreated = async () => (await (await fetch(`${env.FINTOC_SIM_URL}/_sim/stats`)).json()).sessions_created;

test("session in the widget: rejected, then paid inside the same session", async () => {
  const { page, errors } = await openCheckout("session_widget");
  await page.click("#pay");
  const widget = page.locator("#fintoc-sim-widget");
  await widget.waitFor({ state: "visible", timeout: 30_000 });
  await widget.locator("[data-role=summary]").filter({ hasText: "Pay" }).waitFor({ timeout: 10_000 });
  const sessionId = await page.locator("#intent").getAttribute("data-intent-id");
  assert.match(sessionId, /^cs_/);
  await widget.getByRole("button", { name: "Reject", exact: true }).click();
  assert.equal(await finalStatus(page), "rejected");
  let { body } = await api(`/checkout-sessions/${sessionId}`);
  assert.equal(body.status, "in_progress");
  assert.equal(body.paid, false);
  assert.equal(body.payment_status, "rejected");
  // Pay again: the same session opens again (a new one would be refused).
  const before = await sessionsCreated();
  await page.click("#pay");
  await widget.waitFor({ state: "visible", timeout: 30_000 });
  await widget.getByRole("button", { name: "Pay", exact: true }).click();
  await page.locator('#status[data-status="succeeded"]').waitFor({ timeout: 60_000 });
  assert.equal(await sessionsCreated(), before, "no second session");
  ({ body } = await api(`/checkout-sessions/${sessionId}`));
  assert.deepEqual([body.status, body.paid, body.payment_status], ["finished", true, "succeeded"]);
  assert.equal(body.amount, Number(await page.locator("#total").getAttribute("data-amount")));
  const history = await page.evaluate(() => window.checkoutStatusHistory);
  assert.deepEqual(history, ["creating", "widget_open", "awaiting_webhook", "rejected",
    "creating", "widget_open", "awaiting_webhook", "succeeded"]);
  assert.deepEqual(errors, []);
  await page.close();
});

test("session in the widget, closed without paying: never shown as paid", async () => {
  const { page } = await openCheckout("session_widget");
  await page.click("#pay");
  const widget = page.locator("#fintoc-sim-widget");
  await widget.waitFor({ state: "visible", timeout: 30_000 });
  const sessionId = await page.locator("#intent").getAttribute("data-intent-id");
  await widget.getByRole("button", { name: "Close", exact: true }).click();
  await page.locator('#status[data-status="awaiting_webhook"]').waitFor();
  const { body } = await api(`/checkout-sessions/${sessionId}`);
  assert.deepEqual([body.status, body.paid], ["created", false]);
  await page.close();
});

test("session on Fintoc's hosted page: paid, back to the success URL, shown once confirmed", async () => {
  const { page, errors } = await openCheckout("session_redirect");
  await page.click("#pay");
  await page.waitForURL(/\/checkout\/cs_/, { timeout: 30_000 });
  assert.ok(page.url().startsWith(env.FINTOC_SIM_URL), page.url());
  await page.getByRole("button", { name: "Pay", exact: true }).click();
  await page.waitForURL(/return=success/, { timeout: 30_000 });
  assert.equal(await finalStatus(page), "succeeded");
  const sessionId = await page.locator("#intent").getAttribute("data-intent-id");
  const { body } = await api(`/checkout-sessions/${sessionId}`);
  assert.deepEqual([body.status, body.paid], ["finished", true]);
  const history = await page.evaluate(() => window.checkoutStatusHistory);
  assert.deepEqual(history, ["awaiting_webhook", "succeeded"], "the page after the return");
  assert.deepEqual(errors, []);
  await page.close();
});

test("session on Fintoc's hosted page, cancelled: back to the cancel URL, nothing paid", async () => {
  const { page } = await openCheckout("session_redirect");
  await page.click("#pay");
  await page.waitForURL(/\/checkout\/cs_/, { timeout: 30_000 });
  await page.getByRole("button", { name: "Cancel and go back" }).click();
  await page.waitForURL(/return=cancel/, { timeout: 30_000 });
  assert.equal(await finalStatus(page), "cancelled");
  const sessionId = await page.locator("#intent").getAttribute("data-intent-id");
  const { body } = await api(`/checkout-sessions/${sessionId}`);
  assert.deepEqual([body.status, body.paid], ["created", false]);
  await page.close();
});

test("the merchant's order page lists the paid payment and refunds part, then the rest", async () => {
  const { page: checkoutPage, intentId } = await checkout("Pay");
  const orderId = await checkoutPage.locator("#order").textContent();
  const paid = Number(await checkoutPage.locator("#total").getAttribute("data-amount"));
  await checkoutPage.close();
  const page = await browser.newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(e.message));
  await page.goto(new URL(`orders.html?order=${encodeURIComponent(orderId)}`, env.CHECKOUT_URL).href);
  const card = page.locator(`.payment[data-payment-id="${intentId}"]`);
  await card.waitFor();
  assert.equal(await card.getAttribute("data-status"), "succeeded");
  // The merchant's systems were told once: one signed order.paid (where the stack
  // runs the dispatcher on its table's stream: not under sam local, which has none).
  const dispatcher = env.EVENTS_DISPATCHER === "on";
  if (dispatcher) {
    await page.locator('.event[data-type="order.paid"]').waitFor({ timeout: 30_000 });
    assert.equal(await page.locator('.event[data-type="order.paid"]').count(), 1);
  }
  assert.equal(await card.getAttribute("data-refundable"), String(paid));

  // Part of it: 1000 pesos, shown pending until Fintoc's webhook says more.
  await card.getByRole("spinbutton").fill("1000");
  await card.getByRole("button", { name: "Refund" }).click();
  const first = card.locator('.refund[data-amount="1000"]');
  await first.waitFor({ timeout: 30_000 });
  assert.equal(await first.getAttribute("data-status"), "pending");
  await page.locator(`.payment[data-payment-id="${intentId}"][data-refundable="${paid - 1000}"]`).waitFor();
  const refundId = await first.getAttribute("data-refund-id");
  const stored = await api(`/refunds/${encodeURIComponent(refundId)}`);
  assert.equal(stored.status, 200);
  const settled = await fetch(`${env.FINTOC_SIM_URL}/_sim/refunds/${stored.body.fintoc_refund_id}/settle`, {
    method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ outcome: "succeeded" }),
  });
  assert.ok(settled.ok, `settle: ${settled.status}`);
  // The signed refund.succeeded event reaches the webhook; the page follows it.
  await page.locator(`.refund[data-refund-id="${refundId}"][data-status="succeeded"]`).waitFor({ timeout: 60_000 });
  await page.locator(`.payment[data-payment-id="${intentId}"][data-refunded="1000"]`).waitFor();
  if (dispatcher) await page.locator('.event[data-type="refund.succeeded"]').waitFor({ timeout: 30_000 });

  // The rest: the form offers what is left; then there is nothing left to refund.
  assert.equal(await card.getByRole("spinbutton").inputValue(), String(paid - 1000));
  await card.getByRole("button", { name: "Refund" }).click();
  await page.locator(`.payment[data-payment-id="${intentId}"][data-refundable="0"]`).waitFor({ timeout: 30_000 });
  assert.equal(await card.locator(".refund").count(), 2);
  assert.equal(await card.locator(".refund-form").count(), 0, "nothing left to refund");
  const view = await api(`/payment-intents/${intentId}`);
  assert.equal(view.body.refundable_amount, 0);
  assert.deepEqual(view.body.refunds.map((r) => r.amount).sort((a, b) => a - b), [1000, paid - 1000].sort((a, b) => a - b));
  assert.deepEqual(errors, [], "no JavaScript errors on the page");
  await page.close();
});
