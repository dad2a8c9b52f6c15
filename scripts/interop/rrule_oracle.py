#!/usr/bin/env python3
"""The recurrence oracle: seeded cases of (RRULE, IANA zone, dueAt), each with the dates
Taskstream must compute for it, by python-dateutil's rrule and zoneinfo, an independent RFC 5545
implementation.

Used by the recurrence differential test (graphql/tests/recurrence_differential.rs), which
compares previewRecurrence, Recurrence.upcoming and the successors the recurrence subscriber
creates with these dates. It prints one JSON object per line:

    {"id", "family", "note", "rule", "zone", "dueAt", "local", "count", "chain", "expected"}

where `count` is the k of previewRecurrence / upcoming, `chain` how many tasks of the series the
test walks by completing them (0: none), and `expected` is either

    {"series": [dueAt, 2nd, 3rd, ...], "ended": bool, "span_periods": float | null}

(the series from its first element, dueAt; `ended` says whether it holds every element the
series has, and `span_periods` how far, in periods of FREQ times INTERVAL of wall-clock time, an
expansion must look to find them: null when only exhausting the rule could tell), or

    {"refused": "frequency" | "too_frequent" | "never", "why": "..."}

for a rule the API must refuse with BAD_USER_INPUT. By hand:

    PYTHONTZPATH= python3 scripts/interop/rrule_oracle.py --seed 7 --cases 20 --chains 4

It must read time zones from the tzdata package at IANA 2025b, the release chrono-tz 0.10.4
(the Rust side) embeds, not from the machine: run it with PYTHONTZPATH set to the empty string.
It checks that, and the pinned versions (scripts/lib/python.sh installs them), before anything.

The semantics, for a rule R, zone Z and due date D (a UTC instant):
 1. R without COUNT and UNTIL is expanded by dateutil in floating wall-clock time, DTSTART being
    the naive local time of D in Z.
 2. Each wall-clock time N becomes an instant as RFC 5545 section 3.3.5 says (`to_instant`).
 3. The series is D first, then the distinct instants after D in increasing order: the
    post-processing steps in `series_of` (each cites the RFC), which are also every difference
    between this oracle and dateutil's raw output.
 4. UNTIL (UTC) bounds the instants inclusively, COUNT=n keeps n elements counting D, and no
    series goes past 9000-12-31T23:59:59Z (the end of the API's date range).
"""

import argparse
import importlib.metadata
import json
import math
import random
import signal
import sys
import zoneinfo
from datetime import datetime, timedelta, timezone

PINNED = {"python-dateutil": "2.9.0.post0", "tzdata": "2025.2"}
UTC = timezone.utc
# The end of the API's accepted date range ends every series.
END = datetime(9000, 12, 31, 23, 59, 59, tzinfo=UTC)
# More than any zone's distance from UTC: the instant of a wall-clock time N is never earlier
# than N - MARGIN read as UTC, which bounds how far past the k-th date the expansion must look.
MARGIN = timedelta(hours=26)
# chrono-tz tabulates transitions up to 2099 and uses one fixed offset after that (it does not
# evaluate the zone's POSIX rule), so cases in zones with daylight saving stay before 2100.
TABLE_END = datetime(2100, 1, 1, tzinfo=UTC)
# No random case needs dates further than this from its due date (keeps the cases cheap).
MOST_YEARS_AHEAD = 100
# Zones without transitions after 1996, where any date is safe.
FIXED_ZONES = ("UTC", "Asia/Kolkata")
# Zones and the years whose transitions due dates are placed around.
ZONES = {
    "Atlantic/Azores": (1996, 2038),
    "America/Santiago": (1996, 2038),
    "America/Havana": (1996, 2038),
    "Africa/Cairo": (1996, 2038),
    "Asia/Beirut": (1996, 2038),
    "America/Sao_Paulo": (1996, 2019),
    "Europe/Berlin": (1996, 2038),
    "America/New_York": (1996, 2038),
    "Pacific/Chatham": (1996, 2038),
    "Australia/Sydney": (1996, 2038),
    "Australia/Lord_Howe": (1996, 2038),
    "Pacific/Apia": (2009, 2022),
    "UTC": None,
    "Asia/Kolkata": None,
}
WEEKDAYS = ["MO", "TU", "WE", "TH", "FR", "SA", "SU"]
# Average length of a period, to measure how far an expansion looks.
FREQ_SECONDS = {
    "HOURLY": 3600,
    "DAILY": 86400,
    "WEEKLY": 7 * 86400,
    "MONTHLY": 2629746,
    "YEARLY": 31556952,
}
# Seconds of dateutil work a random case may take before it is drawn again, and a fixed case
# (regression, refusal) before the oracle gives up.
RANDOM_BUDGET_SECONDS = 3.0
FIXED_BUDGET_SECONDS = 60.0


