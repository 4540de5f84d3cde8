"""The one voice stack: every operation agrees with the plain-list rules it replaces, and a key with
hundreds of thousands of voices costs O(n log n), not quadratic time."""

from __future__ import annotations

import random

import pytest

from musenet_hf.core.voices import VoiceStack, can_end, can_skip, honoured_skips


class ListStack:
    """The rules as the encoder and decoder wrote them before: a list searched and deleted from."""

    def __init__(self, fifo):
        self.fifo, self.items = fifo, []

    def end(self, skips):
        n = min(skips, len(self.items) - 1)
        return self.items.pop(n if self.fifo else len(self.items) - 1 - n)

    def end_voice(self, voice):
        n = self.items.index(voice) if self.fifo else self.items[::-1].index(voice)
        del self.items[n if self.fifo else len(self.items) - 1 - n]
        return n


@pytest.mark.parametrize("fifo", [False, True])
def test_random_operations_match_the_list_rules(fifo):
    rng = random.Random(fifo)
    for _ in range(300):
        stack, ref = VoiceStack(fifo), ListStack(fifo)
        for _ in range(rng.randint(0, 150)):
            r = rng.random()
            if r < 0.5 or not ref.items:
                v = rng.randint(0, 4)
                stack.push(v)
                ref.items.append(v)
            elif r < 0.7:
                skips = rng.randint(0, 6)
                assert stack.end(skips) == ref.end(skips)
            elif r < 0.85:
                v = rng.choice(ref.items)
                assert stack.end_voice(v) == ref.end_voice(v)
            else:
                assert stack.oldest() == ref.items[0]
                voice, depth = stack.end_oldest()
                assert voice == ref.items.pop(0)
                assert depth == (0 if fifo else len(ref.items))
            assert list(stack) == ref.items and len(stack) == len(ref.items)


def test_silent_key_and_unknown_voice():
    stack = VoiceStack()
    assert stack.end(3) is None and stack.oldest() is None
    stack.push("a")
    with pytest.raises(KeyError):
        stack.end_voice("b")


def test_rules_work_elementwise_on_tensors_as_on_ints():
    torch = pytest.importorskip("torch")
    sounding, skips = torch.tensor([0, 1, 3, 3]), torch.tensor([0, 2, 1, 2])
    assert honoured_skips(skips, sounding)[1:].tolist() == [0, 1, 2]
    assert can_end(sounding, skips).tolist() == [False, False, True, True]
    assert can_skip(sounding, skips).tolist() == [False, False, True, False]
    assert [honoured_skips(s, 3) for s in range(5)] == [0, 1, 2, 2, 2]


def test_two_hundred_thousand_voices_of_one_key_finish():
    # the note bomb's shape: every voice alike, ended one by one from the far end (the deepest search)
    stack = VoiceStack(fifo=False)
    n = 200_000
    for i in range(n):
        stack.push(i)
    ended = range(0, n, 1000)
    # voice i is behind the n - 1 - i voices started after it (earlier voices ended do not count)
    assert [stack.end_voice(i) for i in ended] == [n - 1 - i for i in ended]
    while len(stack):
        stack.end(0)
