"""Loading YAML as Talos (go-yaml v3, YAML 1.2) reads it, with positions."""

from __future__ import annotations

from extsvc.compiler.format.load import iter_documents


def load_one(text: str):  # type: ignore[no-untyped-def]
    ((document, problems),) = list(iter_documents("f.yaml", text.encode()))
    return document, problems


def test_yes_no_on_off_are_strings_as_in_yaml_1_2() -> None:
    document, problems = load_one("a: [yes, no, on, off, y, n]\n")
    assert problems == []
    assert document.tree == {"a": ["yes", "no", "on", "off", "y", "n"]}


def test_true_false_are_booleans_in_every_core_spelling() -> None:
    document, _ = load_one("a: [true, True, TRUE, false, False, FALSE]\n")
    assert document.tree == {"a": [True, True, True, False, False, False]}


def test_dates_and_sexagesimals_stay_strings() -> None:
    document, _ = load_one("a: [2024-01-01, 1:30]\n")
    assert document.tree == {"a": ["2024-01-01", "1:30"]}


def test_numbers_follow_the_core_schema() -> None:
    document, _ = load_one("a: [010, 0o10, 0x10, 1.5, -3]\n")
    assert document.tree == {"a": [10, 8, 16, 1.5, -3]}


def test_positions_are_one_based_for_keys_and_values() -> None:
    document, _ = load_one("name: x\ncontainer:\n  entrypoint: ./run\n")
    source_map = document.source_map
    assert source_map.key_position(("container", "entrypoint")).line == 3
    assert source_map.key_position(("container", "entrypoint")).col == 3
    assert source_map.value_position(("container", "entrypoint")).col == 15


def test_an_unknown_path_falls_back_to_its_nearest_ancestor() -> None:
    document, _ = load_one("name: x\ncontainer:\n  entrypoint: ./run\n")
    assert document.source_map.value_position(("container", "entrypoint", "nope")).line == 3


def test_duplicate_keys_are_reported_at_the_second_key() -> None:
    _, problems = load_one("name: a\nname: b\n")
    assert [(p.position.line, p.position.col, p.message) for p in problems] == [
        (2, 1, "duplicate key 'name'")
    ]


def test_merge_keys_let_the_mapping_override_the_anchor() -> None:
    document, problems = load_one("base: &b {x: 1, y: 2}\nchild:\n  <<: *b\n  y: 3\n")
    assert problems == []
    assert document.tree["child"] == {"x": 1, "y": 3}


def test_a_byte_order_mark_is_ignored() -> None:
    document, problems = load_one("\ufeffname: x\n")
    assert problems == [] and document.tree == {"name": "x"}


def test_every_document_of_a_stream_is_returned() -> None:
    assert len(list(iter_documents("f.yaml", b"a: 1\n---\nb: 2\n"))) == 2
