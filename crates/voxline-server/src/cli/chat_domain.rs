//! `voxline chat --domain DIR`: a domain agent in text. Each line is a
//! caller turn; the agent's lines, streamed answers and actions (tool
//! calls, digit collection, transfer, hang-up) are printed as they happen.
//! With `--eval FILE` it runs the pack's question set instead and prints
//! the shares answered, declined and tool calls right.

use std::collections::VecDeque;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use voxline_agent::eval;
use voxline_agent::{Action, Agent, Conversation, DomainPack};
use voxline_llm::ChatModel;

/// Runs the command.
pub async fn run(
    dir: &Path,
    eval_file: Option<&Path>,
    model: Arc<dyn ChatModel>,
    question: Option<String>,
) -> anyhow::Result<()> {
    let pack = Arc::new(DomainPack::load(dir)?);
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
        // Digits while the agent collects them are keyed, as DTMF would be.
        let queue: VecDeque<Action> = if conv.is_collecting() && said.chars().all(|c| c.is_ascii_digit() || c == '#') {
            conv.digits(said.trim_end_matches('#')).await.into()
        } else {
            conv.turn(&said).await?.1.into()
        };
        if act(&mut conv, queue).await? {
            break;
        }
    }
    Ok(())
}

/// Prints what the agent says and does; true when it ended the call.
async fn act(conv: &mut Conversation, mut queue: VecDeque<Action>) -> anyhow::Result<bool> {
    let mut ended = false;
    loop {
        for s in conv.take_reached() {
            eprintln!("[flow step: {} (by {})]", s.step, s.via);
        }
        let Some(action) = queue.pop_front() else {
            return Ok(ended);
        };
        {
            match action {
                Action::Say(s) => println!("agent> {s}"),
                Action::Answer(mut a) => {
                    print!("agent>");
                    let mut heard = Vec::new();
                    while let Some(p) = a.next_phrase().await? {
                        print!(" {p}");
                        std::io::stdout().flush().ok();
                        heard.push(p);
                    }
                    println!();
                    if let Some(why) = &a.stopped {
                        eprintln!("[answer stopped: {why}]");
                    }
                    conv.answered(&a, &heard.join(" "));
                }
                Action::CollectDigits { length } => eprintln!("[waiting for {length} digits: type them]"),
                Action::CallTool(call) => {
                    eprintln!("[calling {} with {:?}]", call.tool, call.args);
                    queue.extend(conv.run_tool(call).await);
                }
                Action::ScheduleCallback { when } => eprintln!("[callback scheduled: {when}]"),
                Action::SendDtmf { digits } => eprintln!("[keyed {digits}]"),
                Action::Transfer { to } => {
                    eprintln!("[transfer to {to}]");
                    ended = true;
                }
                Action::HangUp => {
                    eprintln!("[hang up]");
                    ended = true;
                }
            }
        }
    }
}

async fn run_eval(agent: &Arc<Agent>, file: &Path) -> anyhow::Result<()> {
    let cases = eval::load_cases(file).map_err(anyhow::Error::msg)?;
    let outcomes = eval::run(agent, &cases).await;
    for o in &outcomes {
        println!(
            "{} {:<8} {:<62} -> {} | {}",
            if o.ok { "ok  " } else { "FAIL" },
            format!("{:?}", o.case.expect).to_lowercase(),
            o.case.ask,
            o.got,
            o.said
        );
    }
    println!();
    println!("{:<44} {:>6} {:>6} {:>7}", "question set", "right", "of", "share");
    for (label, right, total) in eval::summary(&outcomes) {
        let share = if total > 0 {
            100.0 * right as f64 / total as f64
        } else {
            0.0
        };
        println!("{label:<44} {right:>6} {total:>6} {share:>6.0}%");
    }
    let right = outcomes.iter().filter(|o| o.ok).count();
    println!(
        "{:<44} {:>6} {:>6} {:>6.0}%",
        "all",
        right,
        outcomes.len(),
        100.0 * right as f64 / outcomes.len().max(1) as f64
    );
    Ok(())
}
