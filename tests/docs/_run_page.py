"""Run one page's examples, in order, in one namespace: the subprocess half of test_examples.

Reads the blocks as JSON on stdin (see ``test_examples.page_spec``) and runs them in
the current directory. Exits 0 when every block ran and printed what the page shows,
1 otherwise, with the reason on stderr.

- A ``run`` block is executed. A block with a top-level ``await``, ``async for`` or
  ``async with`` runs as a coroutine on asyncio, in one event loop kept for the whole
  page (in a thread, so that ``anyio.run()`` still works in the other blocks).
- A statement ``expression  # literal`` is checked: the expression must equal the
  literal the comment shows.
- ``expected`` is the text block that follows on the page: what the block prints must
  match it line for line (trailing blanks ignored; ``...`` matches any text).
- A ``fragment`` block is only compiled.
- A ``pytest`` block is compiled and appended to one test module, which pytest runs
  after the last block.
- A block with a ``file`` is also written to that file first.
"""

from __future__ import annotations

import ast
import contextlib
import inspect
import io
import json
import re
import subprocess
import sys
import tokenize
import traceback
from pathlib import Path
from typing import Any

from anyio.from_thread import start_blocking_portal

CHECK = "__example_check__"


class ExampleError(Exception):
    """An example does not do what its page says."""


def literal_comments(source: str) -> dict[int, tuple[str, object]]:
    """The end-of-line comments of *source* that are Python literals, by line."""
    found: dict[int, tuple[str, object]] = {}
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type != tokenize.COMMENT:
            continue
        text = token.string[1:].strip()
        try:
            found[token.start[0]] = (text, ast.literal_eval(text))
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            continue
    return found


def with_checks(tree: ast.Module, comments: dict[int, tuple[str, object]]) -> ast.Module:
    """Turn each top-level ``expression  # literal`` of *tree* into a check."""
    for index, statement in enumerate(tree.body):
        line = statement.end_lineno
        if isinstance(statement, ast.Expr) and line in comments:
            call = ast.Call(
                func=ast.Name(CHECK, ast.Load()),
                args=[statement.value, ast.Constant(comments[line][0]), ast.Constant(line)],
                keywords=[],
            )
            tree.body[index] = ast.copy_location(ast.Expr(call), statement)
    return ast.fix_missing_locations(tree)


def compile_block(block: dict[str, Any], *, checks: bool) -> Any:
    """Compile *block* with its page's line numbers, top-level ``await`` allowed."""
    source = "\n" * (block["line"] - 1) + block["source"]
    tree = ast.parse(source, block["path"])
    if checks:
        tree = with_checks(tree, literal_comments(source))
    return compile(tree, block["path"], "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)


def matches(expected: str, printed: str) -> bool:
    """Whether *printed* is *expected*, line for line, with ``...`` matching any text."""
    want = "\n".join(line.rstrip() for line in expected.strip("\n").splitlines())
    got = "\n".join(line.rstrip() for line in printed.strip("\n").splitlines())
    pattern = ".*?".join(re.escape(part) for part in want.split("..."))
    return re.fullmatch(pattern, got, re.DOTALL) is not None


def run(blocks: list[dict[str, Any]]) -> None:
    """Run *blocks* as described in the module docstring."""
    namespace: dict[str, Any] = {"__name__": "__main__"}

    def check(value: object, comment: str, line: int) -> None:
        if value != ast.literal_eval(comment):
            raise ExampleError(f"line {line}: the comment says {comment}, the code gives {value!r}")

    namespace[CHECK] = check
    test_module: list[str] = []
    with contextlib.ExitStack() as stack:
        portal = None
        for block in blocks:
            where = f"{block['path']}:{block['line']}"
            if block["file"]:
                Path(block["file"]).write_text(block["source"], encoding="utf-8")
            if block["lang"] != "python":
                continue
            code = compile_block(block, checks=block["kind"] == "run")
            if block["kind"] == "pytest":
                test_module.append(block["source"])
            if block["kind"] != "run":
                continue
            printed = io.StringIO()
            try:
                with contextlib.redirect_stdout(printed):
                    if code.co_flags & inspect.CO_COROUTINE:
                        if portal is None:
                            portal = stack.enter_context(start_blocking_portal("asyncio"))
                        portal.call(lambda code=code: eval(code, namespace))
                    else:
                        exec(code, namespace)
            except BaseException as error:
                print(printed.getvalue(), end="")
                raise ExampleError(f"the block at {where} failed") from error
            print(printed.getvalue(), end="")
            expected = block["expected"]
            if expected is not None and not matches(expected, printed.getvalue()):
                raise ExampleError(
                    f"the block at {where} printed\n{printed.getvalue()}\n"
                    f"but the page shows\n{expected}"
                )
    if test_module:
        Path("test_example.py").write_text("\n\n".join(test_module), encoding="utf-8")
        result = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_example.py"],
            check=False,
        )
        if result.returncode:
            raise ExampleError(f"pytest failed on the test blocks of {blocks[0]['path']}")


def main() -> int:
    """Run the blocks given on stdin; 0 when all of them did what the page says."""
    try:
        run(json.load(sys.stdin))
    except ExampleError:
        traceback.print_exc()
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
