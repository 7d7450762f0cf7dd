//! Input splits: node `i` of `K` reads slice `i`, and the K slices partition the input
//! (every page lands in exactly one slice). How a slice maps to bytes depends on the
//! format and lives in `reader`; this module holds the value type and the byte-range
//! arithmetic shared by every splittable format.

use crate::error::{Error, Result};

/// Which slice of the input this node reads: `node` in `0..nodes`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Split {
    pub node: u32,
    pub nodes: u32,
}

impl Split {
    /// The whole input (node 0 of 1).
    pub fn whole() -> Split {
        Split { node: 0, nodes: 1 }
    }

    /// Node `node` of `nodes`; errors unless `node < nodes`.
    pub fn new(node: u32, nodes: u32) -> Result<Split> {
        if nodes == 0 || node >= nodes {
            return Err(Error::Split(format!(
                "node {node} of {nodes}: need nodes >= 1 and node < nodes"
            )));
        }
        Ok(Split { node, nodes })
    }

    /// True when this is the whole input.
    pub fn is_whole(&self) -> bool {
        self.nodes <= 1
    }

    /// True when this is the last slice (the one that holds the end of the input).
    pub fn is_last(&self) -> bool {
        self.node + 1 >= self.nodes
    }

    /// The nominal byte range `[lo, hi)` of this slice in an input of `len` bytes, before
    /// it is aligned to record boundaries. Consecutive slices share their boundary, so
    /// aligning both ends with the same function partitions the records.
    pub fn nominal_range(&self, len: u64) -> (u64, u64) {
        let at = |i: u32| ((len as u128 * i as u128) / self.nodes.max(1) as u128) as u64;
        (at(self.node), at(self.node + 1))
    }

    /// Whether the record with this ordinal (0-based) belongs to this slice, for inputs
    /// that can only be partitioned by counting records (single-stream compressed input).
    pub fn owns_ordinal(&self, ordinal: u64) -> bool {
        self.is_whole() || ordinal % self.nodes as u64 == self.node as u64
    }
}

impl Default for Split {
    fn default() -> Self {
        Split::whole()
    }
}
