"""Incremental detokenisation: stop sequences cut the reply (and never leak into a delta), split UTF-8 waits."""

from __future__ import annotations

from clinrag.plugins.generators.text_stream import TextStream

# A byte-level toy vocabulary, like GPT-2/Qwen/SmolLM2's: one character can span two tokens.
VOCAB = {1: b"The", 2: b" answer", 3: b" is", 4: b" ST", 5: b"EMI", 6: b".", 7: b"\n\n", 8: b"Q", 9: b"\xc3", 10: b"\xa9"}


def decode(ids: list[int]) -> str:
    return b"".join(VOCAB[i] for i in ids).decode("utf-8", errors="replace")


def run(ids: list[int], stop: tuple[str, ...] = ()) -> tuple[list[str], TextStream]:
    stream = TextStream(decode, stop)
    deltas = []
    for i in ids:
        deltas.append(stream.push(i))
        if stream.stopped:
            break
    deltas.append(stream.finish())
    return [d for d in deltas if d], stream


def test_no_stop_streams_everything():
    deltas, stream = run([1, 2, 3, 4, 5, 6])
    assert "".join(deltas) == stream.text == "The answer is STEMI." and not stream.stopped
    assert deltas[0] == "The"


def test_stop_sequence_across_tokens_is_cut_and_never_emitted():
    deltas, stream = run([1, 2, 3, 4, 5, 6, 7, 8], stop=("STEMI.",))
    assert stream.stopped and stream.text == "The answer is " and "".join(deltas) == "The answer is "
    assert len(stream.ids) == 6  # stopped at the token that completed the stop sequence
    # " ST" could have begun the stop sequence, so it was held back rather than streamed and then withdrawn.
    assert all("ST" not in d for d in deltas)


def test_held_back_prefix_is_released_when_it_does_not_become_a_stop():
    deltas, stream = run([1, 2, 3, 4, 6], stop=("STEMI",))
    assert not stream.stopped and "".join(deltas) == "The answer is ST."


def test_first_of_several_stops_wins():
    _, stream = run([1, 2, 3, 4, 5, 6, 7, 8], stop=("\n\n", " is"))
    assert stream.text == "The answer"


def test_split_utf8_character_waits_for_its_second_byte():
    stream = TextStream(decode)
    assert stream.push(1) == "The"
    assert stream.push(9) == ""  # half of "é"
    assert stream.push(10) == "é"
