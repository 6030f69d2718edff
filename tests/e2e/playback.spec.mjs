// Playback end to end in headless Chromium (issue 14): sources Chromium cannot play as they are
// (MPEG-4 Part 2 in AVI, H.264 and HEVC in Matroska) play through the server's HLS, seek to the middle,
// and a sidecar subtitle track shows. tests/e2e/test_playback_browser.py starts the server.
//
//   GQL_MEDIA_E2E_URL=http://127.0.0.1:8765 node --test tests/e2e/playback.spec.mjs
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { BASE, browserSession } from './session.mjs';

const skip = !BASE ? 'set GQL_MEDIA_E2E_URL (tests/e2e/test_playback_browser.py does)' : false;

const byName = (name) => `[data-testid="video-row"][data-name=${JSON.stringify(name)}]`;
const PLAYER = '[data-testid="player"]';

let page;
const onPage = (p) => {
  page = p;
  page.on('console', (m) => {
    if (m.type() === 'error') console.log(`[browser console] ${m.text()}`);
  });
};
const session = browserSession(skip, 'e2e-playback.png', onPage, ['--autoplay-policy=no-user-gesture-required']);

async function playAndSeek(name, method) {
  await page.click(byName(name));
  await page.waitForFunction(
    ([s, m]) => {
      const v = document.querySelector(s);
      return v && v.dataset.playbackMethod === m && v.readyState >= 2 && v.currentTime > 0.3 && !v.paused;
    },
    [PLAYER, method],
    { timeout: 45_000 },
  );
  const status = await page.textContent('[data-testid="playback-status"]');
  assert.match(status, method === 'TRANSCODE' ? /^transcoding: / : /^remuxing: /);
  assert.equal(await page.isVisible('[data-testid="playback-error"]'), false);
  const duration = await page.$eval(PLAYER, (v) => v.duration);
  assert.ok(duration > 10 && duration < 16, `${name}: duration ${duration}`);
  const middle = duration / 2;
  const seeked = await page.$eval(
    PLAYER,
    (v, to) =>
      new Promise((ok, fail) => {
        const timer = setTimeout(() => fail(new Error(`no seek to ${to} (currentTime ${v.currentTime})`)), 30_000);
        // hls.js may nudge playback over a tiny gap (a seek of its own): wait for ours.
        const onSeeked = () => {
          if (Math.abs(v.currentTime - to) >= 1.0) return;
          clearTimeout(timer);
          v.removeEventListener('seeked', onSeeked);
          ok(v.currentTime);
        };
        v.addEventListener('seeked', onSeeked);
        v.currentTime = to;
      }),
    middle,
  );
  assert.ok(Math.abs(seeked - middle) < 1.0, `${name}: seeked to ${seeked}, wanted ${middle}`);
  // It plays on from there (the segment of the middle was made, then the next ones).
  await page.waitForFunction(([s, to]) => document.querySelector(s).currentTime > to + 0.5, [PLAYER, middle], {
    timeout: 30_000,
  });
  return middle;
}

test('playback: AVI, H.264 MKV and HEVC MKV play and seek through HLS; a subtitle track shows', { skip, timeout: 240_000 }, async () => {
  await page.goto(`${BASE}/`, { waitUntil: 'domcontentloaded' });
  await page.waitForSelector(byName('old camera.avi'), { timeout: 30_000 });

  await playAndSeek('old camera.avi', 'TRANSCODE');
  // H.264 copied into MPEG-TS segments (no transcode): what hls.js plays from a remux.
  await playAndSeek('h264 clip.mkv', 'REMUX');
  const middle = await playAndSeek('hevc clip.mkv', 'TRANSCODE');

  // The sidecar "hevc clip.en.srt" is offered; chosen, its cue shows at the middle.
  const options = await page.$$eval('[data-testid="subtitle-select"] option', (os) => os.map((o) => o.textContent));
  assert.deepEqual(options, ['Subtitles off', 'en (en)']);
  await page.selectOption('[data-testid="subtitle-select"]', '0');
  await page.$eval(PLAYER, (v, to) => { v.currentTime = to; }, middle);
  const cue = await page.waitForFunction(
    (s) => {
      const track = document.querySelector(s).textTracks[0];
      return track && track.mode === 'showing' && track.activeCues && track.activeCues.length > 0 && track.activeCues[0].text;
    },
    PLAYER,
    { timeout: 20_000 },
  );
  assert.equal(await cue.jsonValue(), 'Hello from the middle');

  // A file that cannot be played says so instead of a black player.
  await page.click(byName('notes.mp4'));
  await page.waitForSelector('[data-testid="playback-error"]:not([hidden])', { timeout: 20_000 });
  assert.match(await page.textContent('[data-testid="playback-error"]'), /cannot be played/);
  assert.deepEqual(session.pageErrors, []);
});
