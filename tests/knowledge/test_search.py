"""Search over the bundled samples: hostile input, folding, typos, abstention, contracts.

Ranking is being tuned, so these tests pin behaviour that must hold whatever
the weights are: nothing raises, results come from the right school and are the
stored clause texts, equivalent spellings give equivalent answers, and a few
clear-cut questions find their obvious clause.
"""

from __future__ import annotations

import time
import unicodedata
from pathlib import Path

import pytest

from knowledge.ingest import ingest_files
from knowledge.search import COMMON_WORD_CAP, Searcher, SearchResult
from knowledge.store import KnowledgeBase
from tests.conftest import SAMPLE_SLUGS

FRIEND_QUESTION = "can I accept a friend request from a past pupil?"


def assert_well_formed(result: SearchResult, kb: KnowledgeBase, school: str, top_k: int) -> None:
    """A result whose matches are real, stored clauses of this school, best first."""
    assert isinstance(result, SearchResult)
    assert result.school == school
    assert isinstance(result.answered, bool)
    assert isinstance(result.offer_report, bool)
    assert len(result.matches) <= top_k
    if result.answered:
        assert result.matches
    scores = [m.score for m in result.matches]
    assert scores == sorted(scores, reverse=True)
    for match in result.matches:
        row = kb.db.execute(
            "SELECT c.text, c.section, p.title, p.school FROM clauses c"
            " JOIN policies p ON p.id = c.policy_id WHERE c.id = ?",
            [match.clause_id],
        ).fetchone()
        assert row is not None
        assert (match.text, match.section, match.policy, row[3]) == (row[0], row[1], row[2], school)


# --- the clear-cut case ----------------------------------------------------------------


def test_friend_request_from_a_past_pupil_finds_the_friend_requests_clause(
    searcher: Searcher, sample_kb: KnowledgeBase
) -> None:
    result = searcher.search("st-annes", FRIEND_QUESTION)
    assert_well_formed(result, sample_kb, "st-annes", 3)
    assert result.answered
    assert result.best is not None
    assert "friend requests" in result.best.text.casefold()
    assert not result.offer_report


# --- FTS syntax in questions is inert ---------------------------------------------------

FTS_SYNTAX = [
    '"',
    '""',
    '"""',
    'can I accept a "friend request" from a past pupil?',
    'can I accept a "friend request from a past pupil?',
    "friend request OR past pupil",
    "OR",
    "AND",
    "NOT",
    "OR OR OR",
    "friend AND request AND NOT pupil",
    "NOT friend",
    "*",
    "friend* request* past pupil*",
    "NEAR(friend request, 5) past pupil",
    "NEAR(",
    "NEAR(friend",
    "^friend request past pupil",
    "^",
    "text: friend request",
    "text : friend",
    "section:friend",
    "school_tag: friend",
    "clauses_fts: friend",
    "friend request (past pupil",
    "friend request past pupil)))",
    "(((",
    ")",
    "{}",
    "{text section} : friend request past pupil",
    "{text",
    "[friend]",
    "friend + request - pupil",
    "friend request; DROP TABLE clauses; --",
    "' OR 1=1 --",
    "friend request\x00 past pupil",
    "\\",
    ":",
    "-",
    "?",
    "!!!???",
    "a\tb\nfriend\r\nrequest past pupil",
]


@pytest.mark.parametrize("question", FTS_SYNTAX)
def test_fts_syntax_in_a_question_never_raises(
    searcher: Searcher, sample_kb: KnowledgeBase, question: str
) -> None:
    for school in ("st-annes", "kaleidoscope"):
        result = searcher.search(school, question)
        assert_well_formed(result, sample_kb, school, 3)


@pytest.mark.parametrize(
    "question",
    [q for q in FTS_SYNTAX if "friend" in q and "request" in q and "pupil" in q]
    + ["friend-request from ex-pupil"],
)
def test_fts_syntax_around_the_clear_cut_question_still_finds_it(
    searcher: Searcher, question: str
) -> None:
    result = searcher.search("st-annes", question)
    assert result.best is not None
    assert "friend requests" in result.best.text.casefold()


