"""The linter on broken copies of the shipped mappings: exact kinds, lines, columns, messages."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from engine.mapping import Finding, FindingKind, lint_paths

REPOSITORY = Path(__file__).parents[2]

# (file, text to replace, replacement); each text occurs exactly once in the shipped file.
Edit = tuple[str, str, str]
Expected = tuple[str, int, int, str, str]

SIM_STEP_LOOKUP = "          Related_Contact: contact\n\n  SIM/Updated"
DELETED_SIM_STEP = (
    "action: unlink\n        module: SIM_Cards\n        match: {source: i_sim_card}\n"
    "        write: sim_card\n        when_absent: skip\n"
)
SIM_STEP_WRITE = "        write: sim_card\n        lookups:\n" + SIM_STEP_LOOKUP
DELETED_CONTACT_MATCH = (
    "match: {source: id}\n        write: contact\n      - id: sim\n        action: unlink"
)
NEW_SIM_STEP = "      - id: new_sim\n        action: link\n"

CASES = [
    pytest.param(
        [
            (
                "contacts.yaml",
                "        source: firstname\n",
                "        source: firstname\n       x: [\n",
            )
        ],
        [
            (
                "mappings/contacts.yaml",
                12,
                8,
                "yaml-syntax",
                "invalid YAML: expected <block end>, but found '<block mapping start>' while "
                "parsing a block collection; check indentation, quotes and colons here",
            )
        ],
        id="YAML syntax error",
    ),
    pytest.param(
        [
            (
                "contacts.yaml",
                "      - field: Phone\n",
                '      - field: Email\n        value: "constant@example.com"\n'
                "      - field: Phone\n",
            )
        ],
        [
            (
                "mappings/contacts.yaml",
                20,
                16,
                "duplicate-field",
                "Contacts field Email is already set by the entry on line 18, and only one "
                "value can be written; merge the two entries into one, for example with an "
                "expression",
            )
        ],
        id="same Zoho field twice",
    ),
    pytest.param(
        [("contacts.yaml", "source: email\n", "source: email\n        source: phone1\n")],
        [
            (
                "mappings/contacts.yaml",
                20,
                9,
                "duplicate-key",
                'key "source" appears twice in this mapping; remove one of them',
            )
        ],
        id="duplicate key",
    ),
    pytest.param(
        [("contacts.yaml", "        source: firstname\n", "        sorce: firstname\n")],
        [
            (
                "mappings/contacts.yaml",
                11,
                9,
                "schema",
                'unknown key "sorce" (did you mean "source"?)',
            )
        ],
        id="misspelled key",
    ),
    pytest.param(
        [
            (
                "action-plans.yaml",
                DELETED_SIM_STEP,
                DELETED_SIM_STEP.replace("unlink", "unlnk"),
            )
        ],
        [
            (
                "mappings/action-plans.yaml",
                33,
                17,
                "schema",
                '"unlnk" is not one of find, create, update, find_or_create, link, unlink '
                '(did you mean "unlink"?)',
            )
        ],
        id="misspelled action",
    ),
    pytest.param(
        [("contacts.yaml", "    module: Contacts\n", "    module: Contact\n")],
        [
            (
                "mappings/contacts.yaml",
                7,
                13,
                "unknown-module",
                'module Contact is not defined in crm-modules.yaml (did you mean "Contacts"?)',
            )
        ],
        id="unknown module",
    ),
    pytest.param(
        [("contacts.yaml", "      - field: Email\n", "      - field: E_mail\n")],
        [
            (
                "mappings/contacts.yaml",
                18,
                16,
                "unknown-field",
                'Contacts has no field E_mail (did you mean "Email"?); fields are defined in '
                "crm-modules.yaml",
            )
        ],
        id="unknown field",
    ),
    pytest.param(
        [("action-plans.yaml", SIM_STEP_WRITE, SIM_STEP_WRITE.replace("sim_card", "sim_cards"))],
        [
            (
                "mappings/action-plans.yaml",
                18,
                16,
                "unknown-mapping",
                'field mapping "sim_cards" is not defined (did you mean "sim_card"?); define it '
                "under field_mappings (defined: contact, sim_card)",
            )
        ],
        id="unknown field mapping",
    ),
    pytest.param(
        [
            (
                "action-plans.yaml",
                SIM_STEP_WRITE,
                SIM_STEP_WRITE.replace("sim_card", "sim_cards").replace("contact", "contcat"),
            )
        ],
        [
            (
                "mappings/action-plans.yaml",
                18,
                16,
                "unknown-mapping",
                'field mapping "sim_cards" is not defined (did you mean "sim_card"?); define it '
                "under field_mappings (defined: contact, sim_card)",
            ),
            (
                "mappings/action-plans.yaml",
                20,
                28,
                "unknown-step",
                'no step "contcat" in this action plan (did you mean "contact"?)',
            ),
        ],
        id="every problem of one step",
    ),
    pytest.param(
        [("action-plans.yaml", SIM_STEP_LOOKUP, SIM_STEP_LOOKUP.replace("contact", "contcat"))],
        [
            (
                "mappings/action-plans.yaml",
                20,
                28,
                "unknown-step",
                'no step "contcat" in this action plan (did you mean "contact"?)',
            )
        ],
        id="unknown step in a lookup",
    ),
    pytest.param(
        [("action-plans.yaml", SIM_STEP_LOOKUP, SIM_STEP_LOOKUP.replace("contact", "sim"))],
        [
            (
                "mappings/action-plans.yaml",
                20,
                28,
                "forward-reference",
                'step "sim" runs at or after this step, so its record id is not known yet; '
                "move it before this step",
            )
        ],
        id="lookup to the step itself",
    ),
    pytest.param(
        [("action-plans.yaml", "      - id: new_sim\n", "      - id: previous_sim\n")],
        [
            (
                "mappings/action-plans.yaml",
                61,
                13,
                "duplicate-step-id",
                'step id "previous_sim" is already used by the step at line 51; give each step '
                "of a plan its own id",
            )
        ],
        id="duplicate step id",
    ),
    pytest.param(
        [("contacts.yaml", "        source: phone1\n", "        source: phone\n")],
        [
            (
                "mappings/contacts.yaml",
                21,
                17,
                "unknown-source-path",
                "pb_data.account_info.phone is not in the event schema: pb_data.account_info has "
                'no "phone" (did you mean "phone1"?); fix the path, or declare the field in '
                "nsps-event.schema.json",
            )
        ],
        id="unknown source path",
    ),
    pytest.param(
        [("sim-cards.yaml", "input.msisdn or input.iccid\n", "input.msisdn or input.icc_id\n")],
        [
            (
                "mappings/sim-cards.yaml",
                27,
                21,
                "unknown-source-path",
                "pb_data.sim_info.icc_id (read as input.icc_id) is not in the event schema: "
                'pb_data.sim_info has no "icc_id" (did you mean "iccid"?); fix the path, or '
                "declare the field in nsps-event.schema.json",
            )
        ],
        id="unknown path in an expression",
    ),
    pytest.param(
        [("sim-cards.yaml", "input.msisdn or input.iccid\n", "input.msisdn or or input.iccid\n")],
        [
            (
                "mappings/sim-cards.yaml",
                27,
                21,
                "expression-syntax",
                "the Jinja2 expression does not compile: chunk after expression",
            )
        ],
        id="expression syntax error",
    ),
    pytest.param(
        [
            (
                "contacts.yaml",
                "        source: firstname\n",
                "        source: firstname\n        type: boolean\n",
            )
        ],
        [
            (
                "mappings/contacts.yaml",
                12,
                15,
                "type-mismatch",
                "type boolean cannot be written to First_Name, which is text in "
                "crm-modules.yaml; use type text",
            )
        ],
        id="declared type incompatible with the Zoho field",
    ),
    pytest.param(
        [
            (
                "contacts.yaml",
                "        source: blocked\n",
                "        source: blocked\n        default: maybe\n",
            )
        ],
        [
            (
                "mappings/contacts.yaml",
                40,
                18,
                "type-mismatch",
                "'maybe' must be a boolean (true/false), not string for Blocked_PB (boolean)",
            )
        ],
        id="default of the wrong type",
    ),
    pytest.param(
        [("contacts.yaml", "        source: product_name\n", "        source: blocked\n")],
        [
            (
                "mappings/contacts.yaml",
                41,
                17,
                "type-mismatch",
                "pb_data.account_info.blocked is boolean in the event schema and cannot be "
                "written to Product_Name_PB (text); choose another source or add a value_map",
            )
        ],
        id="source type incompatible with the Zoho field",
    ),
    pytest.param(
        [("contacts.yaml", "          open: Open\n", "          open: Opne\n")],
        [
            (
                "mappings/contacts.yaml",
                25,
                17,
                "type-mismatch",
                '"Opne" is not a value of picklist Bill_Status_PB (did you mean "Open"?); use '
                "one of its values or add it to crm-modules.yaml",
            )
        ],
        id="value map target not in the picklist",
    ),
    pytest.param(
        [
            (
                "action-plans.yaml",
                "        module: SIM_Cards\n"
                + "        match: {source: i_sim_card}\n"
                + SIM_STEP_WRITE,
                "        module: Contacts\n        match: {source: i_sim_card}\n" + SIM_STEP_WRITE,
            )
        ],
        [
            (
                "mappings/action-plans.yaml",
                16,
                17,
                "module-mismatch",
                'the step is for module Contacts but field mapping "sim_card" writes SIM_Cards; '
                "make them the same",
            )
        ],
        id="step module differs from its field mapping",
    ),
    pytest.param(
        [("modules.yaml", "duplicate_check_fields: [I_PB]\n", "duplicate_check_fields: [Email]\n")],
        [
            (
                "mappings/modules.yaml",
                9,
                29,
                "invalid-strategy",
                "duplicate_check_fields must contain the key field I_PB",
            ),
            (
                "mappings/modules.yaml",
                9,
                30,
                "invalid-strategy",
                "Contacts.Email is not unique, so Zoho cannot upsert on it; mark it `unique: "
                "true` in crm-modules.yaml (and in Zoho) or use strategy search",
            ),
        ],
        id="upsert on a field that is not unique",
    ),
    pytest.param(
        [("action-plans.yaml", "ignore: []\n", "ignore: [SIM/Deleted]\n")],
        [
            (
                "mappings/action-plans.yaml",
                73,
                10,
                "planned-and-ignored",
                "SIM/Deleted has an action plan and is ignored too; remove one",
            )
        ],
        id="event type planned and ignored",
    ),
    pytest.param(
        [
            (
                "action-plans.yaml",
                "        when_absent: create\n        lookups:\n"
                "          Related_Contact: contact\n",
                "        when_absent: create\n",
            )
        ],
        [
            (
                "mappings/action-plans.yaml",
                62,
                17,
                "invalid-step",
                "action link needs a lookup that names an earlier step, e.g. lookups: "
                "{Related_Contact: contact}",
            )
        ],
        id="link without a lookup",
    ),
    pytest.param(
        [
            ("contacts.yaml", "      - field: Email\n", "      - field: E_mail\n"),
            ("sim-cards.yaml", "        source: imsi\n", "        source: imsi_number\n"),
        ],
        [
            (
                "mappings/contacts.yaml",
                18,
                16,
                "unknown-field",
                'Contacts has no field E_mail (did you mean "Email"?); fields are defined in '
                "crm-modules.yaml",
            ),
            (
                "mappings/sim-cards.yaml",
                13,
                17,
                "unknown-source-path",
                "pb_data.sim_info.imsi_number is not in the event schema: pb_data.sim_info has "
                'no "imsi_number"; fix the path, or declare the field in nsps-event.schema.json',
            ),
        ],
        id="problems in two files reported together",
    ),
    pytest.param(
        [
            ("contacts.yaml", "      - field: Email\n", "      - field: Emial\n"),
            (
                "action-plans.yaml",
                DELETED_SIM_STEP,
                DELETED_SIM_STEP.replace("write: sim_card", "write: contact"),
            ),
        ],
        [
            (
                "mappings/action-plans.yaml",
                34,
                17,
                "module-mismatch",
                'the step is for module SIM_Cards but field mapping "contact" writes Contacts; '
                "make them the same",
            ),
            (
                "mappings/contacts.yaml",
                18,
                16,
                "unknown-field",
                'Contacts has no field Emial (did you mean "Email"?); fields are defined in '
                "crm-modules.yaml",
            ),
        ],
        id="unknown field and a step writing its mapping",
    ),
    pytest.param(
        [
            ("contacts.yaml", "      - field: Email\n", "      - field: Emial\n"),
            (
                "action-plans.yaml",
                DELETED_CONTACT_MATCH,
                DELETED_CONTACT_MATCH.replace("{source: id}", "{source: idd}"),
            ),
        ],
        [
            (
                "mappings/action-plans.yaml",
                30,
                25,
                "unknown-source-path",
                "pb_data.account_info.idd is not in the event schema: pb_data.account_info has "
                'no "idd" (did you mean "id"?); fix the path, or declare the field in '
                "nsps-event.schema.json",
            ),
            (
                "mappings/contacts.yaml",
                18,
                16,
                "unknown-field",
                'Contacts has no field Emial (did you mean "Email"?); fields are defined in '
                "crm-modules.yaml",
            ),
        ],
        id="unknown field and a match path of its step",
    ),
    pytest.param(
        [
            ("contacts.yaml", "        source: firstname\n", "        sorce: firstname\n"),
            (
                "action-plans.yaml",
                DELETED_SIM_STEP,
                DELETED_SIM_STEP.replace("write: sim_card", "write: contact"),
            ),
        ],
        [
            (
                "mappings/action-plans.yaml",
                34,
                17,
                "module-mismatch",
                'the step is for module SIM_Cards but field mapping "contact" writes Contacts; '
                "make them the same",
            ),
            (
                "mappings/contacts.yaml",
                11,
                9,
                "schema",
                'unknown key "sorce" (did you mean "source"?)',
            ),
        ],
        id="schema finding in a field and a step writing its mapping",
    ),
    pytest.param(
        [
            ("action-plans.yaml", NEW_SIM_STEP, NEW_SIM_STEP.replace("link", "lnk")),
            ("action-plans.yaml", SIM_STEP_LOOKUP, SIM_STEP_LOOKUP.replace("contact", "contakt")),
        ],
        [
            (
                "mappings/action-plans.yaml",
                20,
                28,
                "unknown-step",
                'no step "contakt" in this action plan (did you mean "contact"?)',
            ),
            (
                "mappings/action-plans.yaml",
                62,
                17,
                "schema",
                '"lnk" is not one of find, create, update, find_or_create, link, unlink '
                '(did you mean "link"?)',
            ),
        ],
        id="schema finding and an unknown step in one file",
    ),
]


@pytest.fixture
def broken_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Return a copy of the shipped mappings in a working directory of its own."""
    shutil.copytree(REPOSITORY / "mappings", tmp_path / "mappings")
    monkeypatch.chdir(tmp_path)
    return tmp_path / "mappings"


