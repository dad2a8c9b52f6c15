#!/usr/bin/env python3
"""Checks a Taskstream calendar feed with independent iCalendar code: the `icalendar` package
parses it (and builds time zones from its VTIMEZONEs with dateutil), dateutil's rrule expands
its RRULEs, and zoneinfo over tzdata is the reference for offsets. Used by the calendar feed
test (graphql/tests/calendar_feed/), which serves a feed and writes what the API says about
each of its tasks:

    PYTHONTZPATH= python3 scripts/interop/ical_check.py FEED.ics EXPECTED.json

EXPECTED.json is {"name": feed name, "todos": [one object per task, in feed order]}, each with
"uid", "summary", "description", "priority" (RFC 5545 1-9 or null), "categories" (tag names),
"sequence", "lastModified", "dueAt" (UTC), "zone" (IANA name of a repeating task, else null),
"upcoming" (its Recurrence.upcoming(count: len) from the API, else null) and "alarms" (each
{"minutesBeforeDue": n} or {"at": UTC}).

It checks, and prints every problem (exit 1) or one summary line (exit 0):
 1. the bytes: UTF-8, CRLF line ends only, no physical line over 75 octets, continuation
    lines starting with one space (RFC 5545 section 3.1);
 2. icalendar parses it without errors, with VERSION 2.0, a PRODID and the feed's name;
 3. the VTODOs, in order, and their fields as the API has them (text unescaped by icalendar;
    CATEGORIES split by this script, since icalendar 6.3.2 cuts a value at an escaped comma);
 4. each VTIMEZONE, read as section 3.6.5 says (every onset of an observance switches to its
    TZOFFSETTO), changes offset exactly where zoneinfo over the tzdata package (IANA 2025b,
    what chrono-tz embeds) does, to the second, over the years it covers; and the time zone
    icalendar builds from it (dateutil's tzical) gives tzdata's offsets away from the changes;
 5. each DUE read as section 3.3.5 reads a local time (the first of a repeated time, the
    offset before a gap), in the VTIMEZONE and in tzdata, is the API's dueAt;
 6. each RRULE expanded by dateutil from DTSTART, its wall-clock times read like DUE in the
    feed's VTIMEZONE, gives the API's upcoming dates: the RFC's reading of dateutil's output as
    in scripts/interop/rrule_oracle.py (DTSTART is the first instance and counts toward COUNT,
    duplicate instants are one, instants in increasing order, UNTIL inclusive);
 7. the VALARMs: one per pending reminder, TRIGGER relative to DUE (RELATED=END) or absolute.
"""

import importlib.metadata
import json
import re
import sys
import zoneinfo
from datetime import datetime, timedelta, timezone

PINNED = {"icalendar": "6.3.2", "python-dateutil": "2.9.0.post0", "tzdata": "2025.2"}
UTC = timezone.utc
MAX_OCTETS = 75
# The start of a content line: a property name, then its parameters or its value.
NAME = re.compile(r"^[A-Za-z0-9-]+[;:]")
# Most dateutil dates read while expanding one rule.
MAX_STEPS = 20000


def check_environment():
    problems = []
    for dist, version in PINNED.items():
        try:
            found = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            found = None
        if found != version:
            problems.append(f"{dist} {version} is needed, found {found or 'none'}")
    if zoneinfo.TZPATH:
        problems.append("run with PYTHONTZPATH= (empty) so that zones come from tzdata")
    if problems:
        print(
            "ical_check: " + "; ".join(problems) + ". Run scripts/test, which installs them "
            "with pip (scripts/lib/python.sh).",
            file=sys.stderr,
        )
        sys.exit(3)


check_environment()

import icalendar  # noqa: E402  (only after the version check)
from dateutil.rrule import rrulestr  # noqa: E402

PROBLEMS = []


def problem(text):
    PROBLEMS.append(text)


def parse_utc(text):
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


def utc_text(instant):
    return instant.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# ------------------------------------------------------------------------------ 1. bytes


def check_bytes(raw):
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        problem(f"the feed is not UTF-8: {e}")
        return None
    if not text.endswith("\r\n"):
        problem("the feed does not end with CRLF")
    lines = text.split("\r\n")[:-1]
    for number, line in enumerate(lines, 1):
        if "\n" in line or "\r" in line:
            problem(f"line {number} holds a bare CR or LF: {line!r}")
        octets = len(line.encode("utf-8"))
        if octets > MAX_OCTETS:
            problem(f"line {number} is {octets} octets long (more than {MAX_OCTETS}): {line!r}")
        if not line.startswith(" ") and not NAME.match(line):
            problem(f"line {number} neither continues a line nor starts a property: {line!r}")
        if number == 1 and line != "BEGIN:VCALENDAR":
            problem(f"the first line is {line!r}")
    return text


