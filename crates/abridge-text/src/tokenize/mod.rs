//! Word-level tokenization for summarization, its inverse, and sentence splitting.
//!
//! [`Tokenizer::tokenize`] reads raw text (see [`scan`] for the rules) into
//! * words: runs of letters and digits in any script, keeping inner hyphens
//!   (`state-of-the-art`), inner apostrophes of names (`o'neill`) and the `.` `,` `:` `/` of
//!   numbers and times (`3.5`, `1,000`, `2:30pm`, `9/11`); Han characters and kana one each;
//! * web and e-mail addresses, and abbreviations with their period (`Dr.`, `U.S.`, `ext.`), whole;
//! * English clitics split off as the Penn Treebank does: `don't → do n't`, `john's → john 's`,
//!   also `'re 've 'll 'd 'm`;
//! * punctuation and symbols, one character each, except `...`, `--`, and the PTB quotes ``` `` ``` / `''`;
//! * a `.` where a paragraph or list item ends without final punctuation (list markers dropped).
//!
//! [`detokenize`] turns tokens back into readable text (PTB bracket forms `-lrb-` … and quotes
//! included) such that tokenizing its output gives the tokens again. Already-tokenized corpora (such
//! as the CNN/DailyMail files) pass through with `pretokenized` (whitespace split only).
//! The tokenizer's time is linear in its input.

mod detok;
pub mod scan;

pub use detok::{detokenize, detokenize_lines, split_sentences};

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

/// The longest token, in characters: a longer run (a megabyte without a space) is cut into
/// pieces of this length, so that no token — and no summary copying one — is unboundedly large.
pub const MAX_TOKEN_CHARS: usize = 256;

/// Cuts the tokens from `first` on that are longer than [`MAX_TOKEN_CHARS`] into pieces.
fn cut_long_tokens(out: &mut Vec<String>, first: usize) {
    if out[first..].iter().all(|t| t.len() <= MAX_TOKEN_CHARS) {
        return;
    }
    let tail = out.split_off(first);
    for t in tail {
        if t.len() <= MAX_TOKEN_CHARS {
            out.push(t);
            continue;
        }
        let chars: Vec<char> = t.chars().collect();
        out.extend(
            chars
                .chunks(MAX_TOKEN_CHARS)
                .map(|c| c.iter().collect::<String>()),
        );
    }
}

impl Tokenizer {
    /// Appends the tokens of `text` to `out`.
    pub fn tokenize_into(&self, text: &str, out: &mut Vec<String>) {
        let first = out.len();
        if self.pretokenized {
            out.extend(text.split_whitespace().map(str::to_string));
        } else {
            let chars: Vec<char> = text.chars().collect();
            scan::scan(&chars, out);
        }
        if self.lowercase {
            for t in &mut out[first..] {
                if t.chars().any(char::is_uppercase) {
                    *t = t.to_lowercase();
                }
            }
        }
        // After lower-casing, which can lengthen a word (`İ` becomes two characters).
        cut_long_tokens(out, first);
    }

    pub fn tokenize(&self, text: &str) -> Vec<String> {
        let mut v = Vec::new();
        self.tokenize_into(text, &mut v);
        v
    }
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
            ["Zürich", ",", "東", "京", "and", "café", "."]
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

    #[test]
    fn addresses_times_money_and_abbreviations_stay_whole() {
        assert_eq!(
            toks("See https://example.com/en/press-releases?id=7, or www.example.org."),
            [
                "See",
                "https://example.com/en/press-releases?id=7",
                ",",
                "or",
                "www.example.org",
                "."
            ]
        );
        assert_eq!(
            toks("Mail Jane.Doe@corp.example.com (cnn.com/world)."),
            [
                "Mail",
                "Jane.Doe@corp.example.com",
                "(",
                "cnn.com/world",
                ")",
                "."
            ]
        );
        assert_eq!(
            toks("At 2:30pm on 9/11, €2.3 and 5km."),
            ["At", "2:30pm", "on", "9/11", ",", "€", "2.3", "and", "5km", "."]
        );
        assert_eq!(
            toks("Call Dr. Smith (ext. 5512) at 9 a.m. about No. 5, e.g. the U.S. plan."),
            [
                "Call", "Dr.", "Smith", "(", "ext.", "5512", ")", "at", "9", "a.m.", "about",
                "No.", "5", ",", "e.g.", "the", "U.S.", "plan", "."
            ]
        );
        // A sentence-final abbreviation gets the PTB's extra period; a title never ends one.
        assert_eq!(
            toks("It grew in the U.S. Then it fell."),
            ["It", "grew", "in", "the", "U.S.", ".", "Then", "it", "fell", "."]
        );
        assert_eq!(
            toks("He met George W. Bush."),
            ["He", "met", "George", "W.", "Bush", "."]
        );
        assert_eq!(toks("Thanks.It works"), ["Thanks", ".", "It", "works"]);
        assert_eq!(
            toks("Say no. Then go."),
            ["Say", "no", ".", "Then", "go", "."]
        );
    }

    #[test]
    fn paragraphs_and_list_items_end_sentences() {
        assert_eq!(
            toks("Agenda\n\n- budget review\n- hiring plan\n* 3 new desks\n1. Lunch\nHi John,\n\nThanks"),
            [
                "Agenda", ".", "budget", "review", ".", "hiring", "plan", ".", "3", "new", "desks",
                ".", "Lunch", "Hi", "John", ",", "Thanks"
            ]
        );
        // A line break inside a paragraph is only a space; a dash inside a line is a dash.
        assert_eq!(toks("one\ntwo - three"), ["one", "two", "-", "three"]);
    }

    #[test]
    fn cjk_characters_are_tokens_and_print_without_spaces() {
        assert_eq!(
            toks("東京は大きい。"),
            ["東", "京", "は", "大", "き", "い", "。"]
        );
        assert_eq!(
            detokenize(&toks("東京は大きい。人が多い。")),
            "東京は大きい。人が多い。"
        );
        assert_eq!(split_sentences(&toks("東京。大阪。")).len(), 2);
    }

    #[test]
    fn detokenize_restores_surface_forms() {
        let t = |s: &str| detokenize(&toks(s));
        for s in [
            "At 2:30pm, €2.3 and £5 went to https://example.com/a?b=1.",
            "Call Dr. Smith (ext. 5512) at 9 a.m. in the U.S.",
            "Mail jane.doe@example.com today.",
        ] {
            assert_eq!(t(s), s);
        }
    }

    /// Long runs of each special character take linear time (they once took quadratic).
    #[test]
    fn long_runs_tokenize_quickly() {
        for c in ['-', '\'', '`', '.', 'a', '@', '/', ':', '(', '\n'] {
            let text: String = std::iter::repeat_n(c, 200_000).collect();
            let start = std::time::Instant::now();
            let t = toks(&text);
            assert!(t.len() <= 200_000);
            assert!(
                t.iter().all(|t| t.chars().count() <= MAX_TOKEN_CHARS),
                "{c:?}"
            );
            assert!(
                start.elapsed().as_secs_f64() < 5.0,
                "{c:?}: {:?}",
                start.elapsed()
            );
        }
    }
}