def test_the_database_survives_hostile_questions(
    searcher: Searcher, sample_kb: KnowledgeBase
) -> None:
    before = sample_kb.db["clauses"].count
    searcher.search("st-annes", "x'); DELETE FROM clauses; --")
    searcher.search("st-annes", '"); DROP TABLE clauses_fts; --')
    assert sample_kb.db["clauses"].count == before
    assert "clauses_fts" in sample_kb.db.table_names()


# --- size and emptiness -----------------------------------------------------------------


@pytest.mark.parametrize(
    "question",
    [
        (FRIEND_QUESTION + " ") * 1100,
        ('"( OR NEAR(* ^ text: {} ' * 3000),
        " ".join(f"word{n}x" for n in range(8000)),
        "a" * 50_000,
    ],
    ids=["repeated-question", "repeated-syntax", "many-unknown-words", "one-huge-word"],
)
def test_a_50000_character_question_returns_quickly(
    searcher: Searcher, sample_kb: KnowledgeBase, question: str
) -> None:
    question = question[:50_000]
    assert len(question) == 50_000
    started = time.perf_counter()
    result = searcher.search("st-annes", question)
    elapsed = time.perf_counter() - started
    assert_well_formed(result, sample_kb, "st-annes", 3)
    assert elapsed < 3.0, f"took {elapsed:.2f}s"


@pytest.mark.parametrize("question", ["", " ", "   \t  ", "\n", "\r\n\t ", "\u00a0\u2003"])
def test_empty_and_whitespace_questions_are_not_answered(searcher: Searcher, question: str) -> None:
    result = searcher.search("st-annes", question)
    assert result.answered is False
    assert result.matches == ()
    assert result.offer_report is False


@pytest.mark.parametrize("question", ["?", "...", "!!!", "🙂", "🙏🙏🙏"])
def test_punctuation_or_emoji_only_questions_are_not_answered(
    searcher: Searcher, question: str
) -> None:
    result = searcher.search("st-annes", question)
    assert result.answered is False


# --- other scripts, accents and emoji ---------------------------------------------------


@pytest.mark.parametrize(
    "question",
    [
        "A allaf i dderbyn cais ffrind gan gyn-ddisgybl?",
        "Ydy hi'n iawn i mi bostio lluniau o ddisgyblion ar Facebook? ŵ ŷ â",
        "café pupil photo",
        "我可以接受以前学生的好友请求吗？",
        "هل يمكنني قبول طلب صداقة من تلميذ سابق؟",
        "Могу ли я добавить ученика в друзья?",
        "can i post 📸 of pupils on insta 🙏",
        "👨‍👩‍👧 family 🏳️‍🌈 photo 🇬🇧",
        "pupil\u200bphoto \ufeffpolicy",
        "\U0010ffff\ud7ff\ue000 friend",
    ],
)
def test_other_scripts_and_emoji_do_not_crash(
    searcher: Searcher, sample_kb: KnowledgeBase, question: str
) -> None:
    for school in SAMPLE_SLUGS:
        assert_well_formed(searcher.search(school, question), sample_kb, school, 3)


def _best_id(searcher: Searcher, school: str, question: str) -> int | None:
    best = searcher.search(school, question).best
    return None if best is None else best.clause_id


@pytest.mark.parametrize("school", SAMPLE_SLUGS)
@pytest.mark.parametrize(
    ("variant", "plain"),
    [
        ("phötos of pupïls", "photos of pupils"),
        ("PHOTOS OF PUPILS", "photos of pupils"),
        (unicodedata.normalize("NFD", "phötos of pupïls"), "photos of pupils"),
        ("ＰＨＯＴＯＳ ｏｆ ｐｕｐｉｌｓ", "photos of pupils"),
        ("can I accept a friend request from a päst pupîl?", FRIEND_QUESTION),
        ("can i post 📸 of pupils on insta 🙏", "can i post of pupils on insta"),
        ("🙂 can I accept a friend request from a past pupil? 🙏", FRIEND_QUESTION),
        ("can I accept a friend request from a past pupil???!!!", FRIEND_QUESTION),
    ],
)
def test_equivalent_spellings_find_the_same_top_clause(
    searcher: Searcher, school: str, variant: str, plain: str
) -> None:
    expected = _best_id(searcher, school, plain)
    assert expected is not None
    assert _best_id(searcher, school, variant) == expected


