//! Unit tests of [`super::QueryLimits`]: one per limit, the issue's cost cases, and the
//! nesting scan against tantivy's own parser.

use super::*;
use crate::schema::query_parser;

fn limits() -> QueryLimits {
    QueryLimits::default()
}

/// The name of the limit a refusal names (fails the test on acceptance).
fn refused_by(text: &str) -> &'static str {
    match limits().check_text(text) {
        Err(Error::QueryLimit { limit, .. }) => limit,
        Err(Error::ExistsNeedsFastField(_)) => "exists",
        Err(other) => panic!("unexpected error for {text:?}: {other}"),
        Ok(()) => panic!("{text:?} was accepted"),
    }
}

fn parsed_terms_refused(text: &str) -> bool {
    let parser = query_parser(&WikiSchema::new());
    let query = parser.parse_query(text).expect("parses");
    limits().check_query(query.as_ref()).is_err()
}

#[test]
fn everyday_queries_pass_both_checks() {
    let parser = query_parser(&WikiSchema::new());
    for text in [
        "anarchism",
        "+griffith +observatory",
        "\"griffith observatory\"~2",
        "title:(albert einstein) -relativity",
        "body:[aa TO ab] NOT music",
        "id:*",
        "*",
        "(a OR b) AND (c OR (d AND e))",
    ] {
        limits().check_text(text).unwrap();
        limits()
            .check_query(parser.parse_query(text).unwrap().as_ref())
            .unwrap();
    }
}

#[test]
fn query_bytes_limit() {
    let text = "a ".repeat(3000);
    assert_eq!(refused_by(&text), "max_query_bytes");
}

#[test]
fn depth_limit_counts_parens_and_nots() {
    let parens = format!("{}a{}", "(".repeat(33), ")".repeat(33));
    assert_eq!(refused_by(&parens), "max_depth");
    let nots = format!("{}a", "NOT ".repeat(33));
    assert_eq!(refused_by(&nots), "max_depth");
    let mixed = format!("{}a{}", "-(".repeat(40), ")".repeat(40));
    assert_eq!(refused_by(&mixed), "max_depth");
    let ok = format!("{}a{}", "(".repeat(32), ")".repeat(32));
    limits().check_text(&ok).unwrap();
}

#[test]
fn depth_scan_is_not_fooled_by_quotes_or_escapes() {
    // Quotes that hide closing parens from one reading are seen by the other.
    let hidden = format!("{} \"{}\" a", "(".repeat(40), ")".repeat(40));
    assert!(nesting_depth(&hidden) >= 40);
    let fake_quote = format!("a\"{}b{}", "(".repeat(40), ")".repeat(40));
    assert!(nesting_depth(&fake_quote) >= 40);
    // Quoted or escaped parentheses are words, not groups, for the quote-aware reading.
    assert_eq!(quote_aware_depth("\"((((\" a"), 0);
    assert_eq!(quote_blind_depth("\\(\\(\\( a"), 0);
}

#[test]
fn the_issues_nesting_cases_are_refused_before_parsing() {
    for text in [
        format!("{}a{}", "(".repeat(8000), ")".repeat(8000)),
        "a (".repeat(1023) + "a" + &")".repeat(1023),
        "NOT ".repeat(1023) + "a",
    ] {
        let bigger = QueryLimits {
            max_query_bytes: 1 << 20,
            ..limits()
        };
        let refusal = bigger.check_text(&text).unwrap_err();
        assert!(refusal.to_string().contains("max_depth = 32"), "{refusal}");
    }
}

#[test]
fn clause_limit() {
    let text = (0..300)
        .map(|i| format!("w{i}"))
        .collect::<Vec<_>>()
        .join(" ");
    assert_eq!(refused_by(&text), "max_clauses");
}

