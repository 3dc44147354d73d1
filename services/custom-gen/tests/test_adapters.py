"""Adapters against real things: eSpeak NG + LAME from wheels, an HTTP TTS and an n8n webhook
(real local HTTP servers speaking their contracts), and the shipped n8n workflow export."""

from __future__ import annotations

import io
import json
import math
import struct
import wave
from pathlib import Path
from typing import Any

import pytest

from coursemesh.customgen.adapters.espeak import EspeakSynthesizer
from coursemesh.customgen.adapters.http_tts import HttpSpeechSynthesizer
from coursemesh.customgen.adapters.mp3 import Mp3Encoder
from coursemesh.customgen.adapters.script_writers import N8nScriptWriter
from coursemesh.customgen.app.ports import Pcm, ScriptRequest, ScriptWriterError, SpeechError
from coursemesh.customgen.domain.intake import Intake

from .http_servers import n8n_contract, serve

WORKFLOW = Path(__file__).parents[3] / "deploy" / "n8n" / "custom-course-scripts.json"
INTAKE = Intake(goal="Sleep deeply", preferred_name="Sam", session_count=2)
REQUEST = ScriptRequest(custom_course_id="c1", course_code="X99ENB", intake=INTAKE)


async def test_espeak_speaks_a_sentence_and_lame_encodes_it() -> None:
    pcm = await EspeakSynthesizer().synthesize("Take a slow, deep breath.", "calm_female")
    assert pcm.sample_rate == 22050
    assert 1000 < pcm.duration_ms < 6000
    # Real speech, not silence.
    samples = struct.unpack(f"<{pcm.sample_count}h", pcm.samples)
    assert max(abs(s) for s in samples) > 1000
    audio = await Mp3Encoder(64).encode(pcm)
    assert audio.body[:2] == b"\xff\xf3" or audio.body[:3] == b"ID3" or audio.body[0] == 0xFF
    assert audio.duration_ms == pcm.duration_ms
    # 64 kbit/s: the file size follows the duration (within framing overhead).
    assert abs(len(audio.body) - pcm.duration_ms * 8) < 4000


async def test_voices_differ() -> None:
    engine = EspeakSynthesizer()
    female = await engine.synthesize("Relax.", "calm_female")
    male = await engine.synthesize("Relax.", "calm_male")
    assert female.samples != male.samples


def _wav(seconds: float, rate: int = 16000) -> bytes:
    frames = b"".join(
        struct.pack("<h", int(8000 * math.sin(2 * math.pi * 220 * n / rate)))
        for n in range(int(seconds * rate))
    )
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(frames)
    return buffer.getvalue()


async def test_http_tts_adapter_reads_wav_from_a_real_server() -> None:
    with serve(lambda path, body: (200, "audio/wav", _wav(0.5))) as (url, received):
        pcm = await HttpSpeechSynthesizer(url, api_key="k1").synthesize("Hello", "neutral")
    assert (pcm.sample_rate, pcm.duration_ms) == (16000, 500)
    assert received[0]["body"] == {"text": "Hello", "voice": "neutral"}
    assert received[0]["headers"]["Authorization"] == "Bearer k1"


@pytest.mark.parametrize(
    "answer",
    [(500, "text/plain", b"boom"), (200, "audio/wav", b"not a wav")],
    ids=["server-error", "garbage"],
)
async def test_http_tts_failures_are_speech_errors(answer: tuple[int, str, bytes]) -> None:
    with serve(lambda path, body: answer) as (url, _), pytest.raises(SpeechError):
        await HttpSpeechSynthesizer(url).synthesize("Hello", "neutral")


async def test_n8n_adapter_speaks_the_webhook_contract() -> None:
    with serve(n8n_contract) as (url, received):
        sessions = await N8nScriptWriter(f"{url}/webhook/custom-course-scripts").write(REQUEST)
    assert [s.title for s in sessions] == ["Session 1: Written by n8n", "Session 2: Written by n8n"]
    assert sessions[0].sections[2].text == "Your goal: Sleep deeply."
    sent = received[0]
    assert sent["path"] == "/webhook/custom-course-scripts"
    assert sent["body"]["customCourseId"] == "c1"
    assert sent["body"]["courseCode"] == "X99ENB"
    assert sent["body"]["intake"]["preferredName"] == "Sam"
    assert sent["body"]["intake"]["sessionCount"] == 2


def _one_session(path: str, body: Any) -> tuple[int, str, bytes]:
    status, kind, payload = n8n_contract(path, {"intake": {**body["intake"], "sessionCount": 1}})
    return status, kind, payload


def _no_emergence(path: str, body: Any) -> tuple[int, str, bytes]:
    _, kind, payload = n8n_contract(path, body)
    answer = json.loads(payload)
    for session in answer["sessions"]:
        session["sections"] = [*session["sections"][:3], session["sections"][0]]
    return 200, kind, json.dumps(answer).encode()


@pytest.mark.parametrize(
    "respond",
    [
        lambda p, b: (500, "text/plain", b"workflow error"),
        lambda p, b: (200, "application/json", b'{"sessions": "nope"}'),
        _one_session,
        _no_emergence,
    ],
    ids=["http-500", "malformed", "wrong-count", "missing-section"],
)
async def test_n8n_adapter_refuses_bad_answers(respond: Any) -> None:
    with serve(respond) as (url, _), pytest.raises(ScriptWriterError):
        await N8nScriptWriter(url).write(REQUEST)


async def test_n8n_adapter_unreachable_is_a_script_writer_error() -> None:
    with serve(n8n_contract) as (url, _):
        pass  # the server is gone once the block ends
    with pytest.raises(ScriptWriterError):
        await N8nScriptWriter(url, timeout=2).write(REQUEST)


def test_shipped_workflow_is_webhook_code_respond() -> None:
    workflow = json.loads(WORKFLOW.read_text())
    nodes = {n["name"]: n for n in workflow["nodes"]}
    webhook = nodes["Webhook"]
    assert webhook["type"] == "n8n-nodes-base.webhook"
    assert webhook["typeVersion"] == 2.1
    assert webhook["parameters"]["httpMethod"] == "POST"
    assert webhook["parameters"]["responseMode"] == "responseNode"
    assert webhook["webhookId"]
    code = nodes["Write scripts"]
    assert code["type"] == "n8n-nodes-base.code"
    assert code["parameters"]["mode"] == "runOnceForAllItems"
    assert "$input.first().json.body" in code["parameters"]["jsCode"]
    respond = nodes["Respond to Webhook"]
    assert respond["type"] == "n8n-nodes-base.respondToWebhook"
    assert respond["parameters"]["respondWith"] == "firstIncomingItem"
    chain = workflow["connections"]
    assert chain["Webhook"]["main"][0][0]["node"] == "Write scripts"
    assert chain["Write scripts"]["main"][0][0]["node"] == "Respond to Webhook"


def test_pcm_duration_comes_from_the_sample_count() -> None:
    assert Pcm(b"\x00\x00" * 22050, 22050).duration_ms == 1000
