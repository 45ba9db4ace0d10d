//! Per-thread token interning for the rouge-score hot path: each distinct (stemmed) token becomes a
//! `u32`, so n-gram counting and LCS compare integers instead of strings, and a word is looked up in
//! the stemmer at most once per thread.

use std::cell::RefCell;

use rustc_hash::FxHashMap;

/// Distinct tokens kept per thread before the tables are reset (checked between pairs only, so
/// ids stay consistent within one pair).
const LIMIT: usize = 1 << 21;

#[derive(Default)]
pub struct Interner {
    ids: FxHashMap<Box<str>, u32>,
    /// Raw word → id of its stem (stemmed words only).
    stems: FxHashMap<Box<str>, u32>,
}

impl Interner {
    /// Id of `token` as is.
    pub fn id(&mut self, token: &str) -> u32 {
        if let Some(&i) = self.ids.get(token) {
            return i;
        }
        let i = self.ids.len() as u32;
        self.ids.insert(token.into(), i);
        i
    }

    /// Id of `stem(word)`, stemming each distinct word once.
    pub fn stemmed_id(&mut self, word: &str, stem: impl FnOnce(&str) -> String) -> u32 {
        if let Some(&i) = self.stems.get(word) {
            return i;
        }
        let i = self.id(&stem(word));
        self.stems.insert(word.into(), i);
        i
    }
}

thread_local! {
    static INTERNER: RefCell<Interner> = RefCell::new(Interner::default());
}

/// Runs `f` with this thread's interner; ids from one call may be compared with each other.
pub fn with_interner<R>(f: impl FnOnce(&mut Interner) -> R) -> R {
    INTERNER.with(|cell| {
        let mut it = cell.borrow_mut();
        if it.ids.len() > LIMIT || it.stems.len() > LIMIT {
            *it = Interner::default();
        }
        f(&mut it)
    })
}
