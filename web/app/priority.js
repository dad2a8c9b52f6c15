// Task priorities, defined once: the API's `Priority` names in rank order (URGENT highest, as
// the server ranks them for sorting and `minPriority`), what people read, and the class that
// colours them (`.prio-low` and so on in style.css).

/** {name, key, label, rank, className} for each priority, lowest first. */
export const PRIORITIES = [
  ['NONE', 'None'], ['LOW', 'Low'], ['MEDIUM', 'Medium'], ['HIGH', 'High'], ['URGENT', 'Urgent'],
].map(([name, label], rank) => {
  const key = name.toLowerCase();
  return { name, key, label, rank, className: `prio-${key}` };
});

const BY_NAME = new Map(PRIORITIES.map((p) => [p.name, p]));

/** The priority called `name` (NONE for an unknown name, as the server ranks it). */
export function priority(name) {
  return BY_NAME.get(name) || PRIORITIES[0];
}
