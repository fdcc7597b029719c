"""looks_like_concern: offer the report button for disclosures, not for policy questions.

The messages are written for these tests in the way staff really type them:
lower case, year groups, platform names, typos, curly apostrophes.
"""

from __future__ import annotations

import pytest

from knowledge.concerns import looks_like_concern

DISCLOSURES = [
    # self-harm and suicide
    "one of my year 9s showed me fresh cuts on her arm and said she's been self harming "
    "since christmas",
    "a boy in my class said he sometimes thinks about killing himself",
    "a student told me she’s been self-harming again",
    # a parent or carer hurting a child
    "a girl in year 4 told me her dad hits her when he has been drinking",
    "Leo came in with a bruise on his cheek and said his mum slapped him",
    "a boy in year 3 said his mum’s boyfriend punched him",
    "A GIRL IN MY CLASS SAID HER DAD HITS HER",
    # a child asked to keep a secret
    "a pupil told me something at break but made me promise not to tell anyone",
    "a child in my class says her uncle told her it's their little secret",
    "she said don’t tell anyone, it’s our secret",
    # an adult sending a child images
    "a year 8 girl says a man she met online keeps sending her pictures of himself and "
    "asking for nudes",
    "a student showed me messages from an adult who sent him explicit photos",
    "a girl told me her boyfriend, who is 19, makes her send him photos of herself",
    # a colleague contacting a pupil privately
    "i think a colleague is messaging a year 10 pupil privately on instagram",
    "I saw the PE teacher texting a girl from year 11 late at night",
    "my colleage keeps messaging a year 9 girl on snapchat",
    "a teaching assistant keeps giving a year 5 girl lifts home and messaging her at weekends",
    "the ta keeps dming a year 6 boy",
    # grooming by someone met in a game
    "a boy in year 7 has been talking to someone he met on fortnite who wants to meet him in town",
    "a pupil says an older lad from roblox keeps giving him gifts and asked him to keep it secret",
    # FGM
    "a girl in year 6 mentioned she is going abroad this summer to be 'cut' like her sister, "
    "I'm worried about FGM",
    # county lines and exploitation
    "one of our year 10 boys has new trainers and cash and keeps going missing, I think he is "
    "involved in county lines",
    "one of my year 11s says older boys make her carry packages to other towns for cash",
    # other harm at home
    "a child in reception said she is scared to go home tonight",
    "a learner disclosed that her stepdad touched her",
    "a child said mummy's boyfriend hurts mummy and she hides under the bed",
    # contact aimed at the speaker, but aggravated
    "a pupil messaged me late at night saying she is scared",
]

POLICY_QUESTIONS = [
    "can I post photos of pupils on the school facebook page?",
    "can I accept a friend request from a parent?",
    "is it ok to connect with colleagues on LinkedIn?",
    "can I use my phone at lunch in the staffroom?",
    "a pupil added me on snapchat, what do i do?",
    "a parent posted lies about me on facebook, what can I do?",
    "can I follow the school's instagram account from my personal account?",
    "am I allowed to mention where I work on my twitter bio?",
    "can I use whatsapp to message other staff about a trip?",
    "who do I ask for permission before posting class photos on the website?",
    "can I set up a class blog for my year 3s?",
    "an ex-pupil who is now 20 wants to add me on facebook, is that ok?",
    "can parents film the nativity play and share it?",
    "what should I do if a parent messages me on facebook about homework?",
    "can I livestream sports day?",
    "is it ok to use my own laptop for school email?",
    "can I play music from youtube in class?",
    "what is the policy on staff using tiktok?",
    "a student followed me on twitter, should I block them?",
    "can i keep in touch with my old students after they leave year 6?",
    "a parent messaged me about the trip",
    "a colleague messaged me about a pupil's reading book",
    "can I message a pupil?",
    "what time does the canteen open?",
]


def test_there_are_enough_cases_each_way() -> None:
    assert len(DISCLOSURES) >= 15
    assert len(POLICY_QUESTIONS) >= 15
    assert not set(DISCLOSURES) & set(POLICY_QUESTIONS)


@pytest.mark.parametrize("message", DISCLOSURES)
def test_disclosures_are_offered_the_report_button(message: str) -> None:
    assert looks_like_concern(message) is True


@pytest.mark.parametrize("message", POLICY_QUESTIONS)
def test_ordinary_policy_questions_are_not(message: str) -> None:
    assert looks_like_concern(message) is False


@pytest.mark.parametrize("message", ["", " ", "\n\t", "?", "🙂🙂", "我很担心"])
def test_empty_or_wordless_messages_are_not_concerns(message: str) -> None:
    assert looks_like_concern(message) is False


def test_contact_aimed_at_the_speaker_is_a_boundaries_question_until_aggravated() -> None:
    assert looks_like_concern("a pupil added me on snapchat") is False
    assert looks_like_concern("a pupil added me on snapchat and says she is scared") is True


def test_an_adult_contacting_a_child_is_a_concern_but_contacting_me_is_not() -> None:
    assert looks_like_concern("a supply teacher has been messaging a year 8 girl") is True
    assert looks_like_concern("a supply teacher has been messaging me") is False


def test_a_very_long_message_with_a_disclosure_at_the_end_is_still_caught() -> None:
    filler = "we talked about the trip and the homework and the weather. " * 300
    assert looks_like_concern(filler + "then she said her dad hits her") is True
    assert looks_like_concern(filler) is False


@pytest.mark.parametrize(
    "message",
    [
        "i'm worried a kid in my form isn't being fed at home",
        "a boy in my class says he isn’t being fed at home",
    ],
)
def test_contracted_negations_match_cues_written_with_not(message: str) -> None:
    assert looks_like_concern(message) is True


@pytest.mark.parametrize(
    "message",
    [
        "a pupil told me a man from a game offered him robux for photos",
        "a girl in year 8 said someone she met on roblox asked her to video call in her bedroom",
        "A Y6 girl told me the football coach kissed her",
        "a student told me she is being taken to pakistan to get married in the summer",
    ],
)
def test_grooming_physical_contact_and_forced_marriage_are_recognised(message: str) -> None:
    assert looks_like_concern(message) is True
