// Wall-clock times in the user's time zone, without a date library. The API speaks RFC 3339
// in UTC; forms speak a date (YYYY-MM-DD) and a time (HH:MM) in `zone()`.

/** The zone the app shows and enters times in: the browser's own. */
export function zone() {
  return Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC';
}

const partsFormatters = new Map();
function partsIn(date, tz) {
  let fmt = partsFormatters.get(tz);
  if (!fmt) {
    fmt = new Intl.DateTimeFormat('en-US', {
      timeZone: tz, hourCycle: 'h23', year: 'numeric', month: '2-digit', day: '2-digit',
      hour: '2-digit', minute: '2-digit', second: '2-digit',
    });
    partsFormatters.set(tz, fmt);
  }
  const out = {};
  for (const p of fmt.formatToParts(date)) if (p.type !== 'literal') out[p.type] = Number(p.value);
  return out;
}

/** The offset of `tz` from UTC at instant `date`, in minutes. */
function offsetMinutes(date, tz) {
  const p = partsIn(date, tz);
  const asUtc = Date.UTC(p.year, p.month - 1, p.day, p.hour, p.minute, p.second);
  return Math.round((asUtc - Math.floor(date.getTime() / 1000) * 1000) / 60000);
}

/**
 * The instant (ISO string, UTC) of wall-clock `date` ("2030-03-04") and `time` ("09:00") in
 * `tz`. A time skipped by a daylight-saving jump resolves to the offset before the jump.
 */
export function toInstant(date, time, tz = zone()) {
  const [y, mo, d] = date.split('-').map(Number);
  const [hh, mm] = (time || '00:00').split(':').map(Number);
  const wall = Date.UTC(y, mo - 1, d, hh, mm);
  let guess = wall - offsetMinutes(new Date(wall), tz) * 60000;
  guess = wall - offsetMinutes(new Date(guess), tz) * 60000;
  return new Date(guess).toISOString();
}

const pad = (n) => String(n).padStart(2, '0');

/** The wall-clock date and time of `iso` in `tz`: {date: "YYYY-MM-DD", time: "HH:MM"}. */
export function toWallClock(iso, tz = zone()) {
  const p = partsIn(new Date(iso), tz);
  return { date: `${p.year}-${pad(p.month)}-${pad(p.day)}`, time: `${pad(p.hour)}:${pad(p.minute)}` };
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

/** A short human form of `iso` in `tz`, e.g. "Mon 4 Mar 2030, 09:00". */
export function formatDateTime(iso, tz = zone()) {
  if (!iso) return '';
  return new Intl.DateTimeFormat(undefined, {
    timeZone: tz, weekday: 'short', day: 'numeric', month: 'short', year: 'numeric',
    hour: '2-digit', minute: '2-digit',
  }).format(new Date(iso));
}

/** Whether `iso` is in the past. */
export function isPast(iso) {
  return Boolean(iso) && new Date(iso).getTime() < Date.now();
}
