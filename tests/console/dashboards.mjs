// Dashboards in headless Chromium: a project admin creates a dashboard, adds three
// panels with the panel dialog (histogram, count with thresholds, records table) and
// a fourth, a pipe-SQL chart, with "Add to dashboard" on the analysis page; every
// panel loads; one panel is dragged to another place and one resized; after a reload
// the layout is the same, cell for cell and pixel for pixel. A click on a histogram
// bar opens the explorer at that bucket. The export downloads JSON that the import
// dialog turns into a second dashboard with the same panels. A panel whose pool is
// gone shows its own error while the others load.
// Run by tests/console_dashboards.rs with LOGPOOL_URL, LOGPOOL_ADMIN_KEY and
// SCREENSHOT_DIR. Prints a JSON report and exits non-zero on any failure or
// unexpected browser console error.

import { readFileSync } from 'node:fs';
import { apiCall, launchChromium, settingsFromEnv, waitUntil } from './browser_setup.mjs';

const { base, shots, operatorKey } = settingsFromEnv();
const records = 3000;

const run = Date.now() % 100000;
const project = `dash-${run}`;
const pool = 'web';
const projectApi = `${base}/v1/projects/${project}`;
const poolApi = `${projectApi}/pools/${pool}`;
const keys = [operatorKey];

// --------------------------------------------------------------- the data
await apiCall(operatorKey, 'POST', `${base}/v1/projects`, { name: project });
for (const name of [pool, 'gone']) await apiCall(operatorKey, 'POST', `${projectApi}/pools`, { name, shards: 1 });
const nowS = Math.floor(Date.now() / 1000);
const logs = [];
for (let n = 0; n < records; n += 1) {
  const level = n % 10 === 0 ? 'ERROR' : n % 4 === 0 ? 'WARN' : 'INFO';
  logs.push({ time: nowS - 7200 + Math.floor((n * 7200) / records), message: `request ${n} ${level}`, level, status: n % 10 === 0 ? 500 : 200, path: `/p/${n % 7}` });
}
await apiCall(operatorKey, 'POST', `${poolApi}/logs`, { logs });
await waitUntil('every record searchable', 30000, async () =>
  (await apiCall(operatorKey, 'POST', `${poolApi}/search`, { limit: 1, from: '-3h' })).total === records, 300);
const admin = await apiCall(operatorKey, 'POST', `${base}/v1/tenants/default/keys`, { role: 'project_admin', project });
const adminKey = admin.secret || admin.key;
keys.push(adminKey);

