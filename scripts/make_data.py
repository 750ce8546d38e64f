#!/usr/bin/env python3
"""Regenerate every dataset under ``steerfast/data/``.

All hand-written content (written for this project, not copied from any
public dataset) lives in the Python lists below; this script only assigns
splits, ids and answer positions (with a fixed seed) and writes JSONL.

Usage::

    python scripts/make_data.py            # write all files + self-check
    python scripts/make_data.py --check    # only verify the files on disk

Output files (one JSON object per line, UTF-8):

* sentiment_pairs.jsonl   {"id", "positive", "negative"}
* neutral_prompts.jsonl   {"id", "prompt"}
* mc_sentiment.jsonl      {"id", "split", "prompt", "options", "answer"}
* mc_copa.jsonl           (same fields)
* mc_facts.jsonl          (same fields)
* fv_antonym.jsonl        {"id", "split", "input", "output"}
* fv_country_capital.jsonl
* fv_en_fr.jsonl
* fv_uppercase.jsonl
"""

from __future__ import annotations

import json
import random
import sys
from collections import Counter
from pathlib import Path

SEED = 20240611
OUT_DIR = Path(__file__).resolve().parents[1] / "steerfast" / "data"

MC_SPLITS = ("calib", "dev", "test")
MC_MIN = {"calib": 160, "dev": 60, "test": 120}
FV_SPLITS = ("train", "dev", "test")
FV_MIN = {"train": 20, "dev": 40, "test": 120}


def rng_for(name: str) -> random.Random:
    """Independent, deterministic RNG per dataset (stable under reordering)."""
    return random.Random(f"{SEED}:{name}")