def check_environment():
    """Exits with a message unless the pinned packages are there and zones come from tzdata."""
    problems = []
    for dist, version in PINNED.items():
        try:
            found = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            found = None
        if found != version:
            problems.append(f"{dist} {version} is needed, found {found or 'none'}")
    if zoneinfo.TZPATH:
        problems.append(
            f"zoneinfo reads {zoneinfo.TZPATH}: run with PYTHONTZPATH= (empty) so that zones come "
            "from the tzdata package (IANA 2025b, as chrono-tz)"
        )
    if problems:
        print(
            "rrule_oracle: " + "; ".join(problems) + ". Run scripts/test, which installs "
            f"python-dateutil {PINNED['python-dateutil']} and tzdata {PINNED['tzdata']} with pip.",
            file=sys.stderr,
        )
        sys.exit(3)


check_environment()

from dateutil.rrule import rrulestr  # noqa: E402  (only after the version check)


# ------------------------------------------------------------------------------ semantics


class Never(Exception):
    """The rule (without COUNT and UNTIL) has no date after dueAt at all."""


class TooSlow(Exception):
    """dateutil needed more than the case budget; the case is drawn again."""


def utc_text(instant):
    return instant.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_utc(text):
    return datetime.strptime(text, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)


def split_rule(body):
    """(the rule without COUNT and UNTIL, COUNT or None, UNTIL as an instant or None)."""
    kept, count, until = [], None, None
    for part in body.split(";"):
        name, value = part.split("=", 1)
        if name == "COUNT":
            count = int(value)
        elif name == "UNTIL":
            until = parse_utc(value)
        else:
            kept.append(part)
    return ";".join(kept), count, until


def to_instant(naive, zone):
    """A wall-clock time in `zone` as an instant, as RFC 5545 section 3.3.5 reads it:

    "If, based on the definition of the referenced time zone, the local time described occurs
    more than once (when changing from daylight to standard time), the DATE-TIME value refers to
    the first occurrence of the referenced time. Thus, TZID=America/New_York:20071104T013000
    indicates November 4, 2007 at 1:30 A.M. EDT (UTC-04:00). If the local time described does
    not occur (when changing from standard to daylight time), the DATE-TIME value is interpreted
    using the UTC offset before the gap in local times."

    That is zoneinfo's fold=0 (PEP 495): the earlier of two readings, and in a gap the offset in
    force before it.
    """
    return naive.replace(tzinfo=zone, fold=0).astimezone(UTC)


