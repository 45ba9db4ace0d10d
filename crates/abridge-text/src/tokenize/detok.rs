//! Tokens back to readable text, and sentence splitting.

use super::scan::{ends_sentence, is_address, is_cjk, may_follow_address, CLITICS};

/// Penn Treebank escapes and their readable forms.
fn unescape(tok: &str) -> &str {
    match tok {
        "-lrb-" | "-LRB-" => "(",
        "-rrb-" | "-RRB-" => ")",
        "-lsb-" | "-LSB-" => "[",
        "-rsb-" | "-RSB-" => "]",
        "-lcb-" | "-LCB-" => "{",
        "-rcb-" | "-RCB-" => "}",
        _ => tok,
    }
}

fn no_space_before(tok: &str) -> bool {
    matches!(
        tok,
        "," | "." | "!" | "?" | ";" | ":" | "%" | ")" | "]" | "}" | "..." | "''"
    ) || tok.starts_with(['\'', '’'])
        && tok.len() > 1
        && tok[1..].chars().all(char::is_alphabetic)
        && {
            let rest = tok[tok.chars().next().unwrap().len_utf8()..].to_lowercase();
            CLITICS.contains(&rest.as_str())
        }
        || tok.eq_ignore_ascii_case("n't")
        || tok.eq_ignore_ascii_case("n’t")
}

/// Currency symbols, written against the amount that follows (`$5`, `€2.3`).
fn is_currency(tok: &str) -> bool {
    matches!(
        tok,
        "$" | "€" | "£" | "¥" | "₹" | "₩" | "₽" | "¢" | "₿" | "₺" | "₪" | "₫"
    )
}

fn no_space_after(tok: &str) -> bool {
    matches!(tok, "(" | "[" | "{" | "``" | "#") || is_currency(tok)
}

/// An abbreviation token with its period (`u.s.`, `dr.`): a `.` token right after it is the
/// sentence end the Penn Treebank writes separately, printed as the same period.
fn ends_in_abbreviation_period(tok: &str) -> bool {
    tok.len() > 1 && tok.ends_with('.') && tok.chars().any(char::is_alphabetic)
}

/// Characters written without spaces around them: CJK text and full-width punctuation.
fn is_cjk_like(c: char) -> bool {
    is_cjk(c) || matches!(c as u32, 0x3000..=0x303F | 0xFF00..=0xFFEF)
}

/// Joins tokens into readable text: no space before closing punctuation and clitics, none after
/// opening brackets, currency symbols and opening quotes, none between CJK characters; PTB
/// `-lrb-` etc. and ``` `` ``` / `''` become brackets and `"`, PTB's single quotes `` ` `` … `'`
/// become `'…'`; plain `"` tokens alternate between opening and closing; a `.` after an
/// abbreviation's own period is not printed twice.
pub fn detokenize<S: AsRef<str>>(tokens: &[S]) -> String {
    let mut out = String::new();
    let mut glue_next = true; // no space before the first token
    let mut open_quote = false;
    let mut prev: &str = "";
    // Only closing punctuation is written against an address (else it would be read as part of
    // it): whether the text since the last space is an address and such punctuation.
    let mut in_address = false;
    for t in tokens {
        let raw = t.as_ref();
        if raw == "." && ends_in_abbreviation_period(prev) {
            prev = raw;
            continue;
        }
        prev = raw;
        let tok = unescape(raw);
        let (text, glue_before, glue_after) = match raw {
            "``" => ("\"", false, true),
            "''" => ("\"", true, false),
            // PTB single quotes: `` ` `` opens, `'` closes (or is a plural possessive, `parents'`).
            "`" => ("'", false, true),
            "'" => ("'", true, false),
            "\"" => {
                open_quote = !open_quote;
                ("\"", !open_quote, open_quote)
            }
            _ => (tok, no_space_before(tok), no_space_after(tok)),
        };
        let (last, first) = (out.chars().last(), text.chars().next());
        // Gluing `.` to `...` (or `-` to `--`) would make one token of two.
        let would_merge =
            matches!((last, first), (Some(a), Some(b)) if a == b && ".-`'".contains(a));
        // CJK text is written without spaces, numbers in it included.
        let cjk = matches!((last, first), (Some(a), Some(b))
            if (is_cjk_like(a) || a.is_ascii_digit()) && (is_cjk_like(b) || b.is_ascii_digit())
                && (is_cjk_like(a) || is_cjk_like(b)))
            && !is_address(raw);
        let address_gap = in_address && !text.chars().all(may_follow_address);
        let space = (!glue_next && !glue_before && !cjk) || would_merge || address_gap;
        if space {
            out.push(' ');
        }
        in_address = is_address(raw) || (in_address && !space);
        out.push_str(text);
        glue_next = glue_after;
    }
    out
}

/// Splits a token sequence into sentences after `.`, `!`, `?`, `...` or `。！？` (and any
/// closing quotes or brackets right after them). An abbreviation's period (`Dr.`) is part of its
/// token and does not split.
pub fn split_sentences<S: AsRef<str> + Clone>(tokens: &[S]) -> Vec<Vec<S>> {
    let mut out = Vec::new();
    let mut cur = Vec::new();
    let mut ended = false;
    for t in tokens {
        let s = unescape(t.as_ref());
        if ended && !matches!(s, "''" | "\"" | "'" | ")" | "]" | "}" | "」" | "』" | "）") {
            out.push(std::mem::take(&mut cur));
            ended = false;
        }
        cur.push(t.clone());
        if ends_sentence(s) {
            ended = true;
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// Readable text with one sentence per line (the `\n`-separated form ROUGE-Lsum needs).
pub fn detokenize_lines<S: AsRef<str> + Clone>(tokens: &[S]) -> String {
    split_sentences(tokens)
        .iter()
        .map(|s| detokenize(s))
        .collect::<Vec<_>>()
        .join("\n")
}
