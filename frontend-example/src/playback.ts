// Playback of one video: ask the server how (Video.playback), then play the file (DIRECT) or its
// HLS stream (REMUX / TRANSCODE: with hls.js, or natively where there is no MSE), show
// the method and its reason, offer the subtitle tracks, and say so when it fails: never a black box.
import type Hls from 'hls.js';
import * as api from './api';
import { httpish } from './dom';
import { h } from './format';

export type PlaybackMethod = 'DIRECT' | 'REMUX' | 'TRANSCODE' | 'UNPLAYABLE';

export interface PlaybackInfo {
  method: PlaybackMethod;
  url: string | null;
  mimeType: string | null;
  reason: string | null;
}

export interface SubtitleInfo {
  language: string | null;
  label: string;
  url: string;
}

const PLAYBACK = /* GraphQL */ `
  query Playback($id: ID!, $codecs: [String!]) {
    node(id: $id) {
      ... on Video {
        playback(directCodecs: $codecs) { method url mimeType reason }
        subtitles { language label url }
      }
    }
  }
`;

// What this browser may play beyond the defaults every browser plays (H.264/AAC/MP3 in MP4,
// VP8/VP9/AV1 with Opus/Vorbis in WebM): RFC 6381 strings the server understands.
const CANDIDATES: [string, string][] = [
  ['hvc1', 'video/mp4; codecs="hvc1.1.6.L93.B0"'],
  ['avc1.6e0028', 'video/mp4; codecs="avc1.6E0028"'],
  ['ac-3', 'audio/mp4; codecs="ac-3"'],
  ['ec-3', 'audio/mp4; codecs="ec-3"'],
  ['flac', 'audio/mp4; codecs="flac"'],
  ['opus', 'audio/mp4; codecs="opus"'],
];

/** The codecs this browser says it plays, from MediaSource.isTypeSupported and canPlayType. */
export function directCodecs(video: HTMLVideoElement): string[] {
  const found: string[] = [];
  const mse = typeof MediaSource !== 'undefined' ? MediaSource : null;
  for (const [name, type] of CANDIDATES) {
    // Where MSE is there (hls.js plays the streams through it), it must agree. Safari on iPhone
    // has none: it plays files and HLS natively, so <video> alone answers (HEVC as hvc1 there).
    const viaMse = mse ? mse.isTypeSupported(type) : true;
    // A file played as it is goes through <video src>: that element must agree too.
    if (viaMse && video.canPlayType(type) !== '') found.push(name);
  }
  return found;
}

function describe(p: PlaybackInfo): string {
  if (p.method === 'DIRECT') return 'Playing the file as it is';
  if (p.method === 'UNPLAYABLE') return `Cannot play: ${p.reason ?? 'unknown reason'}`;
  const reason = p.reason ?? '';
  if (p.method === 'TRANSCODE') return reason.startsWith('transcoding') ? reason : `transcoding: ${reason}`;
  return `remuxing: ${reason}`;
}

// The server makes a remuxed or transcoded segment before it sends its first byte: under load that
// can take longer than hls.js's default of 10 s, after which hls.js drops the request and asks again.
const ON_DEMAND_SEGMENTS = {
  default: {
    maxTimeToFirstByteMs: 30_000,
    maxLoadTimeMs: 120_000,
    timeoutRetry: { maxNumRetry: 4, retryDelayMs: 0, maxRetryDelayMs: 0 },
    errorRetry: { maxNumRetry: 6, retryDelayMs: 1000, maxRetryDelayMs: 8000 },
  },
};

// A stream the server refuses part of because its file changed under it: 409 for a segment being
// made as the change landed, 404 for one the new file no longer has (it is shorter). The stream
// is asked for again and resumes where it was, once the stream asked for last has played (a refusal
// of a stream just asked for is no change: it is shown).
const RESUMABLE_STATUS = new Set([404, 409]);

const MEDIA_ERRORS: Record<number, string> = {
  1: 'playback was aborted',
  2: 'a network error stopped the download',
  3: 'the video could not be decoded',
  4: 'this browser cannot play this format',
};

