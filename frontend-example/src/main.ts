import './style.css';
import * as api from './api';
import * as Q from './queries';
import { debounce, fmtDuration, fmtSize, fmtTime, h } from './format';

const PAGE = 200;

// ------------------------------------------------------------------ layout

const app = document.getElementById('app')!;
app.innerHTML = `
<header class="top">
  <h1><span class="logo">▶</span> gql_media</h1>
  <input class="search" type="search" placeholder="Search videos by name…" data-testid="search-input" aria-label="Search videos" />
  <span class="conn" data-testid="conn-status" data-state="connecting" title="live updates">connecting…</span>
  <button class="link" type="button" data-testid="token-button" hidden>API token</button>
  <a class="link" href="/playground" target="_blank" rel="noopener">GraphiQL</a>
</header>
<section class="bar">
  <div class="panel sync" data-testid="sync-panel">
    <div class="controls">
      <select data-testid="sync-mode" aria-label="Sync mode">
        <option value="INCREMENTAL">Incremental</option>
        <option value="FULL">Full</option>
      </select>
      <button type="button" class="primary" data-testid="sync-button">Sync</button>
      <button type="button" data-testid="sync-cancel" disabled>Cancel</button>
    </div>
    <div class="progress" data-testid="sync-progress" data-state="" data-phase="" role="progressbar" aria-valuemin="0" aria-valuemax="100">
      <div class="fill"></div>
      <span class="label" data-testid="sync-phase">No sync yet</span>
    </div>
    <div class="counts" data-testid="sync-counts"></div>
  </div>
  <div class="panel watcher" data-testid="watcher-panel">
    <button type="button" class="toggle" role="switch" aria-checked="false" data-testid="watcher-toggle" data-enabled="false" disabled>
      <span class="knob"></span><span class="toggle-label">Watcher</span>
    </button>
    <span class="watcher-status" data-testid="watcher-status">…</span>
    <span class="error" data-testid="watcher-error" hidden></span>
  </div>
</section>
<div class="banner error" data-testid="error-banner" hidden></div>
<main>
  <aside class="library">
    <ul class="tree" role="tree" data-testid="tree"></ul>
    <div class="results" data-testid="search-results" hidden>
      <div class="results-head" data-testid="search-count"></div>
      <ul class="result-list"></ul>
    </div>
  </aside>
  <section class="viewer">
    <div class="player-wrap">
      <video data-testid="player" controls preload="metadata" playsinline></video>
      <div class="player-empty">Select a video to play it</div>
    </div>
    <div class="now">
      <h2 data-testid="player-title"></h2>
      <dl class="meta" data-testid="player-meta"></dl>
    </div>
    <h3>Live changes</h3>
    <ol class="log" data-testid="change-log"></ol>
  </section>
</main>
<dialog class="token" data-testid="token-dialog">
  <form method="dialog">
    <h2>API token required</h2>
    <p>This server needs an API token. It is kept in this browser's localStorage.</p>
    <input type="password" autocomplete="off" placeholder="token" data-testid="token-input" />
    <menu>
      <button type="button" value="clear" data-testid="token-clear">Forget</button>
      <button type="submit" class="primary" value="save" data-testid="token-save">Save</button>
    </menu>
  </form>
</dialog>
`;

const $ = <T extends Element>(sel: string) => app.querySelector<T>(sel)!;
const treeEl = $<HTMLUListElement>('[data-testid="tree"]');
const resultsEl = $<HTMLDivElement>('[data-testid="search-results"]');
const resultList = resultsEl.querySelector<HTMLUListElement>('.result-list')!;
const searchCount = $<HTMLDivElement>('[data-testid="search-count"]');
const searchInput = $<HTMLInputElement>('[data-testid="search-input"]');
const connEl = $<HTMLSpanElement>('[data-testid="conn-status"]');
const bannerEl = $<HTMLDivElement>('[data-testid="error-banner"]');
const player = $<HTMLVideoElement>('[data-testid="player"]');
const playerWrap = $<HTMLDivElement>('.player-wrap');
const playerTitle = $<HTMLHeadingElement>('[data-testid="player-title"]');
const playerMeta = $<HTMLDListElement>('[data-testid="player-meta"]');
const logEl = $<HTMLOListElement>('[data-testid="change-log"]');
const syncBtn = $<HTMLButtonElement>('[data-testid="sync-button"]');
const syncMode = $<HTMLSelectElement>('[data-testid="sync-mode"]');
const cancelBtn = $<HTMLButtonElement>('[data-testid="sync-cancel"]');
const progEl = $<HTMLDivElement>('[data-testid="sync-progress"]');
const progFill = progEl.querySelector<HTMLDivElement>('.fill')!;
const progLabel = $<HTMLSpanElement>('[data-testid="sync-phase"]');
const countsEl = $<HTMLDivElement>('[data-testid="sync-counts"]');
const watcherBtn = $<HTMLButtonElement>('[data-testid="watcher-toggle"]');
const watcherStatusEl = $<HTMLSpanElement>('[data-testid="watcher-status"]');
const watcherErrEl = $<HTMLSpanElement>('[data-testid="watcher-error"]');
const tokenBtn = $<HTMLButtonElement>('[data-testid="token-button"]');
const tokenDialog = $<HTMLDialogElement>('[data-testid="token-dialog"]');
const tokenInput = $<HTMLInputElement>('[data-testid="token-input"]');

