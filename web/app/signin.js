// Sign-in: in development mode the server hands out a token for its development user at
// GET /dev/token (that route exists only then); otherwise the user pastes a bearer token,
// kept in localStorage.

import { gql, storeToken, humanMessage } from './api.js';
import { h, replace } from './dom.js';

/** Whether this server handed out a development token before (then sign-in offers it). */
let developmentServer = false;

/** A development token, or null when the server is not in development mode. */
export async function fetchDevToken() {
  try {
    const response = await fetch('/dev/token', { cache: 'no-store' });
    if (!response.ok) return null;
    const body = await response.json();
    developmentServer = Boolean(body.token);
    return body.token || null;
  } catch {
    return null;
  }
}

export function renderSignIn(main, { message, onSignedIn }) {
  const error = h('p', { class: 'field-error', id: 'token-error' });
  const input = h('textarea', {
    id: 'token', name: 'token', rows: 4, autocomplete: 'off', spellcheck: false,
    'aria-describedby': 'token-help token-error',
  });
  const form = h('form', { class: 'card signin', noValidate: true },
    h('h1', { text: 'Sign in' }),
    message && h('p', { role: 'status', text: message }),
    h('p', { id: 'token-help', text:
      'Paste a bearer token (a JWT) issued for this server. It is kept in this browser only.' }),
    h('label', { for: 'token', text: 'Token' }),
    input,
    error,
    h('div', { class: 'actions' },
      h('button', { type: 'submit', class: 'primary', text: 'Sign in' }),
      developmentServer && h('button', { type: 'button', text: 'Use the development token', onclick: async () => {
        const token = await fetchDevToken();
        if (token) {
          storeToken(token);
          onSignedIn();
        } else {
          error.textContent = 'This server is not in development mode: it has no development token.';
        }
      } })));
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const token = input.value.trim().replace(/^Bearer\s+/i, '');
    error.textContent = '';
    input.removeAttribute('aria-invalid');
    if (!token) {
      error.textContent = 'Paste a token first.';
      input.setAttribute('aria-invalid', 'true');
      input.focus();
      return;
    }
    storeToken(token);
    try {
      await gql('{ me { id } }');
      onSignedIn();
    } catch (e) {
      storeToken(null);
      error.textContent = humanMessage(e.message);
      input.setAttribute('aria-invalid', 'true');
      input.focus();
    }
  });
  replace(main, form);
  input.focus();
}