# ------------------------------------------------------------------------------ time zones


class Vtimezone:
    """A VTIMEZONE as icalendar parsed it, read as RFC 5545 section 3.6.5 says: every onset of
    an observance (its DTSTART and RDATEs, local times in its TZOFFSETFROM) switches the zone
    to its TZOFFSETTO. (Read here rather than through icalendar's `to_tz`, which builds a
    dateutil `tzical` that cannot tell the two readings of a repeated hour apart; `to_tz` is
    still checked away from the changes.)"""

    def __init__(self, vtz):
        self.tzid = str(vtz["TZID"])
        onsets = []
        for sub in vtz.subcomponents:
            before, after = sub["TZOFFSETFROM"].td, sub["TZOFFSETTO"].td
            local = [sub["DTSTART"].dt.replace(tzinfo=None)]
            rdates = sub.get("RDATE")
            if rdates is not None:
                for rdate in rdates if isinstance(rdates, list) else [rdates]:
                    local.extend(p.dt.replace(tzinfo=None) for p in rdate.dts)
            onsets.extend((t.replace(tzinfo=UTC) - before, before, after) for t in local)
        self.onsets = sorted(onsets)

    def offset_at(self, instant):
        offset = self.onsets[0][1]
        for at, _, after in self.onsets:
            if at > instant:
                break
            offset = after
        return offset

    def changes(self):
        """[(instant, offset before, offset after)] where the offset changes."""
        return [(at, b, a) for at, b, a in self.onsets if a != b]


def zoneinfo_changes(zone, start, end):
    """[(instant, offset before, offset after)] of `zone` (zoneinfo) in [start, end), to the
    second."""

    def offset_at(seconds):
        return datetime.fromtimestamp(seconds, zone).utcoffset()

    found = []
    t, stop = int(start.timestamp()), int(end.timestamp())
    offset = offset_at(t)
    while t < stop:
        step = min(t + 6 * 3600, stop)
        new = offset_at(step)
        if new != offset:
            lo, hi = t, step
            while hi - lo > 1:
                mid = (lo + hi) // 2
                if offset_at(mid) == offset:
                    lo = mid
                else:
                    hi = mid
            found.append((datetime.fromtimestamp(hi, UTC), offset, new))
        offset, t = new, step
    return found


def to_instant(naive, offset_at):
    """A wall-clock time as an instant, as RFC 5545 section 3.3.5 reads it: the first of a
    repeated time, and a time in a gap with the UTC offset in force before the gap. Found from
    the zone's offsets at instants (`offset_at`) alone: each offset near `naive` is tried."""
    as_utc = naive.replace(tzinfo=UTC)
    offsets = {offset_at(as_utc + timedelta(minutes=30 * k)) for k in range(-60, 61)}
    valid = [as_utc - o for o in offsets if offset_at(as_utc - o) == o]
    if valid:
        return min(valid)
    # A gap: the earliest candidate lies before it, in the offset in force before the gap.
    return as_utc - offset_at(as_utc - max(offsets))


def zone_offset(zone):
    return lambda instant: instant.astimezone(zone).utcoffset()


def check_vtimezones(calendar):
    """{TZID: Vtimezone}, after comparing each with zoneinfo over tzdata."""
    found = {}
    for vtz in calendar.walk("VTIMEZONE"):
        ours = Vtimezone(vtz)
        try:
            reference = zoneinfo.ZoneInfo(ours.tzid)
        except zoneinfo.ZoneInfoNotFoundError:
            problem(f"VTIMEZONE {ours.tzid}: not an IANA zone in tzdata")
            continue
        # The years the VTIMEZONE covers: from its first onset to the end of its last one's.
        start = ours.onsets[0][0]
        end = datetime(ours.onsets[-1][0].year + 1, 1, 1, tzinfo=UTC)
        if ours.onsets[0][2] != zone_offset(reference)(start):
            problem(f"VTIMEZONE {ours.tzid}: offset {ours.onsets[0][2]} at {utc_text(start)}")
        want = zoneinfo_changes(reference, start, end)
        if ours.changes() != want:
            show = lambda changes: [(utc_text(t), str(b), str(a)) for t, b, a in changes]  # noqa: E731
            problem(
                f"VTIMEZONE {ours.tzid}: changes {show(ours.changes())}, tzdata {show(want)} "
                f"({utc_text(start)} to {utc_text(end)})"
            )
        # A real consumer's reading: icalendar's time zone from the component, compared away
        # from the changes (a day either side).
        try:
            built = vtz.to_tz(lookup_tzid=False)
        except Exception as e:  # noqa: BLE001 (any failure to read it is the finding)
            problem(f"VTIMEZONE {ours.tzid}: icalendar cannot build a time zone from it: {e!r}")
        else:
            t = start + timedelta(days=1)
            changes = [at for at, _, _ in want]
            while t < end:
                if all(abs(t - at) > timedelta(days=1) for at in changes):
                    got, expected = zone_offset(built)(t), zone_offset(reference)(t)
                    if got != expected:
                        problem(
                            f"VTIMEZONE {ours.tzid} through icalendar: {got} at {utc_text(t)}, "
                            f"tzdata {expected}"
                        )
                        break
                t += timedelta(hours=6)
        found[ours.tzid] = ours
    return found


