"""Hostile variants of service files, for the fuzz tests and the mutation experiment.

``mutate(rng, data)`` applies one to three mutations, each drawn from ``MUTATORS``,
to the bytes of a service file: wrong types, deep nesting, huge strings, odd
Unicode, NUL and other control characters, bytes that are not UTF-8, duplicate
keys, anchors, aliases and merge keys (self-merges included), tags, thousands of
unknown keys, truncation, other line endings, more documents. Everything is
driven by the ``random.Random`` passed in, so a seed reproduces a case exactly;
the hypothesis tests pass one in (``st.randoms``) and the experiment its own.

The seeds are every golden input and every bad-input fixture: valid files,
so a mutation starts from something that reaches every stage.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path

TESTS = Path(__file__).parents[1]
MAX_BYTES = 1024 * 1024  # the loader's limit; some mutations go over it on purpose


def seed_files() -> list[bytes]:
    paths = sorted(TESTS.glob("golden/*/input/*.yaml")) + sorted(
        TESTS.glob("compiler/bad_inputs/*/*.yaml")
    )
    return [path.read_bytes() for path in paths]


SERVICE = (
    b"name: fuzz\n"
    b"container:\n"
    b"  entrypoint: ./run\n"
    b"  args: [--a, b]\n"
    b"  environment:\n"
    b"    - A=1\n"
    b"  mounts:\n"
    b"    - source: /var/lib/fuzz\n"
    b"      destination: /data\n"
    b"      type: bind\n"
    b"      options: [rbind, rw]\n"
    b"  security:\n"
    b"    writeableRootfs: true\n"
    b"depends:\n"
    b"  - path: /run/ready\n"
    b"  - network: [addresses]\n"
    b"restart: always\n"
)

ODD_TEXT = [
    "\x00",
    "\x07",
    "\x1b[31m",
    "\x1b]0;title\x07",
    "\r",
    "\x7f",
    "\x85",
    "\u2028",
    "\u2029",
    "\u202e",
    "\u2066",
    "\ufeff",
    "\u200d",
    "\ufffd",
    "\U0001f600",
    "e\u0301",
    "\uffff",
    "\\ud800",  # a lone surrogate as a YAML escape (only inside double quotes)
    "x\nspoofed.yaml:1:1: error: fake",
]
TAGS = [
    "!!int",
    "!!float",
    "!!bool",
    "!!null",
    "!!str",
    "!!binary",
    "!!timestamp",
    "!!set",
    "!!omap",
    "!!pairs",
    "!!map",
    "!!seq",
    "!!merge",
    "!!python/object:os.system",
    "!custom",
    "!<tag:example.com,2000:x>",
    "!<%0A%1B>",
]
SCALARS = [
    "0xZZ",
    "0o9",
    "1e999",
    "-.inf",
    ".nan",
    "~",
    "null",
    "''",
    '""',
    "yes",
    "On",
    "2024-01-01",
    "1:30",
    "0x" + "f" * 4000,
    "9" * 5000,
    "-0",
    "'multi\n  line'",
    "|\n  block\n  text",
    ">-\n  folded",
]
WRONG_TYPES = ["[]", "{}", "[1, 2]", "{a: 1}", "null", "123", "true", "1.5", "[[[]]]", "- x"]

Mutator = Callable[[random.Random, bytes], bytes]


def _lines(data: bytes) -> list[bytes]:
    return data.split(b"\n")


def _pick_line(rng: random.Random, data: bytes) -> tuple[list[bytes], int]:
    lines = _lines(data)
    return lines, rng.randrange(len(lines))


def _indent(line: bytes) -> bytes:
    return line[: len(line) - len(line.lstrip(b" "))]


def _odd(rng: random.Random) -> str:
    return "".join(rng.choice(ODD_TEXT) for _ in range(rng.randint(1, 3)))


def _quoted(text: str) -> str:
    """``text`` as a YAML double-quoted scalar (control characters as escapes)."""
    out = []
    for char in text:
        code = ord(char)
        if char in '"\\' and not text.startswith("\\u"):
            out.append("\\" + char)
        elif code < 0x20 or code == 0x7F or 0x80 <= code < 0xA0:
            out.append(f"\\x{code:02x}")
        elif code in (0x2028, 0x2029, 0xFEFF):
            out.append(f"\\u{code:04x}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


def flip_bytes(rng: random.Random, data: bytes) -> bytes:
    raw = bytearray(data)
    for _ in range(rng.randint(1, 8)):
        position = rng.randrange(len(raw) + 1)
        byte = rng.choice([0, 7, 9, 10, 13, 27, 0x7F, 0x80, 0xC3, 0xFF, 0xFE, rng.randrange(256)])
        action = rng.randrange(3)
        if action == 0 or not raw:
            raw.insert(position, byte)
        elif action == 1 and position < len(raw):
            raw[position] = byte
        elif position < len(raw):
            del raw[position]
    return bytes(raw)


def odd_unicode(rng: random.Random, data: bytes) -> bytes:
    lines, index = _pick_line(rng, data)
    line = lines[index]
    if b": " in line:
        key, _, _ = line.partition(b": ")
        value = _quoted(_odd(rng) + "x" + _odd(rng))
        lines[index] = key + b": " + value.encode("utf-8", "surrogatepass")
    else:
        raw = _odd(rng).replace("\\ud800", "\ud800").encode("utf-8", "surrogatepass")
        lines[index] = line + raw
    return b"\n".join(lines)


def hostile_key(rng: random.Random, data: bytes) -> bytes:
    lines, index = _pick_line(rng, data)
    key = _quoted(rng.choice(["x", "name", "<<", "writableRootfs", ""]) + _odd(rng))
    lines.insert(index, _indent(lines[index]) + key.encode("utf-8", "surrogatepass") + b": 1")
    return b"\n".join(lines)


def wrong_type(rng: random.Random, data: bytes) -> bytes:
    lines, index = _pick_line(rng, data)
    line = lines[index]
    if b": " in line:
        key, _, _ = line.partition(b": ")
        lines[index] = key + b": " + rng.choice(WRONG_TYPES + SCALARS).encode()
    elif line.lstrip().startswith(b"- "):
        lines[index] = _indent(line) + b"- " + rng.choice(WRONG_TYPES + SCALARS).encode()
    return b"\n".join(lines)


def tagged(rng: random.Random, data: bytes) -> bytes:
    lines, index = _pick_line(rng, data)
    line = lines[index]
    tag = rng.choice(TAGS).encode()
    if b": " in line:
        key, _, value = line.partition(b": ")
        lines[index] = key + b": " + tag + b" " + (value or rng.choice(SCALARS).encode())
    elif line.lstrip().startswith(b"- "):
        lines[index] = line.replace(b"- ", b"- " + tag + b" ", 1)
    else:
        lines.insert(index, b"x: " + tag + b" " + rng.choice(SCALARS).encode())
    return b"\n".join(lines)


def deep_nesting(rng: random.Random, data: bytes) -> bytes:
    depth = rng.choice([10, 63, 64, 65, 100, 1000, 50_000])
    nested = rng.choice(["[" * depth + "]" * depth, "{a: " * depth + "1" + "}" * depth])
    lines, index = _pick_line(rng, data)
    line = lines[index]
    key = line.partition(b": ")[0] if b": " in line else b"args"
    lines[index] = key + b": " + nested.encode()
    return b"\n".join(lines)


def huge_string(rng: random.Random, data: bytes) -> bytes:
    size = rng.choice([1000, 70_000, 500_000, MAX_BYTES])
    lines, index = _pick_line(rng, data)
    line = lines[index]
    key = line.partition(b": ")[0] if b": " in line else b"entrypoint"
    filler = rng.choice([b"a", b"/", b"\xc3\xa9", b"\\n", b" "])
    lines[index] = key + b': "' + filler * (size // len(filler)) + b'"'
    return b"\n".join(lines)


def duplicate_line(rng: random.Random, data: bytes) -> bytes:
    lines, index = _pick_line(rng, data)
    lines.insert(index, lines[index])
    return b"\n".join(lines)


def anchors(rng: random.Random, data: bytes) -> bytes:
    """An anchor on some value, then aliases and merge keys to it, self-references included."""
    lines = _lines(data)
    keyed = [i for i, line in enumerate(lines) if line.rstrip().endswith(b":")]
    if not keyed:
        return data + b"\nx: &a {y: 1}\nz: *a\n"
    index = rng.choice(keyed)
    lines[index] = lines[index].rstrip() + b" &a"
    child = _indent(lines[index + 1]) if index + 1 < len(lines) else b"  "
    extra = rng.choice(
        [
            b"<<: *a",
            b"<<: [*a, *a]",
            b"<<: 5",
            b"self: *a",
            b"<<: {<<: *a}",
            b"- *a",
        ]
    )
    lines.insert(index + 1, child + extra)
    if rng.random() < 0.5:
        lines.append(b"other: *a")
    return b"\n".join(lines)


def alias_bomb(rng: random.Random, data: bytes) -> bytes:
    width = rng.choice([2, 5, 10])
    levels = rng.choice([3, 6, 9])
    bomb = [b"a0: &a0 [x]"]
    for level in range(1, levels):
        items = b", ".join([b"*a%d" % (level - 1)] * width)
        bomb.append(b"a%d: &a%d [%s]" % (level, level, items))
    return data + b"\n" + b"\n".join(bomb) + b"\n"


def unknown_keys(rng: random.Random, data: bytes) -> bytes:
    count = rng.choice([25, 300, 5000])
    lines, index = _pick_line(rng, data)
    indent = _indent(lines[index])
    extra = [indent + b"k%05d%s: 1" % (i, rng.choice([b"", b"x", b"Rootfs"])) for i in range(count)]
    lines[index:index] = extra
    return b"\n".join(lines)


def truncate(rng: random.Random, data: bytes) -> bytes:
    return data[: rng.randrange(len(data) + 1)]


def line_endings(rng: random.Random, data: bytes) -> bytes:
    return data.replace(b"\n", rng.choice([b"\r\n", b"\r", b"\n\n", b"\x85"]))


def more_documents(rng: random.Random, data: bytes) -> bytes:
    return data + rng.choice([b"---\n", b"---\nname: x\n", b"...\n---\n- a\n", b"--- !!str\n"])


def self_dependency(rng: random.Random, data: bytes) -> bytes:
    return data + rng.choice(
        [b"\ndepends:\n  - service: ext-fuzz\n", b"\ndepends: [{service: ext-\x00}]\n"]
    )


MUTATORS: tuple[Mutator, ...] = (
    flip_bytes,
    odd_unicode,
    hostile_key,
    wrong_type,
    tagged,
    deep_nesting,
    huge_string,
    duplicate_line,
    anchors,
    alias_bomb,
    unknown_keys,
    truncate,
    line_endings,
    more_documents,
    self_dependency,
)


def mutate(rng: random.Random, data: bytes) -> bytes:
    """``data`` after one to three random mutations (at most MAX_BYTES + a little)."""
    for _ in range(rng.randint(1, 3)):
        data = rng.choice(MUTATORS)(rng, data)
    return data[: MAX_BYTES + 100]


def mutated_file(rng: random.Random, seeds: list[bytes]) -> bytes:
    return mutate(rng, rng.choice([*seeds, SERVICE]))