const steps = [];
const problems = [];
const consoleLines = [];
const urls = [];
let current = 'start';
let shotNumber = 0;
// Browser console errors a step provokes on purpose (an HTTP error answer).
let expectedErrors = [];
const browser = await launchChromium();
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 1000 }, acceptDownloads: true });
  page.setDefaultTimeout(15000);
  page.on('console', (message) => {
    consoleLines.push(message.text());
    if (message.type() === 'error' && !expectedErrors.some((p) => p.test(message.text()))) problems.push(`console error during ${current}: ${message.text()}`);
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
  const panels = page.locator('.dash-panel');
  // Waits until every panel of the grid has loaded (or failed) in one round.
  const allSettled = async (count) => {
    await waitUntil(`${count} panels settled`, 15000, async () => {
      const states = await panels.evaluateAll((nodes) => nodes.map((n) => (n.classList.contains('loaded') || n.classList.contains('failed')) && !n.classList.contains('loading')));
      return states.length === count && states.every(Boolean);
    });
  };
  // Every panel's grid place (as the page sets it) and box on screen.
  const layout = () => panels.evaluateAll((nodes) => nodes.map((n) => {
    const box = n.getBoundingClientRect();
    return { id: n.dataset.panel, column: n.style.gridColumn, row: n.style.gridRow,
      box: [Math.round(box.left), Math.round(box.top), Math.round(box.width), Math.round(box.height)] };
  }).sort((a, b) => a.id.localeCompare(b.id)));
  const savedLayout = () => page.waitForResponse((r) => r.request().method() === 'PUT' && r.url().includes('/dashboards/') && r.ok());
  const addPanel = async (fill) => {
    await page.getByRole('button', { name: 'Add panel' }).click();
    const dialog = page.locator('dialog');
    await dialog.getByLabel('Pool').selectOption(pool);
    await fill(dialog);
    await Promise.all([savedLayout(), dialog.getByRole('button', { name: 'Add panel' }).click()]);
    await dialog.waitFor({ state: 'detached' });
  };

  await step('dashboard-created', async () => {
    await page.goto(base);
    await page.getByLabel('API key').fill(adminKey);
    // Kept for the tab, so the reload below stays logged in.
    await page.getByLabel(/Stay logged in in this tab/).check();
    await page.getByRole('button', { name: 'Log in' }).click();
    await page.locator('#identity').filter({ hasText: 'project_admin' }).waitFor();
    await page.getByRole('link', { name: 'Dashboards' }).click();
    await page.getByRole('button', { name: 'New dashboard' }).click();
    await page.locator('dialog').getByLabel('Name').fill('shop overview');
    await page.locator('dialog').getByRole('button', { name: 'Save' }).click();
    await page.getByRole('heading', { name: 'shop overview' }).waitFor();
    await page.getByLabel('From', { exact: true }).fill('now-3h');
    await Promise.all([savedLayout(), page.getByRole('button', { name: 'Apply' }).click()]);
  });

  await step('four-panels', async () => {
    await addPanel(async (d) => {
      await d.getByLabel('Title').fill('Errors over time');
      await d.getByLabel('Query').fill('level:ERROR');
    });
    await addPanel(async (d) => {
      await d.getByLabel('Title').fill('Errors');
      await d.getByLabel('Panel kind').selectOption('count');
      await d.getByLabel('Query').fill('level:ERROR');
      await d.getByLabel('Thresholds').fill('0:green, 100:red');
      await d.getByLabel('Unit').fill('lines');
    });
    await addPanel(async (d) => {
      await d.getByLabel('Title').fill('Latest records');
      await d.getByLabel('Panel kind').selectOption('table');
    });
    // The fourth comes from the analysis page.
    const sql = '* | SELECT level, count(*) AS c GROUP BY level ORDER BY c DESC';
    await page.goto(`${base}/#/analysis?${new URLSearchParams({ project, pool, q: sql, from: '-3h', to: 'now', chart: 'pie' })}`);
    await page.locator('figure.pie').first().waitFor();
    await page.getByRole('button', { name: 'Add to dashboard' }).click();
    const dialog = page.locator('dialog');
    await dialog.getByLabel('Dashboard', { exact: true }).selectOption({ label: 'shop overview' });
    await dialog.getByLabel('Panel title').fill('Records by level');
    await dialog.getByRole('button', { name: 'Add', exact: true }).click();
    await page.getByRole('heading', { name: 'shop overview' }).waitFor();
    await allSettled(4);
    const failed = await page.locator('.dash-panel.failed').count();
    if (failed) throw new Error(`${failed} panels failed: ${await page.locator('.dash-panel.failed').allInnerTexts()}`);
    const count = page.locator('.dash-panel[data-kind=count] .big-number');
    const shown = await count.getAttribute('data-value');
    if (Number(shown) !== records / 10) throw new Error(`the count panel shows ${shown}, not ${records / 10}`);
    const countText = await page.locator('.dash-panel[data-kind=count] .dash-body').innerText();
    if (countText.trim() !== `${(records / 10).toLocaleString('en-US')} lines`) throw new Error(`the count panel reads ${JSON.stringify(countText)}`);
    // 300 reaches the red threshold at 100.
    const colour = await count.evaluate((n) => getComputedStyle(n).color);
    if (!/rgb\(2(00|48), /.test(colour)) throw new Error(`the count is coloured ${colour}, not red`);
    if (await page.locator('.dash-panel[data-kind=histogram] .histogram canvas').count() !== 1) throw new Error('no histogram drawn');
    if (await page.locator('.dash-panel[data-kind=table] tbody tr').count() < 10) throw new Error('the table panel shows too few records');
    if (await page.locator('.dash-panel[data-kind=sql] figure.pie path.slice').count() !== 3) throw new Error('the pie has not 3 slices');
  });

  let before;
  await step('moved-and-resized', async () => {
    // The count panel goes from the second row to the right of the histogram...
    const count = page.locator('.dash-panel[data-kind=count]');
    const histogram = page.locator('.dash-panel[data-kind=histogram]');
    const head = await count.locator('.dash-head').boundingBox();
    const target = await histogram.boundingBox();
    await page.mouse.move(head.x + 40, head.y + 10);
    await page.mouse.down();
    await page.mouse.move(target.x + target.width + 60, target.y + 10, { steps: 8 });
    await Promise.all([savedLayout(), page.mouse.up()]);
    // ... and the histogram grows a row taller and a column narrower.
    const corner = await histogram.locator('.dash-corner').boundingBox();
    await page.mouse.move(corner.x + 6, corner.y + 6);
    await page.mouse.down();
    await page.mouse.move(corner.x - 60, corner.y + 120, { steps: 8 });
    await Promise.all([savedLayout(), page.mouse.up()]);
    await allSettled(4);
    before = await layout();
    const countPlace = await count.evaluate((n) => [n.style.gridColumn, n.style.gridRow]);
    if (countPlace.join(' ') !== '7 / span 6 1 / span 4') throw new Error(`the count panel is at ${countPlace}`);
    const histogramPlace = await histogram.evaluate((n) => [n.style.gridColumn, n.style.gridRow]);
    if (histogramPlace.join(' ') !== '1 / span 5 1 / span 6') throw new Error(`the histogram is at ${histogramPlace}`);
    const stored = await apiCall(adminKey, 'GET', `${projectApi}/dashboards`);
    const grids = stored.dashboards[0].panels.map((p) => p.grid);
    const overlap = grids.some((a, i) => grids.some((b, j) => i < j && a.x < b.x + b.w && b.x < a.x + a.w && a.y < b.y + b.h && b.y < a.y + a.h));
    if (overlap) throw new Error(`stored panels overlap: ${JSON.stringify(grids)}`);
  });

  await step('reloaded-same-layout', async () => {
    await page.reload();
    await page.getByRole('heading', { name: 'shop overview' }).waitFor();
    await allSettled(4);
    const after = await layout();
    if (JSON.stringify(after) !== JSON.stringify(before)) throw new Error(`layout before ${JSON.stringify(before)} after ${JSON.stringify(after)}`);
    if (await page.getByLabel('From', { exact: true }).inputValue() !== 'now-3h') throw new Error('the range was not kept');
  });

  await step('chart-click-opens-explorer', async () => {
    const over = page.locator('.dash-panel[data-kind=histogram] .u-over');
    const box = await over.boundingBox();
    await page.mouse.click(box.x + box.width * 0.9, box.y + box.height / 2);
    await page.waitForURL(/#\/search\?/);
    const params = new URLSearchParams(new URL(page.url()).hash.split('?')[1]);
    const span = Date.parse(params.get('to')) - Date.parse(params.get('from'));
    if (params.get('q') !== 'level:ERROR' || params.get('pool') !== pool || !(span > 0 && span <= 3600000)) {
      throw new Error(`the explorer opened at ${page.url()}`);
    }
    await page.locator('tr.hit').first().waitFor();
  });

  await step('export-import', async () => {
    await page.goBack();
    await page.getByRole('heading', { name: 'shop overview' }).waitFor();
    const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: 'Export JSON' }).click()]);
    const file = await download.path();
    const exported = JSON.parse(readFileSync(file, 'utf8'));
    if (exported.logpool_dashboard !== 1 || exported.dashboard.panels.length !== 4) throw new Error(`export ${JSON.stringify(exported).slice(0, 200)}`);
    await page.getByRole('link', { name: 'All dashboards' }).click();
    await page.getByRole('button', { name: 'Import JSON' }).click();
    const dialog = page.locator('dialog');
    await dialog.getByLabel('Dashboard JSON file').setInputFiles(file);
    await waitUntil('the name from the file', 5000, async () => (await dialog.getByLabel('Name').inputValue()) === 'shop overview');
    await dialog.getByLabel('Name').fill('shop overview copy');
    await dialog.getByRole('button', { name: 'Import' }).click();
    await page.getByRole('heading', { name: 'shop overview copy' }).waitFor();
    await allSettled(4);
    const copied = await layout();
    const places = (list) => list.map((p) => `${p.column} ${p.row}`).sort().join(';');
    if (places(copied) !== places(before)) throw new Error(`the import is laid out ${places(copied)}, not ${places(before)}`);
  });

  await step('one-panel-fails', async () => {
    const list = await apiCall(adminKey, 'GET', `${projectApi}/dashboards`);
    const copy = list.dashboards.find((d) => d.name === 'shop overview copy');
    const panel = { id: 'gone', title: 'Gone pool', kind: 'histogram', pool: 'gone', query: '', chart: { type: 'bar' }, grid: { x: 0, y: 20, w: 12, h: 3 } };
    const { id, created_at, created_by, updated_at, updated_by, ...body } = copy;
    await apiCall(adminKey, 'PUT', `${projectApi}/dashboards/${id}`, { ...body, panels: [...copy.panels, panel] });
    await apiCall(operatorKey, 'DELETE', `${projectApi}/pools/gone`);
    await waitUntil('the pool is gone for searches', 10000, async () => {
      const answer = await fetch(`${projectApi}/pools/gone/histogram`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${adminKey}` }, body: JSON.stringify({ query: '' }) });
      return answer.status === 404;
    });
    expectedErrors = [/status of 404/];
    await page.reload();
    await page.getByRole('heading', { name: 'shop overview copy' }).waitFor();
    await allSettled(5);
    const failed = await page.locator('.dash-panel.failed').evaluateAll((nodes) => nodes.map((n) => n.dataset.panel));
    if (failed.join() !== 'gone') throw new Error(`failed panels: ${failed}`);
    const message = await page.locator('.dash-panel.failed .error').innerText();
    if (!/gone/.test(message)) throw new Error(`the failed panel says ${message}`);
    if (await page.locator('.dash-panel.loaded').count() !== 4) throw new Error('the other panels did not load');
    expectedErrors = [];
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
