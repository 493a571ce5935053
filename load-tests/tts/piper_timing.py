"""Times the piper-tts engine (the library behind the `piper` command) on
the same voice and texts as `voxline bench tts`: for each line of stdin,
time to the first audio chunk and to the end, and seconds of audio. One
JSON object per line on stdout. Run with the bench venv's python."""
import json
import sys
import time

from piper import PiperVoice

voice = PiperVoice.load(sys.argv[1])
# Warm-up, as voxline's engine warms its session at start.
for _ in voice.synthesize("Hello."):
    pass
for line in sys.stdin:
    text = line.strip()
    if not text or text.startswith("#"):
        continue
    t0 = time.perf_counter()
    first = None
    samples = 0
    rate = 22050
    for chunk in voice.synthesize(text):
        if first is None:
            first = time.perf_counter() - t0
        samples += len(chunk.audio_int16_bytes) // 2
        rate = chunk.sample_rate
    total = time.perf_counter() - t0
    print(json.dumps({"first": first, "total": total, "audio": samples / rate}), flush=True)
