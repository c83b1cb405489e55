"""Every problem contracts answers: one factory per stable code (so one code, one text)."""

from __future__ import annotations

from collections.abc import Callable

from common.errors import Problem
from common.rules import Refusal
from contracts.domain.contracts import STATE_LABELS, Action, State

ACTION_LABELS = {
    Action.EDIT: "修改合同",
    Action.SUBMIT: "提交合同",
    Action.AGREE: "同意合同",
    Action.RETURN: "退回修改",
    Action.SIGN: "签署合同",
    Action.VOID: "作废合同",
    Action.REQUEST_TERMINATION: "终止合同",
    Action.TERMINATE: "终止合同",
    Action.RESUME: "恢复合同",
}


def contract_not_found() -> Problem:
    return Problem(404, "contract_not_found", "合同不存在或无权查看")


def wrong_party(action: Action) -> Problem:
    return Problem(403, "wrong_party", f"只有合同的{_party_label(action)}可以{ACTION_LABELS[action]}")


def _party_label(action: Action) -> str:
    return (
        "服务机构"
        if action in (Action.EDIT, Action.SUBMIT)
        else "企业"
        if action in (Action.AGREE, Action.RETURN)
        else "双方"
    )


def contract_state(state: State, action: Action) -> Problem:
    return Problem(
        409,
        "contract_state",
        f"合同当前状态为「{STATE_LABELS[state]}」，不能{ACTION_LABELS[action]}",
        state=state.value,
    )


def contract_immutable(state: State) -> Problem:
    return Problem(
        409,
        "contract_immutable",
        f"合同当前状态为「{STATE_LABELS[state]}」，企业同意后合同不可修改",
        state=state.value,
    )


def _amount_problem(code: str, field: str, message: str) -> Problem:
    return Problem(422, code, message, errors=[{"field": field, "message": message}])


def total_invalid() -> Problem:
    return _amount_problem("total_invalid", "total_fen", "合同总金额不能为负数")


def deposit_invalid() -> Problem:
    return _amount_problem("deposit_invalid", "deposit_fen", "合同定金不能为负数")


def deposit_above_payable() -> Problem:
    return _amount_problem(
        "deposit_above_payable", "deposit_fen", "合同定金不能超过企业实付金额（合同总金额减服务券抵扣）"
    )


def text_not_printable(medium: str, found: list[tuple[str, str, list[str]]]) -> Problem:
    """Text the contract's font cannot show in ``medium`` (合同文本 or 电子签章): ``found`` is
    (field, label, characters) for each text; every character is named (an invisible one by
    its code point), since the signed document would otherwise show a blank in its place."""
    messages = [f"{label}含有无法在{medium}中显示的字符：{_characters(chars)}" for _, label, chars in found]
    return Problem(
        422,
        "text_not_printable",
        "；".join(messages),
        errors=[{"field": field, "message": m} for (field, _, _), m in zip(found, messages, strict=True)],
        characters=[ch for *_, chars in found for ch in chars],
    )


def _characters(chars: list[str]) -> str:
    return "、".join(ch if ch.isprintable() and not ch.isspace() else f"U+{ord(ch):04X}" for ch in chars)


def contract_incomplete() -> Problem:
    return Problem(409, "contract_incomplete", "请先填写合同金额、定金和合同条款后再提交")


def contract_cancelled() -> Problem:
    return Problem(409, "contract_cancelled", "该订单已取消或已申请取消，合同不能再签署")


def already_signed() -> Problem:
    return Problem(409, "already_signed", "贵单位已签署该合同，无需重复签署")


def seal_required() -> Problem:
    return Problem(409, "seal_required", "请先制作贵单位的电子签章后再签署合同")


def seal_exists() -> Problem:
    return Problem(409, "seal_exists", "贵单位已制作电子签章，无需重复制作")


def seal_not_found() -> Problem:
    return Problem(404, "seal_not_found", "贵单位尚未制作电子签章")


def owner_only() -> Problem:
    return Problem(403, "owner_required", "只有单位的注册人（法定代表人）可以制作电子签章")


def organization_unknown() -> Problem:
    return Problem(409, "organization_not_certified", "贵单位尚未完成企业信息认证，暂不能制作电子签章")


def verification_used() -> Problem:
    return Problem(409, "verification_used", "该人脸认证结果已使用过，请重新进行人脸认证")


def settlement_paid() -> Problem:
    return Problem(409, "settlement_paid", "该合同的服务券已兑付，不能终止合同")


def document_unavailable(detail: str = "合同文件暂不能生成，请稍后重试") -> Problem:
    return Problem(503, "document_unavailable", detail)


def signing_unavailable() -> Problem:
    """The signing CA is not loaded yet (the service is starting)."""
    return document_unavailable("电子签章服务尚未就绪，请稍后重试")


# --- verifying an uploaded contract (public) -----------------------------------------------------


def _file_problem(status: int, code: str, detail: str) -> Problem:
    return Problem(status, code, detail, errors=[{"field": "file", "message": detail}])


def verify_file_too_large(limit: int) -> Problem:
    return Problem(413, "file_too_large", f"文件大小不能超过 {limit // (1024 * 1024)} MB", max_bytes=limit)


def verify_empty_file() -> Problem:
    return _file_problem(422, "empty_file", "文件内容为空，请重新选择文件")


def verify_not_pdf() -> Problem:
    return _file_problem(422, "not_a_pdf", "上传的文件不是 PDF 文件，请上传平台签署的合同 PDF")


def verify_pdf_unreadable() -> Problem:
    return _file_problem(422, "pdf_unreadable", "PDF 文件已损坏或格式无法识别，无法校验")


def verify_pdf_encrypted() -> Problem:
    return _file_problem(422, "pdf_encrypted", "PDF 文件已加密，无法校验，请上传未加密的合同 PDF")


def verify_pdf_unsigned() -> Problem:
    return _file_problem(422, "pdf_not_signed", "该 PDF 文件中没有电子签名，无法校验签署情况")


def verify_too_many_signatures(limit: int) -> Problem:
    return _file_problem(422, "too_many_signatures", f"该 PDF 文件中的电子签名超过 {limit} 个，平台不予校验")


def verify_busy() -> Problem:
    return Problem(
        503, "verification_busy", "当前校验合同的请求较多，请稍后重试", headers={"Retry-After": "5"}
    )


# --- what the rules refuse -----------------------------------------------------------------------

_BY_CODE: dict[str, Callable[[Refusal], Problem]] = {
    "contract_state": lambda r: contract_state(State(r.state), Action(r.action)),
    "total_invalid": lambda r: total_invalid(),
    "deposit_invalid": lambda r: deposit_invalid(),
    "deposit_above_payable": lambda r: deposit_above_payable(),
    "not_a_pdf": lambda r: verify_not_pdf(),
    "pdf_unreadable": lambda r: verify_pdf_unreadable(),
    "pdf_encrypted": lambda r: verify_pdf_encrypted(),
    "pdf_not_signed": lambda r: verify_pdf_unsigned(),
    "too_many_signatures": lambda r: verify_too_many_signatures(int(r.limit)),
}


def from_refusal(refusal: Refusal) -> Problem:
    """The problem a client sees for a rule's refusal (the contract's state machine and
    amounts, and why an uploaded PDF cannot be judged)."""
    return _BY_CODE[refusal.code](refusal)