def apply_edits(directory: Path, edits: list[Edit]) -> None:
    for file_name, old, new in edits:
        path = directory / file_name
        text = path.read_text(encoding="utf-8")
        assert text.count(old) == 1, f"{old!r} must occur once in {file_name}"
        path.write_text(text.replace(old, new), encoding="utf-8")


def as_tuples(findings: list[Finding]) -> list[Expected]:
    return [(f.file, f.line, f.column, str(f.kind), f.message) for f in findings]


def test_shipped_files_are_clean() -> None:
    assert lint_paths([REPOSITORY / "mappings", REPOSITORY / "schemas"]) == []


@pytest.mark.parametrize(("edits", "expected"), CASES)
def test_broken_copy(broken_copy: Path, edits: list[Edit], expected: list[Expected]) -> None:
    apply_edits(broken_copy, edits)

    assert as_tuples(lint_paths([Path("mappings")])) == expected


def test_yaml_file_stands_for_its_directory(broken_copy: Path) -> None:
    apply_edits(
        broken_copy, [("contacts.yaml", "      - field: Email\n", "      - field: E_mail\n")]
    )

    findings = lint_paths([Path("mappings/action-plans.yaml")])

    assert [(f.file, f.line, f.kind) for f in findings] == [
        ("mappings/contacts.yaml", 18, FindingKind.UNKNOWN_FIELD)
    ]


