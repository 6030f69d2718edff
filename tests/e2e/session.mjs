// What the browser specs share: where the repository and the artifacts are, the server's URL,
// and one headless Chromium page (1280x860) whose page errors are collected.
// Debian's chromium, or $CHROMIUM; playwright-core and axe-core come from frontend-example's packages.
import { execFileSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join, resolve } from 'node:path';
import { after, before } from 'node:test';
import { fileURLToPath } from 'node:url';

export const repo = resolve(fileURLToPath(new URL('.', import.meta.url)), '../..');
export const requireUi = createRequire(join(repo, 'frontend-example', 'package.json'));
export const BASE = (process.env.GQL_MEDIA_E2E_URL ?? '').replace(/\/$/, '');
export const ARTIFACTS = process.env.GQL_MEDIA_E2E_ARTIFACTS ?? join(repo, 'test-artifacts');

/** A headless Chromium with one page; `extraArgs` go to the browser. Returns { browser, page, pageErrors }. */
export async function openSession(extraArgs = []) {
  const { chromium } = requireUi('playwright-core');
  mkdirSync(ARTIFACTS, { recursive: true });
  const executablePath = process.env.CHROMIUM ?? execFileSync('sh', ['-c', 'command -v chromium'], { encoding: 'utf8' }).trim();
  const browser = await chromium.launch({
    executablePath,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', ...extraArgs],
    timeout: 60_000,
  });
  const page = await (await browser.newContext({ viewport: { width: 1280, height: 860 } })).newPage();
  const pageErrors = [];
  page.on('pageerror', (e) => pageErrors.push(String(e)));
  return { browser, page, pageErrors };
}

/** A last full-page screenshot (test-artifacts/`screenshot`), then the browser closed; a session never opened is fine. */
export async function closeSession(session, screenshot) {
  const page = session?.page;
  if (page && !page.isClosed()) await page.screenshot({ path: join(ARTIFACTS, screenshot), fullPage: true }).catch(() => {});
  await session?.browser.close();
}

/**
 * One session for a spec's tests: opened before them (unless `skip`), `ready(page)` called with its
 * page, closed after them with a last screenshot. Returns the session's holder ({ page, pageErrors } once open).
 */
export function browserSession(skip, screenshot, ready = () => {}, extraArgs = []) {
  const holder = { page: undefined, pageErrors: [] };
  let session;
  before(async () => {
    if (skip) return;
    session = await openSession(extraArgs);
    Object.assign(holder, session);
    ready(session.page);
  });
  after(() => closeSession(session, screenshot));
  return holder;
}
