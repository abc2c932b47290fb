// The web console end to end in headless Chromium, with real API keys:
// a wrong key is refused at the login field; the operator creates a tenant and its
// tenant_admin key (secret shown once) and sets the tenant's quotas, logs out and
// logs in with that key, which creates a project and a pool; records put through
// the API are counted in the pool's stats line with a measured ingest rate, found,
// zoomed in the histogram, shown in context and charted by a group-by; the keys
// page creates a reader key,
// the quotas page sets a project quota (a bad value is refused at its field), the
// usage page shows the project's storage; a new record appears in the live tail;
// the reader sees no create or delete buttons but can search, and is sent back to
// the login page once its key is disabled; finally the pool is deleted. On the way the
// explorer is checked: log lines with marked matches, chosen columns kept in the URL,
// times in the browser's zone (New York here) and UTC, multi-series charts with
// legends, the SQL error caret, keyboard use and query suggestions, the tab session,
// an invisible project's URL, and axe-core on four pages in light and dark.
// Run by tests/console.rs with LOGPOOL_URL (a running logpool), LOGPOOL_ADMIN_KEY
// (its operator key) and SCREENSHOT_DIR. Exits non-zero with the failing step on any
// failure, unexpected console error, request outside the public API and the
// console's assets, or a key showing up in the page's URL or the browser console.

import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { apiCall, launchChromium, settingsFromEnv, waitUntil } from './browser_setup.mjs';

// axe-core's rules, run inside the page (page.evaluate is not subject to its CSP).
const axeSource = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');
const browserZone = 'America/New_York';
// `2026-12-07 15:04:05` of an ISO time in `zone`, computed here independently of the console.
const wallClock = (iso, zone) => new Date(iso).toLocaleString('sv-SE', { timeZone: zone, hour12: false });

const { base, shots, operatorKey } = settingsFromEnv();

const run = Date.now() % 100000;
const tenantName = `console-t-${run}`;
const project = `console-${run}`;
const pool = 'web';
const poolApi = `${base}/v1/projects/${project}/pools/${pool}`;
// Every key the walkthrough handles; none may appear in a URL or a console message.
const keys = [operatorKey];

const steps = [];
let shotNumber = 0;
let current = 'start';
const problems = [];
const consoleLines = [];
const requestUrls = [];
const socketUrls = [];
// Browser console errors a step provokes on purpose: Chromium logs every HTTP error
// answer ("Failed to load resource: … status of 401"), e.g. for a refused key.
let expectedErrors = [];

