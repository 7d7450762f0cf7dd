//! The synthetic text model: vocabulary, Zipf sampling, page and markup writers. Every
//! page is a pure function of (seed, page number, query terms), which is what lets
//! streams be built in parallel and the output stay identical across runs.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::queries::QueryTerms;
use super::Markup;

/// Distinct terms of the vocabulary.
pub const VOCABULARY: usize = 600_000;

const COMMON: &[&str] = &[
    "the",
    "of",
    "and",
    "in",
    "to",
    "was",
    "is",
    "for",
    "on",
    "as",
    "by",
    "with",
    "he",
    "that",
    "at",
    "from",
    "his",
    "it",
    "an",
    "were",
    "are",
    "which",
    "this",
    "also",
    "be",
    "had",
    "first",
    "one",
    "their",
    "its",
    "new",
    "after",
    "but",
    "who",
    "not",
    "they",
    "have",
    "her",
    "she",
    "two",
    "been",
    "other",
    "when",
    "there",
    "all",
    "during",
    "into",
    "school",
    "time",
    "may",
    "years",
    "more",
    "most",
    "only",
    "over",
    "city",
    "some",
    "world",
    "would",
    "where",
    "later",
    "up",
    "such",
    "used",
    "many",
    "can",
    "state",
    "about",
    "national",
    "out",
    "known",
    "university",
    "united",
    "then",
    "made",
    "team",
    "series",
    "between",
    "war",
    "film",
    "these",
    "american",
    "both",
    "three",
    "under",
    "album",
    "season",
    "became",
    "while",
    "river",
    "church",
    "music",
    "village",
    "party",
    "league",
    "born",
    "group",
    "family",
    "history",
    "species",
    "government",
    "county",
];
const CONSONANTS: &[u8; 20] = b"bcdfghjklmnprstvwxyz";
const VOWELS: &[u8; 5] = b"aeiou";

/// Pages by kind, as generated.
#[derive(Clone, Copy, Debug, Default)]
pub struct Counts {
    pub articles: u64,
    pub redirects: u64,
    pub other_namespaces: u64,
}

/// Chance that a word slot of a paragraph holds a query phrase instead (with query
/// terms only): a few phrases on a page of a few hundred words.
const PHRASE_RATE: f64 = 1.0 / 200.0;
/// Phrases are drawn with P(rank) ∝ 1 / (rank + this): skewed, but over 300 phrases the
/// most frequent gets ~3% of the draws (plain Zipf(1): ~18%, far above any real phrase).
const PHRASE_ZIPF_OFFSET: f64 = 10.0;

/// Vocabulary and seed.
pub struct Model {
    seed: u64,
    words: String,
    ends: Vec<u32>,
    ln_vocabulary: f64,
    /// Query phrases, drawn by skewed rank in this order; empty without query terms
    /// (then the model draws exactly the numbers it always did).
    phrases: Vec<String>,
    ln_phrases: f64,
    /// Dense: the extra markup of `dense.rs`, drawn after everything Normal draws.
    pub(super) markup: Markup,
}

/// Appends the syllable word of `n >= 1` (bijective base 100, two letters a syllable, so
/// distinct numbers give distinct words).
fn syllable_word(mut n: u64, out: &mut String) {
    while n > 0 {
        n -= 1;
        let syllable = (n % 100) as usize;
        out.push(CONSONANTS[syllable / 5] as char);
        out.push(VOWELS[syllable % 5] as char);
        n /= 100;
    }
}

impl Model {
    /// The model of `seed`; query terms, when given, replace the syllable words at their
    /// placed ranks and bring their phrases.
    pub fn new(seed: u64, query_terms: Option<&QueryTerms>, markup: Markup) -> Model {
        let placed = query_terms.map_or_else(Vec::new, |q| q.placements(seed, COMMON));
        let mut placed = placed.into_iter().peekable();
        let mut words = String::with_capacity(VOCABULARY * 7);
        let mut ends = Vec::with_capacity(VOCABULARY);
        for rank in 0..VOCABULARY {
            match (COMMON.get(rank), placed.next_if(|(at, _)| *at == rank)) {
                (Some(word), _) => words.push_str(word),
                (None, Some((_, term))) => words.push_str(&term),
                (None, None) => syllable_word((rank - COMMON.len()) as u64 + 101, &mut words),
            }
            ends.push(words.len() as u32);
        }
        let phrases = query_terms.map_or_else(Vec::new, |q| q.phrase_texts(seed));
        Model {
            seed,
            words,
            ends,
            ln_vocabulary: ((VOCABULARY + 1) as f64).ln(),
            ln_phrases: ((phrases.len() as f64 + PHRASE_ZIPF_OFFSET) / PHRASE_ZIPF_OFFSET).ln(),
            phrases,
            markup,
        }
    }

