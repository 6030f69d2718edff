// The tree's rows on the page. It follows the model (as its TreeSink) and reports clicks through
// the handlers it is given.
import type * as Q from '../queries';
import { flash, reconcile } from '../dom';
import { TreeKeys } from '../keynav';
import { folderRow, moreItem, noteItem, videoRow, type FolderRow, type VideoRow } from '../rows';
import type { FolderNode, TreeNode, TreeSink, VideoNode } from './model';

export interface TreeHandlers {
  onToggle(folderId: string): void;
  onExpand(folderId: string, expanded: boolean): void;
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
  ) {
    new TreeKeys(root, {
      expand: (item, open) => {
        const id = item.closest<HTMLElement>('li[data-id]')?.dataset.id;
        if (id) handlers.onExpand(id, open);
      },
    });
  }

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
    if (items.length === 0) items.push(noteItem(loadedOnce ? 'No library roots.' : 'Loading…'));
    reconcile(this.root, items);
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
      ul.replaceChildren(noteItem('Loading…'));
      return;
    }
    const items: HTMLLIElement[] = [];
    for (const id of n.children) {
      const c = this.shown.get(id);
      if (c) items.push(c.row.el);
    }
    if (n.hasMore) {
      items.push(moreItem(`Show more (${n.totalCount - n.children.length} left)`, () => this.handlers.onMore(n.data.id), 'load-more'));
    } else if (n.children.length === 0) {
      items.push(noteItem('Empty folder'));
    }
    const level = String(Number(s.row.item.getAttribute('aria-level') ?? 1) + 1);
    for (const li of items) li.querySelector(':scope > [role="treeitem"]')?.setAttribute('aria-level', level);
    reconcile(ul, items);
  }
}
