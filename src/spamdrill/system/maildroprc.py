"""maildrop's filter files, read for what the budget and the lab need (sans-IO).

From maildropfilter(7) (maildrop 2.9.3) and measured on Debian's maildrop:

- ``NAME=value``: a variable. In double quotes ``$NAME`` and ``${NAME}`` are substituted
  (a backtick command goes to the shell as written: measured, see below); ``\\$`` is a
  literal ``$``; a ``$`` not followed by a letter, ``_`` or ``{`` stays; an unset variable
  becomes empty. Single quotes substitute nothing.
- maildrop sets some variables itself, per delivery (``LOGNAME``, ``HOME``, ``DEFAULT``,
  ``SIZE``, ``FROM``, ``$1``...): they stay symbolic here.
- ``include "file"``: read when reached, with the same variables.
- ``xfilter "command"``: run through ``$SHELL -c``; a non-zero exit makes maildrop exit 75
  ("Unable to filter message.") unless it is inside ``exception { }``, which catches it and
  carries on after the block (measured: the message is then delivered unfiltered).
- ``MAILDIRQUOTA``: the quota maildrop enforces on Maildir deliveries.
- Shell injection (measured on maildrop 2.9.3): in a double-quoted ``xfilter "..."`` or
  ``to "| ..."`` maildrop pastes a variable's text into the command before ``$SHELL -c``
  parses it, so a sender's ``"; cmd; "`` runs ``cmd`` whatever shell quoting surrounds it.
  Single-quoted strings and backticks are handed to the shell as written; maildrop's
  variables are in its environment, and the shell expands ``"$NAME"`` safely (unquoted:
  split into words and globbed). Tainted: ``$1``-``$9`` (pipe(8)'s recipient and sender
  arguments), ``FROM``, ``SENDER``, ``RECIPIENT``, ``EXTENSION``, ``MATCH*``, and any
  variable assigned from those or from a backtick command (a header read by reformail).
  ``LOGNAME`` is the account maildrop found for ``-d``: not free text, not tainted.

The grammar is read only as far as these need: statements, strings, comments, ``if``/
``else``/``exception`` blocks. Everything else (``to``, ``log``, patterns) is skipped.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable
from dataclasses import dataclass, field

from spamdrill.system.values import Sourced, at, bad

RUNTIME = {"LOGNAME", "HOME", "DEFAULT", "SIZE", "FROM", "HOSTNAME", "MAILFILTER", "PATH",
           "SENDMAIL", "SHELL", "USER", "LINES", "EXITCODE", "RETURNCODE", "MATCH",
           "SENDER", "RECIPIENT", "HOST", "EXTENSION", "UMASK", "TZ", "LANG"}
_VAR = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_SHELL_OPS = {"|", "||", "&&", ";", "&", ">", ">>", "<", "2>", "2>&1"}
TAINTED = {"FROM", "SENDER", "RECIPIENT", "EXTENSION", *(str(n) for n in range(10))}
_REF = re.compile(r"\\\$|\$\{(\w+)\}|\$([A-Za-z_]\w*|[0-9])")
Reader = Callable[[str], str | None]  # path -> text, None when there is no such file


@dataclass(frozen=True)
class XFilter:
    where: str
    command: str  # after maildrop's substitution
    in_exception: bool
    conditions: tuple[str, ...]
    spamc: list[tuple[str, str]] | None  # spamc's words (word, where), None: no spamc
    unresolved: tuple[str, ...] = ()  # runtime variables left in spamc's words
    program: str = "spamc"  # or "spamdrill-spamc" (spamc's flags, plus its own)
    deadline: float | None = None  # spamdrill-spamc --deadline: the whole check's bound

    @property
    def size_limit(self) -> int | None:
        """``$SIZE < N`` in an enclosing condition: mail at or above N skips the filter."""
        for cond in self.conditions:
            m = re.search(r"\$SIZE\s*<\s*(\d+)", cond)
            if m:
                return int(m.group(1))
        return None


@dataclass
class Maildroprc:
    path: str
    variables: dict[str, Sourced[str]] = field(default_factory=dict)
    xfilters: list[XFilter] = field(default_factory=list)
    includes: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    risks: list[str] = field(default_factory=list)  # shell injection, each with its line

    @property
    def spamc_filters(self) -> list[XFilter]:
        return [x for x in self.xfilters if x.spamc is not None]


def parse(text: str, path: str, read: Reader | None = None) -> Maildroprc:
    rc = Maildroprc(path)
    _Parser(rc, read or (lambda _p: None)).run(text, path, in_exception=0, conditions=())
    return rc


class _Parser:
    def __init__(self, rc: Maildroprc, read: Reader) -> None:
        self.rc = rc
        self.read = read
        self.depth = 0
        self.tainted = set(TAINTED)

    def run(self, text: str, path: str, in_exception: int,
            conditions: tuple[str, ...]) -> None:
        tokens = list(_tokens(text, path))
        self.block(tokens, 0, in_exception, conditions)

    def block(self, toks: list[_Tok], i: int, exc: int, conds: tuple[str, ...]) -> int:
        """Statements until the matching ``}`` (or the end); returns the index after it."""
        pending: str | None = None  # the condition of the next block
        while i < len(toks):
            t = toks[i]
            if t.kind == "}":
                return i + 1
            if t.kind == "{":
                inner = conds + ((pending,) if pending else ())
                i = self.block(toks, i + 1, exc, inner)
                pending = None
                continue
            if t.kind == "word" and t.text in ("if", "elsif", "while") and i + 1 < len(toks):
                pending, i = toks[i + 1].text if toks[i + 1].kind == "cond" else "", i + 2
                continue
            if t.kind == "word" and t.text == "else":
                pending, i = "else", i + 1
                continue
            if t.kind == "word" and t.text == "exception" and i + 1 < len(toks) \
                    and toks[i + 1].kind == "{":
                i = self.block(toks, i + 2, exc + 1, conds)
                continue
            i = self.statement(toks, i, exc, conds)
        return i

    def statement(self, toks: list[_Tok], i: int, exc: int, conds: tuple[str, ...]) -> int:
        """One simple statement up to its end of line; returns the next index."""
        j = i
        while j < len(toks) and toks[j].kind not in ("end", "{", "}"):
            j += 1
        words = toks[i:j]
        nxt = j + 1 if j < len(toks) and toks[j].kind == "end" else j
        if not words:
            return nxt
        head = words[0]
        self.check_shell(words)
        if head.kind == "word" and "=" in head.text and \
                _VAR.fullmatch(head.text.split("=", 1)[0]):
            self.taint(head.text.split("=", 1)[0], words)
        if head.kind == "word" and head.text.endswith("=") and _VAR.fullmatch(head.text[:-1]):
            value = "".join(self.value(w) for w in words[1:])
            self.rc.variables[head.text[:-1]] = Sourced(value, head.where)
        elif head.kind == "word" and "=" in head.text and \
                _VAR.fullmatch(head.text.split("=", 1)[0]):
            name, _, first = head.text.partition("=")
            rest = "".join(self.value(w) for w in words[1:])
            self.rc.variables[name] = Sourced(first + rest, head.where)
        elif head.kind == "word" and head.text == "include" and len(words) > 1:
            self.include(self.value(words[1]), head.where, exc, conds)
        elif head.kind == "word" and head.text == "xfilter" and len(words) > 1:
            self.xfilter(words[1:], head.where, exc, conds)
        return nxt

    def taint(self, name: str, words: list[_Tok]) -> None:
        """An assignment from a backtick command or a tainted variable taints its name."""
        first = _Tok("word", words[0].text.split("=", 1)[1], words[0].where)
        values = [first, *words[1:]]
        dirty = any(w.kind == "bq" for w in values) or any(
            _tainted(n, self.tainted) for w in values if w.kind in ("dq", "word")
            for n in _refs(w.text))
        if dirty:
            self.tainted.add(name)
        else:
            self.tainted.discard(name)

    def check_shell(self, words: list[_Tok]) -> None:
        """Tainted text where a shell parses it: pasted by maildrop into a double-quoted
        xfilter or ``to``/``cc`` pipe (injection), or unquoted for the shell (split and
        globbed) in a single-quoted one or a backtick command."""
        head = words[0].text if words[0].kind == "word" else ""
        command = head == "xfilter" or (
            head in ("to", "cc") and len(words) > 1 and words[1].text.lstrip().startswith("|"))
        for tok in words:
            if command and tok.kind == "dq":
                for name in _refs(tok.text):
                    if _tainted(name, self.tainted):
                        self.rc.risks.append(_pasted(tok.where, head, name))
            if (command and tok.kind == "sq") or tok.kind == "bq":
                for name in _unquoted_refs(tok.text):
                    if _tainted(name, self.tainted):
                        what = "a backtick command" if tok.kind == "bq" else head
                        self.rc.risks.append(
                            f"{tok.where}: {what} leaves ${name} (sender or recipient "
                            "text) unquoted for the shell: split into words and globbed, "
                            f"it can add options and arguments. Safe: \"${name}\" (in "
                            "the shell's double quotes)")

    def value(self, tok: _Tok) -> str:
        if tok.kind in ("dq", "bq", "word"):
            return self.substitute(tok.text, tok.where)
        return tok.text

    def substitute(self, text: str, where: str) -> str:
        def one(m: re.Match[str]) -> str:
            if m.group(0) == "\\$":
                return "$"
            name = m.group(1) or m.group(2)
            if name in self.rc.variables:
                return self.rc.variables[name].value
            if name in RUNTIME or name.isdigit():
                return "${" + name + "}"  # maildrop's own, per delivery: stays symbolic
            self.rc.notes.append(f"{where}: ${name} is set nowhere before this line: "
                                 "maildrop substitutes nothing")
            return ""

        return re.sub(r"\\\$|\$\{([^}]*)\}|\$([A-Za-z_][A-Za-z0-9_]*|[0-9])", one, text)

    def include(self, target: str, where: str, exc: int, conds: tuple[str, ...]) -> None:
        if "${" in target:
            self.rc.notes.append(f"{where}: include {target!r} depends on the recipient: "
                                 "not read")
            return
        if self.depth > 20:
            raise bad(where, f"include {target!r}: includes nested more than 20 deep")
        text = self.read(target)
        if text is None:
            raise bad(where, f"include {target!r}: no such file (maildrop exits 75 for "
                      "every message)")
        self.rc.includes.append(target)
        self.depth += 1
        self.run(text, target, exc, conds)
        self.depth -= 1

    def xfilter(self, words: list[_Tok], where: str, exc: int,
                conds: tuple[str, ...]) -> None:
        command = "".join(self.value(w) for w in words)
        spamc, unresolved = _spamc_words(command, where)
        program, deadline = "spamc", None
        if spamc is not None and spamc[:1] == [(SPAMDRILL_SPAMC, where)]:
            program = SPAMDRILL_SPAMC
            spamc, deadline = own_flags(spamc[1:], where)
        self.rc.xfilters.append(XFilter(where, command, exc > 0, conds, spamc, unresolved,
                                        program, deadline))


SPAMDRILL_SPAMC = "spamdrill-spamc"
_OWN = ("--deadline", "--keep-slow", "--slow")  # spamdrill-spamc's flags, not spamc's


def own_flags(words: list[tuple[str, str]], where: str
               ) -> tuple[list[tuple[str, str]], float | None]:
    """spamdrill-spamc's words less its own flags (the rest are spamc's), and its
    ``--deadline`` (None: not given, as unbounded as spamc)."""
    rest: list[tuple[str, str]] = []
    deadline: float | None = None
    i = 0
    while i < len(words):
        name, eq, value = words[i][0].partition("=")
        if name in _OWN:
            if not eq:
                i += 1
                value = words[i][0] if i < len(words) else ""
            if name == "--deadline":
                try:
                    deadline = float(value)
                except ValueError:
                    raise bad(where, f"spamdrill-spamc --deadline {value!r} is not seconds "
                              "(it refuses every message: exit 64)") from None
        else:
            rest.append(words[i])
        i += 1
    return rest, deadline


def _tainted(name: str, tainted: set[str]) -> bool:
    return name in tainted or name.startswith("MATCH")


def _refs(text: str) -> list[str]:
    """The variables maildrop substitutes in a double-quoted string."""
    return [m.group(1) or m.group(2) for m in _REF.finditer(text) if m.group(0) != "\\$"]


def _unquoted_refs(text: str) -> list[str]:
    """The ``$NAME``s a shell expands outside its own quotes in ``text``."""
    out, quote, i = [], "", 0
    while i < len(text):
        ch = text[i]
        if ch == "\\" and quote != "'":
            i += 2
            continue
        if ch in "'\"" and (not quote or quote == ch):
            quote = "" if quote else ch
        elif ch == "$" and not quote:
            m = re.match(r"\{(\w+)\}|([A-Za-z_]\w*|[0-9])", text[i + 1:])
            if m:
                out.append(m.group(1) or m.group(2))
        i += 1
    return out


def _pasted(where: str, head: str, name: str) -> str:
    positional = name.isdigit()
    safe = (f"copy it first (ARG{name}=\"${name}\"), then {head} '... \"$ARG{name}\" ...'"
            if positional else f"{head} '... \"${name}\" ...'")
    return (f"{where}: {head} pastes ${name} (text a sender controls) into the shell "
            "command before the shell parses it: a quote or ; in it runs commands as the "
            f"mail user. Safe: {safe} (single quotes: maildrop substitutes nothing, the "
            "shell expands its environment's variable, double-quoted)")


def _spamc_words(command: str, where: str) -> tuple[list[tuple[str, str]] | None,
                                                   tuple[str, ...]]:
    """spamc's words in a shell command (the words after ``spamc`` up to a shell
    operator), and the maildrop runtime variables left in them. For spamdrill-spamc the
    first word is its name."""
    try:
        lex = shlex.shlex(command, posix=True, punctuation_chars="|&;<>")
        lex.whitespace_split = True
        argv = list(lex)
    except ValueError as exc:
        raise bad(where, f"xfilter command {command!r}: {exc} (the shell cannot run it)")\
            from None
    for k, word in enumerate(argv):
        name = word.rsplit("/", 1)[-1]
        if name in ("spamc", SPAMDRILL_SPAMC):
            args = [SPAMDRILL_SPAMC] if name == SPAMDRILL_SPAMC else []
            for w in argv[k + 1:]:
                if w in _SHELL_OPS:
                    break
                args.append(w)
            runtime = tuple(sorted({m for a in args for m in re.findall(r"\$\{(\w+)\}", a)}))
            return [(a, where) for a in args], runtime
    return None, ()


@dataclass(frozen=True)
class _Tok:
    kind: str  # word | dq | sq | bq | cond | { | } | end
    text: str
    where: str


def _tokens(text: str, path: str) -> list[_Tok]:
    """maildrop's lexical level: strings, words, ``( condition )``, braces, ends of
    statements (newline or ``;``), comments."""
    out: list[_Tok] = []
    i, line = 0, 1
    while i < len(text):
        ch = text[i]
        where = at(path, line)
        if ch == "\n" or ch == ";":
            out.append(_Tok("end", ch, where))
            line += ch == "\n"
            i += 1
        elif ch.isspace():
            i += 1
        elif ch == "#":
            while i < len(text) and text[i] != "\n":
                i += 1
        elif ch in "{}":
            out.append(_Tok(ch, ch, where))
            i += 1
        elif ch in "\"'`(":
            tok, i = _quoted(text, i, path, line)
            out.append(tok)
            line += tok.text.count("\n")
        else:
            j = _word_end(text, i)
            out.append(_Tok("word", text[i:j], where))
            i = j
    return out


def _quoted(text: str, i: int, path: str, line: int) -> tuple[_Tok, int]:
    """A string or a ``( condition )`` at ``i``; returns it and the index after it."""
    ch = text[i]
    end = _paren_end(text, i, path, line) if ch == "(" else _string_end(text, i, path, line)
    kind = {"\"": "dq", "'": "sq", "`": "bq", "(": "cond"}[ch]
    return _Tok(kind, text[i + 1:end], at(path, line)), end + 1


def _word_end(text: str, i: int) -> int:
    j = i
    while j < len(text) and not text[j].isspace() and text[j] not in ";{}\"'`#(":
        j += 1
    return j if j > i else j + 1


def _string_end(text: str, i: int, path: str, line: int) -> int:
    quote, j = text[i], i + 1
    while j < len(text):
        if text[j] == "\\" and quote != "'":
            j += 2
            continue
        if text[j] == quote:
            return j
        j += 1
    raise bad(at(path, line), f"unterminated {quote} string (maildrop rejects the file: "
              "exit 75 for every message)")


def _paren_end(text: str, i: int, path: str, line: int) -> int:
    level, j = 0, i
    while j < len(text):
        ch = text[j]
        if ch in "\"'`":
            j = _string_end(text, j, path, line) + 1
            continue
        if ch == "/" and j + 1 < len(text):
            k = text.find("/", j + 1)  # a pattern: may hold parentheses
            if k > 0 and "\n" not in text[j:k]:
                j = k + 1
                continue
        level += ch == "("
        level -= ch == ")"
        if level == 0:
            return j
        j += 1
    raise bad(at(path, line), "unbalanced ( in a condition (maildrop rejects the file)")