def test_missing_module_definitions(broken_copy: Path) -> None:
    (broken_copy / "crm-modules.yaml").unlink()

    assert as_tuples(lint_paths([Path("mappings")])) == [
        (
            "mappings/crm-modules.yaml",
            1,
            1,
            "missing-file",
            "crm-modules.yaml with the Zoho module definitions is missing from the mappings "
            "directory",
        )
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            '{\n  "type": "object",\n  "properties": {\n}',
            (
                "schemas/broken.schema.json",
                4,
                2,
                "json-syntax",
                "invalid JSON: Expecting ',' delimiter; fix the syntax at this position",
            ),
            id="JSON syntax error",
        ),
        pytest.param(
            '{\n  "type": "object",\n  "properties": {\n    "a": {"type": "text"}\n  }\n}\n',
            (
                "schemas/broken.schema.json",
                4,
                19,
                "invalid-json-schema",
                "not a valid JSON Schema (draft 2020-12): 'text' is not valid under any of the "
                "given schemas",
            ),
            id="unknown JSON Schema type",
        ),
    ],
)
def test_broken_schema_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str, expected: Expected
) -> None:
    (tmp_path / "schemas").mkdir()
    (tmp_path / "schemas" / "broken.schema.json").write_text(text, encoding="utf-8")
    monkeypatch.chdir(tmp_path)

    assert as_tuples(lint_paths([Path("schemas/broken.schema.json")])) == [expected]