// ------------------------------------------------------------------ errors

let bannerTimer: ReturnType<typeof setTimeout> | undefined;
function showError(e: unknown): void {
  if (e instanceof api.AuthError) return; // the token dialog handles it
  if (typeof CloseEvent !== 'undefined' && e instanceof CloseEvent) {
    // Socket closes are shown by the connection badge; auth closes open the token dialog.
    if (e.code !== 1000 && e.code !== 4401 && e.code !== 4403) setConn('reconnecting', `closed (${e.code}) ${e.reason}`);
    return;
  }
  const msg = e instanceof Error ? e.message : Array.isArray(e) ? e.map((x) => x?.message ?? String(x)).join('; ') : String(e);
  console.error(e);
  bannerEl.textContent = msg;
  bannerEl.hidden = false;
  clearTimeout(bannerTimer);
  bannerTimer = setTimeout(() => (bannerEl.hidden = true), 8000);
}
bannerEl.addEventListener('click', () => (bannerEl.hidden = true));

// ------------------------------------------------------------------ tree model

interface FolderNode {
  kind: 'folder';
  data: Q.Folder;
  el: HTMLLIElement;
  children: string[] | null; // null: not loaded yet
  expanded: boolean;
  cursor: string | null;
  hasMore: boolean;
  totalCount: number;
  loading: Promise<void> | null;
}
interface VideoNode {
  kind: 'video';
  data: Q.Video;
  el: HTMLLIElement;
}
type TreeNode = FolderNode | VideoNode;

const nodes = new Map<string, TreeNode>();
const parentOf = new Map<string, string | null>(); // child id -> folder id (null for roots)
let rootIds: string[] = [];
let playingId: string | null = null;

function compareEntries(a: Q.Entry, b: Q.Entry): number {
  if (a.__typename !== b.__typename) return a.__typename === 'Folder' ? -1 : 1;
  const x = a.name.toLowerCase();
  const y = b.name.toLowerCase();
  if (x !== y) return x < y ? -1 : 1;
  return a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
}

function folderRow(f: Q.Folder): HTMLLIElement {
  const li = h('li', { class: 'node folder', role: 'treeitem', 'aria-expanded': 'false', 'data-id': f.id });
  const row = h(
    'div',
    { class: 'row', tabindex: 0, 'data-testid': 'folder-row' },
    h('span', { class: 'twisty', 'aria-hidden': 'true' }),
    h('span', { class: 'icon', 'aria-hidden': 'true' }),
    h('span', { class: 'name' }),
    h('span', { class: 'count', 'data-testid': 'folder-count', title: 'videos in this folder and below' }),
    h('span', { class: 'size' }),
  );
  li.append(row, h('ul', { class: 'children', role: 'group' }));
  const toggle = () => {
    const n = nodes.get(li.dataset.id!);
    if (n?.kind === 'folder') void setExpanded(n, !n.expanded);
  };
  row.addEventListener('click', toggle);
  row.addEventListener('keydown', (ev) => {
    if (ev.key === 'Enter' || ev.key === ' ') {
      ev.preventDefault();
      toggle();
    }
  });
  return li;
}

function updateFolderRow(n: FolderNode): void {
  const f = n.data;
  const row = n.el.firstElementChild as HTMLElement;
  row.dataset.path = f.path;
  row.dataset.name = f.name;
  row.dataset.id = f.id;
  row.dataset.expanded = String(n.expanded);
  n.el.setAttribute('aria-expanded', String(n.expanded));
  row.querySelector('.twisty')!.textContent = n.expanded ? '▾' : '▸';
  row.classList.toggle('open', n.expanded);
  row.querySelector('.name')!.textContent = f.parent == null ? f.rootPath || f.name || '/' : f.name;
  row.title = f.parent == null ? f.rootPath : f.path;
  row.querySelector('.count')!.textContent = String(f.videoCount);
  row.querySelector('.size')!.textContent = fmtSize(f.totalSize);
}

function videoRow(v: Q.Video, testid: string): HTMLLIElement {
  const li = h('li', { class: 'node video', role: 'treeitem', 'data-id': v.id });
  const row = h(
    'div',
    { class: 'row', tabindex: 0, 'data-testid': testid },
    h('span', { class: 'thumb-box' }),
    h(
      'span',
      { class: 'vinfo' },
      h('span', { class: 'name' }),
      h('span', { class: 'sub' }, h('span', { class: 'path' }), h('span', { class: 'badge' })),
    ),
    h('span', { class: 'dur', 'data-testid': 'video-duration' }),
    h('span', { class: 'size', 'data-testid': 'video-size' }),
  );
  li.append(row);
  const play = () => {
    const id = li.dataset.id!;
    const n = nodes.get(id);
    const data = n?.kind === 'video' ? n.data : searchData.get(id);
    if (data) playVideo(data);
  };
  row.addEventListener('click', play);
  row.addEventListener('keydown', (ev) => {
    if (ev.key === 'Enter' || ev.key === ' ') {
      ev.preventDefault();
      play();
    }
  });
  updateVideoRow(li, v, testid === 'search-result');
  return li;
}

