//! NLTK's `PorterStemmer` in its default `NLTK_EXTENSIONS` mode (nltk 3.x), on ASCII bytes.
//!
//! This is what rouge-score stems with. It is the 1980 algorithm (Porter, "An algorithm for suffix
//! stripping") plus NLTK's changes: an irregular-forms pool (`skies → sky`, `dying → die`, …),
//! words of ≤ 2 letters left alone, `ies → ie` for 4-letter words and `ied → ie`/`i` in step 1,
//! step 1c's `y → i` only after a consonant that is not the first letter, `bli → ble`, `alli → al`
//! tried first and re-run through step 2, `fulli → ful`, `logi → log`, and `cvc` also true of a
//! two-letter vowel–consonant stem. It exists beside the `nltk-porter` crate (used for non-ASCII
//! input) because it is about ten times faster, and stemming distinct words dominates a cold
//! ROUGE run; `tests/conformance.rs` checks it against NLTK's output on 73k words.

/// `word[i]` is a consonant: not a, e, i, o, u, and `y` only when it follows a vowel or starts the word.
fn is_cons(w: &[u8], i: usize) -> bool {
    match w[i] {
        b'a' | b'e' | b'i' | b'o' | b'u' => false,
        b'y' => i == 0 || !is_cons(w, i - 1),
        _ => true,
    }
}

/// Porter's `m`: the number of vowel-run → consonant-run transitions.
fn measure(stem: &[u8]) -> usize {
    let (mut m, mut prev_vowel) = (0, false);
    for i in 0..stem.len() {
        let c = is_cons(stem, i);
        if c && prev_vowel {
            m += 1;
        }
        prev_vowel = !c;
    }
    m
}

fn contains_vowel(stem: &[u8]) -> bool {
    (0..stem.len()).any(|i| !is_cons(stem, i))
}

fn ends_double_consonant(w: &[u8]) -> bool {
    let n = w.len();
    n >= 2 && w[n - 1] == w[n - 2] && is_cons(w, n - 1)
}

/// `*o`: consonant–vowel–consonant with the last not w, x or y (or, NLTK, a two-letter vowel–consonant).
fn ends_cvc(w: &[u8]) -> bool {
    let n = w.len();
    (n >= 3
        && is_cons(w, n - 3)
        && !is_cons(w, n - 2)
        && is_cons(w, n - 1)
        && !b"wxy".contains(&w[n - 1]))
        || (n == 2 && !is_cons(w, 0) && is_cons(w, 1))
}

fn pos(stem: &[u8]) -> bool {
    measure(stem) > 0
}

fn gt1(stem: &[u8]) -> bool {
    measure(stem) > 1
}

type Rule = (&'static [u8], &'static [u8], fn(&[u8]) -> bool);

/// NLTK's `_apply_rule_list`: the first rule whose suffix matches decides; its condition (on the
/// stem without the suffix) says whether the replacement happens. Returns whether a suffix matched.
fn apply(w: &mut Vec<u8>, rules: &[Rule]) -> bool {
    for &(suffix, rep, cond) in rules {
        if w.ends_with(suffix) {
            let stem_len = w.len() - suffix.len();
            if cond(&w[..stem_len]) {
                w.truncate(stem_len);
                w.extend_from_slice(rep);
            }
            return true;
        }
    }
    false
}

fn always(_: &[u8]) -> bool {
    true
}

fn step1a(w: &mut Vec<u8>) {
    if w.len() == 4 && w.ends_with(b"ies") {
        w.pop(); // "dies" -> "die"
        return;
    }
    apply(
        w,
        &[
            (b"sses", b"ss", always),
            (b"ies", b"i", always),
            (b"ss", b"ss", always),
            (b"s", b"", always),
        ],
    );
}

fn step1b(w: &mut Vec<u8>) {
    if w.ends_with(b"ied") {
        let keep = if w.len() == 4 {
            b"ie".as_slice()
        } else {
            b"i".as_slice()
        };
        w.truncate(w.len() - 3);
        w.extend_from_slice(keep);
        return;
    }
    if w.ends_with(b"eed") {
        if measure(&w[..w.len() - 3]) > 0 {
            w.pop();
        }
        return;
    }
    let Some(cut) = [b"ed".as_slice(), b"ing"]
        .iter()
        .find(|s| w.ends_with(s) && contains_vowel(&w[..w.len() - s.len()]))
        .map(|s| s.len())
    else {
        return;
    };
    w.truncate(w.len() - cut);
    if apply(
        w,
        &[
            (b"at", b"ate", always),
            (b"bl", b"ble", always),
            (b"iz", b"ize", always),
        ],
    ) {
        return;
    }
    if ends_double_consonant(w) {
        if !b"lsz".contains(w.last().unwrap()) {
            w.pop();
        }
        return;
    }
    if measure(w) == 1 && ends_cvc(w) {
        w.push(b'e');
    }
}