def series_of(body, zone_name, due, wanted):
    """The first elements of the series of rule `body` in zone `zone_name` from `due`: a dict
    {"series", "ended", "span_periods"} with up to `wanted` elements after `due`. Raises Never.
    """
    rule_text, count, until = split_rule(body)
    zone = zoneinfo.ZoneInfo(zone_name)
    start = due.astimezone(zone).replace(tzinfo=None)
    limit = min(until, END) if until else END
    # COUNT=n: the series has n elements, the first of which is `due` (below).
    need = wanted if count is None else min(wanted, count - 1)
    try:
        rule = rrulestr(rule_text, dtstart=start)
    except ValueError as e:
        # dateutil proves some rules empty when it builds them (FREQ=HOURLY;INTERVAL=24;BYHOUR=5
        # from 09:00 has no hour to give).
        if "empty set" in str(e):
            raise Never(str(e)) from e
        raise
    after = set()  # the distinct instants after `due`, within UNTIL and END
    any_after = False  # whether the rule has any instant after `due`, whatever COUNT and UNTIL
    stop = None  # the wall-clock time at which the answer was known (None: rule exhausted)
    complete = False  # whether `after` holds every instant up to UNTIL and END
    for naive in rule:  # dateutil's raw output: wall-clock times, increasing
        lower = (naive - MARGIN).replace(tzinfo=UTC)  # no instant from here on is earlier
        kth = sorted(after)[need - 1] if need and len(after) >= need else None
        complete = lower > limit
        if (need == 0 or kth is not None and lower > kth or complete) and any_after:
            stop = naive
            break
        instant = to_instant(naive, zone)
        if instant <= due:
            # Post-processing 1, nothing at or before dueAt: the series starts at DTSTART (RFC
            # 5545 section 3.8.5.3: "The "DTSTART" property defines the first instance in the
            # recurrence set"), and the API lists what comes after it. dateutil yields DTSTART's
            # own wall-clock time again when it matches the rule (dropped here, it is `due`), and
            # when `due` is the second of a repeated hour, wall-clock times of that hour read
            # with fold=0 are instants before `due` (dropped too).
            continue
        any_after = True
        if instant > limit:
            # UNTIL "bounds the recurrence rule in an inclusive manner" (section 3.3.10); the
            # end of the API's date range likewise.
            continue
        # Post-processing 2, duplicates: section 3.8.5.3, "Duplicate instances are ignored". In
        # a gap two wall-clock times can be the same instant (02:30 read with the offset before
        # the gap is 03:30 after it), so the set keeps one.
        after.add(instant)
    if not any_after:
        raise Never("no date after dueAt")

    # Post-processing 3, order: the recurrence set is a set of instants, listed in increasing
    # order. In a gap, wall-clock order is not instant order (02:50 read with the offset before
    # the gap comes after 03:10), so the instants are sorted, not kept in dateutil's order.
    ordered = sorted(after)
    # Post-processing 4, dueAt first, whether or not it matches the rule: "The "DTSTART"
    # property defines the first instance in the recurrence set" (section 3.8.5.3), and for
    # COUNT "The "DTSTART" property value always counts as the first occurrence" (section
    # 3.3.10). (Section 3.8.5.3 calls a set from a DTSTART that does not match the rule
    # "undefined"; Taskstream defines it so, since its due date starts every series.) dateutil
    # counts only matching dates ("unlike documented in the RFC, the starting datetime (dtstart)
    # is not the first recurrence instance, unless it does fit in the specified rules"), hence
    # COUNT and UNTIL are applied here instead of by dateutil.
    series = [due] + ordered[:need]
    ended = (count is not None and len(series) >= count) or (
        (complete or stop is None) and len(ordered) <= need
    )
    interval = int(dict(p.split("=") for p in rule_text.split(";")).get("INTERVAL", "1"))
    period = timedelta(seconds=FREQ_SECONDS[rule_text.split(";")[0][5:]] * interval)
    span = None if stop is None else (stop - start) / period
    return {"series": series, "ended": ended, "span_periods": span}


def max_per_day(body, zone_name, due, days=3):
    """The most wall-clock times the rule gives on one local day, over its first `days` days."""
    rule_text, _, _ = split_rule(body)
    start = due.astimezone(zoneinfo.ZoneInfo(zone_name)).replace(tzinfo=None)
    per_day = {}
    for naive in rrulestr(rule_text, dtstart=start):
        if naive.date() >= start.date() + timedelta(days=days):
            break
        per_day[naive.date()] = per_day.get(naive.date(), 0) + 1
    return max(per_day.values(), default=0)


def expected_for(body, zone_name, due, wanted):
    """What the API must answer for this case: a series, or the kind of refusal."""
    freq = body.split(";")[0].split("=")[1]
    if freq in ("SECONDLY", "MINUTELY"):
        return {"refused": "frequency", "why": f"FREQ={freq}: tasks recur at most hourly"}
    try:
        found = series_of(body, zone_name, due, wanted)
    except Never as e:
        return {"refused": "never", "why": f"the rule never gives a date after dueAt ({e})"}
    # Only now, when the rule is known to have dates (else this walk would not end).
    per_day = max_per_day(body, zone_name, due)
    if per_day > 96:
        return {"refused": "too_frequent", "why": f"{per_day} dates on one day (more than 96)"}
    found["series"] = [utc_text(t) for t in found["series"]]
    return found


def with_budget(seconds, compute, *args):
    """compute(*args), or TooSlow after `seconds`."""

    def expire(_signum, _frame):
        raise TooSlow()

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        return compute(*args)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


# ------------------------------------------------------------------------------ due dates

_TRANSITIONS = {}


def transitions(zone_name):
    """[(instant, offset before, offset after)] of the zone within its ZONES years."""
    years = ZONES[zone_name]
    if years is None:
        return []
    if zone_name in _TRANSITIONS:
        return _TRANSITIONS[zone_name]
    zone = zoneinfo.ZoneInfo(zone_name)

    def offset_at(seconds):
        return datetime.fromtimestamp(seconds, zone).utcoffset()

    found = []
    t = int(datetime(years[0], 1, 1, tzinfo=UTC).timestamp())
    end = int(datetime(years[1], 1, 1, tzinfo=UTC).timestamp())
    offset = offset_at(t)
    while t < end:
        step = t + 12 * 3600
        new = offset_at(step)
        if new != offset:
            lo, hi = t, step  # whole seconds: lo has the old offset, hi the new one
            while hi - lo > 1:
                mid = (lo + hi) // 2
                if offset_at(mid) == offset:
                    lo = mid
                else:
                    hi = mid
            found.append((datetime.fromtimestamp(hi, UTC), offset, new))
        offset, t = new, step
    _TRANSITIONS[zone_name] = found
    return found


