//! Long texts score in memory linear in their length: both scorers' LCS backtracks keep
//! `O(n·√n)` cells and ROUGE-1.5.5's skip-bigrams are never listed. A counting allocator
//! measures the peak heap of scoring two 4,000-word texts of distinct words (listing their
//! skip-bigrams took 1.8 GB, the whole LCS tables 64–210 MB).

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

struct Counting;

static NOW: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        let n = NOW.fetch_add(l.size(), Ordering::Relaxed) + l.size();
        PEAK.fetch_max(n, Ordering::Relaxed);
        System.alloc(l)
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        NOW.fetch_sub(l.size(), Ordering::Relaxed);
        System.dealloc(p, l)
    }
}

#[global_allocator]
static A: Counting = Counting;

/// Peak heap growth (bytes) while `f` runs.
fn peak_of(f: impl FnOnce()) -> usize {
    let base = NOW.load(Ordering::Relaxed);
    PEAK.store(base, Ordering::Relaxed);
    f();
    PEAK.load(Ordering::Relaxed) - base
}

fn text(words: usize, offset: usize) -> String {
    // Half the words shared between the texts, in another order; no sentence breaks.
    (0..words)
        .map(|i| format!("w{}", (i * 7919 + offset) % (2 * words)))
        .collect::<Vec<_>>()
        .join(" ")
}

#[test]
fn long_texts_score_in_linear_memory() {
    let (h, r) = (text(4000, 0), text(4000, 4000));
    let limit = 40 << 20;
    let peak = peak_of(|| {
        let s = abridge_rouge::rouge155::score(&h, &[&r], &Default::default());
        assert!(s.iter().any(|(n, _)| n == "ROUGE-SU*"));
    });
    assert!(peak < limit, "ROUGE-1.5.5 peaked at {} MB", peak >> 20);
    let peak = peak_of(|| {
        let scorer = abridge_rouge::RougeScorer::new(
            vec![abridge_rouge::RougeType::L, abridge_rouge::RougeType::Lsum],
            false,
        );
        scorer.score(&r, &h);
    });
    assert!(peak < limit, "rouge-score peaked at {} MB", peak >> 20);
}
