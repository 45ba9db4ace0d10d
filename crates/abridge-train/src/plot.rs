//! The loss curve as a self-contained SVG (no plotting dependency needed for a few lines).

use std::fmt::Write;

/// What the loss curve shows, gathered from metrics lines.
#[derive(Default)]
pub struct PlotData {
    /// (step, training loss).
    pub train: Vec<(u64, f64)>,
    /// (step, dev loss).
    pub dev: Vec<(u64, f64)>,
    /// (step, mean dev ROUGE-1/2/Lsum F1).
    pub rouge: Vec<(u64, f64)>,
    /// First step of each epoch after the first.
    pub epochs: Vec<u64>,
    /// Steps whose checkpoint became the best.
    pub best: Vec<u64>,
    last_epoch: Option<u64>,
}

impl PlotData {
    /// Adds one metrics line.
    pub fn add(&mut self, v: &serde_json::Value) {
        let Some(step) = v["step"].as_u64() else {
            return;
        };
        let epoch = v["epoch"].as_u64().unwrap_or(0);
        if self.last_epoch.is_some_and(|e| e != epoch) {
            self.epochs.push(step);
        }
        self.last_epoch = Some(epoch);
        self.train
            .push((step, v["loss"].as_f64().unwrap_or(f64::NAN)));
        if let Some(d) = v["dev_loss"].as_f64() {
            self.dev.push((step, d));
        }
        if let Some(r) = v["dev_rouge"].as_array() {
            let r: Vec<f64> = r.iter().filter_map(serde_json::Value::as_f64).collect();
            if !r.is_empty() {
                self.rouge
                    .push((step, r.iter().sum::<f64>() / r.len() as f64));
            }
        }
        if v["best"].as_bool() == Some(true) {
            self.best.push(step);
        }
    }
}

/// About five round tick values covering `[lo, hi]`: steps of 1, 2 or 5 times a power of ten.
fn ticks(lo: f64, hi: f64) -> Vec<f64> {
    let span = (hi - lo).max(1e-9);
    let raw = span / 5.0;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| span / s <= 6.0)
        .unwrap_or(10.0 * mag);
    let (first, last) = (
        (lo / step - 1e-9).ceil() as i64,
        (hi / step + 1e-9).floor() as i64,
    );
    (first..=last).map(|k| k as f64 * step).collect()
}