function updateVideoRow(li: HTMLLIElement, v: Q.Video, showPath = false): void {
  const row = li.firstElementChild as HTMLElement;
  li.dataset.id = v.id;
  row.dataset.id = v.id;
  row.dataset.path = v.path;
  row.dataset.name = v.name;
  row.dataset.status = v.status;
  row.title = v.error ? `${v.path}\n${v.error}` : v.path;
  row.classList.toggle('playing', v.id === playingId);
  const box = row.querySelector<HTMLSpanElement>('.thumb-box')!;
  let img = box.querySelector('img');
  const thumbUrl = v.thumbnailUrl ? httpish(v.thumbnailUrl) : null;
  if (thumbUrl) {
    if (!img) {
      img = h('img', { class: 'thumb', alt: '', loading: 'lazy', decoding: 'async', 'data-testid': 'thumb' });
      box.replaceChildren(img);
    }
    // The same URL may serve a placeholder first and the real thumbnail later: when the video
    // changed (status, file, regenerated), ask again past the browser's cache.
    const key = `${v.status}|${v.modifiedAt}|${v.error ?? ''}|${thumbUrl}|${thumbGen.get(v.id) ?? 0}`;
    const prev = img.dataset.key;
    img.dataset.key = key;
    if (prev && prev !== key) img.src = bust(thumbUrl);
    else if (!prev || img.dataset.url !== thumbUrl) img.src = thumbUrl;
    img.dataset.url = thumbUrl;
  } else if (img || !box.firstChild) {
    box.replaceChildren(h('span', { class: 'thumb placeholder', 'aria-hidden': 'true' }));
  }
  row.querySelector('.name')!.textContent = v.name;
  row.querySelector('.path')!.textContent = showPath ? v.path : v.width && v.height ? `${v.width}×${v.height}` : '';
  const badge = row.querySelector<HTMLSpanElement>('.badge')!;
  badge.textContent = v.status === 'READY' ? '' : v.status.toLowerCase();
  badge.className = `badge ${v.status.toLowerCase()}`;
  row.querySelector('.dur')!.textContent = fmtDuration(v.durationSeconds);
  row.querySelector('.size')!.textContent = fmtSize(v.size);
}

/**
 * Media URLs built by the server while answering over the websocket may carry the socket's
 * scheme (ws://host/thumbnails/1); a browser can only fetch them over http(s).
 */
