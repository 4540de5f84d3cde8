"""Musical guards: logits processors that keep sampled music inside the ranges real music lives in.

- ``NoteLengthGuard``: a sounding note past its family's long tail (the corpus's 99th percentile of note
  length) gets a growing bonus on its note-off; at the 99.9th percentile the note-off is the only choice, and
  no wait may carry the note past it. Prevents stuck notes held for tens of seconds.
- ``DrumRateGuard``: one drum may not be hit more often than the corpus's busiest drum within any second
  (nor twice on one 10 ms step). Prevents machine-gun drums.
- ``KeyRepeatGuard``: one key of a pitched instrument (a bass's low B, say) struck more often in ten seconds
  than the corpus's 90th percentile for that instrument's busiest key is made less likely, and at the 99th
  percentile impossible, so the instrument plays another note. Prevents a bass or guitar hammering one key.
- ``RegisterGuard``: an instrument whose notes of the last ten seconds sit, on average, lower (or higher) than
  the corpus's 5th (95th) percentile of that instrument's ten-second mean pitch has its notes beyond that
  bound made less likely, so it climbs back into its register. Prevents a long piece's piano sinking into the
  bass and its guitar into a low rumble.
- ``InstrumentEntryGuard``: an asked instrument that has not played for a while gets a larger share of the
  note-on probability, while the total probability of playing a note at all is unchanged, so the guard
  decides *who* plays, never *whether*. Prevents asked instruments that never enter.
- ``NoteDensityGuard``: one instrument may not start more notes in any five seconds than the corpus's 99th
  percentile of that instrument's five-second note rate, and an ensemble of 2, 3 or 4+ instruments is held
  between the median and the upper quartile of real ensembles of its size (note-ons are made less likely past
  the median, impossible at the quartile). Prevents a wall of notes (a piano at 40 notes/s, a band at 38).
- ``GridGuard``: in a style whose real pieces put their onsets on the sixteenth-note grid of their tempo, a
  note-on off that grid, or a wait that lands off it, is made much less likely, so
  notes start on the header tempo's beats. Prevents rhythm with no pulse: the bundled model's pop and rock
  onsets fell on the grid no more often than random times do. Each piece keeps to the grid as tightly as a
  real piece of its style and instruments, drawn from theirs (a played band leaves it now and then, a
  sequenced one never), rather than every piece sitting exactly on it.
- ``GrooveGuard``: in those styles, while a piece repeats its bar-to-bar onset pattern less than the style's
  real pieces do, each instrument is nudged to start notes where it started them one bar earlier. Prevents a
  rhythm that never settles into a groove (the bundled model's bands, on the grid: groove consistency 0.5-0.6
  against the corpus's 0.94-0.97).
- ``PolyphonyGuard``: in a style whose real pieces keep a steady texture for the asked instruments, the number
  of distinct keys sounding at once is held to their distribution: a piece that has recently spent more time
  with this few keys sounding than real pieces do has its waits made less likely, one that has
  spent more with more keys its note-ons. Prevents a Bach chorale on piano sounding anything from 1 to 10 voices.

The limits come from ``MusicStatistics``, learned from the training corpus (``music_statistics``) and saved
in each checkpoint's ``config.json`` under ``musenet_music_statistics``; checkpoints without them use the
defaults below. Units: time in 10 ms steps; tensors are ``[batch, vocab]``. This module travels to the Hub as
remote code: package imports are relative only.
"""

from __future__ import annotations

import functools
import math
from collections import deque
from dataclasses import dataclass, field, fields, replace

import numpy as np
import torch
from transformers import LogitsProcessor
from transformers.utils import logging

from .codec import decode_ids
from .vocabulary import NUM_PITCHES, VOICE_FIFO, VOICE_SKIP, Vocabulary

logger = logging.get_logger(__name__)

