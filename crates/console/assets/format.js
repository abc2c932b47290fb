// How times and numbers read everywhere in the console: times in the browser's time
// zone (or UTC, the user's choice, kept in local storage as a display preference),
// always with the same millisecond precision; numbers with the browser's locale and
// SI prefixes where they get long.

const UTC_PREFERENCE = 'logpool.times-in-utc';
const listeners = new Set();

export function timesInUtc() {
  try { return localStorage.getItem(UTC_PREFERENCE) === '1'; } catch { return false; }
}

export function setTimesInUtc(utc) {
  try { localStorage.setItem(UTC_PREFERENCE, utc ? '1' : '0'); } catch { /* private mode */ }
  for (const listener of listeners) listener(utc);
}

// Called with the new choice whenever the time zone toggle changes.
export function onTimeZoneChange(listener) { listeners.add(listener); return () => listeners.delete(listener); }

// The zone times are shown in: 'UTC' or the browser's (e.g. 'America/New_York').
export function timeZone() {
  return timesInUtc() ? 'UTC' : Intl.DateTimeFormat().resolvedOptions().timeZone || 'local';
}

const formats = new Map();
function partsFormat(zone) {
  if (!formats.has(zone)) {
    formats.set(zone, new Intl.DateTimeFormat('en-CA', {
      timeZone: zone === 'local' ? undefined : zone, year: 'numeric', month: '2-digit', day: '2-digit',
      hour: '2-digit', minute: '2-digit', second: '2-digit', fractionalSecondDigits: 3, hourCycle: 'h23',
    }));
  }
  return formats.get(zone);
}

// { year, month, day, hour, minute, second, fractionalSecond } of `ms` in the shown zone.
export function timeParts(ms) {
  const parts = {};
  for (const part of partsFormat(timeZone()).formatToParts(new Date(ms))) parts[part.type] = part.value;
  return parts;
}

// `2026-12-07 15:04:05.120`: one precision for every time in the console.
export function formatTime(value) {
  const ms = typeof value === 'number' ? value : Date.parse(value);
  if (!Number.isFinite(ms)) return String(value ?? '');
  const p = timeParts(ms);
  return `${p.year}-${p.month}-${p.day} ${p.hour}:${p.minute}:${p.second}.${p.fractionalSecond}`;
}

// A duration in ms as people say it: `30 s`, `5 min`, `1 h`, `1 d`.
export function formatInterval(ms) {
  if (ms < 1000) return `${ms} ms`;
  if (ms < 60000) return `${ms / 1000} s`;
  if (ms < 3600000) return `${ms / 60000} min`;
  if (ms < 86400000) return `${ms / 3600000} h`;
  return `${ms / 86400000} d`;
}

const exact = new Intl.NumberFormat(undefined, { maximumFractionDigits: 2 });
const compact = new Intl.NumberFormat(undefined, { notation: 'compact', maximumFractionDigits: 1 });

// A number for an axis, a tooltip or a cell: grouped by the locale, at most two
// decimals (no `744.2999999999984`), in SI-like short form from 100,000 up.
export function formatNumber(value) {
  if (value === null || value === undefined || value === '') return '';
  const number = Number(value);
  if (!Number.isFinite(number)) return String(value);
  return Math.abs(number) >= 100000 ? compact.format(number) : exact.format(number);
}