def offset_text(offset):
    minutes = int(offset.total_seconds()) // 60
    sign = "-" if minutes < 0 else "+"
    return f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def duration_text(seconds):
    sign = "-" if seconds < 0 else "+"
    seconds = abs(int(seconds))
    return f"{sign}{seconds // 3600}h{seconds % 3600 // 60:02d}m{seconds % 60:02d}s"


def random_instant(rng, first_year, last_year):
    lo = datetime(first_year, 1, 1, tzinfo=UTC).timestamp()
    hi = datetime(last_year, 1, 1, tzinfo=UTC).timestamp()
    t = rng.randrange(int(lo), int(hi))
    if rng.random() < 0.8:
        t -= t % 60  # mostly whole minutes, sometimes odd seconds
    return datetime.fromtimestamp(t, UTC)


def pick_due(rng, zone_name):
    """(dueAt, a note saying where it lies, the local hours near the transition it is near)."""
    found = transitions(zone_name)
    if not found or rng.random() < 0.12:
        due = random_instant(rng, 1996, 2038)
        return due, "random dueAt", []
    when, before, after = rng.choice(found)
    jump = (after - before).total_seconds()  # > 0: a gap (clocks forward); < 0: repeated times
    kind = "gap" if jump > 0 else "fold"
    mode = rng.choice(["on it", "within 3 h", "a day away, within 3 h", "inside"])
    if mode == "on it":
        delta = rng.choice([0, -1, 1, -60, 60])
    elif mode == "within 3 h":
        delta = rng.randrange(-3 * 3600, 3 * 3600 + 1, rng.choice([60, 900]))
    elif mode == "a day away, within 3 h":
        delta = rng.choice([-86400, 86400]) + rng.randrange(-3 * 3600, 3 * 3600 + 1, 60)
    elif kind == "gap":
        # Local wall time just after the gap (the times inside it do not exist).
        delta = rng.randrange(0, 1800, 60)
        mode = "just after the gap"
    else:
        # Either reading of a repeated wall time: first (before the change) or second.
        x = rng.randrange(0, int(-jump), 60)
        delta, mode = rng.choice([(x + int(jump), "first fold"), (x, "second fold")])
    due = when + timedelta(seconds=delta)
    assert due.microsecond == 0, due
    zone = zoneinfo.ZoneInfo(zone_name)
    hot = sorted(
        {
            (when + before).hour if kind == "gap" else (when + after).hour,
            (when + before + timedelta(hours=1)).hour,
            (when - timedelta(seconds=1)).astimezone(zone).hour,
        }
    )
    note = (
        f"{kind} at {utc_text(when)} (UTC{offset_text(before)} -> UTC{offset_text(after)}), dueAt "
        f"{duration_text(delta)} from it ({mode})"
    )
    return due, note, hot


def local_text(due, zone_name):
    local = due.astimezone(zoneinfo.ZoneInfo(zone_name))
    fold = " (second of a repeated time)" if local.fold else ""
    wall = local.replace(tzinfo=None).isoformat()
    return f"{wall} {local.tzname()} UTC{local.strftime('%z')}{fold}"


# ------------------------------------------------------------------------------ rules


def pick_some(rng, values, lo, hi):
    return sorted(rng.sample(values, rng.randint(lo, min(hi, len(values)))), key=values.index)


def join_values(values):
    return ",".join(str(v) for v in values)


def hours_part(rng, local, hot, interval_hours=None):
    """BYHOUR values: often the hours around a transition, always one the rule can reach."""
    pool = list(range(24))
    chosen = set(pick_some(rng, pool, 1, 3))
    if hot and rng.random() < 0.7:
        chosen.add(rng.choice(hot))
    if interval_hours:
        # HOURLY with INTERVAL steps through hours h0 + j*INTERVAL, that is the hours congruent
        # to h0 modulo gcd(INTERVAL, 24); keep only those (the never-meeting ones are their own
        # family).
        step = math.gcd(interval_hours, 24)
        chosen = {h for h in chosen if (h - local.hour) % step == 0} or {local.hour}
    return sorted(chosen)


def minutes_part(rng, local, most):
    pool = sorted({0, 15, 30, 45, local.minute, rng.randrange(60)})
    return pick_some(rng, pool, 1, most)


def weekdays_part(rng, must=None):
    days = pick_some(rng, WEEKDAYS, 1, 4)
    if must is not None and must not in days:
        days = sorted(days + [must], key=WEEKDAYS.index)
    return days


