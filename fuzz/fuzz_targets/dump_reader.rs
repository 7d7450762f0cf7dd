//! Fuzzes the dump readers: the first byte picks the container (plain XML, JSON lines,
//! bzip2, gzip), the rest is the file. Reading must end (every page or a clean error),
//! never panic or hang.
#![no_main]

use std::io::Write;

use corpus::OpenOptions;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&kind, body)) = data.split_first() else {
        return;
    };
    let suffix = [".xml", ".jsonl", ".xml.bz2", ".xml.gz"][kind as usize % 4];
    let Ok(mut file) = tempfile::Builder::new().suffix(suffix).tempfile() else {
        return;
    };
    if file.write_all(body).is_err() {
        return;
    }
    let opts = OpenOptions {
        threads: 1,
        ..OpenOptions::default()
    };
    let Ok(reader) = corpus::open(file.path(), &opts) else {
        return;
    };
    for event in reader {
        if event.is_err() {
            break;
        }
    }
});
