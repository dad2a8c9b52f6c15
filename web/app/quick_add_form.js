// The quick add line above the task list: type "Pay rent every month on the 1st at 9am #home
// !high", see what was understood (quick_add.js reads it) in a preview line under it, press
// Enter. The API decides: if it refuses the task, its error is shown under the line, in the
// form's words, and the line keeps the text.

import { gql, humanMessage } from './api.js';
import { h, replace, announce } from './dom.js';
import { zone } from './time.js';
import { parseQuickAdd, createInput } from './quick_add.js';
import { CREATE_TASK } from './operations.js';

const KIND_LABELS = { due: 'Due', repeat: 'Repeats', tag: 'Tag', priority: 'Priority' };

/** The quick add form: {element}. `onCreated(task)` runs after the API created a task. */
export function renderQuickAdd(ctx, onCreated) {
  const input = h('input', { id: 'quick-add', name: 'quickAdd', autocomplete: 'off', spellcheck: false,
    placeholder: 'e.g. Pay rent every month on the 1st at 9am #home !high',
    'aria-describedby': 'quick-add-preview quick-add-error' });
  const preview = h('p', { class: 'quick-preview', id: 'quick-add-preview' });
  const error = h('p', { class: 'field-error', id: 'quick-add-error' });
  const button = h('button', { type: 'submit', text: 'Add' });

  function parse() {
    return parseQuickAdd(input.value, { now: Date.now(), tz: zone() });
  }

  function drawPreview() {
    if (!input.value.trim()) {
      replace(preview);
      return;
    }
    const parsed = parse();
    replace(preview,
      h('span', { class: 'understood title-part' }, h('span', { class: 'muted', text: 'Title ' }),
        parsed.title ? `“${parsed.title}”` : h('em', { text: 'none' })),
      parsed.understood.map((part) => h('span', { class: `understood ${part.kind}-part`, dataset: { kind: part.kind } },
        h('span', { class: 'muted', text: `${KIND_LABELS[part.kind]} ` }), part.kind === 'tag' ? `#${part.text}` : part.text)));
  }

  async function submit(event) {
    event.preventDefault();
    error.textContent = '';
    input.removeAttribute('aria-invalid');
    if (!input.value.trim()) {
      input.focus();
      return;
    }
    const tz = zone();
    const parsed = parse();
    button.disabled = true;
    try {
      const task = (await gql(CREATE_TASK, { input: createInput(parsed, tz), upcoming: 1 })).createTask;
      const known = ctx.stores.tags.getState().tags;
      if (parsed.tags.some((name) => !known.some((t) => t.name.toLowerCase() === name.toLowerCase()))) {
        ctx.stores.tags.refresh().catch(() => {});
      }
      input.value = '';
      drawPreview();
      const due = parsed.understood.find((part) => part.kind === 'due');
      announce(`Created “${task.title}”${due ? `, due ${due.text}` : ''}.`);
      onCreated(task);
    } catch (e) {
      error.textContent = humanMessage(e.message);
      input.setAttribute('aria-invalid', 'true');
      input.focus();
    } finally {
      button.disabled = false;
    }
  }

  input.addEventListener('input', () => {
    drawPreview();
    if (error.textContent) {
      error.textContent = '';
      input.removeAttribute('aria-invalid');
    }
  });
  // Another zone in the settings: "today" and "at 9am" mean other instants now.
  const onZone = () => drawPreview();
  ctx.bus.addEventListener('zone', onZone);
  const element = h('form', { class: 'quick-add', id: 'quick-add-form', noValidate: true, onsubmit: submit },
    h('label', { for: 'quick-add', text: 'Quick add' }),
    h('div', { class: 'row' }, input, button),
    preview, error);
  return { element, unmount: () => ctx.bus.removeEventListener('zone', onZone) };
}
