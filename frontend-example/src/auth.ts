// The API token: the dialog that asks for it and the button that reopens it.
import * as api from './api';

export interface AuthEls {
  tokenButton: HTMLButtonElement;
  tokenDialog: HTMLDialogElement;
  tokenInput: HTMLInputElement;
  tokenClear: HTMLButtonElement;
}

export class Auth {
  private asking = false;

  /** `onTokenChanged` runs after the token was saved or forgotten. */
  constructor(
    private readonly els: AuthEls,
    onTokenChanged: () => void,
  ) {
    const { tokenButton, tokenDialog, tokenInput, tokenClear } = els;
    api.onAuthRequired(() => this.ask());
    tokenButton.hidden = !api.getToken();
    tokenButton.addEventListener('click', () => {
      tokenInput.value = api.getToken() ?? '';
      this.asking = true;
      tokenDialog.showModal();
    });
    tokenDialog.addEventListener('close', () => {
      this.asking = false;
      const v = tokenDialog.returnValue;
      if (v === 'save') api.setToken(tokenInput.value.trim() || null);
      else if (v === 'clear') api.setToken(null);
      else return;
      tokenButton.hidden = !api.getToken();
      onTokenChanged();
    });
    tokenClear.addEventListener('click', () => tokenDialog.close('clear'));
  }

  private ask(): void {
    const { tokenButton, tokenDialog, tokenInput } = this.els;
    tokenButton.hidden = false;
    if (this.asking) return;
    this.asking = true;
    tokenInput.value = api.getToken() ?? '';
    if (!tokenDialog.open) tokenDialog.showModal();
    tokenInput.focus();
  }
}
