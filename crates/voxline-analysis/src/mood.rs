//! A speaker's mood line by line, by meaning: each sentence is set beside
//! short examples of unhappy and of pleased callers (embedded once) and
//! takes the mood it lies clearly closer to; else it is neutral.

use crate::meaning::{CallSentences, Targets};
use crate::scorecard::Speaker;
use voxline_llm::{EmbedError, Embedder};

/// How a sentence sounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Mood {
    /// Upset, angry, let down.
    Negative,
    /// Neither.
    Neutral,
    /// Pleased, relieved, thankful.
    Positive,
}

/// Sentences of upset callers.
const NEGATIVE: &[&str] = &[
    "I'm really angry about this.",
    "This is ridiculous.",
    "I'm fed up with this.",
    "This is useless.",
    "That was no help at all.",
    "I'm very disappointed with your service.",
    "Forget it.",
    "This is not acceptable.",
    "Nobody has fixed my problem.",
    "I'm not happy about this at all.",
    "This is not very reassuring.",
    "Thanks for nothing.",
    "I'm absolutely sick of it.",
    "This is a disgrace.",
    "You've been hopeless.",
    "What a waste of time.",
    "Useless.",
];

/// Sentences of pleased callers.
const POSITIVE: &[&str] = &[
    "Thank you so much, that's great.",
    "That's a big relief.",
    "Perfect, thanks.",
    "You've been really helpful.",
    "Brilliant, that's exactly what I needed.",
    "Great news, thank you.",
];

/// A sentence this close to an example takes its mood.
pub const MOOD_CLOSE: f32 = 0.55;
/// ... when it is this much closer to it than to the other mood's.
pub const MOOD_MARGIN: f32 = 0.05;

/// The examples, embedded once.
#[derive(Debug, Clone)]
pub struct MoodReader {
    negative: Targets,
    positive: Targets,
}

/// One sentence's mood, with its index among the call's sentences.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SentenceMood {
    /// The sentence's index in [`CallSentences::sentences`].
    pub sentence: usize,
    /// Its mood.
    pub mood: Mood,
    /// Its closeness to the mood's examples (to the negative ones when neutral).
    pub closeness: f32,
}

impl MoodReader {
    /// Embeds the examples.
    pub fn new(embedder: &Embedder) -> Result<MoodReader, EmbedError> {
        let lines = |l: &[&str]| l.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        Ok(MoodReader {
            negative: Targets::new(&lines(NEGATIVE), embedder)?,
            positive: Targets::new(&lines(POSITIVE), embedder)?,
        })
    }

    /// The mood of each of `who`'s sentences, in call order.
    pub fn read(&self, call: &CallSentences, who: Speaker) -> Vec<SentenceMood> {
        let neg = call.closeness(who, &self.negative);
        let pos = call.closeness(who, &self.positive);
        neg.into_iter()
            .zip(pos)
            .map(|((sentence, n), (_, p))| {
                let (mood, closeness) = if n >= MOOD_CLOSE && n >= p + MOOD_MARGIN {
                    (Mood::Negative, n)
                } else if p >= MOOD_CLOSE && p >= n + MOOD_MARGIN {
                    (Mood::Positive, p)
                } else {
                    (Mood::Neutral, n)
                };
                SentenceMood {
                    sentence,
                    mood,
                    closeness,
                }
            })
            .collect()
    }
}

/// The mood of a stretch of sentences: negative when any is (one angry
/// sentence sets the tone), else positive when any is, else neutral.
pub fn overall(moods: &[SentenceMood]) -> Mood {
    if moods.iter().any(|m| m.mood == Mood::Negative) {
        Mood::Negative
    } else if moods.iter().any(|m| m.mood == Mood::Positive) {
        Mood::Positive
    } else {
        Mood::Neutral
    }
}
