//! Checks over the real files in `../shared/data` (skipped with a message when absent).

use abridge_text::embeddings::{EmbFormat, Embeddings};

#[test]
fn glove_6b_50d_loads_and_has_sensible_neighbours() {
    let Some(p) = abridge_testkit::shared_or_skip(
        "data/glove/glove.6B.50d.top100k.txt.zst",
        "glove_6b_50d_loads_and_has_sensible_neighbours",
    ) else {
        return;
    };
    let e = Embeddings::load(&p, EmbFormat::Glove, None).unwrap();
    assert_eq!((e.words.len(), e.dim), (100_000, 50));
    assert_eq!(e.words[0], "the");
    let nn: Vec<String> = e
        .neighbors("king", 5)
        .unwrap()
        .into_iter()
        .map(|(w, _)| w)
        .collect();
    assert!(
        nn.contains(&"queen".to_string()) && nn.contains(&"prince".to_string()),
        "{nn:?}"
    );
}
