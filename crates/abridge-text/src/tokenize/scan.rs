//! The raw-text scanner behind [`super::Tokenizer`]: one left-to-right pass with bounded
//! look-ahead, so its time is linear in the input on every text (runs of `-`, `'`, `` ` `` or `.`
//! included).
//!
//! What it keeps whole, and why:
//! * web addresses and e-mail addresses (`https://example.com/a?b=1`, `www.x.org`, `cnn.com`,
//!   `jane.doe@example.com`): a whitespace-delimited run is tested once, from its first letter or
//!   digit, with closing punctuation stripped from its end;
//! * numbers with their inner `.` `,` `:` `/` (`3.5`, `1,000`, `2:30`, `9/11`) and attached
//!   units (`2:30pm`, `5km`);
//! * abbreviations with their period (`Dr.`, `U.S.`, `e.g.`, `ext. 5512`, `No. 5`, initials
//!   `J.`): the period is not a sentence end. When a non-title abbreviation ends a sentence
//!   (the text ends, or a capitalised word follows) a separate `.` token follows it, as in the
//!   Penn Treebank; [`super::detokenize`] prints the pair as one period.
//!
//! Layout it reads: a blank line (a paragraph break) or a list marker at the start of a line
//! (`-`, `*`, `•`, `1.`, `2)`) ends the sentence before it, with a `.` token when that sentence
//! has no final punctuation; the marker itself is dropped. Han characters and kana are one
//! token each (those scripts do not separate words with spaces).

/// Titles: the period never ends a sentence (a name follows).
const TITLES: &[&str] = &[
    "mr", "mrs", "ms", "dr", "prof", "st", "sr", "jr", "gen", "sen", "rep", "gov", "lt", "col",
    "sgt", "capt", "cmdr", "adm", "rev", "hon", "pres", "supt", "det", "insp", "vs", "mt", "ft",
];
/// Abbreviations that precede a number (`ext. 5512`, `No. 5`): only then is the period theirs.
const BEFORE_NUMBERS: &[&str] = &[
    "no", "nos", "vol", "vols", "p", "pp", "fig", "figs", "ext", "tel", "art", "sec", "ch", "ph",
    "approx", "ca",
];
/// Other abbreviations: the period is theirs; a sentence may end with them.
const GENERAL: &[&str] = &[
    "etc", "inc", "ltd", "corp", "co", "bros", "assn", "dept", "univ", "al", "cf", "jan", "feb",
    "aug", "sept", "oct", "nov", "dec", "ave", "blvd", "rd",
];
/// Top-level domains that make `word.tld` a web address.
const TLDS: &[&str] = &[
    "com", "org", "net", "edu", "gov", "mil", "int", "io", "co", "uk", "us", "ca", "au", "de",
    "fr", "es", "it", "nl", "eu", "info", "biz", "me", "tv", "ly", "ai", "ch", "jp", "cn", "in",
    "ru", "br", "ie", "nz", "za", "be", "se", "no", "dk", "fi", "pl", "at",
];

/// Characters that close a phrase and so are not part of an address they follow.
fn closing_punct(c: char) -> bool {
    matches!(
        c,
        '.' | ',' | ';' | ':' | '!' | '?' | ')' | ']' | '}' | '>' | '"' | '\'' | '”' | '’' | '»'
    )
}

/// Han ideographs, hiragana and katakana: written without spaces, so one token per character.
pub(crate) fn is_cjk(c: char) -> bool {
    matches!(c as u32,
        0x3040..=0x30FF | 0x3400..=0x4DBF | 0x4E00..=0x9FFF | 0xF900..=0xFAFF | 0x20000..=0x2FA1F)
}

/// A word character: a letter or digit in any script, other than the one-per-token CJK ones.
fn is_word(c: char) -> bool {
    c.is_alphanumeric() && !is_cjk(c)
}

fn is_apostrophe(c: char) -> bool {
    c == '\'' || c == '’'
}

pub(crate) const CLITICS: [&str; 6] = ["s", "re", "ve", "ll", "d", "m"];

/// Sentence-final punctuation tokens.
pub fn ends_sentence(tok: &str) -> bool {
    matches!(tok, "." | "!" | "?" | "..." | "。" | "！" | "？")
}

