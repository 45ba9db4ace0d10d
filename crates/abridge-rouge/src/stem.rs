//! The two stemmers the reference scorers use, each with a per-thread cache.
//!
//! * [`nltk_stem`]: NLTK's `PorterStemmer()` in its default `NLTK_EXTENSIONS` mode, which
//!   rouge-score 0.1.2 applies to tokens of 4+ characters (the `nltk-porter` crate, pinned and checked
//!   against NLTK's own output on 73k words).
//! * [`perl_stem`]: what `ROUGE-1.5.5.pl -m` does to tokens of 4+ characters: the WordNet exception
//!   map when the token is a key of it, otherwise the script's own Porter stemmer ([`perl_porter`]:
//!   the 1980 algorithm, with CYL's change of trying `-ement` before `-ment`/`-ent` in step 4).
//!
//! Both data files (`data/wordnet_exceptions.tsv`, 5,930 entries) are compiled into the binary.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::{OnceLock, RwLock};

use regex::Regex;
use rustc_hash::FxHashMap;

/// Entries kept per thread before a cache is cleared (bounds memory on unbounded vocabularies).
const CACHE_LIMIT: usize = 1 << 20;

thread_local! {
    static PERL_CACHE: RefCell<HashMap<Box<str>, Box<str>>> = RefCell::new(HashMap::new());
}

fn cached(
    cache: &'static std::thread::LocalKey<RefCell<HashMap<Box<str>, Box<str>>>>,
    word: &str,
    f: impl FnOnce(&str) -> String,
) -> String {
    cache.with(|c| {
        if let Some(s) = c.borrow().get(word) {
            return s.to_string();
        }
        let s = f(word);
        let mut c = c.borrow_mut();
        if c.len() >= CACHE_LIMIT {
            c.clear();
        }
        c.insert(word.into(), s.as_str().into());
        s
    })
}

fn nltk() -> &'static nltk_porter::PorterStemmer {
    static S: OnceLock<nltk_porter::PorterStemmer> = OnceLock::new();
    S.get_or_init(|| nltk_porter::PorterStemmer::new(nltk_porter::Mode::Nltk))
}

/// NLTK's Porter stemmer (`NLTK_EXTENSIONS`) on one lower-case token.
///
/// Results are shared by all threads (a word is stemmed once per process), which matters because
/// the stemmer costs microseconds a word and a corpus has tens of thousands of distinct words.
pub fn nltk_stem(word: &str) -> String {
    static SHARED: OnceLock<RwLock<FxHashMap<Box<str>, Box<str>>>> = OnceLock::new();
    let shared = SHARED.get_or_init(Default::default);
    if let Some(s) = shared.read().unwrap_or_else(|e| e.into_inner()).get(word) {
        return s.to_string();
    }
    let s = crate::nltk_porter::stem_ascii(word).unwrap_or_else(|| nltk().stem(word));
    let mut map = shared.write().unwrap_or_else(|e| e.into_inner());
    if map.len() >= CACHE_LIMIT {
        map.clear();
    }
    map.insert(word.into(), s.as_str().into());
    s
}

/// The WordNet exception map of ROUGE-1.5.5 (`key → value`).
pub fn wordnet_exceptions() -> &'static HashMap<&'static str, &'static str> {
    static M: OnceLock<HashMap<&'static str, &'static str>> = OnceLock::new();
    M.get_or_init(|| {
        include_str!("../data/wordnet_exceptions.tsv")
            .lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
            .filter_map(|l| l.split_once('\t'))
            .collect()
    })
}

/// `ROUGE-1.5.5.pl -m` on one lower-case token of 4+ characters: exception map, else Porter.
pub fn perl_stem(word: &str) -> String {
    cached(&PERL_CACHE, word, |w| match wordnet_exceptions().get(w) {
        Some(v) => (*v).to_string(),
        None => perl_porter(w),
    })
}

