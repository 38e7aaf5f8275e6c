"""DLMS errors in the standard's words (IEC 62056-5-3 / Green Book names, hyphens read as spaces), as sentences.

A meter answers a failed request with a data-access-result or action-result code, an
exception-response (state error and service error), or a confirmed-service-error; a refused
association carries a result and a diagnostic. gurux-dlms turns those into exceptions with numbers;
``explain`` turns them into one sentence an operator can act on.
"""

from __future__ import annotations

from typing import Any

# Data-Access-Result (GET/SET) and Action-Result (ACTION) share these codes.
DATA_ACCESS_RESULTS = {
    0: "success", 1: "hardware fault", 2: "temporary failure", 3: "read-write denied", 4: "object undefined",
    9: "object class inconsistent", 11: "object unavailable", 12: "type unmatched", 13: "scope of access violated",
    14: "data block unavailable", 15: "long get aborted", 16: "no long get in progress", 17: "long set aborted",
    18: "no long set in progress", 19: "data block number invalid", 250: "other reason",
}
DATA_ACCESS_HINTS = {
    3: "access denied: the association in use may not do this; another client address or authentication may",
    4: "the meter has no such object (check the OBIS code and class)",
    9: "the object exists with another interface class",
    11: "the meter cannot give this value now or does not support this access to it",
    12: "the value sent does not have the type the meter expects",
    13: "the access is outside what the meter allows (e.g. a selective access it does not support)",
}
# Exception-Response: state-error and service-error.
STATE_ERRORS = {1: "service not allowed", 2: "service unknown"}
SERVICE_ERRORS = {1: "operation not possible", 2: "service not supported", 3: "other reason", 4: "pdu too long",
                  5: "deciphering error", 6: "invocation counter error"}
SERVICE_ERROR_SENTENCES = {
    1: "the meter cannot perform this operation now",
    2: "the meter does not support this service",
    3: "the meter refused the request for an unspecified reason",
    4: "the request was longer than the meter accepts (its maximum PDU size)",
    5: "the meter could not decipher the request (wrong keys or security suite)",
    6: "the meter refused the invocation counter (it must be higher than any used before)",
}
# Confirmed-ServiceError: which service, and the ServiceError choice.
CONFIRMED_SERVICES = {1: "initiate-error", 2: "getStatus", 3: "getNameList", 4: "getVariableAttribute", 5: "read",
                      6: "write", 7: "getDataSetAttribute", 8: "getTIAttribute", 9: "changeScope", 10: "start",
                      11: "stop", 12: "resume", 13: "makeUsable", 14: "initiateLoad", 15: "loadSegment",
                      16: "terminateLoad", 17: "initiateUpLoad", 18: "upLoadSegment", 19: "terminateUpLoad"}
SERVICE_ERROR_CHOICES = {0: "application reference", 1: "hardware resource", 2: "vde state error", 3: "service",
                         4: "definition", 5: "access", 6: "initiate", 7: "load data set", 8: "change scope",
                         9: "task", 10: "other"}
INITIATE_ERRORS = {0: "other", 1: "dlms version too low", 2: "incompatible conformance", 3: "pdu size too short",
                   4: "refused by the VDE Handler"}
ACCESS_ERRORS = {0: "other", 1: "scope of access violated", 2: "object access violated", 3: "hardware fault",
                 4: "object unavailable"}
SERVICE_CHOICE_ERRORS = {0: "other", 1: "pdu size", 2: "service unsupported"}
SERVICE_ERROR_VALUES = {3: SERVICE_CHOICE_ERRORS, 5: ACCESS_ERRORS, 6: INITIATE_ERRORS}
# AARE: association result and the acse-service-user / acse-service-provider diagnostics.
ASSOCIATION_RESULTS = {0: "accepted", 1: "rejected permanent", 2: "rejected transient"}
ACSE_USER_DIAGNOSTICS = {
    0: "null", 1: "no reason given", 2: "application context name not supported",
    3: "calling AP title not recognized", 4: "calling AP invocation identifier not recognized",
    5: "calling AE qualifier not recognized", 6: "calling AE invocation identifier not recognized",
    7: "called AP title not recognized", 8: "called AP invocation identifier not recognized",
    9: "called AE qualifier not recognized", 10: "called AE invocation identifier not recognized",
    11: "authentication mechanism name not recognised", 12: "authentication mechanism name required",
    13: "authentication failure", 14: "authentication required",
}
ACSE_USER_SENTENCES = {
    2: "the meter does not accept this application context (ciphered or not, logical or short names)",
    11: "the meter does not know this authentication mechanism",
    12: "the meter requires authentication for this client",
    13: "wrong password or keys",
    14: "this client must authenticate",
}
ACSE_PROVIDER_DIAGNOSTICS = {0: "null", 1: "no reason given", 2: "no common acse version"}


