// HLS downloads that are not merged: each folder with why ("not merged: <reason>"), its segments
// present/expected and a Merge button (mergeHls). The panel builds its own markup and is hidden
// while there is nothing to show. A download's state changes only in a sync job (the merge step)
// or a mergeHls, so it reads the list again when a job ends, after a change inside a download
// folder, after a refetch of the page, and at most every POLL_MS while one is still WAITING.
import './downloads.css';
import * as api from './api';
import * as Q from './queries';
import type { ShowError } from './banner';
import { h } from './format';
import type { ChangeListener } from './live';

const DOWNLOADS = `query HlsDownloads {
  hlsDownloads { path rootPath state reason segmentsPresent segmentsExpected playlist updatedAt }
}`;
const MERGE = `mutation MergeHls($path: String!) { mergeHls(path: $path) { ok outputPath error } }`;

/** A gentle poll while a download is still arriving (its segments come without a job ending). */
const POLL_MS = 30_000;
/** Changes come in bursts: read once after a burst. */
const SETTLE_MS = 400;

type DownloadState = 'WAITING' | 'READY' | 'MERGED' | 'FAILED';

interface HlsDownload {
  path: string;
  rootPath: string;
  state: DownloadState;
  reason: string | null;
  segmentsPresent: number;
  segmentsExpected: number;
  playlist: string | null;
  updatedAt: number;
}

interface MergeResult {
  ok: boolean;
  outputPath: string | null;
  error: string | null;
}

export interface DownloadsOptions {
  showError: ShowError;
  /** Say something to screen reader users (the page's live region). */
  announce(text: string): void;
}

/** Why a download is not merged, in a user's words. */
function why(d: HlsDownload): string {
  if (d.reason) return d.reason;
  return d.state === 'READY' ? 'complete, waiting for a merge' : d.state.toLowerCase();
}

/** The folder as the user knows it: below its root, or its base name when it is the root. */
function shown(d: HlsDownload): string {
  const prefix = d.rootPath.replace(/\/$/, '') + '/';
  return d.path.startsWith(prefix) ? d.path.slice(prefix.length) : d.path;
}

export class DownloadsPanel implements ChangeListener {
  readonly el: HTMLElement;
  private readonly list: HTMLUListElement;
  private readonly message: HTMLElement;
  private downloads: HlsDownload[] = [];
  private readonly merging = new Set<string>();
  private settleTimer: ReturnType<typeof setTimeout> | undefined;
  private pollTimer: ReturnType<typeof setTimeout> | undefined;
  private reading: Promise<void> | null = null;
  private readAgain = false;

  constructor(
    after: Element,
    private readonly opts: DownloadsOptions,
  ) {
    const title = h('h2', { id: 'downloads-title', text: 'HLS downloads not merged' });
    this.list = h('ul', { class: 'download-list', 'data-testid': 'download-list', 'aria-labelledby': 'downloads-title' });
    this.message = h('p', { class: 'download-message', role: 'status', 'data-testid': 'download-message', hidden: true });
    this.el = h(
      'section',
      { class: 'panel downloads', 'data-testid': 'downloads-panel', 'aria-labelledby': 'downloads-title', hidden: true },
      title,
      this.list,
      this.message,
    );
    after.after(this.el);
  }

  /** Read the downloads again (calls during a read run once more after it). */
  refresh = (): Promise<void> => {
    if (this.reading) {
      this.readAgain = true;
      return this.reading;
    }
    this.reading = (async () => {
      try {
        do {
          this.readAgain = false;
          const r = await api.gql<{ hlsDownloads: HlsDownload[] }>(DOWNLOADS);
          this.show(r.hlsDownloads.filter((d) => d.state !== 'MERGED'));
        } while (this.readAgain);
      } finally {
        this.reading = null;
      }
    })();
    return this.reading;
  };

