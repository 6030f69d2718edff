// The sync panel: start and cancel a sync, and follow a job's progress.
import * as api from './api';
import * as Q from './queries';
import type { ShowError } from './banner';
import { h } from './format';

export interface SyncEls {
  syncButton: HTMLButtonElement;
  syncMode: HTMLSelectElement;
  syncCancel: HTMLButtonElement;
  progress: HTMLElement;
  progressFill: HTMLElement;
  progressLabel: HTMLElement;
  counts: HTMLElement;
}

interface Shown {
  jobId: string;
  sequence: number;
  state: Q.JobState;
  /** Started from this page: followed until it ends, whatever else runs. */
  mine: boolean;
}

const TERMINAL: Q.JobState[] = ['SUCCEEDED', 'FAILED', 'CANCELLED'];

/** Tells screen-reader users something (the page's polite live region). */
export type Announce = (text: string) => void;

export class SyncPanel {
  private shown: Shown | null = null;
  /** The last job whose end was announced: each end is said once. */
  private announcedJob: string | null = null;
  /** The progress shown last, for the announcement. */
  private last: { p: Q.SyncProgress; errors: number } | null = null;

  constructor(
    private readonly els: SyncEls,
    private readonly showError: ShowError,
    private readonly announce: Announce,
  ) {
    els.syncButton.addEventListener('click', () => void this.start());
    els.syncCancel.addEventListener('click', () => void this.cancel());
  }

  /** The latest job from a status query, unless what is shown is newer. */
  showLatest(job: Q.SyncJob | null | undefined): void {
    const s = this.shown;
    if (job && (!s || s.jobId !== job.id || Number(job.progress.sequence) >= s.sequence)) this.showJob(job);
  }

  showProgress = (p: Q.SyncProgress, opts: { mine?: boolean; errors?: Q.SyncJob['errors'] } = {}): void => {
    const { els } = this;
    const seq = Number(p.sequence);
    const s = this.shown;
    if (s && p.jobId === s.jobId) {
      // The answer to Sync may come after the job's own progress events (even its end).
      if (opts.mine && !s.mine) {
        s.mine = true;
        this.maybeAnnounce(false);
      }
      if (seq < s.sequence) return;
    } else if (s && !TERMINAL.includes(s.state) && s.mine && !opts.mine) {
      return; // keep following the job this user started
    }
    this.shown = { jobId: p.jobId, sequence: seq, state: p.state, mine: opts.mine ?? (s?.jobId === p.jobId && s.mine) };
    const terminal = TERMINAL.includes(p.state);
    this.last = { p, errors: opts.errors?.length ?? 0 };
    this.maybeAnnounce(s?.jobId === p.jobId && !TERMINAL.includes(s.state));
    const pct = p.phase === 'DONE' || terminal ? 100 : p.total ? Math.min(100, (100 * p.done) / p.total) : null;
    const prog = els.progress;
    prog.dataset.state = p.state;
    prog.dataset.phase = p.phase;
    prog.dataset.done = String(p.done);
    prog.dataset.total = p.total == null ? '' : String(p.total);
    prog.dataset.jobId = p.jobId;
    prog.classList.toggle('indeterminate', pct == null);
    prog.classList.toggle('active', !terminal);
    if (pct == null) prog.removeAttribute('aria-valuenow');
    else prog.setAttribute('aria-valuenow', String(Math.round(pct)));
    els.progressFill.style.width = pct == null ? '' : `${pct}%`;
    const totalTxt = p.total == null ? '' : `${p.done}/${p.total}`;
    const stateTxt = terminal ? p.state.toLowerCase() : p.phase.toLowerCase();
    els.progressLabel.textContent = [stateTxt, totalTxt, terminal ? '' : (p.currentPath ?? '')].filter(Boolean).join(' · ');
    els.progressLabel.title = p.currentPath ?? '';
    const counts = [
      ['added', p.added],
      ['updated', p.updated],
      ['removed', p.removed],
      ['moved', p.moved],
      ['failed', p.failed],
    ] as const;
    els.counts.replaceChildren(
      ...counts.map(([k, v]) => h('span', { class: `c c-${k}${v ? '' : ' zero'}`, 'data-testid': `sync-${k}`, text: `${v} ${k}` })),
      h('span', { class: 'c elapsed', text: `${p.elapsedSeconds.toFixed(1)} s` }),
    );
    if (opts.errors?.length) {
      els.counts.append(
        h('span', { class: 'c c-failed', title: opts.errors.map((x) => `${x.path}: ${x.message}`).join('\n'), text: `${opts.errors.length} error(s)` }),
      );
    }
    els.syncCancel.disabled = terminal;
    els.syncButton.disabled = false;
  };

  /**
   * Say that the shown job ended, once: a sync started here, or the failure of any sync seen
   * running. Not the watcher's syncs that go well (one per burst of file events: noise), nor the
   * old job shown at page load.
   */
  private maybeAnnounce(seenRunning: boolean): void {
    const s = this.shown;
    const last = this.last;
    if (!s || !last || last.p.jobId !== s.jobId || !TERMINAL.includes(s.state) || this.announcedJob === s.jobId) return;
    if (!s.mine && !(seenRunning && s.state === 'FAILED')) return;
    this.announcedJob = s.jobId;
    this.announce(endText(last.p, last.errors));
  }

  private showJob(j: Q.SyncJob, mine = false): void {
    this.showProgress({ ...j.progress, jobId: j.progress.jobId ?? j.id, state: j.state }, { mine, errors: j.errors });
  }

  private async start(): Promise<void> {
    const btn = this.els.syncButton;
    btn.disabled = true;
    try {
      const r = await api.gql<Q.SyncLibraryResult>(Q.SYNC_LIBRARY, { mode: this.els.syncMode.value });
      this.showJob(r.syncLibrary, true);
    } catch (e) {
      this.showError(e);
    } finally {
      btn.disabled = false;
    }
  }

  private async cancel(): Promise<void> {
    const s = this.shown;
    if (!s) return;
    this.els.syncCancel.disabled = true;
    try {
      const r = await api.gql<Q.CancelSyncResult>(Q.CANCEL_SYNC, { id: s.jobId });
      if (r.cancelSync) this.showJob(r.cancelSync, s.mine);
    } catch (e) {
      this.showError(e);
      this.els.syncCancel.disabled = false;
    }
  }
}

function endText(p: Q.SyncProgress, errors: number): string {
  if (p.state === 'CANCELLED') return 'Sync cancelled.';
  if (p.state === 'FAILED') return `Sync failed${errors ? ` with ${errors} error${errors === 1 ? '' : 's'}` : ''}.`;
  const counts = `${p.added} added, ${p.updated} updated, ${p.removed} removed, ${p.moved} moved`;
  return `Sync done: ${counts}${p.failed ? `, ${p.failed} failed` : ''}.`;
}