# --- typos ------------------------------------------------------------------------------


@pytest.mark.parametrize("school", ["st-annes", "kaleidoscope", "cwm-felin", "st-johns"])
def test_misspelt_colleague_is_understood_as_colleague(searcher: Searcher, school: str) -> None:
    typo = searcher.search(school, "can I complain about a colleage on facebook?")
    right = searcher.search(school, "can I complain about a colleague on facebook?")
    assert "colleague" in typo.concepts
    assert typo.answered == right.answered
    assert [m.clause_id for m in typo.matches] == [m.clause_id for m in right.matches]


@pytest.mark.parametrize("school", SAMPLE_SLUGS)
def test_misspelt_independent_finds_the_same_clause_as_the_right_spelling(
    searcher: Searcher, school: str
) -> None:
    typo = _best_id(searcher, school, "is it ok to use an independant app to contact parents?")
    right = _best_id(searcher, school, "is it ok to use an independent app to contact parents?")
    assert typo is not None
    assert typo == right


TYPO_PAIRS = [
    ("can I accept a frend request from a past pupil?", FRIEND_QUESTION),
    ("can I acept a friend request from a past pupil?", FRIEND_QUESTION),
    ("can I accept a friend requets from a past pupil?", FRIEND_QUESTION),
    (
        "can I complain about a colleage on facebook?",
        "can I complain about a colleague on facebook?",
    ),
    ("can I share confidental information?", "can I share confidential information?"),
]


@pytest.mark.parametrize("school", SAMPLE_SLUGS)
@pytest.mark.parametrize(("typo", "right"), TYPO_PAIRS)
def test_a_typo_finds_what_the_right_spelling_finds(
    searcher: Searcher, school: str, typo: str, right: str
) -> None:
    wrong = searcher.search(school, typo)
    correct = searcher.search(school, right)
    assert correct.answered, "the correctly spelt question should be answerable"
    assert wrong.answered
    shared = {m.clause_id for m in wrong.matches} & {m.clause_id for m in correct.matches}
    assert shared


@pytest.mark.parametrize("typo", [pair[0] for pair in TYPO_PAIRS[:3]])
def test_a_typo_in_the_clear_cut_question_still_finds_friend_requests(
    searcher: Searcher, typo: str
) -> None:
    best = searcher.search("st-annes", typo).best
    assert best is not None
    assert "friend requests" in best.text.casefold()


# --- top_k, abstention, determinism -----------------------------------------------------


@pytest.mark.parametrize("top_k", [1, 2, 3, 5, 10, 20])
def test_top_k_is_respected(searcher: Searcher, sample_kb: KnowledgeBase, top_k: int) -> None:
    result = searcher.search("kaleidoscope", "staff social media pupils parents", top_k=top_k)
    assert_well_formed(result, sample_kb, "kaleidoscope", top_k)
    # The question is broad enough that every slot is filled.
    assert len(result.matches) == top_k


def test_a_bigger_top_k_extends_a_smaller_one(searcher: Searcher) -> None:
    small = searcher.search("st-annes", FRIEND_QUESTION, top_k=2)
    large = searcher.search("st-annes", FRIEND_QUESTION, top_k=8)
    assert [m.clause_id for m in large.matches[:2]] == [m.clause_id for m in small.matches]


@pytest.mark.parametrize(
    "school",
    [
        "crossflatts",
        "cwm-felin",
        "kaleidoscope",
        "st-annes",
        "st-johns",
    ],
)
def test_canteen_opening_time_is_not_answered(searcher: Searcher, school: str) -> None:
    result = searcher.search(school, "what time does the canteen open?")
    assert result.answered is False
    assert result.offer_report is False


