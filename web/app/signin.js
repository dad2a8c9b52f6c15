// The user's account. Sign-in: in development mode the server hands out a token for its
// development user at GET /dev/token (that route exists only then); with an OpenID Connect
// provider configured, a button signs in there (oidc.js); otherwise, or as well, the user
// pastes a bearer token, kept in localStorage. Settings (#/settings): the time zone every time
// is shown and entered in, and the notification webhook (its secret is write-only: never shown).

import { gql, storeToken, humanMessage, withoutPath, withLabels } from './api.js';
import { VIEWER, UPDATE_SETTINGS } from './operations.js';
import { h, replace, announce } from './dom.js';
import { oidcSettings, knownOidcSettings, providerName, beginSignIn } from './oidc.js';
import { zone, browserZone, isKnownZone, zoneSuggestions, formatDateTime, zoneAbbreviation } from './time.js';

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

/**
 * The sign-in page. `message` says why it is shown (signed out, session ended); `problem` is a
 * failed sign-in with a provider, shown as an alert. With a provider configured, its button
 * comes first; the paste-a-token form stays below it.
 */
export function renderSignIn(main, { message, problem, onSignedIn }) {
  const error = h('p', { class: 'field-error', id: 'token-error' });
  const input = h('textarea', {
    id: 'token', name: 'token', rows: 4, autocomplete: 'off', spellcheck: false,
    'aria-describedby': 'token-help token-error',
  });
  const provider = h('div', { class: 'signin-provider', hidden: true });
  const form = h('form', { class: 'card signin', noValidate: true },
    h('h1', { text: 'Sign in' }),
    message && h('p', { role: 'status', id: 'signin-message', text: message }),
    problem && h('p', { class: 'error', role: 'alert', id: 'signin-problem', text: problem }),
    provider,
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
          storeToken(token, { development: true });
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
      await gql(VIEWER);
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
  const known = knownOidcSettings();
  if (known !== undefined) showProvider(form, provider, known);
  else oidcSettings().then((settings) => showProvider(form, provider, settings));
}

/** Fills in the provider's button (or marks the form as without one: `data-oidc`). */
function showProvider(form, slot, settings) {
  form.dataset.oidc = settings ? 'on' : 'off';
  if (!settings || !form.isConnected) return;
  const name = providerName(settings);
  const problem = h('p', { class: 'error', role: 'alert', id: 'provider-error' });
  const button = h('button', { type: 'button', class: 'primary', id: 'sign-in-provider', text: `Sign in with ${name}` });
  button.addEventListener('click', async () => {
    problem.textContent = '';
    button.disabled = true;
    button.textContent = `Going to ${name}…`;
    try {
      await beginSignIn(settings);
    } catch (e) {
      problem.textContent = e.message;
      button.disabled = false;
      button.textContent = `Sign in with ${name}`;
    }
  });
  replace(slot, h('div', { class: 'actions' }, button), problem,
    h('p', { class: 'hint', text: 'Or sign in with a token:' }));
  slot.hidden = false;
  // The provider is the usual way in; the token form below stays for API tokens.
  for (const submit of form.querySelectorAll('button[type="submit"].primary')) submit.classList.remove('primary');
  if (!form.querySelector('#token').value) button.focus();
}

/** How a message names each settings field, once its "input.field" start is dropped. */
const FIELD_SUBJECTS = { timezone: 'This time zone', webhookUrl: 'This URL', webhookSecret: 'The secret' };

/**
 * The message of `e` at its settings field, without the input path it starts with
 * (`e.path`, from `extensions.field`): "input.webhookUrl: refused ..." -> "Refused ...",
 * "input.webhookUrl must be ..." -> "This URL must be ...".
 */
function settingsMessage(e) {
  const rest = withoutPath(e.message, e.path);
  if (rest === null) return humanMessage(e.message);
  const colon = String(e.message).charAt(e.path.length) === ':';
  return colon ? humanMessage(rest) : `${FIELD_SUBJECTS[e.field]}${withLabels(rest)}`;
}

/**
 * The settings view: time zone and webhook, two forms that each save with `updateSettings`.
 * `ctx.setTimezone` applies a saved zone to the whole app (every view re-renders its times).
 */
export function mountSettings(main, ctx) {
  const fields = new Map();
  /** A labelled control with its hint and its error, wired for assistive technology. */
  function field(name, label, control, hint) {
    const id = control.id;
    const hintEl = hint && h('p', { class: 'hint', id: `${id}-hint` }, hint);
    const error = h('p', { class: 'field-error', id: `${id}-error`, dataset: { errorFor: name } });
    control.setAttribute('aria-describedby', [hintEl && hintEl.id, error.id].filter(Boolean).join(' '));
    fields.set(name, { control, error });
    return h('div', { class: 'field', dataset: { field: name } }, h('label', { for: id, text: label }), control, hintEl, error);
  }
  function clearErrors(names) {
    for (const name of names) {
      const { control, error } = fields.get(name);
      error.textContent = '';
      control.removeAttribute('aria-invalid');
    }
  }
  function showError(name, text) {
    const { control, error } = fields.get(name);
    error.textContent = text;
    control.setAttribute('aria-invalid', 'true');
    control.focus();
  }

  // Time zone.
  const tzInput = h('input', { id: 'settings-timezone', name: 'timezone', value: ctx.me.timezone,
    list: 'settings-timezone-options', autocomplete: 'off', spellcheck: false, autocapitalize: 'off' });
  const tzOptions = h('datalist', { id: 'settings-timezone-options' },
    zoneSuggestions().map((name) => h('option', { value: name })));
  const tzNow = h('span', { id: 'settings-timezone-now' });
  const tzCurrent = h('p', { class: 'current', id: 'settings-timezone-current' });
  const useBrowser = h('button', { type: 'button', class: 'small', id: 'settings-use-browser-zone',
    onclick: () => {
      tzInput.value = browserZone();
      drawNow();
      tzInput.focus();
    } });
  const tzSave = h('button', { type: 'submit', class: 'primary', text: 'Save time zone' });
  const tzForm = h('form', { class: 'card', id: 'settings-timezone-form', noValidate: true },
    h('h2', { id: 'settings-timezone-heading', text: 'Time zone' }),
    tzCurrent,
    field('timezone', 'Time zone', tzInput, ['An IANA name such as Europe/London or America/New_York. ', tzNow]),
    tzOptions,
    h('div', { class: 'actions' }, tzSave, useBrowser));

  /** What the saved zone is, and the time now in the zone being typed. */
  function drawNow() {
    const typed = tzInput.value.trim();
    tzNow.textContent = isKnownZone(typed)
      ? `The time there now: ${formatDateTime(new Date().toISOString(), typed)} (${zoneAbbreviation(new Date().toISOString(), typed)}).`
      : '';
    useBrowser.textContent = `Use this browser’s zone (${browserZone()})`;
    useBrowser.hidden = typed === browserZone();
  }
  function drawZone() {
    const shown = zone();
    replace(tzCurrent, 'Due dates, reminders and every other time are shown and entered in ',
      h('strong', { text: ctx.me.timezone }),
      shown === ctx.me.timezone ? '.' : `; this browser does not know it, so they use ${shown}.`,
      ` Now: `, h('time', { dateTime: new Date().toISOString(), text: formatDateTime(new Date().toISOString()) }), '.');
    drawNow();
  }
  tzInput.addEventListener('input', drawNow);
  tzForm.addEventListener('submit', async (event) => {
    event.preventDefault();
    clearErrors(['timezone']);
    const timezone = tzInput.value.trim();
    if (!timezone) {
      showError('timezone', 'Choose a time zone: it cannot be left empty.');
      return;
    }
    tzSave.disabled = true;
    try {
      const { updateSettings: user } = await gql(UPDATE_SETTINGS, { input: { timezone } });
      tzInput.value = user.timezone;
      ctx.setTimezone(user);
      announce(`Time zone saved: times are now shown in ${zone()}.`);
    } catch (e) {
      if (e.field === 'timezone') showError('timezone', settingsMessage(e));
      else showError('timezone', humanMessage(e.message));
    } finally {
      tzSave.disabled = false;
    }
  });

  // Webhook.
  const urlInput = h('input', { type: 'url', id: 'settings-webhook-url', name: 'webhookUrl',
    value: ctx.me.webhookUrl || '', autocomplete: 'off', spellcheck: false, autocapitalize: 'off',
    inputMode: 'url', placeholder: 'https://example.com/hooks/taskstream' });
  const secretInput = h('input', { type: 'password', id: 'settings-webhook-secret', name: 'webhookSecret',
    value: '', autocomplete: 'new-password', spellcheck: false, autocapitalize: 'off' });
  const clearSecret = h('input', { type: 'checkbox', id: 'settings-webhook-secret-clear' });
  clearSecret.addEventListener('change', () => {
    secretInput.disabled = clearSecret.checked;
    if (clearSecret.checked) secretInput.value = '';
  });
  const hookCurrent = h('p', { class: 'current', id: 'settings-webhook-current' });
  const hookError = h('p', { class: 'error', id: 'settings-webhook-error', role: 'alert' });
  const hookSave = h('button', { type: 'submit', class: 'primary', text: 'Save webhook' });
  const hookForm = h('form', { class: 'card', id: 'settings-webhook-form', noValidate: true },
    h('h2', { id: 'settings-webhook-heading', text: 'Webhook' }),
    h('p', { class: 'hint', text: 'Each notification is also sent as a signed POST (HMAC-SHA256 with the secret) to this URL.' }),
    hookCurrent,
    field('webhookUrl', 'Webhook URL', urlInput, 'An http or https URL at a public address. Empty turns webhooks off.'),
    field('webhookSecret', 'Webhook secret', secretInput,
      '16 to 256 characters. Write-only: it is never shown again. Leave it empty to keep the current one.'),
    h('label', { class: 'check' }, clearSecret, 'Remove the stored secret'),
    hookError,
    h('div', { class: 'actions' }, hookSave));

  function drawHook() {
    replace(hookCurrent, ctx.me.webhookUrl
      ? ['Notifications are sent to ', h('code', { class: 'url', text: ctx.me.webhookUrl }), '.']
      : 'Webhooks are off.');
  }
  hookForm.addEventListener('submit', async (event) => {
    event.preventDefault();
    clearErrors(['webhookUrl', 'webhookSecret']);
    hookError.textContent = '';
    const url = urlInput.value.trim();
    const input = { webhookUrl: url || null };
    if (secretInput.value) input.webhookSecret = secretInput.value;
    else if (clearSecret.checked) input.webhookSecret = null;
    hookSave.disabled = true;
    try {
      const { updateSettings: user } = await gql(UPDATE_SETTINGS, { input });
      Object.assign(ctx.me, user);
      urlInput.value = user.webhookUrl || '';
      secretInput.value = '';
      secretInput.disabled = false;
      clearSecret.checked = false;
      drawHook();
      const secretNote = 'webhookSecret' in input ? (input.webhookSecret ? ' The new secret is stored.' : ' The secret is removed.') : '';
      announce(user.webhookUrl ? `Webhook saved: notifications go to ${user.webhookUrl}.${secretNote}`
        : `Webhooks turned off.${secretNote}`);
    } catch (e) {
      if (e.field === 'webhookUrl' || e.field === 'webhookSecret') showError(e.field, settingsMessage(e));
      else hookError.textContent = humanMessage(e.message);
    } finally {
      hookSave.disabled = false;
    }
  });

  replace(main, h('section', { class: 'view settings', 'aria-labelledby': 'settings-heading' },
    h('div', { class: 'view-head' }, h('h1', { id: 'settings-heading', text: 'Settings' }),
      h('p', { class: 'counts', text: `Signed in as ${ctx.me.id}` })),
    tzForm, hookForm));
  drawZone();
  drawHook();

  const onZone = () => drawZone();
  ctx.bus.addEventListener('zone', onZone);
  return { unmount() { ctx.bus.removeEventListener('zone', onZone); } };
}
