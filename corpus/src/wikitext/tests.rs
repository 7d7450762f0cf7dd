//! Tests of the cleaner: golden outputs on fragments of real articles (enwiki sample dump,
//! text CC BY-SA), each construct on its own, unclosed constructs, localized prefixes,
//! every page of the real dumps, and property tests for panics, output size and linear
//! work (counted in examined bytes, not timed).

use std::collections::BTreeMap;

use proptest::prelude::*;

use super::*;

fn en() -> CleanOptions {
    CleanOptions::default()
}

fn body(wikitext: &str) -> String {
    clean(wikitext, &en()).body
}

/// Bytes the cleaner examined for `wikitext`.
fn steps(wikitext: &str) -> u64 {
    Cleaner::new(wikitext, &en()).run().1
}

mod golden {
    use super::*;

    /// Anarchism, lead: templates, refs with nested templates, piped links, bold.
    #[test]
    fn anarchism_lead() {
        let wikitext = r#"{{Redirect2|Anarchist|Anarchists|the fictional character|Anarchist (comics)|other uses|Anarchists (disambiguation)}}
{{pp-move-indef}}
{{Use British English|date=January 2014}}
{{Anarchism sidebar}}
'''Anarchism''' is a [[political philosophy]] that advocates [[self-governance|self-governed]] societies based on voluntary institutions. These are often described as [[stateless society|stateless societies]],<ref>"ANARCHISM, a social philosophy." George Woodcock. "Anarchism" at The Encyclopedia of Philosophy</ref><ref>{{cite journal |last=Malatesta|first=Errico|title=Towards Anarchism|journal=MAN!|archivedate=7 November 2012 |deadurl=no|authorlink=Errico Malatesta |ref=harv}}
{{cite journal |year=2005|title=Anarchism|journal=The Shorter [[Routledge Encyclopedia of Philosophy]]|page=14|ref=harv}}</ref><ref name=slevin>Slevin, Carl. "Anarchism." ''The Concise Oxford Dictionary of Politics''.</ref> While [[anti-statism]] is central,<ref>"Anarchists do reject the state."</ref> anarchism entails opposing authority.

==Etymology and terminology==
{{Related articles|Anarchist terminology}}

The term ''[[wikt:anarchism|anarchism]]'' is a compound word composed from the word ''[[anarchy]]'' and the suffix ''[[-ism]]'',<ref>[http://www.etymonline.com/index.php?term=anarchism&allowed_in_frame=0 Anarchism], [[Online etymology dictionary]].</ref> themselves derived respectively from the Greek {{lang|grc|ἀναρχία}}, i.e. ''anarchy''<ref>{{LSJ|a)narxi/a|ἀναρχία|ref}}.</ref>"#;
        let expected =
            "Anarchism is a political philosophy that advocates self-governed societies \
based on voluntary institutions. These are often described as stateless societies, While \
anti-statism is central, anarchism entails opposing authority.

Etymology and terminology

The term anarchism is a compound word composed from the word anarchy and the suffix -ism, \
themselves derived respectively from the Greek , i.e. anarchy";
        assert_eq!(body(wikitext), expected);
    }

    /// Anarchism, "Origins": an Image link whose caption holds links, a comment with
    /// entities inside, refs with quoted names, self-closing refs, a piped link.
    #[test]
    fn anarchism_origins_file_link_and_comment() {
        let wikitext = r#"===Origins===
[[Image:Levellers declaration and standard.gif|thumb|upright|Woodcut from a [[Diggers]] document by [[William Everard (Digger)|William Everard]]]]
<!--Anarcho-communist Joseph Déjacque, the first person to use the term "libertarian" in a political sense, needs to be added here.-->
The earliest<ref name="LVM">{{cite web|url=https://mises.org/daily/2054#1.10|title=Mises Daily|work=Mises Institute}}</ref> anarchist themes can be found in the 6th century BC, among the works of [[Taoism|Taoist]] philosopher [[Laozi]],<ref name="EB1910">Peter Kropotkin, [http://dwardmac.pitzer.edu/Anarchist_Archives/kropotkin/britanniaanarchy.html "Anarchism"], ''[[Encyclopædia Britannica Eleventh Edition|Encyclopædia Britannica]]'' 1910.</ref> and in later centuries by [[Zhuang Zhou|Zhuangzi]] and Bao Jingyan.

[[File:WilliamGodwin.jpg|left|thumb|upright|[[William Godwin]], "the first to formulate the political and economical conceptions of anarchism".<ref name="EB1910"/>]]
Godwin is generally regarded as the founder of the school of thought known as 'philosophical anarchism'. He argued in ''[[Political Justice]]'' (1793)<ref name="godwinsep" /> that government has an inherently malevolent influence on society."#;
        let expected = "Origins

The earliest anarchist themes can be found in the 6th century BC, among the works of Taoist \
philosopher Laozi, and in later centuries by Zhuangzi and Bao Jingyan.

Godwin is generally regarded as the founder of the school of thought known as 'philosophical \
anarchism'. He argued in Political Justice (1793) that government has an inherently \
malevolent influence on society.";
        assert_eq!(body(wikitext), expected);
    }

    /// Agricultural science, end of page: external links in a list, navigation templates,
    /// categories with a sort key, interlanguage links.
    #[test]
    fn agricultural_science_tail() {
        let wikitext = r#"* [http://www.iita.org International Institute of Tropical Agriculture]
* [http://nal.usda.gov/ The National Agricultural Library (NAL)] - The most comprehensive agricultural library in the world.
*[http://www.fisaonline.de/index.php?act=home&lang=en Information System for Agriculture and Food Research]

{{Interwiki conflict}}

{{Authority control}}
{{DEFAULTSORT:Agricultural Science}}
[[Category:Agronomy]]
[[Category:Agriculture|Science]]

[[be-x-old:Аграномія]]
[[bg:Аграрни науки]]
[[he:אגרונומיה]]
[[ja:農学]]"#;
        let cleaned = clean(wikitext, &en());
        assert_eq!(
            cleaned.body,
            "International Institute of Tropical Agriculture
The National Agricultural Library (NAL) - The most comprehensive agricultural library in the world.
Information System for Agriculture and Food Research"
        );
        assert_eq!(cleaned.categories, ["Agronomy", "Agriculture"]);
        assert!(!cleaned.is_redirect);
    }

    /// Albedo, "Terrestrial albedo": a table whose cells hold refs, templates spanning
    /// lines and a comment, followed by prose.
    #[test]
    fn albedo_table() {
        let wikitext = r#"==Terrestrial albedo==
{| class="wikitable" style="float:right; margin:10px"
|+ Sample albedos
|-
! Surface
! Typical<br>albedo
|-
| Fresh asphalt || 0.04<ref name="heat island">{{cite web
 | last=Pon | first=Brian | date=30 June 1999
 | title=Pavement Albedo | publisher=Heat Island Group
| archiveurl= http://web.archive.org/web/20070829153207/http://eetd.lbl.gov/HeatIsland/Pavements/Albedo/| archivedate= 29 August 2007<!--Added by DASHBot-->}}</ref>
|-
| Fresh snow || 0.80–0.90<ref name="heat island"/>
|}
Albedos of typical materials in visible light range from up to 0.9 for fresh snow to about 0.04 for charcoal."#;
        assert_eq!(
            body(wikitext),
            "Terrestrial albedo\n\nAlbedos of typical materials in visible light range from up to \
             0.9 for fresh snow to about 0.04 for charcoal."
        );
    }

    /// A nested table inside a table, inside a template argument.
    #[test]
    fn nested_tables() {
        let wikitext = "Before.\n{{box|\n{| class=x\n| a\n|\n{|\n| inner\n|}\n| b\n|}\n}}\nAfter.";
        assert_eq!(body(wikitext), "Before.\n\nAfter.");
    }

    #[test]
    fn redirect_page() {
        let cleaned = clean(
            "#REDIRECT [[Computer accessibility]]\n\n{{R from move}}\n{{R from CamelCase}}",
            &en(),
        );
        assert!(cleaned.is_redirect);
        assert_eq!(cleaned.body, "Computer accessibility");
        assert!(clean("  #redirect:[[A]]", &en()).is_redirect);
        assert!(!clean("# REDIRECT [[A]]", &en()).is_redirect);
        assert!(!clean("text\n#REDIRECT [[A]]", &en()).is_redirect);
    }
}

mod constructs {
    use super::*;

    #[test]
    fn links_and_link_trails() {
        assert_eq!(
            body("[[a|b]] [[a]] [[a]]s [[Foo bar|]] x"),
            "b a as Foo bar x"
        );
        assert_eq!(
            body("[[:Category:Physics]] and [[:File:X.jpg|the file]]"),
            "Category:Physics and the file"
        );
        assert_eq!(
            body("[[wikt:anarchism|anarchism]] [[de:Anarchismus]]"),
            "anarchism"
        );
        assert_eq!(body("[[[x]]] [[a{{b}}]] [[]]"), "[x] [[a]] [[]]");
        assert_eq!(
            body("[[R&amp;B|R&amp;B music]] [[AT&amp;T]]"),
            "R&B music AT&T"
        );
    }

    #[test]
    fn external_links() {
        assert_eq!(
            body("[http://a.org label here] [https://b.org] [//c.org x]"),
            "label here  x"
        );
        assert_eq!(
            body("see [not a link] and http://bare.org"),
            "see [not a link] and http://bare.org"
        );
        assert_eq!(body("[http://a.org label\nnext]"), "label\nnext]");
    }

    #[test]
    fn templates_and_parameters() {
        assert_eq!(body("a {{b|c={{d|e}}|f}} g"), "a  g");
        assert_eq!(body("a {{{1|default}}} b {{{{{x}}}|y}} c"), "a  b  c");
        assert_eq!(body("x {{a|[[b|c]]}} y {{a|[[Category:Hidden]]}}"), "x  y");
        assert!(clean("{{a|[[Category:Hidden]]}}", &en())
            .categories
            .is_empty());
    }

    #[test]
    fn formatting_headings_lists() {
        assert_eq!(
            body("''it'' '''bold''' '''''both''''' it's"),
            "it bold both it's"
        );
        assert_eq!(
            body("== Heading ==\ntext\n=== Sub === \n*a\n**b\n# c\n: d\n; e\n----\nf"),
            "Heading\ntext\nSub\na\nb\nc\nd\ne\n\nf"
        );
        assert_eq!(body("a\n\n\n\nb\n \nc"), "a\n\nb\n\nc");
    }

    #[test]
    fn tags() {
        assert_eq!(
            body("a<ref>x</ref> b<ref name=\"n\" /> c<REF NAME=y>z</Ref>"),
            "a b c"
        );
        assert_eq!(body("x<math>\\frac{a}{b}</math> y"), "x y");
        assert_eq!(body("<gallery>\nFile:A.jpg|[[a]]\n</gallery>z"), "z");
        assert_eq!(body("<nowiki>[[a]] {{b}} &amp;</nowiki>"), "[[a]] {{b}} &");
        assert_eq!(
            body("<small>sm</small> <span style=\"x\">sp</span>a<br/>b<br>c"),
            "sm spa b c"
        );
        assert_eq!(body("1 < 2 and a<b and <foo>"), "1 < 2 and a<b and <foo>");
        assert_eq!(body("x<!-- c -->y <!--\n-->z"), "xy z");
    }

    #[test]
    fn magic_words() {
        assert_eq!(body("__NOTOC__\na __TOC__ b __FORCETOC__"), "a  b");
        assert_eq!(
            body("snake_case __init__ __ x__y"),
            "snake_case __init__ __ x__y"
        );
    }

    #[test]
    fn entities() {
        assert_eq!(
            body("a&nbsp;b &amp; &lt;c&gt; 1&ndash;2 x&mdash;y &quot;q&quot;"),
            "a b & <c> 1–2 x—y \"q\""
        );
        assert_eq!(
            body("&#123;&#x1F;&#x263A; &#233;t&eacute; &bogus; AT&T &"),
            "{&#x1F;☺ été &bogus; AT&T &"
        );
    }

    #[test]
    fn categories() {
        let cleaned = clean(
            "Text.\n[[Category:Physics| ]]\n[[category:Quantum_mechanics|Q]]\n[[ Category : Spaced ]]\n[[Category:R&amp;D]]",
            &en(),
        );
        assert_eq!(cleaned.body, "Text.");
        assert_eq!(
            cleaned.categories,
            ["Physics", "Quantum mechanics", "Spaced", "R&D"]
        );
    }

    #[test]
    fn file_links_with_nested_links_in_captions() {
        let wikitext =
            "A [[File:X.jpg|thumb|A [[b|c]] and [[d]] [[Image:Inner.png|x]]]] B [[image:y.svg]] C";
        assert_eq!(body(wikitext), "A  B  C");
    }
}

mod unclosed {
    use super::*;

    #[test]
    fn unclosed_openers_stay_as_text() {
        assert_eq!(body("a {{b c"), "a {{b c");
        assert_eq!(body("a {{b {{c}} d"), "a {{b  d");
        assert_eq!(body("{|\n| cell"), "{|\n| cell");
        assert_eq!(body("a [[b|c d"), "a c d");
        assert_eq!(body("x <ref>y z"), "x y z");
    }

    #[test]
    fn stray_closers_stay_as_text() {
        assert_eq!(body("a }} b ]] c\n|} d ]"), "a }} b ]] c\n|} d ]");
    }

    #[test]
    fn unclosed_comment_hides_the_rest() {
        assert_eq!(body("a <!-- b [[c]]"), "a");
    }

    #[test]
    fn mismatched_closer_closes_the_inner_construct() {
        // `]]` inside an open template closes the link around it; `}}` an open link.
        assert_eq!(body("[[a|b {{c]] d"), "b {{c d");
        assert_eq!(body("{{a|[[b|c}} d"), "d");
    }
}

mod site {
    use super::*;

    fn greek() -> SiteInfo {
        let mut namespaces = BTreeMap::new();
        namespaces.insert(-2, "Μέσο".to_string());
        namespaces.insert(6, "Αρχείο".to_string());
        namespaces.insert(14, "Κατηγορία".to_string());
        SiteInfo {
            sitename: "Βικιταξίδια".into(),
            base_url: Some("https://el.wikivoyage.org/wiki/Αρχική_σελίδα".into()),
            lang: Some("el".into()),
            namespaces,
        }
    }

    #[test]
    fn for_site_adds_localized_names() {
        let opts = CleanOptions::for_site(&greek());
        assert_eq!(opts.category_prefixes, ["Category", "Κατηγορία"]);
        assert_eq!(
            opts.file_prefixes,
            ["File", "Image", "Media", "Αρχείο", "Μέσο"]
        );
        let english = CleanOptions::for_site(&SiteInfo::default());
        assert_eq!(english, CleanOptions::default());
    }

    /// A fragment of the Greek Wikivoyage sample: localized category and file prefixes,
    /// including a lowercase first letter.
    #[test]
    fn localized_prefixes() {
        let wikitext = "==Αξιοθέατα==[[Κατηγορία:Πόλεις της Στερεάς Ελλάδας]]\n\
            [[Αρχείο:Λαμία.jpg|thumb|Η [[Λαμία]]]]Η πόλη.\n[[κατηγορία:Λαμία]] [[Category:Both]]";
        let cleaned = clean(wikitext, &CleanOptions::for_site(&greek()));
        assert_eq!(cleaned.body, "Αξιοθέατα\nΗ πόλη.");
        assert_eq!(
            cleaned.categories,
            ["Πόλεις της Στερεάς Ελλάδας", "Λαμία", "Both"]
        );
    }
}

mod real_dumps {
    use super::*;
    use std::fs::File;
    use std::io::BufReader;

    use bzip2::read::MultiBzDecoder;
    use quick_xml::events::Event;

    fn dump(name: &str) -> String {
        format!("{}/../../shared/corpus/{name}", env!("CARGO_MANIFEST_DIR"))
    }

    /// (title, wikitext) of every page of a real dump, XML entities decoded.
    fn pages(path: &str) -> Vec<(String, String)> {
        let file = File::open(path).unwrap_or_else(|e| panic!("{path}: {e}"));
        let mut reader = quick_xml::Reader::from_reader(BufReader::new(MultiBzDecoder::new(file)));
        let (mut buf, mut pages) = (Vec::new(), Vec::new());
        let (mut title, mut text, mut field) = (String::new(), String::new(), None);
        loop {
            match reader
                .read_event_into(&mut buf)
                .expect("sample dump is valid XML")
            {
                Event::Start(e) => match e.local_name().as_ref() {
                    "title" => (title.clear(), field = Some(true)).1,
                    "text" => (text.clear(), field = Some(false)).1,
                    _ => {}
                },
                Event::End(e) => {
                    if e.local_name().as_ref() == "text" {
                        pages.push((title.clone(), text.clone()));
                    }
                    field = None;
                }
                Event::Text(t) => match field {
                    Some(true) => title.push_str(&t.xml10_content()),
                    Some(false) => text.push_str(&t.xml10_content()),
                    None => {}
                },
                Event::GeneralRef(r) => {
                    let c = r.resolve_char_ref().ok().flatten().unwrap_or(match &*r {
                        "amp" => '&',
                        "lt" => '<',
                        "gt" => '>',
                        "quot" => '"',
                        _ => '\'',
                    });
                    match field {
                        Some(true) => title.push(c),
                        Some(false) => text.push(c),
                        None => {}
                    }
                }
                Event::Eof => break,
                _ => {}
            }
            buf.clear();
        }
        pages
    }

    #[test]
    fn enwiki_sample_cleans_to_prose() {
        let pages = pages(&dump("enwiki-sample.xml.bz2"));
        assert_eq!(pages.len(), 206);
        let mut redirects = 0;
        for (title, wikitext) in &pages {
            let cleaned = clean(wikitext, &en());
            assert!(cleaned.body.len() <= wikitext.len(), "{title}");
            redirects += cleaned.is_redirect as usize;
            for markup in [
                "{{",
                "[[",
                "]]",
                "<ref",
                "{|",
                "'''",
                "<!--",
                "&amp;",
                "__NOTOC__",
            ] {
                assert!(
                    !cleaned.body.contains(markup),
                    "{title}: {markup} left in body"
                );
            }
        }
        assert_eq!(redirects, 100);
        let (_, anarchism) = pages.iter().find(|(t, _)| t == "Anarchism").unwrap();
        let cleaned = clean(anarchism, &en());
        assert!(cleaned.body.starts_with(
            "Anarchism is a political philosophy that advocates self-governed societies"
        ));
        assert!(cleaned.body.contains("\nEtymology and terminology\n"));
        assert_eq!(
            cleaned.categories.first().map(String::as_str),
            Some("Anarchism")
        );
        assert_eq!(cleaned.categories.len(), 7);
    }

    #[test]
    fn table_markup_sample_drops_tables() {
        for (title, wikitext) in pages(&dump("enwiki-table-markup.xml.bz2")) {
            let cleaned = clean(&wikitext, &en());
            assert!(
                !cleaned.body.contains("{|") && !cleaned.body.contains("|-"),
                "{title}"
            );
            assert!(cleaned.body.len() > 500, "{title}: prose kept");
        }
    }
}

mod properties {
    use super::*;

    /// Fragments that open, close and nest every construct the cleaner knows.
    const PIECES: &[&str] = &[
        "{{",
        "}}",
        "{{{",
        "}}}",
        "{",
        "}",
        "[[",
        "]]",
        "[",
        "]",
        "|",
        "{|",
        "|}",
        "\n",
        "\n=",
        "==",
        "<ref>",
        "</ref>",
        "<ref name=x/>",
        "<!--",
        "-->",
        "<nowiki>",
        "</nowiki>",
        "<math>",
        "</math>",
        "<br/>",
        "<span a=\"b\">",
        "</span>",
        "<",
        ">",
        "&amp;",
        "&#x41;",
        "&#",
        "&",
        ";",
        "''",
        "'''",
        "__NOTOC__",
        "__",
        "_",
        "*",
        "#",
        ":",
        "Category:",
        "File:",
        "de:",
        "http://x.org/",
        " ",
        "a",
        "é",
        "日本",
        "\u{10348}",
        "#REDIRECT",
    ];

    fn markup() -> impl Strategy<Value = String> {
        prop::collection::vec(prop::sample::select(PIECES), 0..300).prop_map(|v| v.concat())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn never_panics_and_never_grows(s in markup()) {
            let (cleaned, work) = Cleaner::new(&s, &en()).run();
            prop_assert!(cleaned.body.len() <= s.len());
            prop_assert!(cleaned.categories.iter().map(String::len).sum::<usize>() <= s.len());
            prop_assert!(work <= 16 * s.len() as u64 + 16, "work {} for {} bytes", work, s.len());
        }

        #[test]
        fn arbitrary_text_never_panics(s in any::<String>()) {
            let (cleaned, work) = Cleaner::new(&s, &en()).run();
            prop_assert!(cleaned.body.len() <= s.len());
            prop_assert!(work <= 16 * s.len() as u64 + 16);
        }
    }

    /// Inputs made of one unit repeated: unbalanced openers of every kind, closers,
    /// unclosed tags, and mixes.
    const ADVERSARIAL: &[&str] = &[
        "{{",
        "[[",
        "{|\n",
        "{{{",
        "}}",
        "]]",
        "\n|}",
        "[[a|",
        "[[File:a|",
        "[[Category:a|",
        "[http://a",
        "[http://a ",
        "<ref>",
        "<nowiki>",
        "<span ",
        "<!-",
        "&#",
        "&amp",
        "__A",
        "''",
        "\n=",
        "\n:::{",
        "[[a|{{",
        "{{a|[[b|",
        "{{[[{|<ref>",
        "[[[",
        "{{{{{",
    ];

    /// 1 MB of each adversarial unit completes (no quadratic blow-up, no stack overflow)
    /// and costs about 10 times the work of 100 kB: linear.
    #[test]
    fn adversarial_inputs_take_linear_work() {
        for unit in ADVERSARIAL {
            let small = unit.repeat(100_000 / unit.len());
            let large = unit.repeat(1_000_000 / unit.len());
            let (small_work, large_work) = (steps(&small), steps(&large));
            assert!(
                large_work <= 16 * large.len() as u64,
                "{unit:?}: {large_work} steps for 1 MB"
            );
            let ratio = large_work as f64 / small_work as f64;
            assert!(
                (8.0..=12.0).contains(&ratio),
                "{unit:?}: work ratio {ratio} for 10x input"
            );
            assert!(clean(&large, &en()).body.len() <= large.len());
        }
    }

    /// The work counter counts what it should: a quadratic input pattern would show.
    #[test]
    fn work_counter_sees_lookahead() {
        let plain = "a".repeat(10_000);
        assert!(steps(&plain) >= 10_000);
        // Each `[[` scans its would-be target, finds `}`, and the text is then copied.
        let bad_links = format!("[[{}}}", "a".repeat(100)).repeat(100);
        assert!(steps(&bad_links) >= 2 * 100 * 100);
    }
}

mod link_pass {
    use super::*;

    fn with_links(wikitext: &str) -> Cleaned {
        let opts = CleanOptions {
            collect_links: true,
            ..CleanOptions::default()
        };
        clean(wikitext, &opts)
    }

    fn link(target: &str, anchor: Option<&str>) -> WikiLink {
        WikiLink {
            target: target.into(),
            anchor: anchor.map(str::to_string),
        }
    }

    #[test]
    fn links_and_piped_anchors_are_collected_in_order() {
        let cleaned = with_links(
            "A [[political philosophy]] of [[self-governance|self-governed ''societies'']], \
             [[a|]], [[Category:X]], [[File:Y.jpg|caption [[Z]]]], [[de:Anarchismus]], \
             {{cite|[[In template|shown]]}} and [[unclosed|text",
        );
        assert_eq!(
            cleaned.links,
            [
                link("political philosophy", None),
                link("self-governance", Some("self-governed societies")),
                link("a", None),
                link("Z", None),
                link("In template", Some("shown")),
                link("unclosed", None),
            ]
        );
        assert!(clean("[[a|b]]", &en()).links.is_empty(), "off by default");
    }

    #[test]
    fn lead_ends_at_the_first_heading_outside_templates() {
        let cleaned = with_links(
            "\n  Intro [[x]] text.\n{{box|\n== Not a heading ==\n}}\nMore.\n== History ==\nOld.",
        );
        let lead = &cleaned.body[..cleaned.lead_len];
        assert!(
            lead.starts_with("Intro x text.") && lead.trim_end().ends_with("More."),
            "{lead:?}"
        );
        assert_eq!(&cleaned.body[cleaned.lead_len..], "History\nOld.");
        let whole = clean("No headings at all.", &en());
        assert_eq!(whole.lead_len, whole.body.len());
        let greek = clean("Ελλάδα.\n==Ιστορία==\nΠαλιά.", &en());
        assert_eq!(&greek.body[..greek.lead_len], "Ελλάδα.\n");
    }
}
