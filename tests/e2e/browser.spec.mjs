// End-to-end test of the web UI in headless Chromium (Debian's package, driven by playwright-core).
//
//   GQL_MEDIA_E2E_URL=http://127.0.0.1:8765 GQL_MEDIA_E2E_LIBRARY=/path/to/library \
//     node --test tests/e2e/browser.spec.mjs
//
// The server must already be running on that library (tests/e2e/test_browser.py starts a real one).
// It runs at 1280x900 and at 390x844 (a phone): the page must fit (no sideways scroll), axe-core
// must find no serious or critical violation on the main page and with the player, and the tree
// must work by keyboard alone. Screenshots: e2e-1280x900.png and e2e-390x844.png; the axe
// results: axe-summary.json, all under the artifacts directory.
// Optional: GQL_MEDIA_E2E_VIDEO (a video file to copy in; default: the first video found in the
// library), GQL_MEDIA_E2E_ARTIFACTS (default: <repo>/test-artifacts), CHROMIUM (browser binary;
// default: `chromium` on PATH), GQL_MEDIA_E2E_TOKEN (API token, if the server needs one).
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { basename, extname, join, resolve } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';

const here = fileURLToPath(new URL('.', import.meta.url));
const repo = resolve(here, '../..');
// playwright-core is installed with the frontend's dev dependencies.
const require = createRequire(join(repo, 'frontend-example', 'package.json'));
const { chromium } = require('playwright-core');
// axe-core is a dev dependency of the frontend too; it is injected into the page as a script.
const AXE_SCRIPT = require.resolve('axe-core/axe.min.js');

const BASE = (process.env.GQL_MEDIA_E2E_URL ?? '').replace(/\/$/, '');
const LIBRARY = process.env.GQL_MEDIA_E2E_LIBRARY ?? '';
const ARTIFACTS = process.env.GQL_MEDIA_E2E_ARTIFACTS ?? join(repo, 'test-artifacts');
const TOKEN = process.env.GQL_MEDIA_E2E_TOKEN ?? '';
const VIDEO_EXT = new Set(['.mp4', '.m4v', '.webm', '.mkv', '.mov']);
const LIVE_TIMEOUT = Number(process.env.GQL_MEDIA_E2E_LIVE_TIMEOUT_MS ?? 30_000);

const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-quic',
  '--no-first-run',
  '--disable-component-update',
  '--disable-sync',
];

function findChromium() {
  if (process.env.CHROMIUM) return process.env.CHROMIUM;
  for (const name of ['chromium', 'chromium-browser']) {
    try {
      const p = execFileSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' }).trim();
      if (p) return p;
    } catch {
      /* try the next name */
    }
  }
  throw new Error('chromium not found on PATH (Debian: apt-get install chromium); set CHROMIUM=/path/to/binary');
}

function findVideo(dir) {
  for (const d of readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
    if (d.name.startsWith('.')) continue;
    const p = join(dir, d.name);
    if (d.isFile() && VIDEO_EXT.has(extname(d.name).toLowerCase()) && statSync(p).size > 0) return p;
  }
  for (const d of readdirSync(dir, { withFileTypes: true })) {
    if (d.isDirectory() && !d.name.startsWith('.')) {
      const v = findVideo(join(dir, d.name));
      if (v) return v;
    }
  }
  return null;
}

const sel = {
  folderRow: '[data-testid="folder-row"]',
  videoRow: '[data-testid="video-row"]',
  thumb: 'img[data-testid="thumb"]',
  conn: '[data-testid="conn-status"]',
  syncButton: '[data-testid="sync-button"]',
  progress: '[data-testid="sync-progress"]',
  player: '[data-testid="player"]',
  byName: (name) => `[data-testid="video-row"][data-name=${JSON.stringify(name)}]`,
};

const skip = !BASE || !LIBRARY ? 'set GQL_MEDIA_E2E_URL and GQL_MEDIA_E2E_LIBRARY (tests/e2e/test_browser.py does)' : false;

