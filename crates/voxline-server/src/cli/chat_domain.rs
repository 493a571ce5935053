//! `voxline chat --domain DIR`: a domain agent in text. Each line is a
//! caller turn; the agent's lines, streamed answers and actions (tool
//! calls, digit collection, transfer, hang-up) are printed as they happen.
//! With `--eval FILE` it runs the pack's question set instead and prints
//! the shares answered, declined and tool calls right.

use std::collections::VecDeque;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use voxline_agent::eval;
use voxline_agent::{Action, Agent, Conversation, DomainPack};
use voxline_llm::ChatModel;

use crate::ops::text_turns::{self, TextEvent, Tools};

/// Runs the command on a loaded pack.
pub async fn run(
    mut pack: DomainPack,
    eval_file: Option<&Path>,
    model: Arc<dyn ChatModel>,
    embedding: Option<PathBuf>,
    question: Option<String>,
) -> anyhow::Result<()> {
    if let Some(dir) = embedding {
        let embedder = tokio::task::spawn_blocking(move || voxline_llm::Embedder::load(&dir)).await??;
        pack = pack.understand(Arc::new(embedder))?;
    }
    let pack = Arc::new(pack);
    let agent = Arc::new(Agent::new(pack, model));
    agent.warm().await?;
    if let Some(file) = eval_file {
        return run_eval(&agent, file).await;
    }
    let mut conv = agent.conversation();
    let opening = conv.opening().await;
    if act(&mut conv, opening.into()).await? {
        return Ok(());
    }
    let turns: Box<dyn Iterator<Item = String>> = match question {
        Some(q) => Box::new(std::iter::once(q)),
        None => Box::new(std::io::stdin().lines().map_while(Result::ok)),
    };
    for said in turns {
        let said = said.trim().to_string();
        if said.is_empty() {
            continue;
        }
        let queue = text_turns::caller_turn(&mut conv, &said).await?;
        if act(&mut conv, queue).await? {
            break;
        }
    }
    Ok(())
}

/// Prints what the agent says and does; true when it ended the call.
async fn act(conv: &mut Conversation, queue: VecDeque<Action>) -> anyhow::Result<bool> {
    text_turns::act(conv, queue, Tools::Run, &mut |e| match e {
        TextEvent::Say(s) => println!("agent> {s}"),
        TextEvent::AnswerStart => print!("agent>"),
        TextEvent::Phrase(p) => {
            print!(" {p}");
            std::io::stdout().flush().ok();
        }
        TextEvent::AnswerEnd { stopped } => {
            println!();
            if let Some(why) = stopped {
                eprintln!("[answer stopped: {why}]");
            }
        }
        TextEvent::Note(n) => eprintln!("[{n}]"),
    })
    .await
}

async fn run_eval(agent: &Arc<Agent>, file: &Path) -> anyhow::Result<()> {
    let cases = eval::load_cases(file).map_err(anyhow::Error::msg)?;
    let outcomes = eval::run(agent, &cases).await;
    for o in &outcomes {
        let grade = match &o.grade {
            eval::Grade::Right => "ok   ".to_string(),
            eval::Grade::WrongFact(what) => format!("WRONG ({what})"),
            eval::Grade::AskedAgain => "AGAIN".to_string(),
            eval::Grade::Missed => "MISS ".to_string(),
        };
        println!(
            "{grade} {:<8} {:<62} -> {} | {}",
            format!("{:?}", o.case.expect).to_lowercase(),
            o.case.ask,
            o.got,
            o.said
        );
    }
    println!();
    println!(
        "{:<34} {:>6} {:>6} {:>7} {:>12} {:>12} {:>12}",
        "question set", "cases", "right", "share", "of it read", "wrong facts", "asked again"
    );
    for t in eval::summary(&outcomes) {
        let share = if t.cases > 0 {
            100.0 * t.right as f64 / t.cases as f64
        } else {
            0.0
        };
        println!(
            "{:<34} {:>6} {:>6} {:>6.0}% {:>12} {:>12} {:>12}",
            t.label, t.cases, t.right, share, t.right_read, t.wrong_facts, t.asked_again
        );
    }
    println!();
    println!("\"of it read\": right answers read from the knowledge as written (the model's words failed the guard, or it wrote none)");
    let r = eval::retrieval(agent, &cases).await;
    println!(
        "retrieval: a passage holding the answer first in {}/{} fact questions, in the first three in {}/{}",
        r.at_1, r.cases, r.at_3, r.cases
    );
    match eval::passes(&outcomes, eval::Bar::default()) {
        Ok(()) => {
            println!("the set passes (no wrong fact, at least 95% right, at least half the facts in the model's words)")
        }
        Err(why) => println!("the set does not pass: {}", why.join("; ")),
    }
    Ok(())
}
