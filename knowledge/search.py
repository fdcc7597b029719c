"""Question -> ranked clauses, or an honest "I could not find that".

1. Analyse: fold the question, expand chat abbreviations, map words and phrases
   onto the lexicon's groups ("old yr6s" -> former + pupil), correct typos
   against the knowledge base's own vocabulary with rapidfuzz, drop filler.
2. Retrieve: an FTS5 bm25 query over clause text and section, restricted to the
   school inside FTS5 by its private tag. User text only reaches MATCH as
   quoted alphanumeric tokens, so quotes, OR, *, NEAR and brackets are inert.
3. Rerank: weighted coverage of the question's concepts by each candidate.
   Concepts weigh by how rare they are; intent words ("who do I tell", "how
   quickly") weigh more, scene-setting ones (platforms, devices) and everyday
   words less. A clause earns full credit for its own words and part credit
   for broader terms, its lead-in and the paragraph before it, and its heading.
   bm25 adds what coverage misses (repetition, length); clauses addressed to
   parents or pupils yield for first-person questions, definitions yield unless
   the question is about what counts, and lists of web links yield to guidance.
4. Abstain unless the best clause covers enough of the question and speaks to
   more than one of its concepts (or covers most of it alone), or speaks to
   several of them in a question padded with chat the policies never use.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field, fields, replace
from functools import cached_property, lru_cache
from pathlib import Path

from rapidfuzz import fuzz, process

from knowledge import lexicon as lexicon_module
from knowledge.concerns import looks_like_concern
from knowledge.lexicon import Lexicon, Phrase
from knowledge.lists import asks_for_a_list, whole_list
from knowledge.segment import sentences
from knowledge.store import KnowledgeBase
from knowledge.text import expand_negations, fold, stem, stems

MAX_QUESTION_CHARS = 2000
"""Longer messages are cut here before analysis; nobody types a longer question."""

CANDIDATES = 80
"""How many FTS5 matches, best bm25 first, are reranked."""
ABSTAIN_BELOW = 0.38
"""Coverage a top clause needs before we quote it as the answer..."""
MIN_EVIDENCE = 1.3
"""Sum of per-concept credits the top clause needs: more than one concept's worth."""
SINGLE_CONCEPT_COVERAGE = 0.6
"""...and the higher coverage it needs when it speaks to only one of the
question's concepts ("what date do we get PAID" vs "offered payment for content")."""

BROAD_EVIDENCE = 2.3
"""A clause that speaks to this many of the question's concepts is on topic..."""
CHATTY_COVERAGE = 0.2
"""...even when chat words the policies never use ("got some lovely pics of the
kids at sports day") leave it covering only this share of the question."""
MANY_EVIDENCE = 3.0
"""A clause that speaks to this many concepts is on topic even in a long,
rambling message ("Hiya, I'm on an agency supply contract till Easter...")..."""
RAMBLING_COVERAGE = 0.12
"""...where the background chat leaves it covering only this share."""

BROADER_CREDIT = 0.6
"""A broader term ("social media" for Instagram) earns this share of the credit."""
CONTEXT_CREDIT = 0.6
"""Words in a clause's lead-in or the sentence before it frame it, so count less."""
SECTION_CREDIT = 0.5
"""Words in the section heading count less again."""
BM25_SHARE_WEIGHT = 0.4
"""bm25 (as a share of the best candidate's) adds repetition and length, which
coverage ignores; measured on the dev set, 0.3-0.6 is best."""
OTHER_AUDIENCE_PENALTY = 0.2
"""A staff member asking about themselves wants the rules for staff, not for parents."""
DEFINITION_PENALTY = 0.15
"""Definitions name every platform but only answer "does X count / what is X" questions."""
SCOPE_CONCEPT = "policy scope"
LINKS_PENALTY = 0.3
"""A list of web addresses ("Useful links") is where to read more, not an answer."""
LENGTH_FREE_WORDS = 45
LENGTH_PENALTY = 0.0015
"""Per word over LENGTH_FREE_WORDS: prefer the shorter of two equal answers."""
COMMON_WORD_FACTOR = 0.3
"""Everyday words (the lexicon's [common] list) count at this share of their weight..."""
COMMON_WORD_CAP = 0.9
"""...and never more than this."""
INTENT_FACTOR = 3.0
"""Intent concepts (`intent = true` in the lexicon: who to tell, how soon, how
often, who is responsible) name the kind of answer wanted, so they count more."""
SCENE_FACTOR = 0.5
"""Scene-setting concepts (platforms, devices; `scene = true` in the lexicon) count
at this share: "can I get sacked over a fb post" is about dismissal."""
OPTIONAL_WEIGHT = 0.3
"""Numbers and implied words earn at most this much, and never count against a clause."""
UNKNOWN_WEIGHT_FACTOR = 0.7
"""Weight of a word the knowledge base has never seen, relative to the rarest
known word: high enough that off-topic questions abstain, low enough that one
stray word does not sink a good match."""

