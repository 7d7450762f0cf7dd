//! Throughput of `corpus::wikitext::clean` in MB/s of wikitext: every page of the real
//! English Wikipedia sample dump, next to a plain copy of the same bytes as a baseline
//! (the ratio is what to watch on a noisy machine), plus 1 MB adversarial inputs that
//! would go quadratic in a naive cleaner. Run: `cargo bench -p corpus --bench clean`.

use std::fs::File;
use std::hint::black_box;
use std::io::BufReader;

use bzip2::read::MultiBzDecoder;
use corpus::wikitext::{clean, CleanOptions};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use quick_xml::events::Event;

const SAMPLE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../shared/corpus/enwiki-sample.xml.bz2"
);

/// The wikitext of every `<text>` in the dump (XML entities decoded).
fn load_wikitexts(path: &str) -> Vec<String> {
    let file = File::open(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let mut reader = quick_xml::Reader::from_reader(BufReader::new(MultiBzDecoder::new(file)));
    let (mut buf, mut texts, mut current) = (Vec::new(), Vec::new(), None::<String>);
    loop {
        match reader
            .read_event_into(&mut buf)
            .expect("sample dump is valid XML")
        {
            Event::Start(e) if e.local_name().as_ref() == "text" => current = Some(String::new()),
            Event::End(e) if e.local_name().as_ref() == "text" => texts.extend(current.take()),
            Event::Text(t) => {
                if let Some(s) = current.as_mut() {
                    s.push_str(&t.xml10_content());
                }
            }
            Event::GeneralRef(r) => {
                if let Some(s) = current.as_mut() {
                    match r.resolve_char_ref().ok().flatten() {
                        Some(c) => s.push(c),
                        None => s.push_str(match &*r {
                            "amp" => "&",
                            "lt" => "<",
                            "gt" => ">",
                            "quot" => "\"",
                            _ => "'",
                        }),
                    }
                }
            }
            Event::Eof => break,
            _ => {}
        }
        buf.clear();
    }
    texts
}

fn bench_sample(c: &mut Criterion) {
    let pages = load_wikitexts(SAMPLE);
    let bytes: usize = pages.iter().map(String::len).sum();
    let opts = CleanOptions::default();
    let mut group = c.benchmark_group("enwiki-sample");
    group.throughput(Throughput::Bytes(bytes as u64));
    group.bench_function("baseline-copy", |b| {
        b.iter(|| {
            pages
                .iter()
                .map(|p| black_box(p.clone()).len())
                .sum::<usize>()
        })
    });
    group.bench_function("clean", |b| {
        b.iter(|| {
            pages
                .iter()
                .map(|p| clean(black_box(p), &opts).body.len())
                .sum::<usize>()
        })
    });
    group.finish();
}

fn bench_adversarial(c: &mut Criterion) {
    let opts = CleanOptions::default();
    let mut group = c.benchmark_group("adversarial-1MB");
    group.throughput(Throughput::Bytes(1 << 20));
    for (name, unit) in [
        ("open-braces", "{{"),
        ("open-links", "[[a|"),
        ("tables", "{|\n"),
    ] {
        let input = unit.repeat((1 << 20) / unit.len());
        group.bench_function(name, |b| {
            b.iter(|| clean(black_box(&input), &opts).body.len())
        });
    }
    group.finish();
}

criterion_group!(benches, bench_sample, bench_adversarial);
criterion_main!(benches);