NEG_INF = float("-inf")
CONFIG_KEY = "musenet_music_statistics"  # where a checkpoint's config.json keeps its MusicStatistics
# Fallback limits for a checkpoint that carries no statistics: POP909's piano holds 0.01 % of notes past 8 s
# and sequenced band music under 0.1 % (quality issue), so 4 s / 8 s bracket the long tail of most families.
DEFAULT_SOFT_SECONDS = 4.0
DEFAULT_HARD_SECONDS = 8.0
# The busiest drum of the real band files checked peaks at 7.2 hits/s (sixteenth-note hi-hats at ~108 bpm).
DEFAULT_DRUM_HITS_PER_SECOND = 8.0
SOFT_QUANTILE = 0.99  # past this note length the note-off is favoured
HARD_QUANTILE = 0.999  # past this one it is forced
# The limits are per family, not per style and family. Limits learned per style too were measured and dropped
# (the 9-case grid, 8 pieces of 30 s): bach piano's would end notes by 2.1 s, and its held 5-10 s voices did
# go, but its notes/s shortfall rose 0.10 -> 0.51 and the bands' looser pop piano limit (7.4 s against 5.3)
# and tighter basses shifted the rest; the mean shortfall rose from 0.130 to 0.147.
# A statistic learned from fewer notes than this is not trusted (its 99.9th percentile would be one note).
MIN_NOTES_FOR_STATISTIC = 1000
MIN_HARD_SECONDS = 1.0  # never force a note-off sooner than this, whatever a family's statistics say
# ...nor later than this: a corpus of engraved scores holds organ points for 30-40 s (measured on a sample of
# the staged default-corpus sources), which a listener of a generated piece hears as a stuck note.
MAX_HARD_SECONDS = DEFAULT_HARD_SECONDS
NOTE_OFF_MAX_BONUS = 8.0  # logit bonus of a note-off at the hard limit (e^8 ~ 3000x), growing linearly from 0
DRUM_RATE_WINDOW_STEPS = 100  # the rate cap counts hits in the last second
# The cap is the rate real pieces keep their busiest drum at: its hits over the piece's length, at this quantile
# of the corpus's pieces with drums (default corpus: 7.85 hits/s; a burst measure such as the busiest second
# would be 15 there, from rolls and flams, and a drum held at that rate for a minute is a machine gun).
DRUM_QUANTILE = 0.99
# Key repeats: onsets of one pitched key in the last ten seconds (a few bars: a pedal bass of a bar or two is
# music, the same key struck for a minute is a machine gun), against the corpus's busiest key of the family
# in its ten-second windows. Default corpus, bass: median 4, 90th percentile 15, 99th 53 onsets; the bundled
# model's rock bass struck one key ~80 times in ten seconds. Past the soft quantile the key's note-ons lose up
# to KEY_REPEAT_MAX_PENALTY nats (growing linearly), at the hard one they are forbidden.
KEY_REPEAT_WINDOW_STEPS = 1000
KEY_REPEAT_SOFT_QUANTILE = 0.9
KEY_REPEAT_HARD_QUANTILE = 0.99
KEY_REPEAT_MAX_PENALTY = 4.0
# Used for a family the statistics do not cover: the default corpus's loosest family (guitar, 27 and 57
# onsets of its busiest key per ten seconds).
DEFAULT_KEY_ONSETS_PER_SECOND = [2.7, 5.7]
# Register: the mean pitch of the notes a pitched family started in the last ten seconds, against the corpus's
# distribution of that mean over its ten-second windows (with at least REGISTER_MIN_NOTES notes: fewer give a
# mean of one or two notes, which a bass's single low note would drag anywhere). Below the soft low quantile
# the family's note-ons under that quantile's pitch lose up to REGISTER_MAX_PENALTY nats, growing linearly to
# it at the hard one (likewise above). The bundled model's four-minute band piece, without the guard, sank
# from a piano around MIDI 60 and a guitar around 64 in its first half minute to 32 and 41-45 in its last.
REGISTER_WINDOW_STEPS = 1000
REGISTER_MIN_NOTES = 8
REGISTER_QUANTILES = (0.01, 0.05, 0.95, 0.99)  # hard low, soft low, soft high, hard high
REGISTER_MAX_PENALTY = 4.0
# Spread: how widely a pitched family's notes range over the same ten seconds, as the distance in semitones
# between the SPREAD_PERCENTILES of their pitches (a left hand under a melody spans two octaves or more, one hand
# alone one). Real solo pop piano (POP909, 10 s windows) spreads 23 semitones at the median and 16 at the 5th
# percentile; the bundled model's, with every other guard on, 17 at the median, with 38 % of its windows under
# the real 10th percentile: a right hand without its left. Below the soft narrow quantile of the style's real
# windows (per ``family@ensemble``), the note-ons farther than half that spread from the window's median pitch
# gain up to SPREAD_MAX_BONUS nats (all of it at the hard quantile); above the soft wide one, those farther than
# half of it lose as much. The family's note-ons are then shifted back to their total probability: which
# pitches change, not whether or when the family plays. Solo pop piano, 24 pieces of 30 s against the default
# corpus (bench/results/evaluate_bundled_pop_piano_24_pieces_spread_*.md): without the guard its pitch range
# misses the real median by 1.3 interquartile ranges (case mean shortfall 0.107); with 2 nats 0.35 (0.092);
# with 4, 0.30 but its pitch-class entropy and polyphony drift off (0.149): far notes the model finds unlikely
# are often wrong ones. Only solo instruments are held: in the bands of the 9-case grid (24 pieces) the guard
# moved no median towards the real one (rock trio range 38 -> 42.5, real 38) and the case means moved both
# ways (rock trio 0.060 -> 0.099, jazz trio 0.059 -> 0.079, pop 4-piece 0.102 -> 0.055).
SPREAD_PERCENTILES = (10, 90)
SPREAD_QUANTILES = (0.02, 0.25, 0.75, 0.98)  # hard narrow, soft narrow, soft wide, hard wide
SPREAD_MAX_BONUS = 2.0
# Note density: notes a family starts in the last five seconds (a bar or two: long enough that a chord or a
# fill does not count as a rate, short enough to catch a dense stretch), capped at the corpus's
# DENSITY_QUANTILE of that family's five-second rates in the windows where it plays.
DENSITY_WINDOW_STEPS = 500
DENSITY_QUANTILE = 0.99
# Used for a family the statistics do not cover: the default corpus's busiest family at DENSITY_QUANTILE
# (guitar, 24.2 notes/s over five seconds; piano 15.4, drums 21.4, bass 10.2).
DEFAULT_NOTES_PER_SECOND = 24.0
MIN_WINDOWS_FOR_DENSITY = 100  # a family seen in fewer windows keeps the default
# Ensemble density: per-family caps at the 99th percentile let every instrument be at its busiest at once (a
# pop band then starts 38 notes/s; the corpus's four-instrument pieces have a median of 18). All the notes an
# ensemble starts in any five seconds are held between these quantiles of the five-second rates of real
# pieces with as many instruments: past the soft one every note-on loses up to ENSEMBLE_MAX_PENALTY (nats,
# growing linearly), at the hard one none may start. Real four-instrument music spends half its time above
# the median, so a piece settles inside the corpus's interquartile range instead of at its edge.
ENSEMBLE_SOFT_QUANTILE = 0.5
ENSEMBLE_HARD_QUANTILE = 0.75
ENSEMBLE_MAX_PENALTY = 4.0
# The penalty is shared out by how busy each family is: times its count over an equal share of the window's
# notes (a family with none is not held back; one with all of four families' notes would get 4x), up to this.
ENSEMBLE_MAX_SHARE = 2.0
ENSEMBLE_MAX_SIZE = 4  # pieces with more instruments count as this many (few real ones, similar rates)
# Used without statistics: the default corpus's whole train split: (soft, hard) notes/s per ensemble size.
DEFAULT_ENSEMBLE_NOTES_PER_SECOND = {"2": [8.0, 12.2], "3": [13.6, 19.4], "4": [18.8, 26.0]}
# The floor: a piece can also thin out below any real ensemble (one pop trio of 24 at 1.7 notes/s over 30 s,
# its piano 3 notes). While all its families together have started fewer notes in the window than real
# ensembles of its size do in all but ENSEMBLE_FLOOR_QUANTILE of their five-second windows (the default
# corpus's train split: 1.08, 2.4 and 3.8 notes/s for 2, 3 and 4+ instruments, medians 7.8, 13.8 and 18.6),
# every note-on gains up to ENSEMBLE_FLOOR_MAX_BONUS nats, growing linearly as the count falls
# to none (the entry guard then shares them out among the asked instruments). A piece's first window counts
# once it is whole: an intro may start sparse.
ENSEMBLE_FLOOR_QUANTILE = 0.01
ENSEMBLE_FLOOR_MAX_BONUS = 4.0
# Used without statistics: the default corpus's whole train split, notes/s per ensemble size.
DEFAULT_ENSEMBLE_FLOOR_NOTES_PER_SECOND = {"2": 1.08, "3": 2.4, "4": 3.8}
# Learning these per style as well was measured and dropped: styles differ more than sizes (default corpus,
# median / upper quartile of 5-second rates: rock trios 20.3 / 27.2, jazz trios 12.6 / 16.6, against 13.6 / 19.4
# for all trios), and a rock trio held to its own moved its median rate from 14.6 to 19.5 notes/s (real 20.9),
# but its chords thickened past the real ones (polyphony 5.4 keys against 4.4; rock 4-piece 6.5 against 5.0),
# the jazz trio thinned, and the 9-case grid's mean shortfall went from 0.114 to 0.125
# (bench/results/evaluate_*_style_ensemble_rates.md against *_triplet_grid.md).
# A rate of each piece's own was measured and dropped too (24 pieces of 30 s, a rebuild of 15,208 train pieces):
# each band piece drew its soft rate from the deciles of its style and ensemble size's real pieces' notes/s over
# their first 30 s (pop 4+ instruments 4.1-83.6, median 18.7; rock trios 7.5-38.6, median 20.9), its hard rate
# as far above as its size's. The rock trio came to its real rate (16.5 -> 20.6 notes/s, real 21.1), but the
# pop bands' low draws thinned them (pop 4-piece 20.9 -> 17.0, real 29.3) and the jazz trio spread: the grid's
# mean 0.077 -> 0.080 (*_24_pieces_piece_rate.md against *_24_pieces_tightness_rebuild_15208.md). Raising the
# size's soft rate to the draw, never lowering it, gave 0.077 -> 0.071 (rock trio's case mean 0.096 -> 0.010),
# but the rock 4-piece's chords thickened (polyphony 6.0 keys against 5.0) and the 4-minute pop band piece of
# seed 0 drew a rate of 31.8 and played 34.6 notes/s (8,302 notes, 4,028 of them guitar; the quality issue asks
# at most 25), seed 3 25.3 (*_24_pieces_piece_rate_raise_only.md). Raising it to the style's median instead, no
# draw (rock trios 20.9, rock 4-pieces 22.3; pop 4-pieces' 18.7 is their size's, so the band piece is unchanged):
# 0.077 -> 0.073, the rock trio 0.096 -> 0.045, but the rock 4-piece 0.135 -> 0.166, its polyphony 6.3 keys
# against 5.0 (the grid's worst polyphony shortfall 0.40 -> 0.53; *_24_pieces_style_median_rate.md).
# Balance: the busiest family's share of all the notes an ensemble starts in five seconds (windows with at
# least BALANCE_MIN_NOTES). Real four-instrument music in a 4,000-piece sample of the default corpus's train
# split: median 0.46, 90th percentile 0.63, 99th 0.82 (whole split: 0.63 and 0.89). The bundled model's 4-minute band
# pieces drifted to a drum loop under thinning parts (0.94 of minute 4's notes in seconds 0-3's drums), which
# the ensemble rule above never saw: the total stayed under its soft rate. Past the soft share (quantile
# BALANCE_SOFT_QUANTILE) the busiest family's note-ons lose up to BALANCE_MAX_PENALTY nats, reaching it at the
# hard one (BALANCE_HARD_QUANTILE), and the other asked families' note-ons gain what keeps the total: with the
# loss alone, going to waits, half of seeds 0-5 fell to 8-13 notes/s (real 4-instrument quartiles 14.0-25.1)
# with the other parts as thin as before; with it moved, 16.6-21.2 notes/s and the other parts play.
BALANCE_SOFT_QUANTILE = 0.9
BALANCE_HARD_QUANTILE = 0.99
BALANCE_MAX_PENALTY = 4.0
BALANCE_MIN_NOTES = 10  # fewer notes in five seconds are too few for a share to mean anything
# Used without statistics: the default corpus's whole train split, (soft, hard) share per ensemble size.
DEFAULT_ENSEMBLE_BUSIEST_SHARE = {"2": [0.94, 1.0], "3": [0.78, 0.95], "4": [0.63, 0.89]}
# Parts: each family's share of the notes its ensemble starts in five seconds (windows with BALANCE_MIN_NOTES or
# more), learned per style and ``family@ensemble``. The busiest-share rule above, one figure per ensemble size,
# leaves the parts' proportions to the model, and they were not a band's: the rock trio's basses played a
# median of 140 notes in 30 s under 170 of guitar (the real trios' basses 35 under 390; quietest part's share
# 0.22 against 0.07), and a jazz trio's bass could fall to 15 notes under a 230-note piano. Past the real
# 90th percentile share (soft) a family's note-ons lose up to BALANCE_MAX_PENALTY nats, all of it at the 99th
# (hard), and the other asked families gain what keeps the total (``_rebalance``). 24 pieces a case, a rebuild
# of 15,200 train pieces: the grid's mean shortfall 0.079 -> 0.074, the rock trio's 0.171 -> 0.111 (basses 140
# -> 73 notes; *_24_pieces_part_share_rebuild_15200.md). The soft share at the real median brought the parts'
# counts nearer the real ones, but the pieces piled up at it and the drums' lost share thickened the pitched
# parts (rock 4-piece polyphony 7.2 keys against 5.1): mean 0.092, not kept.
PART_SHARE_SOFT_QUANTILE = 0.9
PART_SHARE_HARD_QUANTILE = 0.99
# Instrument entry: after ENTRY_PATIENCE_SECONDS without a note-on, an asked family's share of the note-on
# probability is raised toward an equal share (1 / asked families) over ENTRY_RAMP_SECONDS. A bar and a half
# at 120 bpm is a long rest for a band instrument; the ramp keeps short rests untouched. Measured on the
# quality grid (72 pieces): 4 s + 4 s over 8 candidates left one bass at 4 notes next to a 324-note piano
# (the guard let in one note every 5-7 s); 3 s + 2 s over 4 candidates left none under 7 notes, at a cost of
# 0.02 in the mean overlap shortfall.
ENTRY_PATIENCE_SECONDS = 3.0
ENTRY_RAMP_SECONDS = 2.0
# Nats a wait loses, at the end of the same ramp, while the whole row has started no note at all: in 24 solo
# pop piano pieces of 30 s the bundled model wrote one that was nothing but its longest wait, 30 times (the
# share rule above needs two asked families). 6, like the grid's penalty: a rest stays possible where the
# model insists, a piece of silence does not.
SILENCE_MAX_PENALTY = 6.0
# A family the entry guard raises keeps only its most likely note-ons: spread over all of its ~1000 ids,
# the raised share is so flat that top-k and top-p (which run after every logits processor) cut every one;
# over 8 the share of a step whose note-on mass is small still falls under top-p's cut, over 4 less often.
ENTRY_CANDIDATES = 4
# Pieces read for the statistics at most: the default corpus's whole train split (15,194 pieces, ~40 s on one
# core). Note lengths are stable by a few thousand pieces, but the drum and ensemble rates come from the few
# hundred pieces with drums or several instruments: a 3,000-piece sample moved the drum cap from 7.5 to 8.0.
MAX_STATISTICS_PIECES = 20_000
# Beat grid: the sixteenth notes of the tempo. An onset within GRID_TOLERANCE_STEPS of one is on the grid: 20 ms,
# which a listener hears as on the beat, and which leaves room for the 10 ms rounding of a tempo that is not a
# whole number of steps. Default corpus, test split, each piece's distinct onsets against the grid of its header
# tempo at the best phase (``grid_fit``), median share: 1.0 in folk, bach and chinese, 0.97 irish, 0.91 pop
# (POP909), 0.80 rock, 0.90 swing; the same number of onsets at random times over the same span, 0.25-0.47.
# Adding eighth-note triplets to the grid raised the real shares by 0.02-0.15 but random ones to 0.36-0.67 (at
# 120 bpm the two grids leave gaps of 4 steps), so a swung triplet is held to the nearest sixteenth.
GRID_FRACTIONS = (0.0, 1 / 4, 1 / 2, 3 / 4)
GRID_TOLERANCE_STEPS = 2
# Swing: a style whose pieces miss the sixteenth grid may sit on the eighth-note triplets (beats in three), where
# swung eighths fall. Default corpus, train split, 60 pieces a style, median share on the triplet grid at the
# best phase: jazz 0.80 (sixteenths 0.63), blues 0.73, swing 0.67, rock 0.50, pop 0.37; random times 0.27. A
# style that is not metric on sixteenths but is on triplets (``GRID_MIN_SHARE``) is held to the triplets.
TRIPLET_FRACTIONS = (0.0, 1 / 3, 2 / 3)
# A style is held to the grid when its real pieces' median share of onsets on it is at least this: half way
# from the random timing's ~0.45 at most to the metric styles' 0.8-1.0 would be 0.65; 0.75 keeps rubato and
# loosely played styles (jazz performances at 0.54) free. Holding the swung styles (jazz 0.69, blues and
# country 0.68 in the rebuilt corpus) to their own share of the grid instead (the guard let a row place an
# onset off it while the share of its last 32 was at the style's) brought generated jazz's median share from
# 0.41 to its real 0.72, but its overlap with the real clips only from 0.85 to 0.69 short; and pop, held to
# 0.89, fell below its bands' clips (pop 4-piece 0.88 against 0.99: 0.33 -> 1.00 short), so the quality grid's
# mean overlap shortfall went from 0.147 to 0.170 (bench/results/evaluate_*_grid_share_tracking.md against
# *_guards_on_bf16_kv.md, same machine, threads and cache): not kept.
# Jazz is held to the triplet grid instead (``TRIPLET_FRACTIONS``), where its pieces put 0.79 of their onsets:
# on the 9-case grid the jazz trio's mean shortfall went from 0.171 to 0.086 (its polyphony 0.51 -> 0.08, groove
# 0.58 -> 0.37, onsets on the sixteenth grid 0.58 -> 0.48), the grid's from 0.123 to 0.114
# (bench/results/evaluate_*_triplet_grid.md against *_duration_guard.md). The groove guard is not extended to
# the triplets: holding the jazz trio to its pieces' groove on them (0.862) raised its groove (24 pieces, seed 5:
# shortfall 0.36 -> 0.19) but thinned its chords (polyphony 0.01 -> 0.28), and the case's mean went from 0.059
# to 0.091.
GRID_MIN_SHARE = 0.75
GRID_MIN_PIECES = 5  # a style seen in fewer pieces gets no figure (one piece's share is not a style's)
# Nats an off-grid note-on, or a wait landing off the grid, loses: e^6 ~ 400x, so the model's own timing
# decides among on-grid positions and an off-grid onset stays possible where it insists.
GRID_PENALTY = 6.0
# A history (a primer, or the piece so far) with at least this many onsets that fits no phase of the grid at
# GRID_MIN_SHARE is not metric at its tempo (a rubato performance): the row is left alone.
GRID_MIN_ONSETS = 16
GRID_PHASE_ONSETS = 2000  # the phase is fitted on the latest onsets at most (cost bound on a long history)
# Tightness: how much of its timing a piece keeps on the grid varies within a style and ensemble, from sequenced
# pieces (all of it) to played ones. Default corpus, 30 s clips, sixteenth-grid share by tenths: rock trios 0.52
# 0.58 0.64 0.78 0.80 0.85 0.95 0.98 1.0 1.0 1.0, pop 4-pieces 0.49-0.82 in the lowest three tenths and 0.99-1.0
# above, POP909's piano 0.18-0.77 in its lowest three. Held to the grid throughout, every generated band piece
# sat at 1.0 (overlap with the real clips 0.25-0.47 against 0.67-0.95 among them), its chords struck as one
# (median inter-onset 0.12-0.13 s against rock's real 0.05-0.06); left free, the model's own timing put 0.40
# of its onsets there, looser than any real clip. So each piece is given a tightness drawn from its style and
# ensemble's real pieces (deciles, ``TIGHTNESS_QUANTILES``), and an onset may leave the grid while the share of
# the row's last ``GRID_SHARE_ONSETS`` distinct onsets on it is at least that.
TIGHTNESS_QUANTILES = tuple(i / 10 for i in range(11))
# A piece's tightness is read on its first 30 s (from its first onset): a played piece's tempo drifts, so one
# grid fits a whole performance worse than any half minute of it (POP909's piano, median share 0.88 over whole
# pieces, 0.98 over their first 30 s), while a generated piece keeps its header's tempo and the guard reads a
# row's share over its last few bars.
TIGHTNESS_SECONDS = 30.0
# Key: a scale guard was measured and dropped. It held a row's pitched notes of the last 30 s inside their
# best-fitting major or minor scale (2 nats off every note-on outside it) while fewer of them lay inside than
# the median of real pieces of its style and ensemble over their first 30 s (bach piano 0.939, pop bands
# 0.96-0.99, POP909's piano 1.0). Every case's median scale consistency came to within 0.02 of its real one
# (bach piano 0.906 -> 0.946, real 0.939), but the pieces piled up at the target, and without the passing
# notes real music has, pitch-class entropy fell under the real clips' in every band (2.53-2.69 against
# 2.75-2.78): bach piano's scale shortfall went from 0.28 to 0.38 and the 24-piece grid's mean from 0.073 to
# 0.104 (bench/results/evaluate_*_24_pieces_scale_guard.md against *_24_pieces_tightness.md). Drawing each piece's
# target from the real deciles instead (as a band piece draws its tightness; bach chorales on piano 0.83 0.89 0.90
# 0.92 0.93 0.94 0.95 0.96 0.97 0.98 1.0 by tenths), in the steady textures only, changed bach piano alone: its
# median went from 0.906 to 0.955 (past the real 0.939) and its scale shortfall stayed 0.28, its pitch-class
# entropy's fell from 0.24 to 0.14 but its groove's rose from 0.27 to 0.44: case mean 0.112 -> 0.113, the grid's
# 0.0730 -> 0.0731 (*_24_pieces_scale_guard_drawn.md). Neither was kept.
GRID_SHARE_ONSETS = 32  # a row's share is read over its last 32 distinct onsets (two to eight bars)
# Groove: real music repeats its bar-to-bar onset pattern (groove consistency: 1 - the mean Hamming distance
# between neighbouring bars' sixteenth-note onset patterns / 16; default corpus, 30 s clips: rock trios 0.94,
# POP909 piano 0.81, bach chorales 0.83); the bundled model's, on the grid, 0.5-0.65. Bars are 4 beats: the
# corpus holds no time signatures we trust, and 4/4 is by far the most common.
GROOVE_BAR_BEATS = 4
GROOVE_BAR_POSITIONS = GROOVE_BAR_BEATS * len(GRID_FRACTIONS)
# The echo of the last bar, in nats, while a row repeats itself less than its style's real pieces do. On 8
# pieces x 4 cases at 2/2/2: groove 0.58-0.65 -> 0.85-0.96; at 4/4/4 the onsets locked (0.93-0.99) and solo
# piano's polyphony and note rate overshot the real ones.
GROOVE_BONUS = 2.0
GROOVE_PENALTY = 2.0
GROOVE_WAIT_PENALTY = 2.0
# A row's own groove consistency is read over its last complete bars (3 pairs: one odd bar moves it by 1/3).
GROOVE_MEASURE_BARS = 4
# Polyphony: the distinct keys (family, pitch) of pitched families sounding at once, on the 10 ms steps where
# any sounds, learned per style and ensemble size as the distribution over all those steps of the style's real
# pieces. Default corpus, train split: a Bach chorale on piano sounds 4 keys 90 % of the time and 3 keys 8 %,
# fiddle and irish tunes 1, POP909's piano 1-14 (mode 5); the bundled model's bach piano sounded 1-10 (4 keys
# 18 % of the time: polyphony 4.8 against 3.9, overlap 0.72-0.89 short of real). The guard keeps a row's own
# distribution over its recent sounding time (POLYPHONY_WINDOW_STEPS) and compares it with the real one at
# the row's current count n: if the row has spent more of its time at n keys or fewer than real pieces do, a
# wait (moving time on with this few) loses up to POLYPHONY_MAX_PENALTY nats, all of them once its share is
# POLYPHONY_SHARE_MARGIN past real; if it has spent more at n + 1 or more, a note-on does. Tried before, and
# dropped: a hard cap at the 95th percentile alone (bach piano: 4), polyphony 2.7, since nothing kept the
# voices from thinning; a band between the 5th and 95th percentiles, 3.45, since bach's 5th percentile is 3
# and nothing held the row at 4 rather than 3. Keys, not notes, are counted, as the evaluator counts pitches:
# counting notes let the model re-strike a sounding key to fill its count (bach piano stacked 17-38 such notes
# per 30 s against 4-20 in real clips).
POLYPHONY_TOP_QUANTILE = 0.999  # the learned distribution ends at this quantile; a note-on past it loses it all
POLYPHONY_MAX_PENALTY = 4.0
POLYPHONY_SHARE_MARGIN = 0.1  # the row's share this far past the real one takes the whole penalty
POLYPHONY_WINDOW_STEPS = 1000  # the row's own distribution fades over ten seconds (a few bars)
# Only a steady texture is held: one count must fill this share of real sounding time (bach piano: 4 keys 91 %;
# irish violin: 1 key 100 %). Holding every style was measured (the 9-case grid, 8 pieces of 30 s): bach piano's
# polyphony shortfall fell from 0.81 to 0.0 and the jazz trio's from 0.51 to 0.20, but the bands, whose real
# counts spread over 1-20 keys (pop piano, mode 5 keys, 20 %), came out worse (pop trio 0.04 -> 0.42, rock
# four-piece 0.15 -> 0.52, and groove and range with them), solo pop piano played 10.4 notes/s against 5.05
# to fill its count with short notes, and the grid's mean shortfall rose from 0.134 to 0.186 (that guard also
# lowered note-offs with the waits; on bach piano it cut the notes to 5.6/s against the chorales' 7.7, waits
# alone keep 8.8/s at the same polyphony).
# Holding the unsteady textures from above only (note-ons lose the penalty while a row has dwelt above n more
# than real pieces; waits stay free) was measured too: solo pop piano's polyphony came from 7.6 keys to 4.7
# (real 4.9; its gap to the default corpus's clips 1.02 -> 0.08 IQR), but its pitch range narrowed (gap 0.6 ->
# 0.9) and the bands lost what they had (jazz trio's mean shortfall 0.086 -> 0.177): the grid's mean went from
# 0.114 to 0.137 (bench/results/evaluate_*_polyphony_ceiling.md against *_triplet_grid.md).
POLYPHONY_MIN_MODE_SHARE = 0.5
POLYPHONY_MAX_LEVEL = 64  # sounding counts above this are counted as this (a corpus's stuck pedal notes)
# Note lengths: each pitched family's, learned per style and ensemble (``polyphony_key``) as the cumulative share
# of its real notes at most so many 10 ms steps long, at LENGTH_EDGES_STEPS (each piece weighing the same).
# The edges part the lengths a listener tells apart: the eighth (0.25 s at 120 bpm, 25 steps) from the quarter
# (50), a staccato (under 0.1 s) from a legato note, and bands of ~40 % wider from there to the 8 s of a stuck
# note. The guard keeps each row's own distribution per family over its last ~LENGTH_WINDOW_NOTES notes (older
# ones fading) and, for each sounding key of age a, compares the shares at a's edge: a row that has already
# ended more of its notes by a than real pieces do has that key's note-off lose up to LENGTH_MAX_PENALTY
# nats (all of them at LENGTH_SHARE_MARGIN past real); one that has ended fewer has it gain as much. Only a
# steady texture is held (``MusicStatistics.polyphony_cdf``, the polyphony guard's scope): on the 9-case grid
# (8 pieces of 30 s) holding bach piano took its median note length from 0.25 s to the chorales' 0.5 s
# (shortfall 0.79 -> 0.12; the case's mean 0.185 -> 0.125, and 0.166 -> 0.104 at 24 pieces), but holding every
# style made the grid worse (mean 0.130 -> 0.144): solo pop piano's notes grew from 0.25 s towards the real
# 0.78 s, and the model, free to add voices there, started more notes around them (9.2 notes/s against 7.3
# and the real 5.05; notes/s, polyphony and range shortfalls 0.18/0.31/0.15 -> 0.39/0.44/0.40); the pop
# trio's median note length went from 0.08 to 0.42 short.
LENGTH_EDGES_STEPS = (2, 5, 9, 14, 19, 25, 35, 50, 70, 100, 140, 200, 300, 450, 650, 900)
LENGTH_MAX_PENALTY = 4.0
LENGTH_SHARE_MARGIN = 0.1
LENGTH_WINDOW_NOTES = 64  # a row's own note lengths fade over its last ~64 notes of a family (a few bars)
LENGTH_MIN_NOTES = 8  # a piece with fewer notes of a family does not count for that family's distribution
LENGTH_FADE = math.exp(-1 / LENGTH_WINDOW_NOTES)
LENGTH_MIN_OWN_NOTES = 4.0  # a row compares its own lengths once this many (faded) notes of the family have ended
# A sounding note older than this share of the real notes (its age's edge) gets the note guard's full bonus,
# NOTE_OFF_MAX_BONUS, whatever the row's own shares. Bach piano, 24 pieces of 30 s (bench/held_notes.py and
# the evaluator's case mean shortfall, seeds 0 and 100): with +-4 nats only, it held a voice for 5-9 s in some
# pieces while the others moved (longest note per piece: median 7.0 s; notes over 2 s: 3.3 %, the chorales
# 0.14 %; case means 0.104 and 0.140); with the bonus past the 99.9th percentile (2 s), the longest came to
# 2.9 s but 3.3 % still passed 2 s (0.106, 0.103); past the 99th (1.4 s), 0.6 % (0.077, 0.087), its notes/s
# 8.0 against the chorales' 7.7. The tail bonus alone, in every style with note lengths (bands too, past their
# own 99th percentile: jazz trio piano ~4 s), made the 9-case grid worse, 0.113 -> 0.140 (pop 4-piece 0.182 ->
# 0.269; bench/results/evaluate_*_duration_tail_every_style.md): it too holds steady textures only.
LENGTH_TAIL_SHARE = SOFT_QUANTILE  # the note guard's own soft limit, per style and ensemble here
LENGTH_HISTORY_EVENTS = 4096  # a slid window's row reads its ended notes from this many events before it at most


