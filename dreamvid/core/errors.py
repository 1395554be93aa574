"""Typed errors. Every stage raises a subclass of DreamvidError whose message names the problem
and the fix; only the CLI turns them into an exit code (2) and a one-line message."""


# what str.splitlines() breaks at: a message quoting the user's text (a schedule written over
# several lines in a preset) shows these as escapes, so it stays one line
_LINE_BREAKS = "\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029"


class DreamvidError(Exception):
    """Base class: the message is shown to the user as it is, on one line (a line break in it,
    from quoted input, is shown as its escape, \\n)."""

    def __str__(self) -> str:
        text = super().__str__()
        for ch in _LINE_BREAKS:
            if ch in text:
                text = text.replace(ch, ch.encode("unicode_escape").decode("ascii"))
        return text


class InputError(DreamvidError):
    """An input file or folder is missing, unreadable, empty or not what it claims to be."""


class OutputError(DreamvidError):
    """The output path cannot be written (folder missing, not writable, equals the input, disk full)."""


class BusyError(OutputError):
    """Another render (another process, or another call in this one) is writing the same output."""


class ConfigError(DreamvidError):
    """A setting is out of range, of the wrong type, or unknown (presets, command line)."""


class ModelError(DreamvidError):
    """A network cannot be found, downloaded or loaded."""


class LayerError(ModelError):
    """A layer name or channel index does not exist in the chosen network."""


class ResumeError(DreamvidError):
    """A work folder holds a render made with other settings or another input."""


class Cancelled(DreamvidError):
    """A render was stopped on request (the API's cancel event, or its progress callback returning
    False) at a frame's end: the finished frames are kept, and the same call again resumes."""


def reason(exc: BaseException) -> str:
    """What a one-line error quotes of a library's exception: its message's first line, or its
    type's name where it has none, at most 160 characters."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:160]
