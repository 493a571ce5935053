//! `voxline bench …`: component benchmarks, each printing its figures as a
//! table (media capacity, speech recognition, synthesis, the language model,
//! voice-to-voice turns over SIP).

pub mod asr;
pub mod llm;
pub mod media;
pub mod tts;
pub mod turn;
