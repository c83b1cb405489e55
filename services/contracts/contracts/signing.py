"""The platform's signing CA, the organisations' certificates and the PAdES signatures.

When an organisation makes its seal, the platform's signing CA issues it an EC P-256 key and
an X.509 certificate (digitalSignature + nonRepudiation); the key is kept encrypted
(AES-GCM, :class:`common.crypto.FieldCipher`). Each party's signature on the agreed contract
is a PAdES signature (pyHanko) added as an incremental update into its own signature field,
with the party's seal as the field's visible appearance, so the second signature leaves the
first intact and anyone with the CA certificate can validate both offline.

pyHanko's synchronous API runs its own event loop: call :func:`sign_pdf` and
:func:`validate_pdf` from a worker thread (``asyncio.to_thread``), never on the service's loop.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID
from PIL import Image
from pyhanko import stamp
from pyhanko.keys.internal import (
    translate_pyca_cryptography_cert_to_asn1,
    translate_pyca_cryptography_key_to_asn1,
)
from pyhanko.pdf_utils import images
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign import fields, signers
from pyhanko.sign.fields import SigSeedSubFilter
from pyhanko.sign.validation import validate_pdf_signature
from pyhanko_certvalidator import ValidationContext
from pyhanko_certvalidator.registry import SimpleCertificateStore

CA_NAME = "广西制造业企业服务券平台电子签章 CA"


def _name(common_name: str, organization: str | None = None) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, common_name[:64])]
    if organization:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization[:64]))
    attrs.append(x509.NameAttribute(NameOID.COUNTRY_NAME, "CN"))
    return x509.Name(attrs)


def _key_usage(*, signer: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=signer,
        content_commitment=signer,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=not signer,
        crl_sign=not signer,
        encipher_only=False,
        decipher_only=False,
    )


@dataclass(frozen=True)
class IssuedCertificate:
    key_pem: str  # PKCS#8, unencrypted: encrypt before storing
    cert_pem: str
    serial: str


class SigningCA:
    """The platform's CA: a private key and its self-signed certificate."""

    def __init__(self, key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey, cert: x509.Certificate) -> None:
        self.key = key
        self.cert = cert

    @classmethod
    def from_pem(cls, key_pem: str, cert_pem: str) -> SigningCA:
        key = serialization.load_pem_private_key(key_pem.encode(), password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
            raise ValueError("the signing CA key must be an EC or RSA private key")
        cert = x509.load_pem_x509_certificate(cert_pem.encode())
        spki = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        if cert.public_key().public_bytes(*spki) != key.public_key().public_bytes(*spki):
            raise ValueError("the signing CA certificate is not the CA key's")
        return cls(key, cert)

    @classmethod
    def generate(cls, *, years: int = 10, rsa_bits: int | None = None) -> SigningCA:
        """A new CA (development, tests, ``voucher-contracts make-ca``): EC P-256, or RSA."""
        key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey = (
            rsa.generate_private_key(public_exponent=65537, key_size=rsa_bits)
            if rsa_bits
            else ec.generate_private_key(ec.SECP256R1())
        )
        now = datetime.now(UTC)
        name = _name(CA_NAME, CA_NAME)
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(now + timedelta(days=365 * years))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(_key_usage(signer=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256())
        )
        return cls(key, cert)

    @property
    def key_pem(self) -> str:
        return self.key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode()

    @property
    def cert_pem(self) -> str:
        return self.cert.public_bytes(serialization.Encoding.PEM).decode()

    def issue(self, org_id: str, org_name: str, *, years: int = 5) -> IssuedCertificate:
        """A key and certificate for an organisation's signatures."""
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.now(UTC)
        serial = x509.random_serial_number()
        subject = x509.Name(
            [
                *_name(org_name, org_name),
                x509.NameAttribute(NameOID.SERIAL_NUMBER, org_id),
            ]
        )
        cert = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(serial)
            .not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(min(now + timedelta(days=365 * years), self.cert.not_valid_after_utc))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_key_usage(signer=True), critical=True)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()), critical=False
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(self.key, hashes.SHA256())
        )
        key_pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode()
        return IssuedCertificate(
            key_pem, cert.public_bytes(serialization.Encoding.PEM).decode(), format(serial, "x")
        )


# --- documents ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class FieldBox:
    name: str  # the party: enterprise | provider
    page: int
    box: tuple[float, float, float, float]  # x1, y1, x2, y2 in points


def add_signature_fields(pdf: bytes, boxes: list[FieldBox]) -> bytes:
    """The document with one empty signature field per party (before anyone signs)."""
    writer = IncrementalPdfFileWriter(io.BytesIO(pdf))
    for b in boxes:
        x1, y1, x2, y2 = (round(v) for v in b.box)
        fields.append_signature_field(
            writer, fields.SigFieldSpec(b.name, on_page=b.page, box=(x1, y1, x2, y2))
        )
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def sign_pdf(
    pdf: bytes,
    *,
    field_name: str,
    key_pem: str,
    cert_pem: str,
    ca_cert_pem: str,
    seal_png: bytes,
    signer_name: str,
    reason: str = "签署服务合同",
) -> bytes:
    """``pdf`` with a PAdES signature in ``field_name`` (an incremental update)."""
    key = serialization.load_pem_private_key(key_pem.encode(), password=None)
    cert = x509.load_pem_x509_certificate(cert_pem.encode())
    ca_cert = x509.load_pem_x509_certificate(ca_cert_pem.encode())
    signer = signers.SimpleSigner(
        signing_cert=translate_pyca_cryptography_cert_to_asn1(cert),
        signing_key=translate_pyca_cryptography_key_to_asn1(key),
        cert_registry=SimpleCertificateStore.from_certs([translate_pyca_cryptography_cert_to_asn1(ca_cert)]),
    )
    seal = Image.open(io.BytesIO(seal_png))
    seal.load()
    style = stamp.StaticStampStyle(background=images.PdfImage(seal), background_opacity=1.0, border_width=0)
    meta = signers.PdfSignatureMetadata(
        field_name=field_name,
        subfilter=SigSeedSubFilter.PADES,
        md_algorithm="sha256",
        reason=reason,
        name=signer_name,
    )
    out = io.BytesIO()
    signers.PdfSigner(meta, signer=signer, stamp_style=style).sign_pdf(
        IncrementalPdfFileWriter(io.BytesIO(pdf)), output=out
    )
    return out.getvalue()


@dataclass(frozen=True)
class SignatureCheck:
    field_name: str
    signer: str
    intact: bool
    valid: bool
    trusted: bool
    bottom_line: bool
    modification_level: str


def validate_pdf(pdf: bytes, ca_cert_pem: str) -> list[SignatureCheck]:
    """Every signature of ``pdf`` checked against the CA as the only trust root (offline)."""
    ca = translate_pyca_cryptography_cert_to_asn1(x509.load_pem_x509_certificate(ca_cert_pem.encode()))
    reader = PdfFileReader(io.BytesIO(pdf))
    checks: list[SignatureCheck] = []
    for sig in reader.embedded_signatures:
        context = ValidationContext(trust_roots=[ca], allow_fetching=False)
        status: Any = validate_pdf_signature(sig, context)
        checks.append(
            SignatureCheck(
                field_name=str(sig.field_name),
                signer=str(sig.signer_cert.subject.native.get("common_name", "")),
                intact=bool(status.intact),
                valid=bool(status.valid),
                trusted=bool(status.trusted),
                bottom_line=bool(status.bottom_line),
                modification_level=str(getattr(status.modification_level, "name", status.modification_level)),
            )
        )
    return checks
