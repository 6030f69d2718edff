// Fetching the tree from the server: roots, a folder's pages, a refetch of what is expanded, and
// the folder counters.
import * as api from '../api';
import * as Q from '../queries';
import type { ShowError } from '../banner';
import { debounce } from '../format';
import type { FolderNode, TreeModel } from './model';

const PAGE = 200;
/** Largest page asked for when refetching what was shown. */
const RELOAD_PAGE = 500;
/** Folders per counter query (aliases in one document). */
const COUNTS_CHUNK = 50;
const COUNTS_DEBOUNCE_MS = 250;

export class TreeLoader {
  /** Refetch the counters of every loaded folder, at most once per quarter second. */
  readonly refreshCounts: () => void;

  constructor(
    private readonly model: TreeModel,
    private readonly showError: ShowError,
  ) {
    this.refreshCounts = debounce(() => void this.loadCounts(), COUNTS_DEBOUNCE_MS);
  }

  async setExpanded(n: FolderNode, expanded: boolean): Promise<void> {
    this.model.setExpanded(n, expanded);
    if (expanded && n.children == null) await this.loadEntries(n, 'reload');
  }

  /** Load a folder's entries: 'more' appends the next page, 'reload' refetches what is shown. */
  async loadEntries(n: FolderNode, how: 'more' | 'reload'): Promise<void> {
    if (n.loading) {
      await n.loading;
      if (how === 'more') return;
    }
    n.loading = (how === 'more' ? this.loadMore(n) : this.reload(n))
      .catch((e) => {
        this.showError(e);
        if (n.children == null) this.model.setExpanded(n, false);
      })
      .finally(() => {
        n.loading = null;
      });
    await n.loading;
  }

  private async loadMore(n: FolderNode): Promise<void> {
    const id = n.data.id;
    const r = await api.gql<Q.EntriesResult>(Q.ENTRIES, { id, first: PAGE, after: n.cursor });
    if (!r.node || this.model.get(id) !== n) return;
    const conn = r.node.entries;
    this.model.appendPage(
      n,
      conn.edges.map((e) => e.node),
      { cursor: conn.pageInfo.endCursor, hasMore: conn.pageInfo.hasNextPage, totalCount: conn.totalCount },
    );
  }

  /** Refetch as many entries as were shown (at least one page). */
  private async reload(n: FolderNode): Promise<void> {
    const id = n.data.id;
    const want = Math.max(PAGE, n.children?.length ?? 0);
    const entries: Q.Entry[] = [];
    let after: string | null = null;
    let hasMore = false;
    let total = 0;
    do {
      const r: Q.EntriesResult = await api.gql<Q.EntriesResult>(Q.ENTRIES, { id, first: Math.min(RELOAD_PAGE, want - entries.length), after });
      if (this.model.get(id) !== n) return;
      if (!r.node) {
        this.model.remove(id);
        return;
      }
      const conn = r.node.entries;
      for (const e of conn.edges) entries.push(e.node);
      after = conn.pageInfo.endCursor;
      hasMore = conn.pageInfo.hasNextPage;
      total = conn.totalCount;
    } while (hasMore && entries.length < want && after);
    this.model.replaceChildren(n, entries, { cursor: after, hasMore, totalCount: total });
  }

  async loadRoots(): Promise<void> {
    const r = await api.gql<Q.RootsResult>(Q.ROOTS);
    const { fresh, firstTime } = this.model.setRoots(r.roots);
    if (firstTime) await Promise.all(fresh.map((f) => this.setExpanded(f, true)));
  }

  /** Refetch every expanded folder, top-down. */
  async reloadExpanded(): Promise<void> {
    let level = this.model.roots().filter((n) => n.expanded);
    while (level.length) {
      await Promise.all(level.map((n) => this.loadEntries(n, 'reload')));
      level = this.model.expandedBelow(level);
    }
  }

  /** Refetch a folder (if loaded) and every expanded folder below it, top-down (a SUBTREE_CHANGED). */
  async reloadSubtree(n: FolderNode): Promise<void> {
    if (n.children == null) return;
    let level = [n];
    while (level.length) {
      await Promise.all(level.map((f) => this.loadEntries(f, 'reload')));
      level = this.model.expandedBelow(level);
    }
  }

  private async loadCounts(): Promise<void> {
    const ids = this.model.folderIds();
    for (let i = 0; i < ids.length; i += COUNTS_CHUNK) {
      const chunk = ids.slice(i, i + COUNTS_CHUNK);
      try {
        const r = await api.gql<Q.FolderCountsResult>(Q.folderCountsQuery(chunk));
        for (const v of Object.values(r)) {
          if (!v) continue;
          const n = this.model.folder(v.id);
          if (n) this.model.upsert({ ...n.data, videoCount: v.videoCount, totalSize: v.totalSize });
        }
      } catch (e) {
        this.showError(e);
      }
    }
  }
}
