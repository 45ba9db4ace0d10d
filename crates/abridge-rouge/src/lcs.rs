//! Longest common subsequences: the plain LCS with the reference scorers' backtrack, the
//! summary-level union LCS, and ROUGE-1.5.5's weighted LCS.

use std::hash::Hash;

use rustc_hash::FxHashMap;

/// `(|a|+1) × (|b|+1)` dynamic-programming table of LCS lengths, row-major.
pub fn lcs_table<T: Eq>(a: &[T], b: &[T]) -> Vec<u32> {
    let mut t = Vec::new();
    lcs_table_into(a, b, &mut t);
    t
}

/// [`lcs_table`] into a reused buffer.
fn lcs_table_into<T: Eq>(a: &[T], b: &[T], t: &mut Vec<u32>) {
    let w = b.len() + 1;
    t.clear();
    t.resize((a.len() + 1) * w, 0);
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            t[i * w + j] = if a[i - 1] == b[j - 1] {
                t[(i - 1) * w + j - 1] + 1
            } else {
                t[(i - 1) * w + j].max(t[i * w + j - 1])
            };
        }
    }
}

/// Length of the LCS, in `O(|b|)` memory.
pub fn lcs_len<T: Eq>(a: &[T], b: &[T]) -> usize {
    let mut prev = vec![0u32; b.len() + 1];
    let mut cur = vec![0u32; b.len() + 1];
    for x in a {
        for (j, y) in b.iter().enumerate() {
            cur[j + 1] = if x == y {
                prev[j] + 1
            } else {
                prev[j + 1].max(cur[j])
            };
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()] as usize
}

/// Indices into `reference` of one LCS with `candidate`, backtracked from the end: diagonal on a
/// match, else left only if strictly larger, else up (rouge-score's `_backtrack_norec` and
/// ROUGE-1.5.5's `markLCS` take the same path). Returned in descending order.
pub fn lcs_indices<T: Eq>(reference: &[T], candidate: &[T]) -> Vec<usize> {
    let (mut table, mut out) = (Vec::new(), Vec::new());
    lcs_indices_into(reference, candidate, &mut table, &mut out);
    out
}

/// [`lcs_indices`] with reused buffers (`out` is cleared first).
fn lcs_indices_into<T: Eq>(
    reference: &[T],
    candidate: &[T],
    t: &mut Vec<u32>,
    out: &mut Vec<usize>,
) {
    lcs_table_into(reference, candidate, t);
    out.clear();
    let w = candidate.len() + 1;
    let (mut i, mut j) = (reference.len(), candidate.len());
    while i > 0 && j > 0 {
        if reference[i - 1] == candidate[j - 1] {
            out.push(i - 1);
            i -= 1;
            j -= 1;
        } else if t[i * w + j - 1] > t[(i - 1) * w + j] {
            j -= 1;
        } else {
            i -= 1;
        }
    }
}

/// Counts of each token.
pub fn counts<'a, T: Eq + Hash + 'a>(
    tokens: impl IntoIterator<Item = &'a T>,
) -> FxHashMap<&'a T, i64> {
    let mut m = FxHashMap::default();
    for t in tokens {
        *m.entry(t).or_insert(0) += 1;
    }
    m
}

/// Summary-level union-LCS hits (rouge-score's rougeLsum, ROUGE-1.5.5's ROUGE-L): for each reference
/// sentence the union of its LCS positions against every candidate sentence, taken in ascending order
/// and clipped by the remaining unigram counts of both whole texts.
pub fn union_lcs_hits<T: Eq + Hash>(ref_sents: &[&[T]], cand_sents: &[&[T]]) -> usize {
    let mut rc = counts(ref_sents.iter().flat_map(|s| s.iter()));
    let mut cc = counts(cand_sents.iter().flat_map(|s| s.iter()));
    let (mut table, mut idx, mut mask) = (Vec::new(), Vec::new(), Vec::new());
    let mut hits = 0;
    for r in ref_sents {
        mask.clear();
        mask.resize(r.len(), false);
        for c in cand_sents {
            lcs_indices_into(r, c, &mut table, &mut idx);
            idx.iter().for_each(|&i| mask[i] = true);
        }
        for (i, tok) in r.iter().enumerate() {
            if !mask[i] {
                continue;
            }
            if let (Some(a), Some(b)) = (rc.get_mut(tok), cc.get_mut(tok)) {
                if *a > 0 && *b > 0 {
                    hits += 1;
                    *a -= 1;
                    *b -= 1;
                }
            }
        }
    }
    hits
}

/// Marks into `mask` the reference positions hit by ROUGE-1.5.5's weighted-LCS backtrack
/// (`wlcs_inner`), whose tie-breaks differ from the plain LCS: up when `c[i-1][j] ≥ c[i][j-1]`.
pub fn mark_weighted_lcs<T: Eq>(reference: &[T], candidate: &[T], mask: &mut [bool], weight: f64) {
    let (m, n) = (reference.len(), candidate.len());
    if m == 0 {
        return;
    }
    let w = n + 1;
    let mut c = vec![0.0f64; (m + 1) * w];
    let mut l = vec![0u32; (m + 1) * w];
    let mut b = vec![0u8; (m + 1) * w];
    for i in 1..=m {
        for j in 1..=n {
            let (ij, up, left, diag) = (
                i * w + j,
                (i - 1) * w + j,
                i * w + j - 1,
                (i - 1) * w + j - 1,
            );
            if reference[i - 1] == candidate[j - 1] {
                let k = l[diag] as f64;
                c[ij] = c[diag] + (k + 1.0).powf(weight) - k.powf(weight);
                b[ij] = 1;
                l[ij] = l[diag] + 1;
            } else if c[up] >= c[left] {
                c[ij] = c[up];
                b[ij] = 2;
            } else {
                c[ij] = c[left];
                b[ij] = 3;
            }
        }
    }
    let (mut i, mut j) = (m, n);
    while i != 0 && j != 0 {
        match b[i * w + j] {
            1 => {
                i -= 1;
                j -= 1;
                mask[i] = true;
            }
            2 => i -= 1,
            _ => j -= 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lcs_basics() {
        let a: Vec<char> = "abcbdab".chars().collect();
        let b: Vec<char> = "bdcaba".chars().collect();
        assert_eq!(lcs_len(&a, &b), 4);
        let t = lcs_table(&a, &b);
        assert_eq!(t[t.len() - 1], 4);
        let idx = lcs_indices(&a, &b);
        assert_eq!(idx.len(), 4);
        assert!(idx.windows(2).all(|w| w[0] > w[1]));
        assert_eq!(lcs_len::<char>(&[], &b), 0);
    }
}
