"""Writes steerfast/data/food_prompts.jsonl: open-ended prompts about food vs about anything else.

Hand-written for steerfast's conditional-steering recipe (steerfast/recipes/condition.py):
60 prompts about food, cooking, restaurants or drinks, 60 about other everyday topics, in
the same request styles (describe, review, tell me about ...) so that the topic, not the
phrasing, separates them. Splits (train / dev / test, 24 / 12 / 24 per label) are dealt
with a fixed seed. Run `python scripts/make_food_prompts.py` to regenerate (deterministic).
"""

import json
import random
from pathlib import Path

FOOD = [
    "Write a short review of the pizza place near the station.",
    "Describe the soup you had for lunch today.",
    "Tell me about the bakery that opened on our street.",
    "What did you think of the pasta at the new Italian restaurant?",
    "Describe a bowl of ramen from the noodle bar downtown.",
    "Write two sentences about the chocolate cake at the party.",
    "Tell me how the curry at the Indian restaurant tasted.",
    "Review the burger and fries from the diner on Main Street.",
    "Describe the breakfast buffet at the hotel.",
    "What was the sushi like at the place we tried last night?",
    "Write a short note about the coffee at the corner cafe.",
    "Tell me about the tacos from the food truck.",
    "Describe the salad you ordered at the bistro.",
    "Write a review of the steak at the grill house.",
    "How was the apple pie your grandmother baked?",
    "Describe the smell of fresh bread in the morning.",
    "Tell me about the cheese you bought at the market.",
    "Write a short review of the vegan restaurant in town.",
    "Describe the dumplings from the Chinese takeaway.",
    "What do you think of the school cafeteria lunches?",
    "Write about the strawberries from the farm stand.",
    "Tell me about the wine we had with dinner.",
    "Describe the roast chicken you cooked on Sunday.",
    "Review the ice cream shop by the beach.",
    "Write two sentences about the pancakes at the brunch spot.",
    "Tell me about the spicy noodles from the street stall.",
    "Describe the sandwich you had on the train.",
    "What was the seafood like at the harbour restaurant?",
    "Write a short review of the tea house in the old town.",
    "Describe the cookies your friend baked for you.",
    "Tell me about the meal on the flight home.",
    "Write about the lemonade sold at the fair.",
    "Describe the vegetable stew from the recipe book.",
    "Review the French bakery's croissants.",
    "Tell me about the barbecue at the neighbours' garden party.",
    "Describe the rice dish you tried at the Persian restaurant.",
    "Write a short note about the smoothie from the juice bar.",
    "What did you think of the dessert menu at the wedding?",
    "Describe the lasagna your uncle made.",
    "Tell me about the chips and salsa at the Mexican place.",
    "Write a review of the hot chocolate at the ski lodge.",
    "Describe the fruit salad at the picnic.",
    "Tell me about the oysters at the seafood bar.",
    "Write two sentences about the omelette at the cafe.",
    "Describe the taste of the homemade jam.",
    "Review the kebab shop near the university.",
    "Tell me about the porridge you had this morning.",
    "Describe the cheeseburger from the fast food chain.",
    "Write about the mushroom risotto at the trattoria.",
    "What was the pho like at the Vietnamese restaurant?",
    "Describe the carrot cake at the village fete.",
    "Tell me about the olives and bread served as a starter.",
    "Write a short review of the fish and chips by the pier.",
    "Describe the milkshake from the retro diner.",
    "Tell me about the vegetables from your allotment that you cooked.",
    "Review the set menu at the Japanese restaurant.",
    "Describe the pretzel you bought at the Christmas market.",
    "Write about the lentil soup at the community kitchen.",
    "Tell me about the espresso at the Italian coffee bar.",
    "Describe the birthday dinner your family cooked.",
]
OTHER = [
    "Write a short review of the new phone you bought.",
    "Describe the weather in the city today.",
    "Tell me about the library that opened on our street.",
    "What did you think of the film at the cinema last night?",
    "Describe the train journey to the coast.",
    "Write two sentences about the concert in the park.",
    "Tell me how the job interview went.",
    "Review the hotel room you stayed in.",
    "Describe the view from the top of the hill.",
    "What was the museum like that we visited?",
    "Write a short note about your new running shoes.",
    "Tell me about the football match on Saturday.",
    "Describe the office you work in.",
    "Write a review of the novel you just finished.",
    "How was your first driving lesson?",
    "Describe the sound of rain on the roof.",
    "Tell me about the bicycle you bought at the market.",
    "Write a short review of the gym in town.",
    "Describe the garden behind your house.",
    "What do you think of the school's new timetable?",
    "Write about the walk through the forest.",
    "Tell me about the play we saw at the theatre.",
    "Describe the laptop you use for work.",
    "Review the bookshop by the beach.",
    "Write two sentences about the art exhibition.",
    "Tell me about the bus ride to the airport.",
    "Describe the jacket you bought on sale.",
    "What was the harbour like at sunset?",
    "Write a short review of the music festival.",
    "Describe the painting your friend gave you.",
    "Tell me about the flight home.",
    "Write about the rides at the fair.",
    "Describe the instructions in the furniture manual.",
    "Review the new headphones.",
    "Tell me about the neighbours' new dog.",
    "Describe the apartment you visited last week.",
    "Write a short note about the yoga class.",
    "What did you think of the speeches at the wedding?",
    "Describe the car your uncle bought.",
    "Tell me about the board game we played.",
    "Write a review of the ski slopes at the resort.",
    "Describe the lake where we went swimming.",
    "Tell me about the podcast you listen to.",
    "Write two sentences about the meeting at work.",
    "Describe the feeling of the first snow.",
    "Review the phone repair shop near the university.",
    "Tell me about the exam you took this morning.",
    "Describe the video game you played last night.",
    "Write about the old castle in the hills.",
    "What was the dentist appointment like?",
    "Describe the village fete's dog show.",
    "Tell me about the new bridge over the river.",
    "Write a short review of the cinema by the pier.",
    "Describe the vintage record player.",
    "Tell me about the flowers in your allotment.",
    "Review the online course you signed up for.",
    "Describe the lights at the Christmas market.",
    "Write about the volunteers at the community centre.",
    "Tell me about the history lesson at school.",
    "Describe the birthday party your family threw.",
]
SEED = "steerfast:food_prompts"
SPLITS = ("train",) * 24 + ("dev",) * 12 + ("test",) * 24


def rows():
    out = []
    for label, texts in (("food", FOOD), ("other", OTHER)):
        assert len(texts) == len(SPLITS) == len(set(texts)), label
        order = list(range(len(texts)))
        random.Random(f"{SEED}:{label}").shuffle(order)
        for k, i in enumerate(order):
            out.append(
                {"id": f"food-{label}-{i:02d}", "split": SPLITS[k], "label": label, "prompt": texts[i]}
            )
    return sorted(out, key=lambda r: r["id"])


if __name__ == "__main__":
    path = Path(__file__).resolve().parent.parent / "steerfast" / "data" / "food_prompts.jsonl"
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows()), encoding="utf-8")
    print(f"wrote {path}")
