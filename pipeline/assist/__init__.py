"""Assist: what the agent and the supervisor should know, from every event of the call.

In: every event a call emits, in order. `rules` fires alerts from a YAML rule file, `knowledge`
matches what the customer said to a YAML FAQ with the sentence encoder of `embed`, `feelings`
names how the customer feels each turn, and `call_assist` runs them for one call; `summary`
picks the lines of a post-call summary.
Out: `AlertEvent`, `SuggestionEvent`, `FeelingEvent`, summary lines.
"""

from pipeline.assist.summary import call_summary

__all__ = ["call_summary"]
