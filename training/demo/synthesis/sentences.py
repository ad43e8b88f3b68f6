"""Short English sentences from a small grammar: varied enough that speech recognition is not a lookup.

About 320 words fill fourteen sentence patterns, giving millions of distinct sentences of 5 to 12
words. Transcripts are lower case without punctuation, exactly the words that are spoken.
"""

from __future__ import annotations

import numpy as np


def _phrases(text: str) -> tuple[str, ...]:
    """Comma-separated phrases of a vocabulary list."""
    return tuple(phrase.strip() for phrase in text.split(","))


_NAMES = _phrases(
    "anna, ben, clara, david, emma, frank, grace, henry, isabel, jack, kate, leo, maria, nathan, olivia, "
    "peter, rachel, sam, sarah, thomas, victor, william, zoe, the teacher, the doctor, my sister, your "
    "brother, the old farmer, our neighbour, the captain"
)
_ADJECTIVES = _phrases(
    "small, large, red, blue, green, yellow, heavy, light, quiet, noisy, bright, dark, old, new, warm, "
    "cold, clean, dirty, broken, empty, strange, wooden, golden, tiny, famous, hungry, happy, tired, "
    "careful, friendly, sharp, soft"
)
_NOUNS = _phrases(
    "apple, basket, bicycle, bottle, box, bridge, camera, candle, chair, coat, cup, desk, door, engine, "
    "garden, guitar, hammer, horse, house, key, kitchen, ladder, lamp, letter, map, mirror, window, "
    "newspaper, notebook, orange, painting, pencil, piano, picture, pillow, plate, radio, river, rope, "
    "shirt, shoe, table, ticket, tower, train, tree, umbrella, wallet, wheel, blanket, boat, bucket"
)
_PLURAL_NOUNS = _phrases(
    "apples, baskets, bottles, boxes, candles, chairs, coins, cups, eggs, flowers, glasses, keys, lamps, "
    "letters, maps, oranges, pencils, pictures, plates, rocks, shoes, stones, tickets, tomatoes, books, "
    "birds, horses, boats, shirts, sheep"
)
_PLACES = _phrases(
    "the station, the market, the library, the harbour, the school, the hospital, the park, the office, "
    "the garden, the museum, the village, the kitchen, the bakery, the beach, the bank, the castle, the "
    "farm, the forest, the hotel, the island, the mountain"
)
_PAST_VERBS = _phrases(
    "found, carried, painted, opened, closed, cleaned, moved, sold, bought, dropped, lifted, repaired, "
    "washed, borrowed, hid, lost, pushed, pulled, kicked, measured, wrapped, counted, tested, watched, "
    "broke, built, chose, drew, held, kept"
)
_BASE_VERBS = _phrases(
    "find, carry, paint, open, close, clean, move, sell, buy, drop, lift, repair, wash, borrow, hide, "
    "push, pull, measure, wrap, count, test, watch, build, choose, draw, hold, keep, bring, check, fetch"
)
_PREPOSITIONS = _phrases("near, behind, under, beside, inside, above, below, next to, in front of, on")
_TIMES = _phrases(
    "yesterday, today, tomorrow, this morning, last night, on monday, on tuesday, on wednesday, on "
    "thursday, on friday, on saturday, on sunday, next week, at noon, before lunch, after dinner, in the "
    "evening, in january, in april, in july, in october"
)
_NUMBERS = _phrases(
    "two, three, four, five, six, seven, eight, nine, ten, eleven, twelve, fifteen, twenty, thirty, "
    "forty, fifty, a hundred"
)
_ADVERBS = _phrases("slowly, quickly, quietly, carefully, loudly, gently, suddenly, happily, badly, easily")
_WEATHER = _phrases("sunny, rainy, windy, cloudy, foggy, cold, warm, stormy")

_PATTERNS = (
    "{name} {past} the {adjective} {noun} {preposition} the {noun2}",
    "{name} will {verb} the {noun} {time}",
    "please {verb} the {adjective} {noun} to {place}",
    "there are {number} {plural} {preposition} the {noun}",
    "how many {plural} did {name} {verb} {time}",
    "the {noun} is {preposition} the {adjective} {noun2}",
    "{name} {past} {number} {plural} at {place} {time}",
    "we walked {adverb} to {place} {time}",
    "do not {verb} the {noun} {adverb}",
    "it was {weather} when {name} arrived at {place}",
    "{name} {adverb} {past} the {noun}",
    "my {adjective} {noun} is {preposition} {place}",
    "where did {name} put the {adjective} {plural}",
    "{name} asked {name2} to {verb} the {noun}",
)


def sample_sentence(rng: np.random.Generator) -> str:
    """One sentence of 5 to 12 lower-case words, drawn from the grammar with `rng`."""

    def pick(words: tuple[str, ...]) -> str:
        return words[int(rng.integers(len(words)))]

    pattern = pick(_PATTERNS)
    noun = pick(_NOUNS)
    name = pick(_NAMES)
    return pattern.format(
        name=name,
        name2=pick(tuple(other for other in _NAMES if other != name)),
        adjective=pick(_ADJECTIVES),
        noun=noun,
        noun2=pick(tuple(other for other in _NOUNS if other != noun)),
        plural=pick(_PLURAL_NOUNS),
        place=pick(_PLACES),
        past=pick(_PAST_VERBS),
        verb=pick(_BASE_VERBS),
        preposition=pick(_PREPOSITIONS),
        time=pick(_TIMES),
        number=pick(_NUMBERS),
        adverb=pick(_ADVERBS),
        weather=pick(_WEATHER),
    )
