//! The two scorers' tokenizers.
//!
//! * rouge-score: `text.lower()` (full Unicode), every character outside ASCII `a-z0-9` is a
//!   separator, then tokens of 4+ characters are stemmed when asked. Only two non-ASCII code points
//!   lower-case to ASCII letters: `İ` (U+0130 → `i` + U+0307) and the Kelvin sign (U+212A → `k`).
//! * ROUGE-1.5.5: bytes; only ASCII is lower-cased; tokens are the ASCII alphanumeric runs.

/// Splits `text` into rouge-score's unstemmed tokens, calling `emit` for each.
pub fn rouge_score_words(text: &str, mut emit: impl FnMut(&str)) {
    let mut buf = String::new();
    for ch in text.chars() {
        let mapped = match ch {
            'a'..='z' | '0'..='9' => Some(ch),
            'A'..='Z' => Some(ch.to_ascii_lowercase()),
            '\u{130}' => Some('i'), // lower() gives "i\u{307}": an ASCII i, then a separator
            '\u{212A}' => Some('k'),
            _ => None,
        };
        match mapped {
            Some(c) => {
                buf.push(c);
                if ch == '\u{130}' {
                    emit(&buf);
                    buf.clear();
                }
            }
            None => {
                if !buf.is_empty() {
                    emit(&buf);
                    buf.clear();
                }
            }
        }
    }
    if !buf.is_empty() {
        emit(&buf);
    }
}

/// rouge-score's `tokenize(text, stemmer)`.
pub fn rouge_score_tokens(text: &str, stem: bool) -> Vec<String> {
    let mut out = Vec::new();
    rouge_score_words(text, |w| {
        out.push(if stem && w.len() > 3 {
            crate::stem::nltk_stem(w)
        } else {
            w.to_string()
        })
    });
    out
}

/// ROUGE-1.5.5's tokens of one line (bytes): lower-cased ASCII alphanumeric runs.
pub fn perl_words(line: &[u8]) -> Vec<String> {
    line.split(|b| !b.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(|w| w.iter().map(|b| b.to_ascii_lowercase() as char).collect())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rouge_score_tokenizer_keeps_only_ascii_alnum() {
        assert_eq!(
            rouge_score_tokens("Hello, World! It's 2024 -- café_x", false),
            vec!["hello", "world", "it", "s", "2024", "caf", "x"]
        );
        assert_eq!(
            rouge_score_tokens("\u{130}stanbul \u{212A}elvin", false),
            vec!["i", "stanbul", "kelvin"]
        );
        assert!(rouge_score_tokens("  …  ", true).is_empty());
    }

    #[test]
    fn perl_tokenizer_works_on_bytes() {
        assert_eq!(
            perl_words("Don't stop-me NOW, café".as_bytes()),
            vec!["don", "t", "stop", "me", "now", "caf"]
        );
        assert_eq!(perl_words("\u{130}".as_bytes()), Vec::<String>::new());
    }
}
