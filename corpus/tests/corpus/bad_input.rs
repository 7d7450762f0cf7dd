//! Bad input, one test a case: a clear error naming the file and the byte offset or page
//! id; pages before the fault delivered; nothing panics. Policy: damage confined to one
//! page (no id, invalid UTF-8, too large, bad field) skips that page with its reason;
//! damage to the stream itself (truncated/corrupt compression, ill-formed XML) stops.

use std::path::Path;

use corpus::{open, Error, OpenOptions, PageEvent, ScanStats, SkipReason};

use crate::common::{sample, temp_dir};

/// Everything a reader yields: the events before the first error, and that error.
fn read_all(path: &Path, opts: &OpenOptions) -> (Vec<PageEvent>, Option<Error>) {
    let mut events = Vec::new();
    let reader = match open(path, opts) {
        Ok(reader) => reader,
        Err(err) => return (events, Some(err)),
    };
    let mut fault = None;
    for event in reader {
        match event {
            Ok(event) => events.push(event),
            Err(err) => {
                assert!(fault.is_none(), "a second error after {fault:?}: {err}");
                fault = Some(err);
            }
        }
    }
    (events, fault)
}

fn page_xml(id: Option<u64>, title: &str, text: &str) -> String {
    let id = id.map(|id| format!("<id>{id}</id>")).unwrap_or_default();
    format!("<page><title>{title}</title><ns>0</ns>{id}<revision><id>9</id><text>{text}</text></revision></page>\n")
}

fn dump(pages: &[String]) -> Vec<u8> {
    let mut xml = String::from("<mediawiki xmlns=\"http://www.mediawiki.org/xml/export-0.10/\"><siteinfo><sitename>T</sitename></siteinfo>\n");
    for page in pages {
        xml.push_str(page);
    }
    xml.push_str("</mediawiki>\n");
    xml.into_bytes()
}

fn ids(events: &[PageEvent]) -> Vec<u64> {
    events
        .iter()
        .filter_map(|e| match e {
            PageEvent::Page(page) => Some(page.id),
            PageEvent::Skipped(_) => None,
        })
        .collect()
}

fn skips(events: &[PageEvent]) -> Vec<&corpus::Skip> {
    events
        .iter()
        .filter_map(|e| match e {
            PageEvent::Skipped(skip) => Some(skip),
            PageEvent::Page(_) => None,
        })
        .collect()
}

#[test]
fn truncated_bzip2_delivers_pages_then_names_offset() {
    let dir = temp_dir();
    let path = dir.path().join("cut.xml.bz2");
    let bytes = std::fs::read(sample("enwiki-sample.xml.bz2")).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() * 6 / 10]).unwrap();
    let (events, fault) = read_all(&path, &OpenOptions::default());
    assert!(
        events.len() > 50,
        "pages before the cut are delivered: {}",
        events.len()
    );
    let err = fault.expect("truncation is reported");
    assert!(matches!(err, Error::Decompress { .. }), "{err}");
    let text = err.to_string();
    assert!(
        text.contains("cut.xml.bz2") && text.contains("byte offset"),
        "{text}"
    );
}

#[test]
fn truncated_multistream_delivers_earlier_streams() {
    let dir = temp_dir();
    let path = dir.path().join("cut-multi.xml.bz2");
    let bytes = std::fs::read(sample("elwikivoyage-multistream.xml.bz2")).unwrap();
    std::fs::write(&path, &bytes[..10_000]).unwrap(); // inside the third page stream
    let (events, fault) = read_all(&path, &OpenOptions::default());
    let err = fault.expect("truncation is reported");
    assert!(
        matches!(err, Error::Decompress { offset: 8475, .. }),
        "{err}"
    );
    assert!(
        !events.is_empty(),
        "pages of the first two page streams are delivered"
    );
}

#[test]
fn malformed_xml_stops_after_earlier_pages() {
    let dir = temp_dir();
    let path = dir.path().join("bad.xml");
    let broken = "<page><title>C</title><ns>0</ns><id>3</id><revision><text>x</revision></page>\n";
    let pages = [
        page_xml(Some(1), "A", "a"),
        page_xml(Some(2), "B", "b"),
        broken.to_string(),
        page_xml(Some(4), "D", "d"),
    ];
    std::fs::write(&path, dump(&pages)).unwrap();
    let (events, fault) = read_all(&path, &OpenOptions::default());
    assert_eq!(ids(&events), [1, 2]);
    let err = fault.expect("malformed XML is reported");
    let text = err.to_string();
    assert!(
        matches!(err, Error::Xml { .. }) && text.contains("bad.xml"),
        "{text}"
    );
    assert!(
        text.contains("byte offset") && text.contains("after page id 2"),
        "{text}"
    );
}

#[test]
fn invalid_utf8_page_is_skipped_with_its_id() {
    let dir = temp_dir();
    let path = dir.path().join("utf8.xml");
    let mut bytes = dump(&[
        page_xml(Some(1), "A", "a"),
        page_xml(Some(2), "B", "bad@here"),
        page_xml(Some(3), "C", "c"),
    ]);
    let at = bytes.windows(8).position(|w| w == b"bad@here").unwrap() + 3;
    bytes[at] = 0xFF;
    std::fs::write(&path, bytes).unwrap();
    let (events, fault) = read_all(&path, &OpenOptions::default());
    assert!(fault.is_none(), "{fault:?}");
    assert_eq!(ids(&events), [1, 3]);
    let skipped = skips(&events);
    assert_eq!(skipped.len(), 1);
    assert_eq!(
        (skipped[0].reason, skipped[0].page_id),
        (SkipReason::InvalidUtf8, Some(2))
    );
    let mut stats = ScanStats::default();
    events.iter().for_each(|e| stats.record(e));
    assert_eq!(
        (stats.pages, stats.skipped.get("invalid_utf8").copied()),
        (3, Some(1))
    );
}

