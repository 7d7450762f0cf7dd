//! How the scored text fields are cut into terms, chosen per index from the dump's
//! language: words lowercased as tantivy's `default` tokenizer cuts them, then stemmed
//! with the Snowball stemmer of the language where one was measured to help
//! (README, "Relevance"). A dump of any other language keeps the plain analysis.
//!
//! The analysis is part of the schema (each field names its tokenizer, and the schema's
//! fingerprint covers it), so a shard says how it was built, and nodes and front-ends
//! read that from its manifest: they parse a query with the analysis of the shards it
//! runs on. A tokenizer that tantivy does not build in (the Greek one) is not stored in
//! the index either: [`register`] adds it to every index opened and [`tokenizers`] is the
//! query parsers' manager.

use std::fmt;
use std::str::FromStr;

use tantivy::tokenizer::{
    Language, LowerCaser, RemoveLongFilter, SimpleTokenizer, Stemmer, TextAnalyzer,
    TokenizerManager,
};
use tantivy::Index;

/// Tokens of this many bytes or more are dropped (as tantivy's `default` does).
pub const MAX_TOKEN_BYTES: usize = 40;

/// The analysis of an index's scored text fields.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Analysis {
    /// Words, lowercased, no stemming (tantivy's `default`).
    #[default]
    Plain,
    /// [`Analysis::Plain`] then the Snowball English stemmer (tantivy's `en_stem`).
    English,
    /// [`Analysis::Plain`] then the Snowball Greek stemmer (which also folds accents and
    /// the final sigma).
    Greek,
}

impl Analysis {
    /// Every analysis, in a fixed order (fingerprints are looked up among them).
    pub const ALL: [Analysis; 3] = [Analysis::Plain, Analysis::English, Analysis::Greek];

    /// Its position in [`Analysis::ALL`] (for tables indexed by analysis).
    pub const fn index(self) -> usize {
        self as usize
    }

    /// The analysis for a dump in `lang` (a Wikipedia language code): a stemmer for the
    /// languages measured to profit from one, the plain analysis for every other.
    pub fn for_language(lang: Option<&str>) -> Self {
        let primary = lang.map(|l| l.split('-').next().unwrap_or(l).to_ascii_lowercase());
        match primary.as_deref() {
            Some("en" | "simple") => Analysis::English,
            Some("el") => Analysis::Greek,
            _ => Analysis::Plain,
        }
    }

    /// The tokenizer name the schema's scored fields carry.
    pub fn tokenizer(self) -> &'static str {
        match self {
            Analysis::Plain => "default",
            Analysis::English => "en_stem",
            Analysis::Greek => "el_stem",
        }
    }

    /// The name used on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Analysis::Plain => "plain",
            Analysis::English => "english",
            Analysis::Greek => "greek",
        }
    }

    /// The analyzer itself.
    pub fn analyzer(self) -> TextAnalyzer {
        let words = TextAnalyzer::builder(SimpleTokenizer::default())
            .filter(RemoveLongFilter::limit(MAX_TOKEN_BYTES))
            .filter(LowerCaser);
        match self {
            Analysis::Plain => words.build(),
            Analysis::English => words.filter(Stemmer::new(Language::English)).build(),
            Analysis::Greek => words.filter(Stemmer::new(Language::Greek)).build(),
        }
    }

    /// The terms `text` becomes under this analysis, in order.
    pub fn terms(self, text: &str) -> Vec<String> {
        let mut analyzer = self.analyzer();
        let mut stream = analyzer.token_stream(text);
        let mut terms = Vec::new();
        while stream.advance() {
            terms.push(stream.token().text.clone());
        }
        terms
    }
}

impl fmt::Display for Analysis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Analysis {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Analysis::ALL
            .into_iter()
            .find(|a| a.name() == s)
            .ok_or_else(|| format!("unknown analysis {s:?} (plain, english or greek)"))
    }
}

/// tantivy's built-in tokenizers plus every analysis's (what query parsers use).
pub fn tokenizers() -> TokenizerManager {
    let manager = TokenizerManager::default();
    for analysis in Analysis::ALL {
        manager.register(analysis.tokenizer(), analysis.analyzer());
    }
    manager
}

/// Adds every analysis's tokenizer to `index` (needed after opening or creating one: an
/// index stores its tokenizers' names, not the tokenizers).
pub fn register(index: &Index) {
    for analysis in Analysis::ALL {
        index
            .tokenizers()
            .register(analysis.tokenizer(), analysis.analyzer());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_analysis_is_at_its_index() {
        for (at, analysis) in Analysis::ALL.into_iter().enumerate() {
            assert_eq!(analysis.index(), at, "{analysis}");
        }
    }

    #[test]
    fn the_language_picks_the_stemmer() {
        assert_eq!(Analysis::for_language(Some("en")), Analysis::English);
        assert_eq!(Analysis::for_language(Some("el")), Analysis::Greek);
        assert_eq!(Analysis::for_language(Some("bg")), Analysis::Plain);
        assert_eq!(Analysis::for_language(None), Analysis::Plain);
    }

    #[test]
    fn stemmed_words_meet() {
        assert_eq!(
            Analysis::English.terms("Running runs"),
            ["run", "run"].map(String::from)
        );
        assert_eq!(
            Analysis::Plain.terms("Running runs"),
            ["running", "runs"].map(String::from)
        );
        // Accents and the final sigma fold: the same stem with and without tonos.
        let greek = Analysis::Greek.terms("Αθήνας Αθηνας");
        assert_eq!(greek[0], greek[1], "{greek:?}");
    }

    #[test]
    fn names_read_back() {
        for analysis in Analysis::ALL {
            assert_eq!(analysis.name().parse::<Analysis>(), Ok(analysis));
        }
        assert!("klingon".parse::<Analysis>().is_err());
    }
}