function httpish(url: string): string {
  return url.replace(/^ws(s?):\/\//i, 'http$1://');
}

/** Bumped by regenerateThumbnail so rows reload the image. */
const thumbGen = new Map<string, number>();
function bust(url: string): string {
  return `${url}${url.includes('?') ? '&' : '?'}_v=${Date.now().toString(36)}`;
}

function flash(el: Element): void {
  el.classList.remove('flash');
  void (el as HTMLElement).offsetWidth;
  el.classList.add('flash');
}

/** Insert or update a node for an entry; returns the node. Does not attach it to a parent list. */
function upsert(entry: Q.Entry): TreeNode {
  const existing = nodes.get(entry.id);
  if (entry.__typename === 'Folder') {
    if (existing?.kind === 'folder') {
      existing.data = entry;
      updateFolderRow(existing);
      return existing;
    }
    if (existing) removeNode(existing.data.id);
    const n: FolderNode = {
      kind: 'folder',
      data: entry,
      el: folderRow(entry),
      children: null,
      expanded: false,
      cursor: null,
      hasMore: false,
      totalCount: 0,
      loading: null,
    };
    nodes.set(entry.id, n);
    updateFolderRow(n);
    return n;
  }
  if (existing?.kind === 'video') {
    existing.data = entry;
    updateVideoRow(existing.el, entry);
    return existing;
  }
  if (existing) removeNode(existing.data.id);
  const n: VideoNode = { kind: 'video', data: entry, el: videoRow(entry, 'video-row') };
  nodes.set(entry.id, n);
  return n;
}

/** Forget a node and its loaded subtree, and detach it from its parent's list. */
function removeNode(id: string): boolean {
  const n = nodes.get(id);
  if (!n) return false;
  if (n.kind === 'folder' && n.children) for (const c of [...n.children]) forget(c);
  nodes.delete(id);
  detach(id);
  n.el.remove();
  return true;
}
function forget(id: string): void {
  const n = nodes.get(id);
  if (n?.kind === 'folder' && n.children) for (const c of n.children) forget(c);
  nodes.delete(id);
  parentOf.delete(id);
}
function detach(id: string): void {
  const p = parentOf.get(id);
  parentOf.delete(id);
  if (p == null) {
    if (rootIds.includes(id)) {
      rootIds = rootIds.filter((r) => r !== id);
    }
    return;
  }
  const pn = nodes.get(p);
  if (pn?.kind === 'folder' && pn.children) {
    const i = pn.children.indexOf(id);
    if (i >= 0) {
      pn.children.splice(i, 1);
      pn.totalCount = Math.max(0, pn.totalCount - 1);
      renderChildren(pn);
    }
  }
}

// Child lists are re-rendered at most once per frame: a sync can publish thousands of events.
const dirty = new Set<FolderNode>();
let renderTimer: ReturnType<typeof setTimeout> | null = null;
function renderChildren(n: FolderNode): void {
  dirty.add(n);
  renderTimer ??= setTimeout(() => {
    renderTimer = null;
    const batch = [...dirty];
    dirty.clear();
    for (const d of batch) if (nodes.get(d.data.id) === d) renderChildrenNow(d);
  }, 16);
}

function renderChildrenNow(n: FolderNode): void {
  const ul = n.el.querySelector<HTMLUListElement>(':scope > ul')!;
  if (!n.expanded) {
    ul.replaceChildren();
    return;
  }
  if (n.children == null) {
    ul.replaceChildren(h('li', { class: 'note', text: 'Loading…' }));
    return;
  }
  const items: Node[] = [];
  for (const id of n.children) {
    const c = nodes.get(id);
    if (c) items.push(c.el);
  }
  if (n.hasMore) {
    const more = h('button', { type: 'button', class: 'more', 'data-testid': 'load-more', text: `Show more (${n.totalCount - n.children.length} left)` });
    more.addEventListener('click', () => void loadEntries(n, 'more'));
    items.push(h('li', { class: 'note' }, more));
  } else if (n.children.length === 0) {
    items.push(h('li', { class: 'note', text: 'Empty folder' }));
  }
  ul.replaceChildren(...items);
}

function renderRoots(): void {
  const items = rootIds.map((id) => nodes.get(id)?.el).filter((x): x is HTMLLIElement => !!x);
  if (items.length === 0) items.push(h('li', { class: 'note', text: loadedOnce ? 'No library roots.' : 'Loading…' }) as HTMLLIElement);
  treeEl.replaceChildren(...items);
}

/** Attach a node under parent at its sorted position (if the parent's children are loaded). */
function attachSorted(parent: FolderNode, node: TreeNode): void {
  if (!parent.children) return;
  if (parent.children.includes(node.data.id)) return;
  let i = 0;
  while (i < parent.children.length) {
    const c = nodes.get(parent.children[i]);
    if (c && compareEntries(node.data, c.data) < 0) break;
    i++;
  }
  // Past the loaded page: it will come with "show more".
  if (i === parent.children.length && parent.hasMore) {
    forget(node.data.id);
    return;
  }
  parent.children.splice(i, 0, node.data.id);
  parent.totalCount++;
  parentOf.set(node.data.id, parent.data.id);
  renderChildren(parent);
}

async function setExpanded(n: FolderNode, expanded: boolean): Promise<void> {
  n.expanded = expanded;
  updateFolderRow(n);
  renderChildren(n);
  if (expanded && n.children == null) await loadEntries(n, 'reload');
}

/** Load a folder's entries: 'more' appends the next page, 'reload' refetches what is shown. */
async function loadEntries(n: FolderNode, how: 'more' | 'reload'): Promise<void> {
  if (n.loading) {
    await n.loading;
    if (how === 'more') return;
  }
  const run = async () => {
    const id = n.data.id;
    if (how === 'more') {
      const r = await api.gql<Q.EntriesResult>(Q.ENTRIES, { id, first: PAGE, after: n.cursor });
      if (!r.node || nodes.get(id) !== n) return;
      const conn = r.node.entries;
      for (const e of conn.edges) {
        const c = upsert(e.node);
        if (!n.children!.includes(c.data.id)) n.children!.push(c.data.id);
        parentOf.set(c.data.id, id);
      }
      n.cursor = conn.pageInfo.endCursor;
      n.hasMore = conn.pageInfo.hasNextPage;
      n.totalCount = conn.totalCount;
    } else {
      // Refetch as many entries as were shown (at least one page).
      const want = Math.max(PAGE, n.children?.length ?? 0);
      const fresh: string[] = [];
      let after: string | null = null;
      let hasMore = false;
      let total = 0;
      do {
        const r: Q.EntriesResult = await api.gql<Q.EntriesResult>(Q.ENTRIES, { id, first: Math.min(500, want - fresh.length), after });
        if (nodes.get(id) !== n) return;
        if (!r.node) {
          removeNode(id);
          return;
        }
        const conn = r.node.entries;
        for (const e of conn.edges) {
          const c = upsert(e.node);
          fresh.push(c.data.id);
          parentOf.set(c.data.id, id);
        }
        after = conn.pageInfo.endCursor;
        hasMore = conn.pageInfo.hasNextPage;
        total = conn.totalCount;
      } while (hasMore && fresh.length < want && after);
      const keep = new Set(fresh);
      for (const old of n.children ?? []) {
        if (!keep.has(old) && parentOf.get(old) === id) {
          forget(old);
          nodes.get(old)?.el.remove();
        }
      }
      n.children = fresh;
      n.cursor = after;
      n.hasMore = hasMore;
      n.totalCount = total;
    }
    renderChildren(n);
  };
  n.loading = run()
    .catch((e) => {
      showError(e);
      if (n.children == null) {
        n.expanded = false;
        updateFolderRow(n);
        renderChildren(n);
      }
    })
    .finally(() => {
      n.loading = null;
    });
  await n.loading;
}

let loadedOnce = false;

async function loadRoots(): Promise<void> {
  const r = await api.gql<Q.RootsResult>(Q.ROOTS);
  const fresh = r.roots.map((f) => upsert(f) as FolderNode);
  const keep = new Set(fresh.map((f) => f.data.id));
  for (const id of rootIds) if (!keep.has(id)) forget(id);
  const firstTime = !loadedOnce;
  rootIds = fresh.map((f) => f.data.id);
  for (const id of rootIds) parentOf.set(id, null);
  loadedOnce = true;
  renderRoots();
  if (firstTime) await Promise.all(fresh.map((f) => setExpanded(f, true)));
}

/** Refetch every expanded folder, top-down. */
async function reloadExpanded(): Promise<void> {
  let level = rootIds.map((id) => nodes.get(id)).filter((n): n is FolderNode => n?.kind === 'folder');
  while (level.length) {
    const loaded = level.filter((n) => n.expanded);
    await Promise.all(loaded.map((n) => loadEntries(n, 'reload')));
    const next: FolderNode[] = [];
    for (const n of loaded)
      for (const c of n.children ?? []) {
        const cn = nodes.get(c);
        if (cn?.kind === 'folder' && cn.expanded) next.push(cn);
      }
    level = next;
  }
}

// ------------------------------------------------------------------ folder counters

const refreshCounts = debounce(async () => {
  const ids = [...nodes.values()].filter((n) => n.kind === 'folder').map((n) => n.data.id);
  for (let i = 0; i < ids.length; i += 50) {
    const chunk = ids.slice(i, i + 50);
    try {
      const r = await api.gql<Q.FolderCountsResult>(Q.folderCountsQuery(chunk));
      for (const v of Object.values(r)) {
        if (!v) continue;
        const n = nodes.get(v.id);
        if (n?.kind === 'folder') {
          n.data = { ...n.data, videoCount: v.videoCount, totalSize: v.totalSize };
          updateFolderRow(n);
        }
      }
    } catch (e) {
      showError(e);
    }
  }
}, 250);

// ------------------------------------------------------------------ search

let searchText = '';
let searchIds: string[] = [];
const searchData = new Map<string, Q.Video>();
const searchEls = new Map<string, HTMLLIElement>();
let searchCursor: string | null = null;
let searchHasMore = false;
let searchTotal = 0;
let searchGen = 0;

async function runSearch(more = false): Promise<void> {
  const text = searchText;
  const gen = more ? searchGen : ++searchGen;
  if (!text) {
    resultsEl.hidden = true;
    treeEl.hidden = false;
    return;
  }
  resultsEl.hidden = false;
  treeEl.hidden = true;
  try {
    const want = more ? PAGE : Math.max(PAGE, Math.min(searchIds.length, 1000));
    const r = await api.gql<Q.SearchResult>(Q.SEARCH, { text, first: want, after: more ? searchCursor : null });
    if (gen !== searchGen) return;
    if (!more) {
      searchIds = [];
      searchData.clear();
    }
    for (const e of r.videos.edges) {
      if (!searchData.has(e.node.id)) searchIds.push(e.node.id);
      searchData.set(e.node.id, e.node);
    }
    searchCursor = r.videos.pageInfo.endCursor;
    searchHasMore = r.videos.pageInfo.hasNextPage;
    searchTotal = r.videos.totalCount;
    renderSearch();
  } catch (e) {
    showError(e);
  }
}

function renderSearch(): void {
  searchCount.textContent = `${searchTotal} video${searchTotal === 1 ? '' : 's'} matching “${searchText}”`;
  const items: Node[] = [];
  for (const id of searchIds) {
    const v = searchData.get(id)!;
    let li = searchEls.get(id);
    if (!li) {
      li = videoRow(v, 'search-result');
      searchEls.set(id, li);
    } else updateVideoRow(li, v, true);
    items.push(li);
  }
  for (const id of searchEls.keys()) if (!searchData.has(id)) searchEls.delete(id);
  if (searchHasMore) {
    const more = h('button', { type: 'button', class: 'more', text: 'Show more' });
    more.addEventListener('click', () => void runSearch(true));
    items.push(h('li', { class: 'note' }, more));
  } else if (!searchIds.length) items.push(h('li', { class: 'note', text: 'No matches.' }));
  resultList.replaceChildren(...items);
}

function searchApply(ch: Q.LibraryChange): void {
  if (!searchText || !ch.id) return;
  const v = ch.entry?.__typename === 'Video' ? ch.entry : null;
  if (ch.kind === 'REMOVED') {
    if (searchData.delete(ch.id)) {
      searchIds = searchIds.filter((x) => x !== ch.id);
      searchTotal = Math.max(0, searchTotal - 1);
      renderSearch();
    }
    return;
  }
  if (!v) {
    if (ch.entry?.__typename === 'Folder' && ch.kind === 'MOVED') void runSearch(); // paths below it changed
    return;
  }
  const matches = v.name.toLowerCase().includes(searchText.toLowerCase());
  const had = searchData.has(v.id);
  if (had && !matches) {
    searchData.delete(v.id);
    searchIds = searchIds.filter((x) => x !== v.id);
    searchTotal--;
  } else if (had) {
    searchData.set(v.id, v);
  } else if (matches) {
    searchData.set(v.id, v);
    let i = searchIds.findIndex((id) => compareEntries(v, searchData.get(id)!) < 0);
    if (i < 0) i = searchIds.length;
    searchIds.splice(i, 0, v.id);
    searchTotal++;
  } else return;
  renderSearch();
  const li = searchEls.get(v.id);
  if (li && !had) flash(li.firstElementChild!);
}

searchInput.addEventListener(
  'input',
  debounce(() => {
    searchText = searchInput.value.trim();
    void runSearch();
  }, 250),
);

// ------------------------------------------------------------------ player

function playVideo(v: Q.Video): void {
  playingId = v.id;
  for (const el of app.querySelectorAll('.row.playing')) el.classList.remove('playing');
  for (const el of app.querySelectorAll(`.node.video[data-id="${CSS.escape(v.id)}"] > .row`)) el.classList.add('playing');
  playerWrap.classList.add('has-video');
  const src = httpish(v.streamUrl);
  if (player.getAttribute('src') !== src) player.src = src;
  player.dataset.videoId = v.id;
  showPlayerMeta(v);
  player.play().catch(() => {
    /* autoplay may be refused; the controls are there */
  });
}

function showPlayerMeta(v: Q.Video, gone = false): void {
  playerTitle.textContent = gone ? `${v.name} (removed)` : v.name;
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
      thumbGen.set(v.id, (thumbGen.get(v.id) ?? 0) + 1);
      applyVideoUpdate(r.regenerateThumbnail);
    } catch (e) {
      showError(e);
    } finally {
      regen.disabled = false;
    }
  });
  items.push(h('dt', {}), h('dd', {}, regen));
  playerMeta.replaceChildren(...items);
}

