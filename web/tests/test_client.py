"""ApiError.from_response (web.client): the API's problem documents (RFC 9457) as the pages
show them: the detail at the top of a form, each field's message next to the field."""

from __future__ import annotations

import httpx

from web.client import ApiError


def test_a_problem_with_field_errors() -> None:
    response = httpx.Response(
        422,
        json={
            "type": "about:blank",
            "title": "Unprocessable",
            "code": "validation_failed",
            "detail": "请检查填写的内容",
            "errors": [
                {"field": "body.phone", "message": "手机号格式不正确"},
                {"field": "phone", "message": "second message for the same field is ignored"},
                {"field": "amount_fen", "message": ""},
                {"message": "an error without a field is not a field's"},
                "not an object",
            ],
        },
    )
    error = ApiError.from_response(response)
    assert error.status == 422 and error.code == "validation_failed" and error.detail == "请检查填写的内容"
    assert error.errors == {"phone": "手机号格式不正确", "amount_fen": "输入有误"}
    assert error.retry_after is None
    assert str(error) == "422 validation_failed: 请检查填写的内容"


def test_retry_after_is_read_from_the_header() -> None:
    response = httpx.Response(
        429, json={"code": "sms_too_frequent", "detail": "验证码发送过于频繁"}, headers={"Retry-After": "42"}
    )
    error = ApiError.from_response(response)
    assert error.retry_after == 42 and error.code == "sms_too_frequent"
    odd = httpx.Response(429, json={}, headers={"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"})
    assert ApiError.from_response(odd).retry_after is None


def test_the_title_when_there_is_no_detail() -> None:
    error = ApiError.from_response(httpx.Response(404, json={"title": "产品不存在"}))
    assert error.detail == "产品不存在" and error.code == "http_404" and error.errors == {}


def test_an_answer_that_is_not_a_problem_document() -> None:
    for response in (
        httpx.Response(502, text="<html>Bad Gateway</html>"),
        httpx.Response(500, json=["a", "list"]),
        httpx.Response(503, content=b""),
    ):
        error = ApiError.from_response(response)
        assert error.status == response.status_code
        assert error.code == f"http_{response.status_code}"
        assert error.detail == "请求未能完成，请稍后重试" and error.errors == {}