def data_access_sentence(code: int) -> str:
    """A data-access-result / action-result in words, with a hint where one helps."""
    name = DATA_ACCESS_RESULTS.get(code, f"unknown result {code}")
    hint = DATA_ACCESS_HINTS.get(code)
    return f"{name} ({hint})" if hint else name


def exception_response_sentence(state: int, service: int) -> str:
    """An exception-response in words."""
    sentence = SERVICE_ERROR_SENTENCES.get(service, "the meter refused the request")
    return (f"{sentence} (exception-response: {STATE_ERRORS.get(state, f'state-error {state}')}, "
            f"{SERVICE_ERRORS.get(service, f'service-error {service}')})")


def confirmed_service_error_sentence(service: int, choice: int, value: int) -> str:
    """A confirmed-service-error in words."""
    detail = SERVICE_ERROR_VALUES.get(choice, {}).get(value, str(value))
    what = "the association's initiate request" if service == 1 else \
        f"the {CONFIRMED_SERVICES.get(service, f'service {service}')} service"
    return (f"the meter refused {what} (confirmed-service-error: {CONFIRMED_SERVICES.get(service, service)}, "
            f"{SERVICE_ERROR_CHOICES.get(choice, f'error {choice}')}: {detail})")


def aare_service_error(aare: bytes) -> str | None:
    """The confirmed-service-error a refused AARE carries in its user-information (BE 04 0E ...), in words.

    gurux reports such an AARE only by its result and diagnostic, which often say 'no reason given'."""
    start = aare.find(b"\xbe")
    while 0 <= start < len(aare) - 7:
        if aare[start + 2] == 0x04 and aare[start + 4] == 0x0E:
            service, choice, value = aare[start + 5:start + 8]
            return confirmed_service_error_sentence(service, choice, value)
        start = aare.find(b"\xbe", start + 1)
    return None


def association_sentence(result: int, diagnostic: int, provider: bool = False) -> str:
    """A refused association (AARE result and diagnostic) in words."""
    names = ACSE_PROVIDER_DIAGNOSTICS if provider else ACSE_USER_DIAGNOSTICS
    name = names.get(diagnostic, f"diagnostic {diagnostic}")
    sentence = "" if provider else ACSE_USER_SENTENCES.get(diagnostic, "")
    return (f"association {ASSOCIATION_RESULTS.get(result, f'result {result}')}: {name}"
            + (f" ({sentence})" if sentence else ""))


def _int(value: Any, default: int = 0) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def explain(exc: BaseException) -> tuple[int, str, str]:
    """(code, kind, sentence) of a gurux exception: kind is 'data-access', 'exception-response',
    'confirmed-service-error', 'association' or 'other'."""
    from gurux_dlms import GXDLMSConfirmedServiceError, GXDLMSException, GXDLMSExceptionResponse

    if isinstance(exc, GXDLMSExceptionResponse):
        state, service = _int(exc.exceptionStateError), _int(exc.exceptionServiceError)
        return service, "exception-response", exception_response_sentence(state, service)
    if isinstance(exc, GXDLMSConfirmedServiceError):
        service, choice = _int(exc.confirmedServiceError), _int(exc.serviceError)
        value = _int(exc.serviceErrorValue)
        return value, "confirmed-service-error", confirmed_service_error_sentence(service, choice, value)
    if isinstance(exc, GXDLMSException):
        if getattr(exc, "result", None) is not None:
            diagnostic = getattr(exc, "diagnostic", 1)
            provider = type(diagnostic).__name__ == "AcseServiceProvider"
            return (_int(diagnostic, 1), "association",
                    association_sentence(_int(exc.result), _int(diagnostic, 1), provider))
        code = _int(getattr(exc, "errorCode", 250), 250)
        return code, "data-access", data_access_sentence(code)
    return 250, "other", str(exc) or exc.__class__.__name__