function applyVideoUpdate(v: Q.Video): void {
  const n = nodes.get(v.id);
  if (n?.kind === 'video') upsert(v);
  if (searchData.has(v.id)) {
    searchData.set(v.id, v);
    renderSearch();
  }
  if (playingId === v.id) showPlayerMeta(v);
}

// ------------------------------------------------------------------ live changes

let lastSeq: number | null = null;
let refreshing: Promise<void> | null = null;
let refreshAgain = false;
let buffered: Q.LibraryChange[] = [];

/** Refetch everything shown (RESYNC, a sequence gap, a reconnect, a new token). */
function refreshAll(reason: string): Promise<void> {
  logLine('REFETCH', reason);
  if (refreshing) {
    refreshAgain = true;
    return refreshing;
  }
  refreshing = (async () => {
    do {
      refreshAgain = false;
      try {
        await loadRoots();
        await Promise.all([reloadExpanded(), searchText ? runSearch() : Promise.resolve(), loadStatus()]);
        refreshCounts();
      } catch (e) {
        showError(e);
      }
    } while (refreshAgain);
    refreshing = null;
    const replay = buffered;
    buffered = [];
    for (const ch of replay) applyChange(ch);
  })();
  return refreshing;
}

function logLine(kind: string, text: string): void {
  const li = h(
    'li',
    { class: `k-${kind.toLowerCase()}`, 'data-testid': 'change-item', 'data-kind': kind },
    h('time', { text: new Date().toLocaleTimeString() }),
    h('b', { text: kind }),
    h('span', { text }),
  );
  logEl.prepend(li);
  while (logEl.children.length > 60) logEl.lastElementChild!.remove();
}