def months_part(rng, local, interval_months):
    """BYMONTH values, one of which the rule reaches from the due date's month."""
    months = pick_some(rng, list(range(1, 13)), 1, 3)
    reachable = {(local.month - 1 + j * interval_months) % 12 + 1 for j in range(12)}
    if not reachable & set(months):
        months = sorted(set(months) | {rng.choice(sorted(reachable))})
    return months


def ordinal_days(rng, ordinals):
    picked = {f"{rng.choice(ordinals)}{rng.choice(WEEKDAYS)}" for _ in range(rng.randint(1, 2))}
    return sorted(picked)


def random_rule(rng, local, hot):
    """A random RRULE body (without COUNT or UNTIL, added by the caller) that is cheap to expand."""
    freq = rng.choice(["HOURLY", "DAILY", "DAILY", "WEEKLY", "MONTHLY", "MONTHLY", "YEARLY"])
    parts = {}
    time_parts = rng.random() < (0.5 if freq == "DAILY" else 0.3)
    if freq == "HOURLY":
        interval = rng.choice([1, 1, 1, 2, 3, 4, 6, 8, 12])
        if rng.random() < 0.5:
            parts["BYMINUTE"] = minutes_part(rng, local, 4)
        if rng.random() < 0.3:
            parts["BYHOUR"] = hours_part(rng, local, hot, interval)
        if rng.random() < 0.25:
            parts["BYDAY"] = weekdays_part(rng)
        if rng.random() < 0.1:
            parts["BYMONTHDAY"] = pick_some(rng, [1, 2, 10, 15, 28, -1, -2], 1, 3)
        if rng.random() < 0.1:
            parts["BYMONTH"] = months_part(rng, local, 1)
        if len(parts.get("BYMINUTE", [])) > 1 and rng.random() < 0.3:
            parts["BYSETPOS"] = [rng.choice([1, -1, 2])]
    elif freq == "DAILY":
        interval = rng.choice([1, 1, 1, 2, 3, 5, 7, 10])
        if time_parts:
            parts["BYHOUR"] = hours_part(rng, local, hot)
            if rng.random() < 0.4:
                parts["BYMINUTE"] = minutes_part(rng, local, 2)
        if rng.random() < 0.3:
            must = WEEKDAYS[local.weekday()] if interval % 7 == 0 else None
            parts["BYDAY"] = weekdays_part(rng, must)
        if rng.random() < 0.15:
            parts["BYMONTH"] = months_part(rng, local, 1)
        if rng.random() < 0.15 and interval < 7:
            parts["BYMONTHDAY"] = pick_some(rng, [1, 5, 13, 15, 28, 29, 30, 31, -1, -2, -10], 1, 3)
        if len(parts.get("BYHOUR", [])) > 1 and rng.random() < 0.3:
            parts["BYSETPOS"] = [rng.choice([1, -1])]
    elif freq == "WEEKLY":
        interval = rng.choice([1, 1, 2, 3, 4])
        if rng.random() < 0.7:
            parts["BYDAY"] = weekdays_part(rng)
        if time_parts:
            parts["BYHOUR"] = hours_part(rng, local, hot)
            if rng.random() < 0.4:
                parts["BYMINUTE"] = minutes_part(rng, local, 2)
        if rng.random() < 0.1:
            parts["BYMONTH"] = months_part(rng, local, 1)
        if len(parts.get("BYDAY", [])) > 1 and rng.random() < 0.25:
            parts["BYSETPOS"] = [rng.choice([1, -1, 2])]
        if rng.random() < 0.4:
            parts["WKST"] = [rng.choice(WEEKDAYS)]
    elif freq == "MONTHLY":
        interval = rng.choice([1, 1, 1, 2, 3, 4, 6])
        mode = rng.choice(["plain", "monthday", "ordinal", "setpos", "friday13"])
        if mode == "monthday":
            days = [1, 2, 10, 15, 28, 29, 30, 31, -1, -2, -3, -7]
            parts["BYMONTHDAY"] = pick_some(rng, days, 1, 3)
        elif mode == "ordinal":
            parts["BYDAY"] = ordinal_days(rng, [1, 2, 3, 4, 5, -1, -2])
        elif mode == "setpos":
            parts["BYDAY"] = rng.choice([WEEKDAYS[:5], ["SA", "SU"], weekdays_part(rng)])
            parts["BYSETPOS"] = pick_some(rng, [1, 2, -1, -2], 1, 2)
        elif mode == "friday13":
            parts["BYDAY"] = [rng.choice(WEEKDAYS)]
            parts["BYMONTHDAY"] = [rng.choice([13, 1, -1])]
        if rng.random() < 0.15:
            parts["BYMONTH"] = months_part(rng, local, interval)
        if time_parts:
            parts["BYHOUR"] = hours_part(rng, local, hot)
            if rng.random() < 0.4:
                parts["BYMINUTE"] = minutes_part(rng, local, 2)
        if rng.random() < 0.1:
            parts["WKST"] = [rng.choice(WEEKDAYS)]
    else:
        interval = rng.choice([1, 1, 1, 2, 3])
        mode = rng.choice(
            ["plain", "monthday", "ordinal", "setpos", "yearly-ordinal", "yearday", "month"]
        )
        if mode in ("monthday", "ordinal", "setpos", "month"):
            parts["BYMONTH"] = pick_some(rng, list(range(1, 13)), 1, 3)
        if mode == "monthday":
            parts["BYMONTHDAY"] = pick_some(rng, [1, 15, 29, 30, 31, -1, -2], 1, 2)
        elif mode == "ordinal":
            parts["BYDAY"] = ordinal_days(rng, [1, 2, 3, 4, -1, -2])
        elif mode == "setpos":
            parts["BYDAY"] = weekdays_part(rng)
            parts["BYSETPOS"] = [rng.choice([1, 2, 4, -1])]
        elif mode == "yearly-ordinal":
            parts["BYDAY"] = ordinal_days(rng, [1, 2, 10, 20, 52, -1, -2])
        elif mode == "yearday":
            parts["BYYEARDAY"] = pick_some(rng, [1, 2, 60, 100, 200, 256, 365, -1, -100], 1, 2)
        if time_parts:
            parts["BYHOUR"] = hours_part(rng, local, hot)
            if rng.random() < 0.4:
                parts["BYMINUTE"] = minutes_part(rng, local, 2)
        if rng.random() < 0.15:
            parts["WKST"] = [rng.choice(WEEKDAYS)]
    order = [
        "BYMINUTE", "BYHOUR", "BYDAY", "BYMONTHDAY", "BYYEARDAY", "BYMONTH", "BYSETPOS", "WKST"
    ]
    text = [f"FREQ={freq}"] + ([f"INTERVAL={interval}"] if interval > 1 else [])
    text += [f"{name}={join_values(parts[name])}" for name in order if name in parts]
    return ";".join(text)


