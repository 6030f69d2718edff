// The library tree: model, view and loader wired together, and how it follows library changes.
import type * as Q from '../queries';
import type { ShowError } from '../banner';
import { TreeLoader } from './load';
import { TreeModel } from './model';
import { TreeView } from './view';

export interface TreeOptions {
  showError: ShowError;
  onPlay(v: Q.Video): void;
  isPlaying(videoId: string): boolean;
  /** A change could not be placed: everything shown should be refetched. */
  onStale(reason: string): void;
}

export class Tree {
  readonly model: TreeModel;
  private readonly view: TreeView;
  private readonly loader: TreeLoader;

  constructor(
    root: HTMLUListElement,
    private readonly opts: TreeOptions,
  ) {
    this.view = new TreeView(root, {
      onToggle: (id) => {
        const n = this.model.folder(id);
        if (n) void this.loader.setExpanded(n, !n.expanded);
      },
      onExpand: (id, expanded) => {
        const n = this.model.folder(id);
        if (n && n.expanded !== expanded) void this.loader.setExpanded(n, expanded);
      },
      onMore: (id) => {
        const n = this.model.folder(id);
        if (n) void this.loader.loadEntries(n, 'more');
      },
      onPlay: opts.onPlay,
      isPlaying: opts.isPlaying,
    });
    this.model = new TreeModel(this.view);
    this.loader = new TreeLoader(this.model, opts.showError);
    this.view.rootsChanged([], false);
  }

  /** First load: the roots, opened. */
  load(): Promise<void> {
    return this.loader.loadRoots();
  }

  /** Refetch the roots and every expanded folder, then the counters. */
  async refresh(): Promise<void> {
    await this.loader.loadRoots();
    await this.loader.reloadExpanded();
    this.loader.refreshCounts();
  }

  /** A fresher copy of a video (e.g. after its thumbnail was regenerated). */
  applyVideo(v: Q.Video): void {
    if (this.model.get(v.id)?.kind === 'video') this.model.upsert(v);
  }

  apply(ch: Q.LibraryChange): void {
    const { model } = this;
    if (ch.kind === 'REMOVED') {
      if (ch.id) model.remove(ch.id);
      this.loader.refreshCounts();
      return;
    }
    if (ch.kind === 'SUBTREE_CHANGED') {
      // Many entries changed under this folder in one job: refetch what is shown of it.
      const n = ch.id ? model.folder(ch.id) : undefined;
      if (n) void this.loader.reloadSubtree(n).catch(this.opts.showError);
      this.loader.refreshCounts();
      return;
    }
    const e = ch.entry;
    if (!e) {
      // ADDED/UPDATED/MOVED without an entry: we cannot place it.
      this.opts.onStale(`${ch.kind} without entry`);
      return;
    }
    const parentId = e.__typename === 'Folder' ? (e.parent?.id ?? null) : e.folder.id;
    if (parentId == null) {
      // A library root appeared or changed.
      if (!model.rootIds.includes(e.id)) void this.loader.loadRoots().catch(this.opts.showError);
      else model.upsert(e);
      this.loader.refreshCounts();
      return;
    }
    const parent = model.folder(parentId);
    const existing = model.get(e.id);
    const oldParent = model.parentOf.get(e.id);
    if (existing && oldParent !== parentId) model.detach(e.id);
    if (parent?.children) {
      const isNew = !existing || oldParent !== parentId;
      const renamed = !!existing && existing.data.name !== e.name;
      const n = model.upsert(e);
      if (isNew) model.attachSorted(parent, n);
      else if (renamed) model.resort(parent, n); // a rename in place may change the order
      if (model.get(e.id) && (ch.kind === 'ADDED' || ch.kind === 'MOVED')) this.view.flash(e.id);
    } else if (existing) {
      // Moved somewhere not shown.
      model.remove(e.id);
    }
    this.loader.refreshCounts();
  }
}