function onLibraryChange(ch: Q.LibraryChange): void {
  const seq = Number(ch.sequence);
  const gap = lastSeq != null && (seq > lastSeq + 1 || seq <= lastSeq);
  const prev = lastSeq;
  lastSeq = seq;
  if (ch.kind === 'RESYNC') {
    logLine('RESYNC', 'events were missed');
    void refreshAll('after RESYNC');
    return;
  }
  const show = (p: string | null) => (p === '' ? `${ch.rootPath ?? ''} (root)` : (p ?? '?'));
  logLine(ch.kind, ch.kind === 'MOVED' ? `${show(ch.oldPath)} → ${show(ch.path)}` : show(ch.path));
  if (gap) {
    void refreshAll(`sequence gap ${prev} → ${seq}`);
  }
  if (refreshing) {
    buffered.push(ch);
    return;
  }
  applyChange(ch);
}

function applyChange(ch: Q.LibraryChange): void {
  searchApply(ch);
  if (ch.kind === 'REMOVED') {
    if (ch.id) removeNode(ch.id);
    if (ch.id && ch.id === playingId) {
      const t = playerTitle.textContent ?? '';
      if (!t.endsWith('(removed)')) playerTitle.textContent = `${t} (removed)`;
    }
    refreshCounts();
    return;
  }
  const e = ch.entry;
  if (!e) {
    // ADDED/UPDATED/MOVED without an entry: we cannot place it; refetch.
    void refreshAll(`${ch.kind} without entry`);
    return;
  }
  const parentId = e.__typename === 'Folder' ? (e.parent?.id ?? null) : e.folder.id;
  if (parentId == null) {
    // A library root appeared or changed.
    if (!rootIds.includes(e.id)) void loadRoots().catch(showError);
    else upsert(e);
    refreshCounts();
    return;
  }
  const parent = nodes.get(parentId);
  const existing = nodes.get(e.id);
  const oldParent = parentOf.get(e.id);
  if (existing && oldParent !== parentId) detach(e.id);
  if (parent?.kind === 'folder' && parent.children) {
    const isNew = !existing || oldParent !== parentId;
    const renamed = !!existing && existing.data.name !== e.name;
    const n = upsert(e);
    if (isNew) attachSorted(parent, n);
    else if (renamed) {
      // A rename in place may change the order.
      const i = parent.children.indexOf(e.id);
      if (i >= 0) {
        parent.children.splice(i, 1);
        parent.totalCount--;
        parentOf.delete(e.id);
        attachSorted(parent, n);
      }
    }
    if (nodes.has(e.id) && (ch.kind === 'ADDED' || ch.kind === 'MOVED')) flash(n.el.firstElementChild!);
  } else if (existing) {
    // Moved somewhere not shown.
    removeNode(e.id);
  }
  if (e.__typename === 'Video' && e.id === playingId) showPlayerMeta(e);
  refreshCounts();
}

