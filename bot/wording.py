"""Every sentence staff read, in one place, so wording is reviewed together.

Plain, kind British English. No function here echoes a message body back
except where staff asked a question and expect to see their own words.
"""

from __future__ import annotations

from datetime import date

DEFAULT_CONTACT = "your line manager or the headteacher"


def welcome(school_name: str) -> str:
    return (
        f"Hello! I answer questions from {school_name}'s policies by quoting the part "
        "that covers it. Ask me anything, for example: "
        '"can I accept a friend request from an ex-pupil?"\n'
        "Type /help for more, /schools to switch school, or /quit to leave."
    )


def help_text() -> str:
    return (
        "Ask a question in your own words and I will quote the policy clause that covers it, "
        "with the policy name and section, plus one or two related clauses.\n"
        "If I cannot find it, I will say so and tell you who to ask.\n"
        "Commands: /schools lists schools, /school SLUG switches, /quit leaves.\n"
        "If you are worried about a child, speak to your Designated Safeguarding Lead (DSL) "
        "straight away. If a child is in immediate danger, call 999."
    )


def answer_heading(policy: str, section: str, number: str | None) -> str:
    where = section or "general"
    if number:
        where = f"{where}, paragraph {number}"
    return f"From {policy} ({where}):"


def review_overdue(next_review: date) -> str:
    return (
        f"Please note: this policy was due for review in {next_review:%B %Y}, "
        "so check with the policy's owner that it is still current."
    )


def see_also() -> str:
    return "See also:"


def not_found(contact: str | None, gap_recorded: bool) -> str:
    who = contact or DEFAULT_CONTACT
    text = (
        "Sorry, I could not find a part of the school's policies that answers that. "
        f"Please ask {who}."
    )
    if gap_recorded:
        text += " I have noted the question so the policy can be improved."
    return text


def concern_offer() -> str:
    return (
        "It sounds as though this could be a safeguarding concern. Please tell your "
        "Designated Safeguarding Lead (DSL) today, in person if you can. If a child is in "
        "immediate danger, call 999."
    )


def something_went_wrong() -> str:
    return (
        "Sorry, something went wrong while I was looking that up. Please try again, or ask "
        f"{DEFAULT_CONTACT}. If you are worried about a child, speak to your Designated "
        "Safeguarding Lead (DSL) now."
    )


def empty_question() -> str:
    return 'Please type a question, for example: "can I post photos of pupils on my own Instagram?"'


def question_trimmed(limit: int) -> str:
    return f"That message is very long, so I searched using its first {limit} characters."


def school_switched(name: str) -> str:
    return f"Now answering from {name}'s policies."


def unknown_school(slug: str, known: list[str]) -> str:
    return f"I do not know a school called {slug!r}. Schools here: {', '.join(known)}."


def samples_loaded(count: int) -> str:
    return f"First run: loaded the {count} bundled sample schools into the knowledge base."


def goodbye() -> str:
    return "Goodbye, and thank you."


def help_text_chat(school_name: str) -> str:
    return (
        f"Hello! I answer questions from {school_name}'s policies by quoting the part that "
        "covers it, with the policy and section it comes from. Ask in your own words, for "
        'example: "can I accept a friend request from an ex-pupil?"\n'
        "If I cannot find an answer I will say so and tell you who to ask.\n"
        "If you are worried about a child, speak to your Designated Safeguarding Lead (DSL) "
        "straight away. If a child is in immediate danger, call 999."
    )


def helpful_label() -> str:
    return "Helpful"


def not_helpful_label() -> str:
    return "Not helpful"


def report_label() -> str:
    return "Report a concern to the DSL"


def pass_on_label(contact: str | None) -> str:
    return f"Pass my question to {contact}" if contact else "Pass my question on"


def thanks_for_feedback() -> str:
    return "Thank you, that helps us improve the answers."


def button_expired() -> str:
    return "Sorry, that button has expired. Please ask your question again."


def report_how() -> str:
    return (
        "Please speak to your Designated Safeguarding Lead (DSL) today, in person if you can, "
        "and record the concern the way your school does. If a child is in immediate danger, "
        "call 999."
    )


def passed_on(contact: str | None) -> str:
    who = contact or "the policy contact"
    return f"Thank you. I have passed your question to {who}, who will get back to you."


def pass_on_failed(contact: str | None) -> str:
    who = contact or "the policy contact"
    return (
        f"Sorry, I could not pass your question to {who} just now. Please press the button "
        "again in a few minutes, or ask them directly."
    )


def ask_prompt() -> str:
    return (
        'Type your question here in your own words, for example "can I post photos of '
        'pupils on my own Instagram?", and I will quote the part of the policy that covers it.'
    )


def already_passed_on(contact: str | None) -> str:
    who = contact or "the policy contact"
    return f"That question has already been passed to {who}."


def passed_on_to_contact(question: str) -> str:
    return (
        "A member of staff asked a question that the school's policies do not seem to answer, "
        f'and asked for it to be passed to you:\n"{question}"'
    )


# --- Slack App Home and Block Kit layout ----------------------------------------------


def source_line(policy: str, where: str) -> str:
    """Where a quoted clause comes from; ``policy`` may already carry formatting."""
    return f"From {policy} ({where})"


def rest_in_policy(policy: str) -> str:
    return f"This clause is too long to show in full here. Please read the rest in the {policy}."


def asked_by(who: str) -> str:
    return f"Asked by {who}"


def home_title(school_name: str) -> str:
    return f"Policy help for {school_name}"


def home_intro() -> str:
    return (
        "Ask me a question in your own words and I will quote the part of the school's "
        "policies that covers it, with the policy and section it comes from. Send me a "
        "message here, mention me in a channel, or type /policy and your question."
    )


def home_safeguarding() -> str:
    return (
        "If you are worried about a child, speak to your Designated Safeguarding Lead (DSL) "
        "straight away. If a child is in immediate danger, call 999."
    )


def recent_questions_heading() -> str:
    return "Your recent questions"


def no_recent_questions() -> str:
    return (
        "You have not asked me anything yet. Try, for example: "
        '"can I accept a friend request from an ex-pupil?"'
    )


def recent_question_note(asked_on: str | None, answered: bool) -> str:
    """The small print after one of your recent questions ("" when there is none)."""
    parts = [asked_on] if asked_on else []
    if not answered:
        parts.append("not found in the policies, so it was noted for the school")
    return ", ".join(parts)


def ask_question_label() -> str:
    return "Ask a question"


def report_concern_label() -> str:
    return "Report a concern"


def dsl_panel_note() -> str:
    return "You are a Designated Safeguarding Lead: concerns you need to act on will appear here."


def leader_panel_note() -> str:
    return "You are a school leader: your policy updates and who has read them will appear here."


# --- Teams cards ----------------------------------------------------------------------


def teams_colleague(user_id: str) -> str:
    """Who asked, on a Teams card: a card cannot name someone from their id alone."""
    return f"a colleague (Teams user id {user_id})"


def teams_welcome_intro() -> str:
    return (
        "Ask me a question in your own words and I will quote the part of the school's "
        "policies that covers it, with the policy and section it comes from. Send me a "
        "message here, or mention me with @ in a channel or group chat."
    )


def teams_welcome_example() -> str:
    return 'For example: "can I accept a friend request from an ex-pupil?"'
