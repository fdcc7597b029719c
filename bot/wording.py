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


_NOT_SHARED = "I have not shared your message with anyone."


def concern_button_hint() -> str:
    return (
        f"You can also send a confidential report to the DSL with the button below. {_NOT_SHARED}"
    )


def concern_console_hint() -> str:
    return f"You can also type /concern to send a confidential report to the DSL. {_NOT_SHARED}"


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


# --- Concern forms ----------------------------------------------------------------------


def concern_form_title() -> str:
    """A Slack modal title: at most 24 characters."""
    return "Report a concern"


def concern_form_submit() -> str:
    return "Send to the DSL"


def concern_form_cancel() -> str:
    return "Cancel"


def concern_form_intro() -> str:
    return (
        "This goes privately to your school's Designated Safeguarding Lead (DSL), and to "
        "nobody the concern is about. Write what you saw, heard or were told, in the "
        "person's own words. If a child is in immediate danger, call 999 now, then tell "
        "the DSL in person."
    )


def concern_about_label() -> str:
    return "Who is the concern about?"


def concern_about_pupil() -> str:
    return "A pupil"


def concern_about_staff() -> str:
    return "A member of staff"


def concern_about_adult() -> str:
    return "Another adult"


def concern_role_label() -> str:
    return "If it is about a member of staff: is it the headteacher or a DSL?"


def concern_role_none() -> str:
    return "No"


def concern_role_headteacher() -> str:
    return "The headteacher"


def concern_role_dsl() -> str:
    return "A DSL or deputy DSL"


def concern_role_hint() -> str:
    return (
        "A concern about the headteacher goes to the chair of governors, and one about a "
        "DSL to the headteacher and the deputies: never to the person it is about."
    )


def concern_which_dsl_label() -> str:
    return "Which DSL?"


def concern_which_dsl_hint() -> str:
    return "Only if it is about a DSL, so that they are not the one told."


def concern_name_label() -> str:
    return "Their name or initials"


def concern_what_label() -> str:
    return "What was seen, heard or said"


def concern_what_hint() -> str:
    return "In the person's own words, as exactly as you can. Facts rather than opinions."


def concern_when_label() -> str:
    return "When and where"


def concern_when_placeholder() -> str:
    return "For example: Tuesday 14 May, about 10:40, Year 5 cloakroom"


def concern_danger_label() -> str:
    return "Is a child in immediate danger?"


def concern_yes() -> str:
    return "Yes"


def concern_no() -> str:
    return "No"


def concern_actions_label() -> str:
    return "What has been done so far"


def concern_actions_hint() -> str:
    return "Optional. For example: who else you told, or first aid given."


def concern_missing_choice() -> str:
    return "Please choose one."


def concern_missing_text() -> str:
    return "Please fill this in."


def concern_too_long(limit: int) -> str:
    return f"Please keep this to {limit} characters; you can tell the DSL the rest in person."


def concern_role_needs_staff() -> str:
    return (
        "You chose the headteacher or a DSL here, so please choose "
        f'"{concern_about_staff()}" above, or "{concern_role_none()}" here.'
    )


def concern_form_problems() -> str:
    return "Some answers are missing. Please check the questions marked below and send again."


def concern_danger_first() -> str:
    return (
        "CALL 999 NOW if a child is in immediate danger, then speak to your DSL in person "
        "straight away. Do not wait for a reply here."
    )


def concern_sent_title() -> str:
    """A Slack modal title: at most 24 characters."""
    return "Concern sent"


def concern_not_sent() -> str:
    return (
        "Sorry, I could not send your concern just now, so please speak to your Designated "
        "Safeguarding Lead (DSL) in person now and tell them what you wrote. If a child is in "
        "immediate danger, call 999."
    )


def concern_form_unavailable() -> str:
    return (
        "Sorry, the concern form could not be opened just now. Please press the button again, "
        "or speak to your Designated Safeguarding Lead (DSL) in person. If a child is in "
        "immediate danger, call 999."
    )


