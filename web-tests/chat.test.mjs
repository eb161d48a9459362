// Drives the web chat page (GET /) of a real codexcontinue server in headless Chromium: the
// offline echo provider answers, so no network or key is needed. Each test opens with a comment
// saying what it proves; they share one server and run in order (later ones use earlier chats).
//
//   CODEXCONTINUE_BIN  the server binary (default target/debug/codexcontinue)
//   CHROMIUM           the browser (default /usr/bin/chromium)
//   WEB_TEST_SCREENSHOTS  a folder: save screenshots of the page there (wide and narrow)
//
// Run from the repository root, after `cargo build -p codexcontinue`, `cargo xtask build-plugins`
// and `npm ci` in web-tests/: node --test web-tests/chat.test.mjs (`cargo xtask test` does all).
// It takes 10-20 s; every wait is bounded and a watchdog ends the run after 110 s.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const BIN = path.resolve(ROOT, process.env.CODEXCONTINUE_BIN || 'target/debug/codexcontinue');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const SHOTS = process.env.WEB_TEST_SCREENSHOTS;
/** A client key for the auth server; the server refuses keys under 16 characters. */
const ALICE_KEY = 'sk-test-alice-0123456789';
/** Bounds: a server start (first compile of every plugin), one UI step, one test. */
const START_MS = 60_000;
const STEP_MS = 15_000;
const TEST_MS = 60_000;

const servers = [];
let browser;

// The whole file stays well under two minutes; if something hangs past that, end everything.
const watchdog = setTimeout(() => {
  console.error('web-tests: still running after 110 s; stopping the servers and the browser');
  for (const s of servers) s.child.kill('SIGKILL');
  browser?.close().catch(() => {});
  process.exit(1);
}, 110_000);
watchdog.unref();
// Whatever happens, no server outlives this process.
process.on('exit', () => {
  for (const s of servers) {
    s.child.kill('SIGKILL');
    rmSync(s.dir, { recursive: true, force: true });
  }
});

/** Starts `codexcontinue serve` on a free port with a fresh data dir and only the given env. */
async function startServer(extraEnv = {}) {
  assert.ok(existsSync(BIN), `${BIN} is missing: cargo build -p codexcontinue (or set CODEXCONTINUE_BIN)`);
  assert.ok(existsSync(path.join(ROOT, 'plugins/echo/echo.wasm')), 'plugins/echo/echo.wasm is missing: cargo xtask build-plugins');
  const dir = await mkdtemp(path.join(os.tmpdir(), 'codexcontinue-web-'));
  // A clean environment, so no provider key (OPENAI_API_KEY…) or CODEXCONTINUE_* setting leaks
  // in and the echo demo answers; the working directory is the temp dir, so no .env or
  // codexcontinue.toml of the developer's is read either.
  // Limits below the defaults, so the tests of refused messages and files stay small.
  const limits = { CODEXCONTINUE_MAX_BODY_BYTES: String(1 << 20), CODEXCONTINUE_MAX_MESSAGE_CHARS: '32768' };
  const env = { PATH: process.env.PATH, HOME: dir, RUST_LOG: 'warn,codexcontinue=info', NO_COLOR: '1', ...limits, ...extraEnv };
  const args = ['serve', '--bind', '127.0.0.1:0', '--data-dir', path.join(dir, 'data'), '--store', 'sled',
    '--plugins-dir', path.join(ROOT, 'plugins'), '--watch', 'false'];
  const child = spawn(BIN, args, { cwd: dir, env, stdio: ['ignore', 'ignore', 'pipe'] });
  const server = { child, dir, log: '' };
  servers.push(server);
  server.url = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no address from the server in ${START_MS} ms:\n${server.log}`)), START_MS);
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (text) => {
      server.log = (server.log + text).slice(-20_000);
      const found = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(server.log);
      if (found) { clearTimeout(timer); resolve(found[1]); }
    });
    child.on('error', (e) => { clearTimeout(timer); reject(e); });
    child.on('exit', (code) => { clearTimeout(timer); reject(new Error(`the server exited (${code}):\n${server.log}`)); });
  });
  const deadline = Date.now() + START_MS;
  for (;;) {
    const ok = await fetch(`${server.url}/healthz`).then((r) => r.ok, () => false);
    if (ok) break;
    assert.ok(Date.now() < deadline, `GET /healthz never answered:\n${server.log}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return server;
}

