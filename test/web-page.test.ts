// The web page at GET / in a real browser (Debian's chromium driven by playwright-core), against
// the real server on 127.0.0.1 with the bundled demo model: Chat streams and stops, conversations
// survive a reload, Tools shows the call, its result and the answer, Code shows code, output and a
// plot, and model text that tries to be HTML runs nothing. Screenshots of each tab go to
// $WEB_SCREENSHOT_DIR (default: a temp folder, printed).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { bundledModelPath, createCodeInterpreter, loadChatModel, loadToolsModule, type ChatModel } from '../src/index.js';
import { startServer, type ChatGLMServer } from '../src/server/server.js';
import { decodePng, sandboxSkipReason } from './support/interpreter-sandbox.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const CHROMIUM = process.env['CHROMIUM_PATH'] ?? '/usr/bin/chromium';

type PlaywrightCore = typeof import('playwright-core');
type Browser = Awaited<ReturnType<PlaywrightCore['chromium']['launch']>>;
type Page = Awaited<ReturnType<Browser['newPage']>>;

async function loadPlaywright(): Promise<PlaywrightCore | undefined> {
  try {
    return await import('playwright-core');
  } catch {
    return undefined;
  }
}

const playwright = await loadPlaywright();
const browserSkip: string | false =
  playwright === undefined
    ? 'playwright-core is not installed (npm ci installs it as a dev dependency)'
    : !existsSync(CHROMIUM)
      ? `no chromium at ${CHROMIUM} (apt-get install -y chromium fonts-wqy-microhei, or set CHROMIUM_PATH)`
      : !existsSync(path.join(repoRoot, 'dist', 'src', 'web', 'app.js'))
        ? 'the web page is not built (npm run build)'
        : false;
const sandboxSkip = browserSkip || (sandboxSkipReason() ?? false);

let chat: ChatModel;
let server: ChatGLMServer;
let browser: Browser;
let page: Page;
const shots = process.env['WEB_SCREENSHOT_DIR'] ?? mkdtempSync(path.join(tmpdir(), 'chatglm-web-'));

before(async () => {
  if (browserSkip) return;
  mkdirSync(shots, { recursive: true });
  chat = await loadChatModel(bundledModelPath());
  const tools = await loadToolsModule(path.join(repoRoot, 'examples', 'weather-tools.mjs'));
  server = await startServer({
    model: chat,
    port: 0,
    // Room for a reply long enough to press Stop in (the demo model repeats "2" to the end of the context).
    ctxSize: 8192,
    agent: { tools, ...(sandboxSkip ? {} : { createInterpreter: () => createCodeInterpreter() }) },
  });
  await server.whenReady();
  browser = await playwright!.chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
  page = await browser.newPage({ viewport: { width: 1100, height: 860 } });
  page.on('dialog', (d) => {
    dialogs.push(d.message());
    void d.dismiss();
  });
  await page.goto(server.url);
});

after(async () => {
  if (browserSkip) return;
  await browser?.close();
  await server?.close(1000);
  chat?.dispose();
  console.log(`# web page screenshots: ${shots}`);
});

const dialogs: string[] = [];

async function sendMessage(text: string): Promise<void> {
  const box = page.getByLabel('Message', { exact: true });
  await box.fill(text);
  await box.press('Enter');
}

/** Waits until the reply is finished (Send is enabled again). */
async function idle(): Promise<void> {
  await page.locator('#send:not([disabled])').waitFor({ timeout: 20_000 });
}

async function setField(label: string, value: string): Promise<void> {
  await page.getByLabel(label, { exact: true }).fill(value);
  await page.getByLabel(label, { exact: true }).dispatchEvent('change');
}

const log = (): ReturnType<Page['getByRole']> => page.getByRole('log');

