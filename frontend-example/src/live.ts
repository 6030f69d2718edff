// Live updates: the websocket, the connection badge, the change log, and the rule that keeps the
// page consistent (apply changes in order; refetch everything after RESYNC, a gap or a reconnect).
import * as api from './api';
import * as Q from './queries';
import type { ShowError } from './banner';
import { h } from './format';

/** Something on the page that follows library changes. */
export interface ChangeListener {
  apply(ch: Q.LibraryChange): void;
}

export interface LiveEls {
  conn: HTMLElement;
  log: HTMLOListElement;
}

export interface LiveOptions {
  showError: ShowError;
  /** In order: each applies every change. */
  listeners: ChangeListener[];
  /** Refetch everything shown; run together. */
  refreshers: (() => Promise<void>)[];
  onProgress(p: Q.SyncProgress): void;
  onWatcher(w: Q.WatcherStatus): void;
}

/** Lines kept in the change log. */
const LOG_LINES = 60;

const CONN_TEXT: Record<api.ConnState, string> = {
  connecting: 'connecting…',
  connected: 'live',
  reconnecting: 'reconnecting…',
  closed: 'offline',
  unauthorized: 'token needed',
};

export class Live {
  private lastSeq: number | null = null;
  private refreshing: Promise<void> | null = null;
  private refreshAgain = false;
  /** Changes that came in during a refetch, applied after it. */
  private buffered: Q.LibraryChange[] = [];
  private subs: (() => void)[] = [];
  /** Set once the first load is done: a first connection after it refetches (it may have raced). */
  initialDone = false;

  constructor(
    private readonly els: LiveEls,
    private readonly opts: LiveOptions,
  ) {}

  /** (Re)connect and subscribe. */
  start(): void {
    for (const u of this.subs) u();
    this.subs = [];
    this.lastSeq = null;
    api.connect({
      onState: (s, detail) => this.setConn(s, detail),
      onConnected: (wasRetry) => {
        this.lastSeq = null;
        if (wasRetry || this.initialDone) void this.refreshAll(wasRetry ? 'reconnected' : 'connected');
      },
    });
    const error = (e: unknown) => this.subscriptionError(e);
    this.subs.push(
      api.subscribe<Q.LibraryChangedResult>(Q.SUB_LIBRARY, {}, { next: (d) => this.onChange(d.libraryChanged), error }),
      api.subscribe<Q.SyncProgressResult>(Q.SUB_PROGRESS, {}, { next: (d) => this.opts.onProgress(d.syncProgress), error }),
      api.subscribe<Q.WatcherStatusResult>(Q.SUB_WATCHER, {}, { next: (d) => this.opts.onWatcher(d.watcherStatus), error }),
    );
  }

  /** Refetch everything shown (RESYNC, a sequence gap, a reconnect, a new token). */
  refreshAll = (reason: string): Promise<void> => {
    this.logLine('REFETCH', reason);
    if (this.refreshing) {
      this.refreshAgain = true;
      return this.refreshing;
    }
    this.refreshing = (async () => {
      do {
        this.refreshAgain = false;
        try {
          await Promise.all(this.opts.refreshers.map((r) => r()));
        } catch (e) {
          this.opts.showError(e);
        }
      } while (this.refreshAgain);
      this.refreshing = null;
      const replay = this.buffered;
      this.buffered = [];
      for (const ch of replay) this.apply(ch);
    })();
    return this.refreshing;
  };

  private subscriptionError(e: unknown): void {
    // Socket closes are shown by the connection badge; auth closes open the token dialog.
    if (typeof CloseEvent !== 'undefined' && e instanceof CloseEvent) {
      if (e.code !== 1000 && e.code !== 4401 && e.code !== 4403) this.setConn('reconnecting', `closed (${e.code}) ${e.reason}`);
      return;
    }
    this.opts.showError(e);
  }

  private setConn(state: api.ConnState, detail?: string): void {
    this.els.conn.dataset.state = state;
    this.els.conn.textContent = CONN_TEXT[state];
    this.els.conn.title = detail ?? 'live updates';
  }

  private logLine(kind: string, text: string): void {
    const log = this.els.log;
    const li = h(
      'li',
      { class: `k-${kind.toLowerCase()}`, 'data-testid': 'change-item', 'data-kind': kind },
      h('time', { text: new Date().toLocaleTimeString() }),
      h('b', { text: kind }),
      h('span', { text }),
    );
    log.prepend(li);
    while (log.children.length > LOG_LINES) log.lastElementChild!.remove();
  }

  private onChange(ch: Q.LibraryChange): void {
    const seq = Number(ch.sequence);
    const prev = this.lastSeq;
    const gap = prev != null && (seq > prev + 1 || seq <= prev);
    this.lastSeq = seq;
    if (ch.kind === 'RESYNC') {
      this.logLine('RESYNC', 'events were missed');
      void this.refreshAll('after RESYNC');
      return;
    }
    const show = (p: string | null) => (p === '' ? `${ch.rootPath ?? ''} (root)` : (p ?? '?'));
    this.logLine(ch.kind, ch.kind === 'MOVED' ? `${show(ch.oldPath)} → ${show(ch.path)}` : show(ch.path));
    if (gap) void this.refreshAll(`sequence gap ${prev} → ${seq}`);
    if (this.refreshing) {
      this.buffered.push(ch);
      return;
    }
    this.apply(ch);
  }

  private apply(ch: Q.LibraryChange): void {
    for (const l of this.opts.listeners) l.apply(ch);
  }
}
