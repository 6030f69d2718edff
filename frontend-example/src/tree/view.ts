// The tree's rows on the page. It follows the model (as its TreeSink) and reports clicks through
// the handlers it is given.
import type * as Q from '../queries';
import { flash } from '../dom';
import { h } from '../format';
import { folderRow, videoRow, type FolderRow, type VideoRow } from '../rows';
import type { FolderNode, TreeNode, TreeSink, VideoNode } from './model';

export interface TreeHandlers {
  onToggle(folderId: string): void;
  onMore(folderId: string): void;
  onPlay(v: Q.Video): void;
  isPlaying(videoId: string): boolean;
}

type Shown = { kind: 'folder'; node: FolderNode; row: FolderRow } | { kind: 'video'; node: VideoNode; row: VideoRow };

/** Child lists are re-rendered at most once per frame: a sync can publish thousands of events. */
const RENDER_DELAY_MS = 16;

export class TreeView implements TreeSink {
  private readonly shown = new Map<string, Shown>();
  private readonly dirty = new Set<FolderNode>();
  private renderTimer: ReturnType<typeof setTimeout> | null = null;

  constructor(
    private readonly root: HTMLUListElement,
    private readonly handlers: TreeHandlers,
  ) {}

  created(n: TreeNode): void {
    const id = n.data.id;
    if (n.kind === 'folder') {
      const row = folderRow(n.data, () => this.handlers.onToggle(id));
      this.shown.set(id, { kind: 'folder', node: n, row });
    } else {
      const row = videoRow(n.data, { testid: 'video-row', showPath: false, onPlay: this.handlers.onPlay, isPlaying: this.handlers.isPlaying });
      this.shown.set(id, { kind: 'video', node: n, row });
    }
  }

  changed(n: TreeNode): void {
    const s = this.shown.get(n.data.id);
    if (!s || s.node !== n) return;
    if (s.kind === 'folder') s.row.update(s.node.data, s.node.expanded);
    else s.row.update(s.node.data);
  }

  removed(n: TreeNode): void {
    const s = this.shown.get(n.data.id);
    if (!s || s.node !== n) return;
    this.shown.delete(n.data.id);
    s.row.el.remove();
  }

  childrenChanged(n: FolderNode): void {
    this.dirty.add(n);
    this.renderTimer ??= setTimeout(() => {
      this.renderTimer = null;
      const batch = [...this.dirty];
      this.dirty.clear();
      for (const d of batch) if (this.shown.get(d.data.id)?.node === d) this.renderChildren(d);
    }, RENDER_DELAY_MS);
  }

  rootsChanged(rootIds: readonly string[], loadedOnce: boolean): void {
    const items: HTMLLIElement[] = [];
    for (const id of rootIds) {
      const s = this.shown.get(id);
      if (s) items.push(s.row.el);
    }
    if (items.length === 0) items.push(h('li', { class: 'note', text: loadedOnce ? 'No library roots.' : 'Loading…' }));
    this.root.replaceChildren(...items);
  }

  /** Highlight a row that just appeared or moved. */
  flash(id: string): void {
    const s = this.shown.get(id);
    if (s) flash(s.row.el.firstElementChild!);
  }

  private renderChildren(n: FolderNode): void {
    const s = this.shown.get(n.data.id);
    if (s?.kind !== 'folder') return;
    const ul = s.row.childList;
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
      const c = this.shown.get(id);
      if (c) items.push(c.row.el);
    }
    if (n.hasMore) {
      const more = h('button', { type: 'button', class: 'more', 'data-testid': 'load-more', text: `Show more (${n.totalCount - n.children.length} left)` });
      more.addEventListener('click', () => this.handlers.onMore(n.data.id));
      items.push(h('li', { class: 'note' }, more));
    } else if (n.children.length === 0) {
      items.push(h('li', { class: 'note', text: 'Empty folder' }));
    }
    ul.replaceChildren(...items);
  }
}
