// The player: what is playing, its details, and keeping them current as the library changes.
import * as api from './api';
import * as Q from './queries';
import type { ShowError } from './banner';
import { Playback } from './playback';
import { fmtDuration, fmtSize, h } from './format';
import { bumpThumbnail, markPlaying } from './rows';

export interface PlayerEls {
  /** Where the playing rows are marked (tree and search results). */
  app: HTMLElement;
  player: HTMLVideoElement;
  playerWrap: HTMLElement;
  playerTitle: HTMLElement;
  playerMeta: HTMLElement;
  /** The player's section: on narrow screens it sits above the tree and is scrolled to. */
  viewer: HTMLElement;
}

/** Where the layout puts the player above the tree (style.css). */
const STACKED = '(max-width: 860px)';

export interface PlayerOptions {
  showError: ShowError;
  /** A fresher copy of a video came back from the server (after regenerating its thumbnail). */
  onVideoUpdated(v: Q.Video): void;
}

export class Player {
  private playingId: string | null = null;
  private readonly playback: Playback;

  constructor(
    private readonly els: PlayerEls,
    private readonly opts: PlayerOptions,
  ) {
    this.playback = new Playback(els.player, els.playerWrap);
  }

  isPlaying = (id: string): boolean => id === this.playingId;

  play = (v: Q.Video): void => {
    const { els } = this;
    this.playingId = v.id;
    markPlaying(els.app, v.id);
    els.playerWrap.classList.add('has-video');
    const again = els.player.dataset.videoId === v.id && !els.player.dataset.playbackFailed;
    els.player.dataset.videoId = v.id;
    this.showMeta(v);
    if (window.matchMedia(STACKED).matches) {
      const top = els.viewer.getBoundingClientRect().top;
      if (top < 0 || top > window.innerHeight / 2) els.viewer.scrollIntoView({ block: 'start' });
    }
    if (again) {
      els.player.play().catch(() => {
        /* autoplay may be refused; the controls are there */
      });
      return;
    }
    // DIRECT, REMUX or TRANSCODE: the server says which; failures show a message.
    this.playback.start(v.id).catch((e: unknown) => this.opts.showError(e));
  };

  /** A fresher copy of a video. */
  applyVideo(v: Q.Video): void {
    if (v.id === this.playingId) this.showMeta(v);
  }

  apply(ch: Q.LibraryChange): void {
    if (!ch.id || ch.id !== this.playingId) return;
    if (ch.kind === 'REMOVED') {
      const t = this.els.playerTitle.textContent ?? '';
      if (!t.endsWith('(removed)')) this.els.playerTitle.textContent = `${t} (removed)`;
    } else if (ch.entry?.__typename === 'Video') this.showMeta(ch.entry);
  }

  private showMeta(v: Q.Video): void {
    this.els.playerTitle.textContent = v.name;
    const rows: [string, string][] = [
      ['Path', v.path],
      ['Duration', fmtDuration(v.durationSeconds)],
      ['Size', fmtSize(v.size)],
      ['Resolution', v.width && v.height ? `${v.width}×${v.height}` : '–'],
      ['Codecs', [v.container, v.videoCodec, v.audioCodec].filter(Boolean).join(' · ') || '–'],
      ['Status', v.status + (v.error ? ` — ${v.error}` : '')],
      ['Modified', v.modifiedAt ? new Date(v.modifiedAt).toLocaleString() : '–'],
    ];
    const items: Node[] = [];
    for (const [k, val] of rows) items.push(h('dt', { text: k }), h('dd', { text: val }));
    const regen = h('button', { type: 'button', class: 'small', 'data-testid': 'regen-thumb', text: 'Regenerate thumbnail' });
    regen.addEventListener('click', async () => {
      regen.disabled = true;
      try {
        const r = await api.gql<{ regenerateThumbnail: Q.Video }>(Q.REGENERATE_THUMBNAIL, { id: v.id });
        bumpThumbnail(v.id);
        this.opts.onVideoUpdated(r.regenerateThumbnail);
      } catch (e) {
        this.opts.showError(e);
      } finally {
        regen.disabled = false;
      }
    });
    items.push(h('dt', {}), h('dd', {}, regen));
    this.els.playerMeta.replaceChildren(...items);
  }
}
