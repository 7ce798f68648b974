// What the browser tests share: the running stack's endpoints (STACK_ENV, else
// .local/stack.env) and a headless Debian Chromium with a fresh, empty profile.
import { readFileSync } from "node:fs";
import { chromium } from "playwright-core";

/** The stack's env file, as `KEY=value` pairs. */
export const env = Object.fromEntries(
  readFileSync(process.env.STACK_ENV ?? ".local/stack.env", "utf8")
    .split("\n").filter((l) => l.includes("=")).map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)]),
);

/** Launches Debian's Chromium (playwright-core never downloads one). */
export function launchBrowser() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
}