export class Playback {
  private hls: Hls | null = null;
  private current: string | null = null;
  private retriedWithoutCodecs = false;
  // Whether the stream asked for last played (a segment loaded): a refusal may ask for it again.
  private playedSinceAsked = true;
  readonly status: HTMLElement;
  readonly failure: HTMLElement;
  readonly subtitleSelect: HTMLSelectElement;

  constructor(
    private readonly video: HTMLVideoElement,
    wrap: HTMLElement,
  ) {
    this.failure = h('div', { class: 'player-failure', role: 'alert', 'data-testid': 'playback-error', hidden: '' });
    wrap.append(this.failure);
    this.status = h('p', { class: 'playback-status', 'data-testid': 'playback-status', 'aria-live': 'polite' });
    this.subtitleSelect = h('select', { 'data-testid': 'subtitle-select', 'aria-label': 'Subtitles', hidden: '' });
    this.subtitleSelect.addEventListener('change', () => this.showTrack(Number(this.subtitleSelect.value)));
    wrap.after(h('div', { class: 'playback-bar' }, this.status, this.subtitleSelect));
    video.addEventListener('error', () => this.onMediaError());
    video.addEventListener('playing', () => (this.playedSinceAsked = true));
  }

  /** Play video ``id``: ask the server how, then start it. */
  async start(id: string): Promise<void> {
    this.current = id;
    this.retriedWithoutCodecs = false;
    this.playedSinceAsked = true;
    // Stop what played before: its stream must not keep loading, nor be taken for this one.
    this.detach();
    delete this.video.dataset.playbackMethod;
    this.video.removeAttribute('src');
    this.video.load();
    await this.load(id, directCodecs(this.video));
  }

  private async load(id: string, codecs: string[], startAtS = -1): Promise<void> {
    this.hideFailure();
    this.status.textContent = startAtS >= 0 ? 'The file changed: reloading…' : 'Preparing…';
    let result: { node: { playback: PlaybackInfo; subtitles: SubtitleInfo[] } | null };
    try {
      result = await api.gql(PLAYBACK, { id, codecs });
    } catch (e) {
      this.fail(`could not ask the server how to play it (${e instanceof Error ? e.message : String(e)})`);
      return;
    }
    if (this.current !== id) return; // another video was chosen meanwhile
    const node = result.node;
    if (!node) {
      this.fail('this video is no longer in the library');
      return;
    }
    this.setSubtitles(node.subtitles);
    await this.attach(id, node.playback, startAtS);
  }

  /** ``startAtS``: where to start playing (-1: the start). */
  private async attach(id: string, p: PlaybackInfo, startAtS = -1): Promise<void> {
    this.detach();
    const video = this.video;
    video.dataset.playbackMethod = p.method;
    this.status.textContent = describe(p);
    if (p.method === 'UNPLAYABLE' || !p.url) {
      this.fail(p.reason ?? 'this video cannot be played');
      return;
    }
    const url = httpish(p.url);
    const nativeHls = video.canPlayType('application/vnd.apple.mpegurl') !== '';
    const mse = typeof MediaSource !== 'undefined' || 'ManagedMediaSource' in window;
    if (p.method === 'DIRECT' || (nativeHls && !mse)) {
      this.play(url, startAtS); // the file, or HLS where the browser has only its own player (Safari on iPhone)
    } else {
      // hls.js wherever Media Source Extensions are, though the browser plays HLS itself too (Safari,
      // Chromium since 2025): its retries wait for segments made on demand, and it says which request
      // failed and why (a browser's own player just stalls at a refused segment). It is loaded only
      // when a stream needs it: the page itself stays small.
      const { default: HlsPlayer } = await import('hls.js');
      if (this.current !== id) return;
      if (!HlsPlayer.isSupported()) {
        if (nativeHls) this.play(url, startAtS);
        else this.fail('this browser plays neither HLS nor Media Source Extensions');
        return;
      }
      const hls = new HlsPlayer({ maxBufferLength: 20, fragLoadPolicy: ON_DEMAND_SEGMENTS, startPosition: startAtS });
      hls.on(HlsPlayer.Events.ERROR, (_event, data) => {
        // (hls.js takes a refused segment for a passing error at first, and stalls at it.)
        const status = data.response?.code;
        const refused = data.type === HlsPlayer.ErrorTypes.NETWORK_ERROR && !!status && RESUMABLE_STATUS.has(status);
        if (refused && this.resume(id)) return;
        if (data.fatal) this.fail(`the stream stopped: ${data.details}${status ? ` (HTTP ${status})` : ''}`);
      });
      if (startAtS > 0) {
        // Where it played may lie past the end of the new file (a shorter one): then from its start.
        hls.once(HlsPlayer.Events.LEVEL_LOADED, (_event, data) => {
          if (startAtS < data.details.totalduration - 1) return;
          hls.startLoad(0);
          video.currentTime = 0;
        });
      }
      hls.on(HlsPlayer.Events.FRAG_LOADED, () => (this.playedSinceAsked = true));
      hls.loadSource(url);
      hls.attachMedia(video);
      this.hls = hls;
    }
    video.play().catch(() => {
      /* autoplay may be refused; the controls are there */
    });
  }