    fn word(&self, rank: usize) -> &str {
        let start = if rank == 0 {
            0
        } else {
            self.ends[rank - 1] as usize
        };
        &self.words[start..self.ends[rank] as usize]
    }

    /// A Zipf(1) draw: P(rank < k) = ln(k+1) / ln(V+1).
    pub(super) fn zipf<'a>(&'a self, rng: &mut ChaCha8Rng) -> &'a str {
        let u: f64 = rng.random();
        let rank = ((u * self.ln_vocabulary).exp() as usize).saturating_sub(1);
        self.word(rank.min(VOCABULARY - 1))
    }

    /// With query phrases, now and then one of them; draws nothing without. The draw
    /// inverts P(rank < k) = ln((k + c) / c) / ln((n + c) / c), c = [`PHRASE_ZIPF_OFFSET`].
    fn phrase<'a>(&'a self, rng: &mut ChaCha8Rng) -> Option<&'a str> {
        if self.phrases.is_empty() || !rng.random_bool(PHRASE_RATE) {
            return None;
        }
        let u: f64 = rng.random();
        let rank = (PHRASE_ZIPF_OFFSET * ((u * self.ln_phrases).exp() - 1.0)) as usize;
        Some(&self.phrases[rank.min(self.phrases.len() - 1)])
    }

    fn rng(&self, number: u64, purpose: u64) -> ChaCha8Rng {
        let mut rng =
            ChaCha8Rng::seed_from_u64(self.seed ^ purpose.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        rng.set_stream(number);
        rng
    }

    pub fn page_id(number: u64) -> u64 {
        number + 1 + number / 7
    }

    /// Title of page `number`: unique (its first word encodes the number).
    pub fn title(&self, number: u64) -> String {
        let mut rng = self.rng(number, 1);
        let mut title = String::with_capacity(24);
        syllable_word(number + 1, &mut title);
        capitalize_first(&mut title);
        for _ in 0..rng.random_range(0..3u32) {
            title.push(' ');
            title.push_str(self.zipf(&mut rng));
        }
        title
    }

    /// Appends page `number` as XML to `xml`; returns its id and title.
    pub fn write_page(
        &self,
        number: u64,
        xml: &mut String,
        text: &mut String,
        counts: &mut Counts,
    ) -> (u64, String) {
        let mut rng = self.rng(number, 2);
        let id = Model::page_id(number);
        let kind: f64 = rng.random();
        let mut title = self.title(number);
        let mut ns = 0;
        let mut redirect = None;
        text.clear();
        if number > 0 && kind < 0.08 {
            let target = self.title(rng.random_range(0..number));
            text.push_str(&format!(
                "#REDIRECT [[{target}]]\n\n{{{{R from alternative name}}}}"
            ));
            redirect = Some(target);
            counts.redirects += 1;
        } else if number > 0 && kind < 0.10 {
            let (key, name) = [
                (1, "Talk"),
                (4, "Wikipedia"),
                (10, "Template"),
                (14, "Category"),
            ][rng.random_range(0..4)];
            ns = key;
            title = format!("{name}:{title}");
            self.paragraph(&mut rng, text, 60);
            counts.other_namespaces += 1;
        } else {
            self.article(&mut rng, &title, text);
            counts.articles += 1;
        }
        write_page_xml(xml, id, ns, &title, redirect.as_deref(), text, &mut rng);
        (id, title)
    }

    fn article(&self, rng: &mut ChaCha8Rng, title: &str, out: &mut String) {
        // Log-normal length: median 350 words, sigma 1.
        let normal = box_muller(rng);
        let target = (350.0 * normal.exp()).clamp(15.0, 60_000.0) as usize;
        if rng.random_bool(0.2) {
            out.push_str("__NOTOC__\n");
        }
        let dense = self.markup == Markup::Dense;
        // The draw comes first either way, so the default corpus stays the same bytes.
        let infobox = rng.random_bool(0.45);
        if infobox || dense {
            self.infobox(rng, title, out);
        }
        if dense {
            self.dense_header(rng, out);
        }
        out.push_str(&format!("'''{title}''' is a "));
        let mut written = self.paragraph(rng, out, 40);
        let mut section = 0;
        while written < target {
            match rng.random_range(0..100u32) {
                0..=14 => {
                    section += 1;
                    let level = if section % 3 == 0 { "===" } else { "==" };
                    out.push_str(&format!("\n{level} "));
                    self.words(rng, out, 1 + section % 3, true);
                    out.push_str(&format!(" {level}\n"));
                }
                15..=24 => written += self.list(rng, out),
                25..=28 => written += self.table(rng, out),
                29..=35 => self.file_link(rng, out),
                36..=38 => out.push_str("<!-- This section needs expansion, see talk page -->\n"),
                _ => {
                    let n = rng.random_range(40..140);
                    written += self.paragraph(rng, out, n);
                }
            }
            if dense {
                written += self.dense_section_extra(rng, out);
            }
        }
        if dense {
            self.dense_see_also(rng, out);
        }
        out.push_str("\n== References ==\n{{Reflist|30em}}\n\n");
        for _ in 0..rng.random_range(1..5u32) {
            out.push_str("[[Category:");
            self.words(rng, out, 2, true);
            out.push_str("]]\n");
        }
        if dense {
            self.dense_footer(rng, title, out);
        }
    }

    fn infobox(&self, rng: &mut ChaCha8Rng, title: &str, out: &mut String) {
        out.push_str(&format!(
            "{{{{Infobox settlement\n| name = {title}\n| image = File:"
        ));
        self.words(rng, out, 2, true);
        out.push_str(".jpg\n| caption = {{lang|fr|");
        self.words(rng, out, 2, false);
        out.push_str("}} ");
        self.words(rng, out, 3, false);
        let population: u32 = rng.random_range(100..9_000_000);
        out.push_str(&format!(
            "\n| population = {{{{formatnum:{population}}}}}<ref name=\"census\">{{{{cite web |url=https://stats.example.org/{population} |title=Census}}}}</ref>\n}}}}\n"
        ));
    }

    /// One paragraph of `n` words of prose with inline markup; returns words written.
    fn paragraph(&self, rng: &mut ChaCha8Rng, out: &mut String, n: usize) -> usize {
        let mut sentence_left = 0;
        for i in 0..n {
            if sentence_left == 0 {
                if i > 0 {
                    out.push_str(". ");
                }
                sentence_left = rng.random_range(6..25);
            }
            sentence_left -= 1;
            let start = out.len();
            if let Some(phrase) = self.phrase(rng) {
                // Plain, so that no markup splits it.
                out.push_str(phrase);
                if i == 0 || out.as_bytes()[start.saturating_sub(2)] == b'.' {
                    capitalize_at(out, start);
                }
                out.push(' ');
                continue;
            }
            let word = self.zipf(rng);
            match rng.random_range(0..1000u32) {
                0..=39 => {
                    let target = self.zipf(rng);
                    out.push_str(&format!("[[{target} {word}|{word}]]"));
                }
                40..=54 => out.push_str(&format!("[[{word}]]")),
                55..=74 => out.push_str(&format!("''{word}''")),
                75..=79 => out.push_str(&format!("'''{word}'''")),
                80..=82 => out.push_str(&format!("[https://www.example.org/{word} {word}]")),
                83..=84 => out.push_str(&format!("{word}&nbsp;{}", rng.random_range(1..100u32))),
                _ => out.push_str(word),
            }
            if i == 0 || out.as_bytes()[start.saturating_sub(2)] == b'.' {
                capitalize_at(out, start);
            }
            match rng.random_range(0..1000u32) {
                0..=14 => self.reference(rng, out),
                15..=17 => out.push_str("{{citation needed|date=March 2021}}"),
                18 => out.push_str("<ref name=\"census\" />"),
                _ => {}
            }
            if self.markup == Markup::Dense {
                self.dense_inline(rng, out);
            }
            out.push(' ');
        }
        out.push_str(".\n\n");
        n
    }

    pub(super) fn reference(&self, rng: &mut ChaCha8Rng, out: &mut String) {
        let year: u32 = rng.random_range(1950..2024);
        out.push_str("<ref>{{cite book |last=");
        self.words(rng, out, 1, true);
        out.push_str(&format!(" |year={year} |title="));
        self.words(rng, out, 3, true);
        out.push_str(" |publisher={{nowrap|");
        self.words(rng, out, 2, true);
        out.push_str(" Press}} |page=");
        out.push_str(&rng.random_range(1..900u32).to_string());
        out.push_str("}}</ref>");
    }

    fn list(&self, rng: &mut ChaCha8Rng, out: &mut String) -> usize {
        let items = rng.random_range(3..8);
        let mut written = 0;
        for _ in 0..items {
            out.push_str("* [[");
            written += self.words(rng, out, 2, true);
            out.push_str("]] – ");
            let n = rng.random_range(3..12);
            written += self.words(rng, out, n, false);
            out.push('\n');
        }
        written
    }

    pub(super) fn table(&self, rng: &mut ChaCha8Rng, out: &mut String) -> usize {
        out.push_str("\n{| class=\"wikitable sortable\"\n|+ ");
        let mut written = self.words(rng, out, 3, true);
        out.push_str("\n|-\n! Year !! Title !! Notes\n");
        for _ in 0..rng.random_range(2..9) {
            let year: u32 = rng.random_range(1900..2024);
            out.push_str(&format!("|-\n| {year} || ''"));
            written += self.words(rng, out, 2, true);
            out.push_str("'' || ");
            written += self.words(rng, out, 4, false);
            out.push('\n');
        }
        out.push_str("|}\n");
        written
    }

    fn file_link(&self, rng: &mut ChaCha8Rng, out: &mut String) {
        out.push_str("\n[[File:");
        self.words(rng, out, 2, true);
        out.push_str(".jpg|thumb|upright=1.2|");
        self.words(rng, out, 4, false);
        out.push_str(" near [[");
        self.words(rng, out, 1, true);
        out.push_str("]]]]\n");
    }

    /// `n` Zipf words separated by spaces; returns `n`.
    pub(super) fn words(
        &self,
        rng: &mut ChaCha8Rng,
        out: &mut String,
        n: usize,
        capital: bool,
    ) -> usize {
        for i in 0..n {
            if i > 0 {
                out.push(' ');
            }
            let start = out.len();
            out.push_str(self.zipf(rng));
            if capital && i == 0 {
                capitalize_at(out, start);
            }
        }
        n
    }
}

