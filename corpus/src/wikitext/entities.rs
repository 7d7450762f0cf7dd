//! HTML character references (`&amp;`, `&ndash;`, `&#123;`, `&#x1F;`) as they appear in
//! wikitext, decoded to characters. The named table is the compact subset that real
//! articles use (Latin-1 letters, typographic punctuation, arrows, maths, Greek), not the
//! full 2,231-name HTML5 list: an unknown name is left as literal text, which is what a
//! reader would see anyway for a mistyped entity.

/// Longest entity we try to recognise, `&` and `;` excluded (`&thetasym;` is 8).
const MAX_NAME: usize = 10;

/// Named entities, sorted by name (byte order) for binary search. Spacing entities map
/// to a plain space: the body feeds a tokenizer, and U+00A0 would only glue words.
static NAMED: &[(&str, char)] = &[
    ("AElig", 'Æ'),
    ("Aacute", 'Á'),
    ("Acirc", 'Â'),
    ("Agrave", 'À'),
    ("Alpha", 'Α'),
    ("Aring", 'Å'),
    ("Atilde", 'Ã'),
    ("Auml", 'Ä'),
    ("Beta", 'Β'),
    ("Ccedil", 'Ç'),
    ("Delta", 'Δ'),
    ("Eacute", 'É'),
    ("Ecirc", 'Ê'),
    ("Egrave", 'È'),
    ("Euml", 'Ë'),
    ("Gamma", 'Γ'),
    ("Iacute", 'Í'),
    ("Icirc", 'Î'),
    ("Iuml", 'Ï'),
    ("Lambda", 'Λ'),
    ("Ntilde", 'Ñ'),
    ("Oacute", 'Ó'),
    ("Ocirc", 'Ô'),
    ("Omega", 'Ω'),
    ("Oslash", 'Ø'),
    ("Otilde", 'Õ'),
    ("Ouml", 'Ö'),
    ("Phi", 'Φ'),
    ("Pi", 'Π'),
    ("Prime", '″'),
    ("Psi", 'Ψ'),
    ("Sigma", 'Σ'),
    ("THORN", 'Þ'),
    ("Theta", 'Θ'),
    ("Uacute", 'Ú'),
    ("Ucirc", 'Û'),
    ("Uuml", 'Ü'),
    ("Yacute", 'Ý'),
    ("aacute", 'á'),
    ("acirc", 'â'),
    ("acute", '´'),
    ("aelig", 'æ'),
    ("agrave", 'à'),
    ("alpha", 'α'),
    ("amp", '&'),
    ("apos", '\''),
    ("aring", 'å'),
    ("asymp", '≈'),
    ("atilde", 'ã'),
    ("auml", 'ä'),
    ("bdquo", '„'),
    ("beta", 'β'),
    ("brvbar", '¦'),
    ("bull", '•'),
    ("ccedil", 'ç'),
    ("cedil", '¸'),
    ("cent", '¢'),
    ("chi", 'χ'),
    ("copy", '©'),
    ("curren", '¤'),
    ("dagger", '†'),
    ("darr", '↓'),
    ("deg", '°'),
    ("delta", 'δ'),
    ("divide", '÷'),
    ("eacute", 'é'),
    ("ecirc", 'ê'),
    ("egrave", 'è'),
    ("emsp", ' '),
    ("ensp", ' '),
    ("epsilon", 'ε'),
    ("equiv", '≡'),
    ("eta", 'η'),
    ("eth", 'ð'),
    ("euml", 'ë'),
    ("euro", '€'),
    ("frac12", '½'),
    ("frac14", '¼'),
    ("frac34", '¾'),
    ("gamma", 'γ'),
    ("ge", '≥'),
    ("gt", '>'),
    ("harr", '↔'),
    ("hellip", '…'),
    ("iacute", 'í'),
    ("icirc", 'î'),
    ("iexcl", '¡'),
    ("igrave", 'ì'),
    ("infin", '∞'),
    ("iota", 'ι'),
    ("iquest", '¿'),
    ("iuml", 'ï'),
    ("kappa", 'κ'),
    ("lambda", 'λ'),
    ("laquo", '«'),
    ("larr", '←'),
    ("ldquo", '“'),
    ("le", '≤'),
    ("lrm", '\u{200E}'),
    ("lsaquo", '‹'),
    ("lsquo", '‘'),
    ("lt", '<'),
    ("macr", '¯'),
    ("mdash", '—'),
    ("micro", 'µ'),
    ("middot", '·'),
    ("minus", '−'),
    ("mu", 'μ'),
    ("nbsp", ' '),
    ("ndash", '–'),
    ("ne", '≠'),
    ("not", '¬'),
    ("ntilde", 'ñ'),
    ("nu", 'ν'),
    ("oacute", 'ó'),
    ("ocirc", 'ô'),
    ("oelig", 'œ'),
    ("ograve", 'ò'),
    ("omega", 'ω'),
    ("ordf", 'ª'),
    ("ordm", 'º'),
    ("oslash", 'ø'),
    ("otilde", 'õ'),
    ("ouml", 'ö'),
    ("para", '¶'),
    ("permil", '‰'),
    ("phi", 'φ'),
    ("pi", 'π'),
    ("plusmn", '±'),
    ("pound", '£'),
    ("prime", '′'),
    ("psi", 'ψ'),
    ("quot", '"'),
    ("raquo", '»'),
    ("rarr", '→'),
    ("rdquo", '”'),
    ("reg", '®'),
    ("rho", 'ρ'),
    ("rlm", '\u{200F}'),
    ("rsaquo", '›'),
    ("rsquo", '’'),
    ("sbquo", '‚'),
    ("scaron", 'š'),
    ("sect", '§'),
    ("shy", '\u{AD}'),
    ("sigma", 'σ'),
    ("sup1", '¹'),
    ("sup2", '²'),
    ("sup3", '³'),
    ("szlig", 'ß'),
    ("tau", 'τ'),
    ("theta", 'θ'),
    ("thinsp", ' '),
    ("thorn", 'þ'),
    ("times", '×'),
    ("trade", '™'),
    ("uacute", 'ú'),
    ("uarr", '↑'),
    ("ucirc", 'û'),
    ("ugrave", 'ù'),
    ("uml", '¨'),
    ("upsilon", 'υ'),
    ("uuml", 'ü'),
    ("xi", 'ξ'),
    ("yacute", 'ý'),
    ("yen", '¥'),
    ("yuml", 'ÿ'),
    ("zeta", 'ζ'),
    ("zwj", '\u{200D}'),
    ("zwnj", '\u{200C}'),
];

