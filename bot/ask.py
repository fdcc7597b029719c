"""The `ask --json` contract, shared by the CLI and the evaluation so both
measure exactly what staff would see."""

from __future__ import annotations

from typing import Any

from knowledge.search import SearchResult


def ask_payload(result: SearchResult) -> dict[str, Any]:
    return {
        "question": result.question,
        "answered": result.answered,
        "offer_report": result.offer_report,
        "matches": [
            {
                "policy": match.policy,
                "section": match.section,
                "text": match.text,
                "score": round(match.score, 3),
            }
            for match in result.matches
        ],
    }
