//! Longest common subsequences: the plain LCS with the reference scorers' backtrack, the
//! summary-level union LCS, and ROUGE-1.5.5's weighted LCS.

use std::hash::Hash;

use rustc_hash::FxHashMap;

/// `(|a|+1) × (|b|+1)` dynamic-programming table of LCS lengths, row-major (the slow reference
/// the checkpointed backtrack is tested against).
pub fn lcs_table<T: Eq>(a: &[T], b: &[T]) -> Vec<u32> {
    let w = b.len() + 1;
    let mut t = vec![0; (a.len() + 1) * w];
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            t[i * w + j] = if a[i - 1] == b[j - 1] {
                t[(i - 1) * w + j - 1] + 1
            } else {
                t[(i - 1) * w + j].max(t[i * w + j - 1])
            };
        }
    }
    t
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

/// A step of a backtrack through an alignment table.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Move {
    Diagonal,
    Up,
    Left,
}

/// A dynamic program over a `(rows+1) × (cols+1)` table filled row by row, each row from the one
/// above, whose backtrack from the bottom-right corner decides each move from the two rows it
/// stands between.
trait RowProgram {
    /// One row's values.
    type Row: Clone;
    /// Row 0 over `cols + 1` columns.
    fn first_row(&self, cols: usize) -> Self::Row;
    /// Row `i ≥ 1` from row `i-1`, columns `0..=upto` only (later ones are left as they are).
    fn next_row(&self, i: usize, above: &Self::Row, row: &mut Self::Row, upto: usize);
    /// The backtrack's move at cell `(i, j)`, both `≥ 1`.
    fn choose(&self, i: usize, j: usize, above: &Self::Row, row: &Self::Row) -> Move;
}

/// Tables up to this many cells are kept whole during a backtrack; larger ones are recomputed in
/// blocks of rows from checkpoints.
const WHOLE_TABLE_CELLS: usize = 1 << 20;

/// Backtracks `p` over `rows × cols` from the bottom-right corner, calling `hit(i-1, j-1)` at each
/// diagonal move, in `O(cols·√rows)` memory: the forward pass keeps every `k`-th row
/// (`k ≈ √rows`), and the backtrack recomputes one block of `k` rows at a time from its
/// checkpoint, only up to the column it has reached. The moves are exactly the whole table's
/// (the same arithmetic, in the same order); the time is at most twice a single pass. Tables of
/// at most `whole_cells` cells are one block (a single pass).
fn backtrack<P: RowProgram>(
    p: &P,
    rows: usize,
    cols: usize,
    whole_cells: usize,
    mut hit: impl FnMut(usize, usize),
) {
    if rows == 0 || cols == 0 {
        return;
    }
    let k = if (rows + 1).saturating_mul(cols + 1) <= whole_cells {
        rows + 1
    } else {
        ((rows + 1) as f64).sqrt().ceil() as usize
    };
    // Checkpoints: rows 0, k, 2k, … below `rows` (only row 0 when the table is one block).
    let mut checkpoints = vec![p.first_row(cols)];
    let (mut row, mut next) = (checkpoints[0].clone(), checkpoints[0].clone());
    for i in 1..=((rows - 1) / k) * k {
        p.next_row(i, &row, &mut next, cols);
        std::mem::swap(&mut row, &mut next);
        if i % k == 0 {
            checkpoints.push(row.clone());
        }
    }
    let (mut i, mut j) = (rows, cols);
    // The block's rows, kept allocated from one block to the next.
    let mut block: Vec<P::Row> = Vec::with_capacity(k + 1);
    while i > 0 && j > 0 {
        // Rows `start..=i` of the block holding the move from row `i`, recomputed to column `j`.
        let start = ((i - 1) / k) * k;
        while block.len() <= i - start {
            block.push(checkpoints[0].clone());
        }
        block[0].clone_from(&checkpoints[start / k]);
        for r in 1..=i - start {
            let (done, todo) = block.split_at_mut(r);
            p.next_row(start + r, &done[r - 1], &mut todo[0], j);
        }
        while i > start && j > 0 {
            let (above, here) = (&block[i - 1 - start], &block[i - start]);
            match p.choose(i, j, above, here) {
                Move::Diagonal => {
                    hit(i - 1, j - 1);
                    i -= 1;
                    j -= 1;
                }
                Move::Up => i -= 1,
                Move::Left => j -= 1,
            }
        }
    }
}

