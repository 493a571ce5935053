//! The customer a training bot plays for a human trainee (issue 24): an
//! opening line, objections raised in order until the trainee's words
//! settle each, satisfaction when they are all settled and the trainee has
//! said what the customer needed to hear, and a hang-up in anger when the
//! trainee runs out the customer's patience or ignores an objection three
//! times. The trainee's questions are answered from what the customer
//! knows. What settles what is judged by a closeness the caller gives; the
//! dialogue engine uses [`closeness`], the share of a line's content words
//! the trainee said (decision 0084).

use std::time::{Duration, Instant};

/// How close a trainee's line must be to one of the script's lines to count
/// as saying it (by [`closeness`]: the share of its content words said).
pub const SETTLES_AT: f32 = 0.6;

/// Times an objection is raised before the customer gives up.
const MAX_RAISES: u32 = 3;

/// The customer's script.
#[derive(Debug, Clone, PartialEq)]
pub struct CustomerScript {
    /// Their first words.
    pub opening: String,
    /// Objections in order: the line, and what settles it.
    pub objections: Vec<(String, Vec<String>)>,
    /// What the trainee must say (any one) for the customer to be satisfied.
    pub satisfied_by: Vec<String>,
    /// Said when satisfied, before hanging up.
    pub satisfied_line: String,
    /// Said when giving up, before hanging up.
    pub angry_line: String,
    /// What they know, said when the trainee asks.
    pub knows: Vec<String>,
    /// What they want, said when the trainee's line moves nothing on.
    pub wants: String,
    /// How long they stay without being satisfied.
    pub patience: Duration,
}

/// How a training call ended, from the customer's side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// Every objection settled and what they needed said.
    Satisfied,
    /// Out of patience, or an objection ignored too often.
    Angry,
}

impl Ending {
    /// Its name in records (`satisfied`, `angry`).
    pub fn name(self) -> &'static str {
        match self {
            Ending::Satisfied => "satisfied",
            Ending::Angry => "angry",
        }
    }
}

/// What the customer does after a trainee's line.
#[derive(Debug, Clone, PartialEq)]
pub enum CustomerMove {
    /// Says this and waits for the trainee.
    Say(String),
    /// Says this and hangs up.
    End(String, Ending),
}

/// Where the customer is in their script.
#[derive(Debug, Clone)]
pub struct CustomerState {
    started: Instant,
    /// The objection raised and not settled yet (index), if any.
    raised: Option<usize>,
    /// Objections settled so far (the next to raise is this index).
    settled: usize,
    /// Times the current objection was raised.
    raises: u32,
    /// The trainee said one of `satisfied_by`.
    heard_what_they_needed: bool,
}

impl CustomerState {
    /// A call starting now.
    pub fn new(now: Instant) -> CustomerState {
        CustomerState {
            started: now,
            raised: None,
            settled: 0,
            raises: 0,
            heard_what_they_needed: false,
        }
    }

    /// Objections the trainee settled.
    pub fn settled(&self) -> usize {
        self.settled
    }
}

impl CustomerScript {
    /// The customer's answer to the trainee's `line` at `now`. `close`
    /// says how close `line` is to the closest of some lines (0–1).
    pub fn hear(
        &self,
        state: &mut CustomerState,
        line: &str,
        now: Instant,
        close: &dyn Fn(&str, &[String]) -> f32,
    ) -> CustomerMove {
        if now.duration_since(state.started) >= self.patience {
            return CustomerMove::End(self.angry_line.clone(), Ending::Angry);
        }
        if close(line, &self.satisfied_by) >= SETTLES_AT {
            state.heard_what_they_needed = true;
        }
        // The trainee may settle the objection raised, or the next one
        // before it is raised.
        while let Some((_, settled_by)) = self.objections.get(state.settled) {
            if close(line, settled_by) < SETTLES_AT {
                break;
            }
            state.settled += 1;
            state.raised = None;
            state.raises = 0;
        }
        if state.settled == self.objections.len() && state.heard_what_they_needed {
            return CustomerMove::End(self.satisfied_line.clone(), Ending::Satisfied);
        }
        // A question about what the customer knows is answered.
        if crate::router::is_question(line) {
            if let Some(fact) = self.closest_known(line, close) {
                return CustomerMove::Say(fact);
            }
        }
        match self.objections.get(state.settled) {
            Some((objection, _)) => {
                if state.raised == Some(state.settled) {
                    state.raises += 1;
                    if state.raises >= MAX_RAISES {
                        return CustomerMove::End(self.angry_line.clone(), Ending::Angry);
                    }
                    CustomerMove::Say(format!("You're not answering me. {objection}"))
                } else {
                    state.raised = Some(state.settled);
                    state.raises = 1;
                    CustomerMove::Say(objection.clone())
                }
            }
            None => CustomerMove::Say(format!("I still need to know: {}", self.wants.trim_end_matches('.'))),
        }
    }

