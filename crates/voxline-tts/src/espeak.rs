//! Phonemes from espeak-ng, linked as a library (Debian `libespeak-ng-dev`):
//! text → IPA, clause by clause, the way Piper's voices were trained.
//!
//! espeak-ng keeps global state and is not thread-safe: every use goes
//! through one process-wide lock. Phonemising a sentence takes well under a
//! millisecond, so the lock is never the bottleneck.

use crate::TtsError;
use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::sync::Mutex;

#[link(name = "espeak-ng")]
extern "C" {
    fn espeak_Initialize(output: c_int, buflength: c_int, path: *const c_char, options: c_int) -> c_int;
    fn espeak_SetVoiceByName(name: *const c_char) -> c_int;
    fn espeak_TextToPhonemes(textptr: *mut *const c_void, textmode: c_int, phonememode: c_int) -> *const c_char;
}

/// `AUDIO_OUTPUT_SYNCHRONOUS`: no audio thread (only phonemes are used).
const AUDIO_OUTPUT_SYNCHRONOUS: c_int = 2;
/// `espeakINITIALIZE_DONT_EXIT`: report errors instead of exiting.
const INITIALIZE_DONT_EXIT: c_int = 0x8000;
/// `espeakCHARS_UTF8`.
const CHARS_UTF8: c_int = 1;
/// `espeakPHONEMES_IPA`.
const PHONEMES_IPA: c_int = 0x02;

/// espeak-ng's state: initialised once, and the voice last selected.
static ESPEAK: Mutex<Option<String>> = Mutex::new(None);
static INIT: std::sync::OnceLock<Result<(), String>> = std::sync::OnceLock::new();

fn init() -> Result<(), TtsError> {
    INIT.get_or_init(|| {
        // SAFETY: called once (OnceLock); a null path means espeak-ng's
        // installed data directory.
        let rate = unsafe { espeak_Initialize(AUDIO_OUTPUT_SYNCHRONOUS, 0, std::ptr::null(), INITIALIZE_DONT_EXIT) };
        if rate <= 0 {
            Err("espeak-ng did not initialise (is the espeak-ng-data package installed?)".into())
        } else {
            Ok(())
        }
    })
    .clone()
    .map_err(TtsError::Phonemes)
}

/// Clause-ending punctuation Piper keeps as a phoneme of its own.
const CLAUSE_PUNCTUATION: &[char] = &['.', ',', ';', ':', '!', '?'];

/// The IPA phonemes of `text` in espeak-ng voice `voice` ("en-us"), with
/// the text's clause punctuation kept (".", ",", "?"...) and a space between
/// clauses, as Piper expects.
pub fn phonemize(text: &str, voice: &str) -> Result<String, TtsError> {
    init()?;
    let mut guard = ESPEAK
        .lock()
        .map_err(|_| TtsError::Phonemes("espeak-ng lock poisoned".into()))?;
    if guard.as_deref() != Some(voice) {
        let name = CString::new(voice).map_err(|_| TtsError::Phonemes(format!("bad voice name {voice:?}")))?;
        // SAFETY: espeak-ng is initialised and the lock is held.
        if unsafe { espeak_SetVoiceByName(name.as_ptr()) } != 0 {
            return Err(TtsError::Phonemes(format!("espeak-ng has no voice {voice:?}")));
        }
        *guard = Some(voice.to_string());
    }
    let mut out = String::new();
    for (clause, punct) in clauses(text) {
        let Ok(c) = CString::new(clause.as_str()) else {
            continue;
        };
        let mut ptr = c.as_ptr() as *const c_void;
        while !ptr.is_null() {
            // SAFETY: `ptr` points into `c` (NUL-terminated, alive for the
            // loop); espeak-ng advances it or sets it to null at the end; the
            // returned string is espeak's buffer, copied before the next call.
            let ph = unsafe { espeak_TextToPhonemes(&mut ptr, CHARS_UTF8, PHONEMES_IPA) };
            if ph.is_null() {
                break;
            }
            // SAFETY: a NUL-terminated string from espeak-ng.
            let s = unsafe { CStr::from_ptr(ph) }.to_string_lossy();
            let s = s.trim();
            if !s.is_empty() {
                if !out.is_empty() && !out.ends_with(' ') {
                    out.push(' ');
                }
                out.push_str(s);
            }
        }
        if let Some(p) = punct {
            out.push(p);
            out.push(' ');
        }
    }
    Ok(out.trim_end().to_string())
}

/// Splits text at clause punctuation followed by a space or the end
/// ("3.5" and "e.g." stay whole): (clause, its punctuation).
fn clauses(text: &str) -> Vec<(String, Option<char>)> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut cur = String::new();
    for (i, &c) in chars.iter().enumerate() {
        let at_break = CLAUSE_PUNCTUATION.contains(&c) && chars.get(i + 1).is_none_or(|n| n.is_whitespace());
        if at_break {
            if !cur.trim().is_empty() {
                out.push((cur.trim().to_string(), Some(c)));
            } else if let Some(last) = out.last_mut() {
                last.1 = Some(c);
            }
            cur.clear();
        } else {
            cur.push(c);
        }
    }
    if !cur.trim().is_empty() {
        out.push((cur.trim().to_string(), None));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_cut_into_clauses_at_punctuation_only() {
        assert_eq!(
            clauses("Hello world, it costs 3.5 dollars. Right?"),
            vec![
                ("Hello world".to_string(), Some(',')),
                ("it costs 3.5 dollars".to_string(), Some('.')),
                ("Right".to_string(), Some('?')),
            ]
        );
        assert_eq!(clauses("no end"), vec![("no end".to_string(), None)]);
    }

    #[test]
    fn espeak_gives_ipa_with_the_punctuation_kept() {
        let p = phonemize("Hello world, how are you?", "en-us").unwrap();
        assert!(p.starts_with("həlˈoʊ wˈɜːld,"), "{p}");
        assert!(p.ends_with('?'), "{p}");
        assert!(phonemize("x", "no-such-voice-zz").is_err());
    }
}
