"""The pomerium executable's flags and exit codes, run as a user would."""
import subprocess


def run(binary, *arguments):
    return subprocess.run([str(binary), *arguments], capture_output=True, text=True, timeout=30)


def test_version_prints_version_and_revision(pomerium_binary):
    result = run(pomerium_binary, "-version")
    assert result.returncode == 0
    assert result.stdout.startswith("pomerium 0.7.")
    assert "revision" in result.stdout


def test_help_lists_flags_and_exit_codes(pomerium_binary):
    result = run(pomerium_binary, "-help")
    assert result.returncode == 0
    for flag in ("-config", "-version", "-validate", "Exit codes"):
        assert flag in result.stdout


def test_missing_config_file_is_named(pomerium_binary, tmp_path):
    missing = tmp_path / "missing.yaml"
    result = run(pomerium_binary, "-config", str(missing))
    assert result.returncode == 1
    assert str(missing) in result.stderr


def test_missing_config_path_is_escaped(pomerium_binary, tmp_path):
    missing = tmp_path / "bad\nlevel=info forged line.yaml"
    result = run(pomerium_binary, "-config", str(missing))
    assert result.returncode == 1
    assert "\\nlevel=info forged line.yaml" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_unknown_flag_prints_usage(pomerium_binary):
    result = run(pomerium_binary, "-listen", ":443")
    assert result.returncode == 2
    assert '"-listen"' in result.stderr
    assert "Usage: pomerium" in result.stderr


def test_config_flag_without_value_is_usage_error(pomerium_binary):
    result = run(pomerium_binary, "-config")
    assert result.returncode == 2
    assert "-config" in result.stderr


def test_config_with_equals_form(pomerium_binary, tmp_path):
    missing = tmp_path / "other.yaml"
    result = run(pomerium_binary, f"--config={missing}")
    assert result.returncode == 1
    assert str(missing) in result.stderr
