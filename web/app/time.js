// Wall-clock times in the user's time zone (`me { timezone }`), without a date library. The
// API speaks RFC 3339 in UTC; forms speak a date (YYYY-MM-DD) and a time (HH:MM) in `zone()`.
// Every conversion goes through Intl.DateTimeFormat with `timeZone`, so daylight saving time
// follows the browser's time zone database, whatever zone the browser itself is in.

/** The browser's own zone: the fallback before the user's setting is known. */
export function browserZone() {
  return Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC';
}

/** Whether this browser knows the IANA zone `tz`. */
export function isKnownZone(tz) {
  if (!tz || typeof tz !== 'string') return false;
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}

let userZone = null;

/**
 * Sets the zone the app shows and enters times in (the user's setting). Returns the zone in
 * use: `tz`, or the browser's when this browser does not know `tz`.
 */
export function setZone(tz) {
  userZone = isKnownZone(tz) ? tz : null;
  return zone();
}

/** The zone the app shows and enters times in: the user's setting, else the browser's. */
export function zone() {
  return userZone || browserZone();
}

/** Zones the settings offer first (the full list comes from `Intl.supportedValuesOf`). */
export const COMMON_ZONES = [
  'UTC', 'Europe/London', 'Europe/Dublin', 'Europe/Lisbon', 'Europe/Paris', 'Europe/Berlin',
  'Europe/Madrid', 'Europe/Rome', 'Europe/Amsterdam', 'Europe/Stockholm', 'Europe/Warsaw',
  'Europe/Athens', 'Europe/Helsinki', 'Europe/Istanbul', 'Europe/Moscow', 'Africa/Lagos',
  'Africa/Cairo', 'Africa/Johannesburg', 'Africa/Nairobi', 'Asia/Dubai', 'Asia/Karachi',
  'Asia/Kolkata', 'Asia/Dhaka', 'Asia/Bangkok', 'Asia/Jakarta', 'Asia/Singapore', 'Asia/Shanghai',
  'Asia/Hong_Kong', 'Asia/Seoul', 'Asia/Tokyo', 'Australia/Perth', 'Australia/Adelaide',
  'Australia/Brisbane', 'Australia/Sydney', 'Pacific/Auckland', 'Pacific/Honolulu',
  'America/Anchorage', 'America/Los_Angeles', 'America/Denver', 'America/Phoenix',
  'America/Chicago', 'America/Mexico_City', 'America/New_York', 'America/Toronto',
  'America/Bogota', 'America/Lima', 'America/Santiago', 'America/Sao_Paulo',
  'America/Argentina/Buenos_Aires', 'America/Halifax', 'America/St_Johns',
];

/** The zones to suggest: the common ones first, then every zone this browser knows. */
export function zoneSuggestions() {
  let all = [];
  try {
    if (typeof Intl.supportedValuesOf === 'function') all = Intl.supportedValuesOf('timeZone');
  } catch {
    all = [];
  }
  return [...new Set([...COMMON_ZONES, ...all])];
}

const partsFormatters = new Map();
function partsIn(date, tz) {
  let fmt = partsFormatters.get(tz);
  if (!fmt) {
    fmt = new Intl.DateTimeFormat('en-US', {
      timeZone: tz, hourCycle: 'h23', year: 'numeric', month: '2-digit', day: '2-digit',
      hour: '2-digit', minute: '2-digit', second: '2-digit', era: 'short',
    });
    partsFormatters.set(tz, fmt);
  }
  const out = {};
  for (const p of fmt.formatToParts(date)) if (p.type !== 'literal') out[p.type] = p.type === 'era' ? p.value : Number(p.value);
  if (out.era && /^B/i.test(out.era)) out.year = 1 - out.year;
  if (out.hour === 24) out.hour = 0;
  return out;
}

/** The offset of `tz` from UTC at instant `ms` (epoch milliseconds), in minutes. */
export function offsetMinutes(ms, tz) {
  const p = partsIn(new Date(ms), tz);
  const asUtc = Date.UTC(p.year, p.month - 1, p.day, p.hour, p.minute, p.second);
  return Math.round((asUtc - Math.floor(ms / 1000) * 1000) / 60000);
}

const DAY_MS = 86400000;

