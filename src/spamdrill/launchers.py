"""Installing a launcher script (spamdrill-deliver's and spamdrill-spamc's
``--make-launcher``): written beside its place, made executable, optionally checked, then
renamed over it, so a half-written or unchecked launcher never sits at the path master.cf
or a maildroprc names. Lean imports: both commands start once per message."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path


def package_parent() -> str:
    """The directory holding the ``spamdrill`` package, for the launcher's sys.path."""
    import spamdrill

    return str(Path(spamdrill.__file__).resolve().parent.parent)


def install(target: Path, text: str, check: Callable[[Path], str | None] | None = None,
            ) -> str | None:
    """Put ``text`` at ``target`` (mode 0755) through a temporary file beside it; ``check``
    judges the temporary file first (its refusal is returned and nothing is moved).
    Returns None when installed, else why not, in one line."""
    tmp = target.with_name(f".{target.name}.tmp")
    try:
        tmp.write_text(text)
        tmp.chmod(0o755)
        refusal = check(tmp) if check is not None else None
        if refusal:
            return refusal
        tmp.replace(target)
    except OSError as exc:
        return f"cannot write {target}: {exc.strerror}"
    finally:
        tmp.unlink(missing_ok=True)
    return None
