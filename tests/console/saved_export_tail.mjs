// Saved searches, export and the live tail's filter errors in headless Chromium:
// a project admin key saves a search from the search page; a reader key of the same
// project finds it on the saved-searches page and opens it with its query, range and
// columns (and finds it first in its query history); the reader exports the 20,000 records of the range as CSV and the
// download holds every record once with the chosen columns; a bad tail filter shows
// the server's message with a caret at its position, and the key is in no URL.
// Run by tests/console_saved_export.rs with LOGPOOL_URL, LOGPOOL_ADMIN_KEY,
// SCREENSHOT_DIR and RECORDS (how many records to put). Prints a JSON report and
// exits non-zero on any failure or unexpected browser console error.

import { readFileSync } from 'node:fs';
import { apiCall, launchChromium, settingsFromEnv, waitUntil } from './browser_setup.mjs';

const { base, shots, operatorKey } = settingsFromEnv();
const records = Number(process.env.RECORDS || '20000');

const run = Date.now() % 100000;
const project = `saved-${run}`;
const pool = 'web';
const poolApi = `${base}/v1/projects/${project}/pools/${pool}`;
const keys = [operatorKey];

// RFC 4180 CSV into rows of cells.
function parseCsv(text) {
  const rows = [];
  let row = [];
  let cell = '';
  let quoted = false;
  for (let i = 0; i < text.length; i += 1) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') { cell += '"'; i += 1; } else if (c === '"') quoted = false; else cell += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') { row.push(cell); cell = ''; } else if (c === '\r') { /* CRLF */ } else if (c === '\n') { row.push(cell); rows.push(row); row = []; cell = ''; } else cell += c;
  }
  return rows;
}

// --------------------------------------------------------------- the data
await apiCall(operatorKey, 'POST', `${base}/v1/projects`, { name: project });
await apiCall(operatorKey, 'POST', `${base}/v1/projects/${project}/pools`, { name: pool, shards: 2 });
const nowS = Math.floor(Date.now() / 1000);
const messageOf = (n) => `request ${n}, said "ok"`;
for (let first = 0; first < records; first += 2000) {
  const logs = [];
  for (let n = first; n < Math.min(records, first + 2000); n += 1) {
    logs.push({ time: nowS - 3600 + Math.floor(n / 10), message: messageOf(n), n, level: n % 3 === 0 ? 'ERROR' : 'INFO' });
  }
  await apiCall(operatorKey, 'POST', `${poolApi}/logs`, { logs });
}
await waitUntil('every record searchable', 60000, async () =>
  (await apiCall(operatorKey, 'POST', `${poolApi}/search`, { limit: 1 })).total === records, 300);
const admin = await apiCall(operatorKey, 'POST', `${base}/v1/tenants/default/keys`, { role: 'project_admin', project });
const reader = await apiCall(operatorKey, 'POST', `${base}/v1/tenants/default/keys`, { role: 'reader', project });
const secretOf = (answer) => answer.secret || answer.key;
keys.push(secretOf(admin), secretOf(reader));