    /// The known fact closest to a trainee's question, when one is close.
    fn closest_known(&self, question: &str, close: &dyn Fn(&str, &[String]) -> f32) -> Option<String> {
        self.knows
            .iter()
            .map(|k| (k, close(question, std::slice::from_ref(k))))
            .filter(|(_, c)| *c >= SETTLES_AT / 2.0)
            .max_by(|a, b| a.1.total_cmp(&b.1))
            .map(|(k, _)| {
                let mut s = k.trim().to_string();
                if let Some(first) = s.get(..1) {
                    s.replace_range(..1, &first.to_uppercase());
                }
                if !s.ends_with(['.', '!', '?']) {
                    s.push('.');
                }
                s
            })
    }
}

/// Closeness by words: the largest share of a line's terms (stop words
/// out, stemmed, numbers as digits: "costs" = "cost", "twenty five" = "25")
/// that `said` holds.
pub fn closeness(said: &str, lines: &[String]) -> f32 {
    let mut analyzer = crate::knowledge::english_analyzer();
    let heard = crate::knowledge::fact_terms(&mut analyzer, said);
    lines
        .iter()
        .map(|l| {
            let mut want = crate::knowledge::fact_terms(&mut analyzer, l);
            want.sort();
            want.dedup();
            if want.is_empty() {
                return 0.0;
            }
            want.iter().filter(|w| heard.contains(w)).count() as f32 / want.len() as f32
        })
        .fold(0.0, f32::max)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn script() -> CustomerScript {
        CustomerScript {
            opening: "I've been charged 25 dollars and nobody told me why.".into(),
            objections: vec![
                (
                    "Twenty-five dollars for two days? That's outrageous.".into(),
                    vec!["The fee is charged once per month in which the account goes overdrawn.".into()],
                ),
                (
                    "So what stops this from happening again?".into(),
                    vec!["You can ask for an arranged overdraft.".into()],
                ),
            ],
            satisfied_by: vec!["An unarranged overdraft costs 25 dollars per month.".into()],
            satisfied_line: "Thank you, goodbye.".into(),
            angry_line: "I'm getting nowhere. Goodbye.".into(),
            knows: vec!["the account went 40 dollars below zero for two days".into()],
            wants: "why 25 dollars was charged".into(),
            patience: Duration::from_secs(240),
        }
    }

    #[test]
    fn a_good_trainee_settles_each_objection_and_satisfies_the_customer() {
        let s = script();
        let t0 = Instant::now();
        let mut st = CustomerState::new(t0);
        let hear = |st: &mut CustomerState, line: &str| s.hear(st, line, t0, &closeness);
        assert_eq!(
            hear(&mut st, "I'm sorry to hear that, let me look at your account."),
            CustomerMove::Say(s.objections[0].0.clone())
        );
        assert_eq!(
            hear(&mut st, "How far below zero did the account go?"),
            CustomerMove::Say("The account went 40 dollars below zero for two days.".into())
        );
        assert_eq!(
            hear(
                &mut st,
                "An unarranged overdraft costs 25 dollars per month, and the fee is charged once per month in which the account goes overdrawn."
            ),
            CustomerMove::Say(s.objections[1].0.clone())
        );
        assert_eq!(
            hear(
                &mut st,
                "You can ask for an arranged overdraft so it won't happen again."
            ),
            CustomerMove::End(s.satisfied_line.clone(), Ending::Satisfied)
        );
        assert_eq!(st.settled(), 2);
    }

    #[test]
    fn a_poor_trainee_hears_the_objection_again_and_then_the_customer_hangs_up() {
        let s = script();
        let t0 = Instant::now();
        let mut st = CustomerState::new(t0);
        let mut hear = |line: &str| s.hear(&mut st, line, t0, &closeness);
        assert_eq!(hear("Please hold."), CustomerMove::Say(s.objections[0].0.clone()));
        assert!(matches!(hear("Fees are fees."), CustomerMove::Say(l) if l.starts_with("You're not answering me.")));
        assert_eq!(
            hear("There's nothing I can do."),
            CustomerMove::End(s.angry_line.clone(), Ending::Angry)
        );
    }

    #[test]
    fn words_are_compared_as_terms_so_a_recogniser_s_spelling_counts() {
        let line = vec!["An unarranged overdraft costs 25 dollars per month.".to_string()];
        assert!(closeness("an overdraft cost twenty five dollars a month", &line) >= SETTLES_AT);
        assert!(closeness("please hold the line", &line) < SETTLES_AT);
        // One misheard word of three still settles.
        let ask = vec!["You can ask for an arranged overdraft.".to_string()];
        assert!(closeness("You can ask for an arranged overgraft", &ask) >= SETTLES_AT);
    }

    #[test]
    fn the_customer_runs_out_of_patience() {
        let s = script();
        let t0 = Instant::now();
        let mut st = CustomerState::new(t0);
        let later = t0 + Duration::from_secs(241);
        assert_eq!(
            s.hear(&mut st, "You can ask for an arranged overdraft.", later, &closeness),
            CustomerMove::End(s.angry_line.clone(), Ending::Angry)
        );
    }
}
