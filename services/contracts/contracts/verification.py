"""Anyone's contract PDF judged against the platform's signing CA: who signed, when, whether
each signature is intact and trusted, and whether anything changed after it.

Pure (bytes and the CA certificate in, a :class:`Report` out; no database, no HTTP). pyHanko
reads the untrusted file and validates every signature with a ValidationContext whose only
trust root is the platform's CA and which fetches nothing (no OCSP, CRL or AIA from a file
someone uploaded). Its synchronous API runs its own event loop, and a large file takes CPU:
call :func:`verify_pdf` from a worker thread (``asyncio.to_thread``).

What "changed after signing" means here: a signature whose signed bytes no longer hash to
what was signed (``intact`` false), or a later incremental update that does more than add
signatures or fill form fields (pyHanko's difference analysis: ``modification_level`` above
FORM_FILLING, or the DocMDP policy not respected). The second party's signature on a platform
contract is such a permitted update to the first one's revision.
"""

from __future__ import annotations

import hashlib
import io
import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import NameOID
from pyhanko.keys.internal import translate_pyca_cryptography_cert_to_asn1
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.diff_analysis import ModificationLevel
from pyhanko.sign.validation import validate_pdf_signature
from pyhanko.sign.validation.status import SignatureCoverageLevel
from pyhanko_certvalidator import ValidationContext

from common.rules import Refusal

log = logging.getLogger(__name__)

PDF_MAGIC = b"%PDF-"
# A platform contract has two; more in one upload is refused before any is validated (each
# one is a full difference analysis of the file).
MAX_SIGNATURES = 10
# Later updates that are not a change of what was signed: more signatures, form filling.
ALLOWED_AFTER_SIGNING = (
    ModificationLevel.NONE,
    ModificationLevel.LTA_UPDATES,
    ModificationLevel.FORM_FILLING,
)


# Why a file cannot be judged at all: the codes of the Refusal verify_pdf raises (the stable
# problem codes; contracts.errors.from_refusal turns each into its problem).
NOT_PDF = "not_a_pdf"
UNREADABLE = "pdf_unreadable"
ENCRYPTED = "pdf_encrypted"
UNSIGNED = "pdf_not_signed"
TOO_MANY_SIGNATURES = "too_many_signatures"  # with limit=MAX_SIGNATURES


COVERAGE = {
    SignatureCoverageLevel.ENTIRE_FILE: "entire_file",
    SignatureCoverageLevel.ENTIRE_REVISION: "entire_revision",
    SignatureCoverageLevel.CONTIGUOUS_BLOCK_FROM_START: "partial",
    SignatureCoverageLevel.UNCLEAR: "unclear",
}


@dataclass(frozen=True)
class SignatureReport:
    field_name: str
    signer_name: str  # the certificate subject's organisation (O), else its common name
    signer_subject: str  # the whole subject, RFC 4514
    issuer: str
    certificate_serial: str  # hex, as contracts' seals show it
    issued_by_platform_ca: bool
    signed_at: datetime | None  # the signer's own claim (no time-stamp authority)
    reason: str | None
    intact: bool
    cryptographically_valid: bool
    trusted: bool
    coverage: str  # entire_file | entire_revision | partial | unclear
    modification_level: str | None  # none | lta_updates | form_filling | annotations | other
    docmdp_ok: bool | None
    modified_after_signing: bool
    valid: bool
    error: str | None = None  # a signature pyHanko could not evaluate at all

    @property
    def summary(self) -> str:
        if self.error is not None:
            return f"签名「{self.field_name}」无法校验：{self.error}"
        who = f"「{self.signer_name}」" if self.signer_name else "未知签署方"
        if not self.intact:
            return f"{who}的签名与文件内容不符：签署的内容已被改动"
        if not self.cryptographically_valid:
            return f"{who}的签名值无效"
        if not self.issued_by_platform_ca:
            return f"{who}的证书不是本平台电子签章 CA 签发的"
        if not self.trusted:
            return f"{who}的证书未通过本平台电子签章 CA 的信任校验（可能已过期或用途不符）"
        if self.modified_after_signing:
            return f"{who}的签名完好，但签署后文件又被修改（不只是追加签名）"
        return f"{who}的签名有效，签署后文件未被修改" + (
            "" if self.coverage == "entire_file" else "（其后仅追加了签名）"
        )


@dataclass(frozen=True)
class Report:
    sha256: str
    size: int
    ca_subject: str
    ca_fingerprint_sha256: str
    signatures: list[SignatureReport] = field(default_factory=list)

    @property
    def signature_count(self) -> int:
        return len(self.signatures)

    @property
    def signed_by_platform_ca(self) -> bool:
        return bool(self.signatures) and all(s.issued_by_platform_ca for s in self.signatures)

    @property
    def modified_after_signing(self) -> bool:
        return any(s.modified_after_signing for s in self.signatures)

    @property
    def valid(self) -> bool:
        return bool(self.signatures) and all(s.valid for s in self.signatures)

    @property
    def summary(self) -> str:
        n = len(self.signatures)
        if self.valid:
            return f"文件共有 {n} 个签名，均由本平台电子签章 CA 签发的证书签署且有效，签署后未被修改"
        if self.modified_after_signing:
            return f"文件共有 {n} 个签名，签署后文件已被修改，签名不能证明当前内容"
        if not self.signed_by_platform_ca:
            return f"文件共有 {n} 个签名，并非全部由本平台电子签章 CA 签发的证书签署"
        return f"文件共有 {n} 个签名，其中有签名未通过校验"


def ca_fingerprint(ca_cert: x509.Certificate) -> str:
    return ca_cert.fingerprint(hashes.SHA256()).hex()


