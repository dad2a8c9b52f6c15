// Recurrence presets and the RRULE they stand for, both ways, so the form can offer presets
// and still show (and accept) the raw rule. Pure functions; the dates themselves come from
// the API: `Recurrence.upcoming` for a saved rule, `previewRecurrence` for one being edited.

export const DAYS = [
  ['MO', 'Mon'], ['TU', 'Tue'], ['WE', 'Wed'], ['TH', 'Thu'], ['FR', 'Fri'], ['SA', 'Sat'], ['SU', 'Sun'],
];

export const PRESETS = [
  ['none', 'Does not repeat'],
  ['daily', 'Daily'],
  ['weekdays', 'Every weekday (Mon–Fri)'],
  ['weekly', 'Weekly on chosen days'],
  ['monthly-day', 'Monthly on a day'],
  ['monthly-last', 'Monthly on the last day'],
  ['yearly', 'Yearly'],
  ['custom', 'Custom rule (RRULE)'],
];

/** The RRULE of a preset: {preset, days: ["MO"], monthDay: 15}; null for "none". */
export function ruleOf({ preset, days = [], monthDay = 1 }) {
  switch (preset) {
    case 'daily': return 'FREQ=DAILY';
    case 'weekdays': return 'FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR';
    case 'weekly': {
      const ordered = DAYS.map(([code]) => code).filter((code) => days.includes(code));
      return ordered.length ? `FREQ=WEEKLY;BYDAY=${ordered.join(',')}` : 'FREQ=WEEKLY';
    }
    case 'monthly-day': return `FREQ=MONTHLY;BYMONTHDAY=${monthDay}`;
    case 'monthly-last': return 'FREQ=MONTHLY;BYMONTHDAY=-1';
    case 'yearly': return 'FREQ=YEARLY';
    default: return null;
  }
}

function parts(rule) {
  const out = {};
  for (const piece of String(rule).toUpperCase().split(';')) {
    const [key, value] = piece.split('=');
    if (key) out[key.trim()] = (value || '').trim();
  }
  return out;
}

/** The preset a rule is, or "custom"; "none" for an empty rule. */
export function presetOf(rule) {
  if (!rule || !rule.trim()) return { preset: 'none', days: [], monthDay: 1 };
  const p = parts(rule);
  const keys = Object.keys(p).sort().join(',');
  if (keys === 'FREQ' && p.FREQ === 'DAILY') return { preset: 'daily', days: [], monthDay: 1 };
  if (keys === 'FREQ' && p.FREQ === 'YEARLY') return { preset: 'yearly', days: [], monthDay: 1 };
  if (p.FREQ === 'WEEKLY' && (keys === 'FREQ' || keys === 'BYDAY,FREQ')) {
    const days = p.BYDAY ? p.BYDAY.split(',') : [];
    if (!days.every((d) => DAYS.some(([code]) => code === d))) return { preset: 'custom', days: [], monthDay: 1 };
    if (days.join(',') === 'MO,TU,WE,TH,FR') return { preset: 'weekdays', days, monthDay: 1 };
    return { preset: 'weekly', days, monthDay: 1 };
  }
  if (p.FREQ === 'MONTHLY' && keys === 'BYMONTHDAY,FREQ') {
    if (p.BYMONTHDAY === '-1') return { preset: 'monthly-last', days: [], monthDay: 1 };
    const day = Number(p.BYMONTHDAY);
    if (Number.isInteger(day) && day >= 1 && day <= 31) return { preset: 'monthly-day', days: [], monthDay: day };
  }
  return { preset: 'custom', days: [], monthDay: 1 };
}

/** A short description of a rule for the list, e.g. "weekly on Mon, Thu". */
export function describe(rule) {
  const { preset, days, monthDay } = presetOf(rule);
  switch (preset) {
    case 'daily': return 'daily';
    case 'weekdays': return 'every weekday';
    case 'weekly': {
      const names = DAYS.filter(([code]) => days.includes(code)).map(([, name]) => name);
      return names.length ? `weekly on ${names.join(', ')}` : 'weekly';
    }
    case 'monthly-day': return `monthly on day ${monthDay}`;
    case 'monthly-last': return 'monthly on the last day';
    case 'yearly': return 'yearly';
    default: return describeCustom(rule);
  }
}

const UNIT_NAMES = { DAILY: 'day', WEEKLY: 'week', MONTHLY: 'month', YEARLY: 'year' };

/**
 * A rule beyond the presets in words when it only has FREQ, INTERVAL, BYDAY (plain days) and
 * BYMONTHDAY: "every 2 weeks on Mon", "every 3 months on day 15"; else the rule itself.
 */
function describeCustom(rule) {
  const p = parts(rule);
  const unit = UNIT_NAMES[p.FREQ];
  if (!unit || !Object.keys(p).every((key) => ['FREQ', 'INTERVAL', 'BYDAY', 'BYMONTHDAY'].includes(key))) return rule;
  const interval = p.INTERVAL === undefined ? 1 : Number(p.INTERVAL);
  if (!Number.isInteger(interval) || interval < 1) return rule;
  let text = interval === 1 ? `every ${unit}` : `every ${interval} ${unit}s`;
  if (p.BYDAY !== undefined) {
    const days = p.BYDAY.split(',');
    if (!days.every((d) => DAYS.some(([code]) => code === d))) return rule;
    text += ` on ${DAYS.filter(([code]) => days.includes(code)).map(([, name]) => name).join(', ')}`;
  }
  if (p.BYMONTHDAY !== undefined) {
    const day = Number(p.BYMONTHDAY);
    if (day === -1) text += ' on the last day';
    else if (Number.isInteger(day) && day >= 1 && day <= 31) text += ` on day ${day}`;
    else return rule;
  }
  return text;
}

/**
 * The variables of PreviewRecurrence (operations.js) for a recurrence ({rule, timezone,
 * anchor}) and a due date (RFC 3339), or null when there is nothing to preview: no rule or no
 * due date.
 */
export function previewVariables(recurrence, dueAt, count) {
  const rule = recurrence?.rule?.trim();
  if (!rule || !dueAt) return null;
  return { recurrence: { rule, timezone: recurrence.timezone, anchor: recurrence.anchor }, dueAt, count };
}
