// The loaded part of the library as a tree of ids. No DOM: what changed is told to a TreeSink
// (the view), so the same model could drive another rendering.
import type * as Q from '../queries';

export interface FolderNode {
  kind: 'folder';
  data: Q.Folder;
  children: string[] | null; // null: not loaded yet
  expanded: boolean;
  cursor: string | null;
  hasMore: boolean;
  totalCount: number;
  loading: Promise<void> | null;
}
export interface VideoNode {
  kind: 'video';
  data: Q.Video;
}
export type TreeNode = FolderNode | VideoNode;

/** What the model tells its view. */
export interface TreeSink {
  /** A node was made (or replaced one of another kind): build its row. */
  created(n: TreeNode): void;
  /** A node's data or expanded state changed: update its row. */
  changed(n: TreeNode): void;
  /** A node left the model: drop its row. */
  removed(n: TreeNode): void;
  /** A folder's child list (or its loading state) changed. */
  childrenChanged(n: FolderNode): void;
  /** The list of roots changed. */
  rootsChanged(rootIds: readonly string[], loadedOnce: boolean): void;
}

/** Folders first, then by name without case, then by name. */
export function compareEntries(a: Q.Entry, b: Q.Entry): number {
  if (a.__typename !== b.__typename) return a.__typename === 'Folder' ? -1 : 1;
  const x = a.name.toLowerCase();
  const y = b.name.toLowerCase();
  if (x !== y) return x < y ? -1 : 1;
  return a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
}

export class TreeModel {
  readonly nodes = new Map<string, TreeNode>();
  /** child id -> folder id (null for roots) */
  readonly parentOf = new Map<string, string | null>();
  rootIds: string[] = [];
  loadedOnce = false;

  constructor(private readonly sink: TreeSink) {}

  get(id: string): TreeNode | undefined {
    return this.nodes.get(id);
  }

  folder(id: string): FolderNode | undefined {
    const n = this.nodes.get(id);
    return n?.kind === 'folder' ? n : undefined;
  }

  /** Insert or update a node for an entry; returns the node. Does not attach it to a parent list. */
  upsert(entry: Q.Entry): TreeNode {
    const existing = this.nodes.get(entry.id);
    if (existing && existing.kind === (entry.__typename === 'Folder' ? 'folder' : 'video')) {
      existing.data = entry;
      this.sink.changed(existing);
      return existing;
    }
    if (existing) this.remove(existing.data.id);
    const n: TreeNode =
      entry.__typename === 'Folder'
        ? { kind: 'folder', data: entry, children: null, expanded: false, cursor: null, hasMore: false, totalCount: 0, loading: null }
        : { kind: 'video', data: entry };
    this.nodes.set(entry.id, n);
    this.sink.created(n);
    return n;
  }

  setExpanded(n: FolderNode, expanded: boolean): void {
    n.expanded = expanded;
    this.sink.changed(n);
    this.sink.childrenChanged(n);
  }

  /** Forget a node and its loaded subtree, and detach it from its parent's list. */
  remove(id: string): boolean {
    const n = this.nodes.get(id);
    if (!n) return false;
    if (n.kind === 'folder' && n.children) for (const c of [...n.children]) this.forget(c);
    this.nodes.delete(id);
    this.detach(id);
    this.sink.removed(n);
    return true;
  }

  /** Drop a node and its loaded subtree from the maps (its parent's list is the caller's business). */
  forget(id: string): void {
    const n = this.nodes.get(id);
    if (n?.kind === 'folder' && n.children) for (const c of n.children) this.forget(c);
    this.nodes.delete(id);
    this.parentOf.delete(id);
    if (n) this.sink.removed(n);
  }

  /** Take a node out of its parent's child list. */
  detach(id: string): void {
    const p = this.parentOf.get(id);
    this.parentOf.delete(id);
    if (p == null) {
      if (this.rootIds.includes(id)) this.rootIds = this.rootIds.filter((r) => r !== id);
      return;
    }
    const pn = this.folder(p);
    if (pn?.children) {
      const i = pn.children.indexOf(id);
      if (i >= 0) {
        pn.children.splice(i, 1);
        pn.totalCount = Math.max(0, pn.totalCount - 1);
        this.sink.childrenChanged(pn);
      }
    }
  }

