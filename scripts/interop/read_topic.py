#!/usr/bin/env python3
"""Reads a Taskstream topic with kafka-python, an independent Kafka client, and prints one JSON
object per record: partition, offset, key, headers, the decoded CloudEvent (or null for a
tombstone), and the partition kafka-python's own murmur2 partitioner would choose for the key.

Used by the interoperability test (graphql/tests/relay.rs); also handy by hand:
    python3 scripts/interop/read_topic.py --brokers 127.0.0.1:9092 --topic task-events --count 10
"""

import argparse
import json
import sys
import time

from kafka import KafkaConsumer, TopicPartition
from kafka.partitioner.default import murmur2


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--brokers", required=True, help="host:port[,host:port]")
    parser.add_argument("--topic", required=True)
    parser.add_argument("--count", type=int, required=True, help="records to read before exiting")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds before giving up")
    args = parser.parse_args()

    consumer = KafkaConsumer(
        bootstrap_servers=args.brokers.split(","),
        enable_auto_commit=False,
        group_id=None,
        consumer_timeout_ms=1000,
        api_version_auto_timeout_ms=10000,
    )
    partitions = sorted(consumer.partitions_for_topic(args.topic) or [])
    if not partitions:
        print(f"topic {args.topic} not found", file=sys.stderr)
        return 2
    assigned = [TopicPartition(args.topic, p) for p in partitions]
    consumer.assign(assigned)
    consumer.seek_to_beginning(*assigned)

    seen = 0
    deadline = time.monotonic() + args.timeout
    while seen < args.count and time.monotonic() < deadline:
        batches = consumer.poll(timeout_ms=500)
        for tp, records in batches.items():
            for r in records:
                key = r.key.decode() if r.key is not None else None
                expected = (murmur2(r.key) & 0x7FFFFFFF) % len(partitions) if r.key is not None else None
                print(json.dumps({
                    "partition": tp.partition,
                    "offset": r.offset,
                    "key": key,
                    "headers": {k: v.decode() for k, v in (r.headers or [])},
                    "event": json.loads(r.value) if r.value is not None else None,
                    "expected_partition": expected,
                }), flush=True)
                seen += 1
    consumer.close()
    if seen < args.count:
        print(f"read {seen} of {args.count} records before the timeout", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
