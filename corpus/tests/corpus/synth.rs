//! The synthetic dump generator writes a valid, deterministic multistream dump + index.

use std::io::Read;

use std::path::Path;

use corpus::{
    classify, open, to_document, write_synthetic_dump, InputFormat, Markup, OpenOptions, PageEvent,
    PageKind, SynthOptions,
};

use crate::common::{sample, scan, temp_dir};

#[test]
fn generated_dump_reads_back_with_its_counts() {
    let dir = temp_dir();
    let out = dir.path().join("synth.xml.bz2");
    let opts = SynthOptions {
        pages: 2_000,
        seed: 3,
        ..SynthOptions::default()
    };
    let summary = write_synthetic_dump(&out, &opts).unwrap();
    assert_eq!(summary.index, dir.path().join("synth-index.txt.bz2"));
    assert_eq!(summary.pages, 2_000);
    assert_eq!(summary.streams, 22, "header + 20 page streams + footer");
    let redirect_share = summary.redirects as f64 / summary.pages as f64;
    assert!((0.06..0.10).contains(&redirect_share), "{redirect_share}");
    assert!(summary.other_namespaces > 10);

    for index in [None, Some(summary.index.clone())] {
        let stats = scan(
            &out,
            &OpenOptions {
                index,
                ..OpenOptions::default()
            },
        );
        assert_eq!(
            (
                stats.pages,
                stats.articles,
                stats.redirects,
                stats.other_namespaces
            ),
            (
                summary.pages,
                summary.articles,
                summary.redirects,
                summary.other_namespaces
            )
        );
        assert_eq!(stats.skipped_total(), 0);
    }

    let mut index_text = String::new();
    bzip2::read::BzDecoder::new(std::fs::File::open(&summary.index).unwrap())
        .read_to_string(&mut index_text)
        .unwrap();
    assert_eq!(index_text.lines().count(), 2_000);

    let reader = open(&out, &OpenOptions::default()).unwrap();
    assert_eq!(reader.format(), InputFormat::Bzip2Multistream);
    let site = reader.siteinfo().clone();
    assert_eq!(
        site.namespaces.get(&14).map(String::as_str),
        Some("Category")
    );
    let article = reader
        .filter_map(|e| match e.unwrap() {
            PageEvent::Page(p) if p.ns == 0 && p.redirect_target.is_none() => Some(p),
            _ => None,
        })
        .next()
        .unwrap();
    assert!(article.wikitext.contains("[[") && article.wikitext.contains("<ref"));
    let doc = to_document(&article, &site);
    assert!(
        doc.url.starts_with("https://en.synthpedia.org/wiki/"),
        "{}",
        doc.url
    );
}

#[test]
fn generation_is_deterministic() {
    let dir = temp_dir();
    let (a, b) = (dir.path().join("a.xml.bz2"), dir.path().join("b.xml.bz2"));
    let opts = SynthOptions {
        pages: 300,
        seed: 11,
        ..SynthOptions::default()
    };
    write_synthetic_dump(&a, &opts).unwrap();
    write_synthetic_dump(&b, &opts).unwrap();
    assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
    let other = dir.path().join("c.xml.bz2");
    write_synthetic_dump(&other, &SynthOptions { seed: 12, ..opts }).unwrap();
    assert_ne!(std::fs::read(&a).unwrap(), std::fs::read(&other).unwrap());
}

/// Share of the articles' wikitext bytes that cleaning removes (markup, not text).
fn markup_share(dump: &Path) -> f64 {
    let reader = open(dump, &OpenOptions::default()).unwrap();
    let site = reader.siteinfo().clone();
    let (mut wikitext, mut text) = (0usize, 0usize);
    for event in reader {
        if let PageEvent::Page(page) = event.unwrap() {
            if classify(&page) == PageKind::Article {
                wikitext += page.wikitext.len();
                text += to_document(&page, &site).body.len();
            }
        }
    }
    1.0 - text as f64 / wikitext as f64
}

#[test]
fn dense_markup_is_heavier_than_real_enwiki() {
    let dir = temp_dir();
    let share = |markup| {
        let out = dir.path().join(format!("{markup:?}.xml.bz2"));
        let opts = SynthOptions {
            pages: 400,
            markup,
            ..SynthOptions::default()
        };
        write_synthetic_dump(&out, &opts).unwrap();
        markup_share(&out)
    };
    let (normal, dense) = (share(Markup::Normal), share(Markup::Dense));
    let real = markup_share(&sample("enwiki-sample.xml.bz2"));
    println!("markup share: normal {normal:.3}, dense {dense:.3}, real enwiki sample {real:.3}");
    // Normal mode is lighter than real articles; dense mode at least as heavy.
    assert!(normal < real, "normal {normal:.3} vs real {real:.3}");
    assert!(dense >= real, "dense {dense:.3} vs real {real:.3}");
    assert_eq!("dense".parse::<Markup>().unwrap(), Markup::Dense);
    assert!("heavy".parse::<Markup>().is_err());
}
