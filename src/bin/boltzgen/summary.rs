//! The results of a command on stdout: the summary table of each stage that ran, the files
//! written, and the verdict; the verdict's warnings follow on stderr, even with `-q`, so that a
//! run that cannot be trusted never looks like one that can.

use boltzgen::pipeline::{Prepared, RunReport};

fn fmt(v: Option<f64>, digits: usize) -> String {
    v.map(|v| format!("{v:.digits$}"))
        .unwrap_or_else(|| "—".into())
}

/// The summary table and the paths of everything written.
pub fn print_summary(prep: &Prepared, report: &RunReport) {
    let trained = report.train.as_ref();
    let sampled = report.sample.as_ref();
    let reweighted = report.reweight.as_ref();
    let warnings = &report.warnings;
    // Warnings go to stderr, after everything else and even with --quiet: a run that cannot
    // be trusted must not look like one that can.
    let warn = || {
        for w in warnings {
            eprintln!("{w}");
        }
    };
    println!();
    println!(
        "system {} (β = {}), seed {}",
        prep.system.potential.name(),
        prep.system.beta,
        prep.seed
    );
    if let Some(t) = trained {
        println!(
            "  train     {} steps in {:.1} s, final loss {}",
            t.steps,
            t.seconds,
            fmt(t.final_loss, 4)
        );
        if let Some(o) = &t.oversampling {
            println!(
                "            oversampled {} frames: {} copies added",
                o.selected, o.added
            );
        }
        if let Some(r) = &t.relaxation {
            println!(
                "            relaxed {} frames first: mean U {:.3} → {:.3}, acceptance {:.3}",
                r.frames, r.mean_energy_before, r.mean_energy_after, r.acceptance
            );
        }
    }
    if let Some(s) = sampled {
        let moves: Vec<String> = s
            .moves
            .iter()
            .map(|m| format!("{} {:.3}", m.name, m.production.acceptance_rate()))
            .collect();
        println!(
            "  sample    {} frames in {:.1} s; acceptance: {}",
            s.frames,
            s.seconds,
            moves.join(", ")
        );
        if let Some(e) = &s.energy {
            println!(
                "            ⟨U⟩ = {} ± {}, τ = {} frames, ESS = {}, split-R̂ = {}",
                fmt(e.mean, 4),
                fmt(e.std_error, 4),
                fmt(e.tau, 1),
                fmt(e.ess, 0),
                fmt(e.split_rhat, 4)
            );
        }
        if let Some(t) = &s.transitions {
            println!("            {} transitions between states", t.total);
        }
        if let Some(x) = &s.replica_exchange {
            let temperatures: Vec<String> =
                x.temperatures.iter().map(|t| fmt(Some(*t), 1)).collect();
            let swaps: Vec<String> = x
                .report
                .pairs
                .iter()
                .map(|p| fmt(p.acceptance, 2))
                .collect();
            println!(
                "            replica exchange: {} ladders × {} rungs (T = {}{}), swap acceptance {}, {} round trips",
                x.report.ladders,
                x.temperatures.len(),
                temperatures.join(", "),
                if x.report.tuned { ", tuned" } else { "" },
                swaps.join(", "),
                x.report.total_round_trips()
            );
        }
        for r in &s.regions {
            let p = r.probability.as_ref();
            println!(
                "            P({}) = {} ± {}, F − F({}) = {} ± {}",
                r.name,
                fmt(p.and_then(|p| p.mean), 4),
                fmt(p.and_then(|p| p.std_error), 4),
                s.regions[0].name,
                fmt(r.delta_f, 3),
                fmt(r.delta_f_std_error, 3)
            );
        }
    }
    if let Some(r) = reweighted {
        println!(
            "  reweight  {} draws, ESS {:.1} %, log Z = {} ± {}{}",
            r.draws,
            100.0 * r.ess_fraction,
            fmt(r.log_z.value, 4),
            fmt(r.log_z.std_error, 4),
            r.exact_log_z
                .map(|z| format!(" (exact {z:.4})"))
                .unwrap_or_default()
        );
        if let Some(b) = &r.balance {
            println!(
                "            kept by region from {} generator draws (the flow's own ESS: {:.1} % in a pilot of {}):",
                b.generator_draws,
                100.0 * b.pilot_ess_fraction,
                b.pilot_draws
            );
            for s in &b.strata {
                println!(
                    "              {}: acceptance {:.4}, flow share {:.4} → {} draws",
                    s.name, s.plan.acceptance, s.plan.flow_share, s.draws
                );
            }
        }
        for d in &r.state_differences {
            println!(
                "            F({}) − F({}) = {} ± {}",
                d.to,
                d.from,
                fmt(d.delta_f.value, 4),
                fmt(d.delta_f.std_error, 4)
            );
        }
        for g in &r.regions {
            println!(
                "            P({}) = {} ± {}, F − F({}) = {} ± {} ({} draws, {:.0} effective)",
                g.name,
                fmt(g.probability.value, 4),
                fmt(g.probability.std_error, 4),
                r.regions[0].name,
                fmt(g.delta_f.value, 3),
                fmt(g.delta_f.std_error, 3),
                g.draws,
                g.effective_draws
            );
        }
    }
    println!("written to {}:", prep.run_dir.display());
    let mut entries: Vec<String> = std::fs::read_dir(&prep.run_dir)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| !n.starts_with('.'))
                .collect()
        })
        .unwrap_or_default();
    entries.sort();
    for e in entries {
        println!("  {}", prep.run_dir.join(e).display());
    }
    if sampled.is_some() || reweighted.is_some() {
        match warnings.len() {
            0 => println!("verdict: no convergence warning"),
            n => println!(
                "verdict: {n} convergence warning{} (below, and `warnings` in the reports)",
                if n == 1 { "" } else { "s" }
            ),
        }
    }
    warn();
}