_OTHER_AUDIENCE_RE = re.compile(
    r"^(?:[^:]{0,60}:\s*)?(?:the\s+)?(?:parents?|carers?|parents/carers|pupils?|learners?|"
    r"students?|children)\b[^.:;]{0,40}?\b(?:should|must|are|will|may|can)\b",
    re.IGNORECASE,
)
"""A clause addressed to pupils or parents ("Parents/carers should not use...")."""
_DEFINITION_RE = re.compile(
    r"^(?:for the purposes? of this policy|in this policy\b|.{0,60}?\b(?:means|is defined as|"
    r"is a broad term|is considered to include|examples of [^.]{0,40}include))",
    re.IGNORECASE,
)
"""A definition ("For the purposes of this policy, social media includes...")."""
DEFINITION_SHARE = 0.4
"""A clause counts as a definition only if the defining sentence is at least this
share of it: "In this Policy 'pupil' includes any child... If a colleague is related
to a pupil they should declare this relationship" is mostly a rule."""
_LINK_RE = re.compile(r"(?:https?://|www\.)\S+", re.IGNORECASE)


def _mostly_links(text: str) -> bool:
    linked = sum(len(m.group(0)) for m in _LINK_RE.finditer(text))
    return linked > 0.4 * max(len(text), 1)


@lru_cache(maxsize=16384)
def _clause_kind(text: str) -> tuple[bool, bool, bool]:
    """(addressed to parents or pupils, a definition, mostly links): fixed for a
    clause, so worked out once rather than for every question it comes up in."""
    return (
        bool(_OTHER_AUDIENCE_RE.match(text)),
        _is_definition(text),
        _mostly_links(text),
    )


def _is_definition(text: str) -> bool:
    if not _DEFINITION_RE.match(text):
        return False
    defining = sentences(text)[0]
    return len(defining.split()) >= DEFINITION_SHARE * len(text.split())


_YEAR_GROUP_RE = re.compile(r"\b(?:yr|year|y)\s?(?:\d{1,2}|r)s?\b")
_TYPO_MIN_LENGTH = 5
_TYPO_CUTOFF = 85.0


@dataclass(frozen=True)
class Concept:
    """One thing the question is about, with every way a policy might say it."""

    label: str
    alternatives: tuple[Phrase, ...]
    broader: tuple[Phrase, ...] = ()
    weight: float = 1.0
    optional: bool = False
    common: bool = False
    scene: bool = False
    intent: bool = False
    other_senses: tuple[Phrase, ...] = ()
    """Phrases in which the concept's words mean something else."""

    @cached_property
    def own_words(self) -> _PhraseSet:
        return _PhraseSet.of(self.alternatives)

    @cached_property
    def _padded_senses(self) -> tuple[str, ...]:
        return tuple(_padded(phrase) for phrase in self.other_senses)

    def found_in(self, terms: _Terms) -> bool:
        """Whether the clause uses one of the concept's own words in this sense."""
        if not self.own_words.found_in(terms):
            return False
        senses = self._padded_senses
        if not any(sense in terms.sequence for sense in senses):
            return True
        return self.own_words.found_in(_without(terms.sequence, senses))

    @cached_property
    def broader_words(self) -> _PhraseSet:
        return _PhraseSet.of(self.broader)


@dataclass(frozen=True)
class _PhraseSet:
    """Phrases prepared for fast checks: single words as a set, longer
    phrases as padded strings to look for in a padded stem sequence."""

    singles: frozenset[str]
    multis: tuple[tuple[str, str], ...]
    """(first word, padded phrase): the set lookup rules most phrases out cheaply."""

    @classmethod
    def of(cls, phrases: Sequence[Phrase]) -> _PhraseSet:
        singles = frozenset(p[0] for p in phrases if len(p) == 1)
        multis = tuple((p[0], _padded(p)) for p in phrases if len(p) > 1)
        return cls(singles, multis)

    def found_in(self, terms: _Terms) -> bool:
        words = terms.words
        if not self.singles.isdisjoint(words):
            return True
        for first, padded in self.multis:  # noqa: SIM110 - a plain loop is faster here (hot path)
            if first in words and padded in terms.sequence:
                return True
        return False


