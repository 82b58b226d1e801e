"""The harness every Python test here shares: `check` prints one line per
check ("ok   ..." or "FAIL ...") and remembers the failures; `finish` prints
the count and gives the exit status. A test with no failed check exits 0."""

_failures = []


def check(condition, message):
    """Records one check; returns whether it held."""
    print(("ok   " if condition else "FAIL ") + message)
    if not condition:
        _failures.append(message)
    return bool(condition)


def failed():
    return len(_failures)


def finish():
    """Prints the number of failed checks; the exit status of the test."""
    print("%d failed checks" % len(_failures))
    return 1 if _failures else 0