#[test]
fn page_without_id_is_skipped_with_title_and_offset() {
    let dir = temp_dir();
    let path = dir.path().join("noid.xml");
    std::fs::write(
        &path,
        dump(&[
            page_xml(Some(1), "A", "a"),
            page_xml(None, "Nameless", "n"),
            page_xml(Some(3), "C", "c"),
        ]),
    )
    .unwrap();
    let (events, fault) = read_all(&path, &OpenOptions::default());
    assert!(fault.is_none(), "{fault:?}");
    assert_eq!(ids(&events), [1, 3]);
    let skip = skips(&events)[0].clone();
    assert_eq!(
        (skip.reason, skip.title.as_deref()),
        (SkipReason::MissingId, Some("Nameless"))
    );
    assert!(skip.offset > 0);
}

#[test]
fn fifty_megabyte_page_is_skipped_and_reading_goes_on() {
    let dir = temp_dir();
    let path = dir.path().join("huge.xml");
    let huge = "lorem ipsum &amp; dolor sit amet\n".repeat(50 * (1 << 20) / 33);
    std::fs::write(
        &path,
        dump(&[
            page_xml(Some(1), "A", "a"),
            page_xml(Some(2), "Huge", &huge),
            page_xml(Some(3), "C", "c"),
        ]),
    )
    .unwrap();
    let (events, fault) = read_all(&path, &OpenOptions::default());
    assert!(fault.is_none(), "{fault:?}");
    assert_eq!(ids(&events), [1, 3]);
    let skip = skips(&events)[0].clone();
    assert_eq!((skip.reason, skip.page_id), (SkipReason::TooLarge, Some(2)));
    assert!(skip.detail.contains("over the"), "{}", skip.detail);
}

#[test]
fn empty_file_is_an_error() {
    let dir = temp_dir();
    let path = dir.path().join("empty.xml.bz2");
    std::fs::write(&path, b"").unwrap();
    let err = open(&path, &OpenOptions::default()).err().expect("error");
    assert!(
        matches!(err, Error::Empty { .. }) && err.to_string().contains("empty.xml.bz2"),
        "{err}"
    );
}

#[test]
fn directory_is_an_error() {
    let dir = temp_dir();
    let err = open(dir.path(), &OpenOptions::default())
        .err()
        .expect("error");
    assert!(matches!(err, Error::IsDirectory { .. }), "{err}");
    assert!(
        err.to_string().contains(&dir.path().display().to_string()),
        "{err}"
    );
}

#[test]
fn missing_file_is_an_error() {
    let err = open(
        Path::new("/nonexistent/dump.xml.bz2"),
        &OpenOptions::default(),
    )
    .err()
    .expect("error");
    assert!(
        matches!(err, Error::NotFound { .. })
            && err.to_string().contains("/nonexistent/dump.xml.bz2"),
        "{err}"
    );
}

#[test]
fn unknown_format_is_an_error() {
    let dir = temp_dir();
    let path = dir.path().join("noise.bin");
    std::fs::write(&path, [0u8, 1, 2, 3, 250, 251]).unwrap();
    let err = open(&path, &OpenOptions::default()).err().expect("error");
    assert!(matches!(err, Error::UnknownFormat { .. }), "{err}");
}

#[test]
fn truncated_plain_xml_is_reported() {
    let dir = temp_dir();
    let path = dir.path().join("cut.xml");
    let bytes = dump(&[page_xml(Some(1), "A", "a"), page_xml(Some(2), "B", "b")]);
    std::fs::write(&path, &bytes[..bytes.len() - 40]).unwrap();
    let (events, fault) = read_all(&path, &OpenOptions::default());
    assert_eq!(ids(&events), [1]);
    let text = fault.expect("truncation is reported").to_string();
    assert!(
        text.contains("cut.xml") && text.contains("truncated"),
        "{text}"
    );
}

#[test]
fn bad_json_lines_are_skipped() {
    let dir = temp_dir();
    let path = dir.path().join("docs.jsonl");
    let mut bytes = b"{\"url\":\"u1\",\"title\":\"A\",\"body\":\"a\"}\nnot json\n{\"id\":7,\"title\":\"B\",\"url\":\"u\",\"body\":\"b\"}\n{\"body\":\"orphan\"}\n".to_vec();
    bytes.extend_from_slice(b"{\"url\":\"u3\",\"title\":\"\xFF\",\"body\":\"c\"}\n");
    std::fs::write(&path, bytes).unwrap();
    let (events, fault) = read_all(&path, &OpenOptions::default());
    assert!(fault.is_none(), "{fault:?}");
    assert_eq!(ids(&events), [corpus::reader::derived_id("u1"), 7]);
    let reasons: Vec<_> = skips(&events).iter().map(|s| s.reason).collect();
    assert_eq!(
        reasons,
        [
            SkipReason::Malformed,
            SkipReason::MissingId,
            SkipReason::InvalidUtf8
        ]
    );
}

#[test]
fn bad_index_line_names_the_line() {
    let dir = temp_dir();
    let index = dir.path().join("index.txt");
    std::fs::write(&index, "718:10:Good: title\nnot-an-entry\n").unwrap();
    let opts = OpenOptions {
        index: Some(index),
        ..OpenOptions::default()
    };
    let err = open(&sample("elwikivoyage-multistream.xml.bz2"), &opts)
        .err()
        .expect("error");
    assert!(
        matches!(err, Error::Index { line: 2, .. }) && err.to_string().contains("index.txt"),
        "{err}"
    );
}