  apply(ch: Q.LibraryChange): void {
    if (ch.kind === 'RESYNC' || ch.kind === 'ROOT_ADDED' || ch.kind === 'ROOT_REMOVED') return this.soon();
    if (!ch.rootPath) return;
    const root = ch.rootPath.replace(/\/$/, '');
    const paths = [ch.path, ch.oldPath].filter((p): p is string => p != null).map((p) => (p ? `${root}/${p}` : root));
    // A change inside (or of) a download folder shown here, or a new folder that may hold one.
    const inside = paths.some((p) => this.downloads.some((d) => p === d.path || p.startsWith(d.path + '/')));
    if (inside || ch.kind === 'ADDED') this.soon();
  }

  /** A sync job's progress: its end may have changed a download's state. */
  onProgress = (p: Q.SyncProgress): void => {
    if (p.state === 'SUCCEEDED' || p.state === 'FAILED' || p.state === 'CANCELLED') this.soon();
  };

  private soon(): void {
    clearTimeout(this.settleTimer);
    this.settleTimer = setTimeout(() => void this.refresh().catch(this.opts.showError), SETTLE_MS);
  }

  private poll(): void {
    clearTimeout(this.pollTimer);
    if (!this.downloads.some((d) => d.state === 'WAITING')) return;
    this.pollTimer = setTimeout(() => {
      if (document.hidden) return this.poll();
      void this.refresh().catch(this.opts.showError);
    }, POLL_MS);
  }

  private show(downloads: HlsDownload[]): void {
    this.downloads = downloads;
    this.el.hidden = downloads.length === 0 && this.message.hidden;
    const focused = (document.activeElement as HTMLElement | null)?.closest?.('li')?.dataset.path;
    this.list.replaceChildren(...downloads.map((d) => this.item(d)));
    if (focused) {
      // Keep the keyboard where it was when the list is drawn again.
      const again = [...this.list.querySelectorAll<HTMLLIElement>('li')].find((li) => li.dataset.path === focused);
      (again?.querySelector('button') ?? this.list.querySelector('button'))?.focus();
    }
    this.poll();
  }

  private item(d: HlsDownload): HTMLLIElement {
    const name = shown(d);
    const merge = h('button', {
      type: 'button', class: 'primary', 'data-testid': 'download-merge', text: 'Merge',
      'aria-label': `Merge the HLS download ${name} into an mp4`,
    });
    merge.disabled = this.merging.has(d.path);
    merge.addEventListener('click', () => void this.merge(d, name));
    return h(
      'li',
      { 'data-testid': 'download-item', 'data-path': d.path, 'data-state': d.state },
      h('span', { class: 'download-path', 'data-testid': 'download-path', text: name }),
      h('span', { class: `download-reason state-${d.state.toLowerCase()}`, 'data-testid': 'download-reason', text: `not merged: ${why(d)}` }),
      h('span', {
        class: 'muted', 'data-testid': 'download-segments',
        text: `${d.segmentsPresent}/${d.segmentsExpected} segments`,
        'aria-label': `${d.segmentsPresent} of ${d.segmentsExpected} segments present`,
      }),
      merge,
    );
  }

  private say(text: string, isError: boolean): void {
    this.message.hidden = false;
    this.el.hidden = false;
    this.message.classList.toggle('error', isError);
    this.message.setAttribute('role', isError ? 'alert' : 'status');
    this.message.textContent = text;
    if (!isError) this.opts.announce(text);
  }

  private async merge(d: HlsDownload, name: string): Promise<void> {
    this.merging.add(d.path);
    this.show(this.downloads);
    try {
      const r = (await api.gql<{ mergeHls: MergeResult }>(MERGE, { path: d.path })).mergeHls;
      if (r.ok) this.say(`Merged ${name}${r.outputPath ? ` into ${r.outputPath}` : ''}.`, false);
      else this.say(`${name} was not merged: ${r.error ?? 'the server gave no reason'}`, true);
    } catch (e) {
      if (e instanceof api.GraphQLRequestError && e.errors.length) {
        const first = e.errors[0];
        const code = first.extensions?.code;
        this.say(`${name} was not merged: ${first.message}${code ? ` (${String(code)})` : ''}`, true);
      } else this.opts.showError(e);
    } finally {
      this.merging.delete(d.path);
      await this.refresh().catch(this.opts.showError);
    }
  }
}
