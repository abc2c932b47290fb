// The explorer's Patterns tab in headless Chromium, on Loghub OpenSSH lines: the tab
// lists the matching records' patterns with counts and sparklines; "compare with
// previous period" marks the patterns that only occur now as new; a click on a
// template filters the search by that pattern (the records shown all carry it, as
// many as the pattern counted); "Exclude" filters it out. Run by
// tests/console_patterns.rs with LOGPOOL_URL, LOGPOOL_ADMIN_KEY and SCREENSHOT_DIR.
// Prints a JSON report and exits non-zero on any failure or browser console error.

import { readFileSync } from 'node:fs';
import { apiCall, launchChromium, settingsFromEnv, waitUntil } from './browser_setup.mjs';

const { base, shots, operatorKey } = settingsFromEnv();
const run = Date.now() % 100000;
const project = `patterns-${run}`;
const pool = 'ssh';
const poolApi = `${base}/v1/projects/${project}/pools/${pool}`;
const keys = [operatorKey];

// The OpenSSH sample's lines: the first half in the previous hour, the second half
// in this one, so patterns that start in the second half are new.
const lines = readFileSync(new URL('../data/loghub-2k/OpenSSH_2k.log', import.meta.url), 'utf8')
  .split('\n').filter((line) => line.trim());
const messages = lines.map((line) => line.replace(/^\w+ +\d+ [\d:]+ \S+ [^:]+: /, ''));
await apiCall(operatorKey, 'POST', `${base}/v1/projects`, { name: project });
await apiCall(operatorKey, 'POST', `${base}/v1/projects/${project}/pools`, { name: pool, shards: 1 });
const nowS = Math.floor(Date.now() / 1000);
const half = Math.floor(messages.length / 2);
const logs = messages.map((message, n) => ({
  time: n < half ? nowS - 7000 + Math.floor(n / 2) : nowS - 3000 + Math.floor((n - half) / 2),
  message,
  n,
}));
await apiCall(operatorKey, 'POST', `${poolApi}/logs`, { logs });
await waitUntil('every record searchable', 60000, async () =>
  (await apiCall(operatorKey, 'POST', `${poolApi}/search`, { limit: 1, from: '-3h' })).total === logs.length, 300);
const admin = await apiCall(operatorKey, 'POST', `${base}/v1/tenants/default/keys`, { role: 'project_admin', project });
const secret = admin.secret || admin.key;
keys.push(secret);

const steps = [];
const problems = [];
const consoleLines = [];
const urls = [];
let current = 'start';
let shotNumber = 0;
const browser = await launchChromium();
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  page.setDefaultTimeout(20000);
  page.on('console', (message) => {
    consoleLines.push(message.text());
    if (message.type() === 'error') problems.push(`console error during ${current}: ${message.text()}`);
  });
  page.on('pageerror', (error) => problems.push(`page error during ${current}: ${error.message}`));
  page.on('request', (request) => urls.push(request.url()));
  const step = async (name, body) => {
    current = name;
    const started = Date.now();
    await body();
    await page.screenshot({ path: `${shots}/${String(++shotNumber).padStart(2, '0')}-${name}.png`, fullPage: true });
    steps.push({ step: name, ms: Date.now() - started });
  };
  await page.goto(base);
  await page.getByLabel('API key').fill(secret);
  await page.getByRole('button', { name: 'Log in' }).click();
  await page.locator('#identity').filter({ hasText: 'project_admin' }).waitFor();
  const searchUrl = (params) => `${base}/#/search?${new URLSearchParams({ project, pool, ...params })}`;
  const rows = page.locator('table.patterns tr.pattern');

  let top = null;
  await step('patterns-tab', async () => {
    await page.goto(searchUrl({ q: '', from: '-1h', to: 'now' }));
    await page.locator('tr.hit').first().waitFor();
    await page.getByRole('tab', { name: 'Patterns' }).click();
    await rows.first().waitFor();
    const count = await rows.count();
    if (count < 5) throw new Error(`only ${count} patterns listed`);
    if (!(await page.locator('table.patterns svg.sparkline').count())) throw new Error('no sparkline');
    top = {
      id: await rows.first().getAttribute('data-pattern'),
      count: Number((await rows.first().locator('td.number').first().innerText()).replace(/\D/g, '')),
    };
    const answer = await apiCall(secret, 'POST', `${poolApi}/patterns`, { from: '-1h', to: 'now', limit: 1 });
    if (answer.patterns[0].id !== top.id || answer.patterns[0].count !== top.count) throw new Error(`the tab shows ${JSON.stringify(top)}, the API ${JSON.stringify(answer.patterns[0])}`);
  });

  await step('patterns-compare-new', async () => {
    await page.getByLabel('compare with previous period').check();
    await page.locator('table.patterns .badge.new').first().waitFor();
    const answer = await apiCall(secret, 'POST', `${poolApi}/patterns`, {
      from: '-1h', to: 'now', compare_from: '-2h', compare_to: '-1h', limit: 100 });
    const fresh = answer.patterns.filter((p) => p.change === 'new').length;
    const badges = await page.locator('table.patterns .badge.new').count();
    if (!fresh || badges !== fresh) throw new Error(`${badges} new badges, the API says ${fresh} new patterns`);
  });

  await step('patterns-click-filters', async () => {
    await rows.first().locator('td.template button').click();
    await page.waitForURL((url) => decodeURIComponent(url.hash).includes(`_pattern:${top.id}`));
    await page.locator('[role=status]').filter({ hasText: `${top.count} records match` }).waitFor();
    await page.locator('tr.hit').first().waitFor();
    const shown = await page.locator('tr.hit').count();
    if (shown !== Math.min(50, top.count)) throw new Error(`${shown} records shown for a pattern of ${top.count}`);
  });

  await step('patterns-exclude', async () => {
    await page.goto(searchUrl({ q: '', from: '-1h', to: 'now' }));
    await page.getByRole('tab', { name: 'Patterns' }).click();
    await rows.first().waitFor();
    await rows.first().getByRole('button', { name: 'Exclude' }).click();
    await page.waitForURL((url) => decodeURIComponent(url.hash.replace(/\+/g, " ")).includes(`NOT _pattern:${top.id}`));
    await page.getByRole('tab', { name: 'Patterns', selected: true }).waitFor();
    await rows.first().waitFor();
    if (await page.locator(`table.patterns tr.pattern[data-pattern="${top.id}"]`).count()) throw new Error('the excluded pattern is still listed');
  });
} catch (error) {
  problems.push(`step ${current} failed: ${error.message}`);
} finally {
  await browser.close();
}
for (const key of keys) {
  if (consoleLines.some((line) => line.includes(key))) problems.push('a key appeared in the browser console');
  if (urls.some((url) => url.includes(key))) problems.push('a key appeared in a URL');
}
console.log(JSON.stringify({ steps, problems }, null, 1));
process.exit(problems.length ? 1 : 0);