struct PorterRegexes {
    mgr0: Regex,
    meq1: Regex,
    mgr1: Regex,
    hasv: Regex,
    cvc: Regex,
    sses_ies: Regex,
    s: Regex,
    ed_ing: Regex,
    at_bl_iz: Regex,
    step2: Regex,
    step3: Regex,
    step4: Regex,
    sion_tion: Regex,
}

fn regexes() -> &'static PorterRegexes {
    static R: OnceLock<PorterRegexes> = OnceLock::new();
    R.get_or_init(|| {
        // The script's definitions: c = [^aeiou], v = [aeiouy], C = c[^aeiouy]*, V = v[aeiou]*.
        let (c, v) = ("[^aeiou]", "[aeiouy]");
        let cc = format!("{c}[^aeiouy]*");
        let vv = format!("{v}[aeiou]*");
        let re = |s: &str| Regex::new(s).expect("static regex");
        PorterRegexes {
            mgr0: re(&format!("^({cc})?{vv}{cc}")),
            meq1: re(&format!("^({cc})?{vv}{cc}({vv})?$")),
            mgr1: re(&format!("^({cc})?{vv}{cc}{vv}{cc}")),
            hasv: re(&format!("^({cc})?{v}")),
            cvc: re(&format!("^{cc}{v}[^aeiouwxy]$")),
            sses_ies: re("(ss|i)es$"),
            s: re("([^s])s$"),
            ed_ing: re("(ed|ing)$"),
            at_bl_iz: re("(at|bl|iz)$"),
            step2: re("(ational|tional|enci|anci|izer|bli|alli|entli|eli|ousli|ization|ation|ator|alism|iveness|fulness|ousness|aliti|iviti|biliti|logi)$"),
            step3: re("(icate|ative|alize|iciti|ical|ful|ness)$"),
            step4: re("(al|ance|ence|er|ic|able|ible|ant|ement|ou|ism|ate|iti|ous|ive|ize)$"),
            sion_tion: re("(s|t)(ion)$"),
        }
    })
}

fn step2_replacement(suffix: &str) -> &'static str {
    match suffix {
        "ational" => "ate",
        "tional" => "tion",
        "enci" => "ence",
        "anci" => "ance",
        "izer" => "ize",
        "bli" => "ble",
        "alli" => "al",
        "entli" => "ent",
        "eli" => "e",
        "ousli" => "ous",
        "ization" => "ize",
        "ation" => "ate",
        "ator" => "ate",
        "alism" => "al",
        "iveness" => "ive",
        "fulness" => "ful",
        "ousness" => "ous",
        "aliti" => "al",
        "iviti" => "ive",
        "biliti" => "ble",
        "logi" => "log",
        _ => unreachable!("step 2 suffix {suffix}"),
    }
}

fn step3_replacement(suffix: &str) -> &'static str {
    match suffix {
        "icate" => "ic",
        "alize" => "al",
        "iciti" => "ic",
        "ical" => "ic",
        "ative" | "ful" | "ness" => "",
        _ => unreachable!("step 3 suffix {suffix}"),
    }
}

/// True when `w` ends in a double consonant other than l, s, z (the script's `([^aeiouylsz])\1$`).
fn ends_double_consonant(w: &str) -> bool {
    let b = w.as_bytes();
    b.len() >= 2 && b[b.len() - 1] == b[b.len() - 2] && !b"aeiouylsz".contains(&b[b.len() - 1])
}

