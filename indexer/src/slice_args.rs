//! The flags every command that reads one slice of a dump shares (`build`, `links`,
//! `scan`): which slice of how many, and the multistream index that lets a slice start
//! in the middle of a `.bz2` dump. One definition, flattened into each command, so the
//! three cannot drift apart in names, defaults or help.

use std::path::PathBuf;

use corpus::{OpenOptions, Split};

use crate::error::Result;

/// `--node I --nodes K [--index FILE]`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct SliceArgs {
    /// This node's slice, 0..nodes.
    #[arg(long, default_value_t = 0)]
    pub node: u32,
    /// How many slices (indexer nodes) the input is cut into.
    #[arg(long, default_value_t = 1)]
    pub nodes: u32,
    /// Multistream index file (`offset:pageid:title` lines, plain or .bz2).
    #[arg(long)]
    pub index: Option<PathBuf>,
}

impl SliceArgs {
    /// The slice these flags name (an error for `--node` outside `0..nodes`).
    pub fn split(&self) -> Result<Split> {
        Ok(Split::new(self.node, self.nodes)?)
    }

    /// How to open the input on this slice with `threads` decompression threads.
    pub fn open_options(&self, threads: usize) -> Result<OpenOptions> {
        Ok(OpenOptions {
            split: self.split()?,
            index: self.index.clone(),
            threads,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_is_the_whole_input() {
        let args = SliceArgs {
            nodes: 1,
            ..SliceArgs::default()
        };
        assert!(args.split().expect("a valid slice").is_whole());
    }

    #[test]
    fn a_node_outside_the_slices_is_refused() {
        let args = SliceArgs {
            node: 3,
            nodes: 3,
            index: None,
        };
        assert!(args.split().is_err());
    }
}