/// Decodes the character reference at the start of `s` (which begins with `&`).
/// Returns the character and the number of bytes consumed, or `None` when `s` does not
/// start with a reference we know (the `&` is then ordinary text). Looks at most
/// `MAX_NAME + 2` bytes ahead, so callers stay linear.
pub(crate) fn decode(s: &[u8]) -> Option<(char, usize)> {
    debug_assert_eq!(s.first(), Some(&b'&'));
    let limit = s.len().min(MAX_NAME + 2);
    let semi = s[1..limit].iter().position(|&b| b == b';')? + 1;
    let name = &s[1..semi];
    let c = match name {
        [b'#', b'x' | b'X', hex @ ..] => numeric(hex, 16)?,
        [b'#', dec @ ..] => numeric(dec, 10)?,
        _ => named(name)?,
    };
    Some((c, semi + 1))
}

fn named(name: &[u8]) -> Option<char> {
    NAMED
        .binary_search_by(|(n, _)| n.as_bytes().cmp(name))
        .ok()
        .map(|i| NAMED[i].1)
}

/// A numeric reference; control characters, surrogates and out-of-range values are
/// refused (left as text) rather than smuggled into the body.
fn numeric(digits: &[u8], radix: u32) -> Option<char> {
    if digits.is_empty() || digits.len() > 7 {
        return None;
    }
    let mut value: u32 = 0;
    for &d in digits {
        value = value * radix + (d as char).to_digit(radix)?;
    }
    let c = char::from_u32(value)?;
    match c {
        '\t' | '\n' => Some(c),
        c if c.is_control() => None,
        c => Some(c),
    }
}

/// Appends `s` to `out` with its character references decoded (used for link targets
/// and category names, which carry no other markup).
pub(crate) fn decode_into(out: &mut String, s: &str) {
    let bytes = s.as_bytes();
    let mut start = 0;
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'&' {
            if let Some((c, len)) = decode(&bytes[i..]) {
                out.push_str(&s[start..i]);
                out.push(c);
                i += len;
                start = i;
                continue;
            }
        }
        i += 1;
    }
    out.push_str(&s[start..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_sorted_for_binary_search() {
        assert!(NAMED.windows(2).all(|w| w[0].0 < w[1].0));
    }

    #[test]
    fn decodes_named_and_numeric() {
        assert_eq!(decode(b"&amp;x"), Some(('&', 5)));
        assert_eq!(decode(b"&mdash;"), Some(('—', 7)));
        assert_eq!(decode(b"&#123;"), Some(('{', 6)));
        assert_eq!(decode(b"&#x1F600;"), Some(('😀', 9)));
        assert_eq!(decode(b"&#X41;"), Some(('A', 6)));
        assert_eq!(decode(b"&nosuch;"), None);
        assert_eq!(decode(b"&#xD800;"), None);
        assert_eq!(decode(b"&#1;"), None);
        assert_eq!(decode(b"&#;"), None);
        assert_eq!(decode(b"&#99999999;"), None);
        assert_eq!(decode(b"& amp;"), None);
        assert_eq!(decode(b"&amp"), None);
    }

    #[test]
    fn decode_into_keeps_unknown_references() {
        let mut out = String::new();
        decode_into(&mut out, "R&amp;B &foo; AT&T &#233;");
        assert_eq!(out, "R&B &foo; AT&T é");
    }
}
