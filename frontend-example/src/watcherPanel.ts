// The watcher panel: its state and the start/stop switch.
import * as api from './api';
import * as Q from './queries';
import type { ShowError } from './banner';
import { fmtTime } from './format';

export interface WatcherEls {
  watcherToggle: HTMLButtonElement;
  watcherStatus: HTMLElement;
  watcherError: HTMLElement;
}

export class WatcherPanel {
  private watcher: Q.WatcherStatus | null = null;

  constructor(
    private readonly els: WatcherEls,
    private readonly showError: ShowError,
  ) {
    els.watcherToggle.addEventListener('click', () => void this.toggle());
  }

  show = (w: Q.WatcherStatus): void => {
    const { els } = this;
    this.watcher = w;
    const btn = els.watcherToggle;
    btn.disabled = false;
    btn.dataset.enabled = String(w.enabled);
    btn.setAttribute('aria-checked', String(w.enabled));
    btn.querySelector('.toggle-label')!.textContent = w.enabled ? 'Watching' : 'Watcher off';
    btn.title = w.enabled ? 'Stop watching the library' : 'Start watching the library';
    const bits = [w.enabled ? w.mode.toLowerCase() : 'stopped'];
    if (w.enabled && w.pendingPaths) bits.push(`${w.pendingPaths} pending`);
    if (w.lastEventAt) bits.push(`last event ${fmtTime(w.lastEventAt)}`);
    if (w.lastSyncAt) bits.push(`last sync ${fmtTime(w.lastSyncAt)}`);
    els.watcherStatus.textContent = bits.join(' · ');
    els.watcherStatus.title = `roots: ${w.roots.join(', ')}\nsettle: ${w.settleMs} ms`;
    els.watcherError.hidden = !w.error;
    els.watcherError.textContent = w.error ?? '';
  };

  private async toggle(): Promise<void> {
    const btn = this.els.watcherToggle;
    btn.disabled = true;
    try {
      if (this.watcher?.enabled) {
        const r = await api.gql<{ stopWatcher: Q.WatcherStatus }>(Q.STOP_WATCHER);
        this.show(r.stopWatcher);
      } else {
        const r = await api.gql<{ startWatcher: Q.WatcherStatus }>(Q.START_WATCHER);
        this.show(r.startWatcher);
      }
    } catch (e) {
      this.showError(e);
    } finally {
      btn.disabled = false;
    }
  }
}