@dataclass
class MusicStatistics:
    """What the guards know about real music, per checkpoint (saved with it, see ``CONFIG_KEY``).

    Args:
        note_length_seconds (`dict[str, dict[str, float]]`): family name -> ``{"soft": s, "hard": s}``, the
            note lengths in seconds past which a note-off is favoured (soft) and forced (hard).
        drum_hits_per_second (`float`, defaults to 8.0): the most hits one drum may get in one second.
        source (`str`): what the statistics were computed from.
        notes (`dict[str, int]`): notes counted per family.
        notes_per_second (`dict[str, float]`): family name -> the most notes per second it may start, counted
            over ``DENSITY_WINDOW_STEPS`` (``DEFAULT_NOTES_PER_SECOND`` for a family not listed).
        ensemble_notes_per_second (`dict[str, list[float]]`): ensemble size (``"2"`` .. ``"4"``, 4 meaning 4 or
            more) -> ``[soft, hard]`` notes per second all its families together start, over
            ``DENSITY_WINDOW_STEPS`` (``DEFAULT_ENSEMBLE_NOTES_PER_SECOND`` when empty).
        key_onsets_per_second (`dict[str, list[float]]`): pitched family name -> ``[soft, hard]`` onsets per
            second of one key, over ``KEY_REPEAT_WINDOW_STEPS`` (``DEFAULT_KEY_ONSETS_PER_SECOND`` for a
            family not listed).
        register_pitch (`dict[str, list[float]]`): pitched family name -> ``[hard low, soft low, soft high,
            hard high]`` MIDI pitches, the ``REGISTER_QUANTILES`` of its mean pitch over
            ``REGISTER_WINDOW_STEPS`` (a family not listed is not held to a register).
        grid_onset_share (`dict[str, float]`): style name -> the median over its pieces of the share of onsets
            on the beat grid of the piece's tempo (``grid_fit``); a style not listed is not held to the grid.
        groove_consistency (`dict[str, float]`): style name -> the median over its pieces of their groove
            consistency (``groove_consistency``), what ``GrooveGuard`` holds a row of that style to.
        ensemble_busiest_share (`dict[str, list[float]]`): ensemble size -> ``[soft, hard]`` share of the
            busiest family in the notes all its families start over ``DENSITY_WINDOW_STEPS``
            (``DEFAULT_ENSEMBLE_BUSIEST_SHARE`` when empty).
        ensemble_floor_notes_per_second (`dict[str, float]`): ensemble size -> the ``ENSEMBLE_FLOOR_QUANTILE`` of
            the notes per second all its families start over ``DENSITY_WINDOW_STEPS``, in the windows where any
            note starts (``DEFAULT_ENSEMBLE_FLOOR_NOTES_PER_SECOND`` when empty).
        polyphony (`dict[str, dict[str, list[float]]]`): style name -> ensemble (``polyphony_key``: a solo
            family's name, else ``"2"`` .. ``"4"``, 4 meaning 4 or more) -> the cumulative share of the 10 ms
            steps, among those where any pitched key sounds, with at most 1, 2, ... distinct keys sounding, up to
            the first count whose share reaches ``POLYPHONY_TOP_QUANTILE`` (at least 1 after it), in the style's
            real pieces played by that ensemble (``GRID_MIN_PIECES`` or more of them); one not listed is free.
        note_lengths (`dict[str, dict[str, list[float]]]`): style name -> ``"family@ensemble"`` (a pitched
            family's name, ``@``, the ``polyphony_key`` of the instruments playing) -> the cumulative share of that
            family's notes at most ``LENGTH_EDGES_STEPS[i]`` steps long, in the style's real pieces played by that
            ensemble (``GRID_MIN_PIECES`` or more with ``LENGTH_MIN_NOTES`` notes of the family, each weighing the
            same); one not listed is free.
        triplet_onset_share (`dict[str, float]`): like ``grid_onset_share``, on the eighth-note triplet grid
            (``TRIPLET_FRACTIONS``): a style not metric on sixteenths is held to the triplets where this reaches
            ``GRID_MIN_SHARE``.
        register_spread (`dict[str, dict[str, list[float]]]`): style name -> ``"family@ensemble"`` (as in
            ``note_lengths``) -> ``[hard narrow, soft narrow, soft wide, hard wide]`` semitones, the
            ``SPREAD_QUANTILES`` of the family's ``window_spread`` over the ``REGISTER_WINDOW_STEPS`` windows where
            it starts at least ``REGISTER_MIN_NOTES`` notes, in the style's real pieces played by that ensemble
            (``GRID_MIN_PIECES`` or more); one not listed is free.
        ensemble_groove_consistency (`dict[str, dict[str, float]]`): style name -> ensemble (``polyphony_key``)
            -> the median groove consistency of the style's real pieces played by that ensemble
            (``GRID_MIN_PIECES`` or more); where listed, ``groove_target`` holds a row of those instruments to
            it rather than to the style's ``groove_consistency`` (pop: POP909's piano 0.83, pop bands 0.87-0.96).
        ensemble_grid_tightness (`dict[str, dict[str, list[float]]]`): style name -> ensemble (``polyphony_key``)
            -> the ``TIGHTNESS_QUANTILES`` of the sixteenth-grid shares (``grid_fit``) of the first
            ``TIGHTNESS_SECONDS`` of the style's real pieces played by that ensemble (``GRID_MIN_PIECES`` or
            more): how tightly they keep to the grid, from played
            performances (rock bands' lowest tenth 0.6) to sequenced ones (their top half 0.9-1.0). ``GridGuard``
            holds a new piece to a tightness drawn from it (``grid_tightness``); one not listed is held to the
            grid throughout.
        ensemble_part_share (`dict[str, dict[str, list[float]]]`): style name -> ``"family@ensemble"`` (as in
            ``note_lengths``) -> ``[soft, hard]``, the ``PART_SHARE_SOFT_QUANTILE`` and
            ``PART_SHARE_HARD_QUANTILE`` of the family's share of the notes all the ensemble's families start over
            ``DENSITY_WINDOW_STEPS`` (windows with ``BALANCE_MIN_NOTES`` or more), in the style's real pieces
            played by that ensemble (``GRID_MIN_PIECES`` or more, ``MIN_WINDOWS_FOR_DENSITY`` windows or more);
            one not listed is held by the busiest-share rule alone (``part_share_limits``).
    """

    note_length_seconds: dict = field(default_factory=dict)
    drum_hits_per_second: float = DEFAULT_DRUM_HITS_PER_SECOND
    source: str = "defaults"
    notes: dict = field(default_factory=dict)
    notes_per_second: dict = field(default_factory=dict)
    ensemble_notes_per_second: dict = field(default_factory=dict)
    key_onsets_per_second: dict = field(default_factory=dict)
    register_pitch: dict = field(default_factory=dict)
    grid_onset_share: dict = field(default_factory=dict)
    groove_consistency: dict = field(default_factory=dict)
    ensemble_busiest_share: dict = field(default_factory=dict)
    polyphony: dict = field(default_factory=dict)
    note_lengths: dict = field(default_factory=dict)
    triplet_onset_share: dict = field(default_factory=dict)
    register_spread: dict = field(default_factory=dict)
    ensemble_floor_notes_per_second: dict = field(default_factory=dict)
    ensemble_groove_consistency: dict = field(default_factory=dict)
    ensemble_grid_tightness: dict = field(default_factory=dict)
    ensemble_part_share: dict = field(default_factory=dict)

    def note_limits(self, family: str) -> tuple[float, float]:
        """(soft, hard) note-length limits of a family, in seconds (the defaults for an unknown family)."""
        limits = self.note_length_seconds.get(family)
        if not limits:
            return DEFAULT_SOFT_SECONDS, DEFAULT_HARD_SECONDS
        return float(limits["soft"]), float(limits["hard"])

    def density_limit(self, family: str) -> float:
        """The most notes per second a family may start (over ``DENSITY_WINDOW_STEPS``)."""
        return float(self.notes_per_second.get(family, DEFAULT_NOTES_PER_SECOND))

    def key_repeat_limits(self, family: str) -> tuple[float, float]:
        """(soft, hard) onsets per second of one key of a pitched family (over ``KEY_REPEAT_WINDOW_STEPS``)."""
        soft, hard = self.key_onsets_per_second.get(family, DEFAULT_KEY_ONSETS_PER_SECOND)
        return float(soft), float(hard)

    def ensemble_limits(self, size: int) -> tuple[float, float] | None:
        """(soft, hard) notes per second of an ensemble of ``size`` families, or None for one family."""
        limits = self._per_size(self.ensemble_notes_per_second or DEFAULT_ENSEMBLE_NOTES_PER_SECOND, size)
        return None if limits is None else (float(limits[0]), float(limits[1]))

    def ensemble_floor(self, size: int) -> float | None:
        """The fewest notes per second an ensemble of ``size`` families starts (over ``DENSITY_WINDOW_STEPS``)
        before ``NoteDensityGuard`` lifts its note-ons, or None for one family."""
        floor = self._per_size(self.ensemble_floor_notes_per_second or DEFAULT_ENSEMBLE_FLOOR_NOTES_PER_SECOND, size)
        return None if floor is None else float(floor)

    def balance_limits(self, size: int) -> tuple[float, float] | None:
        """(soft, hard) share of the busiest family in an ensemble of ``size`` families' notes, or None for one."""
        shares = self._per_size(self.ensemble_busiest_share or DEFAULT_ENSEMBLE_BUSIEST_SHARE, size)
        return None if shares is None else (float(shares[0]), float(shares[1]))

    def part_share_limits(self, style, families: list[str], family: str) -> tuple[float, float] | None:
        """(soft, hard) share of ``family`` in the notes of ``families`` (names) playing in ``style`` (a name,
        or a ``{name: weight}`` blend: the weighted mean of its styles' limits), or None for one family, or
        when a weighted style has no figure for them."""
        if len(families) < 2:
            return None
        parts = _blend_parts(self.ensemble_part_share, style, f"{family}@{polyphony_key(families)}")
        return None if parts is None else tuple(float(b) for b in _blend_mean(parts))

    @staticmethod
    def _per_size(table: dict, size: int):
        """``table``'s entry for an ensemble of ``size`` families (None for one family)."""
        if size < 2:
            return None
        key = str(min(size, ENSEMBLE_MAX_SIZE))
        while key not in table and int(key) > 2:  # a size the corpus had too few pieces of: the next smaller
            key = str(int(key) - 1)
        return table.get(key)

    def to_dict(self) -> dict:
        return {"note_length_seconds": self.note_length_seconds, "drum_hits_per_second": self.drum_hits_per_second,
                "source": self.source, "notes": self.notes, "notes_per_second": self.notes_per_second,
                "ensemble_notes_per_second": self.ensemble_notes_per_second,
                "key_onsets_per_second": self.key_onsets_per_second, "register_pitch": self.register_pitch,
                "grid_onset_share": self.grid_onset_share, "groove_consistency": self.groove_consistency,
                "ensemble_busiest_share": self.ensemble_busiest_share, "polyphony": self.polyphony,
                "note_lengths": self.note_lengths, "triplet_onset_share": self.triplet_onset_share,
                "register_spread": self.register_spread,
                "ensemble_floor_notes_per_second": self.ensemble_floor_notes_per_second,
                "ensemble_groove_consistency": self.ensemble_groove_consistency,
                "ensemble_grid_tightness": self.ensemble_grid_tightness,
                "ensemble_part_share": self.ensemble_part_share}

    def polyphony_cdf(self, style, families: list[str]) -> np.ndarray | None:
        """``[top + 1]`` cumulative shares of sounding time with at most 0, 1, ... ``top`` distinct pitched keys
        sounding (index 0 is 0; ``top`` the last count real pieces reach) for the asked ``families`` (names) in
        ``style`` (a name, or a ``{name: weight}`` blend: the weighted mix of its styles' distributions), or
        None when a weighted style has no figure for them, or when no one count holds
        ``POLYPHONY_MIN_MODE_SHARE`` of the time (the guard then leaves the row free)."""
        return self._polyphony_cdf(style, polyphony_key(families))

    def holds_polyphony(self, style) -> bool:
        """Whether the polyphony guard holds any ensemble of ``style`` (a name or a ``{name: weight}`` blend):
        where it holds none, it need not follow the rows at all."""
        weights = style_weights(style)
        keys = {key for name, w in weights.items() if w > 0 for key in self.polyphony.get(name, {})}
        return any(self._polyphony_cdf(style, key) is not None for key in keys)

    def _polyphony_cdf(self, style, key: str) -> np.ndarray | None:
        parts = _blend_parts(self.polyphony, style, key)
        if parts is None:
            return None
        top = max(len(cdf) for _, cdf in parts)
        mixed = sum(w * np.concatenate([[0.0], cdf, np.ones(top - len(cdf))]) for w, cdf in parts)
        mixed = mixed / sum(w for w, _ in parts)
        return mixed if np.diff(mixed).max() >= POLYPHONY_MIN_MODE_SHARE - 1e-9 else None

    def note_length_cdf(self, style, families: list[str], family: str) -> np.ndarray | None:
        """``[len(LENGTH_EDGES_STEPS)]`` cumulative shares of ``family``'s real notes at most each edge long when
        ``families`` (names) play in ``style`` (a name, or a ``{name: weight}`` blend: the weighted mix of its
        styles' distributions), or None when a weighted style has no figure for them, or when their texture is
        not steady (``polyphony_cdf`` is None: see ``LENGTH_EDGES_STEPS``); the row is then left free."""
        if self.polyphony_cdf(style, families) is None:
            return None
        parts = _blend_parts(self.note_lengths, style, f"{family}@{polyphony_key(families)}")
        if parts is None:
            return None
        return _blend_mean(parts)

    def holds_note_lengths(self, style) -> bool:
        """Whether the duration guard holds any ensemble of ``style`` (a name or a ``{name: weight}`` blend): one
        with note-length distributions and a steady texture (``holds_polyphony``)."""
        weights = style_weights(style)
        return any(self.note_lengths.get(name) for name, w in weights.items() if w > 0) and self.holds_polyphony(style)

    def spread_bounds(self, style, families: list[str], family: str) -> tuple[float, float, float, float] | None:
        """``(hard narrow, soft narrow, soft wide, hard wide)`` spreads in semitones of ``family``'s real notes
        when ``families`` (names) play in ``style`` (a name, or a ``{name: weight}`` blend: the weighted mean of its
        styles' bounds), or None when a weighted style has no figure for them, or when ``families`` are an
        ensemble (bands are left free: see ``SPREAD_MAX_BONUS``); the family is then left free."""
        if len(families) != 1:
            return None
        parts = _blend_parts(self.register_spread, style, f"{family}@{polyphony_key(families)}")
        if parts is None:
            return None
        return tuple(float(b) for b in _blend_mean(parts))

    def groove_target(self, style, families: list[str] | None = None) -> float | None:
        """The groove consistency real pieces of ``style`` (a name, or a ``{name: weight}`` blend: the weighted
        mean over the blended styles that have one) keep, or None when no style of it has a figure. With the
        asked ``families``, each style's figure for that ensemble (``ensemble_groove_consistency``) where it
        has one."""
        key = polyphony_key(families) if families else None
        known = {}
        for name, w in style_weights(style).items():
            value = self.ensemble_groove_consistency.get(name, {}).get(key, self.groove_consistency.get(name))
            if value is not None and w > 0:
                known[name] = (w, float(value))
        if not known:
            return None
        return sum(w * value for w, value in known.values()) / sum(w for w, _ in known.values())

    def grid_tightness(self, style, families: list[str]) -> np.ndarray | None:
        """The ``TIGHTNESS_QUANTILES`` of the sixteenth-grid shares of real pieces of ``style`` (a name, or a
        ``{name: weight}`` blend: the weighted mean of its styles' quantiles) played by ``families`` (names), or
        None when a weighted style has no figure for that ensemble, or for a solo instrument (``GridGuard`` then
        holds the row to the grid throughout). Solo instruments are held: the grid is what keeps a solo pop
        piano's note rate near its real one (24 pieces a case: 8.75 notes/s when each piece drew POP909's
        tightness, 6.8 held, real 5.08), and the solo cases' mean overlap shortfall rose with it."""
        if len(families) < 2:
            return None
        parts = _blend_parts(self.ensemble_grid_tightness, style, polyphony_key(families))
        return None if parts is None else _blend_mean(parts)

    def metric(self, style) -> bool:
        """Whether pieces in ``style`` (a name, or a ``{name: weight}`` blend: the weighted mean share) put
        their onsets on the sixteenth-note grid, i.e. whether ``GridGuard`` holds them to it (and
        ``GrooveGuard`` to their groove)."""
        return self._share(self.grid_onset_share, style) >= GRID_MIN_SHARE

    def grid_fractions(self, style) -> tuple | None:
        """The beat grid ``GridGuard`` holds ``style`` (a name or a blend) to: ``GRID_FRACTIONS`` for a metric
        style, else ``TRIPLET_FRACTIONS`` where its (weighted mean) triplet share reaches ``GRID_MIN_SHARE``,
        else None (free)."""
        if self.metric(style):
            return GRID_FRACTIONS
        return TRIPLET_FRACTIONS if self._share(self.triplet_onset_share, style) >= GRID_MIN_SHARE else None

    @staticmethod
    def _share(shares: dict, style) -> float:
        weights = style_weights(style)
        total = sum(weights.values())
        if not shares or total <= 0:
            return 0.0
        return sum(w * float(shares.get(name, 0.0)) for name, w in weights.items()) / total

    @classmethod
    def from_config(cls, config) -> MusicStatistics:
        """The statistics a model config carries, or the defaults. Fields this version does not know (a
        checkpoint written by a newer one) are left out with a warning: its guards then hold what this version
        can."""
        data = getattr(config, CONFIG_KEY, None)
        if not data:
            return cls()
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            logger.warning(f"{CONFIG_KEY} holds statistics this version does not use: {', '.join(unknown)}")
        return cls(**{k: v for k, v in data.items() if k in known})