def concern_action_failed() -> str:
    return (
        "Sorry, that did not work just now. Please try again in a minute. If a child is in "
        "immediate danger, call 999."
    )


def concern_report_title() -> str:
    """A Slack modal title: at most 24 characters."""
    return "Safeguarding concern"


def concern_ref_label() -> str:
    return "Reference"


def concern_reported_label() -> str:
    return "Reported"


def concern_reported_by_label() -> str:
    return "Reported by"


def concern_state_label() -> str:
    return "Status"


def concern_state(state: str) -> str:
    return {"open": "Open", "acknowledged": "Acknowledged", "closed": "Closed"}.get(state, state)


def concern_acknowledged_by_label() -> str:
    return "Acknowledged by"


def concern_sent_to_label() -> str:
    return "Sent to"


def concern_urgent_flag() -> str:
    return "The reporter said a child was in immediate danger."


def concern_about_role_line(role: str) -> str:
    return {
        "headteacher": "It is about the headteacher.",
        "dsl": "It is about a DSL or deputy DSL.",
    }.get(role, "")


def concern_notes_label() -> str:
    return "Notes"


def concern_earlier_notes(count: int) -> str:
    return f"{count} earlier note{'s' if count != 1 else ''} not shown here: export the report."


def concern_outcome_label() -> str:
    return "Outcome"


def concern_note_title() -> str:
    """A Slack modal title: at most 24 characters."""
    return "Add a note"


def concern_note_label() -> str:
    return "Note"


def concern_note_hint() -> str:
    return "What you did or decided, and when. Only the people handling this concern see it."


def concern_note_submit() -> str:
    return "Save note"


def concern_close_title() -> str:
    """A Slack modal title: at most 24 characters."""
    return "Close concern"


def concern_close_label() -> str:
    return "Outcome"


def concern_close_hint() -> str:
    return (
        "What was decided and done, for example referred to children's social care, "
        "early help, monitoring, or no further action and why."
    )


def concern_close_submit() -> str:
    return "Close concern"


def concern_done_title() -> str:
    """A Slack modal title: at most 24 characters."""
    return "Done"


def concern_close_button() -> str:
    return "Close"


def reported_by(who: str) -> str:
    return f"Reported by {who}"


def concern_colleague_elsewhere(platform: str) -> str:
    """Who reported, when they are on another platform than the reader."""
    where = {"slack": "Slack", "teams": "Teams", "console": "the console"}.get(platform, platform)
    return f"a colleague on {where}"


def concern_use_private_chat() -> str:
    return (
        "To keep it confidential, I have sent this to your 1:1 chat with me. If it is not "
        "there, open a chat with me and type: report a concern."
    )


def concern_no_private_chat() -> str:
    return (
        "To keep it confidential, please open a 1:1 chat with me and type: report a concern. "
        "If a child is in immediate danger, call 999."
    )


def concern_card_send() -> str:
    return "Send to the DSL"


def concern_form_already_sent(ref: str) -> str:
    return f"You have already sent this form: your reference is {ref}. Nothing was sent twice."


# --- Safeguarding concerns ---------------------------------------------------------------
# Nothing here is ever given the content of a report, except the functions that show
# it to the people it was sent to (``concern_field``) and to the reporter's own form.

CONCERN_FIELDS = {
    "about": "Who it is about",
    "about_role": "Allegation about",
    "about_name": "Their name or initials",
    "what": "What was seen, heard or said",
    "when_where": "When and where",
    "immediate_danger": "Is a child in immediate danger?",
    "actions_taken": "What has been done so far",
}
"""The report's questions, as every form, view and export labels them."""


def concern_about(category: str, about_role: str = "none") -> str:
    """Who a report is about, without naming them: "a member of staff (the headteacher)"."""
    about = {"pupil": "a pupil", "staff": "a member of staff", "adult": "another adult"}.get(
        category, "someone"
    )
    if about_role == "headteacher":
        return f"{about}: an allegation about the headteacher"
    if about_role == "dsl":
        return f"{about}: an allegation about a Designated Safeguarding Lead"
    return about