test('Chat: a streamed reply to 你好, Shift+Enter is a new line, tokens/s under the reply, restored on reload', { skip: browserSkip }, async () => {
  await page.getByRole('tab', { name: 'Chat' }).click();
  await setField('Temperature', '0');
  const box = page.getByLabel('Message', { exact: true });
  await box.fill('line one');
  await box.press('Shift+Enter');
  assert.equal(await box.inputValue(), 'line one\n', 'Shift+Enter adds a new line and sends nothing');
  assert.equal(await log().locator('.msg').count(), 0);
  await box.fill('');
  await sendMessage('你好');
  await idle();
  const reply = log().locator('.msg.assistant').last();
  // What the demo model answers to 你好 greedily (its training data introduces itself so).
  assert.match((await reply.locator('.body').innerText()).trim(), /^你好！我是一个很小的演示模型/);
  assert.match(await reply.locator('.stats').innerText(), /^\d+ tokens · [\d.]+ tokens\/s$/);
  await page.screenshot({ path: path.join(shots, 'chat.png') });

  await page.reload();
  await log().locator('.msg.assistant').first().waitFor();
  assert.equal(await log().locator('.msg.user').first().innerText(), '你好');
  assert.match(await log().locator('.msg.assistant .body').first().innerText(), /^你好！我是一个很小的演示模型/);
  assert.ok((await page.locator('#conversations button').allInnerTexts()).some((t) => t.includes('你好')));
});

