#!/usr/bin/env python3
"""Reads a Taskstream topic from NATS JetStream with nats-py, an independent NATS client, and
prints one JSON object per record: partition, offset, key, headers, the decoded CloudEvent (or
null for a tombstone), and the partition Kafka's murmur2 partitioner (kafka-python's own
implementation) would choose for the key.

A topic's partition p is the stream <prefix>-<topic>-<p> (dots of the topic as underscores) on
subject <prefix>.<topic>.<p>; a record's offset is its stream sequence - 1. It reads each stream
with a pull consumer of its own, as any JetStream application would.

Used by the interoperability test (graphql/tests/relay.rs); also handy by hand:
    python3 scripts/interop/read_stream.py --url nats://127.0.0.1:4222 --topic task-events --count 10
"""

import argparse
import asyncio
import json
import re
import sys

import nats
from kafka.partitioner.default import murmur2

KEY = "Taskstream-Key"
TOMBSTONE = "Taskstream-Tombstone"


async def read(args) -> int:
    nc = await nats.connect(args.url, connect_timeout=5)
    js = nc.jetstream()
    stem = f"{args.prefix}-{args.topic.replace('.', '_')}-"
    partitions = sorted(
        int(info.config.name[len(stem):])
        for info in await js.streams_info()
        if re.fullmatch(re.escape(stem) + r"(0|[1-9][0-9]*)", info.config.name)
    )
    if partitions != list(range(len(partitions))) or not partitions:
        print(f"topic {args.topic}: partitions {partitions}", file=sys.stderr)
        return 2
    seen = 0
    for p in partitions:
        stream = f"{stem}{p}"
        info = await js.stream_info(stream)
        if info.state.messages == 0:
            continue
        sub = await js.pull_subscribe(f"{args.prefix}.{args.topic}.{p}", stream=stream)
        remaining = info.state.messages
        while remaining > 0:
            for msg in await sub.fetch(min(remaining, 100), timeout=args.timeout):
                headers = dict(msg.headers or {})
                key = headers.pop(KEY, None)
                tombstone = headers.pop(TOMBSTONE, None) == "1"
                headers = {k: v for k, v in headers.items() if not k.startswith("Nats-")}
                expected = None
                if key is not None:
                    expected = (murmur2(key.encode()) & 0x7FFFFFFF) % len(partitions)
                print(json.dumps({
                    "partition": p,
                    "offset": msg.metadata.sequence.stream - 1,
                    "key": key,
                    "headers": {k: v for k, v in headers.items() if k != "Taskstream-Timestamp"},
                    "event": None if tombstone else json.loads(msg.data),
                    "expected_partition": expected,
                }), flush=True)
                await msg.ack()
                remaining -= 1
                seen += 1
        await sub.unsubscribe()
    await nc.close()
    if seen < args.count:
        print(f"read {seen} of {args.count} records", file=sys.stderr)
        return 1
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True, help="nats://host:port")
    parser.add_argument("--topic", required=True)
    parser.add_argument("--prefix", default="taskstream", help="NATS_STREAM_PREFIX")
    parser.add_argument("--count", type=int, required=True, help="records expected at least")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds per fetch")
    args = parser.parse_args()
    return asyncio.run(read(args))


if __name__ == "__main__":
    sys.exit(main())