def with_part(body, part):
    """`body` with COUNT or UNTIL added after FREQ (where RFC 5545 lists them)."""
    freq, _, rest = body.partition(";")
    return ";".join(p for p in (freq, part, rest) if p)


# ------------------------------------------------------------------------------ cases


def at(text):
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


# Cases from the bug report that started this test, each with the dates worked out by hand; the oracle
# checks its own answer against them before printing anything.
REGRESSIONS = [
    (
        "hourly across the Berlin gap: 02:30 does not exist and is 03:30's instant",
        "FREQ=HOURLY", "Europe/Berlin", "2027-03-28T00:30:00Z", 3,
        ["2027-03-28T01:30:00Z", "2027-03-28T02:30:00Z", "2027-03-28T03:30:00Z"],
    ),
    (
        "daily 02:30 in Berlin keeps 02:30 after the gap day (no drift to 03:30)",
        "FREQ=DAILY", "Europe/Berlin", "2027-03-26T01:30:00Z", 4,
        ["2027-03-27T01:30:00Z", "2027-03-28T01:30:00Z", "2027-03-29T00:30:00Z",
         "2027-03-30T00:30:00Z"],
    ),
    (
        "daily 00:30 in Santiago across its midnight gap (2024-09-08 00:00 -> 01:00)",
        "FREQ=DAILY", "America/Santiago", "2024-09-06T04:30:00Z", 4,
        ["2024-09-07T04:30:00Z", "2024-09-08T04:30:00Z", "2024-09-09T03:30:00Z",
         "2024-09-10T03:30:00Z"],
    ),
    (
        "daily 23:30 in Santiago across its midnight fold (2025-04-06 00:00 -> 2025-04-05 23:00)",
        "FREQ=DAILY", "America/Santiago", "2025-04-03T02:30:00Z", 4,
        ["2025-04-04T02:30:00Z", "2025-04-05T02:30:00Z", "2025-04-06T02:30:00Z",
         "2025-04-07T03:30:00Z"],
    ),
    (
        "COUNT with dueAt the second 02:30 of Berlin's repeated hour: the first 02:30 is before "
        "it and does not count",
        "FREQ=HOURLY;COUNT=3", "Europe/Berlin", "2027-10-31T01:30:00Z", 5,
        ["2027-10-31T02:30:00Z", "2027-10-31T03:30:00Z"],
    ),
    (
        "COUNT=2 daily with dueAt the second 02:30 of Berlin's repeated hour",
        "FREQ=DAILY;COUNT=2", "Europe/Berlin", "2027-10-31T01:30:00Z", 5,
        ["2027-11-01T01:30:00Z"],
    ),
    (
        "dueAt not matching the rule is still the first of COUNT (RFC 5545 3.3.10, 3.8.5.3)",
        "FREQ=WEEKLY;COUNT=3;BYDAY=MO", "UTC", "2030-01-09T09:00:00Z", 5,
        ["2030-01-14T09:00:00Z", "2030-01-21T09:00:00Z"],
    ),
    (
        "Apia skipped 2011-12-30: its 09:00 is read at -10:00, the instant of 31 Dec 09:00",
        "FREQ=DAILY", "Pacific/Apia", "2011-12-28T19:00:00Z", 4,
        ["2011-12-29T19:00:00Z", "2011-12-30T19:00:00Z", "2011-12-31T19:00:00Z",
         "2012-01-01T19:00:00Z"],
    ),
    (
        "the series ends with the accepted date range, 9000-12-31T23:59:59Z",
        "FREQ=YEARLY", "UTC", "8998-06-01T12:00:00Z", 5,
        ["8999-06-01T12:00:00Z", "9000-06-01T12:00:00Z"],
    ),
    (
        "from 09:00, an hourly rule with INTERVAL=24 only reaches 09:00, never BYHOUR=5",
        "FREQ=HOURLY;INTERVAL=24;BYHOUR=5", "Europe/Berlin", "2030-01-07T08:00:00Z", 5,
        "never",
    ),
]

