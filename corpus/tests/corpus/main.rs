//! Integration tests of the corpus crate, one binary with grouped modules: real sample
//! dumps (counts, encodings), input splits (exact partitions), bad input (each case), and
//! the synthetic generator. Real dumps are read in place from `../shared/corpus`.

mod bad_input;
mod common;
mod samples;
mod splits;
mod synth;
