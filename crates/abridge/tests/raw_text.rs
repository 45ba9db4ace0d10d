//! Raw documents as users paste them (news, an e-mail, a bulleted list, Russian, Japanese):
//! what the tokenizer reads, what the detokenizer prints, and the bundled model's exact
//! summaries — cased as in the document, with addresses, times, amounts and abbreviations intact.

use abridge::{DecodeOptions, Summarizer};
use abridge_text::tokenize::{detokenize_lines, Tokenizer};

fn doc(name: &str) -> String {
    let p = format!("{}/tests/raw/{name}.txt", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{p}: {e}"))
}

/// Tokenized and printed back, one sentence per line: the document's own text, with list
/// markers dropped and paragraphs and items ended.
#[test]
fn raw_documents_read_and_print_back_intact() {
    let t = Tokenizer::default();
    let cases = [
        (
            "news",
            "LONDON (Reuters) - Shares of Acme Corp. rose 12% to €2.3 billion in early trading on Tuesday after the U.S. regulator approved its new drug, the company said at 2:30pm.\n\
             Dr. Jane Smith, the company's chief executive, said the approval \"changes everything\" for patients.\n\
             Details are at https://www.acme.example.com/en/press-releases/2026-11-27.\n\
             Analysts at Morgan Stanley raised their price target to $45 from $38.\n\
             The drug, known as AX-17, treats a rare form of leukemia and will cost about $120,000 a year.",
        ),
        (
            "email",
            "Hi team, The budget review meeting has moved to Thursday, Oct. 30 at 2:30pm in room 4B (ext. 5512).\n\
             Please send your slides to jane.doe@example.com by Wednesday noon.\n\
             We will cover the Q3 numbers, the hiring plan and the new travel policy.\n\
             If you cannot attend, call me at 555-0123.\n\
             Thanks, Jane",
        ),
        (
            "list",
            "Release notes for version 2.4.\n\
             Faster start-up: the index now loads in 40% less time.\n\
             New export to CSV and JSON formats.\n\
             Fixed a crash when opening files larger than 2 GB.\n\
             Dropped support for Windows 7.\n\
             Upgrade with the installer from www.example.org/download before Dec. 31.",
        ),
        (
            "ru",
            "Москва — столица России.\n\
             В городе живут более 13 миллионов человек.\n\
             Мэр объявил о строительстве новой линии метро.",
        ),
        (
            "ja",
            "東京都は27日、新しい図書館を開館すると発表した。\n図書館には1万2千冊の本がある。\n開館は来年4月の予定だ。",
        ),
    ];
    for (name, expected) in cases {
        let tokens = t.tokenize(&doc(name));
        assert_eq!(detokenize_lines(&tokens), expected, "{name}: {tokens:?}");
    }
}

/// The bundled model's summaries of the raw documents, exactly (default settings, one thread).
#[test]
fn bundled_model_summaries_of_raw_documents() {
    if !abridge::HAS_BUNDLED_MODEL {
        return;
    }
    let m = Summarizer::bundled().unwrap();
    let cases = [
        (
            "news",
            "Shares of Acme Corp. rose 12% to €2.3 billion in early trading on Tuesday.\n\
             Analysts at Morgan Stanley raised their price target to $45 from $38.\n\
             The drug, treats a rare form of leukemia and will cost about $120,000 a year.",
        ),
        (
            "email",
            "Budget review meeting has moved to Thursday, Oct. 30 at 2:30pm in room 4B (ext. 5512).\n\
             Please send your slides to jane.doe@example.com by Wednesday noon.\n\
             We will cover the Q3 numbers, the hiring plan and the new travel policy.",
        ),
        (
            "list",
            "The index now loads in 40% less time.\n\
             Fixed a crash opening files larger than 2 GB.\n\
             Upgrade with the installer from www.example.org/download and JSON formats.",
        ),
    ];
    for (name, expected) in cases {
        let text = doc(name);
        let s = abridge::with_threads(1, || m.summarize(&text, &DecodeOptions::new())).unwrap();
        assert_eq!(s.text, expected, "{name}");
        assert_eq!(s.one_line(), expected.replace('\n', " "));
        assert!(m.vocabulary_warning(&text).is_none(), "{name}");
    }
    // Text in a language the model does not know: a warning says so.
    for name in ["ru", "ja"] {
        let w = m.vocabulary_warning(&doc(name)).expect(name);
        assert!(w.contains("outside this model's vocabulary"), "{w}");
    }
}

/// A short document is not padded into a longer invented text: the minimum length is capped at
/// a quarter of the document, the maximum at its length.
#[test]
fn short_documents_get_short_summaries() {
    assert_eq!(abridge::capped_lengths(50, 100, 800), (50, 100));
    assert_eq!(abridge::capped_lengths(50, 100, 83), (20, 83));
    assert_eq!(abridge::capped_lengths(50, 100, 2), (1, 2));
    assert_eq!(abridge::capped_lengths(50, 100, 0), (1, 1));
    if !abridge::HAS_BUNDLED_MODEL {
        return;
    }
    let m = Summarizer::bundled().unwrap();
    let text = "The council approved the new budget on Monday. It raises school spending by 4%.";
    let s = abridge::with_threads(1, || m.summarize(text, &DecodeOptions::new())).unwrap();
    assert!(s.tokens.len() <= 17, "{:?}", s.tokens);
}