def concern_call_999_now() -> str:
    return (
        "A child is in immediate danger: call 999 now, then speak to your Designated "
        "Safeguarding Lead (DSL) in person straight away. Do not wait for a reply here."
    )


def concern_sent(ref: str) -> str:
    return (
        "Thank you. Your concern has been sent to the Designated Safeguarding Lead (DSL). "
        f"Your reference is {ref}. I will tell you when the DSL has seen it. "
        "Keep what you know confidential, and do not investigate further yourself."
    )


def concern_alert_heading(ref: str) -> str:
    return f"New safeguarding concern {ref}"


def concern_alert_urgent() -> str:
    return (
        "URGENT: the person reporting said a child is in immediate danger. They were told "
        "to call 999 now and to speak to the DSL in person."
    )


def concern_alert_about(about: str) -> str:
    return f"About {about}."


def concern_lado(lado: str) -> str:
    return (
        "This is an allegation about an adult who works with children: speak to the Local "
        f"Authority Designated Officer (LADO) within one working day. LADO: {lado}"
    )


def concern_alert_next() -> str:
    return (
        "Press View to read the report (it is not shown here, to keep it confidential), and "
        "Acknowledge so the person reporting knows it has been seen."
    )


def concern_escalation_heading(ref: str, minutes: int) -> str:
    return (
        f"Safeguarding concern {ref} has not been acknowledged after {minutes} minutes, "
        "so it has been passed to you as well."
    )


def concern_field(label: str, value: str) -> str:
    return f"{label}: {value}"


def concern_yes_no(value: bool) -> str:
    return "Yes" if value else "No"


def concern_view_button() -> str:
    return "View"


def concern_acknowledge_button() -> str:
    return "Acknowledge"


def concern_note_button() -> str:
    return "Add a note"


def concern_close_with_outcome_button() -> str:
    return "Close with an outcome"


def concern_view_heading(ref: str, state: str) -> str:
    state_text = {"open": "not yet acknowledged", "acknowledged": "acknowledged"}.get(
        state, "closed"
    )
    return f"Safeguarding concern {ref} ({state_text})"


def concern_view_note(at: str, text: str) -> str:
    return f"Note, {at}: {text}"


def concern_view_outcome(at: str, text: str) -> str:
    return f"Closed {at}. Outcome: {text}"


def concern_seen_by_dsl(ref: str) -> str:
    """To the reporter. Never says what was decided."""
    return (
        f"The Designated Safeguarding Lead has seen your report {ref}. Thank you for "
        "passing it on. If you learn anything more, or are still worried, speak to them."
    )


def concern_acknowledged(ref: str) -> str:
    return f"You have acknowledged {ref}. The person who reported it has been told it was seen."


def concern_already_acknowledged(ref: str, at: str) -> str:
    return f"{ref} was already acknowledged at {at}."


def concern_noted(ref: str) -> str:
    return f"Your note has been added to {ref}."


def concern_closed(ref: str) -> str:
    return f"{ref} is closed and its outcome recorded."


def concern_already_closed(ref: str, at: str) -> str:
    return f"{ref} was already closed at {at}. You can still add notes to it."


def concern_access_refused(ref: str) -> str:
    return (
        f"Sorry, you are not one of the people safeguarding report {ref} was sent to, so "
        "you cannot open or change it. This attempt has been recorded."
    )


def concern_no_such_report(ref: str) -> str:
    return f"There is no safeguarding report with the reference {ref}."


def concern_field_missing(label: str) -> str:
    return f'Please fill in "{label}".'


def concern_field_too_long(label: str, limit: int) -> str:
    return f'"{label}" is too long: please keep it under {limit:,} characters.'


def concern_field_invalid(label: str) -> str:
    return f'Please choose an answer for "{label}".'


