// The page's markup and the elements the other modules are handed. Nothing here holds state.

const LAYOUT = `
<a class="skip-link" href="#library" data-testid="skip-link">Skip to the library</a>
<header class="top">
  <h1><span class="logo" aria-hidden="true">▶</span> gql_media</h1>
  <div class="search-box" role="search">
    <input id="search-input" class="search" type="search" placeholder="Search videos by name…" data-testid="search-input" aria-label="Search videos" />
  </div>
  <button type="button" class="icon-button search-toggle" data-testid="search-toggle" aria-label="Search" aria-expanded="false" aria-controls="search-input">
    <svg class="open" viewBox="0 0 20 20" width="20" height="20" aria-hidden="true" focusable="false"><circle cx="8.5" cy="8.5" r="5.5" fill="none" stroke="currentColor" stroke-width="2"/><path d="M13 13l4.5 4.5" stroke="currentColor" stroke-width="2" stroke-linecap="round"/></svg>
    <svg class="close" viewBox="0 0 20 20" width="20" height="20" aria-hidden="true" focusable="false"><path d="M5 5l10 10M15 5L5 15" stroke="currentColor" stroke-width="2" stroke-linecap="round"/></svg>
  </button>
  <span class="conn" data-testid="conn-status" data-state="connecting" title="live updates">connecting…</span>
  <button class="link" type="button" data-testid="token-button" hidden>API token</button>
  <a class="link" href="/playground" target="_blank" rel="noopener">GraphiQL</a>
</header>
<section class="bar" aria-label="Sync and watcher">
  <div class="panel sync" data-testid="sync-panel">
    <div class="controls">
      <select data-testid="sync-mode" aria-label="Sync mode">
        <option value="INCREMENTAL">Incremental</option>
        <option value="FULL">Full</option>
      </select>
      <button type="button" class="primary" data-testid="sync-button">Sync</button>
      <button type="button" data-testid="sync-cancel" disabled>Cancel</button>
    </div>
    <div class="progress" data-testid="sync-progress" data-state="" data-phase="" role="progressbar" aria-label="Sync progress" aria-valuemin="0" aria-valuemax="100">
      <div class="fill"></div>
      <span class="label" data-testid="sync-phase">No sync yet</span>
    </div>
    <div class="counts" data-testid="sync-counts"></div>
  </div>
  <div class="panel watcher" data-testid="watcher-panel">
    <button type="button" class="toggle" role="switch" aria-checked="false" data-testid="watcher-toggle" data-enabled="false" disabled>
      <span class="knob" aria-hidden="true"></span><span class="toggle-label">Watcher</span>
    </button>
    <span class="watcher-status" data-testid="watcher-status">…</span>
    <span class="error" data-testid="watcher-error" hidden></span>
  </div>
</section>
<main>
  <div class="banner error" data-testid="error-banner" hidden></div>
  <section class="library" id="library" aria-label="Library">
    <ul class="tree" role="tree" aria-label="Library folders and videos" data-testid="tree"></ul>
    <div class="results" data-testid="search-results" hidden>
      <div class="results-head" data-testid="search-count"></div>
      <ul class="result-list" role="tree" aria-label="Search results"></ul>
    </div>
  </section>
  <section class="viewer" aria-label="Player" data-testid="viewer">
    <div class="player-wrap">
      <video data-testid="player" controls preload="metadata" playsinline aria-label="Video player"></video>
      <div class="player-empty">Select a video to play it</div>
    </div>
    <div class="now">
      <h2 data-testid="player-title"></h2>
      <dl class="meta" data-testid="player-meta"></dl>
    </div>
  </section>
  <section class="changes" aria-labelledby="changes-title">
    <h2 id="changes-title">Live changes</h2>
    <ol class="log" data-testid="change-log" tabindex="0" aria-labelledby="changes-title"></ol>
  </section>
</main>
<div class="sr-only" role="status" aria-live="polite" data-testid="announcer"></div>
<dialog class="token" data-testid="token-dialog" aria-labelledby="token-title">
  <form method="dialog">
    <h2 id="token-title">API token required</h2>
    <p>This server needs an API token. It is kept in this browser's localStorage.</p>
    <input type="password" autocomplete="off" placeholder="token" aria-label="API token" data-testid="token-input" />
    <menu>
      <button type="button" value="clear" data-testid="token-clear">Forget</button>
      <button type="submit" class="primary" value="save" data-testid="token-save">Save</button>
    </menu>
  </form>
</dialog>
`;

