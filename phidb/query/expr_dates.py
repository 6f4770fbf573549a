"""Date expression operators: the date part extractors and `$dateToString`, with time zones."""

from __future__ import annotations

import datetime
import re
import zoneinfo
from collections.abc import Callable
from typing import Any

from bson.objectid import ObjectId
from bson.timestamp import Timestamp

from phidb.query.expr_core import (
    MISSING,
    Scope,
    evaluate_in,
    fail,
    nullish,
    operator,
    type_name,
)
from phidb.query.expr_math import ms_to_date

_OFFSET = re.compile(r"^([+-])(\d{2})(?::?(\d{2}))?$")
DEFAULT_FORMAT = "%Y-%m-%dT%H:%M:%S.%LZ"


def _zone(name: Any) -> datetime.tzinfo:
    if not isinstance(name, str):
        raise fail(40517, f"timezone must evaluate to a string, found {type_name(name)}")
    if name in ("UTC", "GMT", "Z"):
        return datetime.UTC
    match = _OFFSET.match(name)
    if match:
        sign, hours, minutes = match.groups()
        delta = datetime.timedelta(hours=int(hours), minutes=int(minutes or 0))
        return datetime.timezone(-delta if sign == "-" else delta)
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise fail(40485, f'unrecognized time zone identifier: "{name}"') from None


def as_date(value: Any) -> datetime.datetime:
    if isinstance(value, datetime.datetime):
        return (
            value.replace(tzinfo=None)
            if value.tzinfo is None
            else value.astimezone(datetime.UTC).replace(tzinfo=None)
        )
    if isinstance(value, Timestamp):
        return ms_to_date(value.time * 1000)
    if isinstance(value, ObjectId):
        return value.generation_time.replace(tzinfo=None)
    raise fail(16006, f"can't convert from BSON type {type_name(value)} to Date")


def local_time(value: datetime.datetime, zone: Any) -> datetime.datetime:
    """The wall-clock time of UTC `value` in `zone` (or UTC), naive."""
    if zone is MISSING:
        return value
    return value.replace(tzinfo=datetime.UTC).astimezone(_zone(zone)).replace(tzinfo=None)


def _date_argument(name: str, args: Any, scope: Scope) -> datetime.datetime | None:
    zone: Any = MISSING
    if isinstance(args, dict) and "date" in args:
        for key in args:
            if key not in ("date", "timezone"):
                raise fail(40535, f'unrecognized option to {name}: "{key}"')
        value = evaluate_in(args["date"], scope)
        if "timezone" in args:
            zone = evaluate_in(args["timezone"], scope)
            if nullish(zone):
                return None
    else:
        operands = args if isinstance(args, list) else [args]
        if len(operands) != 1:
            raise fail(
                40536,
                f"{name} accepts exactly one argument if given an array, but was "
                f"given {len(operands)}",
            )
        value = evaluate_in(operands[0], scope)
    if nullish(value):
        return None
    return local_time(as_date(value), zone)


def _part(name: str, extract: Callable[[datetime.datetime], int]) -> None:
    @operator(name)
    def part(args: Any, scope: Scope) -> Any:
        value = _date_argument(name, args, scope)
        return None if value is None else extract(value)

    del part


def _week(value: datetime.datetime) -> int:
    return int(value.strftime("%U"))


_part("$year", lambda d: d.year)
_part("$month", lambda d: d.month)
_part("$dayOfMonth", lambda d: d.day)
_part("$hour", lambda d: d.hour)
_part("$minute", lambda d: d.minute)
_part("$second", lambda d: d.second)
_part("$millisecond", lambda d: d.microsecond // 1000)
_part("$dayOfYear", lambda d: d.timetuple().tm_yday)
_part("$dayOfWeek", lambda d: d.isoweekday() % 7 + 1)
_part("$week", _week)
_part("$isoWeek", lambda d: d.isocalendar()[1])
_part("$isoWeekYear", lambda d: d.isocalendar()[0])
_part("$isoDayOfWeek", lambda d: d.isoweekday())


def _offset_minutes(utc: datetime.datetime, zone: Any) -> int:
    if zone is MISSING:
        return 0
    offset = utc.replace(tzinfo=datetime.UTC).astimezone(_zone(zone)).utcoffset()
    return int(offset.total_seconds() // 60) if offset else 0


def format_date(fmt: str, utc: datetime.datetime, zone: Any = MISSING) -> str:
    """`utc` formatted as `$dateToString` does."""
    local = local_time(utc, zone)
    out: list[str] = []
    index = 0
    while index < len(fmt):
        ch = fmt[index]
        if ch != "%":
            out.append(ch)
            index += 1
            continue
        if index + 1 >= len(fmt):
            raise fail(18535, "Unmatched '%' at end of format string")
        spec = fmt[index + 1]
        index += 2
        iso = local.isocalendar()
        minutes = _offset_minutes(utc, zone)
        pieces = {
            "d": f"{local.day:02d}",
            "G": f"{iso[0]:04d}",
            "H": f"{local.hour:02d}",
            "j": f"{local.timetuple().tm_yday:03d}",
            "L": f"{local.microsecond // 1000:03d}",
            "m": f"{local.month:02d}",
            "M": f"{local.minute:02d}",
            "S": f"{local.second:02d}",
            "w": str(local.isoweekday() % 7 + 1),
            "u": str(local.isoweekday()),
            "U": f"{_week(local):02d}",
            "V": f"{iso[1]:02d}",
            "Y": f"{local.year:04d}",
            "z": f"{'+' if minutes >= 0 else '-'}{abs(minutes) // 60:02d}{abs(minutes) % 60:02d}",
            "Z": f"{'+' if minutes >= 0 else '-'}{abs(minutes)}",
            "b": local.strftime("%b"),
            "B": local.strftime("%B"),
            "%": "%",
        }
        if spec not in pieces:
            raise fail(18536, f"Invalid format character '%{spec}' in format string")
        out.append(pieces[spec])
    return "".join(out)


@operator("$dateToString")
def _date_to_string(args: Any, scope: Scope) -> Any:
    if not isinstance(args, dict):
        raise fail(18629, "$dateToString only supports an object as its argument")
    for key in args:
        if key not in ("date", "format", "timezone", "onNull"):
            raise fail(18534, f"Unrecognized argument to $dateToString: {key}")
    if "date" not in args:
        raise fail(18628, "Missing 'date' parameter to $dateToString")
    fmt = evaluate_in(args["format"], scope) if "format" in args else DEFAULT_FORMAT
    zone = evaluate_in(args["timezone"], scope) if "timezone" in args else MISSING
    value = evaluate_in(args["date"], scope)
    if nullish(value):
        return evaluate_in(args["onNull"], scope) if "onNull" in args else None
    if nullish(fmt) or (zone is not MISSING and nullish(zone)):
        return None
    if not isinstance(fmt, str):
        raise fail(
            18533,
            f"$dateToString requires that 'format' be a string, found: "
            f"{type_name(fmt)} with value {fmt}",
        )
    return format_date(fmt, as_date(value), zone)