/// Scans `chars`, appending tokens (in their original casing) to `out`.
pub(crate) fn scan(chars: &[char], out: &mut Vec<String>) {
    let first = out.len();
    let n = chars.len();
    let mut i = 0;
    let mut line_start = true;
    let mut paragraph = false;
    // An address found at the start of the current whitespace-delimited run: (start, end).
    let mut address: Option<(usize, usize)> = None;
    while i < n {
        let c = chars[i];
        if c.is_whitespace() {
            if c == '\n' {
                paragraph |= line_start && out.len() > first;
                line_start = true;
            }
            i += 1;
            continue;
        }
        if line_start {
            line_start = false;
            let marker = list_marker(chars, i);
            if paragraph || marker.is_some() {
                end_sentence(out, first);
            }
            paragraph = false;
            if let Some(len) = marker {
                i += len;
                continue;
            }
        }
        if i == 0 || chars[i - 1].is_whitespace() {
            address = web_address(chars, i);
        }
        if let Some((a, b)) = address {
            if a == i {
                out.push(chars[a..b].iter().collect());
                address = None;
                i = b;
                continue;
            }
        }
        if is_cjk(c) {
            out.push(c.to_string());
            i += 1;
        } else if is_word(c) {
            i = word(chars, i, out);
        } else {
            // Punctuation and symbols, one character each, except `...` (for any run of three
            // or more periods), `--`, and the PTB quotes ``` `` ``` and `''`.
            let periods = if c == '.' {
                chars[i..].iter().take_while(|&&x| x == '.').count()
            } else {
                0
            };
            if periods >= 3 {
                out.push("...".to_string());
                i += periods;
                continue;
            }
            let len = if matches!(c, '-' | '`' | '\'') && chars.get(i + 1) == Some(&c) {
                2
            } else {
                1
            };
            out.push(chars[i..i + len].iter().collect());
            i += len;
        }
    }
}

/// Ends the sentence so far at a paragraph break or list item: a `.` token unless the last
/// token already ends it or is other punctuation (`Hi John,` stays as it is).
fn end_sentence(out: &mut Vec<String>, first: usize) {
    if let Some(last) = out[first..].last() {
        if last.chars().any(char::is_alphanumeric) && !last.ends_with('.') {
            out.push(".".to_string());
        }
    }
}

/// The length of a list marker at `i` (the start of a line): a bullet (`-`, `*`, `•`, …) or an
/// item number (`1.`, `12)`) followed by whitespace.
fn list_marker(chars: &[char], i: usize) -> Option<usize> {
    let space_at = |k: usize| chars.get(k).is_some_and(|c| c.is_whitespace());
    if matches!(
        chars[i],
        '-' | '*' | '•' | '·' | '–' | '—' | '▪' | '◦' | '‣' | '+'
    ) {
        return space_at(i + 1).then_some(1);
    }
    let digits = chars[i..]
        .iter()
        .take(4)
        .take_while(|c| c.is_ascii_digit())
        .count();
    if (1..=3).contains(&digits)
        && matches!(chars.get(i + digits), Some('.' | ')'))
        && space_at(i + digits + 1)
    {
        return Some(digits + 1);
    }
    None
}

/// An address (URL or e-mail) in the whitespace-delimited run starting at `i`: its span, from
/// the run's first letter or digit to its end less closing punctuation. Each run is tested once.
fn web_address(chars: &[char], i: usize) -> Option<(usize, usize)> {
    let end = i + chars[i..].iter().take_while(|c| !c.is_whitespace()).count();
    let a = i + chars[i..end]
        .iter()
        .take_while(|c| !c.is_alphanumeric())
        .count();
    let mut b = end;
    while b > a && closing_punct(chars[b - 1]) {
        b -= 1;
    }
    // A `)` that closes a `(` inside the address belongs to it (`wiki/Rust_(language)`).
    if b < end && chars[b] == ')' && chars[a..b].contains(&'(') {
        b += 1;
    }
    if b <= a {
        return None;
    }
    let original: String = chars[a..b].iter().collect();
    let core = original.to_lowercase();
    let host_is_domain = |host: &str| {
        let labels: Vec<&str> = host.split('.').collect();
        labels.len() >= 2
            && labels
                .iter()
                .all(|l| !l.is_empty() && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
            && labels.last().is_some_and(|tld| TLDS.contains(tld))
    };
    let is_address = if core.starts_with("http://") || core.starts_with("https://") {
        core.len() > 8
    } else if let Some(rest) = core.strip_prefix("www.") {
        rest.contains('.')
    } else if let Some((local, domain)) = core.split_once('@') {
        !local.is_empty()
            && local
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "._%+-".contains(c))
            && !domain.contains('@')
            && host_is_domain(domain)
    } else {
        // A bare domain (`cnn.com/world`): its top-level label written in lower case, so that
        // `end.It` (a missing space) is not one.
        let host = core.split('/').next().unwrap_or("");
        let tld_lower = original
            .split('/')
            .next()
            .and_then(|h| h.rsplit('.').next())
            .is_some_and(|t| !t.chars().any(char::is_uppercase));
        tld_lower && host_is_domain(host)
    };
    is_address.then_some((a, b))
}

