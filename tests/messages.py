"""What the tests read in the package's messages: one line of an error, the lines a terminal shows."""


def one_line(err) -> str:
    """The text of ``err`` (a pytest ``ExceptionInfo``), asserted to be one non-empty line."""
    text = str(err.value)
    assert text and "\n" not in text, repr(text)
    return text


def screen_lines(text: str) -> list[str]:
    """The non-blank lines of ``text`` as a terminal shows them (a progress bar's ``\\r`` starts a line)."""
    return [line for line in text.replace("\r", "\n").splitlines() if line.strip()]