def concern_no_recipients() -> str:
    return (
        "Sorry, nobody has been set up to receive safeguarding concerns for this school, so "
        "your report was not sent. Please speak to your Designated Safeguarding Lead (DSL) in "
        "person now. If a child is in immediate danger, call 999."
    )


def concern_not_saved() -> str:
    return (
        "Sorry, your concern could not be sent just now. Please speak to your Designated "
        "Safeguarding Lead (DSL) in person now. If a child is in immediate danger, call 999."
    )


# The console's /concern questions.


def concern_console_intro() -> str:
    return (
        "Report a safeguarding concern to the Designated Safeguarding Lead (DSL). Answer each "
        "question on one line. Type /cancel at any time to stop without sending anything.\n"
        "If a child is in immediate danger, call 999 now."
    )


def concern_console_demo_routing(dsl: str) -> str:
    return (
        "Note: this is a demo. No safeguarding roles are set up for this school, so the report "
        f"goes to a pretend DSL ({dsl}) in this database, not to a real person."
    )


def concern_ask_about() -> str:
    return "Who is it about? Type 1 for a pupil, 2 for a member of staff, 3 for another adult."


def concern_ask_role() -> str:
    return (
        "Is it about the headteacher or a Designated Safeguarding Lead? Type 1 for neither, "
        "2 for the headteacher, 3 for a DSL."
    )


def concern_ask_name() -> str:
    return "Their name or initials?"


def concern_ask_what() -> str:
    return "What was seen, heard or said? Use the person's own words where you can."


def concern_ask_when_where() -> str:
    return "When and where did it happen?"


def concern_ask_danger() -> str:
    return "Is a child in immediate danger? (yes or no)"


def concern_ask_actions() -> str:
    return 'What has been done so far? (type "nothing" if nothing yet)'


def concern_ask_confirm() -> str:
    return "Send this report to the DSL now? (yes to send, no to cancel)"


def concern_ask_again(choices: str) -> str:
    return f"Sorry, I did not understand. Please type {choices}."


def concern_cancelled() -> str:
    return (
        "Cancelled: nothing was sent or saved. If you are worried about a child, speak to your "
        "Designated Safeguarding Lead (DSL) today."
    )


def concern_console_unavailable() -> str:
    return (
        "Reporting a concern is not available in this console session. Please speak to your "
        "Designated Safeguarding Lead (DSL) in person. If a child is in immediate danger, "
        "call 999."
    )


def keygen_advice() -> str:
    return (
        "Store this as GUIDEBOT_SECRET_KEY in the service's environment (never in guidebot.toml) "
        "and keep a copy somewhere safe: losing it means losing every safeguarding report."
    )


def concern_export_written(ref: str, path: str) -> str:
    return f"Wrote {ref} to {path} (readable by you only)."


def concern_console_help() -> str:
    return "Type /concern to report a safeguarding concern to the DSL, one question at a time."


def concern_no_recipients_allegation() -> str:
    return (
        "Sorry, this concern could not be sent: nobody other than the person it may be about "
        "has been set up to receive it, and it must never go to them. Nothing was saved. "
        "Please speak in person to the headteacher, or if it is about the headteacher, to the "
        "chair of governors; you can also contact your local authority's Designated Officer "
        "(LADO) directly. If a child is in immediate danger, call 999."
    )


def concern_view_acknowledged(who_and_when: str) -> str:
    return f"Acknowledged by {who_and_when}"


# --- Broadcasts: the Slack and Teams forms, status and acknowledgements (broadcast UI) ---------


def broadcast_form_title() -> str:
    return "New broadcast"


def broadcast_form_intro() -> str:
    return (
        "Send a message to staff. Each person gets it as a direct message from guidebot, "
        "and you can see who has read it with /broadcast status."
    )


def broadcast_form_submit() -> str:
    return "Send"


def broadcast_form_cancel() -> str:
    return "Cancel"


def broadcast_title_label() -> str:
    return "Title"


def broadcast_title_placeholder() -> str:
    return "e.g. Updated mobile phone policy"


def broadcast_message_label() -> str:
    return "Message"