def balanced_answers(n: int, rng: random.Random) -> list[int]:
    """n answer indices in {0, 1}, exactly balanced (+-1), shuffled."""
    ans = [0] * (n // 2) + [1] * (n - n // 2)
    rng.shuffle(ans)
    return ans


# ---------------------------------------------------------------------------
# 1. sentiment_pairs.jsonl  (contrastive pairs for CAA)
# ---------------------------------------------------------------------------

# "I {verb} <object>." -- every verb pair fits every object.
VERB_PAIRS_1P = [("love", "hate"), ("enjoy", "dread"), ("adore", "despise"), ("like", "dislike")]
VERB_OBJECTS_1P = [
    "spending my weekends in the garden",
    "cooking dinner for my family",
    "working at the bakery",
    "the long walk to school",
    "the music they play at this cafe",
    "living in this small town",
    "rainy mornings",
    "working from home",
    "visiting my grandparents",
    "taking the train to work",
    "the smell of fresh paint",
    "our neighbour's dog",
    "the new library downtown",
    "swimming in the lake",
    "waking up early",
    "long road trips",
    "shopping at the big mall",
    "the food at the school canteen",
    "my daily run in the park",
    "learning French at night school",
    "this city in winter",
    "camping in the mountains",
    "playing chess with my brother",
    "our apartment building",
    "the new coffee machine at work",
    "family dinners on Sunday",
    "flying to other countries",
    "reading before bed",
    "big concerts",
    "the colour of our new kitchen",
    "doing homework with my sister",
    "the smell of the sea",
    "my science class",
    "the bus ride home",
    "hot summer days",
    "writing letters by hand",
    "this old sofa",
    "the weekly team meeting",
    "riding my bike to work",
    "my job at the hospital",
    "the way my teacher explains things",
    "going to the dentist",
]

# third-person subject + verb pair (3rd person singular forms).
VERB_PAIRS_3P = [("loves", "hates"), ("enjoys", "dreads"), ("adores", "despises"), ("likes", "dislikes")]
VERB_SENTENCES_3P = [
    "My sister {} her new school.",
    "My brother {} his job at the factory.",
    "Our teacher {} the new textbook.",
    "My father {} driving in the city.",
    "My grandmother {} her new phone.",
    "The old man {} walking his dog in the rain.",
    "My best friend {} living in the countryside.",
    "Our manager {} the new office.",
    "My cousin {} playing football on Saturdays.",
    "The little boy {} bath time.",
    "My mother {} gardening in the spring.",
    "Our neighbour {} the sound of the church bells.",
    "My uncle {} fishing at the lake.",
    "The new student {} working in groups.",
    "My aunt {} her morning commute.",
    "The girl next door {} her piano lessons.",
]

# "<thing> was {adj}." -- every adjective pair fits every sentence.
ADJ_PAIRS = [
    ("wonderful", "terrible"),
    ("great", "awful"),
    ("excellent", "horrible"),
    ("fantastic", "dreadful"),
    ("lovely", "unpleasant"),
    ("amazing", "disappointing"),
    ("delightful", "awful"),
]
ADJ_SENTENCES = [
    "The movie we watched last night was {}.",
    "The food at the new restaurant was {}.",
    "Our trip to the coast was {}.",
    "The hotel room was {}.",
    "The concert on Saturday was {}.",
    "The service at the bank was {}.",
    "My first day at work was {}.",
    "The weather during our holiday was {}.",
    "The book I finished yesterday was {}.",
    "The party at Anna's house was {}.",
    "The flight to Madrid was {}.",
    "The meal my uncle cooked was {}.",
    "The view from our window is {}.",
    "The new album by that band is {}.",
    "The play at the town theatre was {}.",
    "The coffee at the station was {}.",
    "The lecture this morning was {}.",
    "The football match was {}.",
    "The wedding last weekend was {}.",
    "Our camping trip was {}.",
    "The school play was {}.",
    "The museum tour was {}.",
    "The train journey was {}.",
    "My birthday dinner was {}.",
    "The new update for my phone is {}.",
    "The hike up the hill was {}.",
    "The pizza we ordered was {}.",
    "The class trip to the zoo was {}.",
    "The job interview was {}.",
    "The art exhibition was {}.",
    "The boat tour was {}.",
    "The last episode of the show was {}.",
    "The workshop on Friday was {}.",
    "The drive home was {}.",
    "The ice cream at the beach was {}.",
    "The school lunch today was {}.",
    "Our new neighbours are {}.",
    "The garden behind the hotel was {}.",
    "The weekend with my cousins was {}.",
    "The new bakery on our street is {}.",
    "This year's summer festival was {}.",
    "The cake at the wedding was {}.",
]

# "I feel {adj} ..." -- every feeling pair fits every sentence.
FEEL_PAIRS = [
    ("happy", "miserable"),
    ("cheerful", "gloomy"),
    ("joyful", "sad"),
    ("happy", "sad"),
    ("glad", "upset"),
    ("pleased", "annoyed"),
]
FEEL_SENTENCES = [
    "I feel {} when I think about my new job.",
    "I feel {} every time I open my inbox.",
    "He felt {} after talking to his boss.",
    "We felt {} about moving to the city.",
    "She felt {} when she read the letter.",
    "I felt {} after the meeting with my teacher.",
    "My parents felt {} about the new house.",
    "I always feel {} on Monday mornings.",
    "The children felt {} at the end of the school year.",
    "I feel {} when I come home from work.",
    "She felt {} after the phone call with her sister.",
    "I felt {} when I saw my exam results.",
    "We felt {} after the long drive.",
    "He feels {} about his new haircut.",
    "I felt {} when the package finally arrived.",
    "The team felt {} after the game.",
    "I feel {} when I listen to the news.",
    "My grandfather feels {} in his new flat.",
    "I felt {} walking home in the snow.",
    "She feels {} about her piano lessons.",
    "I feel {} when I look at old photos.",
    "They felt {} after the visit to the doctor.",
    "I felt {} on my first day at the new school.",
    "He felt {} when the holiday was over.",
    "I feel {} about the changes at work.",
    "We felt {} at the end of the trip.",
    "I feel {} whenever I visit that town.",
    "She felt {} after the interview.",
]

# Fully hand-written pairs (more than one word may differ).
SENTIMENT_PAIRS_MANUAL = [
    ("The staff were friendly and helpful.", "The staff were rude and unhelpful."),
    ("This is the best pizza I have ever eaten.", "This is the worst pizza I have ever eaten."),
    ("What a beautiful day it is today.", "What a horrible day it is today."),
    ("I am so proud of what we achieved.", "I am so ashamed of what we achieved."),
    ("The room was clean and comfortable.", "The room was dirty and uncomfortable."),
    ("My new job makes me very happy.", "My new job makes me very unhappy."),
    ("The trip was a complete success.", "The trip was a complete failure."),
    ("I can't wait to see my family again.", "I dread seeing my family again."),
    ("The teacher was patient and kind.", "The teacher was impatient and cruel."),
    ("Everything went perfectly at the party.", "Everything went wrong at the party."),
    ("This phone is a joy to use.", "This phone is a pain to use."),
    ("The soup was hot and delicious.", "The soup was cold and disgusting."),
    ("I had the best time at the beach.", "I had the worst time at the beach."),
    ("Our holiday was relaxing and fun.", "Our holiday was stressful and boring."),
    ("The new manager is fair and supportive.", "The new manager is unfair and hostile."),
    ("I am thrilled with my new car.", "I am disappointed with my new car."),
    ("The movie was exciting from start to finish.", "The movie was boring from start to finish."),
    ("My neighbours are kind and generous.", "My neighbours are mean and selfish."),
    ("The city looked beautiful at night.", "The city looked ugly at night."),
    ("I am grateful for the help I got.", "I am angry about the help I got."),
    ("The hotel breakfast was fresh and tasty.", "The hotel breakfast was stale and tasteless."),
    ("This song always cheers me up.", "This song always brings me down."),
    ("The service here is fast and friendly.", "The service here is slow and rude."),
    ("I feel lucky to live in this town.", "I feel unlucky to live in this town."),
    ("The garden looks lovely this spring.", "The garden looks awful this spring."),
    ("The class was interesting and useful.", "The class was dull and useless."),
    ("I had a pleasant evening with my friends.", "I had an unpleasant evening with my friends."),
    ("The concert was a joy to watch.", "The concert was a pain to watch."),
    ("My brother gave me some good news today.", "My brother gave me some bad news today."),
    ("The weather was sunny and warm all week.", "The weather was grey and miserable all week."),
    ("I love the way this room feels.", "I hate the way this room feels."),
    ("The game was fun and everyone laughed.", "The game was dull and everyone complained."),
]


def make_sentiment_pairs() -> list[dict]:
    pairs: list[tuple[str, str]] = []
    for i, obj in enumerate(VERB_OBJECTS_1P):
        p, n = VERB_PAIRS_1P[i % len(VERB_PAIRS_1P)]
        pairs.append((f"I {p} {obj}.", f"I {n} {obj}."))
    for i, sent in enumerate(VERB_SENTENCES_3P):
        p, n = VERB_PAIRS_3P[i % len(VERB_PAIRS_3P)]
        pairs.append((sent.format(p), sent.format(n)))
    for i, sent in enumerate(ADJ_SENTENCES):
        p, n = ADJ_PAIRS[i % len(ADJ_PAIRS)]
        pairs.append((sent.format(p), sent.format(n)))
    for i, sent in enumerate(FEEL_SENTENCES):
        p, n = FEEL_PAIRS[i % len(FEEL_PAIRS)]
        pairs.append((sent.format(p), sent.format(n)))
    pairs.extend(SENTIMENT_PAIRS_MANUAL)
    rng = rng_for("sentiment_pairs")
    rng.shuffle(pairs)
    return [{"id": f"sentpair-{i:04d}", "positive": p, "negative": n} for i, (p, n) in enumerate(pairs)]


# ---------------------------------------------------------------------------
# 2. neutral_prompts.jsonl
# ---------------------------------------------------------------------------

NEUTRAL_PROMPTS = [
    "I think the weather today",
    "My neighbour went to the",
    "The report about the new bridge says",
    "Yesterday I walked to the",
    "The meeting this afternoon",
    "When I opened the door, I",
    "The city council decided to",
    "My sister told me that the",
    "This morning the bus",
    "The restaurant on the corner",
    "I watched a film about",
    "Our teacher said that the",
    "The new phone has a",
    "Last summer we drove to",
    "The book I am reading is about",
    "The train to London",
    "My grandfather used to",
    "At the end of the street there is",
    "The museum will open",
    "In the kitchen, my mother",
    "The football team played",
    "The package arrived and",
    "I spent the weekend",
    "The hotel near the station",
    "After lunch, we",
    "The weather forecast for tomorrow",
    "My friend bought a",
    "The school announced that",
    "When the concert started, the",
    "The movie I saw last night",
    "The shop down the road",
    "Our holiday in Spain",
    "The new software update",
    "The children in the park",
    "The doctor said that my",
    "On Monday the office",
    "The food at the party",
    "My first day at the new job",
    "The waiter brought us",
    "The village where I grew up",
    "The river near our house",
    "I called my brother and",
    "The price of the tickets",
    "The article in the newspaper",
    "Tonight I am going to",
    "The garden behind the house",
    "The car in front of us",
    "This year the festival",
    "The students in my class",
    "The story begins with",
]

# Words that must not appear in a neutral prompt (self-check).
SENTIMENT_WORDS = {
    "love",
    "hate",
    "good",
    "bad",
    "great",
    "awful",
    "terrible",
    "wonderful",
    "happy",
    "sad",
    "miserable",
    "best",
    "worst",
    "beautiful",
    "ugly",
    "nice",
    "horrible",
    "amazing",
    "lovely",
    "excellent",
    "poor",
    "fantastic",
    "enjoy",
    "dread",
    "like",
    "dislike",
    "glad",
    "upset",
    "angry",
    "boring",
    "fun",
}


def make_neutral_prompts() -> list[dict]:
    return [{"id": f"neutral-{i:04d}", "prompt": p} for i, p in enumerate(NEUTRAL_PROMPTS)]


SENTIMENT_PAIRS_MANUAL += [
    ("The kids had a brilliant time at the fair.", "The kids had a miserable time at the fair."),
    ("I am excited about starting university.", "I am worried about starting university."),
    ("The new park is a pleasure to walk in.", "The new park is a chore to walk in."),
    ("Dinner with my in-laws was a real treat.", "Dinner with my in-laws was a real ordeal."),
    (
        "The bakery's bread is always fresh and delicious.",
        "The bakery's bread is always stale and disgusting.",
    ),
    ("I am delighted with the way the house turned out.", "I am unhappy with the way the house turned out."),
    ("Our trip to the museum was fascinating.", "Our trip to the museum was tedious."),
    ("She smiled with joy when she opened the gift.", "She frowned with disgust when she opened the gift."),
    ("The doctor was gentle and reassuring.", "The doctor was rough and dismissive."),
    ("That was the happiest summer of my life.", "That was the saddest summer of my life."),
]


# ---------------------------------------------------------------------------
# 3a. mc_sentiment.jsonl  -- subject + predicate reviews.
# Predicates (not subjects) are split-disjoint: a predicate used in test never
# appears in calib/dev. Each predicate is combined with 4 subjects of its group.
# ---------------------------------------------------------------------------

REVIEW_GROUPS = {
    "food": {
        "subjects": [
            "The soup",
            "The pasta",
            "The pizza",
            "The curry",
            "The burger",
            "The dessert",
            "The fish",
            "The meal",
            "The breakfast",
            "The lunch special",
        ],
        "pos": [
            "was fresh and delicious",
            "tasted amazing",
            "was the best I have ever had",
            "was full of flavour",
            "was absolutely delicious",
            "was perfectly seasoned",
            "was tasty and the portion was generous",
            "was so good that I want to come back tomorrow",
            "was wonderful from the first bite to the last",
            "exceeded all my expectations",
            "was a real treat",
            "was delicious and came quickly",
        ],
        "neg": [
            "was cold and bland",
            "tasted awful",
            "was the worst I have ever had",
            "had no flavour at all",
            "was so salty that I could not eat it",
            "made me feel sick all night",
            "was stale and disgusting",
            "was so bad that I sent it back",
            "was a complete disappointment",
            "was greasy and tasteless",
            "arrived cold after an hour of waiting",
            "was overpriced and tasteless",
        ],
    },
    "service": {
        "subjects": [
            "The waiter",
            "Our server",
            "The host",
            "The bartender",
            "The manager",
            "The receptionist",
            "The cashier",
            "The waitress",
        ],
        "pos": [
            "was friendly and attentive",
            "was incredibly kind and helpful",
            "made us feel very welcome",
            "was polite and quick",
            "was cheerful and gave us great advice",
            "remembered our order perfectly",
            "treated us wonderfully all evening",
            "was warm, patient and professional",
            "solved our problem in a minute with a smile",
            "could not have been more helpful",
            "was a pleasure to deal with",
            "gave us excellent service from start to finish",
        ],
        "neg": [
            "was rude and slow",
            "ignored us for half an hour",
            "was unfriendly and careless",
            "got our order wrong twice and never apologised",
            "was impatient and unpleasant",
            "made us feel unwelcome",
            "treated us terribly all evening",
            "was lazy and completely unhelpful",
            "shouted at us for asking a simple question",
            "could not have been less helpful",
            "was a nightmare to deal with",
            "gave us awful service from start to finish",
        ],
    },
    "product": {
        "subjects": [
            "This phone",
            "This laptop",
            "This blender",
            "This vacuum cleaner",
            "This kettle",
            "This printer",
            "This camera",
            "This speaker",
            "This coffee maker",
            "This hair dryer",
        ],
        "pos": [
            "works perfectly and was worth every penny",
            "is excellent and very easy to use",
            "is the best purchase I have made this year",
            "is fantastic and I use it every day",
            "works beautifully",
            "is reliable, fast and well made",
            "is a great product at a fair price",
            "has been wonderful since the day I bought it",
            "is sturdy and works like a charm",
            "is amazing value for money",
            "does everything I need and more",
            "was a fantastic gift and my mother loves it",
        ],
        "neg": [
            "stopped working after a week",
            "broke on the first day",
            "is a complete waste of money",
            "is cheap junk and I regret buying it",
            "is noisy, slow and badly made",
            "fell apart within a month",
            "is the worst purchase I have ever made",
            "never worked properly",
            "is useless and I want a refund",
            "arrived damaged and does not work",
            "is terrible and the support was no help",
            "keeps breaking and I am very disappointed",
        ],
    },
    "movie": {
        "subjects": [
            "This movie",
            "The film",
            "The sequel",
            "This documentary",
            "The show",
            "The new series",
            "This comedy",
            "This thriller",
        ],
        "pos": [
            "was brilliant from start to finish",
            "kept me on the edge of my seat",
            "was beautifully made and very moving",
            "is the best thing I have watched this year",
            "had a great story and wonderful acting",
            "was clever, funny and charming",
            "was a masterpiece",
            "was thrilling and I loved every minute",
            "was a delight to watch",
            "left me smiling for days",
            "had excellent acting and a great script",
            "deserves every award it gets",
        ],
        "neg": [
            "was boring from start to finish",
            "was a total waste of two hours",
            "had a terrible plot and awful acting",
            "put me to sleep",
            "was so bad that we left early",
            "was dull, slow and far too long",
            "is the worst thing I have watched this year",
            "was a complete mess",
            "was painful to sit through",
            "made no sense and was painfully dull",
            "was a huge disappointment",
            "had wooden acting and a silly ending",
        ],
    },
}
SUBJECTS_PER_PREDICATE = 4
# per group & polarity: number of predicates in (calib, dev, test)
REVIEW_PRED_SPLIT = (6, 2, 4)
SENT_OPTIONS = [" positive", " negative"]


def sentiment_prompt(review: str) -> str:
    return f'Review: "{review}"\nSentiment (positive or negative):'


def make_mc_sentiment() -> list[dict]:
    rng = rng_for("mc_sentiment")
    rows = []
    for gname, g in REVIEW_GROUPS.items():
        subjects = g["subjects"]
        for label, key in ((0, "pos"), (1, "neg")):
            preds = list(g[key])
            assert len(preds) == sum(REVIEW_PRED_SPLIT), (gname, key)
            rng.shuffle(preds)
            bounds = [
                0,
                REVIEW_PRED_SPLIT[0],
                REVIEW_PRED_SPLIT[0] + REVIEW_PRED_SPLIT[1],
                sum(REVIEW_PRED_SPLIT),
            ]
            for s_idx, split in enumerate(MC_SPLITS):
                for pred in preds[bounds[s_idx] : bounds[s_idx + 1]]:
                    subs = rng.sample(subjects, SUBJECTS_PER_PREDICATE)
                    for sub in subs:
                        rows.append(
                            {
                                "split": split,
                                "group": gname,
                                "pred": pred,
                                "review": f"{sub} {pred}.",
                                "answer": label,
                            }
                        )
    out = []
    for split in MC_SPLITS:
        items = [r for r in rows if r["split"] == split]
        rng.shuffle(items)
        for i, r in enumerate(items):
            out.append(
                {
                    "id": f"mcsent-{split}-{i:04d}",
                    "split": split,
                    "prompt": sentiment_prompt(r["review"]),
                    "options": list(SENT_OPTIONS),
                    "answer": r["answer"],
                }
            )
    return out


# ---------------------------------------------------------------------------
# 3b. mc_copa.jsonl -- COPA-style items written for this project.
# (premise, (cause_right, cause_wrong) | None, (effect_right, effect_wrong) | None)
# All questions about one premise go to the same split.
# ---------------------------------------------------------------------------

COPA_ITEMS = [
    (
        "The girl's ice cream melted.",
        ("She left it in the hot sun.", "She ate it with a spoon."),
        ("It dripped onto her hands.", "It became hard as a rock."),
    ),
    (
        "The boy was late for school.",
        ("He missed the bus.", "He had a new backpack."),
        ("His teacher marked him late.", "He got a prize for being early."),
    ),
    (
        "The woman turned on the air conditioner.",
        ("The room was very hot.", "The room was very dark."),
        ("The room became cooler.", "The room became brighter."),
    ),
    (
        "The glass fell off the table.",
        ("The cat knocked it with its paw.", "The table was made of wood."),
        ("It broke into pieces on the floor.", "It filled up with water."),
    ),
    (
        "The man put on a heavy coat.",
        ("It was freezing outside.", "It was his birthday."),
        ("He stayed warm in the snow.", "He got sunburned in the snow."),
    ),
    (
        "The plant died.",
        ("Nobody watered it for weeks.", "It was placed in a pretty pot."),
        ("Its owner threw it away.", "Its owner picked flowers from it."),
    ),
    (
        "The baby started crying.",
        ("She was hungry.", "She was wearing socks."),
        ("Her mother picked her up.", "Her mother went to the cinema."),
    ),
    (
        "The road was covered in ice.",
        ("The temperature dropped below freezing.", "The sun was shining brightly all day."),
        ("Drivers drove slowly and carefully.", "Drivers drove faster than usual."),
    ),
    (
        "The student passed the exam.",
        ("She studied hard all week.", "She lost her pencil case."),
        ("Her parents congratulated her.", "She had to repeat the class."),
    ),
    (
        "The lights in the house went out.",
        ("There was a power cut.", "The fridge was full."),
        ("The family lit some candles.", "The family put on sunglasses."),
    ),
    (
        "The dog barked loudly.",
        ("A stranger knocked at the door.", "The dog was asleep in its basket."),
        ("The neighbours woke up.", "The neighbours fell asleep."),
    ),
    (
        "The man's phone battery was empty.",
        ("He forgot to charge it.", "He bought a new case for it."),
        ("He could not make a call.", "He called his friend for an hour."),
    ),
    (
        "The bread was hard and dry.",
        ("It had been left out for days.", "It had been baked that morning."),
        ("The woman threw it to the birds.", "The woman served it proudly to her guests."),
    ),
    (
        "The children built a snowman.",
        ("It had snowed all night.", "It was a hot summer day."),
        ("Their hands got cold.", "Their hands got sunburned."),
    ),
    (
        "The car would not start.",
        ("Its battery was dead.", "Its windows were clean."),
        ("The driver called a mechanic.", "The driver drove to work."),
    ),
    (
        "The woman got a sunburn.",
        ("She sat on the beach all day without sunscreen.", "She stayed inside all day."),
        ("Her skin turned red and sore.", "Her skin turned blue."),
    ),
    (
        "The kettle whistled.",
        ("The water inside was boiling.", "The water inside was cold."),
        ("The man made a cup of tea.", "The man went for a swim."),
    ),
    (
        "The boy fell off his bike.",
        ("He hit a rock on the path.", "He was wearing a blue shirt."),
        ("He scraped his knee.", "He won the race."),
    ),
    (
        "The river flooded the town.",
        ("It had rained heavily for days.", "It had been a very dry summer."),
        ("Many houses were full of water.", "Many gardens dried out."),
    ),
    (
        "The woman yawned.",
        ("She was tired.", "She was thirsty."),
        ("She went to bed early.", "She went for a long run."),
    ),
    (
        "The crowd cheered.",
        ("Their team scored a goal.", "Their team lost the match."),
        ("The stadium became very loud.", "The stadium became silent."),
    ),
    (
        "The man lost his keys.",
        ("He had a hole in his pocket.", "He was wearing a new hat."),
        ("He could not open his front door.", "He opened his front door easily."),
    ),
    (
        "The milk smelled sour.",
        ("It was past its expiry date.", "It had been bought that morning."),
        ("The girl poured it down the sink.", "The girl happily drank the whole glass."),
    ),
    (
        "The shop was crowded.",
        ("It was having a big sale.", "It was closed for the holiday."),
        ("Customers waited in long queues.", "Customers were served immediately."),
    ),
    (
        "The window broke.",
        ("A ball hit it.", "A bird sang near it."),
        ("Cold air came into the room.", "The room became warmer."),
    ),
    (
        "The girl's shoes were muddy.",
        ("She had walked through a wet field.", "She had sat on a dry sofa."),
        ("She took them off at the door.", "She wore them to bed."),
    ),
    (
        "The man was sweating.",
        ("He had just run five kilometres.", "He had been sitting in a cold room."),
        ("He drank a bottle of water.", "He put on a warm sweater."),
    ),
    (
        "The computer froze.",
        ("Too many programs were open.", "The keyboard was black."),
        ("The woman restarted it.", "The woman finished her work quickly."),
    ),
    (
        "The teacher gave the student a prize.",
        ("The student wrote the best essay.", "The student forgot his homework."),
        ("The student smiled proudly.", "The student cried with shame."),
    ),
    (
        "The family moved to a bigger house.",
        ("They had a new baby.", "Their car was red."),
        ("Each child had their own bedroom.", "The children had to share one small bed."),
    ),
    (
        "The pond froze.",
        ("The weather was very cold.", "The weather was very warm."),
        ("Children skated on it.", "Children swam in it."),
    ),
    (
        "The woman's umbrella was wet.",
        ("She had walked in the rain.", "She had left it in the cupboard."),
        ("She left it open to dry.", "She put it in her bed."),
    ),
    (
        "The boy's tooth hurt.",
        ("He had eaten too many sweets.", "He had drunk a glass of water."),
        ("He went to the dentist.", "He went to the hairdresser."),
    ),
    (
        "The flight was cancelled.",
        ("There was a big storm.", "The sky was clear."),
        ("The passengers booked a hotel for the night.", "The passengers landed on time."),
    ),
    (
        "The soup was too salty.",
        ("The cook added too much salt.", "The cook added too much water."),
        ("The man drank a lot of water.", "The man asked for more salt."),
    ),
    (
        "The woman went to the doctor.",
        ("She had a high fever.", "She had a new haircut."),
        ("The doctor gave her some medicine.", "The doctor cut her hair."),
    ),
    (
        "The balloon popped.",
        ("It touched a sharp pin.", "It was tied with a ribbon."),
        ("The child jumped at the loud noise.", "The child floated into the sky."),
    ),
    (
        "The library was quiet.",
        ("The students were studying.", "A band was playing."),
        ("The man could concentrate on his book.", "The man could not hear himself think."),
    ),
    (
        "The grass was wet in the morning.",
        ("It had rained during the night.", "There had been a long drought."),
        ("The girl's socks got wet.", "The girl's socks caught fire."),
    ),
    (
        "The man missed his train.",
        ("His alarm did not go off.", "He had bought his ticket early."),
        ("He waited for the next one.", "He arrived early at work."),
    ),
    (
        "The cake was burnt.",
        ("The baker left it in the oven too long.", "The baker used fresh eggs."),
        ("It tasted bitter.", "It tasted perfect."),
    ),
    ("The girl laughed.", ("Her friend told a funny joke.", "Her friend broke his arm."), None),
    (
        "The town built a new school.",
        ("There were too many children for the old one.", "The old school had just been painted."),
        ("The classes became smaller.", "The classes became more crowded."),
    ),
    (
        "The woman bought a map.",
        ("She was visiting a new city.", "She had lived in the town all her life."),
        ("She found her hotel easily.", "She could not find any streets."),
    ),
    (
        "The boy put on sunglasses.",
        ("The sun was very bright.", "It was the middle of the night."),
        ("His eyes felt more comfortable.", "His eyes hurt more from the sun."),
    ),
    (
        "The man's phone rang during the film.",
        ("He forgot to turn it off.", "He bought some popcorn."),
        ("People in the cinema turned to look at him.", "People in the cinema thanked him."),
    ),
    (
        "The door was locked.",
        ("The owner had turned the key.", "The owner had painted the door."),
        ("The visitor could not get in.", "The visitor walked straight in."),
    ),
    (
        "The tomatoes grew large.",
        ("The farmer watered them every day.", "The farmer forgot about them all summer."),
        ("The farmer sold them at the market.", "The farmer threw them away because they were tiny."),
    ),
    (
        "The girl whispered.",
        ("Her baby brother was asleep.", "She was at a loud concert."),
        ("Her friend leaned closer to hear her.", "Her friend covered his ears."),
    ),
    (
        "The man sneezed.",
        ("Dust got into his nose.", "He ate a sandwich."),
        ('His friend said "bless you".', "His friend gave him a sandwich."),
    ),
    (
        "The bridge was closed.",
        ("It needed repairs.", "It had been painted last year."),
        ("Drivers took a longer route.", "Drivers crossed it quickly."),
    ),
    (
        "The woman's coffee was cold.",
        ("She forgot about it for an hour.", "She had just poured it."),
        ("She heated it in the microwave.", "She burned her tongue on it."),
    ),
    (
        "The boy's kite flew high.",
        ("There was a strong wind.", "There was no wind at all."),
        ("His friends watched it in the sky.", "It got stuck in the mud."),
    ),
    (
        "The office was empty.",
        ("It was a public holiday.", "It was a busy Monday morning."),
        ("The phones rang with nobody to answer them.", "The workers held a meeting there."),
    ),
    (
        "The fish died.",
        ("Its water had not been changed for months.", "It had a new toy castle in its tank."),
        ("The boy buried it in the garden.", "The boy took it for a walk."),
    ),
    (
        "The man cut his finger.",
        ("He was chopping onions with a sharp knife.", "He was listening to music."),
        ("He put a plaster on it.", "He put a hat on it."),
    ),
    (
        "The singer's voice was hoarse.",
        ("She had sung for three hours the night before.", "She had slept well."),
        ("She cancelled her next concert.", "She sang louder than ever."),
    ),
    (
        "The room smelled of smoke.",
        ("Someone had burned the toast.", "Someone had opened a window."),
        ("The woman opened the windows.", "The woman closed all the windows."),
    ),
    ("The dog wagged its tail.", ("Its owner came home.", "Its owner left for work."), None),
    (
        "The boy got a bad grade.",
        ("He did not study for the test.", "He studied every evening."),
        ("His parents helped him with his homework.", "His parents gave him a prize for his grade."),
    ),
    (
        "The woman's car ran out of petrol.",
        ("She forgot to fill the tank.", "She washed the car."),
        ("She walked to the nearest petrol station.", "She drove on to the next city."),
    ),
    (
        "The girl's hands were cold.",
        ("She forgot her gloves.", "She was holding a hot cup of tea."),
        ("She warmed them by the fire.", "She put them in the snow."),
    ),
    (
        "The restaurant closed early.",
        ("There were no customers.", "It was full of hungry guests."),
        ("The cook went home early.", "The cook worked late into the night."),
    ),
    (
        "The man wore a suit.",
        ("He had a job interview.", "He was going to the gym."),
        ("He looked smart.", "He looked ready for the beach."),
    ),
    (
        "The vase was full of flowers.",
        ("The woman's friend had given her a bouquet.", "The woman's friend had given her a book."),
        ("The room smelled nice.", "The room smelled of fish."),
    ),
    (
        "The boy's bike had a flat tyre.",
        ("He rode over broken glass.", "He rode on a smooth road."),
        ("He pushed the bike home.", "He rode it faster than before."),
    ),
    (
        "The students stopped talking.",
        ("The head teacher walked in.", "The bell rang for lunch."),
        ("The classroom became quiet.", "The classroom became noisy."),
    ),
    (
        "The woman was thirsty.",
        ("She had walked for hours in the heat.", "She had just drunk a big bottle of water."),
        ("She drank a glass of water.", "She ate a bag of salty crisps."),
    ),
    (
        "The picnic was ruined.",
        ("It started to rain.", "The sun came out."),
        ("The family ate in the car instead.", "The family had the best picnic ever."),
    ),
    (
        "The man's shirt was wrinkled.",
        ("He did not iron it.", "He ironed it carefully."),
        ("He looked messy at the meeting.", "He looked very neat at the meeting."),
    ),
    (
        "The pot boiled over.",
        ("The cook turned the heat up too high.", "The cook turned the stove off."),
        ("Water spilled onto the stove.", "The water turned to ice."),
    ),
    (
        "The girl went to bed early.",
        ("She was very tired.", "She had drunk three cups of coffee."),
        ("She woke up feeling rested.", "She woke up feeling exhausted."),
    ),
    (
        "The shelf collapsed.",
        ("There were too many heavy books on it.", "It was painted white."),
        ("The books fell to the floor.", "The books stayed in place."),
    ),
    (
        "The boy's sandcastle was washed away.",
        ("The tide came in.", "The boy went home for lunch."),
        ("He built a new one further from the water.", "He built a new one right where the waves were."),
    ),
    (
        "The woman lost her voice.",
        ("She shouted all through the football match.", "She read a book quietly."),
        ("She wrote notes instead of talking.", "She sang at a concert that evening."),
    ),
    (
        "The man was fined by the police.",
        ("He was driving too fast.", "He was wearing a seatbelt."),
        ("He paid the money.", "He received a reward."),
    ),
    (
        "The cat hid under the bed.",
        ("There was a loud thunderstorm.", "Its food bowl was full."),
        ("The girl could not find it.", "The girl saw it sitting on the sofa."),
    ),
    (
        "The lake was full of people swimming.",
        ("It was a hot summer day.", "It was a snowy winter day."),
        None,
    ),
    (
        "The student raised her hand.",
        ("She knew the answer.", "She was asleep."),
        ("The teacher called on her.", "The teacher left the room."),
    ),
    (
        "The milk spilled.",
        ("The boy knocked over his glass.", "The boy finished his drink."),
        ("The table became wet.", "The table became dry."),
    ),
    (
        "The house was cold.",
        ("The heating was broken.", "The heating was on full."),
        ("The family wore sweaters indoors.", "The family wore swimsuits indoors."),
    ),
    (
        "The man's eyes were red and tired.",
        ("He had not slept all night.", "He had slept for ten hours."),
        ("He took a nap after lunch.", "He stayed awake for another night."),
    ),
    (
        "The bakery ran out of bread.",
        ("Many customers came early.", "No customers came all day."),
        ("Late customers went home without bread.", "Late customers bought many loaves."),
    ),
    (
        "The tree fell down.",
        ("A storm with strong winds hit the town.", "A bird built a nest in it."),
        ("It blocked the road.", "It grew taller."),
    ),
    (
        "The boy's mother was angry.",
        ("He broke her favourite cup.", "He cleaned his room."),
        ("She sent him to his room.", "She gave him extra dessert."),
    ),
    (
        "The woman opened her umbrella.",
        ("It started raining.", "She was indoors."),
        ("She stayed dry.", "She got soaked."),
    ),
    (
        "The meeting was postponed.",
        ("The manager was sick.", "The manager arrived early."),
        ("The staff went back to their desks.", "The meeting started on time."),
    ),
    (
        "The man bought a new coat.",
        ("His old one was torn.", "His old one was brand new."),
        ("He wore it the next day.", "He threw it away at once."),
    ),
    (
        "The girl's balloon floated away.",
        ("She let go of the string.", "She held the string tightly."),
        ("It disappeared into the sky.", "It fell to the ground."),
    ),
    (
        "The printer stopped printing.",
        ("It ran out of paper.", "It was full of paper."),
        ("The man added more paper.", "The man's pages came out quickly."),
    ),
    (
        "The streets were empty.",
        ("It was very late at night.", "It was rush hour."),
        ("The driver got home quickly.", "The driver was stuck in traffic."),
    ),
    (
        "The boy cried.",
        ("He dropped his ice cream.", "He got a new toy."),
        ("His father hugged him.", "His father told him to stop laughing."),
    ),
    (
        "The woman got a promotion.",
        ("She worked very hard.", "She was often late."),
        ("Her salary went up.", "Her salary went down."),
    ),
    (
        "The car's windows fogged up.",
        ("It was cold outside and warm inside.", "The windows had just been cleaned."),
        ("The driver turned on the fan.", "The driver could see perfectly."),
    ),
    (
        "The football landed in the neighbour's garden.",
        ("The boy kicked it too hard.", "The boy held it in his hands."),
        ("The boy asked the neighbour to give it back.", "The boy found it in his own bedroom."),
    ),
    (
        "The woman put ice on her ankle.",
        ("She twisted it while running.", "She painted her nails."),
        ("The swelling went down.", "The swelling got much worse."),
    ),
    (
        "The boy's room was messy.",
        ("He never put his toys away.", "He cleaned it every day."),
        ("His mother asked him to tidy up.", "His mother praised his tidy room."),
    ),
    (
        "The man's garden was full of weeds.",
        ("He had not worked in it for months.", "He weeded it every weekend."),
        ("He spent the day pulling them out.", "He won a prize for the neatest garden."),
    ),
    (
        "The audience clapped.",
        ("The musician played beautifully.", "The musician played all the wrong notes."),
        ("The musician played another song.", "The musician left the stage in shame."),
    ),
    (
        "The girl's glasses broke.",
        ("She sat on them.", "She cleaned them."),
        ("She could not see the board clearly.", "She could see better than before."),
    ),
    (
        "The water in the pool was green.",
        ("Nobody had cleaned it for weeks.", "It had been cleaned that morning."),
        ("Nobody wanted to swim.", "Everyone jumped in happily."),
    ),
    (
        "The man slipped.",
        ("The floor was wet.", "The floor was carpeted."),
        ("He fell on the floor.", "He jumped higher."),
    ),
    (
        "The woman went to the bank.",
        ("She needed some cash.", "She needed a haircut."),
        ("She took out some money.", "She bought a loaf of bread."),
    ),
    (
        "The children were bored.",
        ("It rained all day and they could not go out.", "They were at an amusement park."),
        ("They asked their parents for something to do.", "They begged to stay at the park longer."),
    ),
    (
        "The chef washed his hands.",
        ("He had touched raw chicken.", "He had put on a clean apron."),
        ("His hands were clean.", "His hands were greasy."),
    ),
    (
        "The student was tired in class.",
        ("She stayed up late watching films.", "She went to bed early."),
        ("She fell asleep at her desk.", "She answered every question with energy."),
    ),
    (
        "The bus was full.",
        ("It was rush hour.", "It was the middle of the night."),
        ("Some passengers had to stand.", "Every passenger had two seats."),
    ),
    (
        "The old man used a walking stick.",
        ("His knees were weak.", "His shoes were new."),
        ("He walked more steadily.", "He ran a marathon."),
    ),
    (
        "The woman sold her car.",
        ("She moved to a city with good trains.", "She loved driving to work every day."),
        ("She took the train to work.", "She drove to work every day."),
    ),
    (
        "The sky was dark at noon.",
        ("Heavy storm clouds covered the sun.", "The sun was shining brightly."),
        ("People turned on their lights.", "People put on sunscreen."),
    ),
    (
        "The boy's shoes were too small.",
        ("His feet had grown.", "His feet had shrunk."),
        ("His parents bought him new ones.", "His parents bought him smaller ones."),
    ),
    (
        "The letter was returned to the sender.",
        ("The address was wrong.", "The stamp was pretty."),
        ("The sender checked the address.", "The sender got a reply."),
    ),
    (
        "The paint on the wall was still wet.",
        ("The wall had been painted an hour ago.", "The wall had been painted last year."),
        ("The man left a fingerprint in it.", "The man hung a heavy picture on it."),
    ),
    (
        "The ice cubes melted.",
        ("They were left on the kitchen counter.", "They were kept in the freezer."),
        ("There was a puddle of water.", "There were more ice cubes."),
    ),
    (
        "The dog was muddy.",
        ("It had played in the wet field.", "It had slept on its bed."),
        ("Its owner gave it a bath.", "Its owner let it sleep on the white sofa."),
    ),
    (
        "The woman called the fire brigade.",
        ("She saw smoke coming from her neighbour's house.", "She saw a rainbow."),
        ("Fire engines arrived.", "An ice cream van arrived."),
    ),
    (
        "The boy won the race.",
        ("He had trained every day.", "He had stopped running halfway."),
        ("He received a medal.", "He came last."),
    ),
    (
        "The museum was closed.",
        ("It was the one day of the week it does not open.", "It had many visitors inside."),
        ("The tourists went to a cafe instead.", "The tourists looked at the paintings inside."),
    ),
    (
        "The man wore earplugs.",
        ("His neighbour was playing loud music.", "His room was silent."),
        ("He fell asleep.", "He heard every sound clearly."),
    ),
    (
        "The woman's plants grew quickly.",
        ("She placed them in a sunny window.", "She kept them in a dark cupboard."),
        ("She had to move them to bigger pots.", "She had to move them to smaller pots."),
    ),
    (
        "The boy's homework was wet.",
        ("He spilled juice on it.", "He kept it in a folder."),
        ("The ink ran.", "The paper caught fire."),
    ),
    (
        "The fridge was empty.",
        ("Nobody had gone shopping for a week.", "The family had just gone shopping."),
        ("The family ordered a pizza.", "The family cooked a big meal from the fridge."),
    ),
    (
        "The man's hands were shaking.",
        ("He was nervous about his speech.", "He was relaxed on the sofa."),
        ("He dropped his notes.", "He wrote very neatly."),
    ),
    (
        "The girl got lost in the forest.",
        ("She left the path.", "She followed the signs."),
        ("She called for help.", "She arrived home early."),
    ),
    (
        "The cyclist wore a helmet.",
        ("She wanted to protect her head.", "She wanted to keep her feet warm."),
        ("She was not hurt when she fell.", "She hurt her head when she fell."),
    ),
    (
        "The students went outside.",
        ("The fire alarm rang.", "The teacher started the lesson."),
        ("The classroom was empty.", "The classroom was full."),
    ),
    (
        "The apples fell from the tree.",
        ("They were ripe.", "They were still small and green."),
        ("The farmer collected them.", "The farmer watched them grow on the branches."),
    ),
    (
        "The baby slept through the night.",
        ("She was very tired from playing.", "She drank a cup of coffee."),
        ("Her parents woke up rested.", "Her parents were awake all night."),
    ),
    ("The man's voice echoed.", ("He shouted in a large empty hall.", "He whispered in a small room."), None),
    (
        "The jar would not open.",
        ("The lid was stuck.", "The jar was full of jam."),
        ("The woman asked for help.", "The woman ate the jam."),
    ),
    (
        "The woman's suitcase was heavy.",
        ("She packed many books.", "She packed only a scarf."),
        ("She asked someone to help her lift it.", "She carried it with one finger."),
    ),
    (
        "The boy's nose was bleeding.",
        ("A ball hit his face.", "He ate a sandwich."),
        ("He held a tissue to it.", "He put on a hat."),
    ),
    (
        "The train stopped suddenly.",
        ("A tree had fallen on the track.", "The train was painted red."),
        ("The passengers were thrown forward.", "The passengers arrived early."),
    ),
    (
        "The woman smiled.",
        ("She received good news.", "She received a big bill."),
        ("Her friend smiled back.", "Her friend looked frightened."),
    ),
    (
        "The grass grew very long.",
        ("Nobody mowed it all summer.", "It was mowed every week."),
        ("It was hard to walk through.", "It looked short and neat."),
    ),
    (
        "The man turned on the lamp.",
        ("It was getting dark.", "It was a sunny afternoon."),
        ("He could read his book.", "He could not see the page."),
    ),
    (
        "The boy's shirt was stained.",
        ("He spilled tomato sauce on it.", "He hung it in the wardrobe."),
        ("His mother washed it.", "His mother framed it."),
    ),
    (
        "The town lost power.",
        ("A storm knocked down the power lines.", "A new shop opened."),
        ("The traffic lights stopped working.", "The street lights shone brighter."),
    ),
    (
        "The woman stayed home from work.",
        ("She had the flu.", "She had a new car."),
        ("Her colleague did her tasks.", "She led a meeting in the office."),
    ),
    (
        "The hikers put up a tent.",
        ("It was getting dark.", "They had just woken up in a hotel."),
        ("They slept inside it.", "They drove home."),
    ),
    (
        "The girl's phone was stolen.",
        ("She left it on a cafe table.", "She kept it locked at home."),
        ("She reported it to the police.", "She called her friend on it."),
    ),
    (
        "The bakery smelled wonderful.",
        ("Fresh bread was in the oven.", "The floor had just been cleaned."),
        ("People came inside to buy bread.", "People held their noses."),
    ),
    (
        "The man's trousers were too long.",
        ("He bought the wrong size.", "He had a haircut."),
        ("He had them shortened.", "He had them made longer."),
    ),
    (
        "The children's faces were covered in chocolate.",
        ("They had eaten chocolate cake.", "They had eaten apples."),
        ("Their mother wiped their faces.", "Their mother gave them a haircut."),
    ),
    (
        "The woman's feet hurt.",
        ("She walked all day in new shoes.", "She sat all day on the sofa."),
        ("She soaked them in warm water.", "She went for a long run."),
    ),
    (
        "The boat sank.",
        ("It had a hole in the bottom.", "It had a new flag."),
        ("The sailors swam to the shore.", "The sailors sailed on."),
    ),
    ("The man forgot his wife's birthday.", None, ("She was upset with him.", "She thanked him.")),
    (
        "The students cheered.",
        ("The teacher cancelled the test.", "The teacher gave them extra homework."),
        None,
    ),
    (
        "The cookie jar was empty.",
        ("The children had eaten all the cookies.", "The children had baked more cookies."),
        None,
    ),
    (
        "The man put on his glasses.",
        ("He wanted to read the small print.", "He wanted to go to sleep."),
        ("He could read clearly.", "He could not see anything."),
    ),
    (
        "The girl drank hot chocolate.",
        ("She came in from the snow.", "She came in from the hot beach."),
        ("She felt warm.", "She felt cold."),
    ),
    ("The alarm clock rang.", None, ("The man woke up.", "The man fell asleep.")),
    (
        "The writer could not think of anything to write.",
        None,
        ("She went for a walk to clear her head.", "She wrote ten pages quickly."),
    ),
    (
        "The roof leaked.",
        ("A tile was missing.", "The roof had just been built."),
        ("Water dripped into the kitchen.", "The kitchen stayed dry."),
    ),
    (
        "The puppy chewed the shoe.",
        ("Its teeth were growing.", "It was asleep."),
        ("The shoe was ruined.", "The shoe looked brand new."),
    ),
    (
        "The athlete drank a lot of water.",
        ("She had just finished a long race.", "She had just woken from a nap."),
        ("She felt refreshed.", "She felt more thirsty."),
    ),
    (
        "The woman bought a birthday cake.",
        ("It was her son's birthday.", "It was an ordinary Tuesday."),
        ("The family sang happy birthday.", "The family went to work."),
    ),
    (
        "The oven was hot.",
        ("The woman had just baked bread.", "The woman had not used it for weeks."),
        ("The man burned his hand on the door.", "The man put ice cream inside it."),
    ),
    (
        "The farmer's crops failed.",
        ("There was no rain all summer.", "There was plenty of rain and sun."),
        ("He had little to sell at the market.", "He had more food than ever."),
    ),
    (
        "The man's dog ran away.",
        ("He left the gate open.", "He closed the gate."),
        ("He put up posters in the street.", "He walked the dog in the park."),
    ),
    (
        "The boy got a haircut.",
        ("His hair was getting too long.", "His hair was already very short."),
        ("His head felt lighter.", "His hair looked longer."),
    ),
    (
        "The woman was late for the meeting.",
        ("She got stuck in traffic.", "She left home early."),
        ("She apologised to her boss.", "She was the first to arrive."),
    ),
    ("The chocolate melted in the car.", ("It was a hot day.", "It was a snowy day."), None),
    ("The man's tea was too hot.", None, ("He waited for it to cool.", "He added hot water.")),
    ("The cat purred.", ("Its owner stroked it.", "Its owner shouted at it."), None),
    ("The woman's flowers wilted.", ("She forgot to water them.", "She watered them every day."), None),
    (
        "The boy washed the car.",
        ("It was covered in mud.", "It was already clean."),
        ("The car shone.", "The car was dirtier."),
    ),
    ("The street was flooded.", None, ("Cars could not drive through.", "Cars drove faster.")),
    (
        "The girl put on a raincoat.",
        ("Dark clouds were in the sky.", "The sky was clear and sunny."),
        ("She stayed dry.", "She got wet."),
    ),
    (
        "The teacher raised her voice.",
        ("The class was very noisy.", "The class was silent."),
        ("The students stopped talking.", "The students talked louder."),
    ),
    (
        "The man stood in the shade.",
        ("The sun was very hot.", "It was a cold winter night."),
        ("He felt cooler.", "He got a sunburn."),
    ),
    (
        "The children planted seeds.",
        None,
        ("Small plants grew a few weeks later.", "Tall trees grew the next morning."),
    ),
    (
        "The woman turned off the television.",
        ("She wanted to go to sleep.", "She wanted to watch the news."),
        ("The room became quiet.", "The room became louder."),
    ),
    ("The man fixed the leaking tap.", None, ("The dripping stopped.", "The sink overflowed.")),
    (
        "The pizza arrived cold.",
        ("The delivery took two hours.", "The delivery took five minutes."),
        ("The family heated it in the oven.", "The family burned their mouths on it."),
    ),
    (
        "The student forgot her pencil.",
        None,
        ("She borrowed one from a friend.", "She sharpened it before the test."),
    ),
    ("The children wore costumes.", ("It was Halloween.", "It was a normal school day."), None),
    (
        "The man's watch stopped.",
        ("Its battery was dead.", "It was made of silver."),
        ("He did not know the time.", "He knew the exact time."),
    ),
    ("The woman covered her ears.", ("A loud siren went past.", "A soft song was playing."), None),
    (
        "The lamp fell over.",
        ("The dog ran into it.", "The lamp was turned on."),
        ("The bulb broke.", "The bulb became brighter."),
    ),
]

COPA_ITEMS += [
    (
        "The woman's glasses fogged up.",
        ("She walked from the cold street into a warm cafe.", "She was reading a book at home."),
        ("She wiped them with a cloth.", "She could see more clearly."),
    ),
    (
        "The man got a parking ticket.",
        ("He parked in a no-parking zone.", "He washed his car."),
        ("He paid the fine.", "He got his money back."),
    ),
    (
        "The candle went out.",
        ("A gust of wind blew through the window.", "Someone lit another candle nearby."),
        ("The room became dark.", "The room became brighter."),
    ),
    (
        "The girl's teeth were chattering.",
        ("She was very cold.", "She was eating soup."),
        ("Her mother wrapped her in a blanket.", "Her mother opened the freezer."),
    ),
    (
        "The toddler fell asleep in the car.",
        ("He was tired after a long day at the zoo.", "He had just woken from a long nap."),
        ("His father carried him to bed.", "His father took him to a party."),
    ),
    (
        "The woman's bike was stolen.",
        ("She forgot to lock it.", "She kept it in her locked garage."),
        ("She walked to work.", "She rode it to work."),
    ),
    (
        "The crowd ran for shelter.",
        ("It started to pour with rain.", "The sun came out."),
        ("The square was empty.", "The square was packed with people."),
    ),
    (
        "The man's hands were covered in paint.",
        ("He had been painting the fence.", "He had been reading a book."),
        ("He washed them with soap.", "He put on white gloves."),
    ),
    (
        "The students took off their jackets.",
        ("The classroom was hot.", "The classroom was freezing."),
        ("They hung them on their chairs.", "They shivered with cold."),
    ),
    (
        "The man's stomach growled.",
        ("He had not eaten all day.", "He had just eaten a big meal."),
        ("He made himself a sandwich.", "He skipped dinner."),
    ),
    (
        "The girl missed the ball.",
        ("She was looking the other way.", "She was watching the ball closely."),
        ("Her team lost the point.", "Her team won the point."),
    ),
    (
        "The pen ran out of ink.",
        ("It had been used every day for months.", "It was brand new."),
        ("The student borrowed another pen.", "The student kept writing with it."),
    ),
    (
        "The kitchen floor was sticky.",
        ("Someone had spilled honey.", "Someone had just mopped it."),
        ("The man cleaned it with hot water.", "The man walked on it barefoot happily."),
    ),
    (
        "The boy's ice lolly fell on the ground.",
        ("He tripped over a stone.", "He held it tightly."),
        ("He threw it in the bin.", "He put it back in the freezer."),
    ),
]

COPA_OPTIONS = [" 1", " 2"]
COPA_QUESTION = {"cause": "What was the cause?", "effect": "What happened as a result?"}
# item targets for test/dev (filled first, whole premises); the rest is calib
COPA_TARGET = {"test": 124, "dev": 62}


def copa_prompt(premise: str, question: str, opt1: str, opt2: str) -> str:
    return (
        f"Premise: {premise}\n{COPA_QUESTION[question]}\nOption 1: {opt1}\nOption 2: {opt2}\nAnswer: Option"
    )


def make_mc_copa() -> list[dict]:
    rng = rng_for("mc_copa")
    premises = list(COPA_ITEMS)
    rng.shuffle(premises)
    # greedy: fill test, then dev, up to their item targets; the rest is calib
    by_split = {"test": [], "dev": [], "calib": []}
    counts = {"test": 0, "dev": 0, "calib": 0}
    for item in premises:
        n_q = (item[1] is not None) + (item[2] is not None)
        split = next(s for s in ("test", "dev", "calib") if s == "calib" or counts[s] < COPA_TARGET[s])
        by_split[split].append(item)
        counts[split] += n_q
    out = []
    for split in MC_SPLITS:
        qs = []
        for premise, cause, effect in by_split[split]:
            if cause is not None:
                qs.append((premise, "cause", cause))
            if effect is not None:
                qs.append((premise, "effect", effect))
        rng.shuffle(qs)
        answers = balanced_answers(len(qs), rng)
        for i, ((premise, qtype, (right, wrong)), ans) in enumerate(zip(qs, answers)):
            o1, o2 = (right, wrong) if ans == 0 else (wrong, right)
            out.append(
                {
                    "id": f"copa-{split}-{i:04d}",
                    "split": split,
                    "prompt": copa_prompt(premise, qtype, o1, o2),
                    "options": list(COPA_OPTIONS),
                    "answer": ans,
                }
            )
    return out


# ---------------------------------------------------------------------------
# Country -> capital (shared by mc_facts and fv_country_capital).
# Only countries whose capital is unambiguous and current. Deliberately left
# out: split/disputed capitals (Bolivia, South Africa, Sri Lanka, Benin,
# Cote d'Ivoire, Eswatini, Israel, Yemen, Burundi), planned moves (Indonesia,
# Equatorial Guinea), no official capital (Nauru), partially recognised
# states, and names with unstable spellings (Kiribati, Tonga, Sao Tome).
# ---------------------------------------------------------------------------

COUNTRY_CAPITALS = {
    "europe": [
        ("Albania", "Tirana"),
        ("Andorra", "Andorra la Vella"),
        ("Austria", "Vienna"),
        ("Belarus", "Minsk"),
        ("Belgium", "Brussels"),
        ("Bosnia and Herzegovina", "Sarajevo"),
        ("Bulgaria", "Sofia"),
        ("Croatia", "Zagreb"),
        ("Cyprus", "Nicosia"),
        ("Czech Republic", "Prague"),
        ("Denmark", "Copenhagen"),
        ("Estonia", "Tallinn"),
        ("Finland", "Helsinki"),
        ("France", "Paris"),
        ("Germany", "Berlin"),
        ("Greece", "Athens"),
        ("Hungary", "Budapest"),
        ("Iceland", "Reykjavik"),
        ("Ireland", "Dublin"),
        ("Italy", "Rome"),
        ("Latvia", "Riga"),
        ("Liechtenstein", "Vaduz"),
        ("Lithuania", "Vilnius"),
        ("Luxembourg", "Luxembourg"),
        ("Malta", "Valletta"),
        ("Moldova", "Chisinau"),
        ("Monaco", "Monaco"),
        ("Montenegro", "Podgorica"),
        ("Netherlands", "Amsterdam"),
        ("North Macedonia", "Skopje"),
        ("Norway", "Oslo"),
        ("Poland", "Warsaw"),
        ("Portugal", "Lisbon"),
        ("Romania", "Bucharest"),
        ("Russia", "Moscow"),
        ("San Marino", "San Marino"),
        ("Serbia", "Belgrade"),
        ("Slovakia", "Bratislava"),
        ("Slovenia", "Ljubljana"),
        ("Spain", "Madrid"),
        ("Sweden", "Stockholm"),
        ("Switzerland", "Bern"),
        ("Ukraine", "Kyiv"),
        ("United Kingdom", "London"),
        ("Vatican City", "Vatican City"),
    ],
    "asia": [
        ("Afghanistan", "Kabul"),
        ("Armenia", "Yerevan"),
        ("Azerbaijan", "Baku"),
        ("Bahrain", "Manama"),
        ("Bangladesh", "Dhaka"),
        ("Bhutan", "Thimphu"),
        ("Brunei", "Bandar Seri Begawan"),
        ("Cambodia", "Phnom Penh"),
        ("China", "Beijing"),
        ("Georgia", "Tbilisi"),
        ("India", "New Delhi"),
        ("Iran", "Tehran"),
        ("Iraq", "Baghdad"),
        ("Japan", "Tokyo"),
        ("Jordan", "Amman"),
        ("Kazakhstan", "Astana"),
        ("Kuwait", "Kuwait City"),
        ("Kyrgyzstan", "Bishkek"),
        ("Laos", "Vientiane"),
        ("Lebanon", "Beirut"),
        ("Malaysia", "Kuala Lumpur"),
        ("Maldives", "Malé"),
        ("Mongolia", "Ulaanbaatar"),
        ("Myanmar", "Naypyidaw"),
        ("Nepal", "Kathmandu"),
        ("North Korea", "Pyongyang"),
        ("Oman", "Muscat"),
        ("Pakistan", "Islamabad"),
        ("Philippines", "Manila"),
        ("Qatar", "Doha"),
        ("Saudi Arabia", "Riyadh"),
        ("Singapore", "Singapore"),
        ("South Korea", "Seoul"),
        ("Syria", "Damascus"),
        ("Tajikistan", "Dushanbe"),
        ("Thailand", "Bangkok"),
        ("Timor-Leste", "Dili"),
        ("Turkey", "Ankara"),
        ("Turkmenistan", "Ashgabat"),
        ("United Arab Emirates", "Abu Dhabi"),
        ("Uzbekistan", "Tashkent"),
        ("Vietnam", "Hanoi"),
    ],
    "africa": [
        ("Algeria", "Algiers"),
        ("Angola", "Luanda"),
        ("Botswana", "Gaborone"),
        ("Burkina Faso", "Ouagadougou"),
        ("Cameroon", "Yaoundé"),
        ("Cape Verde", "Praia"),
        ("Central African Republic", "Bangui"),
        ("Chad", "N'Djamena"),
        ("Comoros", "Moroni"),
        ("Democratic Republic of the Congo", "Kinshasa"),
        ("Republic of the Congo", "Brazzaville"),
        ("Djibouti", "Djibouti"),
        ("Egypt", "Cairo"),
        ("Eritrea", "Asmara"),
        ("Ethiopia", "Addis Ababa"),
        ("Gabon", "Libreville"),
        ("Gambia", "Banjul"),
        ("Ghana", "Accra"),
        ("Guinea", "Conakry"),
        ("Guinea-Bissau", "Bissau"),
        ("Kenya", "Nairobi"),
        ("Lesotho", "Maseru"),
        ("Liberia", "Monrovia"),
        ("Libya", "Tripoli"),
        ("Madagascar", "Antananarivo"),
        ("Malawi", "Lilongwe"),
        ("Mali", "Bamako"),
        ("Mauritania", "Nouakchott"),
        ("Mauritius", "Port Louis"),
        ("Morocco", "Rabat"),
        ("Mozambique", "Maputo"),
        ("Namibia", "Windhoek"),
        ("Niger", "Niamey"),
        ("Nigeria", "Abuja"),
        ("Rwanda", "Kigali"),
        ("Senegal", "Dakar"),
        ("Seychelles", "Victoria"),
        ("Sierra Leone", "Freetown"),
        ("Somalia", "Mogadishu"),
        ("South Sudan", "Juba"),
        ("Sudan", "Khartoum"),
        ("Tanzania", "Dodoma"),
        ("Togo", "Lomé"),
        ("Tunisia", "Tunis"),
        ("Uganda", "Kampala"),
        ("Zambia", "Lusaka"),
        ("Zimbabwe", "Harare"),
        ("São Tomé and Príncipe", "São Tomé"),
    ],
    "americas": [
        ("Argentina", "Buenos Aires"),
        ("Bahamas", "Nassau"),
        ("Barbados", "Bridgetown"),
        ("Belize", "Belmopan"),
        ("Brazil", "Brasília"),
        ("Canada", "Ottawa"),
        ("Chile", "Santiago"),
        ("Colombia", "Bogotá"),
        ("Costa Rica", "San José"),
        ("Cuba", "Havana"),
        ("Dominica", "Roseau"),
        ("Dominican Republic", "Santo Domingo"),
        ("Ecuador", "Quito"),
        ("El Salvador", "San Salvador"),
        ("Guatemala", "Guatemala City"),
        ("Guyana", "Georgetown"),
        ("Haiti", "Port-au-Prince"),
        ("Honduras", "Tegucigalpa"),
        ("Jamaica", "Kingston"),
        ("Mexico", "Mexico City"),
        ("Nicaragua", "Managua"),
        ("Panama", "Panama City"),
        ("Paraguay", "Asunción"),
        ("Peru", "Lima"),
        ("Saint Kitts and Nevis", "Basseterre"),
        ("Saint Lucia", "Castries"),
        ("Saint Vincent and the Grenadines", "Kingstown"),
        ("Suriname", "Paramaribo"),
        ("Trinidad and Tobago", "Port of Spain"),
        ("United States", "Washington, D.C."),
        ("Uruguay", "Montevideo"),
        ("Venezuela", "Caracas"),
        ("Antigua and Barbuda", "St. John's"),
        ("Grenada", "St. George's"),
    ],
    "oceania": [
        ("Australia", "Canberra"),
        ("Fiji", "Suva"),
        ("Marshall Islands", "Majuro"),
        ("Micronesia", "Palikir"),
        ("New Zealand", "Wellington"),
        ("Palau", "Ngerulmud"),
        ("Papua New Guinea", "Port Moresby"),
        ("Samoa", "Apia"),
        ("Solomon Islands", "Honiara"),
        ("Tuvalu", "Funafuti"),
        ("Vanuatu", "Port Vila"),
    ],
}
# country names that take "the" inside a sentence
COUNTRIES_WITH_THE = {
    "Bahamas",
    "Central African Republic",
    "Czech Republic",
    "Democratic Republic of the Congo",
    "Dominican Republic",
    "Gambia",
    "Maldives",
    "Marshall Islands",
    "Netherlands",
    "Philippines",
    "Republic of the Congo",
    "Solomon Islands",
    "United Arab Emirates",
    "United Kingdom",
    "United States",
}


def country_in_sentence(country: str) -> str:
    return f"the {country}" if country in COUNTRIES_WITH_THE else country


# ---------------------------------------------------------------------------
# 3c. mc_facts.jsonl -- (question, correct, plausible-but-wrong), by category.
# Plus generated capital and small-number arithmetic questions.
# ---------------------------------------------------------------------------

FACTS = {
    "animals": [
        ('Which animal says "moo"?', "cow", "dog"),
        ("Which big cat has a mane?", "lion", "tiger"),
        ("How many legs does a spider have?", "eight", "six"),
        ("How many legs does an insect have?", "six", "eight"),
        ("What do bees make?", "honey", "milk"),
        ("What is the largest mammal in the world?", "the blue whale", "the elephant"),
        ("Which animal has a very long neck and eats leaves from tall trees?", "giraffe", "zebra"),
        ("What is a baby dog called?", "puppy", "kitten"),
        ("What is a baby cat called?", "kitten", "puppy"),
        ("What is a baby cow called?", "calf", "lamb"),
        ("What is a baby sheep called?", "lamb", "foal"),
        ("What is a baby horse called?", "foal", "calf"),
        ("What is a baby bear called?", "cub", "foal"),
        ("What is a young kangaroo called?", "joey", "cub"),
        ("Which lizard is famous for changing its colour?", "chameleon", "iguana"),
        ("What do caterpillars turn into?", "butterflies", "spiders"),
        ("Which animal carries its shell on its back and moves very slowly?", "snail", "rabbit"),
        ("Which bird cannot fly and lives in Antarctica?", "penguin", "eagle"),
        ("Which animal has black and white stripes?", "zebra", "leopard"),
        ("Which animal has a trunk?", "elephant", "horse"),
        ("What is the fastest land animal?", "cheetah", "horse"),
        ("Which animal hops and carries its baby in a pouch?", "kangaroo", "rabbit"),
        ("What does a frog start its life as?", "tadpole", "caterpillar"),
        ("How many legs does a dog have?", "four", "six"),
        ("How many legs does a bird have?", "two", "four"),
        ("Which animal builds dams in rivers?", "beaver", "squirrel"),
        ("Which animal sleeps hanging upside down?", "bat", "owl"),
        ("Which sea animal has eight arms?", "octopus", "crab"),
        ("What do giant pandas mainly eat?", "bamboo", "fish"),
        ('Which animal says "quack"?', "duck", "cat"),
        ("Which animal gives us wool?", "sheep", "pig"),
        ("Which bird lays the eggs that people most often eat?", "chicken", "parrot"),
        ("Is a whale a mammal or a fish?", "mammal", "fish"),
        ("Is a shark a fish or a mammal?", "fish", "mammal"),
        ("What colour is a flamingo?", "pink", "blue"),
        ("What is a group of wolves called?", "pack", "flock"),
        ("Which animal has a hump and lives in the desert?", "camel", "horse"),
        ("What do spiders spin?", "webs", "nests"),
        ("What is the largest bird in the world?", "ostrich", "eagle"),
        ("What is a male chicken called?", "rooster", "hen"),
        ("What do koalas mainly eat?", "eucalyptus leaves", "bamboo"),
        ("How many humps does a dromedary camel have?", "one", "two"),
        ("What is the largest land animal?", "elephant", "rhinoceros"),
        ("What do we call animals that eat only plants?", "herbivores", "carnivores"),
        ("What do we call animals that eat only meat?", "carnivores", "herbivores"),
    ],
    "colours": [
        ("What colour is the sky on a clear day?", "blue", "green"),
        ("What colour is grass?", "green", "purple"),
        ("What colour is fresh snow?", "white", "black"),
        ("What colour is a ripe banana?", "yellow", "blue"),
        ("What colour is blood?", "red", "green"),
        ("What colour do you get by mixing blue and yellow paint?", "green", "orange"),
        ("What colour do you get by mixing red and white paint?", "pink", "green"),
        ("What colour do you get by mixing red and yellow paint?", "orange", "purple"),
        ("What colour do you get by mixing red and blue paint?", "purple", "green"),
        ("What colour is coal?", "black", "white"),
        ("What colour is a ripe tomato?", "red", "blue"),
        ("What colour are most leaves in summer?", "green", "blue"),
        ("What colour is a stop sign in most countries?", "red", "green"),
        ("What colour is milk?", "white", "green"),
        ("How many colours are there in a rainbow?", "seven", "five"),
        ("What colour is a lemon?", "yellow", "purple"),
        ("What colour is a crow?", "black", "yellow"),
        ("At a traffic light, which colour means go?", "green", "red"),
        ("What colour are the clouds before a heavy storm?", "dark grey", "bright yellow"),
        ("What colour is a polar bear's fur?", "white", "brown"),
    ],
    "science": [
        ("Which gas do humans need to breathe to stay alive?", "oxygen", "helium"),
        ("Which gas do plants take in from the air to make food?", "carbon dioxide", "helium"),
        ("At what temperature in degrees Celsius does water freeze?", "0", "100"),
        ("At what temperature in degrees Celsius does water boil at sea level?", "100", "60"),
        ("At what temperature in degrees Fahrenheit does water freeze?", "32", "0"),
        ("What is the closest star to the Earth?", "the Sun", "the North Star"),
        ("Which planet do we live on?", "Earth", "Mars"),
        ("Which planet is known as the Red Planet?", "Mars", "Venus"),
        ("Which planet is the largest in our solar system?", "Jupiter", "Mars"),
        ("Which planet is closest to the Sun?", "Mercury", "Neptune"),
        ("Which planet is the hottest in our solar system?", "Venus", "Mercury"),
        ("Which planet is famous for its large rings?", "Saturn", "Mercury"),
        ("What is the chemical formula for water?", "H2O", "CO2"),
        ("What is the chemical symbol for gold?", "Au", "Ag"),
        ("What is the chemical symbol for oxygen?", "O", "H"),
        ("What is the chemical symbol for sodium?", "Na", "S"),
        ("Which force pulls objects toward the ground?", "gravity", "magnetism"),
        ("How many planets are there in our solar system?", "eight", "ten"),
        ("What do we call frozen water?", "ice", "steam"),
        ("What do we call water when it boils and becomes a gas?", "steam", "ice"),
        ("Which organ pumps blood around the body?", "the heart", "the liver"),
        ("Which organ do we think with?", "the brain", "the stomach"),
        ("Which organs do we use to breathe?", "the lungs", "the kidneys"),
        ("How many hearts does a human have?", "one", "two"),
        ("Which part of a plant takes in water from the soil?", "the roots", "the flowers"),
        ("What is the hardest natural substance?", "diamond", "gold"),
        ("Which metal is liquid at room temperature?", "mercury", "iron"),
        ("What does a thermometer measure?", "temperature", "weight"),
        ("Which direction does a compass needle point to?", "north", "east"),
        ("Which gas makes up most of the air we breathe?", "nitrogen", "oxygen"),
        ("What do bees collect from flowers to make honey?", "nectar", "leaves"),
        ("Which sense do we use our ears for?", "hearing", "smell"),
        ("Which sense do we use our nose for?", "smell", "hearing"),
        ("How many senses do humans traditionally have?", "five", "three"),
        ("What does the Moon travel around?", "the Earth", "Mars"),
        ("What does the Earth travel around?", "the Sun", "the Moon"),
        ("How long does it take the Earth to go around the Sun?", "one year", "one day"),
        ("What is the largest organ of the human body?", "the skin", "the liver"),
        ("What is the centre of an atom called?", "the nucleus", "the electron"),
        ("What is the Earth's natural satellite?", "the Moon", "the Sun"),
        ("Which gas do plants give off?", "oxygen", "helium"),
        ("Which vitamin does our skin make from sunlight?", "vitamin D", "vitamin C"),
        ("How many teeth does an adult human usually have?", "32", "20"),
        ("What is the coloured part of the eye called?", "the iris", "the pupil"),
        ("What is the study of living things called?", "biology", "geology"),
        ("What do we call a scientist who studies rocks?", "a geologist", "a biologist"),
        ("What do we call a scientist who studies stars and planets?", "an astronomer", "a geologist"),
        ("What is the smallest prime number?", "2", "1"),
        ("What do we call soft white frozen flakes that fall from the sky?", "snow", "hail"),
    ],
    "time_and_numbers": [
        ("How many hours are there in a day?", "24", "12"),
        ("How many days are there in a week?", "seven", "five"),
        ("How many months are there in a year?", "twelve", "ten"),
        ("How many minutes are there in an hour?", "60", "100"),
        ("How many seconds are there in a minute?", "60", "100"),
        ("How many days are there in a leap year?", "366", "365"),
        ("How many days are there in a normal year?", "365", "360"),
        ("How many weeks are there in a year?", "52", "48"),
        ("How many years are there in a century?", "100", "50"),
        ("How many years are there in a decade?", "10", "12"),
        ("Which month comes after January?", "February", "March"),
        ("Which day comes after Monday?", "Tuesday", "Thursday"),
        ("Which season comes after winter?", "spring", "autumn"),
        ("What is the first letter of the English alphabet?", "A", "Z"),
        ("How many letters are there in the English alphabet?", "26", "24"),
        ("Which is the shortest month of the year?", "February", "April"),
        ("How many sides does a triangle have?", "three", "four"),
        ("How many sides does a square have?", "four", "five"),
        ("How many sides does a hexagon have?", "six", "eight"),
        ("How many sides does a pentagon have?", "five", "six"),
        ("What is a shape with eight sides called?", "an octagon", "a hexagon"),
        ("How many sides does a rectangle have?", "four", "six"),
        ("Which shape has no corners?", "a circle", "a square"),
        ("How many degrees are there in a right angle?", "90", "180"),
        ("How many zeros are there in one thousand?", "three", "four"),
        ("How many centimetres are there in a metre?", "100", "10"),
        ("How many grams are there in a kilogram?", "1000", "100"),
        ("How many wheels does a bicycle have?", "two", "three"),
        ("How many wheels does a tricycle have?", "three", "two"),
    ],
    "geography": [
        ("What is the largest ocean on Earth?", "the Pacific Ocean", "the Atlantic Ocean"),
        ("What is the largest continent?", "Asia", "Europe"),
        ("On which continent is Egypt?", "Africa", "South America"),
        ("On which continent is Brazil?", "South America", "Africa"),
        ("On which continent is Japan?", "Asia", "Europe"),
        ("On which continent is Canada?", "North America", "Europe"),
        ("On which continent is France?", "Europe", "Asia"),
        ("What is the longest river in Africa?", "the Nile", "the Thames"),
        ("What is the tallest mountain in the world?", "Mount Everest", "Mount Kilimanjaro"),
        ("Which country is the largest by area?", "Russia", "Italy"),
        ("In which country are the pyramids of Giza?", "Egypt", "Peru"),
        ("In which city is the Eiffel Tower?", "Paris", "Rome"),
        ("In which city is the Colosseum?", "Rome", "Athens"),
        ("In which city is Big Ben?", "London", "Berlin"),
        ("In which country is the Great Wall?", "China", "India"),
        ("In which country is the Statue of Liberty?", "the United States", "France"),
        ("What is the largest hot desert in the world?", "the Sahara", "the Gobi"),
        ("Which ocean lies between Europe and North America?", "the Atlantic Ocean", "the Indian Ocean"),
        ("Which country is shaped like a boot?", "Italy", "Spain"),
        ("Which country is famous for kangaroos?", "Australia", "Canada"),
        ("What language is mainly spoken in Brazil?", "Portuguese", "Spanish"),
        ("What language is mainly spoken in Mexico?", "Spanish", "Portuguese"),
        ("What language is mainly spoken in Germany?", "German", "Dutch"),
        ("What language is mainly spoken in Japan?", "Japanese", "Chinese"),
        ("What language is mainly spoken in France?", "French", "Italian"),
        ("What language is mainly spoken in Argentina?", "Spanish", "Portuguese"),
        ("What language is mainly spoken in Australia?", "English", "German"),
        ("What is the currency of Japan?", "the yen", "the euro"),
        ("What is the currency of the United Kingdom?", "the pound", "the euro"),
        ("What is the currency of the United States?", "the dollar", "the euro"),
        ("What currency is used in Germany?", "the euro", "the dollar"),
        ("How many continents are there?", "seven", "nine"),
        ("Which is the coldest continent?", "Antarctica", "Africa"),
        ("On which continent is the Amazon rainforest?", "South America", "Africa"),
        ("Which river flows through London?", "the Thames", "the Seine"),
        ("Which river flows through Paris?", "the Seine", "the Danube"),
        ("In which country is the city of Sydney?", "Australia", "New Zealand"),
        ("In which country is the city of Toronto?", "Canada", "the United States"),
        ("In which country is the city of Mumbai?", "India", "Pakistan"),
        ("In which country is the city of Barcelona?", "Spain", "Portugal"),
        ("In which country is the city of Munich?", "Germany", "Austria"),
        ("In which country is the city of Istanbul?", "Turkey", "Greece"),
        ("In which country is the city of Rio de Janeiro?", "Brazil", "Argentina"),
        ("In which country is the city of Osaka?", "Japan", "China"),
        ("In which country is the city of Chicago?", "the United States", "Canada"),
        ("In which country is the city of Venice?", "Italy", "France"),
        ("In which country is the city of Marseille?", "France", "Spain"),
        ("Which ocean lies to the west of the United States?", "the Pacific Ocean", "the Atlantic Ocean"),
        ("Which mountain range is Mount Everest in?", "the Himalayas", "the Alps"),
        ("What is the largest island in the world?", "Greenland", "Madagascar"),
        ("What is the longest river in South America?", "the Amazon", "the Nile"),
        ("What is the largest country in South America?", "Brazil", "Argentina"),
        ("What is the imaginary line around the middle of the Earth called?", "the equator", "the horizon"),
    ],
    "general": [
        ("Which meal do people usually eat in the morning?", "breakfast", "dinner"),
        ("What do you call a person who flies a plane?", "a pilot", "a chef"),
        ("What do you call a person who treats sick people?", "a doctor", "a lawyer"),
        ("What do you call a person who cooks in a restaurant?", "a chef", "a nurse"),
        ("What do you call a person who teaches at a school?", "a teacher", "a farmer"),
        ("What do you call a person who grows crops?", "a farmer", "a dentist"),
        ("What do you call a person who looks after people's teeth?", "a dentist", "a baker"),
        ("Which instrument has 88 keys?", "the piano", "the guitar"),
        ("How many strings does a standard guitar have?", "six", "four"),
        ("How many players does a football team have on the field?", "eleven", "nine"),
        ("In which sport do players hit a ball over a net with a racket?", "tennis", "football"),
        ("What is a word with the opposite meaning called?", "an antonym", "a synonym"),
        ("Which fruit is wine usually made from?", "grapes", "bananas"),
        ("Which orange vegetable are rabbits said to love?", "carrots", "potatoes"),
        ("What is the main ingredient of guacamole?", "avocado", "cucumber"),
        ("What is bread mainly made from?", "flour", "rice"),
        ("What do teachers traditionally write with on a blackboard?", "chalk", "ink"),
        ('Who wrote "Romeo and Juliet"?', "William Shakespeare", "Charles Dickens"),
        ("Who painted the Mona Lisa?", "Leonardo da Vinci", "Pablo Picasso"),
        ("Who was the first person to walk on the Moon?", "Neil Armstrong", "Buzz Aldrin"),
        ("Who developed the theory of relativity?", "Albert Einstein", "Isaac Newton"),
        ("Who discovered penicillin?", "Alexander Fleming", "Louis Pasteur"),
        ("Who painted the ceiling of the Sistine Chapel?", "Michelangelo", "Rembrandt"),
        ("Who was the first president of the United States?", "George Washington", "Abraham Lincoln"),
        ("Which company makes the iPhone?", "Apple", "Samsung"),
        ("Which instrument do you play by blowing into it?", "the trumpet", "the drum"),
        ("What is a house made of blocks of snow called?", "an igloo", "a tent"),
        ("Which bird is a symbol of peace?", "the dove", "the crow"),
        ("Which part of the body do we see with?", "the eyes", "the ears"),
    ],
}
N_CAPITAL_QUESTIONS = 80
N_ARITH_PER_OP = 30
FACTS_FRAC = {"test": 0.36, "dev": 0.18}  # rest is calib (per category)


def facts_prompt(question: str) -> str:
    return f"Question: {question}\nAnswer:"


def make_capital_questions(rng: random.Random) -> list[tuple[str, str, str]]:
    pool = [
        (region, c, cap) for region, lst in COUNTRY_CAPITALS.items() for c, cap in lst if c != cap
    ]  # skip city-states named like their capital
    rng.shuffle(pool)
    out = []
    for region, country, cap in pool[:N_CAPITAL_QUESTIONS]:
        others = sorted(k for c, k in COUNTRY_CAPITALS[region] if k != cap and c != k)
        wrong = rng.choice(others)
        out.append((f"What is the capital of {country_in_sentence(country)}?", cap, wrong))
    return out


def make_arith_questions(rng: random.Random) -> list[tuple[str, str, str]]:
    out, seen = [], set()

    def add(q: str, ans: int) -> bool:
        if q in seen:
            return False
        seen.add(q)
        wrong = ans + rng.choice([-2, -1, 1, 2])
        if wrong < 0:
            wrong = ans + rng.choice([1, 2])
        out.append((q, str(ans), str(wrong)))
        return True

    for op in ("plus", "minus", "times"):
        n = 0
        while n < N_ARITH_PER_OP:
            if op == "plus":
                a, b = rng.randint(1, 20), rng.randint(1, 20)
                n += add(f"What is {a} + {b}?", a + b)
            elif op == "minus":
                a = rng.randint(2, 20)
                b = rng.randint(1, a - 1)
                n += add(f"What is {a} - {b}?", a - b)
            else:
                a, b = rng.randint(2, 9), rng.randint(2, 9)
                n += add(f"What is {a} times {b}?", a * b)
    return out


def make_mc_facts() -> list[dict]:
    rng = rng_for("mc_facts")
    cats = {k: list(v) for k, v in FACTS.items()}
    cats["capitals"] = make_capital_questions(rng)
    arith = make_arith_questions(rng)
    cats["arithmetic"] = arith
    by_split: dict[str, list] = {s: [] for s in MC_SPLITS}
    for name in sorted(cats):
        items = cats[name]
        rng.shuffle(items)
        n_test = round(len(items) * FACTS_FRAC["test"])
        n_dev = round(len(items) * FACTS_FRAC["dev"])
        by_split["test"] += items[:n_test]
        by_split["dev"] += items[n_test : n_test + n_dev]
        by_split["calib"] += items[n_test + n_dev :]
    out = []
    for split in MC_SPLITS:
        items = by_split[split]
        rng.shuffle(items)
        answers = balanced_answers(len(items), rng)
        for i, ((q, right, wrong), ans) in enumerate(zip(items, answers)):
            opts = [f" {right}", f" {wrong}"] if ans == 0 else [f" {wrong}", f" {right}"]
            out.append(
                {
                    "id": f"facts-{split}-{i:04d}",
                    "split": split,
                    "prompt": facts_prompt(q),
                    "options": opts,
                    "answer": ans,
                }
            )
    return out


# ---------------------------------------------------------------------------
# 4. function-vector tasks
# ---------------------------------------------------------------------------

# (word, standard antonym). Each word appears as an input once; no pair is
# present in both directions. Direction chosen so the expected output is the
# most standard answer.
ANTONYMS = [
    # adjectives
    ("hot", "cold"),
    ("big", "small"),
    ("fast", "slow"),
    ("happy", "sad"),
    ("tall", "short"),
    ("long", "short"),
    ("young", "old"),
    ("new", "old"),
    ("wet", "dry"),
    ("dark", "light"),
    ("heavy", "light"),
    ("rich", "poor"),
    ("strong", "weak"),
    ("difficult", "easy"),
    ("clean", "dirty"),
    ("full", "empty"),
    ("early", "late"),
    ("true", "false"),
    ("good", "bad"),
    ("wrong", "right"),
    ("high", "low"),
    ("thick", "thin"),
    ("wide", "narrow"),
    ("deep", "shallow"),
    ("loud", "quiet"),
    ("smooth", "rough"),
    ("soft", "hard"),
    ("cheap", "expensive"),
    ("safe", "dangerous"),
    ("alive", "dead"),
    ("brave", "cowardly"),
    ("beautiful", "ugly"),
    ("near", "far"),
    ("asleep", "awake"),
    ("male", "female"),
    ("first", "last"),
    ("interior", "exterior"),
    ("inner", "outer"),
    ("upper", "lower"),
    ("positive", "negative"),
    ("major", "minor"),
    ("ancient", "modern"),
    ("wild", "tame"),
    ("guilty", "innocent"),
    ("natural", "artificial"),
    ("public", "private"),
    ("permanent", "temporary"),
    ("raw", "cooked"),
    ("fat", "thin"),
    ("tight", "loose"),
    ("present", "absent"),
    ("optimistic", "pessimistic"),
    ("active", "passive"),
    ("horizontal", "vertical"),
    ("internal", "external"),
    ("junior", "senior"),
    ("odd", "even"),
    ("wise", "foolish"),
    ("noisy", "quiet"),
    ("polite", "rude"),
    ("solid", "liquid"),
    ("common", "rare"),
    ("sober", "drunk"),
    ("plural", "singular"),
    ("superior", "inferior"),
    ("maximum", "minimum"),
    ("interesting", "boring"),
    ("careful", "careless"),
    ("useful", "useless"),
    ("hopeful", "hopeless"),
    ("harmful", "harmless"),
    ("patient", "impatient"),
    ("comfortable", "uncomfortable"),
    ("fair", "unfair"),
    ("known", "unknown"),
    ("lucky", "unlucky"),
    ("formal", "informal"),
    ("mature", "immature"),
    ("responsible", "irresponsible"),
    ("regular", "irregular"),
    ("relevant", "irrelevant"),
    ("rational", "irrational"),
    ("moral", "immoral"),
    ("logical", "illogical"),
    ("mortal", "immortal"),
    ("complete", "incomplete"),
    ("dependent", "independent"),
    ("direct", "indirect"),
    ("accurate", "inaccurate"),
    ("capable", "incapable"),
    ("convenient", "inconvenient"),
    ("visible", "invisible"),
    ("probable", "improbable"),
    ("possible", "impossible"),
    ("legal", "illegal"),
    ("honest", "dishonest"),
    ("loyal", "disloyal"),
    ("obedient", "disobedient"),
    ("able", "unable"),
    ("likely", "unlikely"),
    ("usual", "unusual"),
    ("necessary", "unnecessary"),
    ("pleasant", "unpleasant"),
    ("certain", "uncertain"),
    ("employed", "unemployed"),
    ("north", "south"),
    ("east", "west"),
    ("left", "right"),
    ("top", "bottom"),
    ("front", "back"),
    ("inside", "outside"),
    ("success", "failure"),
    ("victory", "defeat"),
    ("increase", "decrease"),
    ("minimize", "maximize"),
    ("fortunate", "unfortunate"),
    ("ordinary", "extraordinary"),
    ("valid", "invalid"),
    ("sensitive", "insensitive"),
    ("efficient", "inefficient"),
    ("effective", "ineffective"),
    ("appropriate", "inappropriate"),
    ("finite", "infinite"),
    ("urban", "rural"),
    ("transparent", "opaque"),
    ("concave", "convex"),
    # verbs
    ("love", "hate"),
    ("push", "pull"),
    ("sell", "buy"),
    ("win", "lose"),
    ("forget", "remember"),
    ("laugh", "cry"),
    ("sink", "float"),
    ("come", "go"),
    ("lend", "borrow"),
    ("teach", "learn"),
    ("find", "lose"),
    ("rise", "fall"),
    ("appear", "disappear"),
    ("include", "exclude"),
    ("agree", "disagree"),
    ("like", "dislike"),
    ("whisper", "shout"),
    ("attack", "defend"),
    ("melt", "freeze"),
    ("build", "destroy"),
    ("sit", "stand"),
    ("live", "die"),
    ("pass", "fail"),
    ("import", "export"),
    ("inhale", "exhale"),
    ("depart", "arrive"),
    ("exit", "enter"),
    ("send", "receive"),
    ("ascend", "descend"),
    ("add", "subtract"),
    ("multiply", "divide"),
    ("admit", "deny"),
    ("obey", "disobey"),
    ("approve", "disapprove"),
    ("lock", "unlock"),
    ("tie", "untie"),
    ("pack", "unpack"),
    ("fold", "unfold"),
    ("load", "unload"),
    ("cover", "uncover"),
    ("dress", "undress"),
    ("connect", "disconnect"),
    ("encourage", "discourage"),
    ("reward", "punish"),
    ("raise", "lower"),
    ("advance", "retreat"),
    ("succeed", "fail"),
    ("gain", "lose"),
    ("smile", "frown"),
    ("accept", "reject"),
    ("open", "close"),
    ("begin", "end"),
    ("hire", "fire"),
    ("lengthen", "shorten"),
    ("widen", "narrow"),
    ("strengthen", "weaken"),
    ("tighten", "loosen"),
    ("inflate", "deflate"),
    ("overestimate", "underestimate"),
    # prepositions / adverbs
    ("above", "below"),
    ("before", "after"),
    ("always", "never"),
    ("up", "down"),
    ("under", "over"),
    ("on", "off"),
]

# English -> French (single standard translation, no article, masculine
# singular for adjectives).
EN_FR = [
    # people & family
    ("man", "homme"),
    ("woman", "femme"),
    ("child", "enfant"),
    ("boy", "garçon"),
    ("mother", "mère"),
    ("father", "père"),
    ("brother", "frère"),
    ("sister", "sœur"),
    ("son", "fils"),
    ("daughter", "fille"),
    ("friend", "ami"),
    ("king", "roi"),
    ("queen", "reine"),
    # animals
    ("dog", "chien"),
    ("cat", "chat"),
    ("horse", "cheval"),
    ("cow", "vache"),
    ("pig", "cochon"),
    ("sheep", "mouton"),
    ("bird", "oiseau"),
    ("fish", "poisson"),
    ("mouse", "souris"),
    ("rabbit", "lapin"),
    ("duck", "canard"),
    ("bear", "ours"),
    ("wolf", "loup"),
    ("fox", "renard"),
    ("snake", "serpent"),
    ("frog", "grenouille"),
    ("bee", "abeille"),
    ("butterfly", "papillon"),
    ("spider", "araignée"),
    ("ant", "fourmi"),
    ("elephant", "éléphant"),
    ("monkey", "singe"),
    ("lion", "lion"),
    # food & drink
    ("apple", "pomme"),
    ("pear", "poire"),
    ("lemon", "citron"),
    ("strawberry", "fraise"),
    ("cherry", "cerise"),
    ("banana", "banane"),
    ("carrot", "carotte"),
    ("tomato", "tomate"),
    ("onion", "oignon"),
    ("potato", "pomme de terre"),
    ("cheese", "fromage"),
    ("milk", "lait"),
    ("egg", "œuf"),
    ("butter", "beurre"),
    ("sugar", "sucre"),
    ("salt", "sel"),
    ("meat", "viande"),
    ("rice", "riz"),
    ("soup", "soupe"),
    ("wine", "vin"),
    ("beer", "bière"),
    ("coffee", "café"),
    ("tea", "thé"),
    ("juice", "jus"),
    ("cake", "gâteau"),
    ("bread", "pain"),
    ("water", "eau"),
    ("chicken", "poulet"),
    ("grape", "raisin"),
    # house & objects
    ("house", "maison"),
    ("chair", "chaise"),
    ("table", "table"),
    ("bed", "lit"),
    ("door", "porte"),
    ("window", "fenêtre"),
    ("wall", "mur"),
    ("roof", "toit"),
    ("kitchen", "cuisine"),
    ("garden", "jardin"),
    ("key", "clé"),
    ("knife", "couteau"),
    ("fork", "fourchette"),
    ("spoon", "cuillère"),
    ("plate", "assiette"),
    ("cup", "tasse"),
    ("glass", "verre"),
    ("bottle", "bouteille"),
    ("clock", "horloge"),
    ("watch", "montre"),
    ("phone", "téléphone"),
    ("computer", "ordinateur"),
    ("pen", "stylo"),
    ("paper", "papier"),
    ("letter", "lettre"),
    ("newspaper", "journal"),
    ("bag", "sac"),
    ("book", "livre"),
    ("car", "voiture"),
    ("boat", "bateau"),
    ("plane", "avion"),
    ("train", "train"),
    # clothes & body
    ("shoe", "chaussure"),
    ("hat", "chapeau"),
    ("shirt", "chemise"),
    ("dress", "robe"),
    ("coat", "manteau"),
    ("head", "tête"),
    ("hand", "main"),
    ("foot", "pied"),
    ("eye", "œil"),
    ("ear", "oreille"),
    ("nose", "nez"),
    ("mouth", "bouche"),
    ("tooth", "dent"),
    ("heart", "cœur"),
    ("arm", "bras"),
    ("leg", "jambe"),
    ("finger", "doigt"),
    ("blood", "sang"),
    ("bone", "os"),
    ("skin", "peau"),
    # time & weather
    ("day", "jour"),
    ("night", "nuit"),
    ("morning", "matin"),
    ("evening", "soir"),
    ("week", "semaine"),
    ("month", "mois"),
    ("hour", "heure"),
    ("winter", "hiver"),
    ("summer", "été"),
    ("spring", "printemps"),
    ("autumn", "automne"),
    ("rain", "pluie"),
    ("snow", "neige"),
    ("wind", "vent"),
    ("cloud", "nuage"),
    ("fire", "feu"),
    # nature & places
    ("sun", "soleil"),
    ("moon", "lune"),
    ("star", "étoile"),
    ("sky", "ciel"),
    ("sea", "mer"),
    ("mountain", "montagne"),
    ("tree", "arbre"),
    ("flower", "fleur"),
    ("grass", "herbe"),
    ("leaf", "feuille"),
    ("stone", "pierre"),
    ("sand", "sable"),
    ("lake", "lac"),
    ("beach", "plage"),
    ("island", "île"),
    ("forest", "forêt"),
    ("world", "monde"),
    ("city", "ville"),
    ("street", "rue"),
    ("road", "route"),
    ("bridge", "pont"),
    ("school", "école"),
    ("church", "église"),
    ("castle", "château"),
    ("country", "pays"),
    ("village", "village"),
    ("hospital", "hôpital"),
    ("library", "bibliothèque"),
    ("market", "marché"),
    ("bank", "banque"),
    # abstract
    ("money", "argent"),
    ("gold", "or"),
    ("iron", "fer"),
    ("music", "musique"),
    ("song", "chanson"),
    ("word", "mot"),
    ("name", "nom"),
    ("life", "vie"),
    ("death", "mort"),
    ("war", "guerre"),
    ("peace", "paix"),
    ("language", "langue"),
    # adjectives
    ("big", "grand"),
    ("small", "petit"),
    ("red", "rouge"),
    ("blue", "bleu"),
    ("green", "vert"),
    ("yellow", "jaune"),
    ("black", "noir"),
    ("white", "blanc"),
    ("grey", "gris"),
    ("young", "jeune"),
    ("beautiful", "beau"),
    ("good", "bon"),
    ("bad", "mauvais"),
    ("hot", "chaud"),
    ("cold", "froid"),
    ("happy", "heureux"),
    ("sad", "triste"),
    ("fast", "rapide"),
    ("slow", "lent"),
    ("strong", "fort"),
    ("weak", "faible"),
    ("rich", "riche"),
    ("poor", "pauvre"),
    ("easy", "facile"),
    ("difficult", "difficile"),
    ("full", "plein"),
    ("empty", "vide"),
    ("true", "vrai"),
    ("false", "faux"),
    ("clean", "propre"),
    ("dirty", "sale"),
    ("heavy", "lourd"),
    ("sick", "malade"),
    ("tired", "fatigué"),
    ("dry", "sec"),
    ("round", "rond"),
    ("expensive", "cher"),
    ("first", "premier"),
    ("last", "dernier"),
    # numbers
    ("one", "un"),
    ("two", "deux"),
    ("three", "trois"),
    ("four", "quatre"),
    ("five", "cinq"),
    ("six", "six"),
    ("seven", "sept"),
    ("eight", "huit"),
    ("nine", "neuf"),
    ("ten", "dix"),
    ("eleven", "onze"),
    ("twelve", "douze"),
    ("twenty", "vingt"),
    ("hundred", "cent"),
    ("thousand", "mille"),
    # days and months (French names are lower-case)
    ("Monday", "lundi"),
    ("Tuesday", "mardi"),
    ("Wednesday", "mercredi"),
    ("Thursday", "jeudi"),
    ("Friday", "vendredi"),
    ("Saturday", "samedi"),
    ("Sunday", "dimanche"),
    ("January", "janvier"),
    ("February", "février"),
    ("March", "mars"),
    ("April", "avril"),
    ("May", "mai"),
    ("June", "juin"),
    ("July", "juillet"),
    ("August", "août"),
    ("September", "septembre"),
    ("October", "octobre"),
    ("November", "novembre"),
    ("December", "décembre"),
]

# Extra words for the uppercase task (in addition to the lower-case, purely
# alphabetic inputs of fv_antonym and fv_en_fr).
UPPERCASE_EXTRA = [
    "garden",
    "pencil",
    "window",
    "orange",
    "rocket",
    "silver",
    "planet",
    "jungle",
    "candle",
    "ladder",
    "pocket",
    "basket",
    "doctor",
    "farmer",
    "guitar",
    "tunnel",
    "island",
    "museum",
    "puzzle",
    "yellow",
    "ticket",
    "wallet",
    "pillow",
    "blanket",
    "kitten",
    "monkey",
    "button",
    "marble",
    "rabbit",
    "harbor",
    "engine",
    "forest",
]
N_UPPERCASE = 220

FV_SIZES = {"train": 20, "dev": 40}  # the rest is test


def split_fv(
    name: str, pairs: list[tuple[str, str]], prefix: str, sizes: dict[str, int] = FV_SIZES
) -> list[dict]:
    rng = rng_for(name)
    pairs = list(pairs)
    rng.shuffle(pairs)
    n_tr, n_dev = sizes["train"], sizes["dev"]
    chunks = {"train": pairs[:n_tr], "dev": pairs[n_tr : n_tr + n_dev], "test": pairs[n_tr + n_dev :]}
    out = []
    for split in FV_SPLITS:
        for i, (x, y) in enumerate(chunks[split]):
            out.append({"id": f"{prefix}-{split}-{i:04d}", "split": split, "input": x, "output": y})
    return out


def make_fv_antonym() -> list[dict]:
    return split_fv("fv_antonym", ANTONYMS, "ant")


def make_fv_country_capital() -> list[dict]:
    pairs = [(c, k) for region in COUNTRY_CAPITALS for c, k in COUNTRY_CAPITALS[region]]
    return split_fv("fv_country_capital", pairs, "cap")


def make_fv_en_fr() -> list[dict]:
    return split_fv("fv_en_fr", EN_FR, "enfr")


def make_fv_uppercase() -> list[dict]:
    words = {w for w, _ in ANTONYMS} | {w for w, _ in EN_FR} | set(UPPERCASE_EXTRA)
    words = sorted(w for w in words if w.isascii() and w.isalpha() and w.islower())
    rng = rng_for("fv_uppercase")
    rng.shuffle(words)
    words = sorted(words[:N_UPPERCASE])
    return split_fv("fv_uppercase", [(w, w.upper()) for w in words], "upper")


# ---------------------------------------------------------------------------
# writing + self-check
# ---------------------------------------------------------------------------

BUILDERS = {
    "sentiment_pairs.jsonl": make_sentiment_pairs,
    "neutral_prompts.jsonl": make_neutral_prompts,
    "mc_sentiment.jsonl": make_mc_sentiment,
    "mc_copa.jsonl": make_mc_copa,
    "mc_facts.jsonl": make_mc_facts,
    "fv_antonym.jsonl": make_fv_antonym,
    "fv_country_capital.jsonl": make_fv_country_capital,
    "fv_en_fr.jsonl": make_fv_en_fr,
    "fv_uppercase.jsonl": make_fv_uppercase,
}


def write_jsonl(path: Path, rows: list[dict]) -> None:
    text = "\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n"
    path.write_text(text, encoding="utf-8")


def read_jsonl(path: Path) -> list[dict]:
    raw = path.read_text(encoding="utf-8")
    assert raw.endswith("\n") and not raw.endswith("\n\n"), f"{path}: bad file ending"
    return [json.loads(line) for line in raw.split("\n")[:-1]]


def _nonempty_strings(obj, where: str) -> None:
    if isinstance(obj, str):
        assert obj.strip(), f"{where}: empty string"
    elif isinstance(obj, list):
        for v in obj:
            _nonempty_strings(v, where)
    elif isinstance(obj, dict):
        for v in obj.values():
            _nonempty_strings(v, where)


def check_common(name: str, rows: list[dict]) -> None:
    ids = [r["id"] for r in rows]
    dup = [k for k, v in Counter(ids).items() if v > 1]
    assert not dup, f"{name}: duplicated ids {dup[:5]}"
    for r in rows:
        _nonempty_strings(r, f"{name}:{r.get('id')}")


def check_mc(name: str, rows: list[dict]) -> dict:
    counts = Counter(r["split"] for r in rows)
    for split, n in MC_MIN.items():
        assert counts[split] >= n, f"{name}: {split} has {counts[split]} < {n}"
    assert set(counts) == set(MC_SPLITS), f"{name}: unexpected splits {set(counts)}"
    prompts = [r["prompt"] for r in rows]
    assert len(set(prompts)) == len(prompts), f"{name}: duplicated prompt"
    for r in rows:
        opts = r["options"]
        assert isinstance(opts, list) and len(opts) == 2, f"{name}:{r['id']} options"
        assert len(set(opts)) == 2, f"{name}:{r['id']} identical options"
        assert all(o.startswith(" ") and o.strip() for o in opts), f"{name}:{r['id']} option format"
        assert r["answer"] in (0, 1), f"{name}:{r['id']} answer"
        assert not r["prompt"].endswith((" ", "\n")), f"{name}:{r['id']} prompt ends with space"
    for split in MC_SPLITS:
        sub = [r for r in rows if r["split"] == split]
        frac = sum(r["answer"] == 0 for r in sub) / len(sub)
        assert 0.4 <= frac <= 0.6, f"{name}: {split} answer-0 fraction {frac:.2f}"
    return dict(counts)


def check_fv(name: str, rows: list[dict]) -> dict:
    counts = Counter(r["split"] for r in rows)
    mins = dict(FV_MIN)
    for split, n in mins.items():
        assert counts[split] >= n, f"{name}: {split} has {counts[split]} < {n}"
    inputs = [r["input"] for r in rows]
    assert len(set(inputs)) == len(inputs), f"{name}: duplicated input"
    for r in rows:
        assert r["input"] == r["input"].strip() and r["output"] == r["output"].strip(), (
            f"{name}:{r['id']} leading/trailing whitespace"
        )
    return dict(counts)


def check_all(data: dict[str, list[dict]]) -> dict[str, dict]:
    summary = {}
    for name, rows in data.items():
        check_common(name, rows)
    # sentiment pairs
    sp = data["sentiment_pairs.jsonl"]
    assert len(sp) >= 160
    for r in sp:
        assert r["positive"] != r["negative"]
    all_sents = [r["positive"] for r in sp] + [r["negative"] for r in sp]
    assert len(set(all_sents)) == len(all_sents), "sentiment_pairs: duplicated sentence"
    summary["sentiment_pairs.jsonl"] = {"all": len(sp)}
    # neutral prompts
    npr = data["neutral_prompts.jsonl"]
    assert len(npr) >= 40 and len({r["prompt"] for r in npr}) == len(npr)
    for r in npr:
        words = {w.strip(",.").lower() for w in r["prompt"].split()}
        assert not words & SENTIMENT_WORDS, f"neutral prompt has sentiment word: {r['prompt']}"
    summary["neutral_prompts.jsonl"] = {"all": len(npr)}
    # multiple choice
    for name in ("mc_sentiment.jsonl", "mc_copa.jsonl", "mc_facts.jsonl"):
        summary[name] = check_mc(name, data[name])
    # mc_copa: a premise never appears in two splits
    prem_split: dict[str, set] = {}
    for r in data["mc_copa.jsonl"]:
        prem_split.setdefault(r["prompt"].split("\n")[0], set()).add(r["split"])
    assert all(len(v) == 1 for v in prem_split.values()), "mc_copa: premise in two splits"
    # mc_sentiment: a review predicate never appears in two splits
    subjects = sorted({s for g in REVIEW_GROUPS.values() for s in g["subjects"]}, key=len, reverse=True)
    pred_split: dict[str, set] = {}
    for r in data["mc_sentiment.jsonl"]:
        review = r["prompt"].split('"')[1]
        subj = next(s for s in subjects if review.startswith(s + " "))
        pred_split.setdefault(review[len(subj) + 1 :], set()).add(r["split"])
    assert all(len(v) == 1 for v in pred_split.values()), "mc_sentiment: predicate in two splits"
    # function vectors
    for name in ("fv_antonym.jsonl", "fv_country_capital.jsonl", "fv_en_fr.jsonl", "fv_uppercase.jsonl"):
        summary[name] = check_fv(name, data[name])
    ant = {(r["input"], r["output"]) for r in data["fv_antonym.jsonl"]}
    both = [(a, b) for a, b in ant if (b, a) in ant]
    assert not both, f"fv_antonym: pair in both directions {both[:5]}"
    for r in data["fv_uppercase.jsonl"]:
        assert r["output"] == r["input"].upper() and r["input"].islower()
    return summary


def main(argv: list[str]) -> int:
    check_only = "--check" in argv
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    data = {}
    for fname, builder in BUILDERS.items():
        path = OUT_DIR / fname
        if not check_only:
            rows = builder()
            write_jsonl(path, rows)
        data[fname] = read_jsonl(path)
        if not check_only:
            assert data[fname] == rows, f"{fname}: round-trip mismatch"
    summary = check_all(data)
    for fname, counts in summary.items():
        print(f"{fname:28s} {counts}")
    print("self-check OK")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
