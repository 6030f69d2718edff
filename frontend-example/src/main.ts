// Boot: lay out the page, make the modules, wire their callbacks, and start loading.
import './style.css';
import * as api from './api';
import * as Q from './queries';
import { Auth } from './auth';
import { Banner } from './banner';
import { DownloadsPanel } from './downloads';
import { announce, mount } from './dom';
import { Live } from './live';
import { Player } from './player';
import { RootsPanel } from './roots';
import { Search } from './search';
import { SyncPanel } from './syncPanel';
import { Tree } from './tree';
import { WatcherPanel } from './watcherPanel';

const els = mount(document.getElementById('app')!);
const banner = new Banner(els.banner);
const showError = (e: unknown) => banner.show(e);

const player = new Player(els, {
  showError,
  onVideoUpdated: (v) => {
    tree.applyVideo(v);
    search.applyVideo(v);
    player.applyVideo(v);
  },
});
const rows = { showError, onPlay: player.play, isPlaying: player.isPlaying };
const tree = new Tree(els.tree, { ...rows, onStale: (reason) => void live.refreshAll(reason) });
const search = new Search(
  { input: els.searchInput, toggle: els.searchToggle, header: els.header, results: els.results, list: els.resultList, count: els.searchCount, tree: els.tree },
  rows,
);
const syncPanel = new SyncPanel(els, showError, (text) => announce(els.announcer, text));
const watcherPanel = new WatcherPanel(els, showError);

async function loadStatus(): Promise<void> {
  const r = await api.gql<Q.StatusResult>(Q.STATUS);
  watcherPanel.show(r.watcher);
  syncPanel.showLatest(r.currentSync ?? r.syncJobs[0]);
}

// Library folders: added and removed by path (its own markup, after the sync/watcher bar).
const rootsPanel = new RootsPanel(document.querySelector('.bar')!, {
  showError,
  announce: (text) => announce(els.announcer, text),
  onChanged: (reason) => void live.refreshAll(reason),
});

// HLS downloads not merged, with a Merge button each (its own markup, after the folders panel).
const downloads = new DownloadsPanel(rootsPanel.el, { showError, announce: (text) => announce(els.announcer, text) });

const live = new Live(els, {
  showError,
  listeners: [search, tree, player, rootsPanel, downloads],
  refreshers: [() => tree.refresh(), () => search.refresh(), loadStatus, rootsPanel.refresh, downloads.refresh],
  onProgress: (p) => {
    syncPanel.showProgress(p);
    downloads.onProgress(p);
  },
  onWatcher: watcherPanel.show,
});
new Auth(els, () => {
  live.start();
  void live.refreshAll('new token');
});

live.start();
Promise.all([tree.load(), loadStatus().catch(showError), rootsPanel.refresh().catch(showError), downloads.refresh().catch(showError)])
  .catch(showError)
  .finally(() => {
    live.initialDone = true;
    document.body.dataset.ready = 'true';
  });

// Handy when debugging from the console.
Object.assign(window, { gqlMedia: { nodes: tree.model.nodes, refreshAll: live.refreshAll } });
