"""The example outputs committed under reports/ name no folder of the machine that made them."""

from tests.conftest import ROOT

MACHINE_FOLDERS = (b"/work/", b"/root/", b"/home/", b"/tmp/", b"site-packages")


def test_no_committed_output_names_a_folder_of_this_machine():
    """Records, results, tables and reports under reports/ hold package names and versions and paths relative to the
    task or the repository, never an absolute path of the machine that made them."""
    files = [p for p in (ROOT / "reports").rglob("*") if p.is_file()]
    assert files
    offenders = [
        f"{p.relative_to(ROOT)}: {folder.decode()}"
        for p in files
        for folder in MACHINE_FOLDERS
        if folder in p.read_bytes()
    ]
    assert not offenders, offenders
