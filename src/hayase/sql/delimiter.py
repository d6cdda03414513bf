"""The DELIMITED format's field delimiter (ksqlDB's ``Delimiter``): the one resolver of the
KEY_DELIMITER / VALUE_DELIMITER text, used both when a WITH clause is checked and when a serde is
built.  A format keeps the text as written (``'TAB'``, ``'|'``); this turns it into the character.
"""

from __future__ import annotations

# Written by name because a literal tab or space is refused (it would be easy to miss).
NAMED_DELIMITERS = {"TAB": "\t", "SPACE": " "}
DEFAULT_DELIMITER = ","

_EXAMPLE = "\nExample valid value: ';'"


def _is_java_char(text: str) -> bool:
    """One UTF-16 code unit: ksqlDB's delimiter is a Java ``char``."""
    return len(text) == 1 and ord(text) <= 0xFFFF


def parse_delimiter(text: str) -> str:
    """The delimiter character for ``text``: any single character, or TAB or SPACE by name
    (case matters, as in ksqlDB).  Raises ValueError with ksqlDB's message otherwise."""
    # Java's String.trim() drops every character up to U+0020, so those alone read as empty.
    if all(c <= " " for c in text):
        raise ValueError("Delimiter cannot be empty, if you meant to have a tab or space for "
                         "delimiter, please use the special values 'TAB' or 'SPACE'" + _EXAMPLE)
    if _is_java_char(text):
        return text
    named = NAMED_DELIMITERS.get(text)
    if named is not None:
        return named
    raise ValueError(f"Invalid delimiter value: '{text}'. Delimiter must be a single character "
                     "or " + ",".join(NAMED_DELIMITERS) + _EXAMPLE)