const DESKTOP = { width: 1280, height: 900 };
const PHONE = { width: 390, height: 844 };
/** The smallest touch target, in CSS pixels. */
const TAP_PX = 40;

let browser;
let page;
const axeRuns = [];
const pageErrors = [];
const foreignRequests = [];
const timings = {};
const added = [];

before(async () => {
  if (skip) return;
  mkdirSync(ARTIFACTS, { recursive: true });
  browser = await chromium.launch({ executablePath: findChromium(), headless: true, args: CHROMIUM_ARGS, timeout: 60_000 });
  page = await newPage({ viewport: DESKTOP });
});

/** A page in a fresh context that refuses (and records) anything not from the server itself. */
async function newPage(options) {
  const context = await browser.newContext(options);
  if (TOKEN) await context.addInitScript((t) => localStorage.setItem('gql_media.token', t), TOKEN);
  const origin = new URL(BASE).origin;
  // The UI must work offline: anything not from the server itself is refused and recorded.
  await context.route('**/*', (route) => {
    const url = route.request().url();
    if (url.startsWith(origin) || url.startsWith('data:') || url.startsWith('blob:')) return route.continue();
    foreignRequests.push(url);
    return route.abort();
  });
  const p = await context.newPage();
  p.on('pageerror', (e) => pageErrors.push(String(e)));
  p.on('console', (m) => {
    if (m.type() === 'error') console.log(`[browser console] ${m.text()}`);
  });
  return p;
}

/** The page is no wider than the window: nothing scrolls sideways. */
async function assertFits(p, where) {
  const { scrollWidth, innerWidth } = await p.evaluate(() => ({
    scrollWidth: document.documentElement.scrollWidth,
    innerWidth: window.innerWidth,
  }));
  assert.ok(scrollWidth <= innerWidth, `${where}: the page is ${scrollWidth} px wide in a ${innerWidth} px window`);
  // A phone widens its layout viewport to fit wider content, which would hide the overflow.
  assert.equal(innerWidth, p.viewportSize().width, `${where}: the layout viewport was widened to ${innerWidth} px`);
}

/** Run axe-core on the page; fail on any serious or critical violation. */
async function assertAxe(p, label) {
  if (!(await p.evaluate(() => 'axe' in window))) await p.addScriptTag({ path: AXE_SCRIPT });
  const result = await p.evaluate(async () => {
    const r = await window.axe.run(document, { resultTypes: ['violations'] });
    return {
      passes: r.passes.length,
      violations: r.violations.map((v) => ({
        id: v.id,
        impact: v.impact,
        help: v.help,
        nodes: v.nodes.slice(0, 5).map((n) => n.target.join(' ')),
      })),
    };
  });
  const bad = result.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  const viewport = p.viewportSize();
  axeRuns.push({ label, viewport: `${viewport.width}x${viewport.height}`, rulesPassed: result.passes, ...result });
  assert.deepEqual(bad, [], `${label}: axe found serious or critical violations`);
}

/** Visible controls and tree items smaller than a fingertip. */
async function smallTargets(p) {
  return p.evaluate((min) => {
    const small = [];
    for (const el of document.querySelectorAll('button, select, input, a[href], summary, [role="treeitem"], [role="switch"]')) {
      const r = el.getBoundingClientRect();
      if (!r.width || !r.height || el.closest('[hidden], dialog:not([open])')) continue;
      if (r.width < min || r.height < min) {
        small.push(`${el.tagName.toLowerCase()}[${el.dataset.testid ?? el.getAttribute('aria-label') ?? el.textContent?.trim().slice(0, 20)}] ${Math.round(r.width)}x${Math.round(r.height)}`);
      }
    }
    return small;
  }, TAP_PX);
}

