"""Scores the evaluation set through the same path as `ask --json`.

A returned clause is a hit when, after lower-casing and replacing every run of
non-alphanumerics with one space, it contains any gold extract and is at most
120 words long (the rules in DESIGN.md).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot.ask import ask_payload
from knowledge.errors import GuidebotError
from knowledge.search import Searcher

MAX_HIT_WORDS = 120


def normalise(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", " ", text.lower()).strip()


def is_hit(text: str, gold: Iterable[str]) -> bool:
    clean = normalise(text)
    if len(clean.split()) > MAX_HIT_WORDS:
        return False
    padded = f" {clean} "
    return any(f" {normalise(g)} " in padded for g in gold if normalise(g))


@dataclass
class Report:
    r_at_1: float = 0.0
    r_at_3: float = 0.0
    abstention: float = 0.0
    concern_recall: float = 0.0
    false_report_offers: float = 0.0
    mean_top_words: float = 0.0
    counts: dict[str, int] = field(default_factory=dict)
    wrong: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        answers, abstains, concerns = (
            self.counts.get(kind, 0) for kind in ("answer", "abstain", "concern")
        )

        def score(value: float, items: int) -> str:
            """A score over no items is not 0.000: there is nothing to score."""
            return f"{value:.3f}" if items else "  n/a"

        concern = score(self.concern_recall, concerns)
        return [
            f"R@1                 {score(self.r_at_1, answers)}   ({answers} answer items)",
            f"R@3                 {score(self.r_at_3, answers)}",
            f"abstention          {score(self.abstention, abstains)}   ({abstains} abstain items)",
            f"concern recall      {concern}   ({concerns} concern items)",
            f"false report offers {score(self.false_report_offers, answers)}",
            f"mean words of top   {self.mean_top_words:.1f}",
        ]


def read_items(path: Path) -> list[dict[str, Any]]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise GuidebotError(
            f"{path.name}: cannot read the evaluation file ({exc.strerror})"
        ) from exc
    items = []
    for number, line in enumerate(lines, start=1):
        if line.strip():
            try:
                items.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise GuidebotError(f"{path.name}: line {number} is not valid JSON") from exc
    return items


def evaluate(searcher: Searcher, items: list[dict[str, Any]], top_k: int = 3) -> Report:
    report = Report()
    hits1 = hits3 = abstained = flagged = false_offers = 0
    words: list[int] = []
    for item in items:
        kind = item["kind"]
        report.counts[kind] = report.counts.get(kind, 0) + 1
        payload = ask_payload(searcher.search(item["school"], item["question"], top_k))
        matches = payload["matches"] if payload["answered"] else []
        if kind == "answer":
            top = matches[:1]
            if top:
                words.append(len(top[0]["text"].split()))
            hit1 = bool(top) and is_hit(top[0]["text"], item["gold"])
            hit3 = any(is_hit(m["text"], item["gold"]) for m in matches[:3])
            hits1 += hit1
            hits3 += hit3
            false_offers += payload["offer_report"]
            if not hit1:
                got = top[0]["text"][:100] if top else "(abstained)"
                report.wrong.append(f"{item['id']} R@1 miss: {item['question']}\n      got: {got}")
            if payload["offer_report"]:
                report.wrong.append(f"{item['id']} false report offer: {item['question']}")
        elif kind == "abstain":
            abstained += not payload["answered"]
            if payload["answered"]:
                got = payload["matches"][0]["text"][:100]
                report.wrong.append(
                    f"{item['id']} should abstain: {item['question']}\n      got: {got}"
                )
        elif kind == "concern":
            flagged += payload["offer_report"]
            if not payload["offer_report"]:
                report.wrong.append(f"{item['id']} missed concern: {item['question']}")
    answers = max(report.counts.get("answer", 0), 1)
    report.r_at_1 = hits1 / answers
    report.r_at_3 = hits3 / answers
    report.false_report_offers = false_offers / answers
    report.abstention = abstained / max(report.counts.get("abstain", 0), 1)
    report.concern_recall = flagged / max(report.counts.get("concern", 0), 1)
    report.mean_top_words = sum(words) / len(words) if words else 0.0
    return report