/**
 * The instant (ISO string, UTC) of wall-clock `date` ("2030-03-04") and `time` ("09:00", or
 * "09:00:30") in `tz`. Daylight saving time, resolved like Temporal's "compatible":
 * - a time that occurs twice (the autumn fall-back) is the earlier of the two instants;
 * - a time skipped by the spring jump counts with the offset before the jump, so it lands
 *   as far after the jump as it was meant after its start (02:30 in a 02:00→03:00 gap is 03:30).
 */
export function toInstant(date, time, tz = zone()) {
  const [y, mo, d] = date.split('-').map(Number);
  const [hh = 0, mm = 0, ss = 0] = (time || '00:00').split(':').map(Number);
  const wall = Date.UTC(y, mo - 1, d, hh, mm, ss);
  // The zone's offsets around that wall-clock time: a day either side covers any transition.
  const before = offsetMinutes(wall - DAY_MS, tz);
  const after = offsetMinutes(wall + DAY_MS, tz);
  const candidates = [...new Set([before, offsetMinutes(wall, tz), after])]
    .map((offset) => wall - offset * 60000)
    .filter((ms) => wall - offsetMinutes(ms, tz) * 60000 === ms)
    .sort((a, b) => a - b);
  const instant = candidates.length ? candidates[0] : wall - before * 60000;
  return new Date(instant).toISOString();
}

const pad = (n) => String(n).padStart(2, '0');

/** The wall-clock date and time of `iso` in `tz`: {date: "YYYY-MM-DD", time: "HH:MM"}. */
export function toWallClock(iso, tz = zone()) {
  const p = partsIn(new Date(iso), tz);
  return { date: `${String(p.year).padStart(4, '0')}-${pad(p.month)}-${pad(p.day)}`, time: `${pad(p.hour)}:${pad(p.minute)}` };
}

/** Today's date in `tz` ("YYYY-MM-DD"). */
export function today(tz = zone()) {
  return toWallClock(new Date().toISOString(), tz).date;
}

/** The date after `date` ("YYYY-MM-DD"). */
export function nextDay(date) {
  const [y, m, d] = date.split('-').map(Number);
  const next = new Date(Date.UTC(y, m - 1, d + 1));
  return next.toISOString().slice(0, 10);
}

const displayFormatters = new Map();
/** A short human form of `iso` in `tz`, e.g. "Mon 4 Mar 2030, 09:00". */
export function formatDateTime(iso, tz = zone()) {
  if (!iso) return '';
  let fmt = displayFormatters.get(tz);
  if (!fmt) {
    fmt = new Intl.DateTimeFormat(undefined, {
      timeZone: tz, weekday: 'short', day: 'numeric', month: 'short', year: 'numeric',
      hour: '2-digit', minute: '2-digit',
    });
    displayFormatters.set(tz, fmt);
  }
  return fmt.format(new Date(iso));
}

/** The short name of `tz`'s offset at `iso` in this locale, e.g. "GMT-5" or "CET". */
export function zoneAbbreviation(iso, tz = zone()) {
  const part = new Intl.DateTimeFormat(undefined, { timeZone: tz, timeZoneName: 'short' })
    .formatToParts(new Date(iso)).find((p) => p.type === 'timeZoneName');
  return part ? part.value : tz;
}

/** Whether `iso` is in the past. */
export function isPast(iso) {
  return Boolean(iso) && new Date(iso).getTime() < Date.now();
}

/**
 * Microseconds since the epoch of an RFC 3339 instant: the API's precision, of which `Date`
 * keeps only the milliseconds (two tasks created in one request differ in the microseconds).
 */
export function instantMicros(iso) {
  const fraction = /\.(\d+)/.exec(iso)?.[1] || '';
  return Date.parse(iso) * 1000 + Number(fraction.slice(3, 6).padEnd(3, '0'));
}

/**
 * The instant one microsecond (the API's precision) before `iso`, in RFC 3339 with
 * microseconds: the last moment a task deleted at `iso` still existed (`task(id, asOf)`).
 */
export function instantBefore(iso) {
  const micros = instantMicros(iso) - 1;
  const ms = Math.floor(micros / 1000);
  return `${new Date(ms).toISOString().slice(0, 23)}${String(micros - ms * 1000).padStart(3, '0')}Z`;
}