EVERY_HOUR = ",".join(str(h) for h in range(24))
# Rules the API must refuse (or, marked "accepted", must not), by what the oracle must find.
# "More than 96 a day" means a local calendar day (the API expands rules in wall-clock time):
# FREQ=HOURLY;INTERVAL=2 with 8 BYMINUTE values gives 96 on every calendar day and is accepted,
# though 24 hours of real time across a spring-forward gap can hold 104 of its dates; every
# five hours with 20 BYMINUTE values lands on 5 hours of some days, 100 dates, and is refused.
# `{h1}`, `{h2}`, `{h3}`, `{wd}`, `{mo}` are filled from the due date so that the rule can never
# meet it: an hour or weekday or month the rule's INTERVAL never reaches from there.
REFUSALS = [
    ("frequency", "FREQ=MINUTELY;INTERVAL=60"),
    ("frequency", "FREQ=SECONDLY;INTERVAL=3600"),
    ("frequency", "FREQ=MINUTELY;INTERVAL=15;BYHOUR=9"),
    ("too_frequent", "FREQ=HOURLY;BYMINUTE=0,12,24,36,48"),
    ("too_frequent", f"FREQ=DAILY;BYHOUR={EVERY_HOUR};BYMINUTE=0,12,24,36,48"),
    ("too_frequent", "FREQ=HOURLY;BYMINUTE=0,30;BYSECOND=0,20,40"),
    ("too_frequent", "FREQ=HOURLY;INTERVAL=5;BYMINUTE=" + ",".join(str(m) for m in range(20))),
    ("accepted", "FREQ=HOURLY;BYMINUTE=0,15,30,45"),
    ("accepted", "FREQ=HOURLY;INTERVAL=2;BYMINUTE=0,7,15,22,30,37,45,52"),
    ("accepted", f"FREQ=DAILY;BYHOUR={EVERY_HOUR};BYMINUTE=0,15,30,45"),
    ("never", "FREQ=HOURLY;INTERVAL=24;BYHOUR={h1}"),
    ("never", "FREQ=HOURLY;INTERVAL=2;BYHOUR={h2},{h3}"),
    ("never", "FREQ=DAILY;INTERVAL=14;BYDAY={wd}"),
    ("never", "FREQ=MONTHLY;INTERVAL=12;BYMONTH={mo}"),
    ("never", "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30"),
    ("never", "FREQ=MONTHLY;BYMONTH=4,6,9,11;BYMONTHDAY=31"),
]


