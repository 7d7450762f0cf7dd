//! Shard names that stay unique across indexer nodes without any coordination.
//!
//! A shard is named after the slice it came from and its number within that slice:
//! `n<node>of<nodes>-s<shard>of<shards>` (for example `n1of2-s0of3`). Each indexer node
//! only ever creates names with its own `node`, so K nodes building at once never clash,
//! and the name alone says which part of the input a shard covers.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Identity of one shard of one build.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ShardId {
    /// The indexer node (input slice) that built it, `0..nodes`.
    pub node: u32,
    /// How many slices the input was cut into.
    pub nodes: u32,
    /// This shard's number within its node, `0..shards`.
    pub shard: u32,
    /// How many shards each node built.
    pub shards: u32,
}

impl ShardId {
    /// Validates the ranges (`node < nodes`, `shard < shards`).
    pub fn new(node: u32, nodes: u32, shard: u32, shards: u32) -> Result<Self> {
        let id = ShardId {
            node,
            nodes,
            shard,
            shards,
        };
        if nodes == 0 || shards == 0 || node >= nodes || shard >= shards {
            return Err(Error::InvalidShardId(id.to_string()));
        }
        Ok(id)
    }

    /// Which of a node's `shards` shards an article goes to. A stable hash of the page id
    /// (not `id % shards`), so that ids allocated in runs still spread evenly.
    pub fn route(page_id: u64, shards: u32) -> u32 {
        let mixed = splitmix64(page_id);
        ((mixed as u128 * shards as u128) >> 64) as u32
    }
}

/// SplitMix64's finalizer: a fixed, well-mixed 64-bit permutation that never changes
/// between Rust versions (unlike `DefaultHasher`).
pub fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

impl fmt::Display for ShardId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "n{}of{}-s{}of{}",
            self.node, self.nodes, self.shard, self.shards
        )
    }
}

impl FromStr for ShardId {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let bad = || Error::InvalidShardId(s.to_string());
        let (node_part, shard_part) = s.split_once('-').ok_or_else(bad)?;
        let parse_pair = |part: &str, prefix: char| -> Option<(u32, u32)> {
            let (a, b) = part.strip_prefix(prefix)?.split_once("of")?;
            Some((a.parse().ok()?, b.parse().ok()?))
        };
        let (node, nodes) = parse_pair(node_part, 'n').ok_or_else(bad)?;
        let (shard, shards) = parse_pair(shard_part, 's').ok_or_else(bad)?;
        ShardId::new(node, nodes, shard, shards).map_err(|_| bad())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_and_parse_round_trip() {
        let id = ShardId::new(1, 2, 0, 3).unwrap();
        assert_eq!(id.to_string(), "n1of2-s0of3");
        assert_eq!("n1of2-s0of3".parse::<ShardId>().unwrap(), id);
    }

    #[test]
    fn rejects_malformed_and_out_of_range() {
        for bad in [
            "",
            "n1of2",
            "n2of2-s0of3",
            "n0of2-s3of3",
            "x0of2-s0of3",
            "n0of0-s0of1",
        ] {
            assert!(bad.parse::<ShardId>().is_err(), "{bad}");
        }
    }

    #[test]
    fn routing_spreads_sequential_ids() {
        let mut counts = [0u32; 4];
        for id in 0..40_000u64 {
            counts[ShardId::route(id, 4) as usize] += 1;
        }
        for c in counts {
            assert!((9_000..11_000).contains(&c), "{counts:?}");
        }
    }
}
