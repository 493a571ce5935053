//! The real engines behind the session's traits: the streaming Whisper
//! recogniser and the Piper voice.

use super::{Recognizer, Voice};
use std::sync::Arc;
use voxline_asr::{AsrEvent, StreamingRecognizer};
use voxline_tts::TtsEngine;

#[async_trait::async_trait]
impl Recognizer for StreamingRecognizer {
    fn push(&mut self, samples: &[i16]) -> Result<(), String> {
        StreamingRecognizer::push(self, samples).map_err(|e| e.to_string())
    }

    async fn next_event(&mut self) -> Option<AsrEvent> {
        StreamingRecognizer::next_event(self).await
    }

    fn now_ms(&self) -> u64 {
        StreamingRecognizer::now_ms(self)
    }

    fn voice_since(&self) -> Option<u64> {
        self.segmenter().voice_since()
    }

    fn hangover_ms(&self) -> u32 {
        self.segmenter().config().hangover_ms
    }

    fn set_hangover_ms(&mut self, ms: u32) {
        self.segmenter_mut().set_hangover_ms(ms)
    }

    fn hears_turn_audio(&self) -> bool {
        StreamingRecognizer::hears_turn_audio(self)
    }

    fn close(&mut self) {
        StreamingRecognizer::close(self)
    }
}

#[async_trait::async_trait]
impl Voice for TtsEngine {
    fn sample_rate(&self) -> u32 {
        TtsEngine::sample_rate(self)
    }

    async fn line(&self, text: &str) -> Result<Arc<[i16]>, String> {
        TtsEngine::line(self, text).await.map_err(|e| e.to_string())
    }

    async fn synthesize(&self, phrase: &str) -> Result<Vec<i16>, String> {
        TtsEngine::synthesize(self, phrase).await.map_err(|e| e.to_string())
    }
}