def broadcast_message_hint() -> str:
    return "Say what has changed and what staff need to do."


def broadcast_policy_label() -> str:
    return "Policy to link (optional)"


def broadcast_policy_none() -> str:
    return "No policy"


def broadcast_audience_label() -> str:
    return "Who should receive it?"


def broadcast_audience_everyone() -> str:
    return "Everyone at the school"


def broadcast_audience_groups() -> str:
    return "Only these groups"


def broadcast_groups_label() -> str:
    return "Groups"


def broadcast_groups_hint() -> str:
    return 'Used only when you choose "Only these groups".'


def broadcast_ack_label() -> str:
    return "Acknowledgement"


def broadcast_ack_option() -> str:
    return "Ask each person to confirm they have read and understood it"


def broadcast_when_label() -> str:
    return "When should it be sent?"


def broadcast_when_now() -> str:
    return "Now"


def broadcast_when_later() -> str:
    return "At a time I choose"


def broadcast_send_at_label() -> str:
    return "Date and time (UK time)"


def broadcast_send_at_hint() -> str:
    return 'Used only when you choose "At a time I choose".'


def broadcast_send_on_label() -> str:
    return "Send on (leave empty to send now)"


def broadcast_send_time_label() -> str:
    return "At (UK time)"


def broadcast_card_send() -> str:
    return "Send broadcast"


def broadcast_form_problems() -> str:
    return "Please check these and send again:"


def broadcast_missing_title() -> str:
    return "Please give the broadcast a title."


def broadcast_missing_message() -> str:
    return "Please write the message staff should read."


def broadcast_too_long(limit: int) -> str:
    return f"Please keep this to {limit:,} characters or fewer."


def broadcast_no_groups_chosen() -> str:
    return "Please choose at least one group, or send it to everyone."


def broadcast_unknown_group() -> str:
    return "One of these groups is no longer in the staff directory: please choose again."


def broadcast_unknown_policy() -> str:
    return "That policy is no longer in guidebot: please choose another, or none."


def broadcast_no_send_time() -> str:
    return 'Please choose the date and time to send it, or choose "Now".'


def broadcast_half_send_time() -> str:
    return "Please give both a date and a time, or leave both empty to send it now."


def broadcast_send_time_past() -> str:
    return 'That time has already passed: please choose a later one, or choose "Now".'


def broadcast_sent(title: str, count: int) -> str:
    people = "person" if count == 1 else "people"
    return f"\u201c{title}\u201d is on its way to {count} {people}."


def broadcast_scheduled(title: str, when: str) -> str:
    return f"\u201c{title}\u201d will be sent on {when}."


def broadcast_done_title() -> str:
    return "Broadcast"


def broadcast_not_sent() -> str:
    return (
        "Sorry, the broadcast could not be sent just now. Nothing was sent: please try "
        "again in a few minutes."
    )


def broadcast_form_unavailable() -> str:
    return "Sorry, the broadcast form could not be opened. Please try /broadcast again."


def broadcast_status_heading() -> str:
    return "Recent broadcasts"


def broadcast_none_yet() -> str:
    return "No broadcasts have been sent at this school yet."


def broadcast_status_unavailable() -> str:
    return "Sorry, the broadcasts could not be shown just now. Please try again in a minute."


def broadcast_state_line(state: str, author: str, when: str) -> str:
    if state == "scheduled":
        return f"Scheduled by {author} for {when}"
    if state == "cancelled":
        return f"Cancelled (was from {author}, {when})"
    return f"Sent by {author} on {when}"


def broadcast_counts(recipients: int, delivered: int, acknowledged: int, requires_ack: bool) -> str:
    counts = f"Sent to {recipients} \u00b7 delivered {delivered}"
    if requires_ack:
        counts += f" \u00b7 acknowledged {acknowledged}"
    return counts


def broadcast_outstanding(names: str) -> str:
    return f"Not yet acknowledged: {names}"