async function stopServer(server) {
  if (server.child.exitCode == null && server.child.signalCode == null) {
    const exited = new Promise((r) => server.child.once('exit', r));
    server.child.kill('SIGTERM');
    const late = setTimeout(() => server.child.kill('SIGKILL'), 5_000);
    await exited;
    clearTimeout(late);
  }
  await rm(server.dir, { recursive: true, force: true });
}

/** A request to the server from node, with an optional key; answers {status, body}. */
async function call(server, route, { method = 'GET', body, key } = {}) {
  const headers = {};
  if (key) headers.authorization = `Bearer ${key}`;
  if (body) headers['content-type'] = 'application/json';
  const res = await fetch(server.url + route, { method, headers, body: body && JSON.stringify(body) });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : null };
}

/** A fresh browser context (own storage) and page; page errors and CSP violations fail the test. */
async function openPage(server, viewport = { width: 1280, height: 820 }) {
  const context = await browser.newContext({ viewport });
  const page = await context.newPage();
  page.setDefaultTimeout(STEP_MS);
  page.problems = [];
  page.on('pageerror', (e) => page.problems.push(`page error: ${e.message}`));
  page.on('console', (m) => { if (/Content.Security.Policy/i.test(m.text())) page.problems.push(m.text()); });
  await page.goto(`${server.url}/`);
  // The script has run once the status line has left its first text.
  await page.waitForFunction(() => document.getElementById('status').textContent !== 'Connecting…')
    .catch((e) => { throw new Error(`the page's script did not run: ${page.problems.join('; ') || e.message}`); });
  return page;
}

async function closePage(page) {
  const problems = page.problems;
  await page.context().close();
  assert.deepEqual(problems, [], 'the page reported errors');
}

async function screenshot(page, name) {
  if (!SHOTS) return;
  await mkdir(SHOTS, { recursive: true });
  await page.screenshot({ path: path.join(SHOTS, `${name}.png`) });
  await page.emulateMedia({ colorScheme: 'dark' });
  await page.screenshot({ path: path.join(SHOTS, `${name}-dark.png`) });
  await page.emulateMedia({ colorScheme: null });
}

const text = (locator) => locator.textContent().then((t) => t.trim());
const assistant = (page) => page.locator('[data-testid=message][data-role=assistant]').last();
const chatItems = (page) => page.locator('[data-testid=chat-item]');

/** Types a message, sends it with Enter and waits for the reply's footer (after `done`). */
async function sendAndWait(page, message) {
  const before = await page.locator('[data-testid=message][data-role=assistant]').count();
  await page.getByTestId('message-input').fill(message);
  await page.getByTestId('message-input').press('Enter');
  await page.locator('[data-testid=message][data-role=assistant]').nth(before)
    .locator('[data-testid=reply-meta]', { hasText: 'tokens' }).waitFor();
  await page.locator('#send:not([disabled])').waitFor();
}

before(async () => {
  assert.ok(existsSync(CHROMIUM), `${CHROMIUM} is missing: apt-get install chromium (or set CHROMIUM)`);
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    timeout: 30_000,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
});

after(async () => {
  await browser?.close();
  await Promise.all(servers.map(stopServer));
});

