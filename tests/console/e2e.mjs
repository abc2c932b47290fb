// The web console end to end in headless Chromium: log in, create a project and a
// pool, put records through the API, see them counted in the pool's stats line, find
// them, zoom the histogram, open a hit's context, chart a group-by, see a new record
// in the live tail, delete the pool.
// Run by tests/console.rs with LOGPOOL_URL (a running logpool) and SCREENSHOT_DIR.
// Exits non-zero with the failing step on any failure, console error, or request the
// console makes outside the public API and its own assets.

import { chromium } from 'playwright-core';
import { mkdirSync } from 'node:fs';

const base = process.env.LOGPOOL_URL;
const shots = process.env.SCREENSHOT_DIR;
const executablePath = process.env.LOGPOOL_TEST_CHROMIUM || '/usr/bin/chromium';
if (!base || !shots) throw new Error('LOGPOOL_URL and SCREENSHOT_DIR must be set');
mkdirSync(shots, { recursive: true });

const project = `console-${Date.now() % 100000}`;
const pool = 'web';
const poolApi = `${base}/v1/projects/${project}/pools/${pool}`;

async function apiCall(method, path, body) {
  const response = await fetch(path, {
    method,
    headers: { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  if (!response.ok) throw new Error(`${method} ${path}: ${response.status} ${text}`);
  return text ? JSON.parse(text) : null;
}

async function waitUntil(what, timeoutMs, check) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

const steps = [];
let shotNumber = 0;
let current = 'start';
const problems = [];

const browser = await chromium.launch({
  executablePath,
  args: ['--headless', '--no-sandbox', '--disable-background-networking'],
});
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  page.setDefaultTimeout(15000);
  page.on('console', (message) => {
    if (message.type() === 'error') problems.push(`console error during ${current}: ${message.text()}`);
  });
  page.on('pageerror', (error) => problems.push(`page error during ${current}: ${error.message}`));
  page.on('request', (request) => {
    const url = new URL(request.url());
    if (url.protocol === 'data:') return;
    const allowed = url.origin === new URL(base).origin
      && (url.pathname === '/' || url.pathname.startsWith('/v1/') || url.pathname.startsWith('/console/'));
    if (!allowed) problems.push(`request outside the public API during ${current}: ${request.url()}`);
  });
  const step = async (name, body) => {
    current = name;
    const started = Date.now();
    await body();
    await page.screenshot({ path: `${shots}/${String(++shotNumber).padStart(2, '0')}-${name}.png`, fullPage: true });
    steps.push({ step: name, ms: Date.now() - started });
  };

  await step('login', async () => {
    await page.goto(base);
    await page.getByLabel('API key').fill('console-test-key');
    await page.getByRole('button', { name: 'Log in' }).click();
    await page.getByRole('heading', { name: 'Projects' }).waitFor();
    if (page.url().includes('console-test-key')) throw new Error('the key leaked into the URL');
  });

  await step('create-project-and-pool', async () => {
    await page.getByLabel('New project name').fill(project);
    await page.getByRole('button', { name: 'Create project' }).click();
    const section = page.locator(`section[data-project="${project}"]`);
    await section.waitFor();
    await section.locator('input[name=pool-name]').fill(pool);
    await section.locator('input[name=hints]').fill('status:long, host:keyword');
    await section.getByRole('button', { name: 'Create pool' }).click();
    await page.locator(`section[data-project="${project}"] tr[data-pool="${pool}"]`).waitFor();
  });

  // 300 records over the last 50 minutes: 3 hosts, 2 levels; "needle" in 3 of them.
  const now = Date.now();
  const records = [];
  for (let i = 0; i < 300; i++) {
    const host = `web-${i % 3}`;
    records.push({
      time: now - 60000 - i * 10000,
      host,
      level: i % 10 === 0 ? 'ERROR' : 'INFO',
      status: i % 10 === 0 ? 500 : 200,
      message: `request ${i} served by ${host}${i % 100 === 7 ? ' needle' : ''}`,
    });
  }
  await step('put-and-search', async () => {
    await apiCall('POST', `${poolApi}/logs`, { source: 'console-e2e', logs: records });
    await waitUntil('all records searchable', 30000, async () => {
      const page = await apiCall('GET', `${poolApi}/search?from=-2h&limit=1`);
      return page.total === records.length;
    });
    await page.goto(`${base}/#/search?project=${project}&pool=${pool}&q=needle&from=-2h&to=now`);
    await page.locator('tr.hit').first().waitFor();
    const hits = await page.locator('tr.hit').count();
    if (hits !== 3) throw new Error(`expected the 3 needle records, saw ${hits}`);
    const text = await page.locator('tr.hit').first().innerText();
    if (!text.includes('needle')) throw new Error(`hit does not show the match: ${text}`);
    const marked = await page.locator('tr.hit mark').first().innerText();
    if (marked.toLowerCase() !== 'needle') throw new Error(`the match is not highlighted: ${marked}`);
    // The field list shows the hosts of the three hits, from the server's summary.
    await page.locator('aside.fields').getByText('web-1').waitFor();
  });

  await step('pool-stats', async () => {
    await page.goto(`${base}/#/projects`);
    const line = page.locator(`section[data-project="${project}"] tr[data-pool="${pool}"] .pool-stats`);
    await line.filter({ hasText: `${records.length} records` }).waitFor();
    const text = await line.innerText();
    if (!/backlog \d/.test(text)) throw new Error(`the stats line shows no backlog: ${text}`);
  });

  await step('histogram-zoom', async () => {
    await page.goto(`${base}/#/search?project=${project}&pool=${pool}&from=-2h&to=now`);
    await page.locator('svg.histogram rect.bar:not([data-count="0"])').first().waitFor();
    await page.getByText(`${records.length} records match`).waitFor();
    const before = await page.locator('svg.histogram rect.bar:not([data-count="0"])').count();
    const box = await page.locator('svg.histogram').boundingBox();
    // Drag over the middle fifth of the chart.
    await page.mouse.move(box.x + box.width * 0.55, box.y + box.height / 2);
    await page.mouse.down();
    await page.mouse.move(box.x + box.width * 0.65, box.y + box.height / 2, { steps: 5 });
    await page.mouse.up();
    await waitUntil('the zoomed URL', 5000, async () => /from=\d{4}-/.test(page.url()));
    const status = page.locator('[role=status]').filter({ hasText: 'records match' });
    await waitUntil('a smaller match count', 10000, async () => {
      const text = await status.innerText().catch(() => '');
      const count = Number((text.match(/^(\d+) records match/) || [])[1]);
      return Number.isFinite(count) && count > 0 && count < records.length;
    });
    const after = await page.locator('svg.histogram rect.bar:not([data-count="0"])').count();
    if (after === 0) throw new Error('no bars after the zoom');
    steps.push({ step: 'histogram-bars', before, after });
  });

  await step('context', async () => {
    await page.goto(`${base}/#/search?project=${project}&pool=${pool}&q=needle&from=-2h&to=now`);
    await page.locator('tr.hit').first().click();
    await page.getByRole('button', { name: 'View context' }).click();
    await page.locator('table.context tr').nth(2).waitFor();
    const rows = await page.locator('table.context tr').count();
    if (rows < 3) throw new Error(`context shows ${rows} records`);
    const anchor = await page.locator('table.context tr.current').innerText();
    if (!anchor.includes('needle')) throw new Error(`the hit is not marked in its context: ${anchor}`);
  });

  await step('group-by-bar-chart', async () => {
    const sql = encodeURIComponent('* | SELECT host, count(*) AS c GROUP BY host ORDER BY c DESC');
    await page.goto(`${base}/#/analysis?project=${project}&pool=${pool}&q=${sql}&from=-2h&to=now&chart=bar`);
    await page.locator('svg.chart.bar rect.bar').nth(2).waitFor();
    const bars = await page.locator('svg.chart.bar rect.bar').count();
    if (bars !== 3) throw new Error(`expected 3 bars (one per host), saw ${bars}`);
  });

  await step('live-tail', async () => {
    await page.goto(`${base}/#/tail?project=${project}&pool=${pool}`);
    await page.getByRole('status').filter({ hasText: 'live' }).waitFor();
    const marker = `tail-marker-${Date.now()}`;
    const put = Date.now();
    await apiCall('POST', `${poolApi}/logs`, { logs: [{ message: marker, host: 'web-9' }] });
    await page.locator('.tail .line', { hasText: marker }).waitFor({ timeout: 2000 });
    steps.push({ step: 'tail-latency', ms: Date.now() - put });
  });

  await step('delete-pool', async () => {
    await page.goto(`${base}/#/projects`);
    const row = page.locator(`section[data-project="${project}"] tr[data-pool="${pool}"]`);
    await row.getByRole('button', { name: 'Delete' }).click();
    await page.getByLabel('Type the name to confirm').fill(pool);
    await page.getByRole('button', { name: 'Delete for good' }).click();
    await row.waitFor({ state: 'detached' });
  });
} catch (error) {
  problems.push(`step ${current} failed: ${error.message}`);
} finally {
  await browser.close();
}

console.log(JSON.stringify({ steps, problems }, null, 1));
process.exit(problems.length ? 1 : 0);