/// The Porter stemmer of `ROUGE-1.5.5.pl` (`sub stem`), without the exception map.
pub fn perl_porter(word: &str) -> String {
    if word.len() < 3 {
        return word.to_string();
    }
    let r = regexes();
    let initial_y = word.starts_with('y');
    let mut w = if initial_y {
        format!("Y{}", &word[1..])
    } else {
        word.to_string()
    };

    // Step 1a.
    if let Some(c) = r.sses_ies.captures(&w) {
        let (start, keep) = (
            c.get(0).unwrap().start(),
            c.get(1).unwrap().as_str().to_string(),
        );
        w = format!("{}{keep}", &w[..start]);
    } else if r.s.is_match(&w) {
        w.pop();
    }
    // Step 1b.
    if w.ends_with("eed") {
        if r.mgr0.is_match(&w[..w.len() - 3]) {
            w.pop();
        }
    } else if let Some(m) = r.ed_ing.find(&w) {
        let stem = &w[..m.start()];
        if r.hasv.is_match(stem) {
            w.truncate(m.start());
            if r.at_bl_iz.is_match(&w) {
                w.push('e');
            } else if ends_double_consonant(&w) {
                w.pop();
            } else if r.cvc.is_match(&w) {
                w.push('e');
            }
        }
    }
    // Step 1c.
    if w.ends_with('y') && r.hasv.is_match(&w[..w.len() - 1]) {
        w.pop();
        w.push('i');
    }
    // Step 2.
    if let Some(c) = r.step2.captures(&w) {
        let m = c.get(1).unwrap();
        if r.mgr0.is_match(&w[..m.start()]) {
            let rep = step2_replacement(m.as_str());
            w = format!("{}{rep}", &w[..m.start()]);
        }
    }
    // Step 3.
    if let Some(c) = r.step3.captures(&w) {
        let m = c.get(1).unwrap();
        if r.mgr0.is_match(&w[..m.start()]) {
            let rep = step3_replacement(m.as_str());
            w = format!("{}{rep}", &w[..m.start()]);
        }
    }
    // Step 4, with CYL's order: the suffix list (which has -ement), then -ment, then -ent / -ion.
    if let Some(m) = r.step4.find(&w) {
        if r.mgr1.is_match(&w[..m.start()]) {
            w.truncate(m.start());
        }
    }
    if w.ends_with("ment") && r.mgr1.is_match(&w[..w.len() - 4]) {
        w.truncate(w.len() - 4);
    }
    if w.ends_with("ent") {
        if r.mgr1.is_match(&w[..w.len() - 3]) {
            w.truncate(w.len() - 3);
        }
    } else if let Some(c) = r.sion_tion.captures(&w) {
        let start = c.get(0).unwrap().start();
        let stem = format!("{}{}", &w[..start], c.get(1).unwrap().as_str());
        if r.mgr1.is_match(&stem) {
            w = stem;
        }
    }
    // Step 5.
    if w.ends_with('e') {
        let stem = &w[..w.len() - 1];
        if r.mgr1.is_match(stem) || (r.meq1.is_match(stem) && !r.cvc.is_match(stem)) {
            w.pop();
        }
    }
    if w.ends_with("ll") && r.mgr1.is_match(&w) {
        w.pop();
    }
    if initial_y {
        w.replace_range(0..1, "y");
    }
    w
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documented_examples() {
        // From ../shared/rouge/README.md.
        for (w, nltk, perl) in [
            ("dies", "die", "di"),
            ("skies", "sky", "ski"),
            ("enjoy", "enjoy", "enjoi"),
            ("better", "better", "good"),
            ("comics", "comic", "comic_strip"),
            ("children", "children", "child"),
            ("running", "run", "run"),
        ] {
            assert_eq!(nltk_stem(w), nltk, "nltk {w}");
            assert_eq!(perl_stem(w), perl, "perl {w}");
        }
        assert_eq!(wordnet_exceptions().len(), 5930);
    }

    #[test]
    fn porter_classics() {
        for (w, s) in [
            ("caresses", "caress"),
            ("ponies", "poni"),
            ("relational", "relat"),
            ("replacement", "replac"),
            ("yelling", "yell"),
            ("hopping", "hop"),
            ("filing", "file"),
        ] {
            assert_eq!(perl_porter(w), s, "{w}");
        }
    }
}