def broadcast_everyone_acknowledged() -> str:
    return "Everyone has acknowledged it."


def broadcast_unreachable(names: str) -> str:
    return f"Could not be reached on Slack or Teams: {names}"


def broadcast_and_more(count: int) -> str:
    return f"and {count} more"


def broadcast_chasers(count: int) -> str:
    return f"Reminders sent: {count}"


def broadcast_home_heading() -> str:
    return "Broadcasts"


def broadcast_new_button() -> str:
    return "New broadcast"


def broadcast_offer_line(policy: str) -> str:
    return f"\u201c{policy}\u201d has changed and staff have not been told yet."


def broadcast_prepare_button() -> str:
    return "Prepare a broadcast"


def broadcast_ack_recorded() -> str:
    return "Thank you: we have recorded that you have read and understood it."


def broadcast_ack_already() -> str:
    return "You have already confirmed this one. Thank you."


def broadcast_ack_not_recipient() -> str:
    return "This broadcast was not sent to you, so there is nothing to confirm."


def broadcast_ack_unknown() -> str:
    return "Sorry, that broadcast could not be found. It may have been withdrawn."


def broadcast_ack_failed() -> str:
    return (
        "Sorry, your confirmation could not be recorded just now. Please press the button "
        "again in a minute."
    )


def broadcast_ack_done_line(when: str) -> str:
    return f"\u2705 You confirmed you have read and understood this on {when}."


def broadcast_use_private_chat() -> str:
    return "Broadcasts are made in your 1:1 chat with me: open it and type broadcast."


def broadcast_form_already_sent() -> str:
    return "This form has already been sent, so nothing more was sent."


def broadcast_not_set_up() -> str:
    return (
        "Broadcasts are not set up here yet: please ask whoever looks after guidebot "
        "to load the staff list."
    )


# --- Broadcasts: messages, refusals, chasers and policy changes (broadcast core) ---------------


def broadcast_dm_ack_button() -> str:
    return "I have read and understood"


def broadcast_dm_text(
    title: str,
    message: str,
    author: str,
    policy: str | None,
    next_review: str | None,
    requires_ack: bool,
) -> str:
    """The direct message each member of staff receives."""
    lines = [f"\U0001f4e3 {title}", "", message.strip(), ""]
    if policy:
        review = f" (next review {next_review})" if next_review else ""
        lines.append(f"Policy: {policy}{review}. Ask me anything about it.")
    lines.append(f"Sent by {author}.")
    if requires_ack:
        lines.append('When you have read it, please press "I have read and understood".')
    return "\n".join(lines)


def broadcast_chaser_text(title: str, sent_on: str, dm_text: str) -> str:
    """A gentle reminder, with the original message again underneath."""
    return (
        f'Just a gentle reminder: "{title}", sent on {sent_on}, is still waiting for you to '
        "confirm you have read it. It only takes a moment: the message is below, with the "
        "button at the end. Thank you!\n\n" + dm_text
    )


def broadcast_refused_not_leader() -> str:
    return (
        "Sorry, only school leaders can send broadcasts to staff. If something needs to go "
        "out to everyone, please ask a member of the senior leadership team."
    )


def broadcast_refused_not_in_directory() -> str:
    return (
        "Sorry, I cannot find you in the school's staff directory, so I cannot send a "
        "broadcast for you. Please ask whoever looks after guidebot to add you."
    )


def broadcast_refused_title(limit: int) -> str:
    return f"Please give the broadcast a title of up to {limit} characters."


def broadcast_refused_message(limit: int) -> str:
    return f"Please write the message staff should read, in up to {limit:,} characters."


def broadcast_refused_policy(key: str) -> str:
    return f"There is no policy called {key!r} at this school: please choose another, or none."


def broadcast_refused_group(group: str, known: str) -> str:
    return f"There is no group called {group!r} in the staff directory (groups: {known})."


def broadcast_refused_nobody() -> str:
    return (
        "Nobody in the staff directory would receive this broadcast: please choose other "
        "groups, or ask whoever looks after guidebot to import the staff list."
    )


