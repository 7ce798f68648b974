// Browser test of the operations page (checkout/operations.html) against the
// running local stack, under cargo lambda watch (scripts/stack-test.sh): an order
// whose payer transferred 14,000 of 15,000 CLP is held in review; the page lists it,
// shows ours beside Fintoc's now with the one discrepancy, offers only the actions
// whose preconditions hold, asks for a reason before resolving, and shows the
// resolution in the audit log under the operator named on the page.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { env, launchBrowser } from "./stack.mjs";

let browser;

before(async () => {
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
});

async function json(url, init = {}) {
  const headers = { "content-type": "application/json", ...(init.headers || {}) };
  if (env.API_TOKEN && url.startsWith(env.API_URL) && !url.includes("/_")) headers.Authorization = `Bearer ${env.API_TOKEN}`;
  const response = await fetch(url, { ...init, headers });
  return { status: response.status, body: await response.json() };
}

// An order of 15,000 CLP its payer paid 14,000 of: held in review. Its id.
async function heldOrder() {
  const order = `ops-page-${randomUUID().slice(0, 8)}`;
  const created = await json(`${env.API_URL}/payment-intents`, {
    method: "POST", headers: { "Idempotency-Key": order },
    body: JSON.stringify({ amount: 15000, currency: "CLP", order_id: order }),
  });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  const finished = await json(`${env.FINTOC_SIM_URL}/_sim/payment_intents/${created.body.id}/finish`, {
    method: "POST", body: JSON.stringify({ outcome: "succeeded", paid_amount: 14000 }),
  });
  assert.equal(finished.status, 202);
  const deadline = Date.now() + 60_000;
  for (;;) {
    const seen = await json(`${env.API_URL}/payment-intents/${created.body.id}`);
    if (seen.body.status === "succeeded") {
      assert.equal(seen.body.paid, false, "a payment of another amount is held");
      return order;
    }
    assert.ok(Date.now() < deadline, `${created.body.id} never recorded`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

test("an operator resolves a held order from the page, with a reason, on the audit log", async () => {
  const order = await heldOrder();
  const page = await browser.newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(e.message));
  await page.goto(new URL("/operations.html", env.CHECKOUT_URL).href);
  await page.fill("#operator", "ana");
  const row = page.locator(`#queue tr[data-id="${order}"]`);
  await row.waitFor({ timeout: 30_000 });
  assert.equal(await row.getAttribute("data-reason"), "review");

  await row.getByRole("button", { name: "Show" }).click();
  await page.locator(`#detail[data-id="${order}"]`).waitFor();
  assert.deepEqual(await page.locator("#discrepancies li").evaluateAll((items) => items.map((li) => li.dataset.field)),
    ["amount"]);
  assert.match(await page.locator("#ours").textContent(), /"amount": 15000/);
  assert.match(await page.locator("#fintoc").textContent(), /"amount": 14000/);
  // Fintoc says it succeeded: paid is offered; closed is not (the payment is held).
  const actions = await page.locator("#actions button").evaluateAll((bs) => bs.map((b) => b.dataset.action));
  assert.ok(actions.includes("Resolve as paid"), actions);
  assert.ok(!actions.includes("Resolve as closed"), actions);

  await page.click('#actions button[data-action="Resolve as paid"]');
  assert.equal(await page.locator("#confirm-action").isDisabled(), true, "no reason, no confirmation");
  await page.fill("#reason", "the payer confirmed 14000 by phone");
  await page.fill("#ticket", "OPS-42");
  assert.equal(await page.locator("#confirm-action").isDisabled(), false);
  await page.click("#confirm-action");

  const entry = page.locator(`#audit tr[data-subject="${order}"]`);
  await entry.waitFor({ timeout: 30_000 });
  const cells = await entry.locator("td").allTextContents();
  assert.deepEqual(cells.slice(1), ["arn:aws:iam::000000000000:user/ana", "resolve_paid", order,
    "the payer confirmed 14000 by phone", "OPS-42"]);
  await page.waitForFunction(() => !document.querySelector("#detail pre#ours").textContent.includes('"state": "review"'));
  assert.match(await page.locator("#ours").textContent(), /"state": "paid"/);
  assert.equal(await page.locator(`#queue tr[data-id="${order}"]`).count(), 0, "the queue forgot it");
  assert.ok(await page.locator('#timeline li[data-what="resolve_paid"]').count() === 1);
  assert.deepEqual(errors, [], "no JavaScript errors on the page");
  await page.close();
});
