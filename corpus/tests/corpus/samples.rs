//! Counts and contents of the real sample dumps (figures verified in the corpus README).

use corpus::{open, to_document, InputFormat, OpenOptions, PageEvent};

use crate::common::{sample, scan};

#[test]
fn enwiki_sample_counts() {
    let stats = scan(&sample("enwiki-sample.xml.bz2"), &OpenOptions::default());
    assert_eq!(
        (stats.pages, stats.articles, stats.redirects),
        (206, 106, 100)
    );
    assert_eq!(stats.other_namespaces, 0, "the ns 4 page is a redirect");
    assert_eq!(stats.skipped_total(), 0);
}

#[test]
fn elwikivoyage_sample_counts() {
    let stats = scan(
        &sample("elwikivoyage-sample.xml.bz2"),
        &OpenOptions::default(),
    );
    assert_eq!(
        (stats.pages, stats.articles, stats.redirects),
        (2040, 1310, 240)
    );
    assert_eq!(stats.skipped_total(), 0);
}

#[test]
fn multistream_counts_with_and_without_index() {
    let path = sample("elwikivoyage-multistream.xml.bz2");
    let without = scan(&path, &OpenOptions::default());
    let with_index = OpenOptions {
        index: Some(sample("elwikivoyage-multistream-index.txt.bz2")),
        ..OpenOptions::default()
    };
    let with = scan(&path, &with_index);
    for stats in [&without, &with] {
        assert_eq!((stats.pages, stats.articles, stats.redirects), (17, 16, 0));
        assert_eq!(stats.other_namespaces, 1);
    }
    let reader = open(&path, &OpenOptions::default()).unwrap();
    assert_eq!(reader.format(), InputFormat::Bzip2Multistream);
}

#[test]
fn localized_namespaces_come_from_siteinfo() {
    let reader = open(
        &sample("elwikivoyage-sample.xml.bz2"),
        &OpenOptions::default(),
    )
    .unwrap();
    let site = reader.siteinfo();
    assert_eq!(site.lang.as_deref(), Some("el"));
    assert_eq!(
        site.namespaces.get(&14).map(String::as_str),
        Some("Κατηγορία")
    );
    assert_eq!(site.namespaces.get(&0).map(String::as_str), Some(""));
}

#[test]
fn bgwiki_utf16_yields_cyrillic() {
    let reader = open(&sample("bgwiki-sample.xml.bz2"), &OpenOptions::default()).unwrap();
    let site = reader.siteinfo().clone();
    let pages: Vec<_> = reader
        .map(|ev| match ev.unwrap() {
            PageEvent::Page(page) => page,
            PageEvent::Skipped(skip) => panic!("skipped {skip:?}"),
        })
        .collect();
    assert_eq!(pages.len(), 3);
    assert_eq!(pages.iter().filter(|p| p.ns == 0).count(), 1);
    let article = pages.iter().find(|p| p.ns == 0).unwrap();
    let cyrillic = |s: &str| {
        s.chars()
            .filter(|c| ('\u{400}'..='\u{4FF}').contains(c))
            .count()
    };
    assert!(cyrillic(&article.title) > 0, "title {:?}", article.title);
    let doc = to_document(article, &site);
    assert!(
        cyrillic(&doc.body) > 100,
        "body is not Cyrillic: {:?}",
        &doc.body[..200.min(doc.body.len())]
    );
    assert!(
        doc.url.starts_with("https://bg.wikipedia.org/wiki/%D0"),
        "{}",
        doc.url
    );
}

#[test]
fn enwiki_pages_have_fields_and_text() {
    let reader = open(&sample("enwiki-sample.xml.bz2"), &OpenOptions::default()).unwrap();
    let site = reader.siteinfo().clone();
    assert_eq!(
        site.base_url.as_deref(),
        Some("https://en.wikipedia.org/wiki/Main_Page")
    );
    let pages: Vec<_> = reader
        .map(|e| match e.unwrap() {
            PageEvent::Page(page) => page,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        (pages[0].id, pages[0].title.as_str()),
        (10, "AccessibleComputing")
    );
    assert_eq!(
        pages[0].redirect_target.as_deref(),
        Some("Computer accessibility")
    );
    let first = pages.into_iter().find(|p| p.title == "Anarchism").unwrap();
    assert_eq!(
        (first.id, first.ns, first.title.as_str()),
        (12, 0, "Anarchism")
    );
    assert!(first.revision_id.is_some() && first.timestamp.is_some());
    assert!(
        first.wikitext.len() > 10_000 && first.wikitext.contains("<ref"),
        "entities decoded"
    );
    assert_eq!(
        to_document(&first, &site).url,
        "https://en.wikipedia.org/wiki/Anarchism"
    );
}

#[test]
fn table_markup_sample_reads() {
    let stats = scan(
        &sample("enwiki-table-markup.xml.bz2"),
        &OpenOptions::default(),
    );
    assert_eq!((stats.pages, stats.articles), (5, 5));
}