def broadcast_refused_time() -> str:
    return "Please give the time to send it with its time zone, within the next year."


def broadcast_refused_cancel() -> str:
    return "Only a scheduled broadcast that has not gone out yet can be cancelled."


def policy_update_title(policy: str) -> str:
    return f"Updated: {policy}"


def policy_update_intro(policy: str, version: int) -> str:
    return f"The {policy} has been updated (version {version}). What has changed:"


def policy_change_added(where: str, text: str) -> str:
    return f"\u2022 New{where}: \u201c{text}\u201d"


def policy_change_removed(where: str, text: str) -> str:
    return f"\u2022 Removed{where}: \u201c{text}\u201d"


def policy_change_reworded(where: str, old: str, new: str) -> str:
    if old:
        return f"\u2022 Reworded{where}: \u201c{old}\u201d is now \u201c{new}\u201d"
    return f"\u2022 Reworded{where}: now \u201c{new}\u201d"


def policy_change_more(count: int) -> str:
    return f"\u2022 and {count} more {'change' if count == 1 else 'changes'}."


def policy_update_closing() -> str:
    return "Please read the updated policy; you can ask me about any part of it."


def policy_changes_summary(
    policy: str, old_version: int, new_version: int, added: int, removed: int, reworded: int
) -> str:
    parts = [
        f"{count} {what}"
        for count, what in ((added, "added"), (removed, "removed"), (reworded, "reworded"))
        if count
    ]
    if parts:
        noun = "clause" if (added or removed or reworded) == 1 else "clauses"
        parts[0] = parts[0].replace(" ", f" {noun} ", 1)
    if not parts:
        return f"{policy}: version {new_version} says the same as version {old_version}."
    listed = parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]
    return f"{policy} changed from version {old_version} to {new_version}: {listed}."


def policy_changes_how_to_send(school: str, key: str) -> str:
    return (
        "Leaders can send staff a ready-made broadcast of these changes: it is offered under "
        '"New broadcast" in Slack and Teams, and '
        f"`guidebot broadcast changes --school {school} --policy {key}` prints it."
    )


def staff_import_summary(added: int, updated: int, unchanged: int, left: int) -> str:
    return (
        f"Staff directory: {added} added, {updated} updated, {unchanged} unchanged, "
        f"{left} marked as left."
    )


# --- Reminders and the weekly HR digest (reminders/digest/scheduler) ---------------------------


def long_date(day: date) -> str:
    """``2 March 2026``: how dates are written to staff."""
    return f"{day.day} {day:%B %Y}"


def _days(count: int) -> str:
    return "1 day" if count == 1 else f"{count} days"


def review_reminder(policy: str, review_date: date, today: date) -> str:
    left = (review_date - today).days
    if left > 0:
        return (
            f"Reminder: the {policy} is due for review on {long_date(review_date)} "
            f"(in {_days(left)}). When it has been reviewed, please send the new version to "
            "whoever looks after guidebot so staff are quoted the current policy."
        )
    if left == 0:
        return (
            f"The {policy} is due for review today. When it has been reviewed, please send the "
            "new version to whoever looks after guidebot so staff are quoted the current policy."
        )
    return (
        f"The {policy} was due for review on {long_date(review_date)} and is now overdue "
        f"by {_days(-left)}. Please review it, or agree a new review date, and send the "
        "new version or date to whoever looks after guidebot."
    )


def training_due(course: str, expires_on: date, today: date) -> str:
    return (
        f"Reminder: your {course} runs out on {long_date(expires_on)} "
        f"(in {_days((expires_on - today).days)}). Please book or complete it before then; "
        "HR will record it when you have."
    )


def training_expired(course: str, expires_on: date, today: date) -> str:
    return (
        f"Your {course} ran out on {long_date(expires_on)}. Please complete it as soon as you "
        "can and let HR know, so your record is up to date."
    )


