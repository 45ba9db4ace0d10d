//! The `abridge explain` HTML report: one self-contained file, inline SVG and CSS only (no
//! script, no fonts, no network), readable in any browser and in headless Chromium.

use std::fmt::Write;

use abridge::explain::{Explanation, GateTrace};

/// Escapes text for HTML/SVG content and attribute values.
pub fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c if c.is_control() => o.push(' '),
            c => o.push(c),
        }
    }
    o
}

/// `v ∈ [0, 1]` → a white-to-blue fill.
fn blue(v: f32) -> String {
    let v = (v.clamp(0.0, 1.0) * 20.0).round() / 20.0;
    let r = (255.0 - 225.0 * v) as u8;
    let g = (255.0 - 170.0 * v) as u8;
    format!("rgb({r},{g},255)")
}

const PALETTE: [&str; 5] = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e"];

/// A heatmap: `values[r][c] ∈ [0, 1]` (after `scale`), row and column labels, tooltips.
fn heatmap(
    rows: &[String],
    cols: &[String],
    values: &[Vec<f32>],
    scale: impl Fn(f32) -> f32,
    what: &str,
    tooltips: bool,
) -> String {
    let (cw, ch, left, top) = (10.0, 13.0, 110.0, 70.0);
    let w = left + cw * cols.len() as f64 + 10.0;
    let h = top + ch * rows.len() as f64 + 10.0;
    let mut s = format!(
        r#"<svg class="fig" width="{w}" height="{h}" role="img" aria-label="{}">"#,
        esc(what)
    );
    for (c, label) in cols.iter().enumerate() {
        let x = left + cw * c as f64 + cw * 0.7;
        let _ = write!(
            s,
            r#"<text x="{x}" y="{}" class="small" transform="rotate(-60 {x} {})">{}</text>"#,
            top - 4.0,
            top - 4.0,
            esc(label)
        );
    }
    let mut paths = vec![String::new(); 21];
    for (r, label) in rows.iter().enumerate() {
        let y = top + ch * r as f64;
        let _ = write!(
            s,
            r#"<text x="{}" y="{}" class="small" text-anchor="end">{}</text>"#,
            left - 4.0,
            y + ch * 0.8,
            esc(label)
        );
        for (c, &v) in values[r].iter().enumerate() {
            let f = scale(v);
            if f < 0.03 {
                continue;
            }
            let x = left + cw * c as f64;
            if tooltips {
                let _ = write!(
                    s,
                    r#"<rect x="{x}" y="{y}" width="{cw}" height="{ch}" fill="{}"><title>{} · {}: {v:.3}</title></rect>"#,
                    blue(f),
                    esc(label),
                    esc(cols.get(c).map_or("", String::as_str))
                );
            } else {
                // One path per colour level keeps large maps small.
                let level = ((f.clamp(0.0, 1.0) * 20.0).round() as usize).min(20);
                let _ = write!(paths[level], "M{x} {y}h{cw}v{ch}h-{cw}z");
            }
        }
    }
    for (level, d) in paths.iter().enumerate() {
        if !d.is_empty() {
            let _ = write!(s, r#"<path fill="{}" d="{d}"/>"#, blue(level as f32 / 20.0));
        }
    }
    let _ = write!(
        s,
        r##"<rect x="{left}" y="{top}" width="{}" height="{}" fill="none" stroke="#999"/></svg>"##,
        cw * cols.len() as f64,
        ch * rows.len() as f64
    );
    s
}

/// Lines over token positions: `series` of `(name, values)`, each scaled to its own max when
/// `own_scale`, else on [0, 1].
fn lines(labels: &[String], series: &[(String, Vec<f32>)], own_scale: bool) -> String {
    let n = labels.len().max(1);
    let (cw, left, top, ph) = (10.0_f64, 110.0, 20.0, 120.0);
    let w = left + cw * n as f64 + 160.0;
    let h = top + ph + 70.0;
    let mut s = format!(r#"<svg class="fig" width="{w}" height="{h}">"#);
    let _ = write!(
        s,
        r##"<rect x="{left}" y="{top}" width="{}" height="{ph}" fill="none" stroke="#999"/><text x="{}" y="{}" class="small" text-anchor="end">1</text><text x="{}" y="{}" class="small" text-anchor="end">0</text>"##,
        cw * n as f64,
        left - 4.0,
        top + 8.0,
        left - 4.0,
        top + ph
    );
    for (i, (name, vals)) in series.iter().enumerate() {
        let max = if own_scale {
            vals.iter().copied().fold(1e-9, f32::max)
        } else {
            1.0
        };
        let pts: Vec<String> = vals
            .iter()
            .enumerate()
            .map(|(t, v)| {
                format!(
                    "{:.1},{:.1}",
                    left + cw * (t as f64 + 0.5),
                    top + ph * (1.0 - (v / max).clamp(0.0, 1.0) as f64)
                )
            })
            .collect();
        let color = PALETTE[i % PALETTE.len()];
        let _ = write!(
            s,
            r#"<polyline points="{}" fill="none" stroke="{color}" stroke-width="1.5"/><text x="{}" y="{}" class="small" fill="{color}">{}{}</text>"#,
            pts.join(" "),
            left + cw * n as f64 + 8.0,
            top + 12.0 + 14.0 * i as f64,
            esc(name),
            if own_scale {
                format!(" (max {max:.2})")
            } else {
                String::new()
            }
        );
    }
    for (t, label) in labels.iter().enumerate() {
        let x = left + cw * t as f64 + cw * 0.7;
        let y = top + ph + 8.0;
        let _ = write!(
            s,
            r#"<text x="{x}" y="{y}" class="small" text-anchor="end" transform="rotate(-60 {x} {y})">{}</text>"#,
            esc(label)
        );
    }
    s.push_str("</svg>");
    s
}

fn gates_section(out: &mut String, g: &GateTrace, labels: &[String]) {
    let _ = write!(out, "<h3>{}</h3>", esc(&g.name));
    let mut series: Vec<(String, Vec<f32>)> = g
        .gates
        .iter()
        .enumerate()
        .filter(|(_, n)| **n != "cell" && **n != "new")
        .map(|(k, n)| {
            (
                format!("{n} gate (mean)"),
                g.mean.iter().map(|m| m[k]).collect(),
            )
        })
        .collect();
    out.push_str(&lines(labels, &series, false));
    series.clear();
    let mem = if g.gates.len() == 4 {
        "‖c_t‖ cell state (long-term memory)"
    } else {
        "‖h_t‖ hidden state"
    };
    series.push((mem.to_string(), g.memory_norm.clone()));
    out.push_str(&lines(labels, &series, true));
    let units = g.units_forget.first().map_or(0, Vec::len);
    let unit_rows: Vec<String> = (0..units)
        .map(|u| {
            format!(
                "{} unit {u}",
                if g.gates.len() == 4 {
                    "forget"
                } else {
                    "update"
                }
            )
        })
        .collect();
    let vals: Vec<Vec<f32>> = (0..units)
        .map(|u| g.units_forget.iter().map(|r| r[u]).collect())
        .collect();
    let _ = write!(
        out,
        "<p class=\"note\">Per unit: {} gate of the first {units} units (dark = keep the old memory).</p>",
        if g.gates.len() == 4 { "forget" } else { "update" }
    );
    out.push_str(&heatmap(
        &unit_rows,
        labels,
        &vals,
        |v| v,
        "gate units",
        false,
    ));
}

fn beam_tree(ex: &Explanation) -> String {
    let steps = ex.beam.iter().map(|n| n.step + 1).max().unwrap_or(0);
    let per_step: Vec<Vec<&abridge::explain::TreeNode>> = (0..steps)
        .map(|t| ex.beam.iter().filter(|n| n.step == t).collect())
        .collect();
    let rows = per_step.iter().map(Vec::len).max().unwrap_or(1);
    let (cw, rh, left, top) = (78.0_f64, 18.0_f64, 10.0, 24.0);
    let w = left + cw * steps as f64 + 80.0;
    let h = top + rh * rows as f64 + 10.0;
    let mut s = format!(r#"<svg class="fig" width="{w}" height="{h}">"#);
    let pos = |t: usize, i: usize| (left + cw * t as f64 + 6.0, top + rh * i as f64 + rh / 2.0);
    for (t, nodes) in per_step.iter().enumerate() {
        let _ = write!(
            s,
            r#"<text x="{}" y="14" class="small">step {}</text>"#,
            left + cw * t as f64,
            t + 1
        );
        for (i, n) in nodes.iter().enumerate() {
            let (x, y) = pos(t, i);
            if t > 0 {
                // The parent is the node of the previous step kept as `n.parent`.
                if let Some(pi) = per_step[t - 1]
                    .iter()
                    .position(|p| p.kept_as == Some(n.parent))
                {
                    let (px, py) = pos(t - 1, pi);
                    let _ = write!(
                        s,
                        r##"<line x1="{}" y1="{py}" x2="{x}" y2="{y}" stroke="{}" stroke-width="1"/>"##,
                        px + 4.0,
                        if n.fate == "pruned" { "#ddd" } else { "#888" }
                    );
                }
            }
            let fill = match n.fate {
                "kept" => "#1f77b4",
                "finished" => "#2ca02c",
                _ => "#ccc",
            };
            let _ = write!(
                s,
                r#"<circle cx="{x}" cy="{y}" r="4" fill="{fill}"><title>{tok} ({fate}) · log P(token) {tlp:.3} · Σ log P {lp:.3} · ÷ length penalty {lpen:.3} → {lpterm:.3} · − coverage penalty {cp:.3} · score {score:.3}</title></circle><text x="{}" y="{}" class="small{}">{tok}</text>"#,
                x + 6.0,
                y + 3.5,
                if n.fate == "pruned" { " faint" } else { "" },
                tok = esc(&n.token),
                fate = n.fate,
                tlp = n.token_log_prob,
                lp = n.log_prob,
                lpen = n.length_penalty,
                lpterm = n.log_prob / n.length_penalty,
                cp = n.coverage_penalty,
                score = n.score,
            );
        }
    }
    s.push_str("</svg>");
    s
}

fn beam_table(ex: &Explanation, max_steps: usize) -> String {
    let mut s = String::from(
        "<table><tr><th>step</th><th>token</th><th>from</th><th>fate</th><th>Σ log P</th><th>length penalty lp</th><th>Σ log P / lp</th><th>coverage penalty</th><th>score</th></tr>",
    );
    for n in ex.beam.iter().filter(|n| n.step < max_steps) {
        let _ = write!(
            s,
            "<tr class=\"{}\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{:.3}</td><td>{:.3}</td><td>{:.3}</td><td>{:.3}</td><td>{:.3}</td></tr>",
            n.fate,
            n.step + 1,
            esc(&n.token),
            n.parent,
            n.fate,
            n.log_prob,
            n.length_penalty,
            n.log_prob / n.length_penalty,
            n.coverage_penalty,
            n.score
        );
    }
    s.push_str("</table>");
    s
}

/// The report.
pub fn html(ex: &Explanation) -> String {
    let mut o = String::new();
    o.push_str(r#"<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>abridge explain</title><style>
body{font-family:system-ui,sans-serif;margin:24px;color:#222;max-width:none}
h1{font-size:22px}h2{font-size:18px;margin-top:32px;border-bottom:1px solid #ddd}h3{font-size:15px}
.scroll{overflow-x:auto;border:1px solid #eee;padding:4px}
.small{font-size:9px;font-family:monospace}.faint{fill:#aaa}
.note{color:#555;font-size:13px}
.tok{padding:1px 2px;margin:1px;border-radius:3px;display:inline-block}
.oov{text-decoration:underline;font-weight:bold}
table{border-collapse:collapse;font-size:12px}td,th{border:1px solid #ddd;padding:2px 6px}
tr.pruned{color:#999}tr.finished{background:#eaf7ea}
</style></head><body>"#);
    let _ = write!(
        o,
        "<h1>What the summarizer did</h1><p class=\"note\">Model <code>{}</code> ({} encoder–decoder with attention{}). Source: {} tokens{}. Decoding: <code>{}</code>.</p>",
        esc(&ex.model),
        esc(&ex.cell),
        if ex.steps.iter().any(|s| s.p_gen.is_some()) { ", pointer-generator" } else { "" },
        ex.source.len(),
        ex.truncated_from
            .map_or(String::new(), |n| format!(" (truncated from {n})")),
        esc(&ex.decode.to_string())
    );
    o.push_str("<h2>Summary</h2><p class=\"note\">Each token is shaded by p<sub>gen</sub>: blue = generated from the vocabulary, orange = copied from the source; underlined = a source word outside the vocabulary (only the pointer can produce it). Hover for probabilities.</p><p>");
    for s in &ex.steps {
        let pg = s.p_gen.unwrap_or(1.0);
        let r = (255.0 - 90.0 * pg) as u8;
        let g = (200.0 + 20.0 * pg) as u8;
        let b = (150.0 + 105.0 * pg) as u8;
        let _ = write!(
            o,
            "<span class=\"tok{}\" style=\"background:rgb({r},{g},{b})\" title=\"P = {:.3}, p_gen = {}\">{}</span>",
            if s.oov { " oov" } else { "" },
            s.prob,
            s.p_gen.map_or("-".into(), |p| format!("{p:.3}")),
            esc(&s.token)
        );
    }
    o.push_str("</p><p class=\"note\">Faithfulness (% of the summary): ");
    let signals: Vec<String> = ex
        .faithfulness
        .iter()
        .map(|(k, v)| {
            let v = v.as_f64().map_or("-".into(), |v| format!("{v:.1}"));
            format!("{} {v}", esc(k))
        })
        .collect();
    o.push_str(&signals.join(" · "));
    o.push_str("</p>");
    if let Some(sel) = &ex.selection {
        let _ = write!(
            o,
            "<h2>Content selection</h2><p class=\"note\">Each source token shaded by its selection probability (darker = more likely in a summary); struck through = below the copy threshold {:.2}, so the pointer could not copy it.</p><p>",
            sel.threshold
        );
        for ((t, &q), &keep) in ex.source.iter().zip(&sel.probs).zip(&sel.copyable) {
            let _ = write!(
                o,
                "<span class=\"tok\" style=\"background:{}{}\" title=\"q = {q:.3}\">{}</span> ",
                blue(q),
                if keep {
                    ""
                } else {
                    ";text-decoration:line-through"
                },
                esc(t)
            );
        }
        o.push_str("</p>");
    }
    let out_labels: Vec<String> = ex.steps.iter().map(|s| s.token.clone()).collect();
    let src_labels = &ex.source;
    o.push_str("<h2>Attention</h2><p class=\"note\">Row = output token, column = source token; darker = more attention (square-root scale).</p><div class=\"scroll\">");
    let att: Vec<Vec<f32>> = ex.steps.iter().map(|s| s.attention.clone()).collect();
    o.push_str(&heatmap(
        &out_labels,
        src_labels,
        &att,
        |v| v.sqrt(),
        "attention",
        true,
    ));
    o.push_str("</div><h2>Coverage</h2><p class=\"note\">The attention each source token had received before the step (See et al. 2017); 1 or more = dark. Re-attending covered tokens is what the coverage loss and penalty discourage.</p><div class=\"scroll\">");
    let cov: Vec<Vec<f32>> = ex.steps.iter().map(|s| s.coverage.clone()).collect();
    o.push_str(&heatmap(
        &out_labels,
        src_labels,
        &cov,
        |v| v.min(1.0),
        "coverage",
        false,
    ));
    o.push_str("</div>");
    if ex.steps.iter().any(|s| s.p_gen.is_some()) {
        o.push_str("<h2>Generate or copy</h2><p class=\"note\">p<sub>gen</sub> per output token (1 = generate, 0 = copy) and the probability of the chosen token.</p><div class=\"scroll\">");
        let series = vec![
            (
                "p_gen".to_string(),
                ex.steps.iter().map(|s| s.p_gen.unwrap_or(1.0)).collect(),
            ),
            (
                "P(token)".to_string(),
                ex.steps.iter().map(|s| s.prob).collect(),
            ),
        ];
        o.push_str(&lines(&out_labels, &series, false));
        o.push_str("</div>");
    }
    o.push_str("<h2 id=\"gates\">Gates and memory</h2><p class=\"note\">Mean gate activations per token and the norm of the memory after it. LSTM: the forget gate decides how much of the cell state (long-term memory) is kept, the input gate how much new content is written, the output gate how much of it reaches the hidden state (short-term memory). GRU: the update gate keeps the old state, the reset gate decides how much of it the candidate sees.</p>");
    for g in &ex.encoder {
        // Traces are in time order for both directions.
        o.push_str("<div class=\"scroll\">");
        gates_section(&mut o, g, src_labels);
        o.push_str("</div>");
    }
    o.push_str("<div class=\"scroll\">");
    gates_section(&mut o, &ex.decoder, &out_labels);
    o.push_str("</div>");
    o.push_str("<h2 id=\"beam\">Beam search</h2><p class=\"note\">Every candidate of every step: blue = kept, green = finished, grey = pruned (below the beam). Hover a node for its log-probability and each penalty's part of the score: score = Σ log P / lp − cp.</p><div class=\"scroll\">");
    o.push_str(&beam_tree(ex));
    o.push_str("</div><h3>First steps in numbers</h3>");
    o.push_str(&beam_table(ex, 5));
    o.push_str("</body></html>\n");
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_covers_markup_and_controls() {
        assert_eq!(
            esc("<a href=\"x\">&'</a>\u{7}"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;&lt;/a&gt; "
        );
    }
}
