"""The voice rules of one key, in one place: the encoder, the decoder, the sliding window and the voice-state
logits processor all follow them.

A key (family, pitch) may sound several times at once. Its sounding notes are its voices, kept in start
order. A note-on starts a new voice; a note-off ends the latest-started voice (last in, first out) or, when
the header holds ``<voice:fifo>``, the earliest (first in, first out); each ``<voice:skip>`` before the
note-off skips one voice from that end. The number of skips before a note-off is the ended voice's *depth*.

``VoiceStack`` keeps the voices of one key so that every operation costs O(log v) for v voices ever pushed
on it since its last compaction, whatever the voices do: a binary indexed (Fenwick) tree counts the voices
still sounding by start position, so finding the voice at a depth, or the depth of a voice, never scans
the stack. Encoding and decoding n notes therefore cost O(n log n), even for a file of 200,000
simultaneous voices on one key. This module travels to the Hub as remote code (no package imports).
"""

from __future__ import annotations

from collections import deque

# Compact a stack (drop ended voices from its arrays) once ended voices outnumber sounding ones by this
# many: keeps the arrays, and so each operation's log factor, proportional to the voices still sounding.
COMPACT_SLACK = 16


def honoured_skips(skips, sounding):
    """Depth a note-off after ``skips`` skips ends when ``sounding`` voices sound: ``min(skips, sounding - 1)``
    (a skip past the last voice is ignored). Works elementwise on ints, numpy arrays and torch tensors."""
    return skips - (skips >= sounding) * (skips - sounding + 1)


def can_end(sounding, skips):
    """Whether a note-off after ``skips`` skips finds its voice (the key has more than ``skips`` voices)."""
    return sounding > skips


def can_skip(sounding, skips):
    """Whether one more ``<voice:skip>`` after ``skips`` skips can still be honoured by a note-off."""
    return sounding > skips + 1


class VoiceStack:
    """The sounding voices of one key in start order; voices are any values (an onset and a velocity, an
    index). ``fifo`` chooses which end a note-off ends (see the module docstring).

    Args:
        fifo (`bool`, defaults to `False`): note-offs end the earliest voice instead of the latest.
    """

    __slots__ = ("fifo", "_items", "_tree", "_live", "_by_value")
    _ENDED = object()

    def __init__(self, fifo: bool = False):
        self.fifo = fifo
        self._items: list = []  # every voice pushed since the last compaction, ended ones replaced by _ENDED
        self._tree: list[int] = [0, 0]  # Fenwick tree over _items: 1 per sounding voice (1-based, size 2^k + 1)
        self._live = 0
        self._by_value: dict = {}  # voice -> deque of its positions in _items (ended ones removed lazily)

    def __len__(self) -> int:
        return self._live

    def __iter__(self):
        """The sounding voices, earliest first."""
        return (v for v in self._items if v is not VoiceStack._ENDED)

    def push(self, voice) -> None:
        """Start a voice (a note-on)."""
        if len(self._items) + 1 >= len(self._tree):
            self._rebuild(2 * (len(self._tree) - 1))
        pos = len(self._items)
        self._items.append(voice)
        self._add(pos, 1)
        self._live += 1
        self._by_value.setdefault(voice, deque()).append(pos)

    def end(self, skips: int = 0):
        """End the voice a note-off after ``skips`` skips ends (``honoured_skips``); returns it, or None when
        the key is silent."""
        if not self._live:
            return None
        depth = honoured_skips(skips, self._live)
        return self._remove(self._position(depth))

    def oldest(self):
        """The earliest-started sounding voice (None when the key is silent), without ending it."""
        if not self._live:
            return None
        return self._items[self._position(0 if self.fifo else self._live - 1)]

    def end_oldest(self) -> tuple[object, int]:
        """End the earliest-started voice; returns it and its depth (the skips a note-off needs to end it)."""
        depth = 0 if self.fifo else self._live - 1
        return self._remove(self._position(depth)), depth

    def end_voice(self, voice) -> int:
        """End a voice equal to ``voice`` (the one nearest the end note-offs take from); returns its depth.

        Raises ``KeyError`` when no sounding voice equals it.
        """
        queue = self._by_value.get(voice) or deque()
        pick = queue.popleft if self.fifo else queue.pop
        while True:  # positions of voices ended by ``end`` are skipped here, each once
            if not queue:
                raise KeyError(voice)
            pos = pick()
            if self._items[pos] is not VoiceStack._ENDED:
                break
        before = self._prefix(pos)  # sounding voices that started earlier
        depth = before if self.fifo else self._live - 1 - before
        self._remove(pos)
        return depth

    # --- internals -----------------------------------------------------------------------------
    def _position(self, depth: int) -> int:
        """Position in ``_items`` of the sounding voice ``depth`` voices from the ending end."""
        k = depth + 1 if self.fifo else self._live - depth  # 1-based rank among sounding voices, earliest first
        tree, pos, bit = self._tree, 0, (len(self._tree) - 1)
        while bit:
            nxt = pos + bit
            if nxt < len(tree) and tree[nxt] < k:
                pos, k = nxt, k - tree[nxt]
            bit >>= 1
        return pos

    def _remove(self, pos: int):
        voice = self._items[pos]
        self._items[pos] = VoiceStack._ENDED
        self._add(pos, -1)
        self._live -= 1
        if len(self._items) - self._live > self._live + COMPACT_SLACK:
            self._rebuild(2 * self._live, compact=True)
        return voice

    def _add(self, pos: int, delta: int) -> None:
        tree, i = self._tree, pos + 1
        while i < len(tree):
            tree[i] += delta
            i += i & -i

    def _prefix(self, pos: int) -> int:
        """Sounding voices at positions below ``pos``."""
        tree, i, total = self._tree, pos, 0
        while i:
            total += tree[i]
            i &= i - 1
        return total

    def _rebuild(self, capacity: int, compact: bool = False) -> None:
        """Rebuild the tree (in O(capacity)) with room for ``capacity`` voices, dropping ended voices if ``compact``."""
        if compact:
            self._items = [v for v in self._items if v is not VoiceStack._ENDED]
            self._by_value = {}
            for pos, v in enumerate(self._items):
                self._by_value.setdefault(v, deque()).append(pos)
        size = 1
        while size < max(capacity, len(self._items) + 1):
            size *= 2
        tree = [0] * (size + 1)
        for pos, v in enumerate(self._items):
            if v is not VoiceStack._ENDED:
                tree[pos + 1] += 1
        for i in range(1, size + 1):
            j = i + (i & -i)
            if j <= size:
                tree[j] += tree[i]
        self._tree = tree