def _name_attr(name: x509.Name, oid: x509.ObjectIdentifier) -> str:
    attrs = name.get_attributes_for_oid(oid)
    return str(attrs[0].value) if attrs else ""


def _issued_by(cert: x509.Certificate, ca_cert: x509.Certificate) -> bool:
    """The certificate's signature verifies under the CA's key (not only a matching name)."""
    try:
        cert.verify_directly_issued_by(ca_cert)
    except (InvalidSignature, ValueError, TypeError, UnsupportedAlgorithm):  # another issuer
        return False
    return True


def _open(pdf: bytes) -> PdfFileReader:
    if PDF_MAGIC not in pdf[:1024]:  # where ISO 32000 lets the header be
        raise Refusal(NOT_PDF)
    try:
        reader = PdfFileReader(io.BytesIO(pdf), strict=False)
        encrypted = reader.encrypted
        signatures = list(reader.embedded_signatures)
    except Exception as exc:  # a broken file raises anything from anywhere in the parser
        log.info("pdf_unreadable: %s: %s", type(exc).__name__, exc)
        raise Refusal(UNREADABLE) from exc
    if encrypted:
        raise Refusal(ENCRYPTED)
    if not signatures:
        raise Refusal(UNSIGNED)
    if len(signatures) > MAX_SIGNATURES:
        raise Refusal(TOO_MANY_SIGNATURES, limit=MAX_SIGNATURES)
    return reader


def verify_pdf(pdf: bytes, ca_cert_pem: str) -> Report:
    """Every signature of ``pdf`` judged against the CA as the only trust root (offline).

    Raises ``common.rules.Refusal`` (:data:`NOT_PDF`, :data:`UNREADABLE`, :data:`ENCRYPTED`,
    :data:`UNSIGNED`, :data:`TOO_MANY_SIGNATURES`) for a file that is not a readable, signed PDF."""
    ca_cert = x509.load_pem_x509_certificate(ca_cert_pem.encode())
    reader = _open(pdf)
    root = translate_pyca_cryptography_cert_to_asn1(ca_cert)
    reports = [_signature(sig, root, ca_cert) for sig in reader.embedded_signatures]
    return Report(
        sha256=hashlib.sha256(pdf).hexdigest(),
        size=len(pdf),
        ca_subject=ca_cert.subject.rfc4514_string(),
        ca_fingerprint_sha256=ca_fingerprint(ca_cert),
        signatures=reports,
    )


def _signature(sig: Any, root: Any, ca_cert: x509.Certificate) -> SignatureReport:
    field_name = str(sig.field_name)
    try:
        cert = x509.load_der_x509_certificate(sig.signer_cert.dump())
    except Exception as exc:  # noqa: BLE001 - an uploaded file's CMS: anything may fail
        log.info("signature_unreadable: %s: %s", type(exc).__name__, exc)
        return _broken(field_name, "签名数据无法解析")
    subject = cert.subject
    by_platform = _issued_by(cert, ca_cert)
    identity: dict[str, Any] = {
        "signer_name": _name_attr(subject, NameOID.ORGANIZATION_NAME)
        or _name_attr(subject, NameOID.COMMON_NAME),
        "signer_subject": subject.rfc4514_string(),
        "issuer": cert.issuer.rfc4514_string(),
        "certificate_serial": format(cert.serial_number, "x"),
        "issued_by_platform_ca": by_platform,
    }
    try:
        signed_at = sig.self_reported_timestamp
    except Exception:  # noqa: BLE001 - a malformed date is no signing time, not a 500
        signed_at = None
    reason = sig.sig_object.get("/Reason")
    try:
        context = ValidationContext(trust_roots=[root], allow_fetching=False)
        status: Any = validate_pdf_signature(sig, context)
    except Exception as exc:  # noqa: BLE001 - this signature cannot be judged; the others can
        log.info("signature_not_validated: %s: %s", type(exc).__name__, exc)
        return _broken(field_name, "签名数据无法解析", **identity, signed_at=signed_at)
    level = status.modification_level
    modified = (
        not status.intact
        or level is None
        or level not in ALLOWED_AFTER_SIGNING
        or status.docmdp_ok is False
        or status.coverage not in (SignatureCoverageLevel.ENTIRE_FILE, SignatureCoverageLevel.ENTIRE_REVISION)
    )
    return SignatureReport(
        field_name=field_name,
        signed_at=signed_at,
        reason=str(reason) if reason is not None else None,
        intact=bool(status.intact),
        cryptographically_valid=bool(status.valid),
        trusted=bool(status.trusted),
        coverage=COVERAGE.get(status.coverage, "unclear"),
        modification_level=level.name.lower() if level is not None else None,
        docmdp_ok=status.docmdp_ok,
        modified_after_signing=modified,
        valid=bool(status.bottom_line) and by_platform and not modified,
        **identity,
    )


def _broken(field_name: str, error: str, **known: Any) -> SignatureReport:
    values: dict[str, Any] = {
        "signer_name": "",
        "signer_subject": "",
        "issuer": "",
        "certificate_serial": "",
        "issued_by_platform_ca": False,
        "signed_at": None,
    } | known
    return SignatureReport(
        field_name=field_name,
        reason=None,
        intact=False,
        cryptographically_valid=False,
        trusted=False,
        coverage="unclear",
        modification_level=None,
        docmdp_ok=None,
        modified_after_signing=True,
        valid=False,
        error=error,
        **values,
    )


def der(cert_pem: str) -> bytes:
    return x509.load_pem_x509_certificate(cert_pem.encode()).public_bytes(serialization.Encoding.DER)
