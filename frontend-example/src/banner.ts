// The error banner: one message at a time, hidden after a while or on a click.
import { AuthError } from './api';

const SHOW_MS = 8000;

export class Banner {
  private timer: ReturnType<typeof setTimeout> | undefined;

  constructor(private readonly el: HTMLElement) {
    el.addEventListener('click', () => (el.hidden = true));
  }

  /** Show an error. Auth errors are left to the token dialog, socket closes to the live badge. */
  show(e: unknown): void {
    if (e instanceof AuthError) return;
    if (typeof CloseEvent !== 'undefined' && e instanceof CloseEvent) return;
    const msg = e instanceof Error ? e.message : Array.isArray(e) ? e.map((x) => x?.message ?? String(x)).join('; ') : String(e);
    console.error(e);
    this.el.textContent = msg;
    this.el.hidden = false;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => (this.el.hidden = true), SHOW_MS);
  }
}

/** What modules are handed to report an error. */
export type ShowError = (e: unknown) => void;