@pytest.mark.parametrize("school", SAMPLE_SLUGS)
@pytest.mark.parametrize(
    "question",
    [
        "how many sugars do you take in your tea?",
        "where do I park my car?",
        "A allaf i dderbyn cais ffrind gan gyn-ddisgybl?",
        "我可以接受以前学生的好友请求吗？",
        "asdfghjkl qwertyuiop",
    ],
)
def test_clearly_off_topic_questions_are_not_answered(
    searcher: Searcher, school: str, question: str
) -> None:
    assert searcher.search(school, question).answered is False


def test_chat_words_the_policies_never_use_do_not_hide_an_answer(searcher: Searcher) -> None:
    """Padding a clear question with chatter ("loads of brilliant snaps", "what
    now?") lowers its coverage, but the clause still speaks to most of it."""
    plain = searcher.search(
        "cwm-felin", "can i take pics of the kids on my own phone for the school facebook page?"
    )
    chatty = searcher.search(
        "cwm-felin",
        "took loads of brilliant snaps of the little ones on my own phone at the eisteddfod"
        " for the school fb page, what now?",
    )
    assert plain.best is not None and chatty.best is not None
    assert chatty.best.coverage < 0.38  # below the bar a plain question must clear
    assert chatty.answered
    assert chatty.best.text.startswith("Photographs for use with social media")
    assert plain.answered


def test_a_long_rambling_question_is_answered_when_it_names_several_topics(
    searcher: Searcher,
) -> None:
    """Background chat ("hope everyone had a lovely weekend") leaves the right
    clause covering under a fifth of the message; it still speaks to three of
    its topics (agency staff, the policy's scope, staff), which is enough."""
    rambling = searcher.search(
        "st-johns",
        "Hiya, hope everyone had a lovely weekend. I'm on an agency supply contract covering"
        " Year 4 until Easter while their teacher is off poorly. Does the social media policy"
        " apply to agency staff like me or is it just for the permanent lot?",
    )
    assert rambling.best is not None
    assert rambling.best.coverage < 0.2  # under the chatty-question bar
    assert rambling.answered
    assert "agency workers" in rambling.best.text


def test_a_long_off_topic_message_is_still_not_answered(searcher: Searcher) -> None:
    result = searcher.search(
        "st-johns",
        "Morning all, my car has been making a funny noise since half term and the garage"
        " says the clutch is going, does anyone know a decent mechanic near school who will"
        " not charge the earth?",
    )
    assert result.answered is False


def test_everyday_words_never_outweigh_the_topic(searcher: Searcher) -> None:
    """ "Same" and "keeps" never appear in the policies, so by rarity alone they
    would weigh more than "parent"; as everyday words they are capped."""
    weights = {c.label: c.weight for c in searcher.analyse("same parent keeps posting comments")}
    assert weights["same"] <= COMMON_WORD_CAP
    assert weights["same"] < weights["parent"] / 2
    assert weights["comment"] > COMMON_WORD_CAP
    dated = searcher.analyse("is that a problem in september? it was a great xmas do")
    assert dated and all(c.weight <= COMMON_WORD_CAP for c in dated)


def test_a_rule_that_opens_with_a_definition_is_not_treated_as_one(searcher: Searcher) -> None:
    """Kaleidoscope's 2.3 opens "In this Policy 'pupil' should... include any
    child" but is mostly the rule for staff related to a pupil; definitions
    yield to rules, so calling it one hid the answer."""
    result = searcher.search("kaleidoscope", "my nephew is joining year 7, is that a problem?")
    assert result.answered and result.best is not None
    assert "declare this relationship" in result.best.text


def test_a_real_word_is_not_corrected_into_a_filler_word(searcher: Searcher) -> None:
    question = "what's the weather like tomorrow?"
    for school in SAMPLE_SLUGS:
        result = searcher.search(school, question)
        assert "whether" not in result.concepts, school
        assert result.answered is False, school


