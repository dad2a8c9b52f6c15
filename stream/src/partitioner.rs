//! Key partitioning identical to Kafka's Java client, so that every tool reading the topics (the
//! Java console consumer, Kafka Connect, a Dapr `pubsub.kafka` component) agrees on which
//! partition holds a given task's events.
//!
//! The Java client's default partitioner hashes the serialised key with `Utils.murmur2` and takes
//! `Utils.toPositive(hash) % numPartitions` (`BuiltInPartitioner.partitionForKey`). Both are
//! reproduced here bit for bit, with wrapping 32-bit arithmetic and Java's unsigned shift `>>>`.

/// Kafka's `Utils.murmur2`: 32-bit MurmurHash2 with seed `0x9747b28c`, returned as Java's signed
/// `int`.
pub fn murmur2(data: &[u8]) -> i32 {
    const SEED: u32 = 0x9747_b28c;
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;

    // Java computes with `int`; the length is an `int` too, so truncating is what Java does.
    let length = data.len();
    let mut h: u32 = SEED ^ (length as u32);

    let mut chunks = data.chunks_exact(4);
    for chunk in &mut chunks {
        let mut k = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }

    // The Java `switch` falls through from case 3 to case 1.
    let tail = chunks.remainder();
    if tail.len() >= 3 {
        h ^= u32::from(tail[2]) << 16;
    }
    if tail.len() >= 2 {
        h ^= u32::from(tail[1]) << 8;
    }
    if !tail.is_empty() {
        h ^= u32::from(tail[0]);
        h = h.wrapping_mul(M);
    }

    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h as i32
}

/// The partition Kafka's Java client picks for `key` among `partitions`:
/// `(murmur2(key) & 0x7fffffff) % partitions` (`Utils.toPositive`, not `abs`).
///
/// A topic always has at least one partition, so `partitions <= 0` is a programming error (a
/// partition count that was never loaded): it panics with a `BUG:` message rather than quietly
/// routing every key to partition 0.
pub fn partition_for_key(key: &[u8], partitions: i32) -> i32 {
    assert!(
        partitions > 0,
        "BUG: partition_for_key called with {partitions} partitions"
    );
    (murmur2(key) & 0x7fff_ffff) % partitions
}

#[cfg(test)]
mod tests {
    use super::{murmur2, partition_for_key};

    /// The vectors of Kafka's own `UtilsTest.testMurmur2`
    /// (apache/kafka `clients/src/test/java/org/apache/kafka/common/utils/UtilsTest.java`).
    const KAFKA_VECTORS: [(&str, i32); 6] = [
        ("21", -973_932_308),
        ("foobar", -790_332_482),
        ("a-little-bit-long-string", -985_981_536),
        ("a-little-bit-longer-string", -1_486_304_829),
        (
            "lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8",
            -58_897_971,
        ),
        ("abc", 479_470_107),
    ];

    #[test]
    fn murmur2_matches_kafkas_golden_vectors() {
        for (input, expected) in KAFKA_VECTORS {
            assert_eq!(murmur2(input.as_bytes()), expected, "murmur2({input:?})");
        }
    }

    #[test]
    fn partition_uses_to_positive_not_abs() {
        // toPositive(-790332482) = -790332482 & 0x7fffffff = 1357151166.
        assert_eq!(partition_for_key(b"foobar", 10), 1_357_151_166 % 10);
        assert_eq!(partition_for_key(b"foobar", 50), 16);
    }

    #[test]
    fn partition_is_stable_and_in_range() {
        for partitions in 1..=12 {
            for key in ["", "a", "task-1", "0190f5c2-1111-7000-8000-000000000000"] {
                let partition = partition_for_key(key.as_bytes(), partitions);
                assert!((0..partitions).contains(&partition));
                assert_eq!(partition, partition_for_key(key.as_bytes(), partitions));
            }
        }
    }

    #[test]
    #[should_panic(expected = "BUG:")]
    fn zero_partitions_is_a_bug() {
        partition_for_key(b"key", 0);
    }
}