fn step1c(w: &mut [u8]) {
    let n = w.len();
    if n >= 1 && w[n - 1] == b'y' && n - 1 > 1 && is_cons(w, n - 2) {
        w[n - 1] = b'i';
    }
}

fn step2(w: &mut Vec<u8>) {
    if w.ends_with(b"alli") && pos(&w[..w.len() - 4]) {
        w.truncate(w.len() - 2);
        return step2(w);
    }
    const RULES: &[Rule] = &[
        (b"ational", b"ate", pos),
        (b"tional", b"tion", pos),
        (b"enci", b"ence", pos),
        (b"anci", b"ance", pos),
        (b"izer", b"ize", pos),
        (b"bli", b"ble", pos),
        (b"alli", b"al", pos),
        (b"entli", b"ent", pos),
        (b"eli", b"e", pos),
        (b"ousli", b"ous", pos),
        (b"ization", b"ize", pos),
        (b"ation", b"ate", pos),
        (b"ator", b"ate", pos),
        (b"alism", b"al", pos),
        (b"iveness", b"ive", pos),
        (b"fulness", b"ful", pos),
        (b"ousness", b"ous", pos),
        (b"aliti", b"al", pos),
        (b"iviti", b"ive", pos),
        (b"biliti", b"ble", pos),
        (b"fulli", b"ful", pos),
    ];
    if apply(w, RULES) {
        return;
    }
    // `logi → log` when m(word[:-3]) > 0, i.e. the stem plus its "l".
    if w.ends_with(b"logi") && pos(&w[..w.len() - 3]) {
        w.pop();
    }
}

fn step3(w: &mut Vec<u8>) {
    apply(
        w,
        &[
            (b"icate", b"ic", pos),
            (b"ative", b"", pos),
            (b"alize", b"al", pos),
            (b"iciti", b"ic", pos),
            (b"ical", b"ic", pos),
            (b"ful", b"", pos),
            (b"ness", b"", pos),
        ],
    );
}

fn ion(stem: &[u8]) -> bool {
    gt1(stem) && matches!(stem.last(), Some(b's' | b't'))
}

fn step4(w: &mut Vec<u8>) {
    apply(
        w,
        &[
            (b"al", b"", gt1),
            (b"ance", b"", gt1),
            (b"ence", b"", gt1),
            (b"er", b"", gt1),
            (b"ic", b"", gt1),
            (b"able", b"", gt1),
            (b"ible", b"", gt1),
            (b"ant", b"", gt1),
            (b"ement", b"", gt1),
            (b"ment", b"", gt1),
            (b"ent", b"", gt1),
            (b"ion", b"", ion),
            (b"ou", b"", gt1),
            (b"ism", b"", gt1),
            (b"ate", b"", gt1),
            (b"iti", b"", gt1),
            (b"ous", b"", gt1),
            (b"ive", b"", gt1),
            (b"ize", b"", gt1),
        ],
    );
}

fn step5(w: &mut Vec<u8>) {
    if w.last() == Some(&b'e') {
        let stem = &w[..w.len() - 1];
        let m = measure(stem);
        if m > 1 || (m == 1 && !ends_cvc(stem)) {
            w.pop();
        }
    }
    if w.ends_with(b"ll") && gt1(&w[..w.len() - 1]) {
        w.pop();
    }
}

fn irregular(word: &str) -> Option<&'static str> {
    Some(match word {
        "sky" | "skies" => "sky",
        "dying" => "die",
        "lying" => "lie",
        "tying" => "tie",
        "news" => "news",
        "innings" | "inning" => "inning",
        "outings" | "outing" => "outing",
        "cannings" | "canning" => "canning",
        "howe" => "howe",
        "proceed" => "proceed",
        "exceed" => "exceed",
        "succeed" => "succeed",
        _ => return None,
    })
}

/// Stems a lower-case ASCII word; `None` for anything else (the caller then uses the general
/// implementation).
pub fn stem_ascii(word: &str) -> Option<String> {
    if !word
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    {
        return None;
    }
    if let Some(s) = irregular(word) {
        return Some(s.to_string());
    }
    if word.len() <= 2 {
        return Some(word.to_string());
    }
    let mut w = word.as_bytes().to_vec();
    step1a(&mut w);
    step1b(&mut w);
    step1c(&mut w);
    step2(&mut w);
    step3(&mut w);
    step4(&mut w);
    step5(&mut w);
    Some(String::from_utf8(w).expect("ASCII in, ASCII out"))
}
