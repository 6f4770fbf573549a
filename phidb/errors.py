"""MongoDB error codes and the one exception type that carries them to a reply.

Every failure a client can see is a `MongoError`: the dispatcher turns it into
`{ok: 0, errmsg, code, codeName}` (plus any extra fields, such as `keyPattern`
for a duplicate key). Codes and names follow MongoDB's `error_codes.yml`.
"""

from __future__ import annotations

from typing import Any

# code -> codeName, as MongoDB spells them.  Never add the not-primary or
# shutdown codes (10107, 13435, 13436, 11600, 91, 189) for ordinary errors:
# drivers drop their whole connection pool when they see one.
CODE_NAMES: dict[int, str] = {
    1: "InternalError",
    2: "BadValue",
    4: "NoSuchKey",
    9: "FailedToParse",
    11: "UserNotFound",
    13: "Unauthorized",
    14: "TypeMismatch",
    16: "InvalidLength",
    17: "ProtocolError",
    18: "AuthenticationFailed",
    20: "IllegalOperation",
    22: "InvalidBSON",
    26: "NamespaceNotFound",
    27: "IndexNotFound",
    28: "PathNotViable",
    31: "RoleNotFound",
    40: "ConflictingUpdateOperators",
    43: "CursorNotFound",
    48: "NamespaceExists",
    50: "MaxTimeMSExpired",
    51: "DuplicateKeyValue",
    52: "DollarPrefixedFieldName",
    53: "InvalidIdField",
    54: "NotSingleValueField",
    55: "InvalidDBRef",
    56: "EmptyFieldName",
    57: "DottedFieldName",
    59: "CommandNotFound",
    66: "ImmutableField",
    67: "CannotCreateIndex",
    68: "IndexAlreadyExists",
    72: "InvalidOptions",
    73: "InvalidNamespace",
    85: "IndexOptionsConflict",
    86: "IndexKeySpecsConflict",
    96: "OperationFailed",
    112: "WriteConflict",
    115: "CommandNotSupported",
    121: "DocumentValidationFailure",
    166: "CommandNotSupportedOnView",
    168: "InvalidPipelineOperator",
    186: "ClientMetadataCannotBeMutated",
    238: "NotImplemented",
    241: "ConversionFailure",
    334: "MechanismUnavailable",
    10334: "BSONObjectTooLarge",
    11000: "DuplicateKey",
    15974: "Location15974",
    16410: "Location16410",
    17276: "Location17276",
    31249: "Location31249",
    31254: "Location31254",
    40323: "Location40323",
    40324: "Location40324",
    40352: "Location40352",
    51091: "Location51091",
    171: "CannotIndexParallelArrays",
    146: "ExceededMemoryLimit",
}

BAD_VALUE = 2
FAILED_TO_PARSE = 9
USER_NOT_FOUND = 11
UNAUTHORIZED = 13
TYPE_MISMATCH = 14
PROTOCOL_ERROR = 17
AUTHENTICATION_FAILED = 18
ILLEGAL_OPERATION = 20
INVALID_BSON = 22
NAMESPACE_NOT_FOUND = 26
INDEX_NOT_FOUND = 27
ROLE_NOT_FOUND = 31
CONFLICTING_UPDATE_OPERATORS = 40
CURSOR_NOT_FOUND = 43
NAMESPACE_EXISTS = 48
MAX_TIME_MS_EXPIRED = 50
DOLLAR_PREFIXED_FIELD_NAME = 52
COMMAND_NOT_FOUND = 59
IMMUTABLE_FIELD = 66
CANNOT_CREATE_INDEX = 67
INVALID_OPTIONS = 72
INVALID_NAMESPACE = 73
INDEX_OPTIONS_CONFLICT = 85
INDEX_KEY_SPECS_CONFLICT = 86
OPERATION_FAILED = 96
CLIENT_METADATA_CANNOT_BE_MUTATED = 186
NOT_IMPLEMENTED = 238
MECHANISM_UNAVAILABLE = 334
BSON_OBJECT_TOO_LARGE = 10334
DUPLICATE_KEY = 11000


def code_name(code: int) -> str:
    """MongoDB's name for `code`, or `Location<code>` as the server prints it."""
    return CODE_NAMES.get(code, f"Location{code}")


class MongoError(Exception):
    """A failure reported to the client as `{ok: 0, errmsg, code, codeName, **extra}`."""

    def __init__(self, code: int, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.extra = extra

    @property
    def code_name(self) -> str:
        return code_name(self.code)

    def to_reply(self) -> dict[str, Any]:
        reply: dict[str, Any] = {
            "ok": 0.0,
            "errmsg": self.message,
            "code": self.code,
            "codeName": self.code_name,
        }
        reply.update(self.extra)
        return reply

    def to_write_error(self, index: int) -> dict[str, Any]:
        """The shape of one entry of a write command's `writeErrors`."""
        entry: dict[str, Any] = {"index": index, "code": self.code, "errmsg": self.message}
        entry.update(self.extra)
        return entry


def bad_value(message: str) -> MongoError:
    return MongoError(BAD_VALUE, message)


def failed_to_parse(message: str) -> MongoError:
    return MongoError(FAILED_TO_PARSE, message)


def type_mismatch(message: str) -> MongoError:
    return MongoError(TYPE_MISMATCH, message)