def test_search_is_deterministic(searcher: Searcher) -> None:
    first = searcher.search("st-johns", "can I post photos of pupils on my own instagram?")
    second = searcher.search("st-johns", "can I post photos of pupils on my own instagram?")
    assert first == second


def test_offer_report_is_set_for_a_disclosure(searcher: Searcher) -> None:
    result = searcher.search("st-annes", "a girl in my class told me her dad hits her at home")
    assert result.offer_report is True


# --- results are stored clause texts ----------------------------------------------------


@pytest.mark.parametrize("school", SAMPLE_SLUGS)
def test_matches_are_exactly_the_stored_clauses_of_that_school(
    searcher: Searcher, sample_kb: KnowledgeBase, school: str
) -> None:
    questions = [
        FRIEND_QUESTION,
        "can I post photos of pupils on my own instagram?",
        "who do I tell about a safeguarding concern?",
        "can I message parents on whatsapp?",
        "what happens if I breach the policy?",
        "can I say where I work on linkedin?",
    ]
    answered = 0
    for question in questions:
        result = searcher.search(school, question, top_k=5)
        assert_well_formed(result, sample_kb, school, 5)
        answered += result.answered
    assert answered >= len(questions) // 2


# --- the searcher notices new policies --------------------------------------------------

TRAMPOLINE = """Trampoline Policy

1. Supervision

Staff supervising trampolining must hold a current coaching qualification.
"""
TYPO_QUESTION = "trampolening qualification"
"""A misspelling is corrected only against vocabulary the searcher knows about,
so this finds the new clause only if the searcher refreshed its statistics."""


def test_a_reused_searcher_sees_a_policy_ingested_through_the_same_handle(
    sample_db_copy: Path, tmp_path: Path
) -> None:
    kb = KnowledgeBase(sample_db_copy)
    searcher = Searcher(kb)
    before = searcher.search("st-annes", TYPO_QUESTION)
    assert before.answered is False
    assert "trampolin" not in before.concepts
    policy = tmp_path / "trampoline.txt"
    policy.write_text(TRAMPOLINE, encoding="utf-8")
    ingest_files(kb, "st-annes", [policy])
    result = searcher.search("st-annes", TYPO_QUESTION)
    assert "trampolin" in result.concepts
    assert result.answered
    assert result.best is not None and "trampolining" in result.best.text
    kb.close()


def test_a_reused_searcher_sees_a_policy_ingested_by_another_connection(
    sample_db_copy: Path, tmp_path: Path
) -> None:
    kb = KnowledgeBase(sample_db_copy)
    searcher = Searcher(kb)
    before = searcher.search("st-annes", TYPO_QUESTION)
    assert before.answered is False
    assert "trampolin" not in before.concepts
    policy = tmp_path / "trampoline.txt"
    policy.write_text(TRAMPOLINE, encoding="utf-8")
    other = KnowledgeBase(sample_db_copy)
    ingest_files(other, "st-annes", [policy])
    other.close()
    result = searcher.search("st-annes", TYPO_QUESTION)
    assert "trampolin" in result.concepts
    assert result.answered
    assert result.best is not None and "trampolining" in result.best.text
    kb.close()


IMAGE_POLICY = """Staff Conduct

Staff must protect their professional image at all times.

Staff may share an image of the school trip on the school account.
"""


def test_a_word_in_another_sense_does_not_count(tmp_path: Path) -> None:
    """ "Professional image" is a reputation, not a photo: the lexicon lists it
    under the photo group's other senses, so it earns no credit for "photo"."""
    policy = tmp_path / "conduct.txt"
    policy.write_text(IMAGE_POLICY, encoding="utf-8")
    kb = KnowledgeBase(tmp_path / "kb.db")
    ingest_files(kb, "oakfield", [policy])
    result = Searcher(kb).search("oakfield", "can I take a photo?", top_k=5)
    matched = {m.text: m.matched for m in result.matches}
    kb.close()
    assert matched["Staff must protect their professional image at all times."] == 0
    assert matched["Staff may share an image of the school trip on the school account."] > 0
