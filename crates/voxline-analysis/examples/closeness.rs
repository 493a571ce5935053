//! How close sentences lie to a scorecard line, as the scorer sees it:
//! `cargo run --release --example closeness -- MODEL_DIR "line" "sentence"...`
//! prints each sentence's meaning (cosine) and share of the line's content
//! words, for a scorecard author choosing wordings.

use std::path::Path;
use voxline_analysis::meaning::word_share;
use voxline_llm::embed::similarity;
use voxline_llm::Embedder;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [dir, line, sentences @ ..] = args.as_slice() else {
        return Err("usage: closeness MODEL_DIR LINE SENTENCE...".into());
    };
    let embedder = Embedder::load(Path::new(dir))?;
    let mut texts: Vec<&str> = vec![line.as_str()];
    texts.extend(sentences.iter().map(String::as_str));
    let vectors = embedder.embed(&texts)?;
    for (s, v) in sentences.iter().zip(&vectors[1..]) {
        println!(
            "meaning {:.2}  words {:.2}  {s}",
            similarity(&vectors[0], v),
            word_share(line, s)
        );
    }
    Ok(())
}