export interface Els {
  app: HTMLElement;
  tree: HTMLUListElement;
  results: HTMLDivElement;
  resultList: HTMLUListElement;
  searchCount: HTMLDivElement;
  searchInput: HTMLInputElement;
  searchToggle: HTMLButtonElement;
  header: HTMLElement;
  viewer: HTMLElement;
  announcer: HTMLElement;
  conn: HTMLSpanElement;
  banner: HTMLDivElement;
  player: HTMLVideoElement;
  playerWrap: HTMLDivElement;
  playerTitle: HTMLHeadingElement;
  playerMeta: HTMLDListElement;
  log: HTMLOListElement;
  syncButton: HTMLButtonElement;
  syncMode: HTMLSelectElement;
  syncCancel: HTMLButtonElement;
  progress: HTMLDivElement;
  progressFill: HTMLDivElement;
  progressLabel: HTMLSpanElement;
  counts: HTMLDivElement;
  watcherToggle: HTMLButtonElement;
  watcherStatus: HTMLSpanElement;
  watcherError: HTMLSpanElement;
  tokenButton: HTMLButtonElement;
  tokenDialog: HTMLDialogElement;
  tokenInput: HTMLInputElement;
  tokenClear: HTMLButtonElement;
}

/** Render the layout into `app` and look up every element the modules need. */
export function mount(app: HTMLElement): Els {
  app.innerHTML = LAYOUT;
  const $ = <T extends Element>(sel: string): T => {
    const el = app.querySelector<T>(sel);
    if (!el) throw new Error(`layout: ${sel} missing`);
    return el;
  };
  const byId = <T extends Element>(id: string): T => $<T>(`[data-testid="${id}"]`);
  // The skip link lands on the list's tab stop (the tree's, or the results' while searching).
  $<HTMLAnchorElement>('.skip-link').addEventListener('click', (ev) => {
    const items = app.querySelectorAll<HTMLElement>('.library [role="treeitem"][tabindex="0"]');
    const target = [...items].find((el) => el.offsetParent !== null);
    if (!target) return;
    ev.preventDefault();
    target.focus();
  });
  return {
    app,
    tree: byId('tree'),
    results: byId('search-results'),
    resultList: $('[data-testid="search-results"] .result-list'),
    searchCount: byId('search-count'),
    searchInput: byId('search-input'),
    searchToggle: byId('search-toggle'),
    header: $('header.top'),
    viewer: byId('viewer'),
    announcer: byId('announcer'),
    conn: byId('conn-status'),
    banner: byId('error-banner'),
    player: byId('player'),
    playerWrap: $('.player-wrap'),
    playerTitle: byId('player-title'),
    playerMeta: byId('player-meta'),
    log: byId('change-log'),
    syncButton: byId('sync-button'),
    syncMode: byId('sync-mode'),
    syncCancel: byId('sync-cancel'),
    progress: byId('sync-progress'),
    progressFill: $('[data-testid="sync-progress"] .fill'),
    progressLabel: byId('sync-phase'),
    counts: byId('sync-counts'),
    watcherToggle: byId('watcher-toggle'),
    watcherStatus: byId('watcher-status'),
    watcherError: byId('watcher-error'),
    tokenButton: byId('token-button'),
    tokenDialog: byId('token-dialog'),
    tokenInput: byId('token-input'),
    tokenClear: byId('token-clear'),
  };
}

/** Restart the "just changed" highlight on an element. */
export function flash(el: Element): void {
  el.classList.remove('flash');
  void (el as HTMLElement).offsetWidth;
  el.classList.add('flash');
}

/**
 * Media URLs built by the server while answering over the websocket may carry the socket's
 * scheme (ws://host/thumbnails/1); a browser can only fetch them over http(s).
 */
export function httpish(url: string): string {
  return url.replace(/^ws(s?):\/\//i, 'http$1://');
}

/**
 * Say something through the page's polite live region. Cleared first, so the same message twice
 * is read twice.
 */
export function announce(region: HTMLElement, text: string): void {
  region.textContent = '';
  setTimeout(() => (region.textContent = text), 100);
}

/**
 * Make `list`'s children exactly `items`, moving as few nodes as possible: a node taken out of the
 * page loses the keyboard focus, so rows that stay must stay put.
 */
export function reconcile(list: Element, items: readonly Element[]): void {
  const keep = new Set(items);
  for (const child of [...list.children]) if (!keep.has(child)) child.remove();
  for (let i = 0; i < items.length; i++) {
    const at = list.children[i];
    if (at !== items[i]) list.insertBefore(items[i], at ?? null);
  }
}
