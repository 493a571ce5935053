//! `voxline learn DOCS… --pack DIR`: documents (Markdown, plain text, HTML,
//! PDF, DOCX) into a domain pack's knowledge, with a report of what was
//! taken, what repeated the pack and what contradicted it (see
//! `voxline_analysis::learn`). A running server reloads the pack when its
//! files change (the next call gets the new knowledge).

use anyhow::Context;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;
use voxline_analysis::learn::{learn, LearnOptions};

/// Arguments of `voxline learn`.
#[derive(clap::Args, Debug)]
pub struct LearnArgs {
    /// The documents (.md, .txt, .html, .pdf, .docx).
    #[arg(required = true)]
    docs: Vec<PathBuf>,
    /// The domain pack to learn into (its knowledge/ folder).
    #[arg(long)]
    pack: PathBuf,
    /// Word-triple overlap (0 to 1) at or above which a section repeats one
    /// the pack holds; such sections are left out.
    #[arg(long, default_value_t = LearnOptions::default().threshold)]
    threshold: f32,
    /// Report what would be taken; write nothing.
    #[arg(long)]
    dry_run: bool,
}

/// Runs `voxline learn`.
pub fn run(args: LearnArgs) -> anyhow::Result<ExitCode> {
    if !(0.0..=1.0).contains(&args.threshold) {
        anyhow::bail!("--threshold {} must be between 0 and 1", args.threshold);
    }
    let started = Instant::now();
    let report = learn(
        &args.pack,
        &args.docs,
        LearnOptions {
            threshold: args.threshold,
            dry_run: args.dry_run,
        },
    )
    .with_context(|| format!("nothing learned into {}", args.pack.display()))?;
    let seconds = started.elapsed().as_secs_f64();
    let mut contradictions = 0;
    println!(
        "| document | title | written to | sections taken | repeats left out | contradictions left out | characters |"
    );
    println!("|---|---|---|---:|---:|---:|---:|");
    for d in &report.documents {
        let contra = d.dropped.iter().filter(|x| !x.figures.is_empty()).count();
        contradictions += contra;
        println!(
            "| {} | {} | {} | {} | {} | {} | {} |",
            d.source.display(),
            d.title,
            d.file.as_ref().map_or("-".into(), |f| f.display().to_string()),
            d.taken.len(),
            d.dropped.len() - contra,
            contra,
            d.chars
        );
    }
    for d in &report.documents {
        for x in &d.dropped {
            if x.figures.is_empty() {
                println!(
                    "repeat: {} › {} is {:.0}% like {}",
                    d.source.display(),
                    x.heading,
                    x.similarity * 100.0,
                    x.like
                );
            } else {
                println!(
                    "CONTRADICTION, left for an expert: {} › {} states {} where {} (alike {:.0}%) does not",
                    d.source.display(),
                    x.heading,
                    x.figures.join(", "),
                    x.like,
                    x.similarity * 100.0
                );
            }
        }
    }
    let taken: usize = report.documents.iter().map(|d| d.taken.len()).sum();
    let drafted: usize = report.documents.iter().map(|d| d.drafted).sum();
    match &report.question_set {
        Some((set, all)) => println!(
            "{drafted} question(s) drafted from these documents; {} holds {all} for review (run it: voxline chat --domain {} --eval {})",
            set.display(),
            args.pack.display(),
            set.display()
        ),
        None => println!("{drafted} question(s) would be drafted"),
    }
    println!(
        "{} document(s), {taken} section(s) taken in {seconds:.2} s{}{}",
        report.documents.len(),
        if args.dry_run {
            " (dry run: nothing written)"
        } else {
            ""
        },
        if contradictions > 0 {
            format!("; {contradictions} contradiction(s) to settle")
        } else {
            String::new()
        }
    );
    Ok(ExitCode::SUCCESS)
}
