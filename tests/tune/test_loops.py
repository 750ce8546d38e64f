"""The tail measure of degeneration: a completion loops when some word 3-gram occurs more than
twice; the tune's `loops` is the paired increase of the fraction of looping completions."""

from steerfast.tune.damage import loops, max_ngram_count, repeated_ngram_rate


def test_max_ngram_count_and_loops():
    looping = "gym, I was happy. I was happy. I was happy. I was happy."
    assert max_ngram_count(looping) == 4  # "i was happy." four times
    assert loops(looping)
    twice = "They're going to have a great day. They're going to have fun"
    assert max_ngram_count(twice) == 2 and not loops(twice)
    assert max_ngram_count("one two") == 0 and not loops("")
    assert max_ngram_count("A b C a B c a b c") == 3  # case-insensitive, like the rate


def test_one_loop_in_fifty_is_visible_in_the_tail_not_the_mean():
    """Why the mean rate was not enough: 49 clean completions and one loop."""
    clean = [f"word{i} then another{i} and more{i} words{i} here{i}" for i in range(49)]
    texts = clean + ["I was happy. I was happy. I was happy. I was happy. I was happy."]
    mean_rate = sum(repeated_ngram_rate(t) for t in texts) / len(texts)
    assert mean_rate < 0.02  # passes a 0.05 budget on the mean rate
    assert sum(loops(t) for t in texts) / len(texts) == 0.02  # the tail: one prompt in 50
