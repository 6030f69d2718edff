// Keyboard use of a role="tree" list (the ARIA tree pattern): one tab stop (roving tabindex),
// Up/Down/Home/End move, Right opens a folder or enters it, Left closes it or goes to its parent.
// Enter and Space are the items' own business (rows.ts). The structure is rows.ts's:
// <li role="none"> <treeitem/> [<ul role="group"> more <li>s </ul>] </li>.

const ITEM = '[role="treeitem"]';

export interface TreeKeyHandlers {
  /** Open or close the folder whose treeitem is `item`, if it is one. */
  expand(item: HTMLElement, open: boolean): void;
}

export class TreeKeys {
  /** The item that holds the tab stop. */
  private current: HTMLElement | null = null;
  /** Where the tab stop was among the items, to land near it if its row goes away. */
  private currentIndex = 0;
  /** The keyboard focus is (or was, until its row was taken away) inside this tree. */
  private hasFocus = false;
  private pending = false;

  constructor(
    private readonly tree: HTMLElement,
    private readonly handlers: TreeKeyHandlers,
  ) {
    tree.addEventListener('keydown', (ev) => this.onKey(ev));
    tree.addEventListener('focusin', (ev) => {
      const item = (ev.target as Element).closest<HTMLElement>(ITEM);
      if (item && tree.contains(item)) this.setCurrent(item);
      this.hasFocus = true;
    });
    tree.addEventListener('focusout', (ev) => {
      const from = ev.target as Element;
      if (ev.relatedTarget) {
        if (!tree.contains(ev.relatedTarget as Node)) this.hasFocus = false;
        return;
      }
      // Focus went nowhere: a click on the page, or the row was taken away. Only the latter
      // keeps the focus in the tree (sync() gives it to the row taking its place).
      setTimeout(() => {
        if (from.isConnected) this.hasFocus = false;
      }, 0);
    });
    // Rows come and go with loads and live changes: keep exactly one tab stop.
    new MutationObserver(() => this.schedule()).observe(tree, { childList: true, subtree: true });
  }

  private items(): HTMLElement[] {
    return [...this.tree.querySelectorAll<HTMLElement>(ITEM)];
  }

  private schedule(): void {
    if (this.pending) return;
    this.pending = true;
    queueMicrotask(() => {
      this.pending = false;
      this.sync();
    });
  }

  private sync(): void {
    const items = this.items();
    let cur = this.current;
    const gone = !cur || !cur.isConnected || !this.tree.contains(cur);
    if (gone) cur = items[Math.min(this.currentIndex, items.length - 1)] ?? null;
    for (const it of items) {
      const want = it === cur ? '0' : '-1';
      if (it.getAttribute('tabindex') !== want) it.setAttribute('tabindex', want);
    }
    this.current = cur;
    // The focused row was removed (deleted, or refetched): keep the keyboard user in the tree.
    const active = document.activeElement;
    if (gone && cur && this.hasFocus && (!active || active === document.body)) cur.focus();
  }

  private setCurrent(item: HTMLElement): void {
    if (this.current === item) return;
    this.current?.setAttribute('tabindex', '-1');
    item.setAttribute('tabindex', '0');
    this.current = item;
    this.currentIndex = Math.max(0, this.items().indexOf(item));
  }

  private focus(item: HTMLElement | null | undefined): void {
    if (!item) return;
    this.setCurrent(item);
    item.focus();
  }

  private onKey(ev: KeyboardEvent): void {
    if (ev.altKey || ev.ctrlKey || ev.metaKey) return;
    const item = (ev.target as Element).closest<HTMLElement>(ITEM);
    if (!item || item !== ev.target || !this.tree.contains(item)) return;
    const expanded = item.getAttribute('aria-expanded');
    let handled = true;
    switch (ev.key) {
      case 'ArrowDown':
      case 'ArrowUp': {
        const items = this.items();
        const i = items.indexOf(item);
        this.focus(items[ev.key === 'ArrowDown' ? i + 1 : i - 1]);
        break;
      }
      case 'Home':
        this.focus(this.items()[0]);
        break;
      case 'End':
        this.focus(this.items().at(-1));
        break;
      case 'ArrowRight':
        if (expanded === 'false') this.handlers.expand(item, true);
        else if (expanded === 'true') this.focus(item.parentElement?.querySelector<HTMLElement>(`:scope > [role="group"] > li > ${ITEM}`));
        break;
      case 'ArrowLeft':
        if (expanded === 'true') this.handlers.expand(item, false);
        else this.focus(item.closest('[role="group"]')?.parentElement?.querySelector<HTMLElement>(`:scope > ${ITEM}`));
        break;
      default:
        handled = false;
    }
    if (handled) ev.preventDefault();
  }
}