def test_path_that_does_not_exist(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        lint_paths([tmp_path / "nothing"])


def test_text_and_github_rendering() -> None:
    finding = Finding("mappings/a,b.yaml", 3, 7, FindingKind.UNKNOWN_FIELD, "50% wrong\nfix")

    assert finding.as_text() == "mappings/a,b.yaml:3:7: unknown-field: 50% wrong\nfix"
    assert finding.as_github_annotation() == (
        "::error file=mappings/a%2Cb.yaml,line=3,col=7::unknown-field: 50%25 wrong%0Afix"
    )


def test_rebound_input_checks_mapping_paths(broken_copy: Path) -> None:
    old = "        input: $.pb_data.prev_sim_info\n"
    apply_edits(broken_copy, [("action-plans.yaml", old, old.replace("prev_sim", "account"))])

    findings = lint_paths([Path("mappings")])

    assert [(f.file, f.line, f.column, f.message.split(" ")[0]) for f in findings] == [
        ("mappings/action-plans.yaml", 54, 25, "pb_data.account_info.i_sim_card"),
        ("mappings/sim-cards.yaml", 11, 17, "pb_data.account_info.i_sim_card"),
        ("mappings/sim-cards.yaml", 13, 17, "pb_data.account_info.imsi"),
        ("mappings/sim-cards.yaml", 15, 17, "pb_data.account_info.msisdn"),
        ("mappings/sim-cards.yaml", 27, 21, "pb_data.account_info.iccid"),
        ("mappings/sim-cards.yaml", 27, 21, "pb_data.account_info.msisdn"),
        ("mappings/sim-cards.yaml", 29, 23, "pb_data.account_info.i_sim_card"),
    ]
    assert findings[1].message == (
        "pb_data.account_info.i_sim_card when step previous_sim (line 51) binds input "
        "pb_data.account_info is not in the event schema: pb_data.account_info has no "
        '"i_sim_card"; fix the path, or declare the field in nsps-event.schema.json'
    )