  /** The browser's own player on ``url``, from ``startAtS`` (-1: the start). */
  private play(url: string, startAtS: number): void {
    const video = this.video;
    video.src = url;
    if (startAtS > 0) video.addEventListener('loadedmetadata', () => (video.currentTime = startAtS), { once: true });
  }

  /** The stream of ``id`` again, from where it played (its file changed); false when the one asked for last never played. */
  private resume(id: string): boolean {
    if (this.current !== id || !this.playedSinceAsked) return false;
    this.playedSinceAsked = false;
    const at = this.video.currentTime;
    this.detach();
    void this.load(id, directCodecs(this.video), at);
    return true;
  }

  private detach(): void {
    this.hls?.destroy();
    this.hls = null;
    delete this.video.dataset.playbackFailed;
  }

  private setSubtitles(tracks: SubtitleInfo[]): void {
    for (const old of Array.from(this.video.querySelectorAll('track'))) old.remove();
    const options = [h('option', { value: '-1', text: 'Subtitles off' })];
    tracks.forEach((t, i) => {
      const track = h('track', { kind: 'subtitles', label: t.label, src: httpish(t.url) });
      if (t.language) track.srclang = t.language;
      this.video.append(track);
      options.push(h('option', { value: String(i), text: t.label + (t.language ? ` (${t.language})` : '') }));
    });
    this.subtitleSelect.replaceChildren(...options);
    this.subtitleSelect.hidden = tracks.length === 0;
    this.subtitleSelect.value = '-1';
  }

  private showTrack(index: number): void {
    const tracks = this.video.textTracks;
    for (let i = 0; i < tracks.length; i++) tracks[i].mode = i === index ? 'showing' : 'disabled';
  }

  private onMediaError(): void {
    const error = this.video.error;
    if (!error || !this.current || this.hls) return;
    // The browser's own HLS player stopped: its file may have changed (it does not say why).
    if (this.video.dataset.playbackMethod !== 'DIRECT' && this.resume(this.current)) return;
    // A file the browser claimed it plays but does not: ask again, as a browser with no extras.
    if (error.code === 4 && this.video.dataset.playbackMethod === 'DIRECT' && !this.retriedWithoutCodecs) {
      this.retriedWithoutCodecs = true;
      void this.load(this.current, []);
      return;
    }
    this.fail(MEDIA_ERRORS[error.code] ?? `media error ${error.code}`);
  }

  private fail(message: string): void {
    this.video.dataset.playbackFailed = 'true';
    this.failure.textContent = `This video cannot be played: ${message}`;
    this.failure.hidden = false;
  }

  private hideFailure(): void {
    this.failure.hidden = true;
    this.failure.textContent = '';
  }
}
