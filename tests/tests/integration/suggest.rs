//! `GET /suggest` against real processes: shards of the English sample built by the real
//! `indexer` (link pass included, so articles carry their redirect titles and incoming
//! link counts), `searcher node`s and a `searcher frontend`, read through the public
//! typed model (`searcher::model::SuggestAnswer`).
//!
//! - every suggestion starts with the prefix (normalized as titles are), most linked first,
//!   and a redirect title is shown with the article it leads to;
//! - the answer over 4 shards on 3 nodes (R = 2) is the answer over one shard on one node,
//!   for every prefix tried: the merge does not depend on the sharding;
//! - with a node killed, the answers stay complete and the same (failover, as for search);
//! - an empty or blank prefix gets no suggestions, an over-long one a 400 naming the limit,
//!   and none of the awkward real-world queries gets an error.

use std::collections::BTreeSet;

use searcher::model::{SuggestAnswer, MAX_SUGGEST_PREFIX_BYTES, MAX_SUGGEST_SIZE};
use shard_proto::{prefix_key, title_key};
use tests::{get_json, temp_dir};

use crate::searcher_cluster::{awkward_queries, build_shards, Cluster};
use tools::bench::loadgen::percent_encode;

fn suggest(cluster: &Cluster, q: &str, size: usize) -> SuggestAnswer {
    let url = format!(
        "{}/suggest?q={}&size={size}",
        cluster.url,
        percent_encode(q)
    );
    let (status, body) = get_json(&url).expect("the front-end answers");
    assert_eq!(status, 200, "{q:?}: {body}");
    serde_json::from_value(body.clone()).unwrap_or_else(|e| panic!("{q:?}: {e}: {body}"))
}

/// What an answer says, without its timing.
fn listed(answer: &SuggestAnswer) -> Vec<(u64, String, Option<String>, u64)> {
    answer
        .suggestions
        .iter()
        .map(|s| (s.id, s.title.clone(), s.redirect.clone(), s.links))
        .collect()
}

/// Every suggestion matches `q` and the list is most linked first, complete.
fn assert_well_formed(q: &str, answer: &SuggestAnswer, size: usize) {
    assert!(!answer.partial, "{q:?}: {:?}", answer.shards);
    assert!(answer.suggestions.len() <= size, "{q:?}");
    let key = prefix_key(q);
    for s in &answer.suggestions {
        let matched = s.redirect.as_deref().unwrap_or(&s.title);
        assert!(
            title_key(matched).starts_with(&key),
            "{q:?} suggested {matched:?}"
        );
    }
    let links: Vec<u64> = answer.suggestions.iter().map(|s| s.links).collect();
    assert!(links.windows(2).all(|w| w[0] >= w[1]), "{q:?}: {links:?}");
    let ids: BTreeSet<u64> = answer.suggestions.iter().map(|s| s.id).collect();
    assert_eq!(ids.len(), answer.suggestions.len(), "{q:?}: a page twice");
}

/// Prefixes to try: every letter and digit, then the first 1-4 characters and the whole
/// of every title and redirect suggested for them.
fn prefixes(single: &Cluster) -> Vec<String> {
    let mut tried: BTreeSet<String> = ('a'..='z').chain('0'..='9').map(String::from).collect();
    let mut found = BTreeSet::new();
    for q in &tried {
        for s in suggest(single, q, MAX_SUGGEST_SIZE).suggestions {
            found.extend(s.redirect);
            found.insert(s.title);
        }
    }
    for text in found {
        let chars: Vec<char> = text.chars().collect();
        for n in 1..=4.min(chars.len()) {
            tried.insert(chars[..n].iter().collect());
        }
        tried.insert(text);
    }
    tried.into_iter().collect()
}

#[test]
fn suggestions_match_the_prefix_rank_by_links_and_survive_sharding_and_a_dead_node() {
    let dir = temp_dir("suggest");
    let (one, four) = (dir.path().join("one"), dir.path().join("four"));
    build_shards(&one, 1);
    build_shards(&four, 4);
    let single_dir = dir.path().join("single");
    let sharded_dir = dir.path().join("sharded");
    std::fs::create_dir_all(&single_dir).expect("dir");
    std::fs::create_dir_all(&sharded_dir).expect("dir");
    let single = Cluster::start(&single_dir, &one, 1, 1);
    let mut sharded = Cluster::start(&sharded_dir, &four, 3, 2);

    let anarchism = suggest(&sharded, "anarch", 5);
    assert_eq!(anarchism.suggestions[0].title, "Anarchism", "{anarchism:?}");
    assert!(anarchism.suggestions[0].url.starts_with("http"));

    let tried = prefixes(&single);
    let mut answers = Vec::with_capacity(tried.len());
    let mut redirects = 0;
    for q in &tried {
        let expected = suggest(&single, q, 10);
        assert_well_formed(q, &expected, 10);
        let got = suggest(&sharded, q, 10);
        assert_well_formed(q, &got, 10);
        assert_eq!(listed(&got), listed(&expected), "{q:?}");
        redirects += got
            .suggestions
            .iter()
            .filter(|s| s.redirect.is_some())
            .count();
        answers.push(listed(&got));
    }
    eprintln!("{} prefixes, {redirects} redirect suggestions", tried.len());
    assert!(tried.len() >= 100, "{} prefixes", tried.len());
    assert!(redirects > 0, "no redirect title was ever suggested");

    // A node dies: every shard has another replica, and the answers do not change.
    sharded.kill_node(1);
    for (q, expected) in tried.iter().zip(&answers) {
        let got = suggest(&sharded, q, 10);
        assert!(!got.partial, "{q:?} after a kill: {:?}", got.shards);
        assert_eq!(&listed(&got), expected, "{q:?} after a kill");
    }
    sharded.start_node(1);
    sharded.wait_all_up();

    assert_limits_and_awkward_input(&sharded);
}

fn assert_limits_and_awkward_input(cluster: &Cluster) {
    for blank in ["", "   ", "?!", "\"", "((("] {
        let answer = suggest(cluster, blank, 8);
        assert!(
            answer.suggestions.is_empty() && !answer.partial,
            "{blank:?}"
        );
    }
    let (status, body) = get_json(&format!("{}/suggest", cluster.url)).expect("answers");
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["suggestions"], serde_json::json!([]));
    let cases = [
        (
            format!("q={}", "a".repeat(MAX_SUGGEST_PREFIX_BYTES + 1)),
            "at most 1024",
        ),
        ("q=a&size=21".to_string(), "size must be at most 20"),
        ("q=a&size=-1".to_string(), "size must be"),
    ];
    for (params, expected) in cases {
        let url = format!("{}/suggest?{params}", cluster.url);
        let (status, body) = get_json(&url).expect("answers");
        assert_eq!(status, 400, "{body}");
        let message = body["error"].as_str().unwrap_or_default();
        assert!(message.contains(expected), "{message}");
    }
    // The longest prefix allowed is answered (no title is that long: nothing).
    let longest = "word ".repeat(MAX_SUGGEST_PREFIX_BYTES / 5);
    assert!(suggest(cluster, &longest, 8).suggestions.is_empty());
    for q in awkward_queries() {
        if q.len() <= MAX_SUGGEST_PREFIX_BYTES {
            let answer = suggest(cluster, &q, 8);
            assert!(!answer.partial, "{q:?}");
        }
    }
}
