//! Word-level tokenization for summarization, its inverse, and sentence splitting.
//!
//! [`Tokenizer::tokenize`] splits on whitespace, then into
//! * words: runs of letters and digits in any script (`char::is_alphanumeric`), keeping inner
//!   hyphens (`state-of-the-art`), inner apostrophes of names (`o'neill`) and the `.`/`,` of numbers
//!   (`3.5`, `1,000`);
//! * English clitics split off as the Penn Treebank does: `don't → do n't`, `john's → john 's`,
//!   also `'re 've 'll 'd 'm`;
//! * punctuation and symbols, one character each, except `...`, `--`, and the PTB quotes ``` `` ``` / `''`.
//!
//! [`detokenize`] turns tokens back into readable text (PTB bracket forms `-lrb-` … and quotes
//! included) such that tokenizing its output gives the tokens again. Already-tokenized corpora (such
//! as the CNN/DailyMail files) pass through with `pretokenized` (whitespace split only).

/// Rewrites brackets and double quotes into the Penn Treebank forms that corpora such as
/// CNN/DailyMail (See et al.'s preprocessing) use: `( ) [ ] { }` → `-lrb- -rrb- -lsb- -rsb- -lcb-
/// -rcb-`, `“ ”` → ``` `` ``` `''`, and a straight `"` alternately opening and closing.
pub fn to_ptb(tokens: &mut [String]) {
    let mut open = false;
    for t in tokens.iter_mut() {
        let r = match t.as_str() {
            "(" => "-lrb-",
            ")" => "-rrb-",
            "[" => "-lsb-",
            "]" => "-rsb-",
            "{" => "-lcb-",
            "}" => "-rcb-",
            "\u{201c}" => "``",
            "\u{201d}" => "''",
            "\"" => {
                open = !open;
                if open {
                    "``"
                } else {
                    "''"
                }
            }
            _ => continue,
        };
        *t = r.to_string();
    }
}

/// Tokenizer settings.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Tokenizer {
    /// Lower-case everything (Unicode-aware).
    pub lowercase: bool,
    /// The text is already tokenized: split on whitespace only.
    pub pretokenized: bool,
}

const CLITICS: [&str; 6] = ["s", "re", "ve", "ll", "d", "m"];

fn is_apostrophe(c: char) -> bool {
    c == '\'' || c == '’'
}

impl Tokenizer {
    /// Appends the tokens of `text` to `out`.
    pub fn tokenize_into(&self, text: &str, out: &mut Vec<String>) {
        let lowered;
        let text = if self.lowercase && text.chars().any(char::is_uppercase) {
            lowered = text.to_lowercase();
            lowered.as_str()
        } else {
            text
        };
        if self.pretokenized {
            out.extend(text.split_whitespace().map(str::to_string));
            return;
        }
        let chars: Vec<char> = text.chars().collect();
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            if c.is_whitespace() {
                i += 1;
            } else if c.is_alphanumeric() {
                i = word(&chars, i, out);
            } else {
                let start = i;
                let run = |ch: char, n: usize| {
                    chars[start..].iter().take_while(|&&x| x == ch).count() >= n
                };
                let len = if c == '.' && run('.', 3) {
                    chars[start..].iter().take_while(|&&x| x == '.').count()
                } else if (c == '-' && run('-', 2))
                    || (c == '`' && run('`', 2))
                    || (c == '\'' && run('\'', 2))
                {
                    2
                } else {
                    1
                };
                out.push(chars[start..start + len].iter().collect());
                i += len;
            }
        }
    }

    pub fn tokenize(&self, text: &str) -> Vec<String> {
        let mut v = Vec::new();
        self.tokenize_into(text, &mut v);
        v
    }
}