def music_statistics(sequences, vocab: Vocabulary, source: str = "corpus") -> MusicStatistics:
    """Learn the guards' limits from token sequences (a built corpus's ``input_ids`` rows).

    Args:
        sequences (iterable of `list[int]`): header + events id sequences.
        vocab (`Vocabulary`): the vocabulary they are written in.
        source (`str`, defaults to ``"corpus"``): recorded with the statistics.

    Returns:
        `MusicStatistics`: per family the ``SOFT_QUANTILE`` / ``HARD_QUANTILE`` note lengths (families with
        fewer than ``MIN_NOTES_FOR_STATISTIC`` notes are left to the defaults; hard limits clipped to
        ``MIN_HARD_SECONDS``..``MAX_HARD_SECONDS``), the rate of a piece's busiest drum (its hits over the
        piece's length) at the corpus's ``DRUM_QUANTILE`` of pieces with drums; per family
        the ``DENSITY_QUANTILE`` of its note rates over the ``DENSITY_WINDOW_STEPS`` windows where it plays;
        per ensemble size (2 to ``ENSEMBLE_MAX_SIZE`` families playing), the ``ENSEMBLE_FLOOR_QUANTILE``,
        ``ENSEMBLE_SOFT_QUANTILE`` and ``ENSEMBLE_HARD_QUANTILE`` of all its notes' rates over the windows where any note starts; per pitched
        family, the ``KEY_REPEAT_SOFT_QUANTILE`` and ``KEY_REPEAT_HARD_QUANTILE`` of its busiest key's onset
        rate over the ``KEY_REPEAT_WINDOW_STEPS`` windows where it plays; per pitched family, the
        ``REGISTER_QUANTILES`` of its mean pitch over the ``REGISTER_WINDOW_STEPS`` windows where it starts at
        least ``REGISTER_MIN_NOTES`` notes; per style seen in ``GRID_MIN_PIECES`` pieces or more, the median of
        its pieces' ``grid_fit`` shares of their distinct onsets (pieces with ``GRID_MIN_ONSETS`` or more; on
        the sixteenths and on the triplets),
        the median groove consistency of those pieces (overall, and per ensemble played by ``GRID_MIN_PIECES``
        of them or more), the ``TIGHTNESS_QUANTILES`` of their first ``TIGHTNESS_SECONDS``' sixteenth-grid shares per such
        ensemble, and per ensemble (``polyphony_key``: a solo instrument
        by its name, else the number of families) the distribution of the distinct pitched keys sounding over
        the 10 ms steps where any sounds (ensembles with ``GRID_MIN_PIECES`` pieces or more); per style and
        ``family@ensemble``, the distribution of note lengths (``note_lengths``) and the ``SPREAD_QUANTILES`` of
        the family's ``window_spread`` over the same windows as its register (``register_spread``) and the
        ``PART_SHARE_SOFT_QUANTILE`` and ``PART_SHARE_HARD_QUANTILE`` of its share of the ensemble's notes over
        the ``DENSITY_WINDOW_STEPS`` windows (``ensemble_part_share``), each from ``GRID_MIN_PIECES`` pieces or more.
    """
    step = vocab.config.step_seconds
    grid_shares: dict[str, list[float]] = {}
    triplet_shares: dict[str, list[float]] = {}
    grooves: dict[str, list[float]] = {}
    ensemble_grooves: dict[tuple[str, str], list[float]] = {}  # (style, polyphony_key) -> per piece
    ensemble_grid_shares: dict[tuple[str, str], list[float]] = {}  # (style, polyphony_key) -> per piece
    lengths: dict[int, list[float]] = {}
    drum_peaks: list[float] = []
    rates: dict[int, list[np.ndarray]] = {}
    ensembles: dict[int, list[np.ndarray]] = {}
    shares: dict[int, list[np.ndarray]] = {}
    repeats: dict[int, list[np.ndarray]] = {}
    registers: dict[int, list[np.ndarray]] = {}
    sounding: dict[tuple[str, str], list[np.ndarray]] = {}  # (style, polyphony_key) -> per piece histograms
    durations: dict[tuple[str, str], list[np.ndarray]] = {}  # (style, family@ensemble) -> per piece shares
    spreads: dict[tuple[str, str], list[np.ndarray]] = {}  # (style, family@ensemble) -> per piece window spreads
    part_shares: dict[tuple[str, str], list[np.ndarray]] = {}  # (style, family@ensemble) -> per piece window shares
    window = DRUM_RATE_WINDOW_STEPS * step
    density_window = DENSITY_WINDOW_STEPS * step
    repeat_window = KEY_REPEAT_WINDOW_STEPS * step
    for ids in sequences:
        decoded = decode_ids(list(ids), vocab)
        notes = decoded.notes
        players = polyphony_key([vocab.families[f] for f in sorted({n.family for n in notes})])  # the ensemble
        onsets = np.unique(np.rint(np.array([n.start for n in notes]) / step))  # distinct onsets, in steps
        if len(onsets) >= GRID_MIN_ONSETS:
            beat = beat_steps(decoded.header.bpm, vocab)
            grid_share = grid_fit(onsets, beat)[0]
            grid_shares.setdefault(decoded.header.style, []).append(grid_share)
            triplet_shares.setdefault(decoded.header.style, []).append(grid_fit(onsets, beat, TRIPLET_FRACTIONS)[0])
            sixteenth = beat / len(GRID_FRACTIONS)
            bars = math.ceil(max(n.end for n in notes) / step / (sixteenth * GROOVE_BAR_POSITIONS) - 1e-9)
            groove = groove_consistency(np.rint(onsets / sixteenth), bars)
            grooves.setdefault(decoded.header.style, []).append(groove)
            ensemble_grooves.setdefault((decoded.header.style, players), []).append(groove)
            opening = onsets[onsets < onsets[0] + TIGHTNESS_SECONDS / step]
            if len(opening) >= GRID_MIN_ONSETS:
                tight = grid_share if len(opening) == len(onsets) else grid_fit(opening, beat)[0]
                ensemble_grid_shares.setdefault((decoded.header.style, players), []).append(tight)
        for fam, busiest in _busiest_key_counts(notes, repeat_window, vocab.drum_index).items():
            repeats.setdefault(fam, []).append(busiest / repeat_window)
        for fam, means in _window_mean_pitches(notes, REGISTER_WINDOW_STEPS * step, vocab.drum_index).items():
            registers.setdefault(fam, []).append(means)
        if notes:
            histogram = sounding_histogram(notes, step, vocab.drum_index)
            sounding.setdefault((decoded.header.style, players), []).append(histogram)
            for fam, shares_of_piece in length_shares(notes, step, vocab.drum_index).items():
                key = (decoded.header.style, f"{vocab.families[fam]}@{players}")
                durations.setdefault(key, []).append(shares_of_piece)
            for fam, values in _window_spreads(notes, REGISTER_WINDOW_STEPS * step, vocab.drum_index).items():
                spreads.setdefault((decoded.header.style, f"{vocab.families[fam]}@{players}"), []).append(values)
        per_family = _window_counts(notes, density_window)
        for fam, per_window in per_family.items():
            rates.setdefault(fam, []).append(per_window / density_window)
        if len(per_family) >= 2:
            total = _window_counts([replace(n, family=0) for n in notes], density_window)[0]
            ensembles.setdefault(min(len(per_family), ENSEMBLE_MAX_SIZE), []).append(total / density_window)
            piece_shares = _part_shares(notes, density_window)
            shares.setdefault(min(len(per_family), ENSEMBLE_MAX_SIZE), []).append(_busiest_shares(piece_shares))
            for fam, values in piece_shares.items():
                part_shares.setdefault((decoded.header.style, f"{vocab.families[fam]}@{players}"), []).append(values)
        hits: dict[int, list[float]] = {}
        for n in notes:
            if n.family == vocab.drum_index:
                hits.setdefault(n.pitch, []).append(n.start)
            else:
                lengths.setdefault(n.family, []).append(n.end - n.start)
        if hits:
            seconds = max(max(n.end for n in notes), window)
            drum_peaks.append(max(len(starts) for starts in hits.values()) / seconds)
    limits, counts = {}, {}
    for fam, values in sorted(lengths.items()):
        name = vocab.families[fam]
        counts[name] = len(values)
        if len(values) >= MIN_NOTES_FOR_STATISTIC:
            soft, hard = np.quantile(np.asarray(values), [SOFT_QUANTILE, HARD_QUANTILE])
            hard = min(max(float(hard), MIN_HARD_SECONDS), MAX_HARD_SECONDS)
            limits[name] = {"soft": round(min(float(soft), hard), 2), "hard": round(hard, 2)}
    rate = float(np.quantile(drum_peaks, DRUM_QUANTILE)) if drum_peaks else DEFAULT_DRUM_HITS_PER_SECOND
    counts["drums"] = len(drum_peaks)
    density = {}
    for fam, parts in sorted(rates.items()):
        values = np.concatenate(parts)
        if len(values) >= MIN_WINDOWS_FOR_DENSITY:
            density[vocab.families[fam]] = round(float(np.quantile(values, DENSITY_QUANTILE)), 2)
    ensemble, floors = {}, {}
    for size, parts in sorted(ensembles.items()):
        values = np.concatenate(parts)
        if len(values) >= MIN_WINDOWS_FOR_DENSITY:
            quantiles = np.quantile(values, [ENSEMBLE_FLOOR_QUANTILE, ENSEMBLE_SOFT_QUANTILE, ENSEMBLE_HARD_QUANTILE])
            ensemble[str(size)] = [round(float(q), 2) for q in quantiles[1:]]
            floors[str(size)] = round(float(quantiles[0]), 2)
    balance = {}
    for size, parts in sorted(shares.items()):
        values = np.concatenate(parts)
        if len(values) >= MIN_WINDOWS_FOR_DENSITY:
            balance[str(size)] = [round(float(q), 2) for q in np.quantile(values, [BALANCE_SOFT_QUANTILE, BALANCE_HARD_QUANTILE])]
    key_rates = {}
    for fam, parts in sorted(repeats.items()):
        values = np.concatenate(parts)
        if len(values) >= MIN_WINDOWS_FOR_DENSITY:
            quantiles = np.quantile(values, [KEY_REPEAT_SOFT_QUANTILE, KEY_REPEAT_HARD_QUANTILE])
            key_rates[vocab.families[fam]] = [round(float(q), 2) for q in quantiles]
    register = {}
    for fam, parts in sorted(registers.items()):
        values = np.concatenate(parts)
        if len(values) >= MIN_WINDOWS_FOR_DENSITY:
            register[vocab.families[fam]] = [round(float(q), 1) for q in np.quantile(values, REGISTER_QUANTILES)]
    grid = {style: round(float(np.median(shares)), 3) for style, shares in sorted(grid_shares.items())
            if len(shares) >= GRID_MIN_PIECES}
    triplet = {style: round(float(np.median(shares)), 3) for style, shares in sorted(triplet_shares.items())
               if len(shares) >= GRID_MIN_PIECES}
    groove = {}
    for style, values in sorted(grooves.items()):
        values = np.asarray(values)[np.isfinite(values)]
        if len(values) >= GRID_MIN_PIECES:
            groove[style] = round(float(np.median(values)), 3)
    ensemble_groove: dict[str, dict[str, float]] = {}
    for (style, players), values in sorted(ensemble_grooves.items()):
        values = np.asarray(values)[np.isfinite(values)]
        if len(values) >= GRID_MIN_PIECES:
            ensemble_groove.setdefault(style, {})[players] = round(float(np.median(values)), 3)
    tightness: dict[str, dict[str, list[float]]] = {}
    for (style, players), values in sorted(ensemble_grid_shares.items()):
        if len(values) >= GRID_MIN_PIECES:
            quantiles = np.quantile(values, TIGHTNESS_QUANTILES)
            tightness.setdefault(style, {})[players] = [round(float(q), 3) for q in quantiles]
    polyphony: dict[str, dict[str, list[float]]] = {}
    for (style, players), parts in sorted(sounding.items()):
        parts = [h / h.sum() for h in parts if h.sum() > 0]  # each piece weighs the same, however long
        if len(parts) >= GRID_MIN_PIECES:
            histogram = np.mean(parts, axis=0)
            cdf = np.cumsum(histogram[1:]) / histogram.sum()
            top = int(np.searchsorted(cdf, POLYPHONY_TOP_QUANTILE - 1e-9))
            polyphony.setdefault(style, {})[players] = [round(float(c), 4) for c in cdf[:top]] + [1.0]
    note_lengths: dict[str, dict[str, list[float]]] = {}
    for (style, key), parts in sorted(durations.items()):
        if len(parts) >= GRID_MIN_PIECES:
            cdf = np.cumsum(np.mean(parts, axis=0))[: len(LENGTH_EDGES_STEPS)]
            note_lengths.setdefault(style, {})[key] = [round(float(c), 4) for c in cdf]
    register_spread: dict[str, dict[str, list[float]]] = {}
    for (style, key), parts in sorted(spreads.items()):
        if len(parts) >= GRID_MIN_PIECES:
            quantiles = np.quantile(np.concatenate(parts), SPREAD_QUANTILES)
            register_spread.setdefault(style, {})[key] = [round(float(q), 1) for q in quantiles]
    part_share: dict[str, dict[str, list[float]]] = {}
    for (style, key), parts in sorted(part_shares.items()):
        values = np.concatenate(parts)
        if len(parts) >= GRID_MIN_PIECES and len(values) >= MIN_WINDOWS_FOR_DENSITY:
            quantiles = np.quantile(values, [PART_SHARE_SOFT_QUANTILE, PART_SHARE_HARD_QUANTILE])
            part_share.setdefault(style, {})[key] = [round(float(q), 3) for q in quantiles]
    return MusicStatistics(limits, round(rate, 2), source, counts, density, ensemble, key_rates, register, grid, groove,
                           balance, polyphony, note_lengths, triplet, register_spread, floors, ensemble_groove,
                           tightness, part_share)


def groove_consistency(slots: np.ndarray, bars: int, bar: int = GROOVE_BAR_POSITIONS) -> float:
    """1 - the mean Hamming distance between neighbouring bars' onset patterns / positions per bar (MusPy's
    ``groove_consistency``, after Wu & Yang 2020).

    Args:
        slots (`np.ndarray`): grid positions of the onsets (sixteenth notes from the first bar's start; those
            outside ``[0, bars * bar)`` are left out).
        bars (`int`): bars in the piece.
        bar (`int`, defaults to ``GROOVE_BAR_POSITIONS``): grid positions per bar.

    Returns:
        `float`: in [0, 1]; ``nan`` for fewer than two bars.
    """
    if bars < 2:
        return math.nan
    slots = np.asarray(slots, dtype=np.int64)
    grid = np.zeros(bars * bar, dtype=bool)
    grid[slots[(slots >= 0) & (slots < bars * bar)]] = True
    grid = grid.reshape(bars, bar)
    return float(1.0 - np.count_nonzero(grid[:-1] != grid[1:]) / (bar * (bars - 1)))


def beat_steps(bpm: float, vocab: Vocabulary) -> float:
    """One beat at ``bpm``, in 10 ms steps (120 bpm: 50.0)."""
    return 60.0 / float(bpm) / vocab.config.step_seconds


def grid_distance(times: np.ndarray, beat: float, fractions: tuple = GRID_FRACTIONS) -> np.ndarray:
    """Steps from each of ``times`` (steps after the grid's origin) to the nearest position of its beat (``beat``
    steps long) at the beat ``fractions`` (the sixteenths ``GRID_FRACTIONS``, or ``TRIPLET_FRACTIONS``); same
    shape as ``times``."""
    phase = np.mod(times, beat)
    positions = np.array([*fractions, 1.0]) * beat
    return np.abs(phase[..., None] - positions).min(axis=-1)


def grid_fit(onsets: np.ndarray, beat: float, fractions: tuple = GRID_FRACTIONS) -> tuple[float, int]:
    """The grid phase that puts most of ``onsets`` (steps) on the beat grid, and the share it puts there.

    Args:
        onsets (`np.ndarray`): onset times in 10 ms steps (any order; at most the ``GRID_PHASE_ONSETS`` last
            in the array are read).
        beat (`float`): the beat in steps (``beat_steps``).
        fractions (`tuple`, defaults to ``GRID_FRACTIONS``): the grid's positions in a beat.

    Returns:
        `(share, phase)`: the share of onsets within ``GRID_TOLERANCE_STEPS`` of a grid position, and the origin
        of that grid in steps (``0 <= phase < beat``). Of the phases with the best share, the one whose grid
        lies closest to the onsets (the tolerance lets a few neighbouring phases hold the same onsets; the one
        at an edge would let what follows drift off the onsets' own grid); of those, the earliest, so music on
        the grid from time 0 keeps phase 0. ``(0.0, 0)`` without onsets.
    """
    onsets = np.asarray(onsets, dtype=np.float64)[-GRID_PHASE_ONSETS:]
    if not len(onsets):
        return 0.0, 0
    phases = np.arange(int(math.ceil(beat)))
    distance = grid_distance(onsets[None, :] - phases[:, None], beat, fractions)
    shares = (distance <= GRID_TOLERANCE_STEPS).mean(axis=1)
    best = int(np.lexsort((phases, distance.mean(axis=1), -shares))[0])
    return float(shares[best]), int(phases[best])


def style_weights(style) -> dict:
    """``{name: weight}`` of an asked style: a blend as given, a single style name with weight 1."""
    return style if isinstance(style, dict) else {style: 1.0}


def _blend_parts(table: dict, style, key: str) -> list[tuple[float, list]] | None:
    """``(weight, table[name][key])`` for each style ``name`` ``style`` weighs above 0, or None when there is
    none or one of them has no figure for ``key``."""
    parts = [(w, table.get(name, {}).get(key)) for name, w in style_weights(style).items() if w > 0]
    return None if not parts or any(value is None for _, value in parts) else parts


def _blend_mean(parts: list[tuple[float, list]]) -> np.ndarray:
    """The weighted mean of ``_blend_parts``' equally long figures."""
    return sum(w * np.asarray(value, dtype=np.float64) for w, value in parts) / sum(w for w, _ in parts)


def polyphony_key(families: list[str]) -> str:
    """The ensemble a polyphony distribution is kept for: a solo instrument by its name (a violin does not
    sound a piano's chords), an ensemble by its size (``"2"`` .. ``"4"``, 4 meaning 4 or more)."""
    return families[0] if len(families) == 1 else str(min(len(families), ENSEMBLE_MAX_SIZE))


def sounding_levels(notes, step: float, key=lambda n: (n.family, n.pitch)) -> tuple[np.ndarray, np.ndarray]:
    """How many distinct keys sound, run by run: the notes' times rounded to ``step``-long steps (a note lasts at
    least one), each key's notes merged into the spans where it sounds (a key struck again while it sounds
    counts once), then a +1/-1 sweep over all spans.

    Args:
        notes (`list[Note]`): the notes to count (times in seconds).
        step (`float`): the time step, in seconds.
        key (callable, defaults to ``(family, pitch)``): what makes two notes the same key (the evaluator's
            polyphony counts pitches).

    Returns:
        `tuple[np.ndarray, np.ndarray]`: ``[runs]`` lengths in steps and ``[runs]`` counts of keys sounding over
        each run, from the first note's start to the last note's end (runs where none sounds have count 0).
    """
    by_key: dict = {}
    for n in notes:
        start = round(n.start / step)
        by_key.setdefault(key(n), []).append((start, max(round(n.end / step), start + 1)))
    times, deltas = [], []
    for spans in by_key.values():
        spans.sort()
        cur_start, cur_end = spans[0]
        for start, end in spans[1:]:
            if start > cur_end:
                times += [cur_start, cur_end]
                deltas += [1, -1]
                cur_start = start
            cur_end = max(cur_end, end)
        times += [cur_start, cur_end]
        deltas += [1, -1]
    if not times:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    order = np.lexsort((deltas, times))  # at equal times, ends (-1) before starts
    return np.diff(np.asarray(times, dtype=np.int64)[order]), np.cumsum(np.asarray(deltas, dtype=np.int64)[order])[:-1]


def sounding_histogram(notes, step: float, drum_index: int) -> np.ndarray:
    """``[POLYPHONY_MAX_LEVEL + 1]`` counts of the ``step``-long steps of a piece with 1, 2, ... distinct pitched
    keys (family, pitch) sounding, as the polyphony guard counts them (``sounding_levels``); index 0, the steps
    where none sounds, is left at 0."""
    lengths, levels = sounding_levels([n for n in notes if n.family != drum_index], step)
    histogram = np.bincount(np.minimum(levels, POLYPHONY_MAX_LEVEL), weights=lengths, minlength=POLYPHONY_MAX_LEVEL + 1)
    histogram[0] = 0
    return histogram.astype(np.int64)


def length_bins(steps) -> np.ndarray:
    """The ``LENGTH_EDGES_STEPS`` bin of each note length in ``steps`` (10 ms steps): bin i holds the lengths
    above edge i - 1 and at most edge i; bin ``len(LENGTH_EDGES_STEPS)``, those past the last edge."""
    return np.searchsorted(np.asarray(LENGTH_EDGES_STEPS), np.asarray(steps), side="left")


def length_shares(notes, step: float, drum_index: int) -> dict[int, np.ndarray]:
    """Pitched family -> ``[len(LENGTH_EDGES_STEPS) + 1]`` shares of its notes in each ``length_bins`` bin, for
    the families with at least ``LENGTH_MIN_NOTES`` notes in ``notes`` (times in seconds, ``step`` seconds long)."""
    per_family: dict[int, list[float]] = {}
    for n in notes:
        if n.family != drum_index:
            per_family.setdefault(n.family, []).append(n.end - n.start)
    out = {}
    for fam, lengths in per_family.items():
        if len(lengths) >= LENGTH_MIN_NOTES:
            counts = np.bincount(length_bins(np.rint(np.asarray(lengths) / step)), minlength=len(LENGTH_EDGES_STEPS) + 1)
            out[fam] = counts / counts.sum()
    return out


def _window_mean_pitches(notes, seconds: float, drum_index: int) -> dict[int, np.ndarray]:
    """Per pitched family, the mean pitch of its onsets in each whole ``seconds`` window where it starts at
    least ``REGISTER_MIN_NOTES`` notes."""
    out = {}
    for fam, windows, slots, pitches in _pitched_windows(notes, seconds, drum_index):
        counts = np.bincount(slots, minlength=windows)
        sums = np.bincount(slots, weights=pitches.astype(np.float64), minlength=windows)
        full = counts >= REGISTER_MIN_NOTES
        if full.any():
            out[fam] = sums[full] / counts[full]
    return out