# ------------------------------------------------------------------------------ recurrence


def split_rule(body):
    kept, count, until = [], None, None
    for part in body.split(";"):
        name, value = part.split("=", 1)
        if name == "COUNT":
            count = int(value)
        elif name == "UNTIL":
            until = datetime.strptime(value, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
        else:
            kept.append(part)
    return ";".join(kept), count, until


def expand(body, start_local, start_instant, offset_at, wanted):
    """The first `wanted` instants after DTSTART of rule `body` from the wall-clock time
    `start_local` in a zone with offsets `offset_at`, as RFC 5545 reads them (see the module
    docstring, check 6)."""
    rule_text, count, until = split_rule(body)
    need = wanted if count is None else min(wanted, count - 1)
    if need <= 0:
        return []
    after = set()
    steps = 0
    for naive in rrulestr(rule_text, dtstart=start_local):
        steps += 1
        if steps > MAX_STEPS:
            break
        instant = to_instant(naive, offset_at)
        if until is not None and instant > until:
            # Wall-clock order is instant order up to a gap; go a day further to be sure.
            if naive.replace(tzinfo=UTC) - timedelta(hours=30) > until:
                break
            continue
        if instant <= start_instant:
            continue
        after.add(instant)
        if len(after) >= need and (
            naive.replace(tzinfo=UTC) - timedelta(hours=30) > sorted(after)[need - 1]
        ):
            break
    return sorted(after)[:need]


# ------------------------------------------------------------------------------ VTODOs


def raw_properties(text):
    """{UID: {property name: raw value}} of each VTODO's own properties (not its VALARMs'),
    from the unfolded text."""
    todos, current, depth = {}, None, 0
    for line in text.replace("\r\n ", "").split("\r\n"):
        if line == "BEGIN:VTODO":
            current, depth = {}, 0
        elif line == "END:VTODO" and current is not None:
            todos[current.get("UID", "")] = current
            current = None
        elif current is not None and line.startswith("BEGIN:"):
            depth += 1
        elif current is not None and line.startswith("END:"):
            depth -= 1
        elif current is not None and depth == 0 and ":" in line:
            name_params, value = line.split(":", 1)
            current.setdefault(name_params.split(";")[0], value)
    return todos


def text_list(raw):
    """A list of TEXT values (RFC 5545 section 3.3.11: COMMA-separated, `\\,` is a comma in a
    value). Split here because icalendar 6.3.2 unescapes before it splits, so it cuts `a\\,b`
    in two."""
    if raw is None:
        return []
    values, current, chars = [], "", iter(raw)
    for c in chars:
        if c == "\\":
            escaped = next(chars, "")
            current += "\n" if escaped in ("n", "N") else escaped
        elif c == ",":
            values.append(current)
            current = ""
        else:
            current += c
    values.append(current)
    return values


def text_of(component, name):
    value = component.get(name)
    return None if value is None else str(value)


def check_todo(todo, raw, expected, zones):
    uid = expected["uid"]

    def differs(what, got, want):
        if got != want:
            problem(f"{uid} {what}: feed has {got!r}, the API {want!r}")

    differs("SUMMARY", text_of(todo, "SUMMARY"), expected["summary"])
    differs("DESCRIPTION", text_of(todo, "DESCRIPTION"), expected["description"] or None)
    priority = todo.get("PRIORITY")
    differs("PRIORITY", None if priority is None else int(priority), expected["priority"])
    differs("CATEGORIES", text_list(raw.get("CATEGORIES")), expected["categories"])
    differs("STATUS", text_of(todo, "STATUS"), "NEEDS-ACTION")
    differs("SEQUENCE", int(todo.get("SEQUENCE", -1)), expected["sequence"])
    for name in ("DTSTAMP", "LAST-MODIFIED"):
        differs(name, utc_text(todo[name].dt), expected["lastModified"])

    due = todo.get("DUE")
    if due is None:
        problem(f"{uid} has no DUE")
        return
    want_due = parse_utc(expected["dueAt"])
    zone = expected["zone"]
    if zone is None:
        differs("DUE's TZID", due.params.get("TZID"), None)
        if due.dt.tzinfo is None or due.dt.utcoffset() != timedelta(0):
            problem(f"{uid} DUE is not in UTC: {due.to_ical()!r}")
        differs("DUE", utc_text(due.dt), expected["dueAt"])
        differs("RRULE", todo.get("RRULE") is not None, False)
    else:
        differs("DUE's TZID", due.params.get("TZID"), zone)
        vtz = zones.get(zone)
        if vtz is None:
            problem(f"{uid} names TZID {zone}, which has no VTIMEZONE in the feed")
            return
        local = datetime.strptime(due.to_ical().decode(), "%Y%m%dT%H%M%S")
        start = todo.get("DTSTART")
        if start is None or start.to_ical() != due.to_ical() or start.params.get("TZID") != zone:
            problem(f"{uid} DTSTART is not DUE: {start and start.to_ical()!r}")
        reference = zone_offset(zoneinfo.ZoneInfo(zone))
        read = to_instant(local, vtz.offset_at)
        differs("DUE read in the VTIMEZONE (RFC 5545 3.3.5)", utc_text(read), expected["dueAt"])
        differs(
            "DUE read in tzdata (RFC 5545 3.3.5)",
            utc_text(to_instant(local, reference)),
            expected["dueAt"],
        )
        rule = todo.get("RRULE")
        if rule is None:
            problem(f"{uid} repeats in the API but has no RRULE")
            return
        body = rule.to_ical().decode()
        upcoming = [parse_utc(t) for t in expected["upcoming"]]
        got = expand(body, local, want_due, vtz.offset_at, expected["upcomingCount"])
        differs(
            f"next dates of RRULE:{body} from {local.isoformat()} {zone}",
            [utc_text(t) for t in got],
            [utc_text(t) for t in upcoming],
        )
        for t in got:
            if vtz.offset_at(t) != reference(t):
                problem(f"{uid}: the VTIMEZONE's offset at {utc_text(t)} is not tzdata's")

    alarms = []
    for alarm in todo.walk("VALARM"):
        differs("VALARM ACTION", text_of(alarm, "ACTION"), "DISPLAY")
        if text_of(alarm, "DESCRIPTION") is None:
            problem(f"{uid}: a DISPLAY VALARM without DESCRIPTION")
        trigger = alarm["TRIGGER"]
        if isinstance(trigger.dt, timedelta):
            differs("relative TRIGGER's RELATED", trigger.params.get("RELATED"), "END")
            alarms.append({"minutesBeforeDue": int(-trigger.dt.total_seconds() // 60)})
        else:
            alarms.append({"at": utc_text(trigger.dt)})
    key = lambda a: json.dumps(a, sort_keys=True)  # noqa: E731
    differs("VALARMs", sorted(alarms, key=key), sorted(expected["alarms"], key=key))


def main():
    feed_path, expected_path = sys.argv[1], sys.argv[2]
    with open(feed_path, "rb") as f:
        raw = f.read()
    with open(expected_path, encoding="utf-8") as f:
        expected = json.load(f)
    text = check_bytes(raw)
    if text is None:
        return report()
    try:
        calendar = icalendar.Calendar.from_ical(text)
    except Exception as e:  # noqa: BLE001
        problem(f"icalendar cannot parse the feed: {e!r}")
        return report()
    for component in calendar.walk():
        for error in getattr(component, "errors", []):
            problem(f"icalendar found an error in {component.name}: {error}")
    if text_of(calendar, "VERSION") != "2.0":
        problem(f"VERSION is {text_of(calendar, 'VERSION')!r}")
    if not text_of(calendar, "PRODID"):
        problem("no PRODID")
    for name in ("NAME", "X-WR-CALNAME"):
        if text_of(calendar, name) != expected["name"]:
            problem(f"{name} is {text_of(calendar, name)!r}, not {expected['name']!r}")
    zones = check_vtimezones(calendar)
    todos = calendar.walk("VTODO")
    uids = [text_of(t, "UID") for t in todos]
    want = [t["uid"] for t in expected["todos"]]
    if uids != want:
        problem(f"the feed's VTODOs are {uids}, the API's tasks {want}")
    by_uid = {text_of(t, "UID"): t for t in todos}
    raw_todos = raw_properties(text)
    for item in expected["todos"]:
        if item["uid"] in by_uid:
            check_todo(by_uid[item["uid"]], raw_todos.get(item["uid"], {}), item, zones)
    used = {t["zone"] for t in expected["todos"] if t["zone"]}
    if set(zones) != used:
        problem(f"VTIMEZONEs for {sorted(zones)}, but the repeating tasks use {sorted(used)}")
    return report(len(todos), len(zones))


def report(todos=0, zones=0):
    if PROBLEMS:
        for line in PROBLEMS:
            print(line)
        return 1
    print(f"ok: {todos} VTODOs and {zones} VTIMEZONEs agree with the API")
    return 0


if __name__ == "__main__":
    sys.exit(main())