def _padded(phrase: Phrase) -> str:
    """A phrase as it appears inside a padded stem sequence (see _Terms)."""
    return f" {' '.join(phrase)} "


@lru_cache(maxsize=4096)
def _without(sequence: str, phrases: tuple[str, ...]) -> _Terms:
    """A clause's terms with other-sense phrases blanked out."""
    for phrase in phrases:
        sequence = sequence.replace(phrase, " | ")
    return _Terms.of(sequence.strip())


@dataclass(frozen=True)
class ClauseRef:
    """A stored clause and the policy facts shown with it."""

    clause_id: int
    policy_id: int
    policy: str
    section: str
    number: str | None
    text: str
    next_review: str | None
    contact: str | None


@dataclass(frozen=True)
class Match(ClauseRef):
    """A clause offered as (part of) the answer, with how well it fits."""

    score: float
    coverage: float
    matched: float = 0.0
    """How many of the question's concepts this clause speaks to (partly, for
    broader terms and framing)."""


@dataclass(frozen=True)
class SearchResult:
    question: str
    school: str
    matches: tuple[Match, ...]
    answered: bool
    offer_report: bool
    concepts: tuple[str, ...] = field(default=())

    @property
    def best(self) -> Match | None:
        return self.matches[0] if self.matches else None


@dataclass(frozen=True)
class _Candidate(ClauseRef):
    """One row from the FTS query, before reranking."""

    terms: str
    context: str | None
    words: int
    rank: float

    def to_match(self, score: float, coverage: float, matched: float) -> Match:
        shared = {f.name: getattr(self, f.name) for f in fields(ClauseRef)}
        return Match(**shared, score=round(score, 4), coverage=round(coverage, 4), matched=matched)


@dataclass(frozen=True)
class _Terms:
    """A text's stems as a set (word checks) and a padded sequence (phrases)."""

    words: frozenset[str]
    sequence: str

    @classmethod
    def of(cls, stemmed: str) -> _Terms:
        return cls(frozenset(stemmed.split()), f" {stemmed} ")


@lru_cache(maxsize=16384)
def _terms_of(stemmed: str) -> _Terms:
    """Clause texts recur across questions: build their term structures once."""
    return _Terms.of(stemmed)


@dataclass
class _Vocabulary:
    """Document frequencies from the FTS index, refreshed when the file changes."""

    data_version: int = -1
    generation: int = -1
    clause_count: int = 0
    df: dict[str, int] = field(default_factory=dict)
    words: list[str] = field(default_factory=list)
    concept_df: dict[str, int] = field(default_factory=dict)