/// Reads one word starting at `start`; returns the index after it.
fn word(chars: &[char], start: usize, out: &mut Vec<String>) -> usize {
    let alnum = |k: usize| k < chars.len() && chars[k].is_alphanumeric();
    let digit = |k: usize| k < chars.len() && chars[k].is_numeric();
    let mut i = start;
    loop {
        while alnum(i) {
            i += 1;
        }
        if i >= chars.len() || !alnum(i + 1) {
            break;
        }
        let c = chars[i];
        if c == '-' || ((c == '.' || c == ',') && digit(i - 1) && digit(i + 1)) {
            i += 1;
            continue;
        }
        if is_apostrophe(c) {
            let mut j = i + 1;
            while alnum(j) {
                j += 1;
            }
            let rest: String = chars[i + 1..j].iter().collect::<String>();
            let rest_l = rest.to_lowercase();
            let end_is_free = j >= chars.len() || !chars[j].is_alphanumeric();
            if end_is_free
                && rest_l == "t"
                && i > start
                && matches!(chars[i - 1], 'n' | 'N')
                && i - 1 > start
            {
                out.push(chars[start..i - 1].iter().collect());
                out.push(chars[i - 1..j].iter().collect());
                return j;
            }
            if end_is_free && CLITICS.contains(&rest_l.as_str()) {
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
    out.push(chars[start..i].iter().collect());
    i
}

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

fn no_space_after(tok: &str) -> bool {
    matches!(tok, "(" | "[" | "{" | "$" | "#" | "``")
}

/// Joins tokens into readable text: no space before closing punctuation and clitics, none after
/// opening brackets, `$` and opening quotes; PTB `-lrb-` etc. and ``` `` ``` / `''` become brackets
/// and `"`, PTB's single quotes `` ` `` … `'` become `'…'`; plain `"` tokens alternate between
/// opening and closing.
pub fn detokenize<S: AsRef<str>>(tokens: &[S]) -> String {
    let mut out = String::new();
    let mut glue_next = true; // no space before the first token
    let mut open_quote = false;
    for t in tokens {
        let raw = t.as_ref();
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
        // Gluing `.` to `...` (or `-` to `--`) would make one token of two.
        let would_merge = matches!((out.chars().last(), text.chars().next()), (Some(a), Some(b)) if a == b && ".-`'".contains(a));
        if (!glue_next && !glue_before) || would_merge {
            out.push(' ');
        }
        out.push_str(text);
        glue_next = glue_after;
    }
    out
}

/// Splits a token sequence into sentences after `.`, `!`, `?` or `...` (and any closing quotes or
/// brackets right after them).
pub fn split_sentences<S: AsRef<str> + Clone>(tokens: &[S]) -> Vec<Vec<S>> {
    let mut out = Vec::new();
    let mut cur = Vec::new();
    let mut ended = false;
    for t in tokens {
        let s = unescape(t.as_ref());
        if ended && !matches!(s, "''" | "\"" | "'" | ")" | "]" | "}") {
            out.push(std::mem::take(&mut cur));
            ended = false;
        }
        cur.push(t.clone());
        if matches!(s, "." | "!" | "?" | "...") {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ptb_single_quotes_close_up() {
        let toks = [
            "he", "called", "it", "`", "a", "disaster", "'", "for", "the", "parents", "'", "club",
            ".",
        ];
        assert_eq!(
            detokenize(&toks),
            "he called it 'a disaster' for the parents' club."
        );
    }

    #[test]
    fn ptb_forms_for_brackets_and_quotes() {
        let t = Tokenizer::default();
        let mut toks = t.tokenize("He said \"no (really)\" and \u{201c}yes\u{201d} [sic].");
        to_ptb(&mut toks);
        assert_eq!(
            toks.join(" "),
            "He said `` no -lrb- really -rrb- '' and `` yes '' -lsb- sic -rsb- ."
        );
        assert_eq!(
            detokenize(&toks),
            "He said \"no (really)\" and \"yes\" [sic]."
        );
    }

    fn toks(s: &str) -> Vec<String> {
        Tokenizer::default().tokenize(s)
    }

    #[test]
    fn words_numbers_punctuation_and_clitics() {
        assert_eq!(
            toks("Don't stop: it's 3.5% of $1,000..."),
            ["Do", "n't", "stop", ":", "it", "'s", "3.5", "%", "of", "$", "1,000", "..."]
        );
        assert_eq!(
            toks("O'Neill's state-of-the-art (new) plan -- really?"),
            [
                "O'Neill",
                "'s",
                "state-of-the-art",
                "(",
                "new",
                ")",
                "plan",
                "--",
                "really",
                "?"
            ]
        );
        assert_eq!(
            toks("Zürich, 東京 and café."),
            ["Zürich", ",", "東京", "and", "café", "."]
        );
        assert_eq!(
            toks("they're here, we've won, I'm in"),
            ["they", "'re", "here", ",", "we", "'ve", "won", ",", "I", "'m", "in"]
        );
        assert!(toks("   ").is_empty());
    }

    #[test]
    fn lowercase_and_pretokenized() {
        let t = Tokenizer {
            lowercase: true,
            pretokenized: true,
        };
        assert_eq!(
            t.tokenize("The  -LRB- CNN -RRB- said ."),
            ["the", "-lrb-", "cnn", "-rrb-", "said", "."]
        );
    }

    #[test]
    fn detokenize_makes_readable_text() {
        let t = [
            "the", "-lrb-", "cnn", "-rrb-", "said", "``", "it", "'s", "fine", ",", "''", "did",
            "n't", "it", "?",
        ];
        assert_eq!(detokenize(&t), "the (cnn) said \"it's fine,\" didn't it?");
        assert_eq!(
            detokenize(&["he", "paid", "$", "5", "for", "\"", "x", "\"", "."]),
            "he paid $5 for \"x\"."
        );
    }

    #[test]
    fn sentences_split_after_final_punctuation() {
        let t = ["a", "b", ".", "''", "c", "!", "d"];
        let s = split_sentences(&t);
        assert_eq!(
            s,
            vec![vec!["a", "b", ".", "''"], vec!["c", "!"], vec!["d"]]
        );
        assert_eq!(detokenize_lines(&t), "a b.\"\nc!\nd");
    }
}