def window_spread(pitches) -> float:
    """The spread of ``pitches`` (MIDI numbers): the distance in semitones between their
    ``SPREAD_PERCENTILES`` (linear interpolation)."""
    low, high = np.percentile(np.asarray(pitches, dtype=np.float64), SPREAD_PERCENTILES)
    return float(high - low)


def _window_spreads(notes, seconds: float, drum_index: int) -> dict[int, np.ndarray]:
    """Per pitched family, the ``window_spread`` of its onsets' pitches in each whole ``seconds`` window where it
    starts at least ``REGISTER_MIN_NOTES`` notes."""
    out = {}
    for fam, windows, slots, pitches in _pitched_windows(notes, seconds, drum_index):
        spreads = [window_spread(p) for p in (pitches[slots == w] for w in range(windows)) if len(p) >= REGISTER_MIN_NOTES]
        if spreads:
            out[fam] = np.asarray(spreads)
    return out


def _pitched_windows(notes, seconds: float, drum_index: int):
    """Per pitched family: (family, whole ``seconds`` windows in the piece, and the window index and pitch of
    each of its notes that starts inside them, as arrays). Nothing for a piece shorter than one window."""
    pitched = [n for n in notes if n.family != drum_index]
    windows = int(max(n.end for n in notes) // seconds) if pitched else 0
    if windows < 1:
        return
    slots = (np.array([n.start for n in pitched]) // seconds).astype(int)
    families, pitches = np.array([n.family for n in pitched]), np.array([n.pitch for n in pitched])
    inside = slots < windows
    for fam in np.unique(families).tolist():
        mine = inside & (families == fam)
        yield fam, windows, slots[mine], pitches[mine]


def _busiest_key_counts(notes, seconds: float, drum_index: int) -> dict[int, np.ndarray]:
    """Per pitched family, the onsets of its busiest key in each whole ``seconds`` window where it plays."""
    out = {}
    for fam, windows, slots, pitches in _pitched_windows(notes, seconds, drum_index):
        counts = np.zeros((windows, 128), dtype=np.int64)
        np.add.at(counts, (slots, pitches), 1)
        busiest = counts.max(axis=1)
        out[fam] = busiest[busiest > 0]
    return out


def _busiest_shares(part_shares: dict[int, np.ndarray]) -> np.ndarray:
    """The busiest family's share in each window of ``part_shares`` (``_part_shares``)."""
    return np.max(list(part_shares.values()), axis=0) if part_shares else np.zeros(0)


def _part_shares(notes, seconds: float) -> dict[int, np.ndarray]:
    """Per family that plays, its share of the notes started in each whole ``seconds`` window with at least
    ``BALANCE_MIN_NOTES`` of them."""
    present, counts = _window_matrix(notes, seconds)
    if not len(counts):
        return {}
    total = counts.sum(axis=0)
    kept = total >= BALANCE_MIN_NOTES
    return {fam: row[kept] / total[kept] for fam, row in zip(present, counts)}


def _window_matrix(notes, seconds: float) -> tuple[list[int], np.ndarray]:
    """(the families that play, ``[families, windows]`` notes each starts in each whole ``seconds`` window)."""
    if not notes:
        return [], np.zeros((0, 0), dtype=np.int64)
    windows = int(max(n.end for n in notes) // seconds)
    starts = np.array([n.start for n in notes])
    families = np.array([n.family for n in notes])
    present = np.unique(families).tolist()
    if windows < 1:
        return present, np.zeros((0, 0), dtype=np.int64)
    return present, np.stack([np.bincount((starts[families == f] // seconds).astype(int), minlength=windows + 1)[:windows]
                              for f in present])


def _window_counts(notes, seconds: float) -> dict[int, np.ndarray]:
    """Per family, the notes it starts in each whole ``seconds`` window of the piece where it starts any."""
    present, counts = _window_matrix(notes, seconds)
    return {fam: row[row > 0] for fam, row in zip(present, counts)}


def corpus_music_statistics(dataset, vocab: Vocabulary, max_pieces: int = MAX_STATISTICS_PIECES, seed: int = 0) -> MusicStatistics:
    """``music_statistics`` of a built corpus split (a ``datasets.Dataset`` with ``input_ids`` rows), on at
    most ``max_pieces`` rows drawn with ``seed`` (decoding runs ~1 s per 100 pieces on one core).

    Args:
        dataset (`datasets.Dataset`): one split of ``load_corpus``.
        vocab (`Vocabulary`): its vocabulary.
        max_pieces (`int`, defaults to ``MAX_STATISTICS_PIECES``): rows read at most.
        seed (`int`, defaults to 0): which rows, when there are more.
    """
    rows = np.arange(len(dataset))
    if len(rows) > max_pieces:
        rows = np.sort(np.random.default_rng(seed).choice(rows, max_pieces, replace=False))
    ids = dataset.select(rows.tolist())["input_ids"]
    return music_statistics(ids, vocab, source=f"{len(rows)} of {len(dataset)} training pieces")


class _RowState:
    """What one row has played: the clock, the sounding voices and their onsets, recent drum hits, the last
    onset of each family, and the header's families and voice order."""

    def __init__(self):
        self.now = 0
        self.voices: dict[int, list[int]] = {}  # key slot -> onset steps of its sounding voices, in start order
        self.skips = 0
        self.fifo = False
        self.families: list[int] = []
        self.hits: dict[int, deque] = {}  # drum pitch -> steps of its recent hits
        self.last_onset: dict[int, int] = {}  # family -> step of its latest note-on
        self.onsets: dict[int, deque] = {}  # family -> steps of its recent note-ons (kept by NoteDensityGuard)
        self.key_onsets: dict[int, deque] = {}  # key slot -> steps of its recent note-ons (kept by KeyRepeatGuard)
        self.pitches: dict[int, deque] = {}  # family -> (step, pitch) of its recent note-ons (kept by RegisterGuard)
        self.pitch_sums: dict[int, int] = {}  # family -> the sum of the pitches in ``pitches``
        # keys sounding -> steps spent so, fading over POLYPHONY_WINDOW_STEPS (kept by PolyphonyGuard)
        self.sounding_time = np.zeros(POLYPHONY_MAX_LEVEL + 1)
        # pitched family -> its ended notes per ``length_bins`` bin, fading over LENGTH_WINDOW_NOTES (DurationGuard)
        self.lengths: dict[int, np.ndarray] = {}
        self.last_token = -1


class _Tracker:
    """Follows every row of a ``generate`` call token by token (the prompt on the first call); the state the
    guards read. Rows are rebuilt from the prompt, so a slid window or a primer starts with what it holds."""

    def __init__(self, vocab: Vocabulary):
        self.vocab = vocab
        every = np.arange(vocab.size)
        self.kind = vocab.kinds(every).tolist()
        self.key = vocab.key(every).tolist()
        self.family = vocab.note_family(every).tolist()
        self.pitch = vocab.pitch(every).tolist()
        self.wait = vocab.wait_steps(every).tolist()
        self.skip = vocab.token_to_id[VOICE_SKIP]
        self.fifo = vocab.token_to_id[VOICE_FIFO]
        self.rows: list[_RowState] | None = None
        self.seen = 0
        self.keep_onsets = False  # only the density guard reads (and trims) ``_RowState.onsets``
        self.keep_key_onsets = False  # only the key repeat guard reads (and trims) ``_RowState.key_onsets``
        self.keep_pitches = False  # only the register guard reads (and trims) ``_RowState.pitches``
        self.keep_sounding_time = False  # only the polyphony guard reads ``_RowState.sounding_time``
        self.keep_lengths = False  # only the duration guard reads ``_RowState.lengths``
        self.fade = [math.exp(-w / POLYPHONY_WINDOW_STEPS) for w in self.wait]
        self.length_bin = length_bins(np.arange(LENGTH_EDGES_STEPS[-1] + 2)).tolist()  # steps -> bin, capped

    def update(self, input_ids: torch.LongTensor) -> list[_RowState]:
        if self.rows is None:
            self.rows = [_RowState() for _ in range(input_ids.shape[0])]
        new = input_ids[:, self.seen :].tolist()
        self.seen = input_ids.shape[1]
        v = self.vocab
        for row, tokens in zip(self.rows, new):
            for tok in tokens:
                if not 0 <= tok < v.size:
                    continue
                row.last_token = tok
                kind = self.kind[tok]
                if tok == self.skip:
                    row.skips += 1
                    continue
                if tok == self.fifo:
                    row.fifo = True
                elif kind == v.KIND_INST:
                    row.families.append(tok - v.inst_start)
                elif kind == v.KIND_WAIT:
                    row.now += self.wait[tok]
                    if self.keep_sounding_time and row.voices:
                        row.sounding_time *= self.fade[tok]
                        row.sounding_time[min(len(row.voices), POLYPHONY_MAX_LEVEL)] += self.wait[tok]
                elif kind == v.KIND_ON:
                    fam = self.family[tok]
                    row.last_onset[fam] = row.now
                    if self.keep_onsets:
                        row.onsets.setdefault(fam, deque()).append(row.now)
                    if self.key[tok] >= 0:
                        row.voices.setdefault(self.key[tok], []).append(row.now)
                        if self.keep_key_onsets:
                            row.key_onsets.setdefault(self.key[tok], deque()).append(row.now)
                        if self.keep_pitches:
                            row.pitches.setdefault(fam, deque()).append((row.now, self.pitch[tok]))
                            row.pitch_sums[fam] = row.pitch_sums.get(fam, 0) + self.pitch[tok]
                    else:
                        row.hits.setdefault(self.pitch[tok], deque()).append(row.now)
                elif kind == v.KIND_OFF:
                    stack = row.voices.get(self.key[tok])
                    if stack:
                        n = min(row.skips, len(stack) - 1)
                        onset = stack.pop(n if row.fifo else len(stack) - 1 - n)
                        if self.keep_lengths:
                            self._keep_length(row, self.family[tok], row.now - onset)
                        if not stack:
                            del row.voices[self.key[tok]]
                row.skips = 0
        return self.rows


    def _keep_length(self, row: _RowState, family: int, steps: int) -> None:
        """Count an ended note of ``family``, ``steps`` long, in the row's fading length shares."""
        counts = row.lengths.get(family)
        if counts is None:
            counts = row.lengths[family] = np.zeros(len(LENGTH_EDGES_STEPS) + 1)
        else:
            counts *= LENGTH_FADE
        counts[self.length_bin[min(steps, len(self.length_bin) - 1)]] += 1.0


def per_key_limits(vocab: Vocabulary, limits) -> tuple[np.ndarray, np.ndarray]:
    """Two ``[num_keys]`` tables (indexed by key slot) holding, for every key of a pitched family, the
    ``(soft, hard)`` pair ``limits(family name)`` gives for its family."""
    soft, hard = np.zeros(vocab.num_keys), np.zeros(vocab.num_keys)
    for fam in vocab.pitched:
        keys = slice(int(vocab.off_slot[fam]) * 128, (int(vocab.off_slot[fam]) + 1) * 128)
        soft[keys], hard[keys] = limits(vocab.families[fam])
    return soft, hard


class _WindowGuard(LogitsProcessor):
    """A guard that counts what each row played in its last ``span`` steps, with a ``_Tracker`` whose
    ``keep`` flag names the ``_RowState`` record it reads. On its first call each row is also given, through
    ``_seed(row, token, step)``, the note-ons of the ``span`` steps before its window
    (``note_ons_before_window`` on its history, latest first), so the counts hold across a slide.

    Args:
        vocab (`Vocabulary`): the event vocabulary.
        histories (`list[list[int]]`, *optional*): each row's events so far (see ``InstrumentEntryGuard``).
    """

    span = 0  # steps counted back from the current one
    keep: str | None = None  # the _Tracker flag switched on (``keep_onsets``, ...)

    def __init__(self, vocab: Vocabulary, histories: list[list[int]] | None = None):
        self.vocab = vocab
        self.histories = histories
        self.tracker = _Tracker(vocab)
        if self.keep:
            setattr(self.tracker, self.keep, True)

    def _seed(self, row: _RowState, token: int, step: int) -> None:
        raise NotImplementedError

    def _rows(self, input_ids: torch.LongTensor) -> list[_RowState]:
        """The tracker's rows after ``input_ids`` (seeded from the histories on the first call)."""
        first = self.tracker.rows is None
        rows = self.tracker.update(input_ids)
        if first and self.histories is not None:
            for row, history in zip(rows, self.histories):
                for token, step in note_ons_before_window(history, self.vocab, row.now, self.span):
                    self._seed(row, token, step)
        return rows


class NoteLengthGuard(LogitsProcessor):
    """Raises, then forces, the note-off of a note held past its family's long tail.

    A voice older than its family's soft limit adds up to ``NOTE_OFF_MAX_BONUS`` (linearly, reaching it at
    the hard limit) to its key's note-off logit; no wait may carry any voice past its hard limit; a voice at
    its hard limit makes its key's note-off the only choice (unless the row is in the middle of a
    ``<voice:skip>`` run, which the voice processor completes first).

    Args:
        vocab (`Vocabulary`): the event vocabulary.
        statistics (`MusicStatistics`): per-family soft and hard limits.
    """

    def __init__(self, vocab: Vocabulary, statistics: MusicStatistics):
        self.vocab = vocab
        self.tracker = _Tracker(vocab)
        step = vocab.config.step_seconds

        def steps(family: str) -> tuple[float, float]:
            s, h = statistics.note_limits(family)
            return s / step, max(h, s, step) / step

        soft, hard = per_key_limits(vocab, steps)
        self.soft, self.hard = soft.round().astype(int).tolist(), hard.round().astype(int).tolist()

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        rows = self.tracker.update(input_ids)
        v = self.vocab
        scores = scores.clone()
        for r, row in enumerate(rows):
            forced, room = [], None
            for key, onsets in row.voices.items():
                age = row.now - onsets[0]  # the oldest voice of the key
                soft, hard = self.soft[key], self.hard[key]
                left = hard - age
                room = left if room is None else min(room, left)
                if left <= 0:
                    forced.append(v.note_off_id_of_key(key))
                elif age > soft:
                    scores[r, v.note_off_id_of_key(key)] += NOTE_OFF_MAX_BONUS * (age - soft) / max(hard - soft, 1)
            if forced and row.last_token != self.tracker.skip:
                scores[r] = NEG_INF
                scores[r, forced] = 0.0
            elif room is not None and 0 < room < v.config.max_wait_steps:
                scores[r, v.wait_id(room + 1) : v.wait_id(v.config.max_wait_steps) + 1] = NEG_INF
        return scores


class DrumRateGuard(_WindowGuard):
    """Forbids a drum's note-ons while it has had ``max_hits_per_second`` hits in the last second, or a hit
    on the current 10 ms step already (the decoder would merge the two).

    Args:
        vocab (`Vocabulary`): the event vocabulary.
        max_hits_per_second (`float`): the cap, e.g. ``MusicStatistics.drum_hits_per_second``.
    """

    span = DRUM_RATE_WINDOW_STEPS

    def __init__(self, vocab: Vocabulary, max_hits_per_second: float, histories: list[list[int]] | None = None):
        super().__init__(vocab, histories)
        self.cap = max(1, math.floor(max_hits_per_second * DRUM_RATE_WINDOW_STEPS * vocab.config.step_seconds))
        fam = vocab.drum_index
        self.bins = [vocab.note_on_id(fam, b, 0) for b in range(vocab.nbins)]  # add the pitch to get an id

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        rows = self._rows(input_ids)
        scores = scores.clone()
        for r, row in enumerate(rows):
            for pitch, hits in row.hits.items():
                while hits and hits[0] <= row.now - DRUM_RATE_WINDOW_STEPS:
                    hits.popleft()
                if len(hits) >= self.cap or (hits and hits[-1] == row.now):
                    scores[r, [b + pitch for b in self.bins]] = NEG_INF
        return scores

    def _seed(self, row, token: int, step: int) -> None:
        """A hit of the second before a slid window began, at its negative time on the window's clock."""
        v = self.vocab
        if v.note_family(token) == v.drum_index:
            row.hits.setdefault(int(v.pitch(token)), deque()).appendleft(step)


class KeyRepeatGuard(_WindowGuard):
    """Holds back one key of a pitched family struck too often: the onsets of each key (family and pitch) in
    the last ``KEY_REPEAT_WINDOW_STEPS`` are counted; past the family's soft rate the key's note-ons lose up to
    ``KEY_REPEAT_MAX_PENALTY`` nats (linearly, reaching it at the hard rate), and at the hard rate they are
    forbidden. Other keys, waits and note-offs keep their logits, so the instrument plays on, on another note.

    Args:
        vocab (`Vocabulary`): the event vocabulary.
        statistics (`MusicStatistics`): per-family key repeat limits (``key_repeat_limits``).
        histories (`list[list[int]]`, *optional*): each row's events so far (see ``InstrumentEntryGuard``): the
            note-ons before a slid window count.
    """

    span, keep = KEY_REPEAT_WINDOW_STEPS, "keep_key_onsets"

    def __init__(self, vocab: Vocabulary, statistics: MusicStatistics, histories: list[list[int]] | None = None):
        super().__init__(vocab, histories)
        seconds = KEY_REPEAT_WINDOW_STEPS * vocab.config.step_seconds

        def onsets(family: str) -> tuple[float, float]:
            soft, hard = statistics.key_repeat_limits(family)
            return soft * seconds, max(hard * seconds, soft * seconds + 1)

        self.soft, self.hard = per_key_limits(vocab, onsets)
        # key slot -> its note-on ids, one per velocity bin
        self.on_ids = [[vocab.note_on_id(fam, b, pitch) for b in range(vocab.nbins)]
                       for fam in vocab.pitched for pitch in range(128)]

    def _seed(self, row, token: int, step: int) -> None:
        key = int(self.vocab.key(token))
        if key >= 0:
            row.key_onsets.setdefault(key, deque()).appendleft(step)

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        rows = self._rows(input_ids)
        out = scores
        for r, row in enumerate(rows):
            for key in list(row.key_onsets):
                onsets = row.key_onsets[key]
                while onsets and onsets[0] <= row.now - KEY_REPEAT_WINDOW_STEPS:
                    onsets.popleft()
                count, soft, hard = len(onsets), self.soft[key], self.hard[key]
                if not count:
                    del row.key_onsets[key]
                if count <= soft:
                    continue
                if out is scores:
                    out = scores.clone()
                if count >= hard:
                    out[r, self.on_ids[key]] = NEG_INF
                else:
                    out[r, self.on_ids[key]] -= KEY_REPEAT_MAX_PENALTY * (count - soft) / (hard - soft)
        return out


class _PitchWindowGuard(_WindowGuard):
    """A guard that reads the pitches each pitched family started in a row's last ``REGISTER_WINDOW_STEPS``
    (``_RowState.pitches``, trimmed here), for the families in ``held``."""

    span, keep = REGISTER_WINDOW_STEPS, "keep_pitches"
    held: set = frozenset()

    def _seed(self, row, token: int, step: int) -> None:
        fam = int(self.vocab.note_family(token))
        if fam in self.held:
            pitch = int(self.vocab.pitch(token))
            row.pitches.setdefault(fam, deque()).appendleft((step, pitch))
            row.pitch_sums[fam] = row.pitch_sums.get(fam, 0) + pitch

    @staticmethod
    def _recent(row, fam: int, onsets: deque) -> deque:
        """``onsets`` (the family's ``(step, pitch)`` deque) without the note-ons before the window."""
        while onsets and onsets[0][0] <= row.now - REGISTER_WINDOW_STEPS:
            row.pitch_sums[fam] -= onsets.popleft()[1]
        return onsets


class RegisterGuard(_PitchWindowGuard):
    """Keeps each pitched family in its register: the mean pitch of the notes it started in the last
    ``REGISTER_WINDOW_STEPS`` (once there are ``REGISTER_MIN_NOTES``) is compared with the family's
    ``MusicStatistics.register_pitch`` bounds. Below the soft low bound, the family's note-ons under that bound
    lose up to ``REGISTER_MAX_PENALTY`` nats (linearly, reaching it at the hard low bound and staying there);
    above the soft high bound, likewise its note-ons over it. The family's other notes, waits, note-offs and
    the other families keep their logits, so it plays on, higher (or lower). A family without bounds (a
    checkpoint without the statistic) is left alone.

    Args:
        vocab (`Vocabulary`): the event vocabulary.
        statistics (`MusicStatistics`): per-family register bounds.
        histories (`list[list[int]]`, *optional*): each row's events so far (see ``InstrumentEntryGuard``): the
            note-ons before a slid window count.
    """

    def __init__(self, vocab: Vocabulary, statistics: MusicStatistics, histories: list[list[int]] | None = None):
        super().__init__(vocab, histories)
        # family -> (hard low, soft low, soft high, hard high) and its note-on ids under / over the soft bounds
        self.bounds: dict[int, tuple[float, float, float, float]] = {}
        self.low_ids: dict[int, torch.Tensor] = {}
        self.high_ids: dict[int, torch.Tensor] = {}
        for fam in vocab.pitched:
            bounds = statistics.register_pitch.get(vocab.families[fam])
            if not bounds:
                continue
            hard_low, soft_low, soft_high, hard_high = map(float, bounds)
            self.bounds[fam] = (min(hard_low, soft_low - 1), soft_low, soft_high, max(hard_high, soft_high + 1))
            ids = [(vocab.note_on_id(fam, b, p), p) for b in range(vocab.nbins) for p in range(128)]
            self.low_ids[fam] = torch.tensor([i for i, p in ids if p < soft_low], dtype=torch.long)
            self.high_ids[fam] = torch.tensor([i for i, p in ids if p > soft_high], dtype=torch.long)
        self.held = set(self.bounds)

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        if not self.bounds:  # a checkpoint without register statistics: nothing to hold, nothing to follow
            return scores
        rows = self._rows(input_ids)
        out = scores
        for r, row in enumerate(rows):
            for fam, onsets in row.pitches.items():
                onsets = self._recent(row, fam, onsets)
                bounds = self.bounds.get(fam)
                if bounds is None or len(onsets) < REGISTER_MIN_NOTES:
                    continue
                mean = row.pitch_sums[fam] / len(onsets)
                hard_low, soft_low, soft_high, hard_high = bounds
                if mean < soft_low:
                    ids, penalty = self.low_ids[fam], min((soft_low - mean) / (soft_low - hard_low), 1.0)
                elif mean > soft_high:
                    ids, penalty = self.high_ids[fam], min((mean - soft_high) / (hard_high - soft_high), 1.0)
                else:
                    continue
                if out is scores:
                    out = scores.clone()
                out[r, ids] -= REGISTER_MAX_PENALTY * penalty
        return out


class SpreadGuard(_PitchWindowGuard):
    """Holds how widely each pitched family's notes range: the ``window_spread`` of the pitches it started in the
    last ``REGISTER_WINDOW_STEPS`` (once there are ``REGISTER_MIN_NOTES``), against the bounds real pieces of the
    style keep for that family played solo (``MusicStatistics.spread_bounds``: a family without them, and every
    family of an ensemble, is left free). Narrower than the soft narrow bound, the family's note-ons farther than half that bound from the
    window's median pitch gain up to ``SPREAD_MAX_BONUS`` nats (linearly, all of it at the hard narrow bound);
    wider than the soft wide bound, those farther than half of it lose as much. Then all the family's note-ons
    shift by one amount that gives them back their total probability: the family plays as often and when it
    would, only its pitches reach wider (or close in). Waits, note-offs and the other families keep their logits.

    Args:
        vocab (`Vocabulary`): the event vocabulary.
        statistics (`MusicStatistics`): the checkpoint's statistics.
        style (`str` or `dict`, defaults to ``"unknown"``): the asked style, a name or a ``{name: weight}`` blend.
        histories (`list[list[int]]`, *optional*): each row's events so far (see ``InstrumentEntryGuard``): the
            note-ons before a slid window count.
    """

    def __init__(self, vocab: Vocabulary, statistics: MusicStatistics, style="unknown",
                 histories: list[list[int]] | None = None):
        super().__init__(vocab, histories)
        self.statistics, self.style = statistics, style
        self.held = set(int(f) for f in vocab.pitched)
        self.bounds: dict[tuple, tuple | None] = {}  # (header families, family) -> spread bounds
        # the pitch of each id of a family's ``note_on_range`` (velocity bin-major, pitch-minor)
        self.on_pitches = torch.arange(NUM_PITCHES, dtype=torch.float32).repeat(vocab.nbins)
        # (row, family) -> (its window's (length, first step, last step), spread, median pitch): the window only
        # changes when a note-on joins it or the oldest onset step leaves it, so most steps reuse the figures
        self.measured: dict[tuple[int, int], tuple[tuple, float, float]] = {}

    def _bounds(self, families: list[int], family: int) -> tuple | None:
        key = (tuple(sorted(set(families))), family)
        if key not in self.bounds:
            names = [self.vocab.families[f] for f in key[0]]
            self.bounds[key] = self.statistics.spread_bounds(self.style, names, self.vocab.families[family])
        return self.bounds[key]

    def _measure(self, r: int, fam: int, onsets: deque) -> tuple[float, float]:
        """``(window_spread, median pitch)`` of row ``r``'s ``onsets`` of family ``fam`` (a non-empty window)."""
        state = (len(onsets), onsets[0][0], onsets[-1][0])
        cached = self.measured.get((r, fam))
        if cached is None or cached[0] != state:
            pitches = np.fromiter((p for _, p in onsets), dtype=np.float64, count=len(onsets))
            cached = self.measured[(r, fam)] = (state, window_spread(pitches), float(np.median(pitches)))
        return cached[1], cached[2]

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        acting: dict[int, list[tuple[int, float, float, float]]] = {}  # family -> (row, median, half, bonus)
        for r, row in enumerate(self._rows(input_ids)):
            for fam, onsets in row.pitches.items():
                onsets = self._recent(row, fam, onsets)
                bounds = self._bounds(row.families, fam)
                if bounds is None or len(onsets) < REGISTER_MIN_NOTES:
                    continue
                hard_narrow, soft_narrow, soft_wide, hard_wide = bounds
                spread, median = self._measure(r, fam, onsets)
                if spread < soft_narrow:
                    strength = min((soft_narrow - spread) / max(soft_narrow - hard_narrow, 1.0), 1.0)
                    acting.setdefault(fam, []).append((r, median, soft_narrow / 2, SPREAD_MAX_BONUS * strength))
                elif spread > soft_wide:
                    strength = min((spread - soft_wide) / max(hard_wide - soft_wide, 1.0), 1.0)
                    acting.setdefault(fam, []).append((r, median, soft_wide / 2, -SPREAD_MAX_BONUS * strength))
        out = scores
        for fam, items in acting.items():  # the acting rows of one family together: [rows, family note-ons]
            rows, medians, halves, bonuses = (torch.tensor(column) for column in zip(*items))
            ids = self.vocab.note_on_range(fam)
            logits = scores[rows, ids]
            total = torch.logsumexp(logits, 1, keepdim=True)
            far = (self.on_pitches - medians[:, None].float()).abs() > halves[:, None]
            shaped = logits + bonuses[:, None].float() * far
            shaped = shaped - (torch.logsumexp(shaped, 1, keepdim=True) - total)
            playable = torch.isfinite(total[:, 0])  # a row whose family may not play now: nothing to reshape
            if playable.any():
                if out is scores:
                    out = scores.clone()
                out[rows[playable], ids] = shaped[playable]
        return out


class PolyphonyGuard(LogitsProcessor):
    """Holds the number of distinct pitched keys (family, pitch) sounding at once to its style's real distribution.

    The distribution is the one of the asked style and the row's header families
    (``MusicStatistics.polyphony_cdf``: the share of sounding time with at most n keys sounding, ``real(n)``);
    a row whose style has none for them, or whose real texture is not steady (``POLYPHONY_MIN_MODE_SHARE``), is
    left alone. Each row keeps its own such shares over its recent sounding time (each wait weighs its steps,
    fading over ``POLYPHONY_WINDOW_STEPS``), ``own(n)``. With
    ``n > 0`` keys sounding now (drums never sound; a key struck again while it sounds counts once):

    - a wait loses ``POLYPHONY_MAX_PENALTY * min(1, (own(n) - real(n)) / POLYPHONY_SHARE_MARGIN)`` nats when
      that is positive: a row that has dwelt at n keys or fewer more than real pieces do fills its voices
      before time moves on;
    - a note-on of a pitched family loses likewise ``(real(n) - own(n))``, a row that has dwelt above n more
      than real pieces, and the whole penalty when ``n + 1`` is past the last count real pieces reach: the
      model thins a chord instead of stacking it.

    Note-offs, drums and, with nothing sounding, waits (a rest) keep their logits. The counts are read from the
    prompt on the first call (a slid window starts with no voice from before its cut: the slide ends them).

    Args:
        vocab (`Vocabulary`): the event vocabulary.
        statistics (`MusicStatistics`): the checkpoint's statistics.
        style (`str` or `dict`, defaults to ``"unknown"``): the asked style, a name or a ``{name: weight}`` blend.
    """

    def __init__(self, vocab: Vocabulary, statistics: MusicStatistics, style="unknown"):
        self.vocab = vocab
        self.tracker = _Tracker(vocab)
        self.tracker.keep_sounding_time = True
        self.statistics, self.style = statistics, style
        self.cdfs: dict[tuple, np.ndarray | None] = {}  # header families -> real cumulative shares
        self.pitched_ons = [vocab.note_on_range(f) for f in vocab.pitched]
        self.wait_ids = slice(vocab.wait_id(1), vocab.wait_id(vocab.config.max_wait_steps) + 1)

    def _cdf(self, families: list[int]) -> np.ndarray | None:
        key = tuple(sorted(set(families)))
        if key not in self.cdfs:
            self.cdfs[key] = self.statistics.polyphony_cdf(self.style, [self.vocab.families[f] for f in key])
        return self.cdfs[key]

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        out = scores
        for r, row in enumerate(self.tracker.update(input_ids)):
            real = self._cdf(row.families)
            n, total = len(row.voices), row.sounding_time.sum()
            if real is None or n == 0:
                continue
            at_most = real[min(n, len(real) - 1)]
            # with no sounding time yet the row has no distribution to compare: only the top count binds
            gap = (row.sounding_time[: n + 1].sum() / total - at_most) / POLYPHONY_SHARE_MARGIN if total > 0 else 0.0
            thin, thick = gap, (1.0 if n + 1 >= len(real) else -gap)
            if thin <= 0 and thick <= 0:
                continue
            if out is scores:
                out = scores.clone()
            if thick > 0:
                for part in self.pitched_ons:
                    out[r, part] -= POLYPHONY_MAX_PENALTY * min(thick, 1.0)
            if thin > 0:
                out[r, self.wait_ids] -= POLYPHONY_MAX_PENALTY * min(thin, 1.0)
        return out


class DurationGuard(LogitsProcessor):
    """Holds each pitched family's note lengths to the distribution real pieces of its style keep.

    The distribution is the one of the asked style, the family and the row's header families
    (``MusicStatistics.note_length_cdf``: the share of real notes at most ``LENGTH_EDGES_STEPS[i]`` steps long,
    ``real(i)``); a family without one is left alone. Each row keeps, per family, the same shares of its own
    ended notes, older ones fading over ``LENGTH_WINDOW_NOTES`` (``own(i)``, once ``LENGTH_MIN_OWN_NOTES`` have
    ended). For each sounding key of age ``a`` steps (its newest voice; the oldest in a first-in-first-out
    piece), whose ending now would fall in bin ``i`` (``length_bins``), its note-off loses
    ``LENGTH_MAX_PENALTY * clip((own(i) - real(i)) / LENGTH_SHARE_MARGIN, -1, 1)`` nats: a row that has already
    ended more of its notes by this age than real pieces do holds this one on, one that has ended fewer lets it
    go (a negative loss is a gain); at an age past ``LENGTH_TAIL_SHARE`` of the real notes it gains
    ``NOTE_OFF_MAX_BONUS``. Past the last edge the note guard's tail limits decide.

    Note-ons and waits keep their logits: which notes start and when stay the model's. A slid window's rows
    start with the notes that ended in the ``LENGTH_HISTORY_EVENTS`` events of their history before it.

    Args:
        vocab (`Vocabulary`): the event vocabulary.
        statistics (`MusicStatistics`): the checkpoint's statistics.
        style (`str` or `dict`, defaults to ``"unknown"``): the asked style, a name or a ``{name: weight}`` blend.
        histories (`list[list[int]]`, *optional*): each row's events so far (see ``InstrumentEntryGuard``), of
            which the prompt's events are the tail.
    """

    def __init__(self, vocab: Vocabulary, statistics: MusicStatistics, style="unknown",
                 histories: list[list[int]] | None = None):
        self.vocab = vocab
        self.histories = histories
        self.tracker = _Tracker(vocab)
        self.tracker.keep_lengths = True
        self.statistics, self.style = statistics, style
        self.cdfs: dict[tuple, np.ndarray | None] = {}  # (header families, family) -> real cumulative shares
        self.key_family = [int(vocab.pitched[k // NUM_PITCHES]) for k in range(vocab.num_keys)]  # key slot -> family
        self.last_bin = len(LENGTH_EDGES_STEPS)

    def _cdf(self, families: list[int], family: int) -> np.ndarray | None:
        key = (tuple(sorted(set(families))), family)
        if key not in self.cdfs:
            names = [self.vocab.families[f] for f in key[0]]
            self.cdfs[key] = self.statistics.note_length_cdf(self.style, names, self.vocab.families[family]) if names else None
        return self.cdfs[key]

    def _rows(self, input_ids: torch.LongTensor) -> list[_RowState]:
        """The tracker's rows after ``input_ids``, given on the first call the notes their histories ended
        before the window (on a tracker of their own, in order, so they fade as the window's own would)."""
        first = self.tracker.rows is None
        rows = self.tracker.update(input_ids)
        if first and self.histories is not None:
            before = _Tracker(self.vocab)  # replays each history in turn: its id tables are built once
            before.keep_lengths = True
            for row, history in zip(rows, self.histories):
                steps = self.vocab.wait_steps(history)
                cut = int(np.searchsorted(np.cumsum(steps), int(steps.sum()) - row.now, side="right"))
                before.rows, before.seen = [_RowState()], 0
                before.rows[0].fifo = row.fifo
                before.update(torch.tensor([history[max(0, cut - LENGTH_HISTORY_EVENTS) : cut]], dtype=torch.long))
                earlier = before.rows[0].lengths
                for fam, own in row.lengths.items():
                    # the window's own k ended notes came after: the earlier ones fade by LENGTH_FADE ** k, which
                    # is 1 - own.sum() * (1 - LENGTH_FADE) (own.sum() is the geometric sum of k fades)
                    faded = max(0.0, 1.0 - own.sum() * (1.0 - LENGTH_FADE))
                    earlier[fam] = earlier[fam] * faded + own if fam in earlier else own
                row.lengths = earlier
        return rows

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        out = scores
        bins = self.tracker.length_bin
        for r, row in enumerate(self._rows(input_ids)):
            for key, onsets in row.voices.items():
                fam = self.key_family[key]
                own = row.lengths.get(fam)
                ended = own.sum() if own is not None else 0.0
                if ended < LENGTH_MIN_OWN_NOTES:
                    continue
                real = self._cdf(row.families, fam)
                i = bins[min(row.now - (onsets[0] if row.fifo else onsets[-1]), len(bins) - 1)]
                if real is None or i >= self.last_bin:
                    continue
                gap = (own[: i + 1].sum() / ended - real[i]) / LENGTH_SHARE_MARGIN
                if out is scores:
                    out = scores.clone()
                if real[i] >= LENGTH_TAIL_SHARE:  # longer than all but a few real notes: let it go
                    out[r, self.vocab.note_off_id_of_key(key)] += NOTE_OFF_MAX_BONUS
                else:
                    out[r, self.vocab.note_off_id_of_key(key)] -= LENGTH_MAX_PENALTY * max(-1.0, min(gap, 1.0))
        return out


class GridGuard(LogitsProcessor):
    """Keeps onsets on the sixteenth-note grid of the header's tempo (``GRID_FRACTIONS`` of each beat, or the
    eighth-note triplets of a swung style, ``TRIPLET_FRACTIONS``; within ``GRID_TOLERANCE_STEPS``): while a
    row's clock is off the grid, its note-ons lose ``GRID_PENALTY`` nats,
    and so does every wait that would land off it. Note-offs, and the choice among on-grid positions, are the
    model's. The pipeline uses it only for styles whose real pieces are metric (``MusicStatistics.metric``).

    With ``tightness``, a row on the sixteenth grid is held only while less of its timing keeps to the grid than
    its tightness asks: while the share of its last ``GRID_SHARE_ONSETS`` distinct onsets on the grid is at least
    its tightness, the row's timing is the model's. A row whose primer holds ``GRID_MIN_ONSETS`` onsets or more
    keeps the primer's share on the grid; any other piece draws its tightness from the quantiles ``tightness``
    gives for its instruments, with a generator seeded from ``torch.initial_seed()`` (the pipeline's ``seed``,
    or the one it draws for a call without) and the piece's index in its batch (``pieces``): the same seed gives the same tightness in every window of
    the piece, and the sampling's own draws are left as they were. (Carried over a slide as the share of the
    piece so far on the grid instead, the tiny test model's pieces ended at 0.67-0.71 for a tightness of 0.75:
    a row held at its tightness sits just under it, so each slide lowered it.) A swung style's real pieces are
    swung or straight (the jazz trios' sixteenth-grid shares by tenths: 0.34 0.49 0.54 0.61 0.64 0.75 0.91 0.95
    1.0 1.0 1.0), so a new piece of one whose drawn tightness reaches ``GRID_MIN_SHARE`` is straight: on the
    sixteenths, at that tightness.

    The grid's origin is the phase that fits the primer best (``grid_fit``: 0 for a piece without a primer);
    a primer of ``GRID_MIN_ONSETS`` onsets or more that fits no phase at ``GRID_MIN_SHARE`` (a rubato one)
    leaves the row alone. Generated music never moves the grid: fitted on each window's history, the phase
    followed where the last chunks' onsets sat inside the tolerance, and a piece's grid could wander by a few
    steps per slide. Clocks count from the piece's start, so the grid holds across slides.

    Args:
        vocab (`Vocabulary`): the event vocabulary.
        histories (`list[list[int]]`, *optional*): each row's events so far (see ``InstrumentEntryGuard``), of
            which the prompt's events are the tail.
        primer_tokens (`int`, *optional*): how many events at the start of each history are the primer, on whose
            onsets the phase is fitted; None fits it on the whole history.
        fractions (`tuple`, defaults to ``GRID_FRACTIONS``): the grid's positions in a beat
            (``MusicStatistics.grid_fractions``).
        tightness (`callable`, *optional*): a function of a row's header families (their names) that gives the
            ``TIGHTNESS_QUANTILES`` of real pieces' shares of onsets on the sixteenth grid, or None (the row is
            then held throughout; ``MusicStatistics.grid_tightness``). None: every row is held throughout. With
            the triplet ``fractions`` of a swung style, a piece whose drawn tightness reaches ``GRID_MIN_SHARE``
            is a straight one, held to the sixteenths at that tightness; any other stays on the triplets, held.
        pieces (`list[int]`, *optional*): each row's index among the pieces of its call, whose tightness it is
            given (rows that ended leave a slid batch, so a row's place in the window's batch may differ); None:
            0, 1, ...
    """

    def __init__(self, vocab: Vocabulary, histories: list[list[int]] | None = None, primer_tokens: int | None = None,
                 fractions: tuple = GRID_FRACTIONS, tightness=None, pieces: list[int] | None = None):
        self.vocab = vocab
        self.pieces = pieces
        self.histories = histories
        self.primer_tokens = primer_tokens
        self.fractions = tuple(fractions)
        self.tightness = tightness
        self.row_fractions: list[tuple] = []  # per row: its grid's beat fractions (a straight piece of a swung style)
        self.tightnesses: list[float | None] = []  # per row: the share of onsets to keep on the grid (None: all)
        self.on_grid: list[deque] = []  # per row: for each of its last GRID_SHARE_ONSETS distinct onsets, on grid?
        self.counted: list[int] = []  # per row: the clock of the latest onset in ``on_grid``
        self.tracker = _Tracker(vocab)
        self.times = np.arange(vocab.config.max_wait_steps + 1, dtype=np.float64)  # now, and after wait:1..N
        self.wait_ids = slice(vocab.wait_id(1), vocab.wait_id(vocab.config.max_wait_steps) + 1)
        self.on_ids = slice(vocab.on_start, vocab.off_start)
        self.grids: list[tuple[float, float] | None] = []  # per row: (beat steps, origin on the window's clock)
        # per row: (the clock they were worked out at, [1 + max wait] penalties of a note-on now and of each wait)
        self.penalties: list[tuple[int | None, torch.Tensor | None]] = []

    def _grid(self, prompt: list[int], row: _RowState, history: list[int] | None) -> tuple[float, float] | None:
        v = self.vocab
        bpm = v.tempo_bpm(np.asarray(prompt))
        bpm = bpm[bpm > 0]
        if not len(bpm):
            return None  # no tempo in the window: no beat to hold to
        beat = beat_steps(float(bpm[0]), v)
        start, phase = 0, 0  # the piece's clock at the window's clock 0; the grid's origin on the piece's clock
        if history:
            steps = v.wait_steps(history)
            clock = np.cumsum(steps) - steps
            start = int(steps.sum()) - row.now
            primer = history[: self.primer_tokens]
            onsets = np.unique(clock[: len(primer)][v.kinds(primer) == v.KIND_ON])  # a chord is one onset
            share, phase = grid_fit(onsets, beat, self.fractions)
            if len(onsets) >= GRID_MIN_ONSETS and share < GRID_MIN_SHARE:
                return None
        return beat, float(phase - start)

    def _start(self, input_ids: torch.LongTensor, rows: list[_RowState]) -> None:
        """On the first call: each row's grid, from its prompt (the window) and its history, and its tightness."""
        histories = self.histories or [None] * len(rows)
        self.grids = [self._grid(input_ids[r].tolist(), row, histories[r]) for r, row in enumerate(rows)]
        self.penalties = [(None, None)] * len(rows)
        self.tightnesses = [None] * len(rows)
        self.row_fractions = [self.fractions] * len(rows)
        self.on_grid, self.counted = [deque() for _ in rows], [-1] * len(rows)
        if self.tightness is None:
            return
        pieces = list(range(len(rows))) if self.pieces is None else self.pieces
        draws = torch.rand(max(pieces) + 1, generator=torch.Generator().manual_seed(torch.initial_seed())).tolist()
        for r, (row, history, grid) in enumerate(zip(rows, histories, self.grids)):
            quantiles = self.tightness([self.vocab.families[f] for f in sorted(set(row.families))]) if grid else None
            if quantiles is None:
                continue
            onsets, primer = self._onsets(history or input_ids[r].tolist(), row)  # without a history, the prompt's
            if len(primer) >= GRID_MIN_ONSETS:
                if self.fractions != GRID_FRACTIONS:
                    continue  # a primed piece of a swung style stays on the grid its primer was fitted to
                target = float(np.mean(self._fits(primer, grid, r)))  # the piece keeps its primer's tightness
            else:
                target = float(np.interp(draws[pieces[r]], TIGHTNESS_QUANTILES, quantiles))
                if self.fractions != GRID_FRACTIONS:
                    if target < GRID_MIN_SHARE:
                        continue  # a swung piece: held to its style's grid
                    self.row_fractions[r] = GRID_FRACTIONS  # a straight piece of a swung style
            self.tightnesses[r] = target if target < 1.0 else None
            self.on_grid[r] = deque(self._fits(onsets[-GRID_SHARE_ONSETS:], grid, r), maxlen=GRID_SHARE_ONSETS)
            self.counted[r] = max(row.last_onset.values(), default=-1)

    def _onsets(self, history: list[int], row: _RowState) -> tuple[np.ndarray, np.ndarray]:
        """The distinct onsets of a row's ``history`` (its whole piece so far), and of its primer (its first
        ``primer_tokens`` events; all of it for None), in steps on the window's clock."""
        v = self.vocab
        steps = v.wait_steps(history)
        clock = np.cumsum(steps) - steps - (int(steps.sum()) - row.now)
        on = v.kinds(history) == v.KIND_ON
        primer = slice(None, self.primer_tokens)
        return np.unique(clock[on]).astype(np.float64), np.unique(clock[primer][on[primer]]).astype(np.float64)

    def _fits(self, onsets: np.ndarray, grid: tuple[float, float] | None, r: int) -> list[bool]:
        """Whether each of ``onsets`` (steps on the window's clock) is on ``grid`` (beat steps, origin) of row
        ``r``'s beat fractions."""
        if grid is None or not len(onsets):
            return []
        beat, origin = grid
        distance = grid_distance(np.asarray(onsets) - origin, beat, self.row_fractions[r])
        return (distance <= GRID_TOLERANCE_STEPS).tolist()

    def _loose(self, r: int, row: _RowState, beat: float, origin: float) -> bool:
        """Whether row ``r`` keeps at least its tightness of its recent onsets on the grid (its latest onset
        counted first), so that its timing is the model's this step."""
        target = self.tightnesses[r]
        if target is None:
            return False
        latest = max(row.last_onset.values(), default=-1)
        if latest > self.counted[r]:
            self.on_grid[r].extend(self._fits(np.array([latest], dtype=np.float64), (beat, origin), r))
            self.counted[r] = latest
        flags = self.on_grid[r]
        return bool(flags) and sum(flags) >= target * len(flags)

    def _rows(self, input_ids: torch.LongTensor) -> list[_RowState]:
        """The tracker's rows after ``input_ids`` (``_start`` run on the first call)."""
        first = self.tracker.rows is None
        rows = self.tracker.update(input_ids)
        if first:
            self._start(input_ids, rows)
        return rows

    def _gridded_rows(self, input_ids: torch.LongTensor):
        """``(index, row, beat, origin)`` of each row after ``input_ids`` that has a grid (``_grid``)."""
        for r, (row, grid) in enumerate(zip(self._rows(input_ids), self.grids)):
            if grid is not None:
                yield r, row, *grid

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        out = scores
        for r, row, beat, origin in self._gridded_rows(input_ids):
            if self._loose(r, row, beat, origin):
                continue
            now, penalty = self.penalties[r]
            if now != row.now:  # a step's note-ons share their clock: its penalties are worked out once
                off = grid_distance(row.now - origin + self.times, beat, self.row_fractions[r]) > GRID_TOLERANCE_STEPS
                penalty = torch.from_numpy(off * GRID_PENALTY).to(scores.dtype) if off.any() else None
                self.penalties[r] = (row.now, penalty)
            if penalty is None:
                continue
            if out is scores:
                out = scores.clone()
            out[r, self.wait_ids] -= penalty[1:]
            out[r, self.on_ids] -= penalty[0]
        return out


class GrooveGuard(GridGuard):
    """Keeps a groove: while a row repeats its bar-to-bar onset pattern less than real pieces of its style (played
    by its instruments, where the corpus has them) do,
    each family is nudged to start notes where it started them one bar earlier, on the sixteenth grid
    (``GridGuard``'s grid and phase). In a row the grid guard lets off the grid (its ``tightness``), an onset
    off it counts at its nearest sixteenth, as groove consistency counts it, and the echo acts nearest each
    sixteenth: a played band's off-grid onsets then keep its groove (24 pieces a case, with each band piece at
    its drawn tightness: pop trios 0.80 -> 0.83, rock trios 0.81 -> 0.84, real 0.87 and 0.94), where counting
    only onsets on the grid let it fall (rock trios 0.75 at 8 pieces).

    The row's own groove consistency is read over its last ``GROOVE_MEASURE_BARS`` complete bars (of
    ``GROOVE_BAR_BEATS`` beats of the header tempo). While it is below ``target``: at a grid position where a
    family started a note one bar earlier (and has not yet started one there) its note-ons gain ``GROOVE_BONUS``
    nats; where it did not, but it played somewhere in that bar, they lose ``GROOVE_PENALTY``; and a wait that
    would skip the next position where any family played one bar earlier loses ``GROOVE_WAIT_PENALTY``. At or
    above the target the row is left alone. Pitches, and which groove the row starts with, stay the model's:
    the guard only makes the model's own last bar likelier to come back.

    Args:
        vocab (`Vocabulary`): the event vocabulary.
        target (`float` or `callable`): the groove consistency to hold a row at, or a function of a row's header
            families (their names) that gives it (``MusicStatistics.groove_target``; None leaves the row alone).
        histories (`list[list[int]]`, *optional*): each row's events so far (see ``InstrumentEntryGuard``).
        primer_tokens (`int`, *optional*): the primer's events at the start of each history (see ``GridGuard``).
        tightness, pieces, fractions: as ``GridGuard``'s (the same seed gives both guards the same tightness per
            piece); with a swung style's triplet ``fractions``, only its straight pieces are held to a groove.
    """

    def __init__(self, vocab: Vocabulary, target, histories: list[list[int]] | None = None,
                 primer_tokens: int | None = None, tightness=None, pieces: list[int] | None = None,
                 fractions: tuple = GRID_FRACTIONS):
        super().__init__(vocab, histories, primer_tokens=primer_tokens, fractions=fractions, tightness=tightness,
                         pieces=pieces)
        self.target = target
        self.targets: list[float | None] = []  # per row
        self.tracker.keep_onsets = True
        self.bar = GROOVE_BAR_POSITIONS
        self.slots: list[dict[int, set[int]]] = []  # per row: family -> grid positions of its recent onsets
        self.echoing: list[tuple[int | None, bool]] = []  # per row: (bar it was worked out in, echo on?)
        self.on_slices = [vocab.note_on_range(f) for f in range(len(vocab.families))]

    def _start(self, input_ids: torch.LongTensor, rows: list[_RowState]) -> None:
        super()._start(input_ids, rows)
        histories = self.histories or [None] * len(rows)
        self.slots = [{} for _ in rows]
        self.echoing = [(None, True)] * len(rows)
        # a swung style's swung pieces are left alone: the groove is counted on sixteenths
        self.targets = [self._target(row) if fractions == GRID_FRACTIONS else None
                        for row, fractions in zip(rows, self.row_fractions)]
        for row, history, grid in zip(rows, histories, self.grids):
            if history and grid:  # the bars before a slid window count as the window's own
                span = int((GROOVE_MEASURE_BARS + 1) * GROOVE_BAR_BEATS * grid[0]) + 1
                for token, step in note_ons_before_window(history, self.vocab, row.now, span):
                    row.onsets.setdefault(int(self.vocab.note_family(token)), deque()).append(step)

    def _target(self, row: _RowState) -> float | None:
        """The groove consistency row ``row`` is held to (``target``, or what it gives for the row's families)."""
        if not callable(self.target):
            return float(self.target)
        target = self.target([self.vocab.families[f] for f in sorted(set(row.families))])
        return None if target is None else float(target)

    def _echo(self, r: int, slots: dict[int, set[int]], cur: int) -> bool:
        """Whether row ``r``'s last ``GROOVE_MEASURE_BARS`` complete bars repeat less than the target (worked
        out once per bar; True before there are that many bars). An echo whose strength grew with the shortfall
        (full at 0.1) held the 8-piece medians 0.02-0.05 further below their targets than this on/off rule.
        Echoing only below the target less 0.05 (so that a row whose four-bar measure dips by chance is left
        alone: bach piano overshoots its chorales' 0.83, 0.87 at 24 pieces) took the bands' medians further
        from theirs (pop 4-piece 0.79 -> 0.73, real 1.0) and the 24-piece grid's mean from 0.087 to 0.094
        (bench/results/evaluate_*_24_pieces_groove_margin.md). Loosening the other way was measured and dropped:
        above a ceiling learned per style (the 90th percentile of real four-bar windows: bach 0.917, irish
        0.958; pop, rock and jazz 1.0, never loosened), note-ons lost 4 or 6 nats where the last bar had a note
        and the bar did not yet differ (bar lines free, the note held to the last bar's next onset). The
        model's eighth-note runs broke into quarters here and there, but on the three solo cases at 24 pieces
        (seeds 6-8, ``bench/results/evaluate_cases_solo.json``) irish violin's groove stayed 0.34-0.35 short
        of its tunes (median 0.90 -> 0.88-0.90, real 0.82): the echo keeps rows above the median from below,
        so the pieces' spread stayed narrower than the tunes'; the three cases' mean went from 0.103 to 0.099
        (4 nats) and 0.113 (6 nats: bach violin's notes/s 3.93 -> 3.67, real 3.83)
        (bench/results/evaluate_bundled_solo_24_pieces_groove_ceiling_{4,6}.md)."""
        current_bar = cur // self.bar
        decided, echo = self.echoing[r]
        if decided != current_bar:
            first = current_bar - GROOVE_MEASURE_BARS
            echo = True
            if first >= 0:
                onsets = np.array(sorted(set().union(*slots.values())), dtype=np.int64) - first * self.bar
                echo = groove_consistency(onsets, GROOVE_MEASURE_BARS, self.bar) < self.targets[r]
            self.echoing[r] = (current_bar, echo)
        return echo

    @staticmethod
    def _position(step: int, beat: float, origin: float, nearest: bool = False) -> int | None:
        """The sixteenth-grid position ``step`` falls on (counted from ``origin``); off the grid, None, or with
        ``nearest`` the nearest one."""
        sixteenth = beat / len(GRID_FRACTIONS)
        pos = (step - origin) / sixteenth
        return round(pos) if nearest or abs(pos - round(pos)) * sixteenth <= GRID_TOLERANCE_STEPS else None

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        out = scores
        for r, row, beat, origin in self._gridded_rows(input_ids):
            if self.targets[r] is None:
                continue
            slots = self.slots[r]
            loose = self.tightnesses[r] is not None  # off-grid onsets count at their nearest sixteenth
            for fam, steps in row.onsets.items():  # the tracker's new onsets, moved onto the grid
                while steps:
                    pos = self._position(steps.popleft(), beat, origin, loose)
                    if pos is not None:
                        slots.setdefault(fam, set()).add(pos)
            cur = self._position(row.now, beat, origin, loose)
            if cur is None:
                continue  # off the grid: the grid guard's business
            oldest = (cur // self.bar - GROOVE_MEASURE_BARS) * self.bar
            for fam in [f for f, mine in slots.items() if min(mine, default=oldest) < oldest]:
                slots[fam] = {x for x in slots[fam] if x >= oldest}
            if not self._echo(r, slots, cur):
                continue
            echo = cur - self.bar
            expected = None  # the next grid position (from now) where some family played one bar earlier
            for fam, mine in slots.items():
                if not any(echo <= x < cur for x in mine):
                    continue  # silent for the last bar: nothing to keep
                if out is scores:
                    out = scores.clone()
                if echo in mine and cur not in mine:
                    out[r, self.on_slices[fam]] += GROOVE_BONUS
                    expected = cur
                elif echo not in mine:
                    out[r, self.on_slices[fam]] -= GROOVE_PENALTY
                later = [x + self.bar for x in mine if echo < x < cur]
                if later and (expected is None or min(later) < expected):
                    expected = min(later)
            if expected is None:
                continue
            # a wait of k steps skips the expected position once it lands past it (beyond the tolerance)
            room = origin + expected * beat / len(GRID_FRACTIONS) + GRID_TOLERANCE_STEPS - row.now
            shortest = max(int(math.floor(room)) + 1, 1)
            if shortest <= self.vocab.config.max_wait_steps:
                if out is scores:
                    out = scores.clone()
                out[r, self.wait_ids.start + shortest - 1 : self.wait_ids.stop] -= GROOVE_WAIT_PENALTY
        return out


def note_ons_before_window(history: list[int], vocab: Vocabulary, window_steps: int, span: int) -> list[tuple[int, int]]:
    """The note-ons of the ``span`` steps before a slid window began, latest first, as (token, step) with
    steps on the window's clock (negative: before it). ``history`` is the row's whole piece so far, of which
    the window (``window_steps`` long) is the tail."""
    steps = vocab.wait_steps(history)
    clock = np.cumsum(steps) - steps  # time each token sounds at, in the history's clock
    start = int(steps.sum()) - window_steps  # the history time the window's clock counts from
    ons = np.flatnonzero(vocab.kinds(history) == vocab.KIND_ON)
    recent = ons[(clock[ons] < start) & (clock[ons] > start - span)]
    # latest first: each goes in front of the window's own (later) note-ons, so deques stay in time order
    return [(int(history[i]), int(clock[i]) - start) for i in recent[::-1]]


class InstrumentEntryGuard(LogitsProcessor):
    """Gives an asked family that has been silent a larger share of the note-on probability.

    For every header family silent for longer than ``patience_seconds`` (counted from its last note-on, or
    from the start of the window), the share of the note-on probability mass that goes to its note-ons is
    raised to at least ``ramp / asked families``, where ``ramp`` grows from 0 to 1 over ``ramp_seconds``, and
    is carried by the family's ``ENTRY_CANDIDATES`` most likely note-ons (so the sampling cuts keep it). The
    other families' note-ons are scaled down so that the total note-on probability is unchanged: waits and
    note-offs keep theirs, so the guard never makes a note more likely than the model made it, only which
    instrument plays it. Rows with a single asked family are left alone by that rule. Whatever the number of
    families, a row that has started no note for longer than ``patience_seconds`` has its waits lowered by a
    penalty growing to ``SILENCE_MAX_PENALTY`` nats over ``ramp_seconds``: no piece of silence.

    Args:
        vocab (`Vocabulary`): the event vocabulary.
        patience_seconds (`float`, defaults to 3.0): silence before the guard starts.
        ramp_seconds (`float`, defaults to 2.0): seconds over which the share floor reaches its maximum.
        histories (`list[list[int]]`, *optional*): each row's events since the piece began, of which the
            prompt is the tail (the sliding window passes them), so silences are counted across slides.
    """

    def __init__(self, vocab: Vocabulary, patience_seconds: float = ENTRY_PATIENCE_SECONDS, ramp_seconds: float = ENTRY_RAMP_SECONDS,
                 histories: list[list[int]] | None = None):
        self.vocab = vocab
        self.histories = histories
        self.tracker = _Tracker(vocab)
        self.patience = patience_seconds / vocab.config.step_seconds
        self.ramp = max(ramp_seconds / vocab.config.step_seconds, 1.0)
        self.on_slices = [vocab.note_on_range(f) for f in range(len(vocab.families))]
        self.wait_ids = slice(vocab.wait_id(1), vocab.wait_id(vocab.config.max_wait_steps) + 1)

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        first = self.tracker.rows is None
        rows = self.tracker.update(input_ids)
        if first and self.histories is not None:
            for row, history in zip(rows, self.histories):
                for fam, since in silent_steps(history, self.vocab).items():
                    if fam not in row.last_onset:
                        row.last_onset[fam] = row.now - since
        v = self.vocab
        out = scores
        for r, row in enumerate(rows):
            quiet = row.now - max(row.last_onset.values(), default=0)  # steps since the row's latest note-on
            hush = min(max((quiet - self.patience) / self.ramp, 0.0), 1.0)
            if hush > 0:
                if out is scores:
                    out = scores.clone()
                out[r, self.wait_ids] -= SILENCE_MAX_PENALTY * hush
            families = sorted(set(row.families))
            if len(families) < 2:
                continue
            floors = {}
            for fam in families:
                silent = row.now - row.last_onset.get(fam, 0)
                ramp = min(max((silent - self.patience) / self.ramp, 0.0), 1.0)
                if ramp > 0:
                    floors[fam] = ramp / len(families)
            if not floors:
                continue
            if out is scores:
                out = scores.clone()
            logp = torch.log_softmax(out[r].float(), dim=-1)
            on = logp[v.on_start : v.off_start]
            on_mass = torch.logsumexp(on, dim=0)
            if not torch.isfinite(on_mass):
                continue  # the model (or a forcing guard) allows no note-on here
            for fam, floor in floors.items():
                part = self.on_slices[fam]
                family_mass = torch.logsumexp(logp[part], dim=0)
                if not torch.isfinite(family_mass):
                    continue  # the family's note-ons are forbidden in this row
                if float(torch.exp(family_mass - on_mass)) >= floor:
                    continue
                family = logp[part]
                keep = family.topk(min(ENTRY_CANDIDATES, family.numel())).indices
                narrowed = torch.full_like(family, NEG_INF)
                narrowed[keep] = family[keep]
                # the family gets ``floor`` of the note-on total, the others the rest: the total is unchanged
                others_mass = on_mass + torch.log1p(-torch.exp(family_mass - on_mass))  # share < floor < 1
                logp[v.on_start : v.off_start] += math.log(1 - floor) + on_mass - others_mass
                logp[part] = narrowed + (math.log(floor) + on_mass - torch.logsumexp(narrowed, dim=0))
            out[r] = logp.to(out.dtype)
        return out


class NoteDensityGuard(_WindowGuard):
    """Forbids a family's note-ons while it has started its cap of notes in the last ``DENSITY_WINDOW_STEPS``
    (the cap: ``MusicStatistics.density_limit`` notes per second). Waits, note-offs and the other families
    keep their probabilities, so a dense stretch thins out instead of growing into a wall of notes.

    A row whose header asks for two or more families is also held to its ensemble's limits
    (``MusicStatistics.ensemble_limits``): once all its families together have started more than the soft
    rate's notes in the window, note-on logits are lowered by a ramp growing linearly to
    ``ENSEMBLE_MAX_PENALTY`` at the hard rate, each asked family's times its count over an equal share of the
    window's notes (capped at ``ENSEMBLE_MAX_SHARE``), so the busiest family yields first; at the hard rate no
    note may start. Without the share, a strumming guitar kept 86 % of a band's notes and the piano 1 %.

    Whatever the rate, once ``BALANCE_MIN_NOTES`` or more notes started in the window, the busiest asked family
    is held to the ensemble's balance (``MusicStatistics.balance_limits``): past the soft share of the window's
    notes its note-ons lose up to ``BALANCE_MAX_PENALTY`` nats, reaching it at the hard share, and the other
    asked families' note-ons gain what keeps the row's note-on probability (``_rebalance``). Without it a
    4-minute band piece could end as a drum loop under parts playing a note every few seconds. With a ``style``
    whose real pieces of the row's ensemble have them (``MusicStatistics.part_share_limits``), every asked
    family is held the same way to its own part's soft and hard shares (a rock trio's bass to the real trios'
    median share, 0.07), see ``PART_SHARE_SOFT_QUANTILE``.

    And while the ensemble has started fewer notes in a whole window (history included) than its floor
    (``MusicStatistics.ensemble_floor``), every note-on gains up to ``ENSEMBLE_FLOOR_MAX_BONUS`` nats, all of it
    with none started: a band does not thin out below what any real one plays.

    Args:
        vocab (`Vocabulary`): the event vocabulary.
        statistics (`MusicStatistics`): per-family note-rate caps.
        histories (`list[list[int]]`, *optional*): each row's events so far (see ``InstrumentEntryGuard``): the
            note-ons before a slid window count against the cap.
        style (`str` or `dict[str, float]`, *optional*): the asked style (a name or a blend), whose parts' shares
            hold each family; None: the busiest-share rule alone.
    """

    span, keep = DENSITY_WINDOW_STEPS, "keep_onsets"

    def __init__(self, vocab: Vocabulary, statistics: MusicStatistics, histories: list[list[int]] | None = None,
                 style=None):
        super().__init__(vocab, histories)
        self.statistics = statistics
        self.style = style
        self.parts: list[dict[int, tuple[float, float]]] = []  # per row: family -> (soft, hard) share of its part
        seconds = DENSITY_WINDOW_STEPS * vocab.config.step_seconds
        self.caps = [max(1, math.floor(statistics.density_limit(name) * seconds)) for name in vocab.families]
        self.on_slices = [vocab.note_on_range(f) for f in range(len(vocab.families))]
        self.on_ids = slice(vocab.on_start, vocab.off_start)
        # ensemble size -> (soft, hard) notes in the window
        self.ensemble = {}
        self.balance = {}  # ensemble size -> (soft, hard) share of the busiest family
        self.floors = {}  # ensemble size -> the fewest notes in the window before note-ons are lifted
        for size in range(2, len(vocab.families) + 1):
            limits = statistics.ensemble_limits(size)
            if limits is not None:
                self.ensemble[size] = (limits[0] * seconds, max(limits[1] * seconds, limits[0] * seconds + 1))
            if (shares := statistics.balance_limits(size)) is not None:
                self.balance[size] = shares
            if (floor := statistics.ensemble_floor(size)) is not None:
                self.floors[size] = floor * seconds  # notes in the window
        self.before: list[int] = []  # per row: steps of its piece before the window (from its history)

    def _seed(self, row, token: int, step: int) -> None:
        row.onsets.setdefault(int(self.vocab.note_family(token)), deque()).appendleft(step)

    def _rows(self, input_ids: torch.LongTensor) -> list[_RowState]:
        first = self.tracker.rows is None
        rows = super()._rows(input_ids)
        if first:
            histories = self.histories or [None] * len(rows)
            self.before = [int(self.vocab.wait_steps(h).sum()) - row.now if h else 0 for row, h in zip(rows, histories)]
            self.parts = [self._part_limits(sorted(set(row.families))) for row in rows]
        return rows

    def _part_limits(self, families: list[int]) -> dict[int, tuple[float, float]]:
        """Each of ``families``' (soft, hard) share of their ensemble's notes in ``style``, where known."""
        if self.style is None:
            return {}
        names = [self.vocab.families[f] for f in families]
        limits = {f: self.statistics.part_share_limits(self.style, names, name) for f, name in zip(families, names)}
        return {f: shares for f, shares in limits.items() if shares is not None}

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        rows = self._rows(input_ids)
        out = scores
        for r, row in enumerate(rows):
            counts = {}
            for fam, onsets in row.onsets.items():
                while onsets and onsets[0] <= row.now - DENSITY_WINDOW_STEPS:
                    onsets.popleft()
                counts[fam] = len(onsets)
                if len(onsets) >= self.caps[fam]:
                    if out is scores:
                        out = scores.clone()
                    out[r, self.on_slices[fam]] = NEG_INF
            families = set(row.families)
            limits = self.ensemble.get(len(families))
            total = sum(counts.values())
            floor = self.floors.get(len(families))
            if floor is not None and total < floor and self.before[r] + row.now >= DENSITY_WINDOW_STEPS:
                if out is scores:
                    out = scores.clone()
                out[r, self.on_ids] += ENSEMBLE_FLOOR_MAX_BONUS * (1.0 - total / floor)
            held = []  # (family, soft share, hard share): the busiest family, then each part with its style's
            balance = self.balance.get(len(families))
            if total >= BALANCE_MIN_NOTES:
                if balance is not None:
                    held.append((max(families, key=lambda f: counts.get(f, 0)), *balance))
                held.extend((fam, *shares) for fam, shares in self.parts[r].items())
            for fam, soft_share, hard_share in held:
                share = counts.get(fam, 0) / total
                if share > soft_share:
                    if out is scores:
                        out = scores.clone()
                    ramp = min((share - soft_share) / max(hard_share - soft_share, 1e-6), 1.0)
                    self._rebalance(out[r], fam, families, BALANCE_MAX_PENALTY * ramp)
            if limits is None or total <= limits[0]:
                continue
            if out is scores:
                out = scores.clone()
            soft, hard = limits
            if total >= hard:
                out[r, self.on_ids] = NEG_INF
                continue
            # the busier an asked family is than an equal share of the window's notes, the more it is held back
            # (a family the header does not ask for, possible without strict instruments, gets the plain ramp)
            ramp = ENSEMBLE_MAX_PENALTY * (total - soft) / (hard - soft)
            out[r, self.on_ids] -= ramp
            for fam in families:
                share = min(counts.get(fam, 0) * len(families) / total, ENSEMBLE_MAX_SHARE)
                out[r, self.on_slices[fam]] += ramp * (1.0 - share)
        return out


    def _rebalance(self, row: torch.Tensor, busiest: int, families: set[int], penalty: float) -> None:
        """Move note-on probability from ``busiest`` to the other asked families of one row's logits ``row``
        (in place): its note-ons lose ``penalty`` nats and the others' gain what keeps the row's total note-on
        probability, so the ensemble plays on at its rate with a different instrument instead of resting."""
        others = [self.on_slices[f] for f in sorted(families - {busiest})]
        mine = torch.logsumexp(row[self.on_slices[busiest]].float(), dim=0)
        rest = torch.logsumexp(torch.stack([torch.logsumexp(row[part].float(), dim=0) for part in others]), dim=0)
        row[self.on_slices[busiest]] -= penalty
        if not (torch.isfinite(mine) and torch.isfinite(rest)):
            return  # nothing to move, or nowhere to move it: the busiest family only loses its penalty
        # the others' mass grows by the busiest family's loss, exp(mine) * (1 - exp(-penalty)), in log space
        gain = float(torch.log1p(torch.exp(mine - rest + math.log(-math.expm1(-penalty)))))
        for part in others:
            row[part] += gain


def silent_steps(events: list[int], vocab: Vocabulary) -> dict[int, int]:
    """Steps from each family's last note-on in ``events`` to their end (from their start for a family
    that never plays: every family is a key)."""
    events = np.asarray(events, dtype=np.int64)
    clock = np.cumsum(vocab.wait_steps(events))
    total = int(clock[-1]) if len(events) else 0
    fam = np.where(vocab.kinds(events) == vocab.KIND_ON, vocab.note_family(events), -1)
    out = {f: total for f in range(len(vocab.families))}
    for f in np.unique(fam[fam >= 0]).tolist():
        out[f] = total - int(clock[np.flatnonzero(fam == f)[-1]])
    return out


# The pipeline's switches, one per guard, each on by default.
GUARD_OPTIONS = ("note_guard", "drum_guard", "entry_guard", "density_guard", "repeat_guard", "register_guard", "spread_guard",
                 "grid_guard", "groove_guard", "polyphony_guard", "duration_guard")
GUARD_NAMES = tuple(option.removesuffix("_guard") for option in GUARD_OPTIONS)  # as the CLIs' --no-guard takes them


def guards_off(names) -> dict[str, bool]:
    """The pipeline keyword arguments that switch off the guards ``names`` (``GUARD_NAMES``: ``"note"``, ...).

    Raises:
        `ValueError`: for a name that is no guard's.
    """
    unknown = sorted(set(names) - set(GUARD_NAMES))
    if unknown:
        raise ValueError(f"unknown guards {unknown}; choose from {list(GUARD_NAMES)}")
    return {f"{name}_guard": False for name in names}


def music_guards(vocab: Vocabulary, statistics: MusicStatistics, note_guard: bool = True, drum_guard: bool = True,
                 entry_guard: bool = True, density_guard: bool = True, repeat_guard: bool = True,
                 register_guard: bool = True, spread_guard: bool = True, grid_guard: bool = True,
                 groove_guard: bool = True, polyphony_guard: bool = True, duration_guard: bool = True,
                 histories: list[list[int]] | None = None,
                 style="unknown", primer_tokens: int | None = None, pieces: list[int] | None = None) -> list[LogitsProcessor]:
    """The guards that are switched on, fresh (they keep per-call state), in the order they must run.

    Args:
        vocab (`Vocabulary`): the event vocabulary.
        statistics (`MusicStatistics`): the checkpoint's statistics.
        note_guard / drum_guard / entry_guard / density_guard / repeat_guard / register_guard / spread_guard /
            grid_guard / groove_guard / polyphony_guard / duration_guard (`bool`, default True): which guards to
            use (the spread guard only for a style with spread bounds, the grid
            guard only for a style metric on sixteenths or triplets, the groove guard only on sixteenths (a
            swung style's straight pieces, which the grid guard draws, included), the
            polyphony guard only for a style with a steady texture, the
            duration guard only for a style with note-length distributions).
        histories (`list[list[int]]`, *optional*): each row's events so far (see ``InstrumentEntryGuard``): the
            entry, drum, density, repeat, register, spread and grid guards read what came before a slid window from them.
        style (`str` or `dict`, defaults to ``"unknown"``): the asked style, a name or a ``{name: weight}`` blend
            (``MusicStatistics.metric``).
        primer_tokens (`int`, *optional*): the primer's events at the start of each history: the grid and groove
            guards fit their grid on them (``GridGuard``); None: on the whole history.
        pieces (`list[int]`, *optional*): each row's index among the call's pieces, so that the grid guard's
            tightness drawn for a piece stays with it across slides (``GridGuard``); None: 0, 1, ...
    """
    guards: list[LogitsProcessor] = []
    if density_guard:  # first: the entry guard then shares out only the note-ons a dense family may still play
        guards.append(NoteDensityGuard(vocab, statistics, histories=histories, style=style))
    if repeat_guard:  # before the entry guard too: a family's share is carried by the keys it may still strike
        guards.append(KeyRepeatGuard(vocab, statistics, histories=histories))
    if register_guard:  # likewise: the entry guard shares out the family's note-ons the register leaves likely
        guards.append(RegisterGuard(vocab, statistics, histories=histories))
    if spread_guard and any(statistics.register_spread.get(name) for name, w in style_weights(style).items() if w > 0):
        guards.append(SpreadGuard(vocab, statistics, style, histories=histories))
    if polyphony_guard and statistics.holds_polyphony(style):  # before the entry guard: it shares out what is left
        guards.append(PolyphonyGuard(vocab, statistics, style))
    if duration_guard and statistics.holds_note_lengths(style):
        guards.append(DurationGuard(vocab, statistics, style, histories=histories))
    fractions = statistics.grid_fractions(style)
    # each band piece as tight as real ones (the grid and groove guards draw the same tightness per piece)
    tightness = functools.partial(statistics.grid_tightness, style) if grid_guard else None
    if grid_guard and fractions:  # before the entry guard: it shares out the on-grid note-ons
        guards.append(GridGuard(vocab, histories=histories, primer_tokens=primer_tokens, fractions=fractions,
                                tightness=tightness, pieces=pieces))
    # a swung style's straight pieces are drawn by the grid guard's tightness, so they need it on
    straight = statistics.metric(style) or (grid_guard and fractions == TRIPLET_FRACTIONS)
    if groove_guard and straight and statistics.groove_target(style) is not None:
        # each row to the groove of its style played by its instruments, where the corpus has one
        target = functools.partial(statistics.groove_target, style)
        guards.append(GrooveGuard(vocab, target, histories=histories, primer_tokens=primer_tokens, tightness=tightness,
                                  pieces=pieces, fractions=fractions))
    if entry_guard:
        guards.append(InstrumentEntryGuard(vocab, histories=histories))
    if drum_guard:
        guards.append(DrumRateGuard(vocab, statistics.drum_hits_per_second, histories=histories))
    if note_guard:
        guards.append(NoteLengthGuard(vocab, statistics))  # last: its forcing must not be rescaled
    return guards