def digest_title(school: str, first_day: date, last_day: date) -> str:
    return f"Weekly digest for {school}: {long_date(first_day)} to {long_date(last_day)}"


def digest_questions(asked: int, answered: int) -> str:
    noun = "question" if asked == 1 else "questions"
    return f"Questions: {asked} {noun} asked, {answered} answered from the policies."


def digest_top_topics() -> str:
    return "Top topics:"


def digest_topic(policy: str, section: str, count: int) -> str:
    where = f"{policy}, {section}" if section else policy
    return f"{where} ({count})"


def digest_gaps(shown: int, held_back: int) -> str:
    if shown == 0 and held_back == 0:
        text = "Questions the policies did not answer: none."
    else:
        text = f"Questions the policies did not answer ({shown}): these are the gaps to fill."
    if held_back:
        more = "1 more was" if held_back == 1 else f"{held_back} more were"
        text += (
            f" {more} not stored because it may have described a safeguarding concern "
            "(the person was offered the report form)."
        )
    return text


def digest_not_helpful(count: int) -> str:
    if count == 0:
        return 'Answers marked "not helpful": none.'
    return f'Answers marked "not helpful" ({count}):'


def digest_not_helpful_item(question: str, policy: str | None, section: str | None) -> str:
    if policy:
        where = f"{policy}, {section}" if section else policy
        return f"“{question}”: answered from {where}"
    return f"“{question}”"


def digest_broadcasts_unavailable() -> str:
    return "Broadcasts: not available in this installation yet."


def digest_broadcasts(count: int) -> str:
    if count == 0:
        return "Broadcasts sent this week: none."
    return f"Broadcasts sent this week ({count}):"


def digest_broadcast(title: str, requires_ack: bool, acknowledged: int, recipients: int) -> str:
    if not requires_ack:
        return f"{title}: sent to {recipients} (no acknowledgement asked for)"
    rate = round(100 * acknowledged / recipients) if recipients else 0
    return f"{title}: {acknowledged} of {recipients} acknowledged ({rate}%)"


def digest_outstanding(names: str, more: int) -> str:
    text = f"Still to acknowledge: {names}"
    return f"{text} and {more} more" if more else text


def digest_training_due(count: int, days: int) -> str:
    if count == 0:
        return f"Training running out in the next {days} days: none."
    return f"Training running out in the next {days} days ({count}):"


def digest_training_overdue(count: int) -> str:
    if count == 0:
        return "Training overdue: none."
    return f"Training overdue ({count}):"


def digest_training_item(person: str, course: str, expires_on: date | None, state: str) -> str:
    if expires_on is None:
        return f"{person}: {course} (no record of it)"
    if state == "expired":
        return f"{person}: {course} (ran out {long_date(expires_on)})"
    return f"{person}: {course} (runs out {long_date(expires_on)})"


def digest_training_missing(course: str, names: str, more: int) -> str:
    text = f"{course}: no record for {names}"
    return f"{text} and {more} more" if more else text


def digest_reviews(count: int, days: int) -> str:
    if count == 0:
        return f"Policies due for review in the next {days} days: none."
    return f"Policies due for review in the next {days} days or overdue ({count}):"


def digest_review_item(policy: str, review_date: date, today: date) -> str:
    if review_date < today:
        return f"{policy}: overdue since {long_date(review_date)}"
    return f"{policy}: due {long_date(review_date)}"


def digest_concerns(
    new: int, acknowledged: int, closed: int, still_open: int, median_minutes: float | None
) -> str:
    text = (
        f"Safeguarding concerns (numbers only): {new} new, {acknowledged} acknowledged, "
        f"{closed} closed this week; {still_open} open at the end of the week."
    )
    if median_minutes is not None:
        shown = f"{median_minutes:.0f}" if median_minutes >= 10 else f"{median_minutes:.1f}"
        unit = "minute" if shown == "1.0" else "minutes"
        text += f" Median time to acknowledgement: {shown} {unit}."
    return text


def digest_and_more(count: int) -> str:
    return f"… and {count} more"
