// Times for people, in UTC or in a time zone (the browser's), with no DOM: the page shows every
// time through these, so switching between UTC and local time is one setting. Each instant is
// converted on its own by Intl (the IANA time zone database), never by adding a fixed offset, so
// a day that changes to or from summer time shows its hours right (01:55, then 03:00).

export const UTC = "UTC";

/** browserTimeZone: the IANA name of the browser's time zone (UTC if it cannot tell). */
export function browserTimeZone() {
  try {
    return Intl.DateTimeFormat().resolvedOptions().timeZone || UTC;
  } catch {
    return UTC;
  }
}

const formatters = new Map();

/** partsOf: the wall-clock fields of an instant in a zone: { year, month, day, hour, minute, second, offset }. */
export function partsOf(epochMs, zone) {
  let formatter = formatters.get(zone);
  if (formatter === undefined) {
    formatter = new Intl.DateTimeFormat("en-US", {
      timeZone: zone,
      year: "numeric",
      month: "2-digit",
      day: "2-digit",
      hour: "2-digit",
      minute: "2-digit",
      second: "2-digit",
      hourCycle: "h23",
      timeZoneName: "shortOffset",
    });
    formatters.set(zone, formatter);
  }
  const fields = {};
  for (const part of formatter.formatToParts(new Date(epochMs))) fields[part.type] = part.value;
  return {
    year: fields.year,
    month: fields.month,
    day: fields.day,
    hour: fields.hour === "24" ? "00" : fields.hour,
    minute: fields.minute,
    second: fields.second,
    offset: offsetText(fields.timeZoneName),
  };
}

/** offsetText turns Intl's "GMT+5:30" (or "GMT", "GMT+0", as engines differ) into "UTC+5:30" (or "UTC"). */
function offsetText(name) {
  if (typeof name !== "string" || !name.startsWith("GMT")) return UTC;
  const offset = name.slice(3);
  return offset === "" || offset === "+0" || offset === "-0" ? UTC : `UTC${offset}`;
}

/** timeOf: "HH:MM" in the zone. */
export function timeOf(epochMs, zone) {
  const parts = partsOf(epochMs, zone);
  return `${parts.hour}:${parts.minute}`;
}

/** clockOf: "HH:MM:SS" in the zone. */
export function clockOf(epochMs, zone) {
  const parts = partsOf(epochMs, zone);
  return `${parts.hour}:${parts.minute}:${parts.second}`;
}

/** dateOf: "YYYY-MM-DD" in the zone. */
export function dateOf(epochMs, zone) {
  const parts = partsOf(epochMs, zone);
  return `${parts.year}-${parts.month}-${parts.day}`;
}

/** offsetOf: the zone's offset from UTC at that instant, as "UTC", "UTC+1", "UTC-3", "UTC+5:30". */
export function offsetOf(epochMs, zone) {
  return partsOf(epochMs, zone).offset;
}

/**
 * rangeText: an interval for people, with the zone's offset named at the end:
 * "2026-12-08 03:00–03:25 UTC", "2026-12-08 04:00–04:25 UTC+1", across midnight in the zone
 * "2026-12-08 23:55 – 2026-12-09 00:10 UTC+5:30", and across a change of the offset each end
 * with its own: "2026-03-29 01:50 UTC+1 – 2026-03-29 03:10 UTC+2".
 */
export function rangeText(startMs, endMs, zone) {
  const startDate = dateOf(startMs, zone);
  const start = timeOf(startMs, zone);
  const end = timeOf(endMs, zone);
  const startOffset = offsetOf(startMs, zone);
  const endOffset = offsetOf(endMs, zone);
  if (startOffset !== endOffset) return `${startDate} ${start} ${startOffset} – ${dateOf(endMs, zone)} ${end} ${endOffset}`;
  // An interval ending at midnight ends on its start's day, at 24:00 read as the next 00:00.
  const sameDay = startDate === dateOf(endMs - 1, zone);
  return sameDay ? `${startDate} ${start}–${end} ${startOffset}` : `${startDate} ${start} – ${dateOf(endMs, zone)} ${end} ${startOffset}`;
}

/** durationText: "5 min", "1 h", "1 h 25 min". */
export function durationText(ms) {
  const minutes = Math.round(ms / 60_000);
  const hours = Math.floor(minutes / 60);
  if (hours === 0) return `${minutes} min`;
  return minutes % 60 === 0 ? `${hours} h` : `${hours} h ${minutes % 60} min`;
}

/**
 * offsetChangeIn: the first instant in (fromMs, toMs) where the zone's offset changes, to the
 * minute, as { atMs, from, to }, or undefined. Looked for hour by hour, then minute by minute.
 */
export function offsetChangeIn(fromMs, toMs, zone) {
  const from = offsetOf(fromMs, zone);
  for (let hourMs = fromMs; hourMs < toMs; hourMs += 3_600_000) {
    const nextMs = Math.min(hourMs + 3_600_000, toMs);
    if (offsetOf(nextMs, zone) === from) continue;
    for (let minuteMs = hourMs + 60_000; minuteMs <= nextMs; minuteMs += 60_000) {
      const to = offsetOf(minuteMs, zone);
      if (to !== from) return minuteMs < toMs ? { atMs: minuteMs, from, to } : undefined;
    }
  }
  return undefined;
}
