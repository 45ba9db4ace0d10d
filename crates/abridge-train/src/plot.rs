//! The loss curve as a self-contained SVG (no plotting dependency needed for two lines).

use std::fmt::Write;

/// An SVG of training loss per step (grey), its moving average (blue), and dev loss at evaluations
/// (red dots). `train` holds `(step, loss)`, `dev` holds `(step, dev loss)`.
pub fn loss_svg(train: &[(u64, f64)], dev: &[(u64, f64)]) -> String {
    let (w, h, pad) = (640.0, 360.0, 48.0);
    let pts: Vec<(u64, f64)> = train
        .iter()
        .chain(dev)
        .copied()
        .filter(|(_, l)| l.is_finite())
        .collect();
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
    let (x0, x1) = (
        pts.iter().map(|p| p.0).min().unwrap() as f64,
        pts.iter().map(|p| p.0).max().unwrap() as f64,
    );
    let (y0, y1) = (
        pts.iter().map(|p| p.1).fold(f64::INFINITY, f64::min),
        pts.iter().map(|p| p.1).fold(f64::NEG_INFINITY, f64::max),
    );
    let (xs, ys) = ((x1 - x0).max(1.0), (y1 - y0).max(1e-9));
    let px = |x: f64| pad + (x - x0) / xs * (w - 2.0 * pad);
    let py = |y: f64| h - pad - (y - y0) / ys * (h - 2.0 * pad);
    let _ = write!(
        svg,
        r##"<line x1="{pad}" y1="{}" x2="{}" y2="{}" stroke="#444"/>"##,
        h - pad,
        w - pad,
        h - pad
    );
    let _ = write!(
        svg,
        r##"<line x1="{pad}" y1="{pad}" x2="{pad}" y2="{}" stroke="#444"/>"##,
        h - pad
    );
    let _ = write!(
        svg,
        r#"<text x="{}" y="{}" text-anchor="middle">step</text>"#,
        w / 2.0,
        h - 12.0
    );
    let _ = write!(
        svg,
        r#"<text x="8" y="{}" >{:.3}</text><text x="8" y="{}">{:.3}</text>"#,
        pad,
        y1,
        h - pad,
        y0
    );
    let _ = write!(
        svg,
        r#"<text x="{pad}" y="{}">{}</text><text x="{}" y="{}" text-anchor="end">{}</text>"#,
        h - pad + 14.0,
        x0,
        w - pad,
        h - pad + 14.0,
        x1
    );
    let line = |svg: &mut String, series: &[(u64, f64)], color: &str, width: f64| {
        let p: Vec<String> = series
            .iter()
            .filter(|(_, l)| l.is_finite())
            .map(|&(s, l)| format!("{:.1},{:.1}", px(s as f64), py(l)))
            .collect();
        if !p.is_empty() {
            let _ = write!(
                svg,
                r#"<polyline fill="none" stroke="{color}" stroke-width="{width}" points="{}"/>"#,
                p.join(" ")
            );
        }
    };
    line(&mut svg, train, "#bbbbbb", 1.0);
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
    line(&mut svg, &smooth, "#1f4e9c", 2.0);
    for &(s, l) in dev.iter().filter(|(_, l)| l.is_finite()) {
        let _ = write!(
            svg,
            r##"<circle cx="{:.1}" cy="{:.1}" r="3" fill="#c0392b"/>"##,
            px(s as f64),
            py(l)
        );
    }
    svg.push_str(r##"<text x="60" y="20" fill="#1f4e9c">training loss (moving average)</text><text x="260" y="20" fill="#c0392b">dev loss</text></svg>"##);
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn svg_has_the_series() {
        let train: Vec<(u64, f64)> = (1..=100).map(|s| (s, 10.0 / s as f64)).collect();
        let svg = loss_svg(&train, &[(50, 0.3), (100, 0.2)]);
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
        assert_eq!(svg.matches("<polyline").count(), 2);
        assert_eq!(svg.matches("<circle").count(), 2);
        assert!(loss_svg(&[(1, f64::NAN)], &[]).contains("no finite losses"));
    }
}
