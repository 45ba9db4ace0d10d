//! Length and coverage penalties, one small cited function each (as OpenNMT's `penalties.py`).
//!
//! A finished hypothesis `Y` with log-probability `log P(Y|X)` is ranked by
//! `log P(Y|X) / lp(|Y|) − cp(X; Y)`.

/// How the log-probability is normalised by length, so that a model is neither rewarded nor
/// punished just for long outputs.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum LengthPenalty {
    /// `lp = 1`.
    None,
    /// GNMT (Wu et al. 2016, eq. 14): `lp = ((5 + |Y|) / 6)^α`.
    Gnmt(f64),
    /// Average log-probability: `lp = |Y|`.
    Average,
    /// `lp = |Y|^α` (OpenNMT's "power"; α = 1 is the average).
    Power(f64),
}

impl LengthPenalty {
    pub fn lp(&self, len: usize) -> f64 {
        let n = len.max(1) as f64;
        match *self {
            LengthPenalty::None => 1.0,
            LengthPenalty::Gnmt(alpha) => ((5.0 + n) / 6.0).powf(alpha),
            LengthPenalty::Average => n,
            LengthPenalty::Power(alpha) => n.powf(alpha),
        }
    }
}

/// How attention that covered the source poorly (or too often) is penalised.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum CoveragePenalty {
    None,
    /// GNMT (Wu et al. 2016, eq. 14): `cp = −β Σ_i log min(cov_i, 1)` (≥ 0; source words never
    /// attended are penalised). Coverage values are floored at 1e-12 inside the log.
    Gnmt(f64),
    /// OpenNMT's "summary" penalty: `cp = β (Σ_i max(cov_i, 1) − |X|)` (≥ 0; attending a source
    /// word more than once in total is penalised — repetition, the summarisation failure).
    Summary(f64),
}

impl CoveragePenalty {
    /// `cov`: attention summed over the hypothesis' steps, one value per source position.
    pub fn cp(&self, cov: &[f32]) -> f64 {
        match *self {
            CoveragePenalty::None => 0.0,
            CoveragePenalty::Gnmt(beta) => {
                -beta
                    * cov
                        .iter()
                        .map(|&c| (c as f64).clamp(1e-12, 1.0).ln())
                        .sum::<f64>()
            }
            CoveragePenalty::Summary(beta) => {
                beta * (cov.iter().map(|&c| (c as f64).max(1.0)).sum::<f64>() - cov.len() as f64)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn length_penalties_by_hand() {
        assert_eq!(LengthPenalty::None.lp(7), 1.0);
        assert!((LengthPenalty::Gnmt(1.0).lp(7) - 2.0).abs() < 1e-12); // (5+7)/6
        assert!((LengthPenalty::Gnmt(0.5).lp(19) - 2.0).abs() < 1e-12); // sqrt(24/6)
        assert_eq!(LengthPenalty::Average.lp(4), 4.0);
        assert!((LengthPenalty::Power(2.0).lp(3) - 9.0).abs() < 1e-12);
    }

    #[test]
    fn coverage_penalties_by_hand() {
        assert_eq!(CoveragePenalty::Gnmt(1.0).cp(&[1.0, 2.0]), 0.0);
        assert!((CoveragePenalty::Gnmt(2.0).cp(&[0.5, 1.0]) - 2.0 * 2f64.ln()).abs() < 1e-9);
        assert_eq!(CoveragePenalty::Summary(1.0).cp(&[0.5, 1.0]), 0.0);
        assert!((CoveragePenalty::Summary(0.5).cp(&[2.0, 1.5, 0.2]) - 0.5 * 1.5).abs() < 1e-6);
    }
}
