"""Policy changes: what a re-ingest changed, clause by clause, and the
ready-made broadcast offered to leaders.

Real re-ingests of an edited copy of a bundled sample policy, into a real
knowledge base on a temporary file.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from bot.broadcasts import MAX_MESSAGE, Broadcasts
from bot.cli import cli
from bot.crypto import SecretBox
from bot.directory import Directory, StaffRow
from bot.outbox import Outbox
from bot.policy_changes import (
    MAX_ITEMS,
    ClauseChange,
    PolicyChanges,
    compare,
    draft_from,
    pending_offers,
    policy_changes,
)
from knowledge.ingest import ingest_files
from knowledge.sample_data import sample_files
from knowledge.store import KnowledgeBase

SCHOOL = "st-annes"
KEY = "social-media"

EDITS = (
    # reworded: a list item under "When using social media, staff must not:"
    (
        "- post images of pupils on personal accounts\n",
        "- post images or videos of pupils on any personal account or device\n",
    ),
    # removed
    ("- link their social media profile to their work email account\n", ""),
    # reworded: a long paragraph, one phrase added
    (
        "Staff must not have contact via personal accounts with past pupils",
        "Staff must not have contact via personal accounts with past pupils under the age of 18",
    ),
    # added
    (
        "Supporting Pupils",
        "Staff must use two-factor authentication on every school social media account.\n\n"
        "Supporting Pupils",
    ),
)


def edited(text: str, edits: tuple[tuple[str, str], ...] = EDITS) -> str:
    for old, new in edits:
        assert old in text, old
        text = text.replace(old, new, 1)
    return text


@pytest.fixture
def policy(tmp_path: Path) -> Path:
    path = tmp_path / f"{KEY}.txt"
    path.write_text(sample_files()[SCHOOL].read_text(encoding="utf-8"), encoding="utf-8")
    return path


@pytest.fixture
def kb(tmp_path: Path, policy: Path) -> Iterator[KnowledgeBase]:
    base = KnowledgeBase(tmp_path / "guidebot.db")
    ingest_files(base, SCHOOL, [policy])
    yield base
    base.close()


def reingest(kb: KnowledgeBase, policy: Path, edits: tuple[tuple[str, str], ...] = EDITS) -> None:
    policy.write_text(edited(policy.read_text(encoding="utf-8"), edits), encoding="utf-8")
    [outcome] = ingest_files(kb, SCHOOL, [policy])
    assert not outcome.unchanged


# --- comparing clauses ------------------------------------------------------------------------


def clause(text: str, section: str = "5. Use", number: str | None = None) -> dict[str, str | None]:
    return {"text": text, "section": section, "number": number}


def test_unchanged_clauses_are_ignored_even_when_moved_or_respaced() -> None:
    old = [clause("Staff must lock screens."), clause("Report concerns to the DSL.", "6. Safety")]
    new = [clause("Report  concerns to the dsl.", "2. Safety"), clause("Staff must lock screens.")]
    assert compare(old, new) == ()


def test_a_reworded_clause_pairs_with_its_old_self_in_a_renumbered_section() -> None:
    old = [clause("Staff must not accept friend requests from pupils.", "5. Personal use")]
    new = [
        clause("Staff must not accept friend requests from pupils or ex-pupils.", "6. Personal use")
    ]
    [change] = compare(old, new)
    assert (change.kind, change.section) == ("reworded", "6. Personal use")
    assert change.old == old[0]["text"] and change.new == new[0]["text"]
    assert 60 <= change.similarity <= 100


def test_different_clauses_are_added_and_removed_not_reworded() -> None:
    lead = "When using social media, staff must not: "
    old = [clause(lead + "post images of pupils on personal accounts"), clause("Keep it kind.")]
    new = [clause(lead + "share their passwords with anyone at all"), clause("Keep it kind.")]
    kinds = [(c.kind, c.old or c.new) for c in compare(old, new)]
    assert kinds == [
        ("removed", lead + "post images of pupils on personal accounts"),
        ("added", lead + "share their passwords with anyone at all"),
    ]


def test_across_sections_only_a_close_match_counts_as_reworded() -> None:
    old = [clause("Staff must report any safeguarding concern to the DSL at once.", "4. A")]
    near = [clause("Staff must report any safeguarding concern to the DSL at once!", "9. B")]
    far = [clause("Staff should mention safeguarding worries to a DSL soon.", "9. B")]
    assert [c.kind for c in compare(old, near)] == ["reworded"]
    assert sorted(c.kind for c in compare(old, far)) == ["added", "removed"]


def test_changes_come_in_document_order() -> None:
    keep, gone = "Sign in at the office.", "Bring a coat on Mondays."
    last, new_rule = "Wear your lanyard.", "Phones stay in lockers all day long."
    old = [clause(t) for t in (keep, gone, last)]
    new = [clause(t) for t in (keep, last, new_rule)]
    assert [(c.kind, c.old or c.new) for c in compare(old, new)] == [
        ("removed", gone),
        ("added", new_rule),
    ]


# --- a real re-ingest --------------------------------------------------------------------------


def test_a_re_ingested_policy_says_what_changed(kb: KnowledgeBase, policy: Path) -> None:
    assert policy_changes(kb, SCHOOL, KEY) is None  # only one version so far
    assert pending_offers(kb, SCHOOL) == []
    reingest(kb, policy)
    changes = policy_changes(kb, SCHOOL, KEY)
    assert changes is not None
    assert (changes.title, changes.version, changes.previous_version) == (
        "Social Media Policy",
        2,
        1,
    )
    assert [c.kind for c in changes.changes] == ["reworded", "removed", "reworded", "added"]
    assert (changes.added, changes.removed, changes.reworded) == (1, 1, 2)
    assert changes.changes[0].new is not None and "videos" in changes.changes[0].new
    assert changes.summary() == (
        "Social Media Policy changed from version 1 to 2: 1 clause added, 1 removed and 2 reworded."
    )
    assert pending_offers(kb, SCHOOL) == [changes]


def test_the_ready_made_broadcast(kb: KnowledgeBase, policy: Path) -> None:
    reingest(kb, policy)
    [changes] = pending_offers(kb, SCHOOL)
    draft = draft_from(changes)
    assert draft.title == "Updated: Social Media Policy"
    assert (draft.policy, draft.requires_ack, draft.from_policy_version) == (KEY, True, 2)
    lines = draft.message.splitlines()
    assert lines[0] == "The Social Media Policy has been updated (version 2). What has changed:"
    assert lines[1] == (
        "• Reworded in “Personal Use of Social Media by Staff”: “post images of pupils on "
        "personal accounts” is now “post images or videos of pupils on any personal account "
        "or device”"
    )
    assert lines[2].startswith("• Removed in “Personal Use of Social Media by Staff”: “When")
    assert lines[3].startswith("• Reworded in “Personal Use of Social Media by Staff”: now “")
    assert lines[3].endswith("…”")  # a long clause is cut short
    assert lines[4] == (
        "• New in “Personal Use of Social Media by Staff”: “Staff must use two-factor "
        "authentication on every school social media account.”"
    )


def test_a_broadcast_made_from_the_offer_settles_it_until_the_next_version(
    kb: KnowledgeBase, policy: Path, tmp_path: Path
) -> None:
    reingest(kb, policy)
    directory = Directory(kb.db)
    directory.import_rows(
        SCHOOL,
        [
            StaffRow(2, "head@a.sch.uk", "Helen Head", ("staff", "head"), (), "U0HEAD"),
            StaffRow(3, "amy@a.sch.uk", "Amy Able", ("staff",), (), "U0AMY"),
        ],
    )
    outbox = Outbox(kb.db, SecretBox(bytes(range(32))))
    broadcasts = Broadcasts(kb.db, outbox, directory)
    [changes] = pending_offers(kb, SCHOOL)
    made = broadcasts.create(SCHOOL, "slack", "U0HEAD", draft_from(changes))
    assert made.policy == KEY and made.recipients == 1
    assert pending_offers(kb, SCHOOL) == []
    reingest(kb, policy, (("two-factor", "multi-factor"),))
    [again] = pending_offers(kb, SCHOOL)
    assert (again.version, [c.kind for c in again.changes]) == (3, ["reworded"])
    # A scheduled one that was cancelled does not count.
    later = broadcasts.create(
        SCHOOL,
        "slack",
        "U0HEAD",
        replace(draft_from(again), send_at=datetime(2027, 1, 4, 9, tzinfo=UTC)),
    )
    assert pending_offers(kb, SCHOOL) == []
    broadcasts.cancel(later.id, "slack", "U0HEAD")
    assert [c.version for c in pending_offers(kb, SCHOOL)] == [3]


def test_an_unchanged_re_ingest_offers_nothing(kb: KnowledgeBase, policy: Path) -> None:
    [outcome] = ingest_files(kb, SCHOOL, [policy])
    assert outcome.unchanged
    assert pending_offers(kb, SCHOOL) == []


def test_many_changes_are_listed_briefly() -> None:
    changes = PolicyChanges(
        SCHOOL,
        KEY,
        "Social Media Policy",
        4,
        3,
        tuple(
            ClauseChange("added", "7. Rules", None, None, f"New rule {n}: " + "word " * 200)
            for n in range(25)
        ),
    )
    draft = draft_from(changes)
    items = [line for line in draft.message.splitlines() if line.startswith("• New")]
    assert len(items) == MAX_ITEMS
    assert f"• and {25 - MAX_ITEMS} more changes." in draft.message
    assert len(draft.message) <= MAX_MESSAGE
    assert all(len(line) < 200 for line in items)


# --- guidebot ingest -----------------------------------------------------------------------------


def test_ingest_prints_what_changed_and_how_to_send_it(tmp_path: Path, policy: Path) -> None:
    db = tmp_path / "cli.db"
    runner = CliRunner()
    first = runner.invoke(cli, ["--db", str(db), "ingest", "--school", SCHOOL, str(policy)])
    assert first.exit_code == 0, first.output
    assert "changed from" not in first.output
    policy.write_text(edited(policy.read_text(encoding="utf-8")), encoding="utf-8")
    second = runner.invoke(cli, ["--db", str(db), "ingest", "--school", SCHOOL, str(policy)])
    assert second.exit_code == 0, second.output
    lines = second.output.splitlines()
    assert lines[0].startswith(f"{KEY}.txt: Social Media Policy (") and "version 2" in lines[0]
    assert lines[1].startswith(
        "  Social Media Policy changed from version 1 to 2: 1 clause added, 1 removed and "
        "2 reworded. Leaders can send staff a ready-made broadcast"
    )
    assert f"guidebot broadcast changes --school {SCHOOL} --policy {KEY}" in lines[1]
    shown = runner.invoke(
        cli, ["--db", str(db), "broadcast", "changes", "--school", SCHOOL, "--policy", KEY]
    )
    assert shown.exit_code == 0, shown.output
    assert "Title: Updated: Social Media Policy" in shown.output
    assert "two-factor authentication" in shown.output