def refusal_case(rng, template):
    intent, pattern = template
    zone_name = rng.choice(list(ZONES))
    due, note, _ = pick_due(rng, zone_name)
    local = due.astimezone(zoneinfo.ZoneInfo(zone_name))
    body = pattern.format(
        h1=(local.hour + 4) % 24,
        h2=(local.hour + 1) % 24,
        h3=(local.hour + 3) % 24,
        wd=WEEKDAYS[(local.weekday() + 3) % 7],
        mo=(local.month + 5) % 12 + 1,
    )
    k = rng.choice([1, 5, 10])
    expected = with_budget(FIXED_BUDGET_SECONDS, expected_for, body, zone_name, due, k)
    got = expected.get("refused", "accepted")
    assert got == intent, f"oracle self-check: {body} in {zone_name} from {due}: {got}, {intent}?"
    family = "refusal" if intent != "accepted" else "boundary"
    return family, f"{intent}: {note}", body, zone_name, due, k, 0, expected


def regression_case(entry):
    note, body, zone_name, due_text, k, dates = entry
    due = at(due_text)
    expected = with_budget(FIXED_BUDGET_SECONDS, expected_for, body, zone_name, due, k + 5)
    if isinstance(dates, str):  # a refusal
        assert expected.get("refused") == dates, f"oracle self-check: {note}: {expected}"
        return "regression", note, body, zone_name, due, k, 0, expected
    upcoming = expected["series"][1 : k + 1]
    assert upcoming == dates, f"oracle self-check: {note}: {upcoming} != {dates}"
    return "regression", note, body, zone_name, due, k, 5, expected


def random_case(rng, chain):
    """A random case whose dates stay cheap to find, before 2100 (see TABLE_END) where it
    matters, and in the API's range; or None when this draw must be drawn again."""
    zone_name = rng.choice(list(ZONES))
    due, note, hot = pick_due(rng, zone_name)
    local = due.astimezone(zoneinfo.ZoneInfo(zone_name)).replace(tzinfo=None)
    body = random_rule(rng, local, hot)
    k = rng.choice([3, 5]) if chain else rng.choice([1, 2, 3, 5, 5, 8, 10, 20, 50])
    wanted = k + chain
    ends = rng.random()
    if ends < (0.4 if chain else 0.2):
        body = with_part(body, f"COUNT={rng.randint(1, 6) if chain else rng.randint(1, 15)}")
    elif ends < (0.6 if chain else 0.4):
        # UNTIL at one of the series' own dates (inclusive bound), or between two.
        full = with_budget(RANDOM_BUDGET_SECONDS, expected_for, body, zone_name, due, wanted)
        if "series" not in full or len(full["series"]) < 2:
            return None
        pick = at(rng.choice(full["series"][1:]))
        if rng.random() < 0.5:
            pick -= timedelta(seconds=rng.choice([1, 60, 3600]))
        body = with_part(body, f"UNTIL={pick.strftime('%Y%m%dT%H%M%SZ')}")
    expected = with_budget(RANDOM_BUDGET_SECONDS, expected_for, body, zone_name, due, wanted)
    if "series" in expected:
        last = at(expected["series"][-1])
        if last >= TABLE_END and zone_name not in FIXED_ZONES:
            return None
        if last - due > timedelta(days=365.25 * MOST_YEARS_AHEAD):
            return None
    if "series" in expected and expected["span_periods"] is None:
        return None  # only exhausting the rule told the series apart; too slow for a case
    return "random", note, body, zone_name, due, k, chain, expected


def cases(seed, total, chains):
    rng = random.Random(seed)
    out = [regression_case(entry) for entry in REGRESSIONS]
    refusals = max(len(REFUSALS), total // 10)
    out += [refusal_case(rng, REFUSALS[i % len(REFUSALS)]) for i in range(refusals)]
    randoms = max(0, total - len(out))
    walked = sum(1 for case in out if case[6])  # the regressions' chains
    chained = set(rng.sample(range(randoms), min(randoms, max(0, chains - walked))))
    redrawn = 0
    for i in range(randoms):
        while True:
            try:
                case = random_case(rng, 5 if i in chained else 0)
            except TooSlow:
                case = None
            if case is not None:
                break
            redrawn += 1
        out.append(case)
    print(f"rrule_oracle: seed {seed}: {len(out)} cases ({redrawn} redrawn)", file=sys.stderr)
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--cases", type=int, default=300, help="how many cases in all")
    parser.add_argument("--chains", type=int, default=40, help="how many of them walk a chain")
    args = parser.parse_args()
    for n, (family, note, body, zone_name, due, k, chain, expected) in enumerate(
        cases(args.seed, args.cases, args.chains)
    ):
        print(
            json.dumps(
                {
                    "id": n,
                    "family": family,
                    "note": note,
                    "rule": body,
                    "zone": zone_name,
                    "dueAt": utc_text(due),
                    "local": local_text(due, zone_name),
                    "count": k,
                    "chain": chain,
                    "expected": expected,
                }
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