// ------------------------------------------------------------------ sync progress

interface Shown {
  jobId: string;
  sequence: number;
  state: Q.JobState;
  mine: boolean;
}
let shown: Shown | null = null;
const TERMINAL: Q.JobState[] = ['SUCCEEDED', 'FAILED', 'CANCELLED'];

function showProgress(p: Q.SyncProgress, opts: { mine?: boolean; errors?: Q.SyncJob['errors'] } = {}): void {
  const seq = Number(p.sequence);
  if (shown && p.jobId === shown.jobId) {
    if (seq < shown.sequence) return;
  } else if (shown && !TERMINAL.includes(shown.state) && shown.mine && !opts.mine) {
    return; // keep following the job this user started
  }
  shown = { jobId: p.jobId, sequence: seq, state: p.state, mine: opts.mine ?? (shown?.jobId === p.jobId && shown.mine) };
  const terminal = TERMINAL.includes(p.state);
  const pct = p.phase === 'DONE' || terminal ? 100 : p.total ? Math.min(100, (100 * p.done) / p.total) : null;
  progEl.dataset.state = p.state;
  progEl.dataset.phase = p.phase;
  progEl.dataset.done = String(p.done);
  progEl.dataset.total = p.total == null ? '' : String(p.total);
  progEl.dataset.jobId = p.jobId;
  progEl.classList.toggle('indeterminate', pct == null);
  progEl.classList.toggle('active', !terminal);
  if (pct == null) progEl.removeAttribute('aria-valuenow');
  else progEl.setAttribute('aria-valuenow', String(Math.round(pct)));
  progFill.style.width = pct == null ? '' : `${pct}%`;
  const totalTxt = p.total == null ? '' : `${p.done}/${p.total}`;
  const stateTxt = terminal ? p.state.toLowerCase() : p.phase.toLowerCase();
  progLabel.textContent = [stateTxt, totalTxt, terminal ? '' : (p.currentPath ?? '')].filter(Boolean).join(' · ');
  progLabel.title = p.currentPath ?? '';
  const counts = [
    ['added', p.added],
    ['updated', p.updated],
    ['removed', p.removed],
    ['moved', p.moved],
    ['failed', p.failed],
  ] as const;
  countsEl.replaceChildren(
    ...counts.map(([k, v]) => h('span', { class: `c c-${k}${v ? '' : ' zero'}`, 'data-testid': `sync-${k}`, text: `${v} ${k}` })),
    h('span', { class: 'c elapsed', text: `${p.elapsedSeconds.toFixed(1)} s` }),
  );
  if (opts.errors?.length) {
    countsEl.append(h('span', { class: 'c c-failed', title: opts.errors.map((x) => `${x.path}: ${x.message}`).join('\n'), text: `${opts.errors.length} error(s)` }));
  }
  cancelBtn.disabled = terminal;
  syncBtn.disabled = false;
}

function showJob(j: Q.SyncJob, mine = false): void {
  showProgress({ ...j.progress, jobId: j.progress.jobId ?? j.id, state: j.state }, { mine, errors: j.errors });
}

syncBtn.addEventListener('click', async () => {
  syncBtn.disabled = true;
  try {
    const r = await api.gql<Q.SyncLibraryResult>(Q.SYNC_LIBRARY, { mode: syncMode.value });
    showJob(r.syncLibrary, true);
  } catch (e) {
    showError(e);
  } finally {
    syncBtn.disabled = false;
  }
});