fn box_muller(rng: &mut ChaCha8Rng) -> f64 {
    let u1: f64 = rng.random::<f64>().max(f64::MIN_POSITIVE);
    let u2: f64 = rng.random();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

fn capitalize_first(s: &mut String) {
    capitalize_at(s, 0);
}

/// Upper-cases the ASCII letter at `at` (markup such as `[[` or `''` is skipped).
fn capitalize_at(s: &mut String, at: usize) {
    let skip = s.as_bytes()[at..]
        .iter()
        .take_while(|b| matches!(b, b'[' | b'\''))
        .count();
    if let Some(b) = s.as_bytes().get(at + skip) {
        if b.is_ascii_lowercase() {
            let upper = (b.to_ascii_uppercase() as char).to_string();
            s.replace_range(at + skip..at + skip + 1, &upper);
        }
    }
}

/// The `<mediawiki>` start and `<siteinfo>`: the first stream of a multistream dump.
pub fn header() -> String {
    let mut xml = String::from(
        "<mediawiki xmlns=\"http://www.mediawiki.org/xml/export-0.11/\" \
         xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" \
         xsi:schemaLocation=\"http://www.mediawiki.org/xml/export-0.11/ \
         http://www.mediawiki.org/xml/export-0.11.xsd\" version=\"0.11\" xml:lang=\"en\">\n  \
         <siteinfo>\n    <sitename>Synthpedia</sitename>\n    <dbname>ensynthwiki</dbname>\n    \
         <base>https://en.synthpedia.org/wiki/Main_Page</base>\n    \
         <generator>MediaWiki 1.41 (corpus synth)</generator>\n    <case>first-letter</case>\n    \
         <namespaces>\n",
    );
    let namespaces = [
        (-2, "Media"),
        (-1, "Special"),
        (0, ""),
        (1, "Talk"),
        (2, "User"),
        (3, "User talk"),
        (4, "Wikipedia"),
        (5, "Wikipedia talk"),
        (6, "File"),
        (7, "File talk"),
        (10, "Template"),
        (11, "Template talk"),
        (14, "Category"),
        (15, "Category talk"),
    ];
    for (key, name) in namespaces {
        if name.is_empty() {
            xml.push_str(&format!(
                "      <namespace key=\"{key}\" case=\"first-letter\" />\n"
            ));
        } else {
            xml.push_str(&format!(
                "      <namespace key=\"{key}\" case=\"first-letter\">{name}</namespace>\n"
            ));
        }
    }
    xml.push_str("    </namespaces>\n  </siteinfo>\n");
    xml
}

fn write_page_xml(
    xml: &mut String,
    id: u64,
    ns: i32,
    title: &str,
    redirect: Option<&str>,
    text: &str,
    rng: &mut ChaCha8Rng,
) {
    let revision = 1_000_000_000 + id * 3;
    let (year, month, day) = (
        rng.random_range(2005..2025u32),
        rng.random_range(1..13u32),
        rng.random_range(1..29u32),
    );
    xml.push_str("  <page>\n    <title>");
    escape_into(xml, title);
    xml.push_str(&format!("</title>\n    <ns>{ns}</ns>\n    <id>{id}</id>\n"));
    if let Some(target) = redirect {
        xml.push_str("    <redirect title=\"");
        escape_into(xml, target);
        xml.push_str("\" />\n");
    }
    xml.push_str(&format!(
        "    <revision>\n      <id>{revision}</id>\n      <parentid>{}</parentid>\n      \
         <timestamp>{year}-{month:02}-{day:02}T12:00:00Z</timestamp>\n      <contributor>\n        \
         <username>Synth bot</username>\n        <id>42</id>\n      </contributor>\n      \
         <comment>generated</comment>\n      <origin>{revision}</origin>\n      \
         <model>wikitext</model>\n      <format>text/x-wiki</format>\n      \
         <text bytes=\"{}\" sha1=\"0000000000000000000000000000000\" xml:space=\"preserve\">",
        revision - 1,
        text.len()
    ));
    escape_into(xml, text);
    xml.push_str(
        "</text>\n      <sha1>0000000000000000000000000000000</sha1>\n    </revision>\n  </page>\n",
    );
}

/// XML-escapes `<`, `>`, `&` and `"` the way MediaWiki's dumper does.
fn escape_into(out: &mut String, text: &str) {
    let mut last = 0;
    for (at, byte) in text.bytes().enumerate() {
        let entity = match byte {
            b'<' => "&lt;",
            b'>' => "&gt;",
            b'&' => "&amp;",
            b'"' => "&quot;",
            _ => continue,
        };
        out.push_str(&text[last..at]);
        out.push_str(entity);
        last = at + 1;
    }
    out.push_str(&text[last..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syllable_words_are_distinct() {
        let mut seen = std::collections::HashSet::new();
        for n in 1..200_000u64 {
            let mut word = String::new();
            syllable_word(n, &mut word);
            assert!(seen.insert(word), "duplicate word for {n}");
        }
    }

    #[test]
    fn pages_are_deterministic() {
        let model = Model::new(9, None, Markup::Normal);
        let (mut a, mut b, mut scratch) = (String::new(), String::new(), String::new());
        let mut counts = Counts::default();
        model.write_page(17, &mut a, &mut scratch, &mut counts);
        model.write_page(17, &mut b, &mut scratch, &mut counts);
        assert_eq!(a, b);
        assert!(a.contains("<page>") && a.contains("</page>"));
    }
}