const browser = await launchChromium();
try {
  // The page runs in New York time: the console must show times in the browser's zone.
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 }, timezoneId: browserZone });
  page.setDefaultTimeout(15000);
  page.on('console', (message) => {
    consoleLines.push(message.text());
    if (message.type() !== 'error') return;
    if (expectedErrors.some((pattern) => pattern.test(message.text()))) return;
    problems.push(`console error during ${current}: ${message.text()}`);
  });
  page.on('pageerror', (error) => problems.push(`page error during ${current}: ${error.message}`));
  page.on('request', (request) => {
    requestUrls.push(request.url());
    const url = new URL(request.url());
    if (url.protocol === 'data:') return;
    const allowed = url.origin === new URL(base).origin
      && (url.pathname === '/' || url.pathname.startsWith('/v1/') || url.pathname.startsWith('/console/'));
    if (!allowed) problems.push(`request outside the public API during ${current}: ${request.url()}`);
  });
  page.on('websocket', (socket) => socketUrls.push(socket.url()));
  const step = async (name, body, allowedErrors = []) => {
    current = name;
    expectedErrors = allowedErrors;
    const started = Date.now();
    await body();
    await page.screenshot({ path: `${shots}/${String(++shotNumber).padStart(2, '0')}-${name}.png`, fullPage: true });
    expectedErrors = [];
    steps.push({ step: name, ms: Date.now() - started });
  };
  // An extra screenshot inside a step; `mask` hides secrets shown on purpose.
  const shot = async (name, mask = []) => {
    await page.screenshot({ path: `${shots}/${String(++shotNumber).padStart(2, '0')}-${name}.png`, fullPage: true, mask });
  };
  // The x axis' tick labels as uPlot drew them on its canvas (its computed values).
  const axisLabels = async (selector) => page.locator(selector).evaluate((box) => (box.plot.axes[0]._values || []).join(' | '));
  const status = (code) => new RegExp(`status of ${code}\\b`);
  const keyNotInPage = async (key, where) => {
    const state = await page.evaluate(() => location.href + document.documentElement.outerHTML);
    if (state.includes(key)) throw new Error(`a key is in the page's URL or markup ${where}`);
  };
  const logInAs = async (key, role) => {
    await page.getByLabel('API key').fill(key);
    await page.getByRole('button', { name: 'Log in' }).click();
    await page.locator('#identity').filter({ hasText: role }).waitFor();
    await keyNotInPage(key, 'after logging in');
  };
  const logOut = async () => {
    await page.getByRole('button', { name: 'Log out' }).click();
    await page.getByText('Logged out.').waitFor();
  };
  // Creates a key on the keys page and returns its secret, read from the dialog
  // that shows it once; after the dialog the secret is nowhere in the page.
  const createKey = async (role, projectScope, description) => {
    const form = page.getByRole('form', { name: 'Create key' });
    await form.getByLabel('Role').selectOption(role);
    if (projectScope) await form.getByLabel('Project scope').selectOption(projectScope);
    await form.getByLabel('Key description').fill(description);
    await form.getByRole('button', { name: 'Create key' }).click();
    const secret = (await page.getByLabel('New key secret').innerText()).trim();
    if (!/^lpk_[0-9a-f]+_[0-9a-f]+$/.test(secret)) throw new Error(`the new key looks wrong: ${secret}`);
    keys.push(secret);
    await page.locator('dialog').getByText('only time it is shown').waitFor();
    await page.locator('dialog').getByRole('button', { name: 'Copy' }).click();
    await page.locator('dialog [role=status]').filter({ hasText: /Copied|Selected/ }).waitFor();
    await shot(`${role}-key-shown-once`, [page.getByLabel('New key secret')]);
    await page.locator('dialog').getByRole('button', { name: 'Done' }).click();
    await page.locator('dialog').waitFor({ state: 'detached' });
    const id = secret.split('_')[1];
    await page.locator(`tr[data-key="${id}"]`).filter({ hasText: description }).waitFor();
    await keyNotInPage(secret, 'after its dialog closed');
    return { secret, id };
  };

  await step('login-refused', async () => {
    await page.goto(base);
    const before = page.url();
    await page.getByLabel('API key').fill('not-a-key-of-this-server');
    await page.getByRole('button', { name: 'Log in' }).click();
    await page.locator('#login-error').filter({ hasText: 'refused' }).waitFor();
    await page.getByRole('heading', { name: 'Log in to logpool' }).waitFor();
    if (page.url() !== before) throw new Error(`a refused login navigated to ${page.url()}`);
    if (await page.getByRole('navigation').isVisible()) throw new Error('the navigation shows after a refused key');
  }, [status(401)]);

  await step('login', async () => {
    await logInAs(operatorKey, 'operator');
    await page.getByRole('heading', { name: 'Projects' }).waitFor();
  });

  let adminKey;
  await step('tenant-and-admin-key', async () => {
    await page.getByRole('link', { name: 'Keys' }).click();
    await page.getByLabel('New tenant name').fill(tenantName);
    await page.getByRole('button', { name: 'Create tenant' }).click();
    await page.locator(`tr[data-tenant="${tenantName}"]`).waitFor();
    await page.getByLabel('Act in tenant').locator(`option[value="${tenantName}"]`).waitFor({ state: 'attached' });
    await page.getByLabel('Act in tenant').selectOption(tenantName);
    await page.getByRole('heading', { name: `API keys of tenant ${tenantName}` }).waitFor();
    adminKey = (await createKey('tenant_admin', null, 'console admin')).secret;
  });

  await step('operator-tenant-quotas', async () => {
    await page.getByRole('link', { name: 'Quotas' }).click();
    await page.getByRole('heading', { name: `Quotas of tenant ${tenantName}` }).waitFor();
    const section = page.locator('section[data-quotas="tenant"]');
    await section.locator('input[name=max_query_range_s]').fill(String(30 * 86400));
    await section.locator('input[name=ingest_records_per_s]').fill('100000');
    await section.getByRole('button', { name: 'Save quotas' }).click();
    await section.getByText('Saved.').waitFor();
    const saved = await apiCall(operatorKey, 'GET', `${base}/v1/tenants/${tenantName}/quotas`);
    if (saved.max_query_range_s !== 30 * 86400 || saved.ingest_records_per_s !== 100000) throw new Error(`tenant quotas not saved: ${JSON.stringify(saved)}`);
    // A WebSocket cannot carry the tenant header: the tail says so instead of failing.
    await page.getByRole('link', { name: 'Live tail' }).click();
    await page.getByText('Live tail works in your own tenant only').waitFor();
    await page.getByRole('link', { name: 'Quotas' }).click();
  });

  await step('login-tenant-admin', async () => {
    await logOut();
    await logInAs(adminKey, 'tenant_admin');
    await page.locator('#identity').filter({ hasText: tenantName }).waitFor();
    await page.getByRole('heading', { name: 'Projects' }).waitFor();
    if (await page.getByLabel('Act in tenant').isVisible()) throw new Error('a tenant admin sees the tenant switcher');
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

  // 300 records over the last 50 minutes: 3 hosts, 2 levels, a request id each; "needle" in 3 of them.
  const now = Date.now();
  const records = [];
  for (let i = 0; i < 300; i++) {
    const host = `web-${i % 3}`;
    records.push({
      time: now - 60000 - i * 10000,
      host,
      level: i % 10 === 0 ? 'ERROR' : 'INFO',
      status: i % 10 === 0 ? 500 : 200,
      request_id: `req-${i}`,
      message: `request ${i} served by ${host}${i % 100 === 7 ? ' needle' : ''}`,
    });
  }
  await step('put-and-search', async () => {
    await apiCall(adminKey, 'POST', `${poolApi}/logs`, { source: 'console-e2e', logs: records });
    await waitUntil('all records searchable', 30000, async () => {
      const answer = await apiCall(adminKey, 'GET', `${poolApi}/search?from=-2h&to=now&limit=1`);
      return answer.total === records.length;
    });
    await page.goto(`${base}/#/search?project=${project}&pool=${pool}&q=needle&from=-2h&to=now`);
    await page.locator('tr.hit').first().waitFor();
    const hits = await page.locator('tr.hit').count();
    if (hits !== 3) throw new Error(`expected the 3 needle records, saw ${hits}`);
    const text = await page.locator('tr.hit').first().innerText();
    if (!text.includes('needle')) throw new Error(`hit does not show the match: ${text}`);
    const marked = await page.locator('tr.hit mark').first().innerText();
    if (marked.toLowerCase() !== 'needle') throw new Error(`the match is not highlighted: ${marked}`);
    // The field list shows the hosts of the three hits, from the server's summary,
    // and each field's type as search has it: declared (`host`) or learned (`level`).
    await page.locator('aside.fields').getByText('web-1').waitFor();
    const typeOf = async (name) => page.locator(`aside.fields li[data-field="${name}"] .field-type`).innerText();
    const [hostType, levelType, statusType] = [await typeOf('host'), await typeOf('level'), await typeOf('status')];
    if (hostType !== 'keyword' || levelType !== 'text' || statusType !== 'long') {
      throw new Error(`field types shown: host ${hostType}, level ${levelType}, status ${statusType}`);
    }
  });

  await step('pool-stats', async () => {
    await page.goto(`${base}/#/projects`);
    const row = page.locator(`section[data-project="${project}"] tr[data-pool="${pool}"]`);
    const line = row.locator('.pool-stats');
    await line.filter({ hasText: `${records.length} records` }).waitFor();
    const text = await line.innerText();
    if (!/backlog \d/.test(text)) throw new Error(`the stats line shows no backlog: ${text}`);
    // Keep putting small batches (dated three hours back, outside every later
    // search's range) until the page measures a non-zero ingest rate.
    let putting = true;
    const putter = (async () => {
      for (let batch = 0; putting && batch < 60; batch++) {
        const logs = Array.from({ length: 20 }, (_, i) => ({ time: now - 3 * 3600000 - batch * 1000 - i, host: 'rate', message: `rate ${batch}.${i}` }));
        await apiCall(adminKey, 'POST', `${poolApi}/logs`, { logs });
        await new Promise((r) => setTimeout(r, 250));
      }
    })();
    try {
      const rate = row.locator('.pool-rate');
      const measured = await waitUntil('a measured ingest rate', 25000, async () => {
        const perS = Number(await rate.getAttribute('data-records-per-s').catch(() => null));
        return perS > 0 ? perS : null;
      });
      const label = await rate.innerText();
      if (!/records\/s indexed .*measured over the last \d+(\.\d)? s/.test(label)) throw new Error(`the rate is not labelled with its window: ${label}`);
      steps.push({ step: 'ingest-rate', records_per_s: measured, label });
    } finally {
      putting = false;
      await putter;
    }
  });

  await step('histogram-zoom', async () => {
    await page.goto(`${base}/#/search?project=${project}&pool=${pool}&from=-2h&to=now`);
    await page.locator('.histogram canvas').waitFor();
    await page.getByText(`${records.length} records match`).waitFor();
    // A field with a value per record is flagged, not listed as 300 counts of one.
    await page.locator('aside.fields li[data-field="request_id"] .high-cardinality').filter({ hasText: '300 distinct values' }).waitFor();
    if (await page.locator('aside.fields li[data-field="request_id"] .value').count()) throw new Error('the high-cardinality field lists values');
    const before = Number(await page.locator('.histogram').getAttribute('data-nonzero'));
    if (!(before > 0)) throw new Error(`the histogram has no non-empty bucket: ${before}`);
    // The axis and caption say the date and the bucket interval.
    const caption = await page.locator('.chart-caption').innerText();
    if (!/one bar per \d+ (s|min|h)/.test(caption) || !/\d{4}-\d\d-\d\d/.test(caption)) throw new Error(`the histogram caption lacks the interval or the date: ${caption}`);
    const axisText = await axisLabels('.histogram');
    if (!/\d{4}-\d\d-\d\d/.test(axisText)) throw new Error(`the time axis shows no date: ${axisText}`);
    const box = await page.locator('.histogram .u-over').boundingBox();
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
    await page.locator('.histogram canvas').waitFor();
    const after = Number(await page.locator('.histogram').getAttribute('data-nonzero'));
    if (!(after > 0)) throw new Error('no bars after the zoom');
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

  await step('field-query-line', async () => {
    // A field query shows each record's whole line with the match marked inside it.
    await page.goto(`${base}/#/search?project=${project}&pool=${pool}&q=${encodeURIComponent('host:web-1')}&from=-2h&to=now`);
    await page.locator('tr.hit').first().waitFor();
    const line = await page.locator('tr.hit td.message').first().innerText();
    if (!/^request \d+ served by web-1/.test(line)) throw new Error(`the hit does not show its log line: ${line}`);
    const marked = await page.locator('tr.hit td.message mark').first().innerText();
    if (marked !== 'web-1') throw new Error(`the match is not marked in the line: ${marked}`);
    // A match outside the line (the level field) follows it as a marked chip.
    await page.goto(`${base}/#/search?project=${project}&pool=${pool}&q=${encodeURIComponent('level:ERROR')}&from=-2h&to=now`);
    await page.locator('tr.hit').first().waitFor();
    const errorLine = await page.locator('tr.hit td.message').first().innerText();
    if (!/^request \d+ served by web-\d/.test(errorLine)) throw new Error(`a level:ERROR hit hides its line: ${errorLine}`);
    if ((await page.locator('tr.hit td.message .chip mark').first().innerText()) !== 'ERROR') throw new Error('the matched level is not marked');
    // A multi-line record keeps its lines; one without a message shows as key=value.
    // (Dated four hours back, outside every other step's range.)
    const old = now - 4 * 3600000;
    await apiCall(adminKey, 'POST', `${poolApi}/logs`, { logs: [
      { time: old, host: 'trace-host', message: 'Exception in thread main: boom\n  at shop.Cart.add(Cart.java:42)\n  at shop.Api.post(Api.java:7)' },
      { time: old - 1000, host: 'kv-only', code: 7, note: 'two words' },
    ] });
    await waitUntil('the two old records searchable', 30000, async () =>
      (await apiCall(adminKey, 'GET', `${poolApi}/search?from=-5h&to=-3h&query=${encodeURIComponent('host:trace-host OR host:kv-only')}&limit=1`)).total === 2);
    await page.goto(`${base}/#/search?project=${project}&pool=${pool}&q=${encodeURIComponent('boom OR host:kv-only')}&from=-5h&to=-3h`);
    await page.locator('tr.hit').nth(1).waitFor();
    const lines = await page.locator('tr.hit td.message').allInnerTexts();
    if (!lines.some((l) => l.startsWith('Exception in thread main: boom\n  at shop.Cart.add(Cart.java:42)\n  at shop.Api.post'))) throw new Error(`the multi-line record lost its lines: ${JSON.stringify(lines)}`);
    const keyValue = lines.find((l) => l.includes('host=kv-only')) || '';
    if (!['code=7', 'note="two words"'].every((part) => keyValue.split(/ (?=\w+=)/).includes(part))) throw new Error(`the record without a message is not shown as key=value: ${JSON.stringify(lines)}`);
    await shot('multi-line-and-key-value');
    // Over more matches than the server's sample (the newest 1,000, all bulk-new
    // here), the field list still counts every match: not flagged as sampled, and
    // the older host has its share of the whole range.
    const bulk = Array.from({ length: 1200 }, (_, i) => ({ time: old - 60000 - i * 100, host: i < 1000 ? 'bulk-new' : 'bulk-old', message: `bulk ${i}` }));
    // The oldest has a field no newer record has (the query help knows it from the schema).
    bulk[bulk.length - 1].legacy_code = 7;
    await apiCall(adminKey, 'POST', `${poolApi}/logs`, { logs: bulk });
    await waitUntil('the bulk records searchable', 30000, async () =>
      (await apiCall(adminKey, 'GET', `${poolApi}/search?from=-5h&to=-3h&query=bulk&limit=1`)).total === bulk.length);
    await page.goto(`${base}/#/search?project=${project}&pool=${pool}&q=bulk&from=-5h&to=-3h`);
    const scope = await page.locator('aside.fields .scope .exact').innerText();
    if (!/all 1,200 matches/.test(scope)) throw new Error(`the field list does not count every match: ${scope}`);
    if (await page.locator('aside.fields .sampled').count()) throw new Error('an exact field list is flagged as sampled');
    const hosts = page.locator('aside.fields li[data-field="host"] .value');
    const oldHost = hosts.filter({ hasText: 'bulk-old' }).locator('.percent');
    if ((await oldHost.innerText()) !== '16.7%') throw new Error(`bulk-old (200 of 1,200) shows ${await oldHost.innerText()}`);
    if ((await hosts.filter({ hasText: 'bulk-new' }).locator('.percent').innerText()) !== '83.3%') throw new Error('bulk-new is not 1,000 of 1,200');
    await shot('field-list-whole-range');

    await page.goto(`${base}/#/search?project=${project}&pool=${pool}&q=${encodeURIComponent('level:ERROR')}&from=-2h&to=now`);
    await page.locator('tr.hit').first().waitFor();
    // The field list gives shares from the server's summary of every match.
    const share = await page.locator('aside.fields li[data-field="level"] .percent').first().innerText();
    if (share !== '100%') throw new Error(`level:ERROR shows level ERROR at ${share}`);
    // Time column: narrow, the line gets the room.
    const [timeWidth, lineWidth] = await Promise.all(['td.time', 'td.message'].map((c) => page.locator(`tr.hit ${c}`).first().evaluate((n) => n.getBoundingClientRect().width)));
    if (timeWidth * 3 > lineWidth) throw new Error(`the time column takes ${timeWidth}px next to the line's ${lineWidth}px`);
  });

  await step('columns', async () => {
    await page.locator('aside.fields li[data-field="host"]').getByRole('button', { name: 'Add column host' }).click();
    await page.locator('th[data-column="host"]').waitFor();
    await waitUntil('the column in the URL', 3000, async () => new URL(page.url()).hash.includes('cols=host'));
    // From a record's detail, a second column; then moved before the first.
    await page.locator('tr.hit').first().click();
    await page.locator('tr.detail:not([hidden]) tr[data-field="status"]').getByRole('button', { name: 'Add column' }).click();
    await page.getByRole('button', { name: 'Move column status left' }).click();
    await waitUntil('both columns in the URL in order', 3000, async () => new URL(page.url()).hash.includes('cols=status%2Chost'));
    // The URL keeps them: opened afresh, the table has both, in that order.
    const url = page.url();
    await page.goto(`${base}/#/projects`);
    await page.goto(url);
    await page.locator('tr.hit').first().waitFor();
    const headers = await page.locator('table.hits th.column').evaluateAll((ths) => ths.map((th) => th.dataset.column));
    if (headers.join() !== 'status,host') throw new Error(`columns after reopening the URL: ${headers}`);
    const cell = await page.locator('tr.hit td.column[data-column="status"]').first().innerText();
    if (cell !== '500') throw new Error(`the status column shows ${cell}`);
    await shot('columns-chosen');
    await page.locator('table.hits thead').getByRole('button', { name: 'Remove column status' }).click();
    await waitUntil('the removed column out of the URL', 3000, async () => !new URL(page.url()).hash.includes('status'));
  });

  await step('time-zone', async () => {
    const cell = page.locator('tr.hit td.time').first();
    const iso = await cell.getAttribute('title');
    const shown = await cell.innerText();
    const local = wallClock(iso, browserZone);
    if (!shown.startsWith(local)) throw new Error(`time ${iso} shows as ${shown}, not ${browserZone} ${local}`);
    if (!/\.\d{3}$/.test(shown)) throw new Error(`the time lacks its millisecond precision: ${shown}`);
    if (!(await page.locator('table.hits th.time').innerText()).includes(browserZone)) throw new Error('the time column does not name its zone');
    await page.getByRole('button', { name: 'show UTC' }).click();
    await page.locator('table.hits th.time').filter({ hasText: 'UTC' }).waitFor();
    const utc = await page.locator('tr.hit td.time').first().innerText();
    if (!utc.startsWith(wallClock(iso, 'UTC'))) throw new Error(`UTC shows ${utc} for ${iso}`);
    await page.getByRole('button', { name: 'show local' }).click();
  });

  await step('sort-by-time', async () => {
    await page.goto(`${base}/#/search?project=${project}&pool=${pool}&from=-2h&to=now`);
    await page.locator('tr.hit').first().waitFor();
    const firstTime = async () => Date.parse(await page.locator('tr.hit td.time').first().getAttribute('title'));
    const newest = Math.max(...records.map((r) => r.time));
    const oldest = Math.min(...records.map((r) => r.time));
    if ((await firstTime()) !== newest) throw new Error('newest first is not the default');
    await page.locator('table.hits thead').getByRole('button', { name: 'Sort by time' }).click();
    await waitUntil('the order in the URL', 5000, async () => new URL(page.url()).hash.includes('order=asc'));
    await waitUntil('the oldest record first', 10000, async () => (await firstTime().catch(() => 0)) === oldest);
    const sorted = await page.locator('table.hits th.time').getAttribute('aria-sort');
    if (sorted !== 'ascending') throw new Error(`the Time header says aria-sort=${sorted}`);
    // "Load more" goes on in the same order: the next page starts after the last row.
    const rows = await page.locator('tr.hit').count();
    await page.getByRole('button', { name: 'Load more' }).click();
    await waitUntil('the next page', 10000, async () => (await page.locator('tr.hit').count()) > rows);
    const times = await page.locator('tr.hit td.time').evaluateAll((tds) => tds.map((td) => Date.parse(td.title)));
    if (!times.every((t, i) => i === 0 || times[i - 1] <= t)) throw new Error('the loaded page is not oldest first');
    if (new Set(times).size !== times.length) throw new Error('the loaded page repeats records');
  });

  await step('group-by-bar-chart', async () => {
    const sql = encodeURIComponent('* | SELECT host, count(*) AS c GROUP BY host ORDER BY c DESC');
    await page.goto(`${base}/#/analysis?project=${project}&pool=${pool}&q=${sql}&from=-2h&to=now&chart=bar`);
    await page.locator('.chart.bar canvas').waitFor();
    const points = Number(await page.locator('.chart.bar').getAttribute('data-points'));
    if (points !== 3) throw new Error(`expected 3 bars (one per host), saw ${points}`);
    const axis = await axisLabels('.chart.bar');
    for (const host of ['web-0', 'web-1', 'web-2']) if (!axis.includes(host)) throw new Error(`the category axis lacks ${host}: ${axis}`);
  });

  // Draws `sql` as `kind` and returns the legend's series labels and marker colours.
  const legendOf = async (sql, kind) => {
    await page.goto(`${base}/#/analysis?project=${project}&pool=${pool}&q=${encodeURIComponent(sql)}&from=-2h&to=now&chart=${kind}`);
    await page.locator(`.chart.${kind} canvas`).waitFor();
    const rows = page.locator(`.chart.${kind} .u-legend .u-series`);
    const labels = [];
    const colours = [];
    for (let i = 1; i < await rows.count(); i++) {
      labels.push((await rows.nth(i).locator('.u-label').innerText()).trim());
      colours.push(await rows.nth(i).locator('.u-marker').evaluate((m) => getComputedStyle(m).borderColor + getComputedStyle(m).backgroundColor));
    }
    const text = await page.locator('main').innerText();
    if (/\bnull\b/.test(text)) throw new Error(`the ${kind} chart page shows "null"`);
    return { labels, colours };
  };

  await step('multi-series-chart', async () => {
    // One series per value column...
    const columns = await legendOf('* | SELECT host, min(status) AS lowest, max(status) AS highest GROUP BY host', 'line');
    if (columns.labels.join() !== 'lowest,highest') throw new Error(`expected the series lowest and highest, saw ${columns.labels}`);
    // ... and one per group key, over a time axis.
    const groups = await legendOf("* | SELECT time_bucket('10m', time) AS t, level, count(*) AS c GROUP BY t, level", 'bar');
    if (groups.labels.sort().join() !== 'level=ERROR,level=INFO') throw new Error(`expected one series per level, saw ${groups.labels}`);
    if (new Set(groups.colours).size !== 2) throw new Error(`the legend's colours are not distinct: ${groups.colours}`);
    await shot('multi-series-bar');
    const area = await legendOf("* | SELECT time_bucket('10m', time) AS t, host, count(*) AS c GROUP BY t, host", 'area');
    if (area.labels.length !== 3) throw new Error(`expected one area per host, saw ${area.labels}`);
    // A pie per value column, with coloured swatches.
    await page.goto(`${base}/#/analysis?project=${project}&pool=${pool}&q=${encodeURIComponent('* | SELECT level, count(*) AS c GROUP BY level')}&from=-2h&to=now&chart=pie`);
    await page.locator('.chart.pie figure').waitFor();
    const swatches = await page.locator('.chart.pie .swatch').evaluateAll((nodes) => nodes.map((n) => getComputedStyle(n).backgroundColor));
    if (swatches.length !== 2 || new Set(swatches).size !== 2) throw new Error(`the pie legend's swatches: ${swatches}`);
    await shot('pie-chart');
  });

  await step('sql-error-caret', async () => {
    const sql = '* | SELECT host, no_such_function(host) AS h, count(*) AS c GROUP BY host';
    await page.goto(`${base}/#/analysis?project=${project}&pool=${pool}&q=${encodeURIComponent(sql)}&from=-2h&to=now&chart=table`);
    const pre = page.locator('.query-error pre');
    await pre.waitFor();
    const position = Number(await pre.getAttribute('data-position'));
    const caretColumn = (await pre.locator('.caret').innerText()).indexOf('^');
    if (caretColumn !== position) throw new Error(`the caret sits at ${caretColumn}, the error at ${position}`);
    if (!(position > sql.indexOf('|'))) throw new Error(`the SQL error points before the SQL: ${position}`);
  }, [status(400)]);

  // Each page in light and dark, checked by axe-core for serious or critical problems.
  const accessible = async (name) => {
    for (const scheme of ['light', 'dark']) {
      await page.emulateMedia({ colorScheme: scheme });
      await page.waitForTimeout(100);
      await shot(`${name}-${scheme}`);
      await page.evaluate(axeSource);
      const violations = await page.evaluate(async () => (await window.axe.run(document, { resultTypes: ['violations'] })).violations
        .filter((v) => v.impact === 'serious' || v.impact === 'critical')
        .map((v) => `${v.id} (${v.impact}): ${v.nodes.slice(0, 3).map((n) => n.target.join(' ')).join(', ')}`));
      if (violations.length) throw new Error(`axe-core on the ${name} page (${scheme}): ${violations.join('; ')}`);
    }
    await page.emulateMedia({ colorScheme: 'light' });
  };

  await step('accessibility-and-themes', async () => {
    await page.goto(`${base}/#/search?project=${project}&pool=${pool}&q=needle&from=-2h&to=now`);
    await page.locator('tr.hit').first().waitFor();
    await page.locator('.histogram canvas').waitFor();
    await accessible('search');
    const sql = encodeURIComponent("* | SELECT time_bucket('10m', time) AS t, level, count(*) AS c GROUP BY t, level");
    await page.goto(`${base}/#/analysis?project=${project}&pool=${pool}&q=${sql}&from=-2h&to=now&chart=line`);
    await page.locator('.chart.line canvas').waitFor();
    await accessible('analysis');
    await page.goto(`${base}/#/tail?project=${project}&pool=${pool}`);
    await page.getByRole('status').filter({ hasText: 'live' }).waitFor();
    await accessible('tail');
    await page.goto(`${base}/#/projects`);
    await page.locator(`section[data-project="${project}"]`).waitFor();
    await accessible('projects');
  });

  await step('keyboard', async () => {
    await page.goto(`${base}/#/search?project=${project}&pool=${pool}&q=needle&from=-2h&to=now`);
    await page.locator('tr.hit').nth(1).waitFor();
    await page.locator('aside.fields li[data-field="host"]').waitFor();
    await page.locator('tr.hit').first().focus();
    await page.keyboard.press('j');
    if ((await page.evaluate(() => document.activeElement.dataset.id)) !== await page.locator('tr.hit').nth(1).getAttribute('data-id')) throw new Error('j does not move to the next record');
    await page.keyboard.press('Enter');
    await page.locator('tr.detail:not([hidden])').waitFor();
    await page.keyboard.press('/');
    if ((await page.evaluate(() => document.activeElement.name)) !== 'query') throw new Error('/ does not focus the query');
    // Suggestions: field names, then the values of the chosen field.
    await page.keyboard.press('Control+A');
    await page.keyboard.type('ho');
    await page.getByRole('option', { name: 'host:' }).waitFor();
    await page.keyboard.press('Tab');
    await page.getByRole('option', { name: /^host:web-\d$/ }).first().waitFor();
    // Viewport only: a full-page capture resizes the page, which blurs the query box.
    await page.screenshot({ path: `${shots}/${String(++shotNumber).padStart(2, '0')}-query-suggestions.png`, caret: 'initial' });
    await page.keyboard.press('Escape');
    // The syntax help opens from its button and closes with Escape.
    await page.getByRole('button', { name: 'Query syntax help' }).click();
    await page.getByRole('dialog', { name: 'Query syntax' }).getByText('_exists_:user').waitFor();
    await page.keyboard.press('Escape');
    await page.getByRole('dialog', { name: 'Query syntax' }).waitFor({ state: 'hidden' });
    await page.keyboard.press('/');
    // A field the pool never had is flagged.
    await page.keyboard.press('Control+A');
    await page.keyboard.type('hots:web-1 ');
    await page.locator('.query-warning').filter({ hasText: 'hots' }).waitFor();
    // A field only the oldest records have is known from the pool's schema, not
    // from the newest records.
    await page.keyboard.press('Control+A');
    await page.keyboard.type('legacy_code:7 ');
    if (await page.locator('.query-warning').isVisible()) throw new Error(`a field of the schema is flagged: ${await page.locator('.query-warning').innerText()}`);
  });

  await step('tab-session', async () => {
    // Kept for the tab on request: a reload stays logged in; logging out forgets it.
    await logOut();
    await page.getByLabel(/Stay logged in in this tab/).check();
    await logInAs(adminKey, 'tenant_admin');
    await page.reload();
    await page.locator('#identity').filter({ hasText: 'tenant_admin' }).waitFor();
    await logOut();
    await page.reload();
    await page.getByRole('heading', { name: 'Log in to logpool' }).waitFor();
    // Not asked: a reload logs out.
    await logInAs(adminKey, 'tenant_admin');
    await page.reload();
    await page.getByRole('heading', { name: 'Log in to logpool' }).waitFor();
    await logInAs(adminKey, 'tenant_admin');
  });

  let reader;
  await step('keys-page', async () => {
    await page.getByRole('link', { name: 'Keys' }).click();
    await page.getByRole('heading', { name: `API keys of tenant ${tenantName}` }).waitFor();
    reader = await createKey('reader', project, 'console reader');
    const row = page.locator(`tr[data-key="${reader.id}"]`);
    if (!(await row.innerText()).includes(project)) throw new Error('the reader key is not shown limited to its project');
  });

  await step('quotas', async () => {
    await page.getByRole('link', { name: 'Quotas' }).click();
    const tenantForm = page.locator('section[data-quotas="tenant"]');
    if (!(await tenantForm.locator('input[name=storage_bytes]').isDisabled())) throw new Error('a tenant admin may edit the tenant quotas');
    const section = page.locator(`section[data-quotas="${project}"]`);
    const storage = section.locator('input[name=storage_bytes]');
    await storage.fill('0');
    await section.getByRole('button', { name: 'Save quotas' }).click();
    const fieldError = section.locator('.field-error').filter({ hasText: 'storage_bytes' });
    await fieldError.waitFor();
    if ((await storage.getAttribute('aria-invalid')) !== 'true') throw new Error('the refused field is not marked invalid');
    await shot('quota-refused-at-its-field');
    await storage.fill('abc');
    await section.getByRole('button', { name: 'Save quotas' }).click();
    await section.locator('.field-error').filter({ hasText: 'whole number' }).waitFor();
    await storage.fill('50000000');
    await section.locator('input[name=concurrent_tails]').fill('5');
    await section.getByRole('button', { name: 'Save quotas' }).click();
    await section.getByText('Saved.').waitFor();
    const saved = await apiCall(adminKey, 'GET', `${base}/v1/projects/${project}/quotas`);
    if (saved.storage_bytes !== 50000000 || saved.concurrent_tails !== 5) throw new Error(`quotas not saved: ${JSON.stringify(saved)}`);
  }, [status(400)]);

  await step('usage', async () => {
    await page.getByRole('link', { name: 'Usage' }).click();
    const row = page.locator(`table.usage tr[data-project="${project}"]`);
    await row.waitFor();
    const storage = await row.locator('td.storage').innerText();
    if (/^0 B$/.test(storage)) throw new Error('the usage page shows no storage for the project');
    if (!(await row.innerText()).includes('50.0 MB')) throw new Error(`the project's storage quota is not shown: ${await row.innerText()}`);
    await row.locator('meter').waitFor();
  });

  await step('live-tail', async () => {
    await page.goto(`${base}/#/tail?project=${project}&pool=${pool}`);
    await page.getByRole('status').filter({ hasText: 'live' }).waitFor();
    const marker = `tail-marker-${Date.now()}`;
    const put = Date.now();
    await apiCall(adminKey, 'POST', `${poolApi}/logs`, { logs: [{ message: marker, host: 'web-9' }] });
    await page.locator('.tail .line', { hasText: marker }).waitFor({ timeout: 2000 });
    steps.push({ step: 'tail-latency', ms: Date.now() - put });
    const socket = socketUrls.at(-1) || '';
    if (!socket || socket.includes('token=')) throw new Error(`the tail socket's URL carries the key: ${socket.length} chars`);
    await keyNotInPage(adminKey, 'while tailing');
  });

  await step('reader-view', async () => {
    await page.goto(`${base}/#/projects`);
    await logOut();
    await logInAs(reader.secret, 'reader');
    await page.locator('#identity').filter({ hasText: `project ${project}` }).waitFor();
    await page.locator(`section[data-project="${project}"] tr[data-pool="${pool}"]`).waitFor();
    for (const name of ['Create project', 'Create pool', 'Delete', 'Delete project', 'Edit']) {
      const count = await page.getByRole('button', { name, exact: true }).count();
      if (count) throw new Error(`a reader sees the ${name} button`);
    }
    for (const name of ['Keys', 'Usage']) {
      if (await page.getByRole('link', { name }).isVisible()) throw new Error(`a reader sees the ${name} link`);
    }
    await page.goto(`${base}/#/keys`);
    await page.getByText('A reader key cannot open this page.').waitFor();
    await page.goto(`${base}/#/search?project=${project}&pool=${pool}&q=needle&from=-2h&to=now`);
    await page.locator('tr.hit').first().waitFor();
    const hits = await page.locator('tr.hit').count();
    if (hits !== 3) throw new Error(`the reader found ${hits} needle records, not 3`);
  });

  let hidden;
  await step('invisible-project', async () => {
    // A project the reader's key cannot see, and one that does not exist: each URL
    // says so, and shows no other project's records under its name.
    hidden = `hidden-${run}`;
    await apiCall(adminKey, 'POST', `${base}/v1/projects`, { name: hidden });
    for (const name of [hidden, `missing-${run}`]) {
      await page.goto(`${base}/#/search?project=${name}&pool=${pool}&q=needle&from=-2h&to=now`);
      await page.locator('.scope-error').filter({ hasText: `Project “${name}” does not exist or this key cannot see it` }).waitFor();
      if (await page.locator('tr.hit').count()) throw new Error(`records shown for the project ${name}`);
    }
    await page.goto(`${base}/#/analysis?project=${project}&pool=nope&q=${encodeURIComponent('* | SELECT count(*) AS c')}&from=-2h&to=now`);
    await page.locator('.scope-error').filter({ hasText: 'Pool “nope” does not exist' }).waitFor();
  });

  await step('key-disabled', async () => {
    await apiCall(adminKey, 'PATCH', `${base}/v1/tenants/${tenantName}/keys/${reader.id}`, { enabled: false });
    await page.getByRole('link', { name: 'Projects' }).click();
    await page.getByText('no longer accepted').waitFor();
    await page.getByRole('heading', { name: 'Log in to logpool' }).waitFor();
  }, [status(401)]);

  await step('delete-pool', async () => {
    await logInAs(adminKey, 'tenant_admin');
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

for (const key of keys) {
  if (consoleLines.some((line) => line.includes(key))) problems.push('a key appeared in the browser console');
  if (requestUrls.some((url) => url.includes(key))) problems.push('a key appeared in a request URL');
}
console.log(JSON.stringify({ steps, problems }, null, 1));
process.exit(problems.length ? 1 : 0);
