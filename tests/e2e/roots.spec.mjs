// Library folders in the web UI (issue 15): add one by path, see it in the tree, a refusal shown
// with its code, remove it. tests/e2e/test_roots_browser.py starts the server and checks the files.
//
//   GQL_MEDIA_E2E_URL=... GQL_MEDIA_E2E_LIBRARY=... GQL_MEDIA_E2E_EXTRA=... node --test tests/e2e/roots.spec.mjs
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { BASE, browserSession } from './session.mjs';

const LIBRARY = process.env.GQL_MEDIA_E2E_LIBRARY ?? '';
const EXTRA = process.env.GQL_MEDIA_E2E_EXTRA ?? '';
const skip = !BASE ? 'set GQL_MEDIA_E2E_URL (tests/e2e/test_roots_browser.py does)' : false;

const rootItem = (path) => `[data-testid="root-list"] li[data-root=${JSON.stringify(path)}]`;
const folderRow = (name) => `[data-testid="folder-row"][data-name=${JSON.stringify(name)}]`;

let page;
const session = browserSession(skip, 'e2e-roots.png', (p) => {
  page = p;
  page.on('dialog', (d) => void d.accept());
});

test('a library folder is added by path, refused with a reason, and removed', { skip, timeout: 240_000 }, async () => {
  await page.goto(BASE + '/');
  await page.waitForSelector('body[data-ready="true"]', { timeout: 60_000 });
  await page.click('[data-testid="roots-panel"] summary');
  await page.waitForSelector(rootItem(LIBRARY), { timeout: 30_000 });

  await page.fill('[data-testid="root-path"]', EXTRA);
  await page.click('[data-testid="root-add"]');
  await page.waitForSelector(rootItem(EXTRA), { timeout: 30_000 });
  // The page refetched on ROOT_ADDED: the new root's folder is in the tree.
  const extraName = EXTRA.split('/').pop();
  await page.waitForSelector(folderRow(extraName), { timeout: 60_000 });
  assert.match(await page.textContent('[data-testid="root-message"]'), /^Added /);

  await page.fill('[data-testid="root-path"]', `${LIBRARY}/inside`);
  await page.click('[data-testid="root-add"]');
  await page.waitForFunction(() => /ROOT_OVERLAP/.test(document.querySelector('[data-testid="root-message"]')?.textContent ?? ''), null, { timeout: 30_000 });
  assert.equal(await page.getAttribute('[data-testid="root-message"]', 'role'), 'alert');

  await page.click(`${rootItem(EXTRA)} [data-testid="root-remove"]`);
  await page.waitForSelector(rootItem(EXTRA), { state: 'detached', timeout: 30_000 });
  await page.waitForSelector(folderRow(extraName), { state: 'detached', timeout: 60_000 });
  assert.match(await page.textContent('[data-testid="root-message"]'), /files were not touched/);
  // The folder from the command line has no way out but its configuration.
  await page.click(`${rootItem(LIBRARY)} [data-testid="root-remove"]`);
  await page.waitForFunction(() => /ROOT_FROM_CONFIG/.test(document.querySelector('[data-testid="root-message"]')?.textContent ?? ''), null, { timeout: 30_000 });
  assert.deepEqual(session.pageErrors, []);
});