/// The plain LCS of `reference` (rows) against `candidate` (columns): diagonal on a match, else
/// left only if strictly larger, else up — rouge-score's `_backtrack_norec` and ROUGE-1.5.5's
/// `markLCS` take the same path.
struct Plain<'a, T> {
    reference: &'a [T],
    candidate: &'a [T],
}

impl<T: Eq> RowProgram for Plain<'_, T> {
    type Row = Vec<u32>;
    fn first_row(&self, cols: usize) -> Vec<u32> {
        vec![0; cols + 1]
    }
    fn next_row(&self, i: usize, above: &Vec<u32>, row: &mut Vec<u32>, upto: usize) {
        let x = &self.reference[i - 1];
        row[0] = 0;
        for j in 1..=upto {
            row[j] = if *x == self.candidate[j - 1] {
                above[j - 1] + 1
            } else {
                above[j].max(row[j - 1])
            };
        }
    }
    fn choose(&self, i: usize, j: usize, above: &Vec<u32>, row: &Vec<u32>) -> Move {
        if self.reference[i - 1] == self.candidate[j - 1] {
            Move::Diagonal
        } else if row[j - 1] > above[j] {
            Move::Left
        } else {
            Move::Up
        }
    }
}

/// Indices into `reference` of one LCS with `candidate`, in descending order: diagonal on a
/// match, else left only if strictly larger, else up (the reference scorers' path); memory
/// `O(|candidate|·√|reference|)`.
pub fn lcs_indices<T: Eq>(reference: &[T], candidate: &[T]) -> Vec<usize> {
    let mut out = Vec::new();
    lcs_indices_into(reference, candidate, WHOLE_TABLE_CELLS, &mut out);
    out
}

