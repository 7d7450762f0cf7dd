//! For K in 1..=5 the K slices of every input partition it exactly.

use corpus::{write_synthetic_dump, SynthOptions};

use crate::common::{assert_partitions, sample, temp_dir};

#[test]
fn enwiki_single_stream_partitions() {
    assert_partitions(&sample("enwiki-sample.xml.bz2"), None);
}

#[test]
fn elwikivoyage_single_stream_partitions() {
    assert_partitions(&sample("elwikivoyage-sample.xml.bz2"), None);
}

#[test]
fn multistream_partitions_without_index() {
    assert_partitions(&sample("elwikivoyage-multistream.xml.bz2"), None);
}

#[test]
fn multistream_partitions_with_index() {
    let index = sample("elwikivoyage-multistream-index.txt.bz2");
    assert_partitions(&sample("elwikivoyage-multistream.xml.bz2"), Some(&index));
}

#[test]
fn plain_xml_partitions() {
    let dir = temp_dir();
    let xml = dir.path().join("el.xml");
    let mut decoded = Vec::new();
    std::io::Read::read_to_end(
        &mut bzip2::read::MultiBzDecoder::new(
            std::fs::File::open(sample("elwikivoyage-sample.xml.bz2")).unwrap(),
        ),
        &mut decoded,
    )
    .unwrap();
    std::fs::write(&xml, decoded).unwrap();
    assert_partitions(&xml, None);
}

#[test]
fn json_lines_partition() {
    let dir = temp_dir();
    let path = dir.path().join("docs.jsonl");
    let mut text = String::new();
    for i in 0..300 {
        text.push_str(&format!(
            "{{\"url\":\"https://en.wikipedia.org/wiki?curid={i}\",\"title\":\"T{i}\",\"body\":\"body {i} {}\"}}\n",
            "x".repeat(i % 37)
        ));
    }
    std::fs::write(&path, text).unwrap();
    assert_partitions(&path, None);
}

#[test]
fn generated_multistream_partitions_with_and_without_index() {
    let dir = temp_dir();
    let out = dir.path().join("synth.xml.bz2");
    let summary = write_synthetic_dump(
        &out,
        &SynthOptions {
            pages: 1_050,
            seed: 7,
            ..SynthOptions::default()
        },
    )
    .unwrap();
    assert_partitions(&out, None);
    assert_partitions(&out, Some(&summary.index));
}