const steps = [];
const problems = [];
const consoleLines = [];
const urls = [];
let current = 'start';
let shotNumber = 0;
const browser = await launchChromium();
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 }, acceptDownloads: true });
  page.setDefaultTimeout(20000);
  page.on('console', (message) => {
    consoleLines.push(message.text());
    if (message.type() === 'error') problems.push(`console error during ${current}: ${message.text()}`);
  });
  page.on('pageerror', (error) => problems.push(`page error during ${current}: ${error.message}`));
  page.on('request', (request) => urls.push(request.url()));
  page.on('websocket', (socket) => urls.push(socket.url()));
  const step = async (name, body) => {
    current = name;
    const started = Date.now();
    await body();
    await page.screenshot({ path: `${shots}/${String(++shotNumber).padStart(2, '0')}-${name}.png`, fullPage: true });
    steps.push({ step: name, ms: Date.now() - started });
  };
  // An extra screenshot inside a step.
  const shot = async (name) => {
    await page.screenshot({ path: `${shots}/${String(++shotNumber).padStart(2, '0')}-${name}.png`, fullPage: true });
  };
  const logInAs = async (key, role) => {
    await page.goto(base);
    await page.getByLabel('API key').fill(key);
    await page.getByRole('button', { name: 'Log in' }).click();
    await page.locator('#identity').filter({ hasText: role }).waitFor();
  };
  const searchUrl = (params) => `${base}/#/search?${new URLSearchParams({ project, pool, ...params })}`;
  const name = `errors by level ${run}`;

  await step('save-search', async () => {
    await logInAs(secretOf(admin), 'project_admin');
    await page.goto(searchUrl({ q: 'n:1', from: '-3h', to: 'now' }));
    await page.locator('tr.hit').first().waitFor();
    await page.goto(searchUrl({ q: 'level:ERROR', from: '-3h', to: 'now', cols: 'n,level' }));
    await page.locator('tr.hit').first().waitFor();
    await page.getByRole('button', { name: 'Save', exact: true }).click();
    await page.getByLabel('Name').fill(name);
    await shot('save-dialog');
    await page.getByRole('button', { name: 'Save as new' }).click();
    await page.getByRole('heading', { name: `Search: ${name}` }).waitFor();
  });

  const row = page.locator('table.saved-searches tbody tr').filter({ hasText: name });
  await step('saved-list-of-reader', async () => {
    await page.getByRole('button', { name: 'Log out' }).click();
    await logInAs(secretOf(reader), 'reader');
    await page.getByRole('link', { name: 'Saved' }).click();
    await row.waitFor();
    if (await row.getByRole('button', { name: 'Delete' }).count()) throw new Error('a reader sees Delete');
    if (!(await row.innerText()).includes(admin.id)) throw new Error('the row does not name the key that saved it');
  });

  await step('saved-opened-by-reader', async () => {
    await row.getByRole('link', { name }).click();
    await page.getByRole('heading', { name: `Search: ${name}` }).waitFor();
    const query = await page.getByLabel('Query', { exact: true }).inputValue();
    const from = await page.getByLabel('From', { exact: true }).inputValue();
    const to = await page.getByLabel('To', { exact: true }).inputValue();
    if (query !== 'level:ERROR' || from !== '-3h' || to !== 'now') throw new Error(`opened as ${query} ${from} ${to}`);
    if (!new URL(page.url()).hash.includes('cols=n%2Clevel')) throw new Error(`the columns are not in ${page.url()}`);
    const headers = await page.locator('table.hits th.column').evaluateAll((cells) => cells.map((c) => c.dataset.column));
    if (headers.join(',') !== 'n,level') throw new Error(`the table shows the columns ${headers}`);
    if (await page.getByRole('button', { name: 'Save', exact: true }).count()) throw new Error('a reader sees Save');
    await page.locator('tr.hit').first().waitFor();
    // The query history is this browser's and this key's: the search just opened
    // is offered, and nothing the admin key ran before.
    // An emptied query box offers the history.
    await page.getByLabel('Query', { exact: true }).fill('');
    await page.locator('ul.suggestions li').first().waitFor();
    const offered = await page.locator('ul.suggestions li').allInnerTexts();
    if (offered.join('|') !== 'level:ERROR') throw new Error(`the query history offers ${offered}`);
  });

  await step('export-csv', async () => {
    await page.goto(searchUrl({ q: '', from: '-3h', to: 'now', cols: 'time,n,message' }));
    await page.locator('tr.hit').first().waitFor();
    await page.getByLabel('Export format').selectOption('csv');
    const started = Date.now();
    const [download] = await Promise.all([
      page.waitForEvent('download', { timeout: 60000 }),
      page.getByRole('button', { name: 'Export' }).click(),
    ]);
    const file = await download.path();
    steps.push({ step: 'export-download', ms: Date.now() - started });
    const rows = parseCsv(readFileSync(file, 'utf8'));
    if (rows[0].join(',') !== 'time,n,message') throw new Error(`CSV header ${rows[0]}`);
    if (rows.length !== records + 1) throw new Error(`CSV has ${rows.length - 1} records, not ${records}`);
    const seen = new Set();
    for (const row of rows.slice(1)) {
      const n = Number(row[1]);
      if (row.length !== 3 || row[2] !== messageOf(n) || seen.has(n)) throw new Error(`bad row ${row}`);
      seen.add(n);
    }
    for (let n = 0; n < records; n += 1) if (!seen.has(n)) throw new Error(`record ${n} is missing`);
    await page.locator('.export-note').filter({ hasText: `Exported ${records.toLocaleString()} records` }).waitFor();
  });

  await step('tail-bad-filter', async () => {
    await page.goto(`${base}/#/tail?${new URLSearchParams({ project, pool, q: 'status:(500 OR' })}`);
    const error = page.locator('.query-error');
    await error.filter({ hasText: 'position 14' }).waitFor();
    const caret = await error.locator('.caret').innerText();
    if (caret !== `${' '.repeat(14)}^`) throw new Error(`the caret is at ${caret.length - 1}`);
    const sockets = urls.filter((url) => url.startsWith('ws'));
    if (!sockets.length) throw new Error('no tail socket was opened');
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
