"""Zoho's records API over the emulator's store: validation, writes, reads and search.

Each public method returns `(HTTP status, JSON body or None)` with the body shapes Zoho sends.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from engine.emulator.criteria import CriteriaError, criteria_fields, matches, parse_criteria
from engine.emulator.modules import (
    FieldDefinition,
    ModuleDefinition,
    check_value,
    invalid_data,
)
from engine.emulator.store import RecordStore

MAX_RECORDS = 100
MAX_PER_PAGE = 200
SANDBOX_USER = {
    "name": "Sandbox User",
    "id": "5725767000000200001",
    "email": "sandbox-user@example.invalid",
}

Reply = tuple[int, dict[str, Any] | None]


def error_body(code: str, message: str, **details: Any) -> dict[str, Any]:
    return {"code": code, "details": details, "message": message, "status": "error"}


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _mandatory_missing(field: str, index: int) -> dict[str, Any]:
    return {
        "code": "MANDATORY_NOT_FOUND",
        "details": {"api_name": field, "json_path": f"$.data[{index}].{field}"},
        "message": "required field not found",
        "status": "error",
    }


def _invalid_id(field: str, index: int) -> dict[str, Any]:
    return {
        "code": "INVALID_DATA",
        "details": {"api_name": field, "json_path": f"$.data[{index}].{field}"},
        "message": "the id given seems to be invalid",
        "status": "error",
    }


class RecordsApi:
    def __init__(
        self,
        modules: Mapping[str, ModuleDefinition],
        store: RecordStore,
        search_lag_seconds: Callable[[], float],
    ) -> None:
        self.modules = modules
        self.store = store
        self._search_lag_seconds = search_lag_seconds

    def module(self, name: str) -> ModuleDefinition | None:
        return self.modules.get(name)

    # Writes

    def insert(self, module: ModuleDefinition, body: Any) -> Reply:
        def insert_one(record: dict[str, Any], index: int) -> dict[str, Any]:
            return self._insert_one(module, record, index)

        return self._write(module, body, insert_one, success_status=201)

    def update(self, module: ModuleDefinition, body: Any, record_id: str | None = None) -> Reply:
        def update_one(record: dict[str, Any], index: int) -> dict[str, Any]:
            if record_id is not None:
                record = {**record, "id": record_id}
            return self._update_one(module, record, index)

        return self._write(module, body, update_one, success_status=200)

    def upsert(self, module: ModuleDefinition, body: Any) -> Reply:
        check_fields = body.get("duplicate_check_fields") if isinstance(body, dict) else None
        if check_fields is None:
            check_fields = [field.api_name for field in module.unique_fields]
        if not isinstance(check_fields, list) or not all(isinstance(f, str) for f in check_fields):
            return 400, error_body(
                "INVALID_DATA",
                "invalid data",
                api_name="duplicate_check_fields",
                json_path="$.duplicate_check_fields",
                expected_data_type="jsonarray",
            )
        for name in check_fields:
            field = module.fields.get(name)
            # Zoho matches only on system duplicate-check fields and unique fields.
            # NOTE: the exact error Zoho returns for a non-unique field here is unconfirmed.
            if field is None or not field.unique:
                return 400, error_body(
                    "INVALID_DATA",
                    "the field is not a unique field",
                    api_name=name,
                    json_path="$.duplicate_check_fields",
                )

        def upsert_one(record: dict[str, Any], index: int) -> dict[str, Any]:
            for name in check_fields:
                value = record.get(name)
                if value is None:
                    continue
                existing = self.store.find_exact(module.api_name, name, value)
                if existing is not None:
                    result = self._update_one(module, {**record, "id": existing["id"]}, index)
                    if result["status"] == "success":
                        result["action"] = "update"
                        result["duplicate_field"] = name
                    return result
            result = self._insert_one(module, record, index)
            if result["status"] == "success":
                result["action"] = "insert"
                result["duplicate_field"] = None
            return result

        # NOTE: Zoho's status for an upsert batch whose records all succeeded (200 or 201) is
        # unconfirmed; 200 is sent, as for updates.
        return self._write(module, body, upsert_one, success_status=200)

    def _write(
        self,
        module: ModuleDefinition,
        body: Any,
        write_one: Callable[[dict[str, Any], int], dict[str, Any]],
        *,
        success_status: int,
    ) -> Reply:
        if not isinstance(body, dict) or "data" not in body:
            return 400, error_body(
                "REQUIRED_PARAM_MISSING", "required param missing", param_name="data"
            )
        records = body["data"]
        if not isinstance(records, list) or not records:
            return 400, error_body(
                "INVALID_DATA",
                "invalid data",
                api_name="data",
                json_path="$.data",
                expected_data_type="jsonarray",
            )
        if len(records) > MAX_RECORDS:
            return 400, error_body(
                "LIMIT_EXCEEDED",
                "the number of records exceeds the limit",
                api_name="data",
                limit=MAX_RECORDS,
            )

        results = []
        with self.store.lock():
            for index, record in enumerate(records):
                if not isinstance(record, dict):
                    results.append(invalid_data("data", index, expected_data_type="jsonobject"))
                    continue
                results.append(write_one(record, index))

        succeeded = sum(1 for result in results if result["status"] == "success")
        if succeeded == len(results):
            status = success_status
        elif succeeded == 0:
            status = 400
        else:
            status = 207
        return status, {"data": results}

    def _insert_one(
        self, module: ModuleDefinition, record: dict[str, Any], index: int
    ) -> dict[str, Any]:
        for field in module.mandatory_fields:
            if record.get(field.api_name) in (None, ""):
                return _mandatory_missing(field.api_name, index)
        error = self._check_fields(module, record, index, own_id=None)
        if error is not None:
            return error

        record_id = self.store.new_id()
        timestamp = _now()
        stored = self._stored_fields(module, record)
        stored.update(
            {
                "id": record_id,
                "Created_Time": timestamp,
                "Modified_Time": timestamp,
                "Owner": dict(SANDBOX_USER),
            }
        )
        self.store.put(module.api_name, stored, search_lag_seconds=self._search_lag_seconds())
        return {
            "code": "SUCCESS",
            "details": {
                "Modified_Time": timestamp,
                "Modified_By": dict(SANDBOX_USER),
                "Created_Time": timestamp,
                "id": record_id,
                "Created_By": dict(SANDBOX_USER),
                "$approval_state": "approved",
            },
            "message": "record added",
            "status": "success",
        }

    def _update_one(
        self, module: ModuleDefinition, record: dict[str, Any], index: int
    ) -> dict[str, Any]:
        record_id = record.get("id")
        if record_id is None:
            return _mandatory_missing("id", index)
        existing = (
            self.store.get(module.api_name, str(record_id)) if isinstance(record_id, str) else None
        )
        if existing is None:
            return _invalid_id("id", index)
        for field in module.mandatory_fields:
            if field.api_name in record and record[field.api_name] in (None, ""):
                return _mandatory_missing(field.api_name, index)
        error = self._check_fields(module, record, index, own_id=str(record_id))
        if error is not None:
            return error

        timestamp = _now()
        existing.update(self._stored_fields(module, record))
        existing["Modified_Time"] = timestamp
        self.store.put(module.api_name, existing, search_lag_seconds=self._search_lag_seconds())
        return {
            "code": "SUCCESS",
            "details": {
                "Modified_Time": timestamp,
                "Modified_By": dict(SANDBOX_USER),
                "Created_Time": existing.get("Created_Time"),
                "id": existing["id"],
                "Created_By": dict(SANDBOX_USER),
            },
            "message": "record updated",
            "status": "success",
        }

    def _check_fields(
        self, module: ModuleDefinition, record: dict[str, Any], index: int, *, own_id: str | None
    ) -> dict[str, Any] | None:
        for name, value in record.items():
            field = module.fields.get(name)
            # NOTE: like Zoho, field names the module does not have are ignored, not rejected.
            if field is None:
                continue
            error = check_value(field, value, index)
            if error is not None:
                return error
            if field.data_type == "lookup" and value is not None:
                target = field.lookup_module or ""
                if self.store.get(target, value["id"]) is None:
                    return _invalid_id(name, index)
            if field.unique and value is not None:
                duplicate = self.store.find_exact(module.api_name, name, value)
                if duplicate is not None and duplicate["id"] != own_id:
                    return {
                        "code": "DUPLICATE_DATA",
                        "details": {
                            "api_name": name,
                            "json_path": f"$.data[{index}].{name}",
                            "duplicate_record": {
                                "id": duplicate["id"],
                                "module": {"api_name": module.api_name},
                                "Owner": dict(SANDBOX_USER),
                            },
                            "more_records": False,
                        },
                        "message": "duplicate data",
                        "status": "error",
                    }
        return None

    def _stored_fields(self, module: ModuleDefinition, record: dict[str, Any]) -> dict[str, Any]:
        stored: dict[str, Any] = {}
        for name, value in record.items():
            field = module.fields.get(name)
            if field is None:
                continue
            stored[name] = self._stored_value(field, value)
        return stored

    def _stored_value(self, field: FieldDefinition, value: Any) -> Any:
        if value is None:
            return None
        if field.data_type == "lookup":
            target = self.store.get(field.lookup_module or "", value["id"]) or {}
            return {"id": value["id"], "name": _record_name(target)}
        if field.data_type in ("integer", "bigint") and isinstance(value, str):
            return int(value)
        return value

    # Reads

    def get(self, module: ModuleDefinition, record_id: str) -> Reply:
        record = self.store.get(module.api_name, record_id)
        if record is None:
            return 204, None
        return 200, {"data": [record]}

    def search(self, module: ModuleDefinition, params: Mapping[str, str]) -> Reply:
        criteria = params.get("criteria")
        if not criteria:
            return 400, error_body(
                "REQUIRED_PARAM_MISSING",
                "One of the expected parameter is missing",
                param_name="criteria",
            )
        try:
            condition = parse_criteria(criteria)
        except CriteriaError as exc:
            return 400, error_body("INVALID_QUERY", "invalid query formed", reason=str(exc))
        for name in criteria_fields(condition):
            if name != "id" and name not in module.fields:
                return 400, error_body(
                    "INVALID_QUERY",
                    "invalid query formed",
                    api_name=name,
                    reason="the field does not exist",
                )
        try:
            page = max(1, int(params.get("page", "1")))
            per_page = min(MAX_PER_PAGE, max(1, int(params.get("per_page", str(MAX_PER_PAGE)))))
        except ValueError:
            return 400, error_body("INVALID_DATA", "invalid data", param_name="page")

        found = self.store.searchable(module.api_name, lambda record: matches(condition, record))
        found.sort(key=lambda record: record["id"])
        start = (page - 1) * per_page
        selected = found[start : start + per_page]
        if not selected:
            return 204, None
        info = {
            "per_page": per_page,
            "count": len(selected),
            "page": page,
            "more_records": start + per_page < len(found),
        }
        return 200, {"data": selected, "info": info}

    def fields(self, module: ModuleDefinition) -> Reply:
        return 200, {"fields": [field.metadata() for field in module.fields.values()]}


def _record_name(record: Mapping[str, Any]) -> str | None:
    if "Name" in record:
        return record.get("Name")
    first = record.get("First_Name") or ""
    last = record.get("Last_Name") or ""
    full = f"{first} {last}".strip()
    return full or None
