"""Write the public certificates of the spec to the output folder, for servers and clients.

Private keys stay in the state store; the deploy step copies them to the hosts.
"""

from __future__ import annotations

from provisioner.pki.encoding import certificates_to_pem, load_certificates
from provisioner.spec.models import Spec
from provisioner.store.atomic import write_atomic
from provisioner.store.local import LocalStore


def export_certificates(spec: Spec, store: LocalStore) -> None:
    out = spec.output_dir()
    for server in spec.mail_servers:
        _export(store, "server", server.host, out / "certs" / server.host.rstrip("."))
    for user in spec.users:
        _export(store, "smime", user.address, out / "smime" / user.address)
    _prune(out / "certs", {server.host.rstrip(".") for server in spec.mail_servers})
    _prune(out / "smime", {user.address for user in spec.users})
    for authority in spec.authorities:
        for purpose in ("ca-root", "ca-intermediate"):
            record = store.current_certificate(purpose, f"{authority.name}/{purpose[3:]}")
            if record is not None:
                name = "root.pem" if purpose == "ca-root" else "intermediate.pem"
                pem = certificates_to_pem(load_certificates(store.read_certificate(record.id))[:1])
                _write_if_changed(out / "ca" / authority.name / name, pem)


def _prune(folder, wanted: set[str]) -> None:  # type: ignore[no-untyped-def]
    """Remove the exported files of hosts or users that the spec no longer lists."""
    import shutil

    if not folder.is_dir():
        return
    for entry in folder.iterdir():
        if entry.is_dir() and entry.name not in wanted:
            shutil.rmtree(entry)


def _export(store: LocalStore, purpose: str, owner: str, folder) -> None:  # type: ignore[no-untyped-def]
    record = store.current_certificate(purpose, owner)
    if record is None:
        return
    certificates = load_certificates(store.read_certificate(record.id))
    _write_if_changed(folder / "cert.pem", certificates_to_pem(certificates[:1]))
    _write_if_changed(folder / "chain.pem", certificates_to_pem(certificates[1:]))
    _write_if_changed(folder / "fullchain.pem", certificates_to_pem(certificates))
    _write_if_changed(
        folder / "key.path", str(store.key_path(record.key_id)) + "\n" if record.key_id else "\n"
    )


def _write_if_changed(path, data: bytes | str) -> None:  # type: ignore[no-untyped-def]
    payload = data.encode() if isinstance(data, str) else data
    try:
        if path.read_bytes() == payload:
            return
    except FileNotFoundError:
        pass
    # Exported copies are compared and rewritten on every apply, so they need no fsync.
    write_atomic(path, payload, durable=False)
