//! Fuzzes the wikitext cleaner on any UTF-8 text: it must never panic, and its
//! documented promise (the body is never longer than the input) must hold.
#![no_main]

use corpus::wikitext::{clean, CleanOptions};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    let cleaned = clean(text, &CleanOptions::default());
    assert!(cleaned.body.len() <= text.len(), "the body grew");
});