class Searcher:
    """Answers questions over one knowledge base. Reuse it: it caches statistics."""

    def __init__(self, kb: KnowledgeBase, extra_lexicons: Sequence[Path] = ()) -> None:
        self.kb = kb
        self.lexicon: Lexicon = lexicon_module.load(tuple(extra_lexicons))
        self._vocabulary = _Vocabulary()
        self._section_terms: dict[str, _Terms] = {}
        self._lexicon_stems = self.lexicon.known_stems
        self._not_targets = self.lexicon.filler | self.lexicon.common

    # statistics ----------------------------------------------------------------

    def _stats(self) -> _Vocabulary:
        version = int(self.kb.db.execute("PRAGMA data_version").fetchone()[0])
        vocab = self._vocabulary
        if vocab.data_version == version and vocab.generation == self.kb.generation:
            return vocab
        rows = self.kb.db.execute("SELECT term, doc FROM clauses_fts_vocab").fetchall()
        count = self.kb.db.execute("SELECT count(*) FROM clauses").fetchone()[0]
        self._vocabulary = _Vocabulary(
            version,
            self.kb.generation,
            int(count),
            {t: int(d) for t, d in rows},
            sorted(
                {t for t, _ in rows if not t.isdigit() and len(t) >= 4}
                | self._lexicon_stems - self._not_targets
            ),
        )
        return self._vocabulary

    def _idf(self, df: int, total: int) -> float:
        return math.log((total + 1) / (df + 0.5))

    # analysis --------------------------------------------------------------------

    def analyse(self, question: str) -> list[Concept]:
        """The concepts a question is about, weighted by how telling they are."""
        vocab = self._stats()
        text = expand_negations(fold(question[:MAX_QUESTION_CHARS]))
        text = _YEAR_GROUP_RE.sub(" pupil ", text)
        words = self.lexicon.expand_abbreviations(re.findall(r"[a-z0-9]+", text))
        stemmed = [self._correct(stem(w), vocab) for w in words]
        concepts: dict[str, Concept] = {}
        position = 0
        while position < len(stemmed):
            found = self.lexicon.longest_phrase_at(stemmed, position)
            if found is not None:
                length, index = found
                group = self.lexicon.groups[index]
                concepts.setdefault(
                    group.name,
                    Concept(
                        group.name,
                        group.terms,
                        group.broader,
                        scene=group.scene,
                        intent=group.intent,
                        other_senses=group.other_senses,
                    ),
                )
                position += length
                continue
            word, stemmed_word = words[position], stemmed[position]
            position += 1
            if word in self.lexicon.filler or stemmed_word in self.lexicon.filler:
                continue
            if len(word) < 2 and not word.isdigit():
                continue
            common = word in self.lexicon.common or stemmed_word in self.lexicon.common
            concepts.setdefault(
                stemmed_word,
                Concept(stemmed_word, ((stemmed_word,),), optional=word.isdigit(), common=common),
            )
        if self.lexicon.first_person_markers.intersection(words):
            concepts.setdefault(
                "staff (implied)",
                Concept("staff (implied)", self.lexicon.first_person_implies, optional=True),
            )
        return [self._weigh(c, vocab) for c in concepts.values()]

    def _correct(self, stemmed_word: str, vocab: _Vocabulary) -> str:
        """Map a misspelt word onto a word the policies or the lexicon use, but
        never onto a filler or everyday word ("weather" is not "whether")."""
        if (
            len(stemmed_word) < _TYPO_MIN_LENGTH
            or stemmed_word.isdigit()
            or stemmed_word in vocab.df
            or stemmed_word in self._lexicon_stems
        ):
            return stemmed_word
        best = process.extractOne(
            stemmed_word, vocab.words, scorer=fuzz.ratio, score_cutoff=_TYPO_CUTOFF
        )
        return str(best[0]) if best else stemmed_word

    def _concept_df(self, concept: Concept, vocab: _Vocabulary) -> int:
        """How many clauses use any of the concept's words: exact for a single
        word; one FTS count per lexicon group, cached until the file changes."""
        if len(concept.alternatives) == 1 and len(concept.alternatives[0]) == 1:
            return vocab.df.get(concept.alternatives[0][0], 0)
        cached = vocab.concept_df.get(concept.label)
        if cached is None:
            alternatives = " OR ".join(
                '"' + " ".join(phrase) + '"'
                for phrase in concept.alternatives
                if all(part.isalnum() for part in phrase)
            )
            row = self.kb.db.execute(
                "SELECT count(*) FROM clauses_fts WHERE clauses_fts MATCH ?",
                [f"text : ({alternatives})"],
            ).fetchone()
            cached = vocab.concept_df[concept.label] = int(row[0])
        return cached

    def _weigh(self, concept: Concept, vocab: _Vocabulary) -> Concept:
        """Inverse document frequency of the concept as a whole."""
        total = max(vocab.clause_count, 1)
        df = self._concept_df(concept, vocab)
        if df > 0:
            weight = self._idf(min(df, total), total)
        else:
            weight = self._idf(1, total) * UNKNOWN_WEIGHT_FACTOR
        if concept.scene:
            weight *= SCENE_FACTOR
        if concept.intent:
            weight *= INTENT_FACTOR
        if concept.common:
            weight = min(weight * COMMON_WORD_FACTOR, COMMON_WORD_CAP)
        if concept.optional:
            weight = min(weight, OPTIONAL_WEIGHT)
        return replace(concept, weight=max(weight, 0.05))

    # retrieval ---------------------------------------------------------------------

    def _fts_query(self, tag: str, concepts: Sequence[Concept]) -> str | None:
        phrases: dict[str, None] = {}
        for concept in concepts:
            for phrase in (*concept.alternatives, *concept.broader):
                if phrase and all(part.isalnum() for part in phrase):
                    phrases['"' + " ".join(phrase) + '"'] = None
        if not phrases:
            return None
        return f"school_tag : {tag} AND ({' OR '.join(phrases)})"

    def _candidates(self, tag: str, concepts: Sequence[Concept]) -> list[_Candidate]:
        query = self._fts_query(tag, concepts)
        if query is None:
            return []
        rows = self.kb.db.execute(
            """
            SELECT c.id, c.policy_id, p.title, c.section, c.number, c.text,
                   p.next_review, p.contact, c.terms, c.context, c.words,
                   bm25(clauses_fts, 1.0, 0.4, 0.0) AS rank
            FROM clauses_fts
            JOIN clauses c ON c.id = clauses_fts.rowid
            JOIN policies p ON p.id = c.policy_id
            WHERE clauses_fts MATCH ?
            ORDER BY rank
            LIMIT ?
            """,
            [query, CANDIDATES],
        ).fetchall()
        return [_Candidate(*row) for row in rows]

    # scoring ----------------------------------------------------------------------

    def _section_terms_of(self, section: str) -> _Terms:
        cached = self._section_terms.get(section)
        if cached is None:
            cached = _terms_of(" ".join(stems(section)))
            self._section_terms[section] = cached
        return cached

    def _credit(self, concept: Concept, layers: Sequence[tuple[_Terms, float]]) -> float:
        """The best credit any layer of the clause earns for this concept."""
        best = 0.0
        for terms, layer_credit in layers:
            if layer_credit <= best:
                break
            if concept.found_in(terms):
                return layer_credit
            if concept.broader and concept.broader_words.found_in(terms):
                best = max(best, layer_credit * BROADER_CREDIT)
        return best

    def _coverage(self, concepts: Sequence[Concept], candidate: _Candidate) -> tuple[float, float]:
        """Share of the question's weight this clause covers, and how many of
        the question's (non-optional) concepts it speaks to directly."""
        required = sum(c.weight for c in concepts if not c.optional)
        if required <= 0:
            return 0.0, 0.0
        layers = (
            (_terms_of(candidate.terms), 1.0),
            (_terms_of(candidate.context or ""), CONTEXT_CREDIT),
            (self._section_terms_of(candidate.section), SECTION_CREDIT),
        )
        credits = [self._credit(c, layers) for c in concepts]
        gained = sum(credit * c.weight for credit, c in zip(credits, concepts, strict=True))
        matched = sum(credit for credit, c in zip(credits, concepts, strict=True) if not c.optional)
        return min(gained / required, 1.0), matched

    def search(self, school_slug: str, question: str, top_k: int = 3) -> SearchResult:
        school = self.kb.school(school_slug)
        question = question.strip()
        concepts = self.analyse(question)
        offer_report = looks_like_concern(question)
        labels = tuple(c.label for c in concepts)
        candidates = self._candidates(school.tag, concepts) if concepts else []
        if not candidates:
            return SearchResult(question, school.slug, (), False, offer_report, labels)
        best_rank = min(c.rank for c in candidates)
        first_person = any(c.label == "staff (implied)" for c in concepts)
        about_scope = any(c.label == SCOPE_CONCEPT for c in concepts)
        ranked: list[tuple[float, int, _Candidate, float, float]] = []
        for candidate in candidates:
            coverage, matched = self._coverage(concepts, candidate)
            bm25_share = candidate.rank / best_rank if best_rank else 0.0
            length_penalty = LENGTH_PENALTY * max(0, candidate.words - LENGTH_FREE_WORDS)
            score = coverage + BM25_SHARE_WEIGHT * bm25_share - length_penalty
            other_audience, definition, links = _clause_kind(candidate.text)
            if first_person and other_audience:
                score -= OTHER_AUDIENCE_PENALTY
            if not about_scope and definition:
                score -= DEFINITION_PENALTY
            if links:
                score -= LINKS_PENALTY
            ranked.append((round(score, 4), candidate.clause_id, candidate, coverage, matched))
        ranked.sort(key=lambda r: (-r[0], r[1]))
        _, _, _, unrounded, matched = ranked[0]
        coverage = round(unrounded, 4)  # as the Match shows it, so both agree
        answered = (
            (
                coverage >= ABSTAIN_BELOW
                and (matched >= MIN_EVIDENCE or coverage >= SINGLE_CONCEPT_COVERAGE)
            )
            or (matched >= BROAD_EVIDENCE and coverage >= CHATTY_COVERAGE)
            or (matched >= MANY_EVIDENCE and coverage >= RAMBLING_COVERAGE)
        )
        widen = answered and asks_for_a_list(question)
        # Only the clauses shown become Matches (a whole list may push some out).
        shown = ranked if widen else ranked[: max(top_k, 1)]
        scored = [c.to_match(score, cov, found) for score, _, c, cov, found in shown]
        if widen:
            scored = self._widen_to_list(scored)
        return SearchResult(
            question, school.slug, tuple(scored[: max(top_k, 1)]), answered, offer_report, labels
        )

    def _widen_to_list(self, scored: list[Match]) -> list[Match]:
        """Quote the whole list the best clause belongs to, and drop its other
        items from "see also" (they are in the answer now)."""
        top = scored[0]
        widened = whole_list(self.kb.db.conn, top.clause_id)
        if widened is None:
            return scored
        rest = [m for m in scored[1:] if m.clause_id not in widened.clause_ids]
        return [replace(top, text=widened.text), *rest]
