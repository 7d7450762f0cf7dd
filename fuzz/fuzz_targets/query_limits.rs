//! Fuzzes the query limits and the query parser together: any text the limits accept
//! must parse without deep recursion (its syntax tree no deeper than the limits allow,
//! else the depth scan was fooled and a deeper query could overflow a stack), and the
//! parse must not panic, in the strict syntax and in the lenient reading (whose rewrite
//! must stay flat) alike.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use shard_proto::query::{self, Syntax};
use shard_proto::{query_parser, QueryLimits, WikiSchema};
use tantivy::query::QueryParser;
use tantivy::query_grammar::{parse_query_lenient, UserInputAst};

fn parser() -> &'static (WikiSchema, QueryParser) {
    static PARSER: OnceLock<(WikiSchema, QueryParser)> = OnceLock::new();
    PARSER.get_or_init(|| {
        let schema = WikiSchema::new();
        let parser = query_parser(&schema);
        (schema, parser)
    })
}

/// Depth of the grammar's tree (recursion is safe: the fuzzer's inputs are small, and a
/// tree deep enough to matter is itself the finding).
fn depth(ast: &UserInputAst) -> usize {
    match ast {
        UserInputAst::Clause(children) => {
            1 + children.iter().map(|(_, c)| depth(c)).max().unwrap_or(0)
        }
        UserInputAst::Boost(inner, _) => 1 + depth(inner),
        UserInputAst::Leaf(_) => 1,
    }
}

fuzz_target!(|text: &str| {
    let limits = QueryLimits::default();
    let (schema, parser) = parser();
    // What the front-end and the nodes run: never a panic, whatever the verdict.
    for syntax in [Syntax::Lenient, Syntax::Strict] {
        let _ = query::parse_within(parser, &schema.schema, text, syntax, &limits);
    }
    if limits.check_bytes(text).is_ok() {
        if let Some(strict) = query::lenient_to_strict(text, &query::text_fields(&schema.schema)) {
            // One clause of quoted literals: the parser never recurses into it.
            let flat = depth(&parse_query_lenient(&strict).0);
            assert!(flat <= 3, "lenient rewrite nests {flat} deep: {strict:?}");
        }
    }
    if limits.check_text(text).is_err() {
        return;
    }
    let (ast, _) = parse_query_lenient(text);
    // Each nesting level adds at most a clause and a boost node around its operand.
    let bound = 3 * limits.max_depth + 4;
    assert!(
        depth(&ast) <= bound,
        "accepted a query nesting {} deep",
        depth(&ast)
    );
});
