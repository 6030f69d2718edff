// Search by name: the box, the result list, and how results follow library changes.
import * as api from './api';
import * as Q from './queries';
import type { ShowError } from './banner';
import { flash, reconcile } from './dom';
import { debounce } from './format';
import { compareEntries } from './tree/model';
import { TreeKeys } from './keynav';
import { moreItem, noteItem, videoRow, type VideoRow } from './rows';

const PAGE = 200;
/** A refetch asks again for as many results as were shown, up to this many. */
const REFETCH_MAX = 1000;
const TYPING_DEBOUNCE_MS = 250;

export interface SearchEls {
  input: HTMLInputElement;
  /** The header's search icon: on narrow screens it opens the box. */
  toggle: HTMLButtonElement;
  header: HTMLElement;
  results: HTMLElement;
  list: HTMLUListElement;
  count: HTMLElement;
  /** Hidden while results are shown. */
  tree: HTMLElement;
}

export interface SearchOptions {
  showError: ShowError;
  onPlay(v: Q.Video): void;
  isPlaying(videoId: string): boolean;
}

export class Search {
  private text = '';
  private ids: string[] = [];
  private readonly data = new Map<string, Q.Video>();
  private readonly rows = new Map<string, VideoRow>();
  private cursor: string | null = null;
  private hasMore = false;
  private total = 0;
  /** Bumped by each new search so late answers to older ones are dropped. */
  private generation = 0;

  constructor(
    private readonly els: SearchEls,
    private readonly opts: SearchOptions,
  ) {
    new TreeKeys(els.list, { expand: () => {} });
    els.toggle.addEventListener('click', () => this.setOpen(!els.header.classList.contains('search-open')));
    els.input.addEventListener('keydown', (ev) => {
      if (ev.key === 'Escape' && els.header.classList.contains('search-open') && !els.input.value) {
        this.setOpen(false);
        els.toggle.focus();
      } else if (ev.key === 'ArrowDown' && !els.results.hidden) {
        // Into the results, like the tree.
        const first = els.list.querySelector<HTMLElement>('[role="treeitem"]');
        if (first) {
          ev.preventDefault();
          first.focus();
        }
      }
    });
    els.input.addEventListener(
      'input',
      debounce(() => {
        this.text = els.input.value.trim();
        void this.run();
      }, TYPING_DEBOUNCE_MS),
    );
  }

  /** Open or close the search box in the collapsed (narrow) header. */
  private setOpen(open: boolean): void {
    const { els } = this;
    els.header.classList.toggle('search-open', open);
    els.toggle.setAttribute('aria-expanded', String(open));
    els.toggle.setAttribute('aria-label', open ? 'Close search' : 'Search');
    if (open) els.input.focus();
    else if (els.input.value) {
      // Closing the box ends the search: back to the tree.
      els.input.value = '';
      this.text = '';
      void this.run();
    }
  }

  /** Refetch the results shown, if any. */
  refresh(): Promise<void> {
    return this.text ? this.run() : Promise.resolve();
  }

  async run(more = false): Promise<void> {
    const { els } = this;
    const text = this.text;
    const gen = more ? this.generation : ++this.generation;
    if (!text) {
      els.results.hidden = true;
      els.tree.hidden = false;
      return;
    }
    els.results.hidden = false;
    els.tree.hidden = true;
    try {
      const want = more ? PAGE : Math.max(PAGE, Math.min(this.ids.length, REFETCH_MAX));
      const r = await api.gql<Q.SearchResult>(Q.SEARCH, { text, first: want, after: more ? this.cursor : null });
      if (gen !== this.generation) return;
      if (!more) {
        this.ids = [];
        this.data.clear();
      }
      for (const e of r.videos.edges) {
        if (!this.data.has(e.node.id)) this.ids.push(e.node.id);
        this.data.set(e.node.id, e.node);
      }
      this.cursor = r.videos.pageInfo.endCursor;
      this.hasMore = r.videos.pageInfo.hasNextPage;
      this.total = r.videos.totalCount;
      this.render();
    } catch (e) {
      this.opts.showError(e);
    }
  }

  private render(): void {
    const n = this.total;
    this.els.count.textContent = `${n} video${n === 1 ? '' : 's'} matching “${this.text}”`;
    const items: HTMLLIElement[] = [];
    for (const id of this.ids) {
      const v = this.data.get(id)!;
      let row = this.rows.get(id);
      if (!row) {
        row = videoRow(v, { testid: 'search-result', showPath: true, onPlay: this.opts.onPlay, isPlaying: this.opts.isPlaying });
        this.rows.set(id, row);
      } else row.update(v);
      items.push(row.el);
    }
    for (const id of this.rows.keys()) if (!this.data.has(id)) this.rows.delete(id);
    if (this.hasMore) {
      items.push(moreItem('Show more', () => void this.run(true)));
    } else if (!this.ids.length) items.push(noteItem('No matches.'));
    reconcile(this.els.list, items);
  }

  /** A fresher copy of a video (e.g. after its thumbnail was regenerated). */
  applyVideo(v: Q.Video): void {
    if (!this.data.has(v.id)) return;
    this.data.set(v.id, v);
    this.render();
  }

  apply(ch: Q.LibraryChange): void {
    if (!this.text || !ch.id) return;
    if (ch.kind === 'SUBTREE_CHANGED') {
      void this.run(); // many entries changed at once: ask again
      return;
    }
    const v = ch.entry?.__typename === 'Video' ? ch.entry : null;
    if (ch.kind === 'REMOVED') {
      if (this.data.delete(ch.id)) {
        this.ids = this.ids.filter((x) => x !== ch.id);
        this.total = Math.max(0, this.total - 1);
        this.render();
      }
      return;
    }
    if (!v) {
      if (ch.entry?.__typename === 'Folder' && ch.kind === 'MOVED') void this.run(); // paths below it changed
      return;
    }
    const matches = v.name.toLowerCase().includes(this.text.toLowerCase());
    const had = this.data.has(v.id);
    if (had && !matches) {
      this.data.delete(v.id);
      this.ids = this.ids.filter((x) => x !== v.id);
      this.total--;
    } else if (had) {
      this.data.set(v.id, v);
    } else if (matches) {
      this.data.set(v.id, v);
      let i = this.ids.findIndex((id) => compareEntries(v, this.data.get(id)!) < 0);
      if (i < 0) i = this.ids.length;
      this.ids.splice(i, 0, v.id);
      this.total++;
    } else return;
    this.render();
    const row = this.rows.get(v.id);
    if (row && !had) flash(row.el.firstElementChild!);
  }
}
