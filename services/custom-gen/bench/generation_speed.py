"""Generation time per minute of audio with the local engine (eSpeak NG + LAME, one core).

    uv run python services/custom-gen/bench/generation_speed.py

Synthesises the template writer's ``standard`` and ``extended`` sessions (the real scripts a
buyer gets), encodes MP3 at 64 kbit/s and prints seconds of work per minute of audio.
"""

from __future__ import annotations

import asyncio
import time

from coursemesh.customgen.adapters.espeak import EspeakSynthesizer
from coursemesh.customgen.adapters.mp3 import Mp3Encoder
from coursemesh.customgen.domain.intake import Intake
from coursemesh.customgen.domain.template_scripts import write_template_scripts


async def main() -> None:
    speech, encoder = EspeakSynthesizer(), Mp3Encoder(64)
    await speech.synthesize("warm up", "calm_female")
    for length in ("standard", "extended"):
        intake = Intake(
            goal="Sleep deeply and wake rested",
            preferred_name="Sam",
            focus_areas=["evening worries", "racing thoughts"],
            session_count=3,
            session_length=length,  # type: ignore[arg-type]
        )
        tts = mp3 = 0.0
        audio_ms = size = 0
        for script in write_template_scripts(intake):
            t0 = time.perf_counter()
            pcm = await speech.synthesize(script.spoken_text, intake.voice)
            t1 = time.perf_counter()
            encoded = await encoder.encode(pcm)
            t2 = time.perf_counter()
            tts, mp3 = tts + t1 - t0, mp3 + t2 - t1
            audio_ms += encoded.duration_ms
            size += len(encoded.body)
        minutes = audio_ms / 60000
        print(
            f"{length:9s} audio {minutes:5.2f} min  tts {tts / minutes:5.2f} s/min  "
            f"mp3 {mp3 / minutes:5.2f} s/min  total {(tts + mp3) / minutes:5.2f} s/min  "
            f"{size / minutes / 1024:6.1f} KiB/min"
        )


if __name__ == "__main__":
    asyncio.run(main())
