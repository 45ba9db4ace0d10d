//! Every expected value of `../shared/rouge` (public.jsonl, corpus.jsonl, stem_vectors.tsv),
//! checked against this crate. Skipped with a message when `../shared` is absent.

use std::path::Path;

use abridge_rouge::corpus::{summarize, summarize_155, Pair};
use abridge_rouge::rouge155::{self, Rouge155Options};
use abridge_rouge::stem::{nltk_stem, perl_porter, perl_stem};
use abridge_rouge::tokenize::rouge_score_tokens;
use abridge_rouge::{MultiRef, RougeScorer, RougeType};
use abridge_testkit::shared_or_skip;
use serde_json::Value;

fn records(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn close(what: &str, got: f64, want: &Value, tol: f64, failures: &mut Vec<String>) {
    let want = want
        .as_f64()
        .unwrap_or_else(|| panic!("{what}: expected value is not a number: {want}"));
    if (got - want).abs() > tol {
        failures.push(format!("{what}: got {got}, expected {want}"));
    }
}

fn refs_of(rec: &Value) -> Vec<String> {
    match (&rec["ref"], &rec["refs"]) {
        (Value::String(s), _) => vec![s.clone()],
        (_, Value::Array(a)) => a.iter().map(|v| v.as_str().unwrap().to_string()).collect(),
        _ => panic!("record without ref/refs: {rec}"),
    }
}

#[test]
fn public_cases_match_both_reference_scorers() {
    let Some(dir) = shared_or_skip("rouge", "public_cases_match_both_reference_scorers") else {
        return;
    };
    let recs = records(&dir.join("public.jsonl"));
    assert_eq!(recs.len(), 305);
    let mut failures = Vec::new();
    let (mut n_rs, mut n_155) = (0, 0);
    for rec in &recs {
        let id = rec["id"].as_str().unwrap();
        let hyp = rec["hyp"].as_str().unwrap();
        let refs = refs_of(rec);
        let rref: Vec<&str> = refs.iter().map(String::as_str).collect();
        for (key, stem) in [("stem", true), ("nostem", false)] {
            let scorer = RougeScorer::new(RougeType::defaults(), stem);
            let got = if refs.len() == 1 {
                scorer.score(&refs[0], hyp)
            } else {
                scorer.score_multi(&rref, hyp)
            };
            for (ty, s) in got {
                let exp = &rec["rouge_score"][key][ty.name()];
                for (field, v) in [
                    ("precision", s.precision),
                    ("recall", s.recall),
                    ("fmeasure", s.fmeasure),
                ] {
                    close(
                        &format!("{id} rouge_score.{key}.{}.{field}", ty.name()),
                        v,
                        &exp[field],
                        1e-9,
                        &mut failures,
                    );
                    n_rs += 1;
                }
            }
            for (suffix, multi) in [("", MultiRef::Average), ("_fB", MultiRef::Best)] {
                let exp_all = &rec["rouge155"][format!("{key}{suffix}")];
                if exp_all.is_null() {
                    continue;
                }
                let opts = Rouge155Options {
                    stem,
                    multi,
                    ..Default::default()
                };
                let got = rouge155::score(hyp, &rref, &opts);
                let exp_names: Vec<&String> = exp_all.as_object().unwrap().keys().collect();
                let got_names: Vec<&String> = got.iter().map(|(n, _)| n).collect();
                let mut a = exp_names.clone();
                let mut b = got_names.clone();
                a.sort();
                b.sort();
                if a != b {
                    failures.push(format!(
                        "{id} rouge155.{key}{suffix}: metrics {b:?}, expected {a:?}"
                    ));
                    continue;
                }
                for (name, prf) in got {
                    for (field, v) in [("R", prf.R), ("P", prf.P), ("F", prf.F)] {
                        close(
                            &format!("{id} rouge155.{key}{suffix}.{name}.{field}"),
                            v,
                            &exp_all[&name][field],
                            1e-9,
                            &mut failures,
                        );
                        n_155 += 1;
                    }
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} values differ:\n{}",
        failures.len(),
        n_rs + n_155,
        failures[..failures.len().min(40)].join("\n")
    );
    assert!(
        n_rs > 7000 && n_155 > 15000,
        "compared {n_rs} rouge-score and {n_155} ROUGE-1.5.5 values"
    );
}

#[test]
fn corpus_means_bootstraps_and_perl_averages_match() {
    let Some(dir) = shared_or_skip("rouge", "corpus_means_bootstraps_and_perl_averages_match")
    else {
        return;
    };
    let mut failures = Vec::new();
    let recs = records(&dir.join("corpus.jsonl"));
    assert_eq!(recs.len(), 3);
    for rec in &recs {
        let id = rec["id"].as_str().unwrap();
        let pairs: Vec<Pair> = rec["pairs"]
            .as_array()
            .unwrap()
            .iter()
            .enumerate()
            .map(|(i, p)| Pair {
                id: i.to_string(),
                hyp: p["hyp"].as_str().unwrap().into(),
                refs: vec![p["ref"].as_str().unwrap().into()],
            })
            .collect();
        let types = RougeType::defaults();
        for (key, stem) in [("stem", true), ("nostem", false)] {
            let scorer = RougeScorer::new(types.clone(), stem);
            let per = abridge_rouge::corpus::score_all(&scorer, &pairs);
            let summary = summarize(&types, &per, 42, 1000, 0.95).unwrap();
            for s in summary {
                let name = s.rouge_type.name();
                let exp = &rec["rouge_score"][key];
                for (k, field) in ["precision", "recall", "fmeasure"].iter().enumerate() {
                    let mean = [s.mean.precision, s.mean.recall, s.mean.fmeasure][k];
                    close(
                        &format!("{id} {key} mean {name} {field}"),
                        mean,
                        &exp["mean"][&name][field],
                        1e-9,
                        &mut failures,
                    );
                    for (b, v) in [
                        ("low", s.interval.low[k]),
                        ("mid", s.interval.mid[k]),
                        ("high", s.interval.high[k]),
                    ] {
                        close(
                            &format!("{id} {key} bootstrap {name} {b} {field}"),
                            v,
                            &exp["bootstrap_seed42"][&name][b][field],
                            1e-9,
                            &mut failures,
                        );
                    }
                }
            }
        }
        for (key, opts) in [
            (
                "paper_stem",
                Rouge155Options {
                    stem: true,
                    ..Default::default()
                },
            ),
            ("paper_nostem", Rouge155Options::default()),
            ("see_et_al", Rouge155Options::see_et_al()),
        ] {
            let per = abridge_rouge::corpus::score_all_155(&opts, &pairs);
            let names = opts.metric_names();
            let summary = summarize_155(&names, &per, 1000, 95.0);
            let exp = &rec["rouge155"][key];
            let exp_plain = &rec["rouge155"][format!("{key}_plain_mean_of_pairs")];
            assert_eq!(
                summary.len(),
                exp.as_object().unwrap().len(),
                "{id} {key}: metric count"
            );
            for m in summary {
                for (field, avg) in [("R", m.r), ("P", m.p), ("F", m.f)] {
                    let e = &exp[&m.name][field];
                    close(
                        &format!("{id} {key} {} {field} avg", m.name),
                        avg.avg,
                        &e["avg"],
                        1e-9,
                        &mut failures,
                    );
                    close(
                        &format!("{id} {key} {} {field} ci_low", m.name),
                        avg.ci_low,
                        &e["ci_low"],
                        1e-9,
                        &mut failures,
                    );
                    close(
                        &format!("{id} {key} {} {field} ci_high", m.name),
                        avg.ci_high,
                        &e["ci_high"],
                        1e-9,
                        &mut failures,
                    );
                }
                let k = |f: &str| match f {
                    "R" => 0,
                    "P" => 1,
                    _ => 2,
                };
                for field in ["R", "P", "F"] {
                    let plain: f64 = per
                        .iter()
                        .map(|p| {
                            let v = p.iter().find(|(n, _)| *n == m.name).unwrap().1;
                            [v.R, v.P, v.F][k(field)]
                        })
                        .sum::<f64>()
                        / per.len() as f64;
                    close(
                        &format!("{id} {key} {} {field} plain mean", m.name),
                        plain,
                        &exp_plain[&m.name][field],
                        1e-9,
                        &mut failures,
                    );
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} values differ:\n{}",
        failures.len(),
        failures[..failures.len().min(40)].join("\n")
    );
}

#[test]
fn stemmers_agree_with_the_73k_word_vectors() {
    let Some(dir) = shared_or_skip("rouge", "stemmers_agree_with_the_73k_word_vectors") else {
        return;
    };
    let text = std::fs::read_to_string(dir.join("stem_vectors.tsv")).unwrap();
    let mut failures = Vec::new();
    let mut n = 0;
    for line in text.lines().skip(1) {
        let f: Vec<&str> = line.split('\t').collect();
        let (w, nltk, rs_tok, perl_m, perl_plain) = (f[0], f[1], f[2], f[3], f[4]);
        let long = w.len() > 3;
        let checks = [
            ("nltk", nltk_stem(w), nltk),
            (
                "rouge-score token",
                rouge_score_tokens(w, true).join(" "),
                rs_tok,
            ),
            (
                "perl -m",
                if long { perl_stem(w) } else { w.to_string() },
                perl_m,
            ),
            (
                "perl porter",
                if long { perl_porter(w) } else { w.to_string() },
                perl_plain,
            ),
        ];
        for (what, got, want) in checks {
            if got != want {
                failures.push(format!("{what}({w}) = {got}, expected {want}"));
            }
        }
        n += 1;
    }
    assert_eq!(n, 73_638, "words in stem_vectors.tsv");
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures[..failures.len().min(40)].join("\n")
    );
}

#[test]
fn our_ascii_nltk_porter_equals_the_reference_port_on_every_word() {
    let Some(dir) = shared_or_skip(
        "rouge",
        "our_ascii_nltk_porter_equals_the_reference_port_on_every_word",
    ) else {
        return;
    };
    let text = std::fs::read_to_string(dir.join("stem_vectors.tsv")).unwrap();
    let s = nltk_porter::PorterStemmer::new(nltk_porter::Mode::Nltk);
    let mut bad = Vec::new();
    for line in text.lines().skip(1) {
        let f: Vec<&str> = line.split('\t').collect();
        let ours = abridge_rouge::nltk_porter::stem_ascii(f[0]).unwrap();
        if ours != f[1] || ours != s.stem(f[0]) {
            bad.push(format!("{}: ours {ours}, nltk {}", f[0], f[1]));
        }
    }
    assert!(
        bad.is_empty(),
        "{} differ:\n{}",
        bad.len(),
        bad[..bad.len().min(30)].join("\n")
    );
}
