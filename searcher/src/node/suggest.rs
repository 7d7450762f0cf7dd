//! Title suggestions on one shard: the articles whose title, or one of whose redirect
//! titles, starts with a typed prefix, most linked first (the `/suggest` endpoint).
//!
//! Both are keyword terms normalized alike (`title_key`, `redirect_keys`; see
//! `shard_proto::schema`), so a prefix is a range of the term dictionary: from the
//! prefix's key up to the first term that no longer starts with it. No BM25, no query
//! parser: each matching term's documents are ranked by the `links_in` fast field, then
//! by the matched key and page id ([`Suggestion::merge_order`]), and only the best `size`
//! documents of the shard are read from the doc store (title, URL, the redirect that
//! matched). An article matched by its title and by redirects is suggested once, as its
//! title; one matched by redirects only, by the smallest of them.
//!
//! A short prefix over a large shard walks many terms (every title starting with `a`):
//! the walk checks the call's [`Stop`] every [`CHECK_EVERY_TERMS`] terms, so it never
//! outlives its caller.

use tantivy::columnar::Column;
use tantivy::schema::{Field, IndexRecordOption, Value};
use tantivy::{DocAddress, DocId, DocSet, Searcher, SegmentReader, TantivyDocument, TERMINATED};

use shard_proto::title_key;
use shard_proto::wire::Suggestion;
use shard_proto::WikiSchema;

use super::stop::Stop;

/// Terms walked between two checks of the call's [`Stop`].
pub const CHECK_EVERY_TERMS: usize = 1024;

/// A document matched by one key, before its stored fields are read.
#[derive(Debug)]
struct Candidate {
    links: u64,
    id: u64,
    key: Vec<u8>,
    address: DocAddress,
    via_redirect: bool,
}

/// The shard's best `size` suggestions for `key` (a `shard_proto::prefix_key`), best
/// first. An empty key suggests nothing.
pub fn suggest_shard(
    searcher: &Searcher,
    schema: &WikiSchema,
    key: &str,
    size: usize,
    stop: &Stop,
) -> Result<Vec<Suggestion>, String> {
    if key.is_empty() || size == 0 {
        return Ok(Vec::new());
    }
    let f = &schema.fields;
    let mut candidates = Vec::new();
    for (ord, segment) in searcher.segment_readers().iter().enumerate() {
        let columns = SegmentColumns::open(segment)?;
        for (field, via_redirect) in [(f.title_key, false), (f.redirect_keys, true)] {
            let matched = Matched {
                segment,
                ord: ord as u32,
                columns: &columns,
                via_redirect,
            };
            matched.collect(field, key.as_bytes(), stop, &mut candidates)?;
        }
    }
    let best = best_per_document(candidates, size);
    best.into_iter()
        .map(|candidate| stored_suggestion(searcher, schema, candidate))
        .collect()
}

/// The fast fields a candidate needs, opened once per segment.
struct SegmentColumns {
    ids: Column<u64>,
    links: Column<u64>,
}

impl SegmentColumns {
    fn open(segment: &SegmentReader) -> Result<Self, String> {
        let column = |name: &str| {
            segment
                .fast_fields()
                .u64(name)
                .map_err(|e| format!("fast field {name}: {e}"))
        };
        Ok(SegmentColumns {
            ids: column("id")?,
            links: column("links_in")?,
        })
    }
}

/// One segment's keys of one field, walked from a prefix.
struct Matched<'a> {
    segment: &'a SegmentReader,
    ord: u32,
    columns: &'a SegmentColumns,
    via_redirect: bool,
}

impl Matched<'_> {
    /// Every live document of every term of `field` starting with `prefix`.
    fn collect(
        &self,
        field: Field,
        prefix: &[u8],
        stop: &Stop,
        into: &mut Vec<Candidate>,
    ) -> Result<(), String> {
        let index = self
            .segment
            .inverted_index(field)
            .map_err(|e| e.to_string())?;
        let mut terms = index
            .terms()
            .range()
            .ge(prefix)
            .into_stream()
            .map_err(|e| e.to_string())?;
        let mut walked = 0usize;
        while terms.advance() && terms.key().starts_with(prefix) {
            walked += 1;
            if walked.is_multiple_of(CHECK_EVERY_TERMS) {
                stop.check().map_err(|stopped| stopped.to_string())?;
            }
            let mut postings = index
                .read_postings_from_terminfo(terms.value(), IndexRecordOption::Basic)
                .map_err(|e| e.to_string())?;
            let mut doc = postings.doc();
            while doc != TERMINATED {
                if !self.segment.is_deleted(doc) {
                    into.push(self.candidate(doc, terms.key()));
                }
                doc = postings.advance();
            }
        }
        Ok(())
    }

    fn candidate(&self, doc: DocId, key: &[u8]) -> Candidate {
        Candidate {
            links: self.columns.links.first(doc).unwrap_or(0),
            id: self.columns.ids.first(doc).unwrap_or(0),
            key: key.to_vec(),
            address: DocAddress::new(self.ord, doc),
            via_redirect: self.via_redirect,
        }
    }
}

