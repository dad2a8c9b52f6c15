# shellcheck shell=bash
#
# The pinned Python packages of the interoperability tests, installed with pip (from PyPI) into
# the python3 on PATH. Sourced by scripts/test and scripts/lib/kafka.sh; it can also be sourced
# on its own:
#
#   source scripts/lib/python.sh
#   ts_python_oracle_provision   # python-dateutil and tzdata for the recurrence oracle
#   ts_ical_python_provision     # icalendar for the calendar feed check
#
# The recurrence differential test (graphql/tests/recurrence_differential.rs) runs
# scripts/interop/rrule_oracle.py, which expands rules with python-dateutil's rrule and maps
# wall-clock times to instants with zoneinfo. It runs python with PYTHONTZPATH empty, so that
# zoneinfo reads the tzdata package rather than the machine's /usr/share/zoneinfo: tzdata 2025.2
# is IANA 2025b, the release chrono-tz 0.10.4 (the Rust side) embeds. The oracle checks both
# versions and refuses to run with others.

TS_PYTHON_DATEUTIL_VERSION=2.9.0.post0
# icalendar 7 requires tzdata >= 2025.3, which would replace the 2025.2 pinned here (chrono-tz's
# IANA 2025b); 6.3.2 is the last release that takes any tzdata.
TS_PYTHON_ICALENDAR_VERSION=6.3.2
TS_PYTHON_NATS_VERSION=2.16.0
TS_PYTHON_TZDATA_VERSION=2025.2

# ts_pip_pinned DIST VERSION WHY: makes `importlib.metadata.version(DIST)` say VERSION, installing
# DIST==VERSION with pip when it does not. WHY says what it is for.
ts_pip_pinned() {
    local dist="$1" version="$2" why="$3"
    local check="import importlib.metadata as m, sys; sys.exit(m.version('$dist') != '$version')"
    if python3 -c "$check" 2>/dev/null; then
        return 0
    fi
    printf '==> installing %s %s (pip) %s\n' "$dist" "$version" "$why"
    python3 -m pip install --quiet --disable-pip-version-check "$dist==$version"
}

# ts_nats_python_provision: nats-py, an independent NATS client that reads the JetStream streams
# in the interoperability test (scripts/interop/read_stream.py).
ts_nats_python_provision() {
    ts_pip_pinned nats-py "$TS_PYTHON_NATS_VERSION" "for the NATS interoperability test"
}

# ts_python_oracle_provision: python-dateutil and tzdata at the pinned versions.
ts_python_oracle_provision() {
    local why="for the recurrence differential test"
    ts_pip_pinned python-dateutil "$TS_PYTHON_DATEUTIL_VERSION" "$why" &&
        ts_pip_pinned tzdata "$TS_PYTHON_TZDATA_VERSION" "$why (IANA 2025b, as chrono-tz)"
}

# ts_ical_python_provision: icalendar, an independent RFC 5545 parser, for the calendar feed
# test (graphql/tests/calendar_feed/, which runs scripts/interop/ical_check.py). It needs the
# oracle's packages too (the check expands RRULEs with python-dateutil and compares offsets with
# tzdata), installed first so that icalendar's requirements are already met by the pinned ones.
ts_ical_python_provision() {
    ts_python_oracle_provision &&
        ts_pip_pinned icalendar "$TS_PYTHON_ICALENDAR_VERSION" "for the calendar feed test"
}