#[test]
fn term_limit_counts_words_over_fields() {
    // 70 distinct words × 3 default fields = 210 term clauses > 192.
    let text = (0..70)
        .map(|i| format!("w{i}"))
        .collect::<Vec<_>>()
        .join(" ");
    limits().check_text(&text).unwrap();
    assert!(parsed_terms_refused(&text));
    // 1,300 distinct two-letter terms (the issue's case) are refused by the text check.
    let letters: Vec<char> = ('a'..='z').chain('0'..='9').collect();
    let two: Vec<String> = letters
        .iter()
        .flat_map(|a| letters.iter().map(move |b| format!("{a}{b}")))
        .take(1300)
        .collect();
    let big = QueryLimits {
        max_query_bytes: 1 << 20,
        ..limits()
    };
    assert!(big.check_text(&two.join(" ")).is_err());
}

#[test]
fn term_limit_counts_set_elements() {
    let text = format!("title: IN [{}]", "x ".repeat(300));
    assert_eq!(refused_by(&text), "max_terms");
}

#[test]
fn phrase_length_limit() {
    let text = format!("\"{}\"", "the ".repeat(17));
    assert_eq!(refused_by(&text), "max_phrase_terms");
    limits()
        .check_text(&format!("\"{}\"", "the ".repeat(16)))
        .unwrap();
}

#[test]
fn slop_limit_and_the_issues_sloppy_phrase() {
    assert_eq!(refused_by("\"a b\"~17"), "max_slop");
    limits().check_text("\"a b\"~16").unwrap();
    let issue = format!("\"{}\"~1000000", "the ".repeat(1000));
    let big = QueryLimits {
        max_query_bytes: 1 << 20,
        ..limits()
    };
    let refusal = big.check_text(&issue).unwrap_err().to_string();
    assert!(refusal.contains("max_phrase_terms = 16"), "{refusal}");
}

#[test]
fn range_limit() {
    let text = (0..5)
        .map(|i| format!("body:[a{i} TO zz]"))
        .collect::<Vec<_>>()
        .join(" ");
    assert_eq!(refused_by(&text), "max_ranges");
}

#[test]
fn exists_needs_a_fast_field() {
    assert_eq!(refused_by("body:*"), "exists");
    assert_eq!(refused_by("a (title:*)^2"), "exists");
    limits().check_text("id:*").unwrap();
    let message = limits().check_text("body:*").unwrap_err().to_string();
    assert!(message.contains("body:* needs a fast field"), "{message}");
}

#[test]
fn window_limit() {
    limits().check_window(9900, 100).unwrap();
    let refusal = limits().check_window(9901, 100).unwrap_err().to_string();
    assert_eq!(
        refusal,
        "from + size: 10001, over the limit max_window = 10000"
    );
    assert!(limits().check_window(usize::MAX, 10).is_err());
}

#[test]
fn refusals_name_the_limit_and_its_value() {
    let message = limits().check_text("\"a b\"~99").unwrap_err().to_string();
    assert_eq!(message, "phrase slop: 99, over the limit max_slop = 16");
}

#[test]
fn validation_refuses_useless_or_unsafe_settings() {
    assert!(limits().validate().is_ok());
    let zero = QueryLimits {
        max_terms: 0,
        ..limits()
    };
    assert!(zero.validate().unwrap_err().contains("max_terms"));
    let deep = QueryLimits {
        max_depth: 10_000,
        ..limits()
    };
    assert!(deep.validate().unwrap_err().contains("max_depth"));
}

#[test]
fn accepted_depths_parse_on_a_small_stack() {
    // What the depth limit protects: anything check_text accepts parses (and is walked)
    // on a 256 KiB stack, an eighth of a default thread's.
    let parser = query_parser(&WikiSchema::new());
    let deepest = format!("{}a{}", "a (".repeat(32), ")".repeat(32));
    limits().check_text(&deepest).unwrap();
    let worker = std::thread::Builder::new().stack_size(256 * 1024);
    let handle = worker
        .spawn(move || parser.parse_query(&deepest).map(|_| ()).is_ok())
        .unwrap();
    assert!(handle.join().unwrap());
}