/// Whether `tok` is a web or e-mail address as [`scan`] keeps whole.
pub(crate) fn is_address(tok: &str) -> bool {
    let chars: Vec<char> = tok.chars().collect();
    !chars.is_empty() && web_address(&chars, 0) == Some((0, chars.len()))
}

/// Whether `c` may follow an address without a space (it is not read as part of the address).
pub(crate) fn may_follow_address(c: char) -> bool {
    closing_punct(c) && !matches!(c, '\'' | '’')
}

/// Reads one word starting at `start` (a word character); returns the index after it.
fn word(chars: &[char], start: usize, out: &mut Vec<String>) -> usize {
    let n = chars.len();
    let wordc = |k: usize| k < n && is_word(chars[k]);
    let digit = |k: usize| k < n && chars[k].is_numeric();
    let mut i = start;
    loop {
        while wordc(i) {
            i += 1;
        }
        if i >= n || !wordc(i + 1) {
            break;
        }
        let c = chars[i];
        let two_digits = digit(i + 1) && digit(i + 2) && !digit(i + 3);
        if c == '-'
            || (matches!(c, '.' | ',' | '/') && digit(i - 1) && digit(i + 1))
            || (c == ':' && digit(i - 1) && two_digits)
        {
            i += 1;
            continue;
        }
        if is_apostrophe(c) {
            let mut j = i + 1;
            while wordc(j) {
                j += 1;
            }
            let rest = chars[i + 1..j].iter().collect::<String>().to_lowercase();
            let end_is_free = j >= n || !is_word(chars[j]);
            if end_is_free && rest == "t" && matches!(chars[i - 1], 'n' | 'N') && i - 1 > start {
                out.push(chars[start..i - 1].iter().collect());
                out.push(chars[i - 1..j].iter().collect());
                return j;
            }
            if end_is_free && CLITICS.contains(&rest.as_str()) {
                out.push(chars[start..i].iter().collect());
                out.push(chars[i..j].iter().collect());
                return j;
            }
            // A name such as o'neill: the apostrophe stays inside the word.
            i = j;
            continue;
        }
        break;
    }
    if i < n && chars[i] == '.' {
        if let Some(end) = abbreviation(chars, start, i) {
            out.push(chars[start..end].iter().collect());
            if sentence_ends_after(chars, start, end) {
                out.push(".".to_string());
            }
            return end;
        }
    }
    out.push(chars[start..i].iter().collect());
    i
}

/// When the word `chars[start..dot]` followed by the `.` at `dot` is an abbreviation, the index
/// after its last period.
fn abbreviation(chars: &[char], start: usize, dot: usize) -> Option<usize> {
    let n = chars.len();
    let letter = |k: usize| k < n && chars[k].is_alphabetic() && !is_cjk(chars[k]);
    if dot - start == 1 && letter(start) {
        // Letters joined by periods: `U.S.`, `e.g.`, `a.m.`.
        let mut end = dot;
        while end + 2 < n && chars[end] == '.' && letter(end + 1) && chars[end + 2] == '.' {
            end += 2;
        }
        if end > dot {
            return Some(end + 1);
        }
        // An initial (`J. K. Rowling`); not `I`.
        return (chars[start].is_uppercase() && chars[start] != 'I').then_some(dot + 1);
    }
    let w: String = chars[start..dot].iter().collect::<String>().to_lowercase();
    if TITLES.contains(&w.as_str()) || GENERAL.contains(&w.as_str()) {
        return Some(dot + 1);
    }
    if BEFORE_NUMBERS.contains(&w.as_str()) {
        let next = chars[dot + 1..].iter().take(3).find(|c| **c != ' ');
        return next.is_some_and(|c| c.is_ascii_digit()).then_some(dot + 1);
    }
    None
}

/// Whether the abbreviation `chars[start..end]` also ends its sentence: not a title or an
/// initial, and followed by the end of the text or by whitespace and a capital letter.
fn sentence_ends_after(chars: &[char], start: usize, end: usize) -> bool {
    let w: String = chars[start..end - 1]
        .iter()
        .collect::<String>()
        .to_lowercase();
    if TITLES.contains(&w.as_str()) || BEFORE_NUMBERS.contains(&w.as_str()) || end - start == 2 {
        return false;
    }
    let rest = &chars[end..];
    let spaces = rest.iter().take_while(|c| c.is_whitespace()).count();
    match rest.get(spaces) {
        None => true,
        Some(c) => spaces > 0 && c.is_uppercase(),
    }
}
