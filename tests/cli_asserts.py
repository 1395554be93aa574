"""Assertions shared by the command-line tests."""

def one_line_error(code, err, *words):
    """Exit 2, exactly one line starting 'error:', no traceback; returns that line."""
    lines = [ln for ln in err.strip().splitlines() if ln.startswith("error:")]
    assert code == 2, err
    assert len(lines) == 1 and "Traceback" not in err, err
    for w in words:
        assert w in lines[0], lines[0]
    return lines[0]