test('Chat: Stop ends a long reply and the server-side generation', { skip: browserSkip }, async () => {
  await page.getByRole('button', { name: 'New chat', exact: true }).click();
  assert.equal(await log().locator('.msg').count(), 0, 'New chat starts an empty conversation');
  // Greedy, the demo model answers this with "2" repeated to the end of the 8192-position slot (seconds).
  const generatedBefore = server.metrics.generatedTokens;
  await sendMessage('22 22 22 22 22 22 22 22');
  const reply = log().locator('.msg.assistant').last();
  await reply.waitFor();
  await page.getByRole('button', { name: 'Stop' }).click();
  await idle();
  await reply.locator('.stats', { hasText: 'stopped' }).waitFor();
  const shown = (await reply.locator('.body').innerText()).length;
  assert.ok(shown < 8000, `the reply stopped early (${shown} characters)`);
  // The server let go of the slot: nothing is generating any more.
  const health = async (): Promise<{ slots_processing: number }> => (await (await fetch(`${server.url}/health`)).json()) as { slots_processing: number };
  const deadline = Date.now() + 3000;
  while ((await health()).slots_processing !== 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  assert.equal((await health()).slots_processing, 0);
  // ... because the generation was cancelled, not because it ran to the end of the slot.
  const generated = server.metrics.generatedTokens - generatedBefore;
  assert.ok(generated < 8000, `the server generated ${generated} tokens`);
});

test('Tools: a weather question shows the call with its arguments, the result and the answer', { skip: browserSkip }, async () => {
  await page.getByRole('tab', { name: 'Tools' }).click();
  await page.getByRole('checkbox', { name: 'get_current_weather' }).waitFor();
  assert.equal(await page.getByRole('checkbox', { name: 'get_current_weather' }).isChecked(), true);
  // The demo model's answer after the observation repeats itself: keep it short.
  await setField('Max tokens', '40');
  await sendMessage("What's the weather in Paris?");
  await idle();
  const call = log().locator('.card.call');
  assert.match(await call.innerText(), /get_current_weather/);
  assert.deepEqual(JSON.parse(await call.locator('code').innerText()), { location: 'Paris' });
  // examples/weather-tools.mjs answers every city with 22 degrees, sunny.
  assert.deepEqual(JSON.parse(await log().locator('.card.result pre').innerText()), { temperature: 22, description: 'sunny' });
  const answer = log().locator('.msg.assistant').last();
  assert.ok((await answer.locator('.body').innerText()).trim().length > 0);
  assert.match(await answer.locator('.stats').innerText(), /tokens\/s/);
  await page.screenshot({ path: path.join(shots, 'tools.png') });
  await setField('Max tokens', '');
});

test('Code: a computation shows its code and output; a plot request shows a PNG', { skip: sandboxSkip }, async () => {
  await page.getByRole('tab', { name: 'Code' }).click();
  await sendMessage('Compute the sum of the integers from 1 to 100.');
  await idle();
  assert.match(await log().locator('.card.call code').innerText(), /sum\(range\(1, 100 \+ 1\)\)/);
  // 1 + 2 + ... + 100 = 5050, printed by Python in the sandbox.
  assert.equal((await log().locator('.card.result pre').innerText()).trim(), '5050');
  assert.match(await log().locator('.msg.assistant').last().innerText(), /5050/);

  await page.getByRole('button', { name: 'New chat', exact: true }).click();
  await sendMessage('Plot sin(x) from 0 to 10.');
  await idle();
  assert.match(await log().locator('.card.call code').innerText(), /np\.sin\(x\)/);
  const img = log().locator('.card.result img');
  await img.waitFor();
  const src = await img.getAttribute('src');
  assert.ok(src !== null && src.startsWith('data:image/png;base64,'));
  const png = decodePng(new Uint8Array(Buffer.from(src.slice('data:image/png;base64,'.length), 'base64')));
  assert.ok(png.width > 100 && png.height > 100, `plot is ${png.width}x${png.height}`);
  // The browser decoded it too.
  assert.ok((await img.evaluate((e) => (e as unknown as { naturalWidth: number }).naturalWidth)) > 0);
  await page.screenshot({ path: path.join(shots, 'code.png') });
});

test('Safety: HTML in model text and tool output is shown as text and runs nothing', { skip: browserSkip }, async () => {
  const evil = 'Look: <img src=x onerror="window.__pwned=1;alert(1)"> and <script>window.__pwned=2</script> [link](javascript:window.__pwned=3) ![i](x.png)';
  const sse = (events: unknown[]): string => events.map((e) => `data: ${JSON.stringify(e)}\n\n`).join('') + 'data: [DONE]\n\n';
  // A scripted model: the page's requests are answered by the test, the way the server streams.
  await page.route('**/v1/chat/completions', (route) =>
    route.fulfill({
      status: 200,
      contentType: 'text/event-stream',
      body: sse([
        { choices: [{ index: 0, delta: { role: 'assistant', content: '' }, finish_reason: null }] },
        { choices: [{ index: 0, delta: { content: evil }, finish_reason: null }] },
        { choices: [{ index: 0, delta: {}, finish_reason: 'stop' }] },
      ]),
    }),
  );
  await page.route('**/chatglm/agent', (route) =>
    route.fulfill({
      status: 200,
      contentType: 'text/event-stream',
      body: sse([
        { type: 'tool_call', id: 'c1', name: 'get_current_weather', arguments: '{"location": "<img src=x onerror=window.__pwned=4>"}' },
        { type: 'tool_result', id: 'c1', name: 'get_current_weather', ok: true, output: '<script>window.__pwned=5</script>', images: [{ mime: 'image/png', url: 'javascript:window.__pwned=6' }, { mime: 'image/svg+xml', url: 'data:image/svg+xml,<svg onload="window.__pwned=7"/>' }] },
        { type: 'message.delta', content: evil },
        { type: 'done', messages: [], usage: {} },
      ]),
    }),
  );
  try {
    await page.getByRole('tab', { name: 'Chat' }).click();
    await page.getByRole('button', { name: 'New chat', exact: true }).click();
    await sendMessage('say something nasty');
    await idle();
    const reply = log().locator('.msg.assistant').last();
    assert.match(await reply.innerText(), /<img src=x onerror="window.__pwned=1;alert\(1\)">/);
    assert.match(await reply.innerText(), /<script>window.__pwned=2<\/script>/);
    await page.getByRole('tab', { name: 'Tools' }).click();
    await sendMessage('and the tools?');
    await idle();
    assert.match(await log().locator('.card.result pre').innerText(), /<script>window.__pwned=5<\/script>/);
    assert.equal(await log().locator('img').count(), 0, 'no image from model text, and no non-PNG image from a tool');
    assert.equal(await log().locator('script, iframe, svg').count(), 0);
    assert.equal(await log().locator('a[href^="javascript:"]').count(), 0);
    await page.reload();
    await log().locator('.msg.assistant').last().waitFor();
    assert.equal(await page.evaluate(() => (globalThis as unknown as { __pwned?: number }).__pwned), undefined);
    assert.deepEqual(dialogs, []);
  } finally {
    await page.unrouteAll();
  }
});
