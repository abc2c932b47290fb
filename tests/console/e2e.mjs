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
// the login page once its key is disabled; finally the pool is deleted.
// Run by tests/console.rs with LOGPOOL_URL (a running logpool), LOGPOOL_ADMIN_KEY
// (its operator key) and SCREENSHOT_DIR. Exits non-zero with the failing step on any
// failure, unexpected console error, request outside the public API and the
// console's assets, or a key showing up in the page's URL or the browser console.

import { chromium } from 'playwright-core';
import { mkdirSync } from 'node:fs';

const base = process.env.LOGPOOL_URL;
const shots = process.env.SCREENSHOT_DIR;
const operatorKey = process.env.LOGPOOL_ADMIN_KEY;
const executablePath = process.env.LOGPOOL_TEST_CHROMIUM || '/usr/bin/chromium';
if (!base || !shots || !operatorKey) throw new Error('LOGPOOL_URL, LOGPOOL_ADMIN_KEY and SCREENSHOT_DIR must be set');
mkdirSync(shots, { recursive: true });

const run = Date.now() % 100000;
const tenantName = `console-t-${run}`;
const project = `console-${run}`;
const pool = 'web';
const poolApi = `${base}/v1/projects/${project}/pools/${pool}`;
// Every key the walkthrough handles; none may appear in a URL or a console message.
const keys = [operatorKey];

async function apiCall(key, method, path, body) {
  const response = await fetch(path, {
    method,
    headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
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
const consoleLines = [];
const requestUrls = [];
const socketUrls = [];
// Browser console errors a step provokes on purpose: Chromium logs every HTTP error
// answer ("Failed to load resource: … status of 401"), e.g. for a refused key.
let expectedErrors = [];

const browser = await chromium.launch({
  executablePath,
  args: ['--headless', '--no-sandbox', '--disable-background-networking'],
});
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
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
