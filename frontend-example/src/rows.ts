// Row components for folders and videos. They know nothing of the tree, the search or the player:
// what a click does is a callback handed in.
import type * as Q from './queries';
import { httpish } from './dom';
import { fmtDuration, fmtSize, h } from './format';

/** Bumped when a thumbnail is regenerated, so rows showing it reload the image. */
const thumbGen = new Map<string, number>();
export function bumpThumbnail(id: string): void {
  thumbGen.set(id, (thumbGen.get(id) ?? 0) + 1);
}
function bust(url: string): string {
  return `${url}${url.includes('?') ? '&' : '?'}_v=${Date.now().toString(36)}`;
}

/** A click on the row, or Enter or Space on it (it is the focusable treeitem), runs `fn`. */
function onActivate(row: HTMLElement, fn: () => void): void {
  row.addEventListener('click', fn);
  row.addEventListener('keydown', (ev) => {
    if (ev.target !== row || ev.altKey || ev.ctrlKey || ev.metaKey) return;
    if (ev.key === 'Enter' || ev.key === ' ') {
      ev.preventDefault();
      fn();
    }
  });
}

// Structure: <li role="none" class="node"> <div role="treeitem" class="row"> [<ul role="group">] </li>.
// The treeitem is the row alone, so its name is the row's text and not its children's; the
// depth is given by aria-level (set by whoever places the row).

export interface FolderRow {
  readonly el: HTMLLIElement;
  /** The focusable treeitem. */
  readonly item: HTMLElement;
  /** The list that holds the folder's children. */
  readonly childList: HTMLUListElement;
  update(f: Q.Folder, expanded: boolean): void;
}

export function folderRow(f: Q.Folder, onToggle: () => void): FolderRow {
  const li = h('li', { class: 'node folder', role: 'none', 'data-id': f.id });
  const count = h('span', { 'data-testid': 'folder-count' });
  const row = h(
    'div',
    { class: 'row', role: 'treeitem', tabindex: -1, 'aria-expanded': 'false', 'aria-level': 1, 'data-testid': 'folder-row' },
    h('span', { class: 'twisty', 'aria-hidden': 'true' }),
    h('span', { class: 'icon', 'aria-hidden': 'true' }),
    h('span', { class: 'name' }),
    h('span', { class: 'count', title: 'videos in this folder and below' }, count, h('span', { class: 'sr-only', text: ' videos,' })),
    h('span', { class: 'size' }),
  );
  const childList = h('ul', { class: 'children', role: 'group' });
  li.append(row, childList);
  onActivate(row, onToggle);
  const update = (f: Q.Folder, expanded: boolean): void => {
    row.dataset.path = f.path;
    row.dataset.name = f.name;
    row.dataset.id = f.id;
    row.dataset.expanded = String(expanded);
    row.setAttribute('aria-expanded', String(expanded));
    row.querySelector('.twisty')!.textContent = expanded ? '▾' : '▸';
    row.classList.toggle('open', expanded);
    const name = f.parent == null ? f.rootPath || f.name || '/' : f.name;
    row.querySelector('.name')!.textContent = name;
    row.title = f.parent == null ? f.rootPath : f.path;
    count.textContent = String(f.videoCount);
    row.querySelector('.size')!.textContent = fmtSize(f.totalSize);
  };
  update(f, false);
  return { el: li, item: row, childList, update };
}

export interface VideoRowOptions {
  testid: 'video-row' | 'search-result';
  /** Show the path under the name (search results) instead of the resolution. */
  showPath: boolean;
  onPlay(v: Q.Video): void;
  isPlaying(id: string): boolean;
}

export interface VideoRow {
  readonly el: HTMLLIElement;
  /** The focusable treeitem. */
  readonly item: HTMLElement;
  update(v: Q.Video): void;
}

export function videoRow(v: Q.Video, opts: VideoRowOptions): VideoRow {
  const li = h('li', { class: 'node video', role: 'none', 'data-id': v.id });
  const row = h(
    'div',
    { class: 'row', role: 'treeitem', tabindex: -1, 'aria-level': 1, 'data-testid': opts.testid },
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
  let current = v;
  onActivate(row, () => opts.onPlay(current));
  const update = (v: Q.Video): void => {
    current = v;
    updateVideoRow(li, row, v, opts);
  };
  update(v);
  return { el: li, item: row, update };
}

function updateVideoRow(li: HTMLLIElement, row: HTMLElement, v: Q.Video, opts: VideoRowOptions): void {
  li.dataset.id = v.id;
  row.dataset.id = v.id;
  row.dataset.path = v.path;
  row.dataset.name = v.name;
  row.dataset.status = v.status;
  row.title = v.error ? `${v.path}\n${v.error}` : v.path;
  const playing = opts.isPlaying(v.id);
  row.classList.toggle('playing', playing);
  row.setAttribute('aria-current', String(playing));
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
  row.querySelector('.path')!.textContent = opts.showPath ? v.path : v.width && v.height ? `${v.width}×${v.height}` : '';
  const badge = row.querySelector<HTMLSpanElement>('.badge')!;
  badge.textContent = v.status === 'READY' ? '' : v.status.toLowerCase();
  badge.className = `badge ${v.status.toLowerCase()}`;
  row.querySelector('.dur')!.textContent = fmtDuration(v.durationSeconds);
  row.querySelector('.size')!.textContent = fmtSize(v.size);
}

/** Mark the rows of the playing video (tree and search alike) inside `root`. */
export function markPlaying(root: ParentNode, id: string): void {
  for (const el of root.querySelectorAll('.row.playing')) {
    el.classList.remove('playing');
    el.setAttribute('aria-current', 'false');
  }
  for (const el of root.querySelectorAll(`.node.video[data-id="${CSS.escape(id)}"] > .row`)) {
    el.classList.add('playing');
    el.setAttribute('aria-current', 'true');
  }
}

/** A "show more" item at the end of a tree or result list. */
export function moreItem(text: string, onMore: () => void, testid?: string): HTMLLIElement {
  const li = h('li', { class: 'node more-item', role: 'none' });
  const row = h('div', { class: 'row more', role: 'treeitem', tabindex: -1, 'aria-level': 1, 'data-testid': testid }, text);
  li.append(row);
  onActivate(row, onMore);
  return li;
}

/** A line of text in a tree (loading, empty) that is not an item. */
export function noteItem(text: string): HTMLLIElement {
  return h('li', { class: 'note', role: 'none', text });
}