cancelBtn.addEventListener('click', async () => {
  if (!shown) return;
  cancelBtn.disabled = true;
  try {
    const r = await api.gql<Q.CancelSyncResult>(Q.CANCEL_SYNC, { id: shown.jobId });
    if (r.cancelSync) showJob(r.cancelSync, shown.mine);
  } catch (e) {
    showError(e);
    cancelBtn.disabled = false;
  }
});

// ------------------------------------------------------------------ watcher

let watcher: Q.WatcherStatus | null = null;

function showWatcher(w: Q.WatcherStatus): void {
  watcher = w;
  watcherBtn.disabled = false;
  watcherBtn.dataset.enabled = String(w.enabled);
  watcherBtn.setAttribute('aria-checked', String(w.enabled));
  watcherBtn.querySelector('.toggle-label')!.textContent = w.enabled ? 'Watching' : 'Watcher off';
  watcherBtn.title = w.enabled ? 'Stop watching the library' : 'Start watching the library';
  const bits = [w.enabled ? w.mode.toLowerCase() : 'stopped'];
  if (w.enabled && w.pendingPaths) bits.push(`${w.pendingPaths} pending`);
  if (w.lastEventAt) bits.push(`last event ${fmtTime(w.lastEventAt)}`);
  if (w.lastSyncAt) bits.push(`last sync ${fmtTime(w.lastSyncAt)}`);
  watcherStatusEl.textContent = bits.join(' · ');
  watcherStatusEl.title = `roots: ${w.roots.join(', ')}\nsettle: ${w.settleMs} ms`;
  watcherErrEl.hidden = !w.error;
  watcherErrEl.textContent = w.error ?? '';
}

watcherBtn.addEventListener('click', async () => {
  watcherBtn.disabled = true;
  try {
    if (watcher?.enabled) {
      const r = await api.gql<{ stopWatcher: Q.WatcherStatus }>(Q.STOP_WATCHER);
      showWatcher(r.stopWatcher);
    } else {
      const r = await api.gql<{ startWatcher: Q.WatcherStatus }>(Q.START_WATCHER);
      showWatcher(r.startWatcher);
    }
  } catch (e) {
    showError(e);
  } finally {
    watcherBtn.disabled = false;
  }
});

async function loadStatus(): Promise<void> {
  const r = await api.gql<Q.StatusResult>(Q.STATUS);
  showWatcher(r.watcher);
  const job = r.currentSync ?? r.syncJobs[0];
  if (job && (!shown || shown.jobId !== job.id || Number(job.progress.sequence) >= shown.sequence)) showJob(job);
}

// ------------------------------------------------------------------ connection + auth

function setConn(state: api.ConnState, detail?: string): void {
  connEl.dataset.state = state;
  connEl.textContent = { connecting: 'connecting…', connected: 'live', reconnecting: 'reconnecting…', closed: 'offline', unauthorized: 'token needed' }[state];
  connEl.title = detail ?? 'live updates';
}

let subs: (() => void)[] = [];
let initialDone = false;

function startLive(): void {
  for (const u of subs) u();
  subs = [];
  lastSeq = null;
  api.connect({
    onState: setConn,
    onConnected: (wasRetry) => {
      lastSeq = null;
      // A reconnect may have missed events; the first connection may have raced the initial load.
      if (wasRetry || initialDone) void refreshAll(wasRetry ? 'reconnected' : 'connected');
    },
  });
  subs.push(
    api.subscribe<Q.LibraryChangedResult>(Q.SUB_LIBRARY, {}, {
      next: (d) => onLibraryChange(d.libraryChanged),
      error: showError,
    }),
    api.subscribe<Q.SyncProgressResult>(Q.SUB_PROGRESS, {}, {
      next: (d) => showProgress(d.syncProgress),
      error: showError,
    }),
    api.subscribe<Q.WatcherStatusResult>(Q.SUB_WATCHER, {}, {
      next: (d) => showWatcher(d.watcherStatus),
      error: showError,
    }),
  );
}

let askingToken = false;
api.onAuthRequired(() => {
  tokenBtn.hidden = false;
  if (askingToken) return;
  askingToken = true;
  tokenInput.value = api.getToken() ?? '';
  if (!tokenDialog.open) tokenDialog.showModal();
  tokenInput.focus();
});
tokenBtn.hidden = !api.getToken();
tokenBtn.addEventListener('click', () => {
  tokenInput.value = api.getToken() ?? '';
  askingToken = true;
  tokenDialog.showModal();
});
tokenDialog.addEventListener('close', () => {
  askingToken = false;
  const v = tokenDialog.returnValue;
  if (v === 'save') api.setToken(tokenInput.value.trim() || null);
  else if (v === 'clear') api.setToken(null);
  else return;
  tokenBtn.hidden = !api.getToken();
  startLive();
  void refreshAll('new token');
});
tokenDialog.querySelector('[data-testid="token-clear"]')!.addEventListener('click', () => tokenDialog.close('clear'));

// ------------------------------------------------------------------ boot

renderRoots();
startLive();
Promise.all([loadRoots(), loadStatus().catch(showError)])
  .catch(showError)
  .finally(() => {
    initialDone = true;
    document.body.dataset.ready = 'true';
  });

// Handy when debugging from the console.
Object.assign(window, { gqlMedia: { nodes, refreshAll } });
