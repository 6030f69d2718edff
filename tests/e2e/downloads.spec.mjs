// HLS downloads in the web UI (issue 15 item 6): a half-finished download shows why it is not
// merged with its segments; a complete one (auto-merge off) is merged with its Merge button and
// the mp4 shows in the tree. tests/e2e/test_downloads_browser.py starts the server.
//
//   GQL_MEDIA_E2E_URL=... GQL_MEDIA_E2E_LIBRARY=... node --test tests/e2e/downloads.spec.mjs
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';

import { ARTIFACTS, BASE, browserSession, requireUi } from './session.mjs';

const AXE_SCRIPT = requireUi.resolve('axe-core/axe.min.js');
const LIBRARY = process.env.GQL_MEDIA_E2E_LIBRARY ?? '';
const skip = !BASE || !LIBRARY ? 'set GQL_MEDIA_E2E_URL and GQL_MEDIA_E2E_LIBRARY (tests/e2e/test_downloads_browser.py does)' : false;

const item = (name) => `[data-testid="download-item"][data-path=${JSON.stringify(`${LIBRARY}/Downloads/${name}`)}]`;
const folderRow = (name) => `[data-testid="folder-row"][data-name=${JSON.stringify(name)}]`;
const videoRow = (name) => `[data-testid="video-row"][data-name=${JSON.stringify(name)}]`;

let page;
const session = browserSession(skip, 'e2e-downloads.png', (p) => {
  page = p;
});

/** axe-core's serious or critical findings inside the downloads panel. */
async function axeViolations(p) {
  if (!(await p.evaluate(() => 'axe' in window))) await p.addScriptTag({ path: AXE_SCRIPT });
  return p.evaluate(async () => {
    const r = await window.axe.run('[data-testid="downloads-panel"]', { resultTypes: ['violations'] });
    return r.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical').map((v) => `${v.id}: ${v.help}`);
  });
}

test('a half-finished download says why; a complete one is merged by its button', { skip, timeout: 240_000 }, async () => {
  await page.goto(BASE + '/');
  await page.waitForSelector('body[data-ready="true"]', { timeout: 60_000 });
  await page.waitForSelector('[data-testid="downloads-panel"]:not([hidden])', { timeout: 30_000 });

  // Half-finished: its reason (the first missing segment) and its segments, present/expected.
  const partial = item('partial');
  await page.waitForSelector(partial, { timeout: 30_000 });
  assert.equal(await page.getAttribute(partial, 'data-state'), 'WAITING');
  assert.equal(await page.textContent(`${partial} [data-testid="download-reason"]`), 'not merged: 1 of 3 segments are missing: index2.ts');
  assert.equal(await page.textContent(`${partial} [data-testid="download-segments"]`), '2/3 segments');

  // Complete but not merged (auto-merge is off): READY, with a labelled Merge button.
  const lecture = item('lecture');
  assert.equal(await page.getAttribute(lecture, 'data-state'), 'READY');
  assert.match(await page.textContent(`${lecture} [data-testid="download-reason"]`), /^not merged: /);
  const label = await page.getAttribute(`${lecture} [data-testid="download-merge"]`, 'aria-label');
  assert.equal(label, 'Merge the HLS download Downloads/lecture into an mp4');
  assert.deepEqual(await axeViolations(page), []);
  await page.screenshot({ path: join(ARTIFACTS, 'e2e-downloads-before.png'), fullPage: true });

  // The tree shows the Downloads folder without any video in it yet.
  await page.click(folderRow('Downloads'));
  await page.waitForSelector(`${folderRow('Downloads')}[aria-expanded="true"]`, { timeout: 10_000 });
  assert.equal(await page.$(videoRow('lecture.mp4')), null);

  await page.click(`${lecture} [data-testid="download-merge"]`);
  // Merged: it leaves the list, the page says so, and the mp4 arrives in the tree live.
  await page.waitForSelector(lecture, { state: 'detached', timeout: 60_000 });
  assert.match(await page.textContent('[data-testid="download-message"]'), /^Merged Downloads\/lecture into .*\/Downloads\/lecture\.mp4\.$/);
  await page.waitForSelector(videoRow('lecture.mp4'), { timeout: 60_000 });
  assert.ok(await page.$(partial), 'the half-finished download is still listed');

  // By keyboard: Enter on the half-finished download's Merge button is refused with the reason, in an alert.
  await page.focus(`${partial} [data-testid="download-merge"]`);
  assert.equal(await page.evaluate(() => document.activeElement?.getAttribute('aria-label')), 'Merge the HLS download Downloads/partial into an mp4');
  await page.keyboard.press('Enter');
  await page.waitForFunction(() => /^Downloads\/partial was not merged: /.test(document.querySelector('[data-testid="download-message"]')?.textContent ?? ''), null, { timeout: 30_000 });
  assert.equal(await page.getAttribute('[data-testid="download-message"]', 'role'), 'alert');
  console.log(`refusal shown: ${await page.textContent('[data-testid="download-message"]')}`);
  await page.waitForSelector(`${partial}[data-state="WAITING"]`, { timeout: 30_000 });
  // The panel fits a phone.
  await page.setViewportSize({ width: 390, height: 844 });
  const widths = await page.evaluate(() => ({
    page: document.documentElement.scrollWidth,
    panel: document.querySelector('[data-testid="downloads-panel"]').getBoundingClientRect().right,
  }));
  assert.ok(widths.page <= 390 && widths.panel <= 390, `sideways scroll at 390 px: ${JSON.stringify(widths)}`);
  await page.screenshot({ path: join(ARTIFACTS, 'e2e-downloads-390.png'), fullPage: true });
  assert.deepEqual(session.pageErrors, []);
});
