// Tag management: create, rename, recolour and delete tags, with how many tasks carry each.
// It renders from the tag store (tag_store.js), which keeps the counts live while it is shown.

import { humanMessage } from './api.js';
import { h, replace, announce } from './dom.js';

const DEFAULT_COLOR = '#2f5bd3';
/** What the colour picker shows for a tag without a colour (grey, like its chips). */
const NO_COLOR = '#8a90a2';

export function mountTags(main, ctx) {
  const store = ctx.stores.tags;
  const list = h('ul', { class: 'tag-admin', id: 'tag-admin', 'aria-labelledby': 'tags-heading' });
  const nameInput = h('input', { id: 'new-tag-name', autocomplete: 'off', 'aria-describedby': 'new-tag-error' });
  const colorInput = h('input', { type: 'color', id: 'new-tag-color', value: DEFAULT_COLOR });
  const newError = h('p', { class: 'field-error', id: 'new-tag-error' });
  const form = h('form', { class: 'new-tag card', noValidate: true },
    h('h2', { text: 'New tag' }),
    h('div', { class: 'row' },
      h('div', { class: 'field' }, h('label', { for: 'new-tag-name', text: 'Name' }), nameInput),
      h('div', { class: 'field' }, h('label', { for: 'new-tag-color', text: 'Colour' }), colorInput),
      h('button', { type: 'submit', class: 'primary', text: 'Create tag' })),
    newError);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    newError.textContent = '';
    nameInput.removeAttribute('aria-invalid');
    try {
      const created = await store.create(nameInput.value, colorInput.value);
      announce(`Created tag ${created.name}.`);
      nameInput.value = '';
    } catch (err) {
      newError.textContent = humanMessage(err.message);
      nameInput.setAttribute('aria-invalid', 'true');
      nameInput.focus();
    }
  });

  replace(main, h('section', { class: 'view', 'aria-labelledby': 'tags-heading' },
    h('div', { class: 'view-head' }, h('h1', { id: 'tags-heading', text: 'Tags' }),
      h('p', { class: 'counts', id: 'tag-count' })),
    form, list));

  function draw() {
    const { tags } = store.getState();
    main.querySelector('#tag-count').textContent = `${tags.length} ${tags.length === 1 ? 'tag' : 'tags'}`;
    replace(list, tags.length ? tags.map(row) : h('li', { class: 'muted', text: 'No tags yet.' }));
  }

  function row(tag) {
    const id = `tag-${tag.id}`;
    const name = h('input', { id: `${id}-name`, value: tag.name, autocomplete: 'off', 'aria-describedby': `${id}-error` });
    const color = h('input', { type: 'color', id: `${id}-color`, value: tag.color || NO_COLOR,
      'aria-describedby': tag.color ? null : `${id}-no-color` });
    const error = h('p', { class: 'field-error', id: `${id}-error` });
    const swatch = h('span', { class: 'dot', 'aria-hidden': 'true' });
    const item = h('li', { class: 'tag-row', dataset: { id: tag.id, name: tag.name } },
      swatch,
      h('div', { class: 'field' }, h('label', { for: `${id}-name`, text: 'Name' }), name),
      h('div', { class: 'field' }, h('label', { for: `${id}-color`, text: 'Colour' }),
        h('div', { class: 'row' }, color, !tag.color && h('span', { class: 'muted', id: `${id}-no-color`, text: 'none' }))),
      h('p', { class: 'count', text: `${tag.taskCount} ${tag.taskCount === 1 ? 'task' : 'tasks'}` }),
      h('div', { class: 'actions' },
        h('button', { type: 'button', class: 'small', text: 'Save', 'aria-label': `Save tag ${tag.name}`, onclick: save }),
        tag.color && h('button', { type: 'button', class: 'small', text: 'No colour', 'aria-label': `Remove the colour of ${tag.name}`,
          onclick: () => update({ color: null }, 'colour removed') }),
        h('button', { type: 'button', class: 'small danger', text: 'Delete', 'aria-label': `Delete tag ${tag.name}`, onclick: remove })),
      error);
    if (tag.color) item.style.setProperty('--tag-color', tag.color);

    async function update(changes, what) {
      error.textContent = '';
      name.removeAttribute('aria-invalid');
      try {
        const updated = await store.update(tag.id, changes);
        announce(`Tag ${updated.name}: ${what}.`);
        main.querySelector(`#tag-${CSS.escape(tag.id)}-name`)?.focus();
      } catch (err) {
        error.textContent = humanMessage(err.message);
        name.setAttribute('aria-invalid', 'true');
        name.focus();
      }
    }
    function save() {
      const changes = {};
      if (name.value !== tag.name) changes.name = name.value;
      if (color.value !== (tag.color || NO_COLOR)) changes.color = color.value;
      const what = [changes.name !== undefined && 'renamed', changes.color !== undefined && 'recoloured'].filter(Boolean).join(' and ') || 'saved';
      return update(changes, what);
    }
    async function remove() {
      const carried = tag.taskCount ? ` It is removed from ${tag.taskCount} ${tag.taskCount === 1 ? 'task' : 'tasks'}.` : '';
      if (!window.confirm(`Delete tag “${tag.name}”?${carried}`)) return;
      try {
        await store.remove(tag.id);
        announce(`Deleted tag ${tag.name}.`);
        nameInput.focus();
      } catch (err) {
        error.textContent = humanMessage(err.message);
      }
    }
    return item;
  }

  const unsubscribe = store.subscribe(draw);
  // While shown, task changes move the counts.
  const unwatch = store.watch();
  draw();
  store.refresh().catch((e) => announce(e.message, 'error'));
  return {
    unmount() {
      unwatch();
      unsubscribe();
    },
  };
}