/// A tick label without needless digits.
fn label(v: f64) -> String {
    if v.abs() >= 100.0 || v.fract().abs() < 1e-9 {
        format!("{v:.0}")
    } else if (v * 10.0).fract().abs() < 1e-6 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// An SVG of training loss per step (grey) and its moving average (blue), dev loss at
/// evaluations (red dots), the best checkpoint (a green ring), epoch boundaries (dashed), and
/// mean dev ROUGE-1/2/Lsum F1 (green, right-hand axis) when measured.
pub fn loss_svg(d: &PlotData) -> String {
    let (w, h, pad, right) = (720.0, 400.0, 56.0, 56.0);
    let finite = |v: &[(u64, f64)]| -> Vec<(u64, f64)> {
        v.iter().copied().filter(|(_, l)| l.is_finite()).collect()
    };
    let (train, dev, rouge) = (finite(&d.train), finite(&d.dev), finite(&d.rouge));
    let pts: Vec<(u64, f64)> = train.iter().chain(&dev).copied().collect();
    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="sans-serif" font-size="11">"#
    );
    svg.push_str(r#"<rect width="100%" height="100%" fill="white"/>"#);
    if pts.is_empty() {
        svg.push_str(r#"<text x="20" y="30">no finite losses yet</text></svg>"#);
        return svg;
    }
    let x0 = pts.iter().chain(&rouge).map(|p| p.0).min().unwrap_or(0) as f64;
    let x1 = pts.iter().chain(&rouge).map(|p| p.0).max().unwrap_or(1) as f64;
    let y0 = pts.iter().map(|p| p.1).fold(f64::INFINITY, f64::min);
    let y1 = pts.iter().map(|p| p.1).fold(f64::NEG_INFINITY, f64::max);
    let (xs, ys) = ((x1 - x0).max(1.0), (y1 - y0).max(1e-9));
    let (left, top, bottom) = (pad, 32.0, h - 40.0);
    let plot_right = w - right;
    let px = |x: f64| left + (x - x0) / xs * (plot_right - left);
    let py = |y: f64| bottom - (y - y0) / ys * (bottom - top);
    // Axes, grid and tick labels.
    let _ = write!(
        svg,
        r##"<line x1="{left}" y1="{bottom}" x2="{plot_right}" y2="{bottom}" stroke="#444"/><line x1="{left}" y1="{top}" x2="{left}" y2="{bottom}" stroke="#444"/>"##
    );
    for t in ticks(y0, y1) {
        let y = py(t);
        let _ = write!(
            svg,
            r##"<line x1="{left}" y1="{y:.1}" x2="{plot_right}" y2="{y:.1}" stroke="#eee"/><text x="{}" y="{:.1}" text-anchor="end">{}</text>"##,
            left - 4.0,
            y + 4.0,
            label(t)
        );
    }
    for t in ticks(x0, x1) {
        let x = px(t);
        let _ = write!(
            svg,
            r##"<line x1="{x:.1}" y1="{bottom}" x2="{x:.1}" y2="{}" stroke="#444"/><text x="{x:.1}" y="{}" text-anchor="middle">{}</text>"##,
            bottom + 4.0,
            bottom + 16.0,
            label(t)
        );
    }
    let _ = write!(
        svg,
        r#"<text x="{}" y="{}" text-anchor="middle">step</text><text x="14" y="{}" transform="rotate(-90 14 {})" text-anchor="middle">loss</text>"#,
        (left + plot_right) / 2.0,
        h - 8.0,
        (top + bottom) / 2.0,
        (top + bottom) / 2.0
    );
    // Epoch boundaries.
    for (i, &s) in d.epochs.iter().enumerate() {
        let x = px(s as f64);
        let _ = write!(
            svg,
            r##"<line x1="{x:.1}" y1="{top}" x2="{x:.1}" y2="{bottom}" stroke="#999" stroke-dasharray="4 3"/><text x="{:.1}" y="{}" fill="#777">epoch {}</text>"##,
            x + 3.0,
            top + 10.0,
            i + 2
        );
    }
    let line = |svg: &mut String,
                series: &[(u64, f64)],
                color: &str,
                width: f64,
                y: &dyn Fn(f64) -> f64| {
        let p: Vec<String> = series
            .iter()
            .map(|&(s, l)| format!("{:.1},{:.1}", px(s as f64), y(l)))
            .collect();
        if !p.is_empty() {
            let _ = write!(
                svg,
                r#"<polyline fill="none" stroke="{color}" stroke-width="{width}" points="{}"/>"#,
                p.join(" ")
            );
        }
    };
    line(&mut svg, &train, "#bbbbbb", 1.0, &py);
    let k = (train.len() / 50).max(1);
    let smooth: Vec<(u64, f64)> = train
        .windows(k)
        .map(|win| {
            (
                win[win.len() - 1].0,
                win.iter().map(|p| p.1).sum::<f64>() / win.len() as f64,
            )
        })
        .collect();
    line(&mut svg, &smooth, "#1f4e9c", 2.0, &py);
    for &(s, l) in &dev {
        let _ = write!(
            svg,
            r##"<circle cx="{:.1}" cy="{:.1}" r="3" fill="#c0392b"/>"##,
            px(s as f64),
            py(l)
        );
    }
    // The best checkpoint: the last evaluation that improved.
    if let Some(&b) = d.best.last() {
        let y = dev.iter().find(|p| p.0 == b).map_or(bottom, |p| py(p.1));
        let _ = write!(
            svg,
            r##"<circle cx="{:.1}" cy="{y:.1}" r="7" fill="none" stroke="#1e8449" stroke-width="2"/><text x="{:.1}" y="{:.1}" fill="#1e8449">best (step {b})</text>"##,
            px(b as f64),
            px(b as f64) + 9.0,
            y - 9.0
        );
    }
    // Dev ROUGE on its own axis, right.
    let mut legend = String::from(
        r##"<text x="60" y="18" fill="#1f4e9c">training loss (moving average)</text><text x="260" y="18" fill="#c0392b">● dev loss</text><text x="340" y="18" fill="#1e8449">◯ best checkpoint</text>"##,
    );
    if !rouge.is_empty() {
        let r0 = rouge.iter().map(|p| p.1).fold(f64::INFINITY, f64::min) * 100.0;
        let r1 = rouge.iter().map(|p| p.1).fold(f64::NEG_INFINITY, f64::max) * 100.0;
        let (r0, r1) = if r1 - r0 < 1.0 {
            (r0 - 0.5, r1 + 0.5)
        } else {
            (r0, r1)
        };
        let ry = |v: f64| bottom - (v * 100.0 - r0) / (r1 - r0) * (bottom - top);
        let _ = write!(
            svg,
            r##"<line x1="{plot_right}" y1="{top}" x2="{plot_right}" y2="{bottom}" stroke="#1e8449"/>"##
        );
        for t in ticks(r0, r1) {
            let y = bottom - (t - r0) / (r1 - r0) * (bottom - top);
            let _ = write!(
                svg,
                r##"<text x="{}" y="{:.1}" fill="#1e8449">{}</text>"##,
                plot_right + 4.0,
                y + 4.0,
                label(t)
            );
        }
        line(&mut svg, &rouge, "#1e8449", 1.5, &ry);
        for &(s, r) in &rouge {
            let _ = write!(
                svg,
                r##"<rect x="{:.1}" y="{:.1}" width="5" height="5" fill="#1e8449"/>"##,
                px(s as f64) - 2.5,
                ry(r) - 2.5
            );
        }
        legend.push_str(
            r##"<text x="470" y="18" fill="#1e8449">■ dev ROUGE (mean F1, right axis)</text>"##,
        );
    }
    svg.push_str(&legend);
    svg.push_str("</svg>");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data() -> PlotData {
        let mut d = PlotData::default();
        for s in 1..=100u64 {
            let mut v =
                serde_json::json!({"step": s, "epoch": (s - 1) / 40, "loss": 10.0 / s as f64});
            if s % 25 == 0 {
                v["dev_loss"] = serde_json::json!(0.5 - s as f64 / 1000.0);
                v["dev_rouge"] = serde_json::json!([0.3, 0.1, 0.28]);
                v["best"] = serde_json::json!(s <= 75);
            }
            d.add(&v);
        }
        d
    }

    #[test]
    fn svg_has_the_series_epochs_best_and_rouge() {
        let d = data();
        assert_eq!(d.epochs, [41, 81]);
        assert_eq!(d.best, [25, 50, 75]);
        let svg = loss_svg(&d);
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
        assert_eq!(svg.matches("<polyline").count(), 3, "train, average, ROUGE");
        assert_eq!(
            svg.matches(r##"fill="#c0392b"/>"##).count(),
            4,
            "dev points"
        );
        assert!(svg.contains("epoch 2") && svg.contains("epoch 3"));
        assert!(svg.contains("best (step 75)"));
        assert!(svg.contains("dev ROUGE"));
        // Round tick labels on both axes.
        assert!(
            svg.contains(">40</text>") && svg.contains(">100</text>"),
            "step ticks"
        );
        assert!(
            svg.contains(">2</text>") || svg.contains(">4</text>"),
            "loss ticks"
        );
        assert!(loss_svg(&PlotData::default()).contains("no finite losses"));
    }

    #[test]
    fn ticks_are_round() {
        let labels = |lo, hi| ticks(lo, hi).into_iter().map(label).collect::<Vec<_>>();
        assert_eq!(labels(0.0, 100.0), ["0", "20", "40", "60", "80", "100"]);
        assert_eq!(labels(2.13, 2.61), ["2.2", "2.3", "2.4", "2.5", "2.6"]);
        assert_eq!(label(2.5), "2.5");
        assert_eq!(label(40.0), "40");
    }
}