  /** Attach a node under parent at its sorted position (if the parent's children are loaded). */
  attachSorted(parent: FolderNode, node: TreeNode): void {
    if (!parent.children) return;
    if (parent.children.includes(node.data.id)) return;
    let i = 0;
    while (i < parent.children.length) {
      const c = this.nodes.get(parent.children[i]);
      if (c && compareEntries(node.data, c.data) < 0) break;
      i++;
    }
    // Past the loaded page: it will come with "show more".
    if (i === parent.children.length && parent.hasMore) {
      this.forget(node.data.id);
      return;
    }
    parent.children.splice(i, 0, node.data.id);
    parent.totalCount++;
    this.parentOf.set(node.data.id, parent.data.id);
    this.sink.childrenChanged(parent);
  }

  /** Put a renamed node back at its sorted place among its siblings. */
  resort(parent: FolderNode, node: TreeNode): void {
    if (!parent.children) return;
    const i = parent.children.indexOf(node.data.id);
    if (i < 0) return;
    parent.children.splice(i, 1);
    parent.totalCount--;
    this.parentOf.delete(node.data.id);
    this.attachSorted(parent, node);
  }

  /** Append a loaded page of a folder's entries. */
  appendPage(n: FolderNode, entries: Q.Entry[], page: { cursor: string | null; hasMore: boolean; totalCount: number }): void {
    for (const e of entries) {
      const c = this.upsert(e);
      if (!n.children!.includes(c.data.id)) n.children!.push(c.data.id);
      this.parentOf.set(c.data.id, n.data.id);
    }
    n.cursor = page.cursor;
    n.hasMore = page.hasMore;
    n.totalCount = page.totalCount;
    this.sink.childrenChanged(n);
  }

  /** Replace a folder's children by a fresh listing, forgetting the ones that are gone. */
  replaceChildren(n: FolderNode, entries: Q.Entry[], page: { cursor: string | null; hasMore: boolean; totalCount: number }): void {
    const fresh: string[] = [];
    for (const e of entries) {
      const c = this.upsert(e);
      fresh.push(c.data.id);
      this.parentOf.set(c.data.id, n.data.id);
    }
    const keep = new Set(fresh);
    for (const old of n.children ?? []) if (!keep.has(old) && this.parentOf.get(old) === n.data.id) this.forget(old);
    n.children = fresh;
    n.cursor = page.cursor;
    n.hasMore = page.hasMore;
    n.totalCount = page.totalCount;
    this.sink.childrenChanged(n);
  }

  /** Replace the roots; returns whether this was the first load. */
  setRoots(roots: Q.Folder[]): { fresh: FolderNode[]; firstTime: boolean } {
    const fresh = roots.map((f) => this.upsert(f) as FolderNode);
    const keep = new Set(fresh.map((f) => f.data.id));
    for (const id of this.rootIds) if (!keep.has(id)) this.forget(id);
    const firstTime = !this.loadedOnce;
    this.rootIds = fresh.map((f) => f.data.id);
    for (const id of this.rootIds) this.parentOf.set(id, null);
    this.loadedOnce = true;
    this.sink.rootsChanged(this.rootIds, this.loadedOnce);
    return { fresh, firstTime };
  }

  /** The expanded folders among the loaded children of `level`. */
  expandedBelow(level: FolderNode[]): FolderNode[] {
    const next: FolderNode[] = [];
    for (const n of level)
      for (const c of n.children ?? []) {
        const cn = this.folder(c);
        if (cn?.expanded) next.push(cn);
      }
    return next;
  }

  roots(): FolderNode[] {
    return this.rootIds.map((id) => this.folder(id)).filter((n): n is FolderNode => !!n);
  }

  folderIds(): string[] {
    return [...this.nodes.values()].filter((n) => n.kind === 'folder').map((n) => n.data.id);
  }
}
