// What the browser tests (e2e.mjs, saved_export_tail.mjs) set up the same way: the
// settings their Rust runner passes in the environment, the headless Chromium, and
// calls to the public API that put and wait for their data.

import { chromium } from 'playwright-core';
import { mkdirSync } from 'node:fs';

// LOGPOOL_URL (a running logpool), LOGPOOL_ADMIN_KEY (its operator key) and
// SCREENSHOT_DIR (created here); throws when one is missing.
export function settingsFromEnv() {
  const base = process.env.LOGPOOL_URL;
  const shots = process.env.SCREENSHOT_DIR;
  const operatorKey = process.env.LOGPOOL_ADMIN_KEY;
  if (!base || !shots || !operatorKey) throw new Error('LOGPOOL_URL, LOGPOOL_ADMIN_KEY and SCREENSHOT_DIR must be set');
  mkdirSync(shots, { recursive: true });
  return { base, shots, operatorKey };
}

// Headless Chromium: LOGPOOL_TEST_CHROMIUM, else Debian's.
export function launchChromium() {
  return chromium.launch({
    executablePath: process.env.LOGPOOL_TEST_CHROMIUM || '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-background-networking'],
  });
}

// One JSON call of the public API with `key`; its parsed answer, or a throw naming
// the request and the status.
export async function apiCall(key, method, path, body) {
  const response = await fetch(path, {
    method,
    headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  if (!response.ok) throw new Error(`${method} ${path}: ${response.status} ${text}`);
  return text ? JSON.parse(text) : null;
}

// Polls `check` every `pollMs` until it returns something truthy (returned), or
// throws once `timeoutMs` have passed.
export async function waitUntil(what, timeoutMs, check, pollMs = 200) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, pollMs));
  }
}