/// [`lcs_indices`] into `out` (cleared first), blocks above `whole_cells` cells.
fn lcs_indices_into<T: Eq>(
    reference: &[T],
    candidate: &[T],
    whole_cells: usize,
    out: &mut Vec<usize>,
) {
    out.clear();
    let p = Plain {
        reference,
        candidate,
    };
    backtrack(&p, reference.len(), candidate.len(), whole_cells, |i, _| {
        out.push(i)
    });
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
    let (mut idx, mut mask) = (Vec::new(), Vec::new());
    let mut hits = 0;
    for r in ref_sents {
        mask.clear();
        mask.resize(r.len(), false);
        for c in cand_sents {
            lcs_indices_into(r, c, WHOLE_TABLE_CELLS, &mut idx);
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

/// ROUGE-1.5.5's weighted LCS (`wlcs_inner`): a match extends the run ending diagonally above
/// (`c += (k+1)^w − k^w` for a run of `k`), else the larger of up and left, up on a tie — tie-breaks
/// that differ from [`Plain`]'s.
struct Weighted<'a, T> {
    reference: &'a [T],
    candidate: &'a [T],
    weight: f64,
}

/// A row of [`Weighted`]: the weighted scores and the run lengths.
struct WeightedRow {
    c: Vec<f64>,
    l: Vec<u32>,
}

impl Clone for WeightedRow {
    fn clone(&self) -> Self {
        Self {
            c: self.c.clone(),
            l: self.l.clone(),
        }
    }
    fn clone_from(&mut self, other: &Self) {
        self.c.clone_from(&other.c);
        self.l.clone_from(&other.l);
    }
}

impl<T: Eq> RowProgram for Weighted<'_, T> {
    type Row = WeightedRow;
    fn first_row(&self, cols: usize) -> WeightedRow {
        WeightedRow {
            c: vec![0.0; cols + 1],
            l: vec![0; cols + 1],
        }
    }
    fn next_row(&self, i: usize, above: &WeightedRow, row: &mut WeightedRow, upto: usize) {
        let x = &self.reference[i - 1];
        row.c[0] = 0.0;
        row.l[0] = 0;
        for j in 1..=upto {
            if *x == self.candidate[j - 1] {
                let k = above.l[j - 1] as f64;
                row.c[j] = above.c[j - 1] + (k + 1.0).powf(self.weight) - k.powf(self.weight);
                row.l[j] = above.l[j - 1] + 1;
            } else {
                row.c[j] = if above.c[j] >= row.c[j - 1] {
                    above.c[j]
                } else {
                    row.c[j - 1]
                };
                row.l[j] = 0;
            }
        }
    }
    fn choose(&self, i: usize, j: usize, above: &WeightedRow, row: &WeightedRow) -> Move {
        if self.reference[i - 1] == self.candidate[j - 1] {
            Move::Diagonal
        } else if above.c[j] >= row.c[j - 1] {
            Move::Up
        } else {
            Move::Left
        }
    }
}

/// Marks into `mask` the reference positions hit by ROUGE-1.5.5's weighted-LCS backtrack
/// (`wlcs_inner`: up on a tie, unlike the plain LCS); memory `O(|candidate|·√|reference|)`.
pub fn mark_weighted_lcs<T: Eq>(reference: &[T], candidate: &[T], mask: &mut [bool], weight: f64) {
    mark_weighted_lcs_in(reference, candidate, mask, weight, WHOLE_TABLE_CELLS);
}

fn mark_weighted_lcs_in<T: Eq>(
    reference: &[T],
    candidate: &[T],
    mask: &mut [bool],
    weight: f64,
    whole_cells: usize,
) {
    let p = Weighted {
        reference,
        candidate,
        weight,
    };
    backtrack(&p, reference.len(), candidate.len(), whole_cells, |i, _| {
        mask[i] = true
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The whole-table plain backtrack (the definition the checkpointed one must reproduce).
    fn lcs_indices_whole<T: Eq>(reference: &[T], candidate: &[T]) -> Vec<usize> {
        let t = lcs_table(reference, candidate);
        let w = candidate.len() + 1;
        let (mut i, mut j, mut out) = (reference.len(), candidate.len(), vec![]);
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
        out
    }

    /// The whole-table weighted backtrack, as ROUGE-1.5.5 writes it (score, run and move tables).
    fn mark_weighted_whole<T: Eq>(reference: &[T], candidate: &[T], weight: f64) -> Vec<bool> {
        let (m, n) = (reference.len(), candidate.len());
        let mut mask = vec![false; m];
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
        mask
    }

    /// Random token sequences over small alphabets (many ties), lengths 0..60.
    fn cases() -> Vec<(Vec<u8>, Vec<u8>)> {
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        (0..400)
            .map(|_| {
                let alphabet = 2 + next() % 6;
                let (la, lb) = ((next() % 60) as usize, (next() % 60) as usize);
                let a = (0..la).map(|_| (next() % alphabet) as u8).collect();
                let b = (0..lb).map(|_| (next() % alphabet) as u8).collect();
                (a, b)
            })
            .collect()
    }

    /// The checkpointed backtrack, forced into blocks on every size, takes exactly the
    /// whole table's path, for both programs.
    #[test]
    fn blocked_backtracks_match_the_whole_table() {
        for (a, b) in cases() {
            let want = lcs_indices_whole(&a, &b);
            for whole_cells in [0, 1, 50, usize::MAX] {
                let mut got = vec![];
                lcs_indices_into(&a, &b, whole_cells, &mut got);
                assert_eq!(got, want, "{a:?} {b:?} {whole_cells}");
                let mut mask = vec![false; a.len()];
                mark_weighted_lcs_in(&a, &b, &mut mask, 1.2, whole_cells);
                assert_eq!(mask, mark_weighted_whole(&a, &b, 1.2), "{a:?} {b:?}");
            }
        }
    }

    #[test]
    fn lcs_basics() {
        let a: Vec<char> = "abcbdab".chars().collect();
        let b: Vec<char> = "bdcaba".chars().collect();
        assert_eq!(lcs_len(&a, &b), 4);
        let t = lcs_table(&a, &b);
        assert_eq!(t[t.len() - 1], 4);
        let idx = lcs_indices(&a, &b);
        assert_eq!(idx.len(), 4);
        assert_eq!(idx, lcs_indices_whole(&a, &b));
        assert!(idx.windows(2).all(|w| w[0] > w[1]));
        assert_eq!(lcs_len::<char>(&[], &b), 0);
    }
}