describe('the web chat page with the echo demo', () => {
  let server, page, firstId;
  before(async () => { server = await startServer(); });
  after(async () => { if (page && !page.isClosed()) await page.context().close(); });

  // The page loads, says which server it talks to, and offers the server's chat models.
  test('loads with status and models', { timeout: TEST_MS }, async () => {
    page = await openPage(server);
    const status = (await call(server, '/status')).body;
    const statusLine = page.getByTestId('status');
    await statusLine.filter({ hasText: `v${status.version}` }).waitFor();
    assert.match(await text(statusLine), new RegExp(`v${status.version} · default: echo \\(offline demo\\)`));
    await page.locator('#model option[value="echo"]').waitFor({ state: 'attached' });
    const offered = await page.locator('#model option').evaluateAll((os) => os.map((o) => o.value));
    const models = (await call(server, '/v1/models')).body.data;
    const chat = models.filter((m) => !m.supports_embeddings).map((m) => m.id);
    assert.deepEqual(offered, ['', ...chat], 'server default, then every chat model');
    assert.equal(await page.locator('#model').inputValue(), '', 'the server default is picked');
    assert.equal(await chatItems(page).count(), 0);
    await screenshot(page, 'wide-empty');
  });

  // A message streams into the assistant bubble delta by delta, the footer names the demo
  // provider and the usage, the chat joins the sidebar and the turn is stored.
  test('sends a message and streams the reply', { timeout: TEST_MS }, async () => {
    // Record every rendering of the reply and every show/hide of Stop while it streams.
    await page.evaluate(() => {
      window.__renders = [];
      window.__stopChanges = 0;
      new MutationObserver((records) => {
        for (const r of records) {
          const body = r.target.closest?.('[data-role=assistant] [data-testid=message-body]');
          if (body && r.target === body && r.addedNodes.length && !body.querySelector('.typing')) window.__renders.push(body.textContent);
          if (r.target.id === 'stop' && r.attributeName === 'hidden') window.__stopChanges++;
        }
      }).observe(document.body, { subtree: true, childList: true, attributes: true });
    });
    await sendAndWait(page, 'hello');
    const reply = await text(assistant(page).getByTestId('message-body'));
    assert.match(reply, /^Echo \(offline demo\): you said "hello"\. /);
    const renders = await page.evaluate(() => window.__renders);
    assert.ok(renders.length > 3, `the reply was rendered ${renders.length} times, not delta by delta`);
    for (const r of renders) assert.ok(reply.startsWith(r.trim()), `a partial render is not a prefix: ${r}`);
    assert.ok(await page.evaluate(() => window.__stopChanges) >= 2, 'Stop was shown while streaming, then hidden');
    assert.ok(await page.getByTestId('stop').isHidden());

    const meta = await text(assistant(page).getByTestId('reply-meta'));
    assert.match(meta, /^echo \(offline demo\) · echo · \d+ tokens \(\d+ in, \d+ out\)$/);

    await chatItems(page).first().waitFor();
    assert.equal(await chatItems(page).count(), 1);
    assert.equal(await text(chatItems(page).first().locator('.chat-title')), 'hello');
    assert.equal(await text(page.locator('#chat-title')), 'hello');
    firstId = await chatItems(page).first().getAttribute('data-session-id');
    assert.ok(firstId, 'the chat item carries its session id');

    const stored = await call(server, `/memory/${firstId}`);
    assert.equal(stored.status, 200);
    const [mine, theirs] = stored.body.messages;
    assert.equal(stored.body.messages.length, 2);
    assert.deepEqual([mine.role, mine.content], ['user', 'hello']);
    assert.deepEqual([theirs.role, theirs.content.trim()], ['assistant', reply]);
    assert.ok(meta.includes(`${theirs.metadata.usage.total_tokens} tokens`), 'the footer shows the stored usage');
    await screenshot(page, 'wide-reply');
  });

  // Markup in messages is shown as text and never runs; fenced code becomes a code block.
  test('renders untrusted text safely', { timeout: TEST_MS }, async () => {
    const attack = '<img src=x onerror="window.__xss=1"> <script>window.__xss=2</script> <b>bold?</b>';
    await sendAndWait(page, attack);
    const user = page.locator('[data-testid=message][data-role=user]').last().getByTestId('message-body');
    assert.equal(await user.textContent(), attack);
    assert.ok((await text(assistant(page).getByTestId('message-body'))).includes(attack));
    assert.equal(await page.locator('#messages img, #messages script, #messages b').count(), 0);
    await page.waitForTimeout(200); // an image error handler would have fired by now
    assert.equal(await page.evaluate(() => window.__xss), undefined);

    await sendAndWait(page, 'look:\n```html\n<i>x</i> & y\n```');
    const code = assistant(page).locator('pre code');
    assert.equal(await code.textContent(), '<i>x</i> & y');
    assert.equal(await text(assistant(page).locator('.code-head span')), 'html');
    assert.equal(await page.locator('#messages i').count(), 0);
    await screenshot(page, 'wide-code');
  });

  // After a reload, choosing the chat in the sidebar shows its stored history.
  test('reloads and reopens a chat from the sidebar', { timeout: TEST_MS }, async () => {
    await page.goto(`${server.url}/`);
    await chatItems(page).first().waitFor();
    assert.equal(await page.locator('[data-testid=message]').count(), 0, 'a fresh page starts a new chat');
    await page.locator(`[data-testid=chat-item][data-session-id="${firstId}"] .chat-open`).click();
    const messages = page.locator('[data-testid=message]');
    await messages.nth(5).waitFor();
    const history = (await call(server, `/memory/${firstId}`)).body.messages;
    assert.equal(await messages.count(), history.length);
    assert.equal(await text(messages.first().getByTestId('message-body')), 'hello');
    assert.match(await text(messages.nth(1).getByTestId('reply-meta')), /^echo \(offline demo\) · echo · \d+ tokens/);
    assert.equal(await text(page.locator('#chat-title')), 'hello');
    assert.equal(await chatItems(page).first().getAttribute('class'), 'chat-item active');

    // The chat is in the address, so a reload keeps it open; the memory answers the next turn.
    await page.reload();
    await messages.nth(5).waitFor();
    await sendAndWait(page, 'and again');
    assert.match(await text(assistant(page).getByTestId('message-body')), /I can see 6 earlier messages/);
  });

  // A second chat is listed first and can be deleted from the sidebar (after confirming).
  test('deletes a chat', { timeout: TEST_MS }, async () => {
    await page.getByTestId('new-chat').click();
    assert.equal(await page.locator('[data-testid=message]').count(), 0);
    await sendAndWait(page, 'second chat');
    await chatItems(page).nth(1).waitFor();
    const second = chatItems(page).first();
    assert.equal(await text(second.locator('.chat-title')), 'second chat', 'the newest chat comes first');
    const id = await second.getAttribute('data-session-id');
    assert.notEqual(id, firstId);

    page.once('dialog', (d) => d.dismiss());
    await second.getByTestId('chat-delete').click();
    await page.waitForTimeout(300);
    assert.equal(await chatItems(page).count(), 2, 'declining the confirmation keeps the chat');

    let asked = '';
    page.once('dialog', (d) => { asked = d.message(); d.accept(); });
    await second.getByTestId('chat-delete').click();
    await page.locator(`[data-testid=chat-item][data-session-id="${id}"]`).waitFor({ state: 'detached' });
    assert.match(asked, /second chat/);
    assert.equal(await chatItems(page).count(), 1);
    assert.equal(await text(page.locator('#chat-title')), 'New chat', 'deleting the open chat starts a new one');
    const gone = await call(server, `/memory/${id}`);
    assert.equal(gone.status, 404);
    assert.equal(gone.body.error.code, 'session_not_found');
    assert.equal((await call(server, `/memory/${firstId}`)).status, 200, 'the other chat stays');
  });

  // A refused message shows the server's own error text in a dismissable banner, is handed back
  // for editing, and the page keeps working.
  test('shows server errors and stays usable', { timeout: TEST_MS }, async () => {
    const long = 'x'.repeat(40_000);
    const refused = await call(server, '/chat', { method: 'POST', body: { message: long } });
    assert.equal(refused.status, 413);
    const banner = page.locator('#error');
    const count = await page.locator('[data-testid=message]').count();
    await page.getByTestId('message-input').fill(long);
    await page.getByTestId('send').click();
    await banner.waitFor();
    assert.equal(await text(page.locator('#error-text')), refused.body.error.message);
    assert.match(refused.body.error.message, /limit is 32768/);
    assert.equal(await page.locator('[data-testid=message]').count(), count, 'no bubbles for a refused turn');
    assert.equal((await page.getByTestId('message-input').inputValue()).length, long.length, 'the text is handed back');
    assert.ok(await page.getByTestId('send').isEnabled());
    await screenshot(page, 'wide-error');
    await page.locator('#error-close').click();
    await banner.waitFor({ state: 'hidden' });

    // A model picked in the list is sent as its provider and model.
    await page.locator('#model').selectOption('echo');
    const sent = page.waitForRequest((r) => r.url().endsWith('/chat') && r.method() === 'POST');
    await sendAndWait(page, 'still works');
    assert.deepEqual(JSON.parse((await sent).postData()),
      { message: 'still works', stream: true, provider: 'echo', model: 'echo' });
    assert.match(await text(assistant(page).getByTestId('message-body')), /you said "still works"/);
    await page.locator('#model').selectOption('');
  });

  // Stop aborts a reply that has not finished; the page is ready for the next message.
  test('stops a reply', { timeout: TEST_MS }, async () => {
    await page.getByTestId('new-chat').click();
    await page.route('**/chat', () => {}); // hold the request: the reply never comes
    await page.getByTestId('message-input').fill('never answered');
    await page.getByTestId('message-input').press('Enter');
    await page.getByTestId('stop').waitFor();
    assert.ok(await page.getByTestId('send').isDisabled(), 'Send is off while a reply is pending');
    await page.getByTestId('stop').click();
    await assistant(page).getByTestId('reply-meta').filter({ hasText: 'Stopped' }).waitFor();
    assert.ok(await page.getByTestId('stop').isHidden());
    assert.ok(await page.getByTestId('send').isEnabled());
    await page.unroute('**/chat');
    await sendAndWait(page, 'answered');
    assert.match(await text(assistant(page).getByTestId('message-body')), /you said "answered"/);
    await closePage(page);
  });

  // At phone width the sidebar folds away behind a button and the chat still works.
  test('works in a narrow window', { timeout: TEST_MS }, async () => {
    page = await openPage(server, { width: 390, height: 760 });
    await page.getByTestId('status').filter({ hasText: 'default' }).waitFor();
    const sidebarAt = (edge) => page.locator('#sidebar').evaluate((s, edge) => s.getBoundingClientRect()[edge], edge);
    assert.ok(await sidebarAt('right') <= 0, 'the sidebar is folded away');
    await page.locator('#sidebar-toggle').click();
    await page.waitForFunction(() => document.getElementById('sidebar').getBoundingClientRect().left >= 0);
    await screenshot(page, 'narrow-sidebar');
    await page.locator(`[data-testid=chat-item][data-session-id="${firstId}"] .chat-open`).click();
    await page.locator('[data-testid=message]').first().waitFor();
    await page.waitForFunction(() => document.getElementById('sidebar').getBoundingClientRect().right <= 0);
    // Shift+Enter makes a new line, Enter sends.
    const input = page.getByTestId('message-input');
    await input.fill('from my phone');
    await input.press('Shift+Enter');
    await input.pressSequentially('second line');
    assert.equal(await input.inputValue(), 'from my phone\nsecond line');
    const count = await page.locator('[data-testid=message]').count();
    await input.press('Enter');
    await page.locator('[data-testid=message]').nth(count + 1).getByTestId('reply-meta').filter({ hasText: 'tokens' }).waitFor();
    assert.equal(await page.locator('[data-testid=message]').nth(count).getByTestId('message-body').textContent(),
      'from my phone\nsecond line');
    await screenshot(page, 'narrow-chat');
    await closePage(page);
  });

  // A workspace set in the page is remembered; files attached to it (picked or dropped) are
  // uploaded one by one with a status each, binary and oversized ones refused with a reason,
  // listed with their chunks, and recalled into chats, which say so in their footer; removing
  // a file or the workspace empties it for the page and the API.
  test('attaches files to a workspace and recalls them', { timeout: TEST_MS }, async () => {
    const WS = 'launch-notes_1.0';
    const files = `/workspaces/${WS}/files`;
    page = await openPage(server);
    const panel = page.getByTestId('workspace-panel');
    const name = page.getByTestId('workspace-name');
    const listed = page.getByTestId('workspace-file');
    const upload = (file, state) => page.locator(`[data-testid=upload-item][data-name="${file}"][data-state=${state}]`);
    assert.equal(await text(name), 'No workspace');
    assert.ok(await panel.isHidden());
    await page.getByTestId('workspace-toggle').click();
    await panel.waitFor();
    assert.ok(await page.getByTestId('workspace-attach').isDisabled(), 'nothing to attach to without a workspace');

    // An id the server would refuse is refused here; a good one is used and remembered.
    await page.getByTestId('workspace-id').fill('launch notes');
    await page.getByTestId('workspace-use').click();
    await page.getByTestId('workspace-error').filter({ hasText: 'letters, digits' }).waitFor();
    assert.equal(await text(name), 'No workspace');
    await page.getByTestId('workspace-id').fill(WS);
    await page.getByTestId('workspace-id').press('Enter');
    await name.filter({ hasText: WS }).waitFor();
    assert.ok(await page.getByTestId('workspace-error').isHidden());
    assert.equal(await page.evaluate(() => localStorage.getItem('codexcontinue.workspace')), WS);
    await page.locator('[data-testid=workspace-files] .ws-empty').waitFor();
    assert.equal((await call(server, files)).status, 404, 'a new workspace has no files yet');

    // Two files picked at once: the text one is attached, the binary one refused in the page.
    const fact = 'Project notes. The launch codename is BLUEHERON; the rehearsal happens at the harbour.';
    await page.getByTestId('workspace-file-input').setInputFiles([
      { name: 'launch.md', mimeType: 'text/markdown', buffer: Buffer.from(fact) },
      { name: 'logo.png', mimeType: 'image/png', buffer: Buffer.from('\x89PNG\r\n\x1a\n\u0000\u0000\u0000\rIHDR', 'latin1') },
    ]);
    await upload('launch.md', 'ok').waitFor();
    await upload('logo.png', 'error').waitFor();
    assert.match(await text(upload('launch.md', 'ok')), /attached to “launch-notes_1\.0”, 1 chunk$/);
    assert.match(await text(upload('logo.png', 'error')), /refused: a binary file \(it contains NUL bytes\)/);
    assert.ok(await page.locator('#error').isHidden(), 'a refusal in the page is not a server error');
    await listed.first().waitFor();
    assert.deepEqual(await listed.evaluateAll((ls) => ls.map((l) => l.dataset.name)), ['launch.md']);
    assert.match(await text(listed.first()), /^launch\.md\s*1 chunk · just now\s*×$/);

    // A file dropped on the chat is attached too, and the drag shows where files will go. (The
    // drag's data lives in the page, so it is made anew after the reload below.)
    const crew = () => page.evaluateHandle(() => {
      const dt = new DataTransfer();
      dt.items.add(new File(['Dana leads the crew; Okonkwo brings sandwiches.'], 'crew.txt', { type: 'text/plain' }));
      return dt;
    });
    const dropped = await crew();
    await page.locator('#main').dispatchEvent('dragenter', { dataTransfer: dropped });
    assert.equal(await page.locator('#main').evaluate((m) => m.classList.contains('dropping') && m.dataset.drop),
      `Drop text files to attach them to “${WS}”`);
    await screenshot(page, 'wide-drop');
    await page.locator('#main').dispatchEvent('drop', { dataTransfer: dropped });
    await upload('crew.txt', 'ok').waitFor();
    assert.ok(!await page.locator('#main').evaluate((m) => m.classList.contains('dropping')));
    await listed.nth(1).waitFor();
    const api = (await call(server, files)).body;
    assert.equal(api.workspace_id, WS);
    assert.deepEqual(api.files.map((f) => [f.name, f.chunks]), [['crew.txt', 1], ['launch.md', 1]]);
    assert.deepEqual(await listed.evaluateAll((ls) => ls.map((l) => l.dataset.name)), ['crew.txt', 'launch.md']);

    // A file over the server's body limit: the server's 413 is shown for the file and in the banner.
    const big = 'harbour '.repeat(140_000);
    const tooBig = await call(server, files, { method: 'POST', body: { name: 'big.txt', content: big } });
    assert.equal(tooBig.status, 413);
    await page.getByTestId('workspace-file-input').setInputFiles({ name: 'big.txt', mimeType: 'text/plain', buffer: Buffer.from(big) });
    await upload('big.txt', 'error').waitFor();
    assert.equal(await text(upload('big.txt', 'error').locator('span').last()), tooBig.body.error.message);
    assert.equal(await text(page.locator('#error-text')), tooBig.body.error.message);
    await screenshot(page, 'wide-workspace');
    await page.locator('#error-close').click();
    assert.equal(await listed.count(), 2);

    // After a reload the workspace is still set, and every chat from the page names it: a
    // question sharing words with launch.md recalls its chunk (no other chat says any of it),
    // and the footer shows what the server stored with the reply.
    await page.reload();
    await name.filter({ hasText: WS }).waitFor();
    const question = 'Which launch codename did we pick?';
    const sent = page.waitForRequest((r) => r.url().endsWith('/chat') && r.method() === 'POST');
    await sendAndWait(page, question);
    assert.deepEqual(JSON.parse((await sent).postData()), { message: question, stream: true, workspace_id: WS });
    assert.match(await text(assistant(page).getByTestId('reply-meta')), /^echo \(offline demo\) · echo · \d+ tokens \(\d+ in, \d+ out\) · 1 recalled$/);
    const latest = (await call(server, '/sessions')).body.sessions[0];
    const stored = (await call(server, `/memory/${latest.id}`)).body.messages.at(-1);
    assert.equal(stored.metadata.memory.recalled, 1, 'the server recalled the one matching chunk');
    await screenshot(page, 'wide-recalled');
    // A message sharing no words with the files recalls nothing, and the footer says nothing.
    const unrelated = 'Good morning';
    await sendAndWait(page, unrelated);
    assert.doesNotMatch(await text(assistant(page).getByTestId('reply-meta')), /recalled/);
    // Reopened, the stored replies still say what they recalled.
    await page.reload();
    const metas = page.locator('[data-testid=message][data-role=assistant] [data-testid=reply-meta]');
    await metas.filter({ hasText: /· 1 recalled$/ }).first().waitFor({ timeout: STEP_MS });
    assert.doesNotMatch(await text(assistant(page).getByTestId('reply-meta')), /recalled/);

    // One file removed with its ×: gone from the list and from the API.
    await page.getByTestId('workspace-toggle').click();
    await listed.nth(1).waitFor();
    await listed.filter({ hasText: 'crew.txt' }).getByTestId('workspace-file-delete').click();
    await page.locator('[data-testid=workspace-file][data-name="crew.txt"]').waitFor({ state: 'detached' });
    assert.deepEqual((await call(server, files)).body.files.map((f) => f.name), ['launch.md']);

    // Deleting the workspace (after confirming) empties the list; the API no longer has it.
    let asked = '';
    page.once('dialog', (d) => { asked = d.message(); d.accept(); });
    await page.getByTestId('workspace-delete').click();
    await page.locator('[data-testid=workspace-files] .ws-empty').waitFor();
    assert.match(asked, /Delete the workspace “launch-notes_1\.0” and its 1 file\?/);
    assert.equal(await listed.count(), 0);
    assert.ok(await page.getByTestId('workspace-delete').isDisabled());
    const gone = await call(server, files);
    assert.equal(gone.status, 404);
    assert.equal(gone.body.error.code, 'workspace_not_found');
    await sendAndWait(page, question);
    assert.doesNotMatch(await text(assistant(page).getByTestId('reply-meta')), /recalled/, 'nothing left to recall');

    // At phone width the panel fits. An empty id means no workspace: files dropped then wait
    // for one, and go where the id entered next says.
    await page.setViewportSize({ width: 390, height: 760 });
    await page.waitForFunction(() => document.getElementById('sidebar').getBoundingClientRect().right <= 0);
    await screenshot(page, 'narrow-workspace');
    await page.getByTestId('workspace-id').fill('');
    await page.getByTestId('workspace-use').click();
    await name.filter({ hasText: 'No workspace' }).waitFor({ state: 'attached' });
    assert.equal(await page.evaluate(() => localStorage.getItem('codexcontinue.workspace')), null);
    await page.keyboard.press('Escape');
    await panel.waitFor({ state: 'hidden' });
    await page.locator('#main').dispatchEvent('drop', { dataTransfer: await crew() });
    await page.getByTestId('workspace-error').filter({ hasText: 'Enter a workspace id and press Use to attach crew.txt.' }).waitFor();
    await screenshot(page, 'narrow-workspace-pending');
    await page.getByTestId('workspace-id').fill('crew');
    await page.getByTestId('workspace-use').click();
    await upload('crew.txt', 'ok').waitFor();
    assert.deepEqual((await call(server, '/workspaces/crew/files')).body.files.map((f) => f.name), ['crew.txt']);

    // With no workspace again, chats stop naming one.
    await page.getByTestId('workspace-id').fill('');
    await page.getByTestId('workspace-id').press('Enter');
    await name.filter({ hasText: 'No workspace' }).waitFor({ state: 'attached' });
    await page.keyboard.press('Escape');
    await panel.waitFor({ state: 'hidden' });
    const plain = page.waitForRequest((r) => r.url().endsWith('/chat') && r.method() === 'POST');
    await sendAndWait(page, 'no workspace now');
    assert.equal(JSON.parse((await plain).postData()).workspace_id, undefined);
    await closePage(page);
  });

  // "Remember that …" keeps a fact: the sidebar lists it (a newer statement about the same
  // thing replaces it, and says what it replaced) and forgets it on request, as the server does.
  test('lists remembered facts and forgets one', { timeout: TEST_MS }, async () => {
    page = await openPage(server);
    const facts = page.getByTestId('fact');
    assert.ok(await page.getByTestId('facts').isHidden(), 'nothing remembered yet');
    await sendAndWait(page, 'Remember that the harbour gate code is 4471.');
    await facts.filter({ hasText: 'The harbour gate code is 4471.' }).waitFor();
    await sendAndWait(page, 'Please remember that the harbour gate code is 9902.');
    const current = facts.filter({ hasText: 'The harbour gate code is 9902.' });
    await current.waitFor();
    assert.equal(await facts.count(), 1, 'the newer statement replaced the older');
    assert.equal(await current.getAttribute('title'), 'Replaced: The harbour gate code is 4471.');
    await screenshot(page, 'wide-facts');
    await current.hover();
    await current.getByTestId('fact-delete').click();
    await page.getByTestId('facts').waitFor({ state: 'hidden' });
    assert.deepEqual((await call(server, '/memory/facts')).body.facts, []);
    await closePage(page);
  });
});

