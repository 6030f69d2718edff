// A video whose file changes while it plays (tests/e2e/test_playback_change_browser.py starts the
// server and makes the files): the server refuses a segment of the old stream, and the player asks
// for the stream again and plays on from where it was (or from the start when the new file ends
// before that), showing no failure.
//
//   GQL_MEDIA_E2E_URL=... GQL_MEDIA_E2E_PLAYING=... GQL_MEDIA_E2E_LONGER=... GQL_MEDIA_E2E_SHORTER=... \
//     node --test tests/e2e/playback-change.spec.mjs
import assert from 'node:assert/strict';
import { copyFileSync, renameSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { test } from 'node:test';

import { BASE, browserSession } from './session.mjs';

const PLAYING = process.env.GQL_MEDIA_E2E_PLAYING ?? '';
const LONGER = process.env.GQL_MEDIA_E2E_LONGER ?? '';
const SHORTER = process.env.GQL_MEDIA_E2E_SHORTER ?? '';
const skip =
  !BASE || !PLAYING || !LONGER || !SHORTER
    ? 'set GQL_MEDIA_E2E_URL, _PLAYING, _LONGER and _SHORTER (test_playback_change_browser.py does)'
    : false;

const PLAYER = '[data-testid="player"]';
const refusals = [];
const session = browserSession(
  skip,
  'e2e-playback-change.png',
  (page) => {
    page.on('console', (m) => {
      if (m.type() === 'error') console.log(`[browser console] ${m.text()}`);
    });
    page.on('response', (r) => {
      if (r.url().includes('/playback/') && (r.status() === 404 || r.status() === 409)) {
        refusals.push(`${r.status()} ${new URL(r.url()).pathname}`);
      }
    });
  },
  ['--autoplay-policy=no-user-gesture-required'],
);

/** The file at PLAYING becomes `source`, as a download finishes: written under a dotfile's name, then renamed. */
function replaceWith(source) {
  const hidden = join(dirname(PLAYING), `.${basename(PLAYING)}.part`);
  copyFileSync(source, hidden);
  renameSync(hidden, PLAYING);
}

/** Whether `check()` holds within `timeoutMs` (the page's network events reach this process a little after the page). */
async function eventually(check, timeoutMs = 10_000) {
  for (const end = Date.now() + timeoutMs; Date.now() < end; await new Promise((ok) => setTimeout(ok, 100))) {
    if (check()) return true;
  }
  return check();
}

const player = (page) => page.$eval(PLAYER, (v) => ({ at: v.currentTime, duration: v.duration, paused: v.paused }));

/** Waits until the player plays a stream of `duration` s (+-2) past `beyond` s; returns where it is. */
async function playingStream(page, duration, beyond) {
  await page.waitForFunction(
    ([s, d, b]) => {
      const v = document.querySelector(s);
      return Math.abs(v.duration - d) < 2 && !v.paused && v.currentTime > b;
    },
    [PLAYER, duration, beyond],
    { timeout: 90_000 },
  );
  assert.equal(await page.isVisible('[data-testid="playback-error"]'), false, 'no failure is shown');
  return player(page);
}

test('a video whose file changes while it plays plays on', { skip, timeout: 240_000 }, async () => {
  const page = session.page;
  await page.goto(`${BASE}/`, { waitUntil: 'domcontentloaded' });
  await page.click(`[data-testid="video-row"][data-name=${JSON.stringify(basename(PLAYING))}]`);
  await page.waitForFunction(
    (s) => {
      const v = document.querySelector(s);
      return v && v.dataset.playbackMethod === 'TRANSCODE' && v.currentTime > 1.0 && !v.paused && v.duration > 80;
    },
    PLAYER,
    { timeout: 60_000 },
  );

  // A longer file than where it plays: once a segment is refused, the new stream plays on from there.
  const changedAt = (await player(page)).at; // (over 1 s: played that far)
  replaceWith(LONGER);
  await page.waitForFunction(
    (s) => {
      const v = document.querySelector(s);
      return v.duration < 50 && v.currentTime > 0;
    },
    PLAYER,
    { timeout: 90_000 },
  );
  const resumed = await player(page);
  assert.ok(await eventually(() => refusals.length > 0), 'the server refused a segment of the old stream');
  assert.ok(resumed.at >= changedAt, `it resumed where it was (${changedAt} s or later): ${JSON.stringify(resumed)}`);
  await playingStream(page, 40, resumed.at + 0.5);

  // A file that ends before where it plays: the new stream plays from its start.
  const refusedBefore = refusals.length;
  replaceWith(SHORTER);
  const restarted = await playingStream(page, 10, 0.5);
  assert.ok(restarted.at < 10, JSON.stringify(restarted));
  assert.ok(
    await eventually(() => refusals.length > refusedBefore),
    `a segment of the 40 s stream was refused: ${refusals.join(', ')}`,
  );
  assert.deepEqual(session.pageErrors, []);
});