/** What has the keyboard focus, and whether it shows. */
function focused(p) {
  return p.evaluate(() => {
    const el = document.activeElement;
    if (!el || el === document.body) return null;
    const cs = getComputedStyle(el);
    return {
      role: el.getAttribute('role'),
      testid: el.dataset.testid ?? null,
      name: el.dataset.name ?? null,
      id: el.dataset.id ?? null,
      expanded: el.getAttribute('aria-expanded'),
      level: Number(el.getAttribute('aria-level') ?? 0),
      count: Number(el.querySelector('[data-testid="folder-count"]')?.textContent ?? 0),
      // A <video> draws the focus on its own controls.
      ring: el.tagName === 'VIDEO' || (cs.outlineStyle !== 'none' && parseFloat(cs.outlineWidth) > 0),
      onScreen: (() => {
        const r = el.getBoundingClientRect();
        return r.width > 0 && r.height > 0 && r.bottom > 0 && r.right > 0 && r.top < innerHeight && r.left < innerWidth;
      })(),
    };
  });
}

after(async () => {
  for (const f of added) rmSync(f, { force: true });
  if (page && !page.isClosed()) {
    await page.screenshot({ path: join(ARTIFACTS, 'e2e-final.png'), fullPage: true }).catch(() => {});
  }
  await browser?.close();
  if (axeRuns.length) {
    writeFileSync(join(ARTIFACTS, 'axe-summary.json'), `${JSON.stringify(axeRuns, null, 2)}\n`);
    for (const r of axeRuns) {
      const byImpact = {};
      for (const v of r.violations) byImpact[v.impact] = (byImpact[v.impact] ?? 0) + 1;
      console.log(`axe ${r.label} @${r.viewport}: ${r.rulesPassed} rules passed, violations ${JSON.stringify(byImpact)}`);
    }
  }
  if (Object.keys(timings).length) {
    writeFileSync(join(ARTIFACTS, 'e2e-timings.json'), `${JSON.stringify(timings, null, 2)}\n`);
    console.log(`e2e timings: ${JSON.stringify(timings)}`);
  }
});

