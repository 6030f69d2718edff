// Library folders: the list of roots, a form to add one by path, and a Remove button for each.
// The panel builds its own markup (after the sync/watcher bar) and follows ROOT_ADDED/ROOT_REMOVED.
import './roots.css';
import * as api from './api';
import * as Q from './queries';
import type { ShowError } from './banner';
import { h } from './format';
import type { ChangeListener } from './live';

const ROOTS = `query Roots { roots { id rootPath videoCount(recursive: true) } }`;
const ADD_ROOT = `mutation AddRoot($path: String!) { addRoot(path: $path) { id rootPath } }`;
const REMOVE_ROOT = `mutation RemoveRoot($path: String!) { removeRoot(path: $path) }`;

interface RootRow {
  id: string;
  rootPath: string;
  videoCount: number;
}

export interface RootsOptions {
  showError: ShowError;
  /** Say something to screen reader users (the page's live region). */
  announce(text: string): void;
  /** The library's roots changed: refetch what the page shows. */
  onChanged(reason: string): void;
}

/** Why the server refused, in words, with its code (ROOT_OVERLAP, ROOT_FROM_CONFIG, ...). */
function refusal(e: unknown): string | null {
  if (!(e instanceof api.GraphQLRequestError) || !e.errors.length) return null;
  const first = e.errors[0];
  const code = first.extensions?.code;
  return code ? `${first.message} (${String(code)})` : first.message;
}

export class RootsPanel implements ChangeListener {
  readonly el: HTMLElement;
  private readonly list: HTMLUListElement;
  private readonly input: HTMLInputElement;
  private readonly addButton: HTMLButtonElement;
  private readonly message: HTMLElement;

  constructor(
    after: Element,
    private readonly opts: RootsOptions,
  ) {
    this.input = h('input', {
      type: 'text', id: 'root-path', placeholder: '/absolute/path/on/the/server', autocomplete: 'off',
      spellcheck: 'false', 'data-testid': 'root-path',
    });
    this.addButton = h('button', { type: 'submit', class: 'primary', 'data-testid': 'root-add', text: 'Add folder' });
    this.message = h('p', { class: 'error', role: 'alert', 'data-testid': 'root-message', hidden: true });
    this.list = h('ul', { class: 'root-list', 'data-testid': 'root-list', 'aria-label': 'Library folders' });
    const form = h(
      'form',
      { class: 'root-form' },
      h('label', { for: 'root-path', text: 'Add a library folder' }),
      this.input,
      this.addButton,
    );
    form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      void this.add();
    });
    this.el = h(
      'details',
      { class: 'panel roots', 'data-testid': 'roots-panel' },
      h('summary', { text: 'Library folders' }),
      this.list,
      form,
      this.message,
    );
    after.after(this.el);
  }

  /** Read the roots again. */
  refresh = async (): Promise<void> => {
    const r = await api.gql<{ roots: RootRow[] }>(ROOTS);
    this.show(r.roots);
  };

  apply(ch: Q.LibraryChange): void {
    if (ch.kind === 'ROOT_ADDED' || ch.kind === 'ROOT_REMOVED') {
      void this.refresh().catch(this.opts.showError);
      this.opts.onChanged(ch.kind === 'ROOT_ADDED' ? `library folder added: ${ch.rootPath}` : `library folder removed: ${ch.rootPath}`);
    }
  }

  private show(roots: RootRow[]): void {
    this.list.replaceChildren(
      ...roots.map((root) => {
        const remove = h('button', {
          type: 'button', class: 'link', 'data-testid': 'root-remove', text: 'Remove',
          'aria-label': `Remove the library folder ${root.rootPath} (its files stay)`,
        });
        remove.addEventListener('click', () => void this.remove(root.rootPath, remove));
        return h(
          'li',
          { 'data-root': root.rootPath },
          h('span', { class: 'root-path', text: root.rootPath }),
          h('span', { class: 'muted', text: `${root.videoCount} videos` }),
          remove,
        );
      }),
    );
  }

  private say(text: string, isError: boolean): void {
    this.message.hidden = false;
    this.message.classList.toggle('error', isError);
    this.message.setAttribute('role', isError ? 'alert' : 'status');
    this.message.textContent = text;
    if (!isError) this.opts.announce(text);
  }

  private async add(): Promise<void> {
    const path = this.input.value.trim();
    if (!path) {
      this.say('Give the folder as an absolute path on the server.', true);
      this.input.focus();
      return;
    }
    this.addButton.disabled = true;
    try {
      const r = await api.gql<{ addRoot: { rootPath: string } }>(ADD_ROOT, { path });
      this.input.value = '';
      this.say(`Added ${r.addRoot.rootPath}; it is being indexed.`, false);
      await this.refresh();
    } catch (e) {
      const why = refusal(e);
      if (why) {
        this.say(why, true);
        this.input.focus();
      } else this.opts.showError(e);
    } finally {
      this.addButton.disabled = false;
    }
  }

  private async remove(path: string, button: HTMLButtonElement): Promise<void> {
    if (!window.confirm(`Remove the library folder ${path}?\nIts index is forgotten; its files are not touched.`)) return;
    button.disabled = true;
    try {
      await api.gql<{ removeRoot: boolean }>(REMOVE_ROOT, { path });
      this.say(`Removed ${path}; its files were not touched.`, false);
      await this.refresh();
    } catch (e) {
      const why = refusal(e);
      if (why) this.say(why, true);
      else this.opts.showError(e);
      button.disabled = false;
    }
  }
}