/// One candidate per document (its title match, else its smallest redirect key), the
/// best `size` of them in [`Suggestion::merge_order`].
fn best_per_document(mut candidates: Vec<Candidate>, size: usize) -> Vec<Candidate> {
    candidates.sort_by(|a, b| {
        (a.address, a.via_redirect, &a.key).cmp(&(b.address, b.via_redirect, &b.key))
    });
    candidates.dedup_by(|later, first| later.address == first.address);
    candidates.sort_by(|a, b| {
        b.links
            .cmp(&a.links)
            .then_with(|| a.key.cmp(&b.key))
            .then(a.id.cmp(&b.id))
    });
    candidates.truncate(size);
    candidates
}

/// The suggestion of a ranked candidate, with its stored title, URL and matched redirect.
fn stored_suggestion(
    searcher: &Searcher,
    schema: &WikiSchema,
    candidate: Candidate,
) -> Result<Suggestion, String> {
    let f = &schema.fields;
    let stored: TantivyDocument = searcher.doc(candidate.address).map_err(|e| e.to_string())?;
    let text = |field: Field| {
        stored
            .get_first(field)
            .and_then(|v| v.as_str())
            .unwrap_or("")
            .to_string()
    };
    let key = String::from_utf8_lossy(&candidate.key).into_owned();
    // The stored redirect whose key matched (stored and keyed in the same order; keyed
    // again here rather than trusting positions).
    let redirect = candidate.via_redirect.then(|| {
        stored
            .get_all(f.redirects)
            .filter_map(|v| v.as_str())
            .find(|redirect| title_key(redirect) == key)
            .unwrap_or(key.as_str())
            .to_string()
    });
    Ok(Suggestion {
        id: candidate.id,
        title: text(f.title),
        redirect,
        url: text(f.url),
        links: candidate.links,
        key,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tantivy::{doc, Index, IndexWriter};

    /// (id, title, redirects, incoming links)
    const ARTICLES: &[(u64, &str, &[&str], u64)] = &[
        (1, "New York City", &["NYC", "New York"], 900),
        (2, "Newark, New Jersey", &[], 120),
        (3, "New Zealand", &["Aotearoa"], 500),
        (4, "Newton's laws", &["Laws of motion"], 120),
        (5, "O'Brien (film)", &[], 3),
        (6, "York", &["New Amsterdam"], 40),
    ];

    fn index() -> (Index, WikiSchema) {
        let schema = WikiSchema::new();
        let f = schema.fields;
        let index = Index::create_in_ram(schema.schema.clone());
        let mut writer: IndexWriter = index.writer_with_num_threads(1, 15_000_000).unwrap();
        for (id, title, redirects, links) in ARTICLES {
            let mut doc = doc!(f.id => *id, f.title => *title, f.title_key => title_key(title),
                f.url => format!("https://x/{id}"), f.links_in => *links);
            for redirect in *redirects {
                doc.add_text(f.redirects, *redirect);
                doc.add_text(f.redirect_keys, title_key(redirect));
            }
            writer.add_document(doc).unwrap();
        }
        writer.commit().unwrap();
        (index, schema)
    }

    fn suggest(typed: &str, size: usize) -> Vec<(String, Option<String>)> {
        let (index, schema) = index();
        let searcher = index.reader().unwrap().searcher();
        let key = shard_proto::prefix_key(typed);
        suggest_shard(&searcher, &schema, &key, size, &Stop::never())
            .unwrap()
            .into_iter()
            .map(|s| (s.title, s.redirect))
            .collect()
    }

    fn titled(title: &str) -> (String, Option<String>) {
        (title.to_string(), None)
    }

    #[test]
    fn titles_and_redirects_by_prefix_most_linked_first() {
        // New York City matches by title and by a redirect: suggested once, as its title.
        // Newark and Newton tie on links: the smaller key first.
        assert_eq!(
            suggest("new", 10),
            vec![
                titled("New York City"),
                titled("New Zealand"),
                titled("Newark, New Jersey"),
                titled("Newton's laws"),
                ("York".to_string(), Some("New Amsterdam".to_string())),
            ]
        );
        assert_eq!(suggest("New", 2).len(), 2);
        // A finished word: "new " is no longer a prefix of "newark".
        let finished: Vec<_> = suggest("NEW ", 10).into_iter().map(|s| s.0).collect();
        assert_eq!(finished, ["New York City", "New Zealand", "York"]);
    }

    #[test]
    fn prefixes_are_normalized_like_titles() {
        assert_eq!(suggest("o'bri", 10), vec![titled("O'Brien (film)")]);
        assert_eq!(suggest("O BRIEN (", 10), vec![titled("O'Brien (film)")]);
        assert_eq!(
            suggest("aote", 10),
            vec![("New Zealand".to_string(), Some("Aotearoa".to_string()))]
        );
        assert!(suggest("zz", 10).is_empty());
        assert!(suggest("?!", 10).is_empty());
        assert!(suggest("new", 0).is_empty());
    }
}