describe('the web chat page with client API keys', () => {
  let server, page;
  before(async () => { server = await startServer({ CODEXCONTINUE_API_KEYS: `alice:${ALICE_KEY}` }); });
  after(async () => { if (page && !page.isClosed()) await page.context().close(); });

  // Without a key the page shows the server's 401 and opens the key setting; with a wrong key
  // it says so; with alice's key everything works, as alice.
  test('asks for a key and then works', { timeout: TEST_MS }, async () => {
    const missing = await call(server, '/status');
    assert.equal(missing.status, 401, 'the server enforces CODEXCONTINUE_API_KEYS');
    assert.equal(missing.body.error.code, 'missing_api_key');
    page = await openPage(server);
    const dialog = page.locator('#settings[open]');
    await dialog.waitFor();
    assert.equal(await text(page.locator('#settings-error')), missing.body.error.message);
    assert.equal(await text(page.locator('#error-text')), missing.body.error.message);
    assert.equal(await text(page.getByTestId('status')), 'API key needed');
    await screenshot(page, 'wide-auth');

    const invalid = await call(server, '/status', { key: 'sk-wrong-key-000000000' });
    assert.equal(invalid.body.error.code, 'invalid_api_key');
    await page.getByTestId('api-key').fill('sk-wrong-key-000000000');
    await page.getByTestId('settings-save').click();
    await page.locator('#settings-error', { hasText: invalid.body.error.message }).waitFor();
    assert.ok(await dialog.isVisible(), 'a wrong key opens the setting again');

    await page.getByTestId('api-key').fill(ALICE_KEY);
    await page.getByTestId('settings-save').click();
    await dialog.waitFor({ state: 'detached' });
    await page.getByTestId('status').filter({ hasText: 'default: echo' }).waitFor();
    assert.ok(await page.locator('#error').isHidden(), 'the banner is gone once the key works');
    assert.equal(await page.evaluate(() => localStorage.getItem('codexcontinue.apiKey')), ALICE_KEY);

    await sendAndWait(page, 'hello');
    assert.match(await text(assistant(page).getByTestId('message-body')), /^Echo \(offline demo\): you said "hello"/);
    await chatItems(page).first().waitFor();
    const sessions = (await call(server, '/sessions', { key: ALICE_KEY })).body;
    assert.equal(sessions.user_id, 'alice');
    assert.deepEqual(sessions.sessions.map((s) => s.title), ['hello']);

    // The key is remembered across reloads.
    await page.reload();
    await chatItems(page).first().waitFor();
    assert.ok(await page.locator('#settings').evaluate((d) => !d.open));
    await closePage(page);
  });
});