test('web UI: tree, thumbnails, live add/remove, sync progress, playback and seeking', { skip, timeout: 180_000 }, async (ctx) => {
  // Steps depend on each other: after the first failure the rest are skipped.
  let failed = false;
  const t = {
    test: (name, fn) =>
      ctx.test(name, { skip: failed && 'an earlier step failed' }, async () => {
        try {
          await fn();
        } catch (e) {
          failed = true;
          await page.screenshot({ path: join(ARTIFACTS, 'e2e-failure.png'), fullPage: true }).catch(() => {});
          throw e;
        }
      }),
  };
  await t.test('opens / and shows the tree with a loaded thumbnail', async () => {
    await page.goto(`${BASE}/`, { waitUntil: 'domcontentloaded' });
    await page.waitForSelector(sel.folderRow, { timeout: 20_000 });
    await page.waitForSelector(sel.videoRow, { timeout: 20_000 });
    await page.waitForFunction(
      (s) => [...document.querySelectorAll(s)].some((i) => i.complete && i.naturalWidth > 0),
      sel.thumb,
      { timeout: 30_000 },
    );
    // Live updates only count once the websocket is up.
    await page.waitForSelector(`${sel.conn}[data-state="connected"]`, { timeout: 20_000 });
  });

  await t.test('1280x900: the page fits and axe finds nothing serious on the main page', async () => {
    await assertFits(page, '1280x900');
    await assertAxe(page, 'main page');
  });

  const source = process.env.GQL_MEDIA_E2E_VIDEO || findVideo(LIBRARY);
  assert.ok(source && existsSync(source), `no video file to copy (looked in ${LIBRARY})`);
  const name = `e2e-added-${Date.now()}${extname(source)}`;
  const target = join(LIBRARY, name);

  await t.test('a video copied into the library appears without a reload', async () => {
    const marker = await page.evaluate(() => (window.__e2eMarker = Math.random()));
    const t0 = Date.now();
    copyFileSync(source, target);
    added.push(target);
    try {
      await page.waitForSelector(sel.byName(name), { timeout: LIVE_TIMEOUT });
    } catch (e) {
      const w = await page.$eval('[data-testid="watcher-toggle"]', (el) => ({
        enabled: el.dataset.enabled,
        status: document.querySelector('[data-testid="watcher-status"]')?.textContent,
        error: document.querySelector('[data-testid="watcher-error"]')?.textContent,
      }));
      throw new Error(`${name} did not appear within ${LIVE_TIMEOUT} ms; watcher: ${JSON.stringify(w)}`, { cause: e });
    }
    timings.copyToAppearMs = Date.now() - t0;
    // File events are shown, not announced: the live region is for the end of a sync only.
    assert.equal(await page.$eval('[data-testid="announcer"]', (el) => el.textContent), '');
    assert.equal(await page.evaluate(() => window.__e2eMarker), marker, 'the page was reloaded');
  });

  await t.test('the deleted video disappears without a reload', async () => {
    const t0 = Date.now();
    rmSync(target);
    await page.waitForSelector(sel.byName(name), { state: 'detached', timeout: LIVE_TIMEOUT });
    timings.deleteToDisappearMs = Date.now() - t0;
  });

  await t.test('Sync drives the progress bar to DONE', async () => {
    const beforeJob = await page.$eval(sel.progress, (el) => ({ id: el.dataset.jobId ?? '', state: el.dataset.state ?? '' }));
    const t0 = Date.now();
    await page.click(sel.syncButton);
    await page.waitForFunction(
      ({ s, b }) => {
        const el = document.querySelector(s);
        if (!el) return false;
        const { jobId, state, phase } = el.dataset;
        const terminal = ['SUCCEEDED', 'FAILED', 'CANCELLED'].includes(state);
        const fresh = jobId && (jobId !== b.id || !['SUCCEEDED', 'FAILED', 'CANCELLED'].includes(b.state));
        return fresh && (phase === 'DONE' || terminal);
      },
      { s: sel.progress, b: beforeJob },
      { timeout: 60_000 },
    );
    timings.syncClickToDoneMs = Date.now() - t0;
    const p = await page.$eval(sel.progress, (el) => ({ ...el.dataset, now: el.getAttribute('aria-valuenow') }));
    assert.equal(p.state, 'SUCCEEDED', `sync ended ${p.state}`);
    assert.equal(p.now, '100');
    // The end is said once in the polite live region (file events never are).
    await page.waitForFunction(() => /^Sync done: /.test(document.querySelector('[data-testid="announcer"]')?.textContent ?? ''), null, {
      timeout: 5_000,
    });
  });

  await t.test('clicking a video plays it and seeking works', async () => {
    const row = page.locator(sel.videoRow).first();
    const vname = await row.getAttribute('data-name');
    await row.click();
    await page.waitForFunction(
      (s) => {
        const v = document.querySelector(s);
        return v && v.readyState >= 2 && v.currentTime > 0.3 && !v.paused;
      },
      sel.player,
      { timeout: 20_000 },
    );
    // The stream supports Range requests (what seeking needs).
    const range = await page.$eval(sel.player, async (v) => {
      const r = await fetch(v.currentSrc, { headers: { Range: 'bytes=0-99' } });
      await r.arrayBuffer();
      return { status: r.status, contentRange: r.headers.get('content-range') };
    });
    assert.equal(range.status, 206, `stream answered ${range.status} to a Range request`);
    const duration = await page.$eval(sel.player, (v) => v.duration);
    assert.ok(duration > 1, `duration ${duration}`);
    const targetTime = Math.max(0.5, duration - 1.2);
    const seeked = await page.$eval(
      sel.player,
      (v, to) =>
        new Promise((ok, fail) => {
          const timer = setTimeout(() => fail(new Error(`no seeked event (currentTime ${v.currentTime})`)), 15_000);
          v.addEventListener('seeked', () => (clearTimeout(timer), ok(v.currentTime)), { once: true });
          v.currentTime = to;
        }),
      targetTime,
    );
    assert.ok(Math.abs(seeked - targetTime) < 0.6, `seeked to ${seeked}, wanted ${targetTime}`);
    timings.playedVideo = vname;
    await page.waitForTimeout(300);
    await page.$eval(sel.player, (v) => v.pause());
    await page.screenshot({ path: join(ARTIFACTS, 'e2e-1280x900.png') });
    await assertAxe(page, 'player');
    await assertFits(page, '1280x900 with the player');
  });

  await t.test('keyboard only: walk the tree into a folder to a video and play it', async () => {
    const before = await page.$eval(sel.player, (v) => v.dataset.videoId);
    // From a fresh load: the first Tab stop is the skip link, and it lands in the tree.
    await page.reload({ waitUntil: 'domcontentloaded' });
    await page.waitForSelector(sel.videoRow, { timeout: 20_000 });
    await page.waitForSelector('[role="tree"] [role="treeitem"][tabindex="0"]', { timeout: 10_000 });
    await page.keyboard.press('Tab');
    let f = await focused(page);
    assert.equal(f?.testid, 'skip-link', `the first Tab stop is ${JSON.stringify(f)}`);
    assert.ok(f.ring && f.onScreen, 'the focused skip link does not show');
    await page.keyboard.press('Enter');
    assert.equal((await focused(page))?.role, 'treeitem', 'the skip link did not land in the tree');
    // Back up through every control to the skip link: the focus shows on each one.
    for (let i = 0; i < 20; i++) {
      await page.keyboard.press('Shift+Tab');
      f = await focused(page);
      assert.ok(f && f.ring && f.onScreen, `focus is not visible on ${JSON.stringify(f)}`);
      if (f.testid === 'skip-link') break;
    }
    assert.equal(f?.testid, 'skip-link', 'Shift+Tab did not get back to the top');
    await page.keyboard.press('Enter');
    f = await focused(page);
    assert.equal(f?.role, 'treeitem', 'the skip link did not land in the tree');
    await page.keyboard.press('Home');
    // Down through the items; open the first folder that has videos and go into it, play the
    // first video found below the top level.
    let played = null;
    for (let step = 0; step < 40 && !played; step++) {
      f = await focused(page);
      assert.equal(f?.role, 'treeitem', `focus left the tree at step ${step}`);
      assert.ok(f.ring, `focus is not visible on ${f.name ?? f.testid}`);
      // Level 1 is a library root, 2 its entries: 3 is inside a folder.
      if (f.testid === 'video-row' && f.level >= 3) {
        await page.keyboard.press('Enter');
        played = f;
      } else if (f.testid === 'folder-row' && f.expanded === 'false' && f.count > 0) {
        await page.keyboard.press('ArrowRight');
        await page.waitForFunction(
          (id) => {
            const row = document.querySelector(`[data-testid="folder-row"][data-id="${id}"]`);
            return row?.getAttribute('aria-expanded') === 'true' && row.parentElement.querySelector(':scope > [role="group"] > li > [role="treeitem"]');
          },
          f.id,
          { timeout: 10_000 },
        );
        await page.keyboard.press('ArrowRight');
        const inside = await focused(page);
        assert.equal(inside?.level, f.level + 1, `ArrowRight on the open ${JSON.stringify(f)} went to ${JSON.stringify(inside)}`);
      } else {
        await page.keyboard.press('ArrowDown');
      }
    }
    assert.ok(played, 'no video below a folder was reached');
    await page.waitForFunction(
      ({ s, id }) => {
        const v = document.querySelector(s);
        return v?.dataset.videoId === id && v.readyState >= 2 && v.currentTime > 0.2 && !v.paused;
      },
      { s: sel.player, id: played.id },
      { timeout: 20_000 },
    );
    assert.notEqual(played.id, before, 'the keyboard played what the mouse played before the reload');
    // Left goes up to the folder, Left again closes it; focus stays visible and in the tree.
    await page.keyboard.press('ArrowLeft');
    const parent = await focused(page);
    assert.equal(parent.testid, 'folder-row');
    assert.equal(parent.level, played.level - 1);
    assert.equal(parent.expanded, 'true');
    await page.keyboard.press('ArrowLeft');
    assert.equal((await focused(page)).expanded, 'false');
    // A refetch of everything (as after a reconnect) leaves the keyboard focus where it was.
    await page.evaluate(() => window.gqlMedia.refreshAll('e2e'));
    await page.waitForTimeout(100); // child lists render at most once per frame
    assert.equal((await focused(page))?.id, parent.id, 'a refetch took the focus away');
    await page.$eval(sel.player, (v) => v.pause());
  });

  await t.test('search finds videos by name; the results work by keyboard like the tree', async () => {
    const playing = await page.$eval(sel.player, (v) => v.dataset.videoId);
    await page.fill('[data-testid="search-input"]', extname(source));
    await page.waitForSelector('[data-testid="search-result"]', { timeout: 10_000 });
    assert.equal(await page.locator('[data-testid="tree"]').isHidden(), true, 'the tree is still shown beside the results');
    // Down from the box into the results, down to one other than the video playing, Enter.
    await page.keyboard.press('ArrowDown');
    let f = await focused(page);
    for (let i = 0; i < 10 && f?.id === playing; i++) {
      await page.keyboard.press('ArrowDown');
      f = await focused(page);
    }
    assert.equal(f?.testid, 'search-result', `focus is on ${JSON.stringify(f)}`);
    assert.ok(f.ring, 'focus is not visible on the result');
    assert.notEqual(f.id, playing, 'no other video than the one playing was found');
    await page.keyboard.press('Enter');
    await page.waitForFunction(({ s, w }) => document.querySelector(s)?.dataset.videoId === w, { s: sel.player, w: f.id }, { timeout: 10_000 });
    const result = page.locator(`[data-testid="search-result"][data-id=${JSON.stringify(f.id)}]`);
    assert.equal(await result.evaluate((el) => el.classList.contains('playing')), true, 'the result is not marked as playing');
    await page.$eval(sel.player, (v) => v.pause());
    await page.fill('[data-testid="search-input"]', '');
    await page.locator('[data-testid="tree"]').waitFor({ state: 'visible', timeout: 10_000 });
  });

  await t.test('the GraphiQL playground loads offline and runs a subscription', async () => {
    const p2 = await page.context().newPage();
    p2.on('pageerror', (e) => pageErrors.push(`playground: ${e}`));
    await p2.goto(`${BASE}/playground`, { waitUntil: 'domcontentloaded' });
    await p2.waitForSelector('.graphiql-container', { timeout: 30_000 });
    await p2.waitForSelector('.graphiql-query-editor .monaco-editor', { timeout: 30_000 });
    // A subscription, run over the websocket from the bundled GraphiQL.
    await p2.click('.graphiql-query-editor .monaco-editor');
    await p2.keyboard.press('Control+A');
    await p2.keyboard.press('Delete');
    await p2.keyboard.type('subscription Watcher { watcherStatus { enabled mode roots ');
    await p2.keyboard.press('Escape');
    // GraphiQL picks the operation (and so the websocket transport) from the parsed document,
    // which it updates after a debounce: wait until the tab is named after it.
    await p2.waitForFunction(() => /Watcher/.test(document.querySelector('.graphiql-tab')?.textContent ?? ''), null, {
      timeout: 10_000,
    });
    await p2.waitForTimeout(700);
    await p2.keyboard.press('Control+Enter');
    try {
      await p2.waitForFunction(() => /"watcherStatus"/.test(document.querySelector('.graphiql-response')?.textContent ?? ''), null, {
        timeout: 20_000,
      });
    } catch (e) {
      await p2.screenshot({ path: join(ARTIFACTS, 'e2e-playground-failure.png') });
      throw e;
    }
    await p2.waitForTimeout(300);
    await p2.screenshot({ path: join(ARTIFACTS, 'e2e-playground.png') });
    await p2.close();
  });

  assert.ok(!failed, 'a step failed');
  assert.deepEqual(foreignRequests, [], 'the UI tried to load something from outside the server');
  assert.deepEqual(pageErrors, [], 'uncaught errors in the page');
  console.log(`screenshot: ${join(ARTIFACTS, 'e2e-1280x900.png')} (${basename(source)} copied as ${name})`);
});

test('web UI on a phone (390x844): fits, touch targets, search from the icon, player above the tree', { skip, timeout: 120_000 }, async () => {
  const phone = await newPage({ viewport: PHONE, isMobile: true, hasTouch: true });
  try {
    await phone.goto(`${BASE}/`, { waitUntil: 'domcontentloaded' });
    await phone.waitForSelector(sel.videoRow, { timeout: 20_000 });
    await phone.waitForSelector(`${sel.conn}[data-state="connected"]`, { timeout: 20_000 });
    await assertFits(phone, '390x844');
    assert.deepEqual(await smallTargets(phone), [], 'touch targets under 40 px');
    await assertAxe(phone, 'main page (phone)');

    // The header shows a search icon; it opens the box.
    const input = phone.locator('[data-testid="search-input"]');
    assert.equal(await input.isVisible(), false, 'the search box should be folded into an icon');
    await phone.tap('[data-testid="search-toggle"]');
    await input.waitFor({ state: 'visible', timeout: 5_000 });
    assert.equal(await input.evaluate((el) => el === document.activeElement), true, 'the opened search box has no focus');
    await phone.keyboard.type(extname(findVideo(LIBRARY) ?? '.mp4'));
    const result = phone.locator('[data-testid="search-result"]').first();
    await result.waitFor({ timeout: 10_000 });
    const id = await result.getAttribute('data-id');
    await result.tap();
    await phone.waitForFunction((s) => document.querySelector(s)?.readyState >= 2, sel.player, { timeout: 20_000 });
    await phone.$eval(sel.player, (v) => v.pause());
    assert.equal(await phone.$eval(sel.player, (v) => v.dataset.videoId), id);
    // The player comes before the list on a narrow screen.
    const [viewerTop, libraryTop] = await phone.evaluate(() =>
      ['[data-testid="viewer"]', '.library'].map((q) => document.querySelector(q).getBoundingClientRect().top),
    );
    assert.ok(viewerTop < libraryTop, `player at ${viewerTop}, list at ${libraryTop}`);
    await assertFits(phone, '390x844 with the player');
    assert.deepEqual(await smallTargets(phone), [], 'touch targets under 40 px (with the player)');
    await assertAxe(phone, 'player (phone)');
    await phone.evaluate(() => window.scrollTo(0, 0));
    await phone.screenshot({ path: join(ARTIFACTS, 'e2e-390x844.png') });
    // Closing the search brings the tree back.
    await phone.tap('[data-testid="search-toggle"]');
    await phone.locator('[data-testid="tree"]').waitFor({ state: 'visible', timeout: 10_000 });
    await assertFits(phone, '390x844 with the tree');
    await phone.screenshot({ path: join(ARTIFACTS, 'e2e-390x844-full.png'), fullPage: true });
  } catch (e) {
    await phone.screenshot({ path: join(ARTIFACTS, 'e2e-390x844-failure.png'), fullPage: true }).catch(() => {});
    throw e;
  } finally {
    await phone.context().close();
  }
  assert.deepEqual(pageErrors, [], 'uncaught errors in the page');
});
